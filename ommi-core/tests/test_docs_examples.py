"""Every Python example of the documentation (``docs/content``, and README.md) runs, and prints what the docs say.

The rules the documentation follows (also in ``docs/README.md``):

* Every fenced ``python`` block is a complete program. It runs in a fresh
  interpreter (``python -W error``) in a temporary directory of its own, with
  that directory and its ``src/`` on ``PYTHONPATH`` (as if the example project
  were installed in development mode), and must exit with status 0.
* A block with ``title="name.ext"`` (any language) is also a file: it is written
  into the directory of every *later* block of the same page and, for numbered
  pages (``01-models.md``, ``02-queries.md``...), of the later numbered pages of
  the same folder, so a tutorial can build ``models.py`` once and import it
  afterwards; a later block with the same title replaces it. A ``python`` block
  titled ``test_*.py`` is run with pytest instead of as a script.
* A fenced block with ``title="Output"`` right after a ``python`` block is the
  standard output that block must print, line for line; ``...`` in it matches
  any text within a line (timings, timestamps).
* A marker on the line right before a block changes how it runs:
  ``<!-- docs-test: skip: REASON -->`` excludes it (the reason is mandatory);
  ``<!-- docs-test: server: postgresql -->`` (or ``mongodb``) runs it with
  ``DATABASE_URL`` set to the test server's URL (this worker's own schema or
  database), skipping with one line when no server answers, failing instead
  under ``--ommi-require-servers``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import ommi
import pytest
from ommi.drivers import Capabilities

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "content"
README = ROOT / "README.md"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
TITLE = re.compile(r'title="(?P<title>[^"]*)"')

SERVERS = {
    "postgresql": ("OMMI_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test", "PostgreSQL"),
    "mongodb": ("OMMI_TEST_MONGODB_URL", "mongodb://127.0.0.1:27017/", "MongoDB"),
}
"""Server name in a marker -> (environment variable, default URL, name in messages), as the drivers' tests use."""

TESTKIT_PAGES = {"guides/testing.md", "guides/writing-a-driver.md"}
"""Pages whose readers install ommi-testkit (each says so): they may use it and ``reference://``.

Every other example runs on a user's install, ``pip install ommi-core ommi-sqlite``:
``test_examples_need_only_a_users_install`` checks that none mentions ommi-testkit or
``reference://``, and ``nox -s build`` runs this module in a fresh virtual environment
holding only the built ommi-core and ommi-sqlite wheels (``USER_INSTALL``).
"""

OPTIONAL_IMPORTS = re.compile(r"^\s*(?:from|import)\s+(ommi_postgresql|ommi_mongodb|attrs|pydantic)\b", re.MULTILINE)
"""Imports of distributions a user installs only for their choice (another driver, another model library)."""

USER_INSTALL = importlib.util.find_spec("ommi_testkit") is None
"""True when ommi-testkit is not installed: the documentation's examples run as a user's install has them."""

if not DOCS.is_dir():  # pragma: no cover - only an sdist of ommi-core lacks the docs
    pytest.skip("the documentation examples run only in a checkout (docs/ is absent)", allow_module_level=True)


@dataclass
class Block:
    """One fenced block of a Markdown page."""

    page: Path
    line: int
    language: str
    title: str | None
    code: str
    marker: str | None
    expected_output: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    """Titled blocks before this one (see the module docstring): relative path -> content."""

    @property
    def page_name(self) -> str:
        """The page's path below docs/content (README.md for the repository's README)."""
        base = DOCS if self.page.is_relative_to(DOCS) else ROOT
        return self.page.relative_to(base).as_posix()

    @property
    def id(self) -> str:
        return f"{self.page_name}:{self.line}"

    def directive(self) -> tuple[str, str] | None:
        """``("skip", reason)``, ``("server", name)`` or None; raises on a malformed marker."""
        if self.marker is None:
            return None
        kind, _, value = (part.strip() for part in self.marker.partition(":"))
        if (kind == "skip" and value) or (kind == "server" and value in SERVERS):
            return kind, value
        raise ValueError(
            f"{self.id}: a docs-test marker reads '<!-- docs-test: skip: REASON -->' or "
            f"'<!-- docs-test: server: {' | '.join(SERVERS)} -->', not {self.marker!r}"
        )


