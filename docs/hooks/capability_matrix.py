"""The capability matrix of the first-party drivers, rendered from what they declare.

A MkDocs hook (``hooks:`` in ``docs/mkdocs.yml``): every page containing the
marker ``<!-- capability-matrix -->`` gets the marker replaced by a Markdown
table built at build time from ``ommi.drivers()``, so the table can never
disagree with the installed drivers. The capability descriptions are the
attribute docstrings of :class:`ommi.drivers.Capabilities`.

Run it as a script to print the table: ``uv run python docs/hooks/capability_matrix.py``.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import logging
from typing import Any

MARKER = "<!-- capability-matrix -->"

FIRST_PARTY = ("sqlite", "postgresql", "mongodb", "reference")
"""Driver names in column order; the reference driver is the executable spec."""

log = logging.getLogger("mkdocs.hooks.capability_matrix")


def capability_descriptions() -> dict[str, str]:
    """Capability name -> the first sentence of its attribute docstring."""
    from ommi.drivers import Capabilities

    tree = ast.parse(inspect.getsource(Capabilities))
    body = tree.body[0].body  # type: ignore[attr-defined]
    found: dict[str, str] = {}
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = " ".join(following.value.value.split())
    return found


def render() -> tuple[str, list[str]]:
    """The Markdown table, and the problems found (a first-party driver missing or broken)."""
    import ommi
    from ommi.drivers import Capabilities

    installed = {info.name: info for info in ommi.drivers()}
    problems = [f"first-party driver {name!r} is not installed" for name in FIRST_PARTY if name not in installed]
    problems += [f"driver {info.name!r} cannot be loaded: {info.error}" for info in installed.values() if info.error]
    columns = [installed[name] for name in FIRST_PARTY if name in installed and installed[name].capabilities]
    descriptions = capability_descriptions()
    header = "| capability | " + " | ".join(f"`{info.name}`" for info in columns) + " | meaning |"
    rule = "|---|" + "---|" * len(columns) + "---|"
    lines = [header, rule]
    for name in Capabilities().names():
        cells = []
        for info in columns:
            assert info.capabilities is not None
            cells.append("yes" if getattr(info.capabilities, name) else "**no**")
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {descriptions.get(name, '')} |")
    versions = ", ".join(f"`{info.distribution}` {info.version}" for info in columns)
    lines += ["", f"Generated from: {versions}."]
    return "\n".join(lines), problems


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: replace the marker with the table; problems are warnings (errors under ``--strict``)."""
    if MARKER not in markdown:
        return markdown
    table, problems = render()
    for problem in problems:
        log.warning("capability matrix: %s", problem)
    return markdown.replace(MARKER, table)


if __name__ == "__main__":
    table, problems = render()
    print(table)
    for problem in problems:
        print(f"warning: {problem}")
