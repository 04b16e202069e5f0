"""The packages' READMEs are their wheels' long descriptions: no link may lead outside the package (issue 13).

Each ``ommi-*/README.md`` is its distribution's ``readme`` (the text a
package index shows). There a relative link such as ``../README.md`` or
``../benchmarks/...`` leads nowhere, so the READMEs name such files in plain
text instead ("README.md at the root of the Ommi repository"). Links within
the page (``#section``) and absolute URLs work anywhere.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGES = sorted(path.parent for path in REPOSITORY.glob("ommi-*/pyproject.toml"))

_TARGETS = [
    re.compile(r"\]\(\s*<?([^)\s>]*)"),  # [text](target) and ![alt](target)
    re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE),  # [label]: target
    re.compile(r"""(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE),  # HTML
]


def _link_targets(markdown: str) -> list[str]:
    return [match.group(1) for pattern in _TARGETS for match in pattern.finditer(markdown)]


def test_every_package_is_checked() -> None:
    assert {path.name for path in PACKAGES} >= {
        "ommi-core",
        "ommi-sqlite",
        "ommi-postgresql",
        "ommi-mongodb",
        "ommi-testkit",
    }


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_readme_links_work_on_a_package_index(package: Path) -> None:
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    readme = project["readme"]
    path = package / (readme if isinstance(readme, str) else readme["file"])
    text = path.read_text(encoding="utf-8")
    broken = [target for target in _link_targets(text) if not (target.startswith("#") or "://" in target)]
    assert broken == [], f"{path.relative_to(REPOSITORY)} links outside its page: {broken}"


def test_the_link_finder_finds_relative_links() -> None:
    sample = "See [Ommi](../README.md), ![logo](img/logo.png), [x][y] and <a href='docs/x.md'>.\n\n[y]: ../x.md\n"
    assert _link_targets(sample) == ["../README.md", "img/logo.png", "../x.md", "docs/x.md"]
