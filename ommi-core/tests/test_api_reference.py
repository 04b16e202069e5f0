"""The API reference documents what users call (issue 13).

``add``, ``find``, ``save``, ``remove`` and ``reload`` live on
``ommi.database.Executor``, the undocumented base class of ``Ommi`` and
``Transaction``: the reference page of ``ommi`` must show them on both
(mkdocstrings' ``inherited_members``), or the site's search never finds
``Ommi.find``. ``Row``, ``get_logger`` and ``ommi.plugins.driver_specs`` have
entries too. (``nox -s docs`` builds the site; its search index then holds
``ommi.database.Ommi.find`` and the others.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ommi.database import Executor, Ommi, Transaction

API = Path(__file__).resolve().parents[2] / "docs" / "content" / "reference" / "api"

USER_METHODS = ("add", "find", "save", "remove", "reload", "raw")
"""What ``Executor`` gives ``Ommi`` and ``Transaction`` for users (``query_operations`` is for ``FindQuery``)."""


def _directives() -> dict[str, str]:
    """Each ``::: dotted.path`` of the API pages, with the indented options block under it."""
    found: dict[str, str] = {}
    for page in sorted(API.glob("*.md")):
        for match in re.finditer(r"^::: (\S+)\n((?:[ \t]+\S.*\n?)*)", page.read_text(encoding="utf-8"), re.MULTILINE):
            found[match.group(1)] = match.group(2)
    return found


def _listed(options: str, name: str) -> list[str]:
    """The list an option gives (``name: [a, b]`` or a ``- item`` block), or ``["*"]`` for ``true``."""
    match = re.search(rf"^\s*{name}:\s*(.*)$", options, re.MULTILINE)
    if match is None:
        return []
    value = match.group(1).strip()
    if value == "true":
        return ["*"]
    if value.startswith("["):
        return [item.strip() for item in value.strip("[]").split(",") if item.strip()]
    block = options[match.end() :]
    return re.findall(r"^\s*-\s*(\S+)\s*$", block.split(":\n")[0], re.MULTILINE)


def test_the_methods_come_from_the_base_class() -> None:
    # What the reference has to make up for: the methods are not the classes' own.
    for name in USER_METHODS:
        assert name in vars(Executor)
        assert name not in vars(Ommi) and name not in vars(Transaction)


@pytest.mark.parametrize("cls", [Ommi, Transaction], ids=lambda cls: cls.__name__)
def test_ommi_and_transaction_show_the_methods_they_inherit(cls: type) -> None:
    directives = _directives()
    path = f"ommi.database.{cls.__name__}"
    assert path in directives, f"{path} has no entry in the API reference"
    inherited = _listed(directives[path], "inherited_members")
    missing = [
        name for name in USER_METHODS if name not in vars(cls) and "*" not in inherited and name not in inherited
    ]
    assert missing == [], f"{path} in the API reference lacks {missing}"


def test_row_get_logger_and_driver_specs_have_entries() -> None:
    directives = _directives()
    assert "ommi.drivers.base.Row" in directives
    assert "ommi.drivers.get_logger" in directives
    assert "driver_specs" in _listed(directives["ommi.plugins"], "members")