def _dedent(lines: list[str], indent: str) -> str:
    return "".join(line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines)


def parse_page(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order, with its marker (files and outputs not linked yet)."""
    lines = page.read_text(encoding="utf-8").splitlines(keepends=True)
    blocks: list[Block] = []
    index = 0
    last_text = ""  # the last non-blank line before the current position
    while index < len(lines):
        match = FENCE.match(lines[index].rstrip("\n"))
        if match is None:
            if lines[index].strip():
                last_text = lines[index]
            index += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        start = index
        closing = re.compile(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$")
        index += 1
        body: list[str] = []
        while index < len(lines) and not closing.match(lines[index].rstrip("\n")):
            body.append(lines[index])
            index += 1
        if index >= len(lines):
            raise ValueError(f"{page}:{start + 1}: unclosed code fence")
        marker = MARKER.match(last_text)
        title = TITLE.search(info)
        blocks.append(
            Block(
                page=page,
                line=start + 1,
                language=info.split()[0].lstrip("{.").rstrip("}") if info else "",
                title=title["title"] if title else None,
                code=_dedent(body, indent),
                marker=marker["body"] if marker else None,
            )
        )
        last_text = lines[index]
        index += 1
    return blocks


def link_blocks(blocks: list[Block]) -> None:
    """Attach Output blocks to their python block, and earlier titled files to every block."""
    files: dict[str, str] = {}
    previous: Block | None = None
    for block in blocks:
        block.files = dict(files)
        if block.title == "Output":
            if previous is None or previous.language != "python" or previous.page != block.page:
                raise ValueError(f"{block.id}: an Output block must follow a python block")
            previous.expected_output = block.code
        elif block.title is not None:
            files[block.title] = block.code
        previous = block


def pages() -> list[Path]:
    """The pages whose examples run: README.md, then every page of the documentation."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def all_blocks() -> list[Block]:
    """Every block of README.md and the documentation, linked (see the module docstring)."""
    sequences: dict[Path, list[Block]] = {}
    for page in pages():
        group = page.parent if page.name[:1].isdigit() else page
        sequences.setdefault(group, []).extend(parse_page(page))
    for blocks in sequences.values():
        link_blocks(blocks)
    return [block for blocks in sequences.values() for block in blocks]


BLOCKS = [block for block in all_blocks() if block.language == "python" and block.title != "Output"]


def test_docs_have_examples() -> None:
    """The extraction finds the examples: a broken parser would otherwise pass vacuously."""
    pages = {block.page for block in BLOCKS}
    assert len(BLOCKS) >= 40, f"only {len(BLOCKS)} python blocks found under {DOCS}"
    assert len(pages) >= 10, sorted(str(p) for p in pages)


def test_docs_markers_are_well_formed() -> None:
    """Every docs-test marker is well formed and sits right before a code block."""
    for page in pages():
        blocks = parse_page(page)
        marked = [block for block in blocks if block.directive() is not None]
        count = len(re.findall(r"<!--\s*docs-test:", page.read_text(encoding="utf-8")))
        assert count == len(marked), f"{page}: a docs-test marker is not directly followed by a code block"


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected``, where ``...`` matches any text within one line."""
    pattern = "\n".join(".*?".join(map(re.escape, line.split("..."))) for line in expected.splitlines())
    return re.fullmatch(pattern, actual.rstrip("\n")) is not None


def test_output_matching_rules() -> None:
    """The Output comparison is exact except for ``...``, which never spans lines."""
    assert output_matches("a 1\nb ...ms\n", "a 1\nb 0.25ms\n")
    assert not output_matches("a 1\n", "a 2\n")
    assert not output_matches("a ...\n", "a 1\nb 2\n")
    assert not output_matches("a\n", "a\nextra\n")


@pytest.mark.skipif(USER_INSTALL, reason="the matrix needs every first-party driver; a core + SQLite install has one")
def test_capability_matrix_lists_every_first_party_driver_and_capability() -> None:
    """The docs' build hook renders the matrix from the installed drivers without a problem."""
    spec = importlib.util.spec_from_file_location("capability_matrix", ROOT / "docs" / "hooks" / "capability_matrix.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    table, problems = hook.render()
    assert problems == []
    header = table.splitlines()[0]
    for name in hook.FIRST_PARTY:
        assert f"`{name}`" in header
    for capability in Capabilities().names():
        assert f"| `{capability}` |" in table
    mongodb_column = header.split(" | ").index("`mongodb`")
    row = next(line for line in table.splitlines() if line.startswith("| `foreign_keys` |"))
    assert row.split(" | ")[mongodb_column] == "**no**"


def _probe(server: str) -> Callable[[str], Awaitable[None]]:
    """A probe opening (then closing) an Ommi database on the server, through its driver."""

    async def probe(url: str) -> None:
        database = ommi.connect(_worker_url(server, url))
        try:
            await database.open()
        finally:
            await database.close()

    return probe


def _worker_url(server: str, url: str) -> str:
    """The server's URL, pointing at this pytest-xdist worker's own schema (PostgreSQL) or database (MongoDB)."""
    from ommi_testkit.servers import worker_namespace

    namespace = worker_namespace("ommi_docs")
    parts = urllib.parse.urlsplit(url)
    if server == "postgresql":
        query = urllib.parse.parse_qsl(parts.query)
        query = [(key, value) for key, value in query if key != "schema"] + [("schema", namespace)]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return urllib.parse.urlunsplit(parts._replace(path=f"/{namespace}"))


def _environment(directory: Path, database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    # The outer pytest's options must not leak into examples that run pytest themselves.
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONPATH"] = os.pathsep.join([str(directory / "src"), str(directory)])
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_docs_example_runs(block: Block, tmp_path: Path) -> None:
    """The example exits with status 0 (and prints its Output block, if it has one)."""
    database_url = None
    if USER_INSTALL and block.page_name in TESTKIT_PAGES:
        pytest.skip(f"{block.page_name} is for readers who install ommi-testkit, absent here")
    imported = {name for text in (block.code, *block.files.values()) for name in OPTIONAL_IMPORTS.findall(text)}
    absent = sorted(name for name in imported if importlib.util.find_spec(name) is None)
    if USER_INSTALL and absent:
        pytest.skip(f"imports {', '.join(absent)}, not installed here (the full suite runs it)")
    match block.directive():
        case ("skip", reason):
            pytest.skip(f"marked in the docs: {reason}")
        case ("server", server) if USER_INSTALL:
            pytest.skip(f"needs {SERVERS[server][2]} and its driver, absent from a core + SQLite install")
        case ("server", server):
            from ommi_testkit.servers import server_url

            env_var, default, what = SERVERS[server]
            database_url = _worker_url(server, server_url(env_var, default, _probe(server), what))
    for name, content in block.files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    script = tmp_path / (block.title or "example.py")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(block.code, encoding="utf-8")
    relative = str(script.relative_to(tmp_path))
    if script.name.startswith("test_"):
        command = [sys.executable, "-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider", relative]
    else:
        command = [sys.executable, "-W", "error", relative]
    completed = subprocess.run(
        command,
        cwd=tmp_path,
        env=_environment(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = (
        f"{block.id} exited with {completed.returncode}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    )
    assert completed.returncode == 0, report
    if block.expected_output is not None:
        assert output_matches(block.expected_output, completed.stdout), report


def test_examples_need_only_a_users_install() -> None:
    """Outside TESTKIT_PAGES no example uses ommi-testkit or its ``reference://`` driver.

    A user installs ``ommi-core ommi-sqlite`` (or another driver): an example that needs
    the testkit fails for them with DriverNotFound or ModuleNotFoundError.
    """
    needing = [
        block.id
        for block in BLOCKS
        if block.page_name not in TESTKIT_PAGES
        and any("ommi_testkit" in text or "reference://" in text for text in (block.code, *block.files.values()))
    ]
    assert not needing, f"examples that need ommi-testkit on a page for every user: {needing}"
