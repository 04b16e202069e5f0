"""Tidy the reStructuredText habits of Ommi's docstrings in the rendered API pages.

The docstrings are Google style, but their cross-references are written with
Sphinx roles (``:class:`Ommi```) and literal blocks are introduced with ``::``.
mkdocstrings renders both literally; this MkDocs hook (``hooks:`` in
``docs/mkdocs.yml``) drops the role prefixes, shortens ``~dotted.paths`` to
their last part, as Sphinx would, and turns a paragraph-ending ``::`` into ``:``.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):(?=<code>)")
TILDE = re.compile(r"<code>~(?:[\w]+\.)*([\w]+)</code>")
LITERAL_INTRO = re.compile(r"::</p>")
LONE_INTRO = re.compile(r"<p>:</p>")


def tidy(html: str) -> str:
    """The page's HTML with role prefixes, ``~`` paths and ``::`` markers cleaned up."""
    html = ROLE.sub("", html)
    html = TILDE.sub(r"<code>\1</code>", html)
    html = LITERAL_INTRO.sub(":</p>", html)
    return LONE_INTRO.sub("", html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: applied to every page (only API pages contain these patterns)."""
    return tidy(html)
