"""Type-check every Python example of README.md and docs/content with ``mypy --strict`` and pyright.

Usage (from the repository root)::

    uv run --with pyright==1.1.414 python tools/typecheck_docs.py              # every example, both checkers
    uv run --with pyright==1.1.414 python tools/typecheck_docs.py --all        # also print the errors
    uv run --with pyright==1.1.414 python tools/typecheck_docs.py --page tutorial --checker mypy

The examples are found exactly as the docs test finds them
(``ommi-core/tests/test_docs_examples.py``, whose parser this script reuses):
every fenced ``python`` block is a program, written into a directory of its
own together with the titled blocks before it (``models.py``...), with that
directory and its ``src/`` on the import path. Blocks marked
``<!-- docs-test: skip: ... -->`` are fragments, not programs, and are left out.

Each example is checked by both checkers, with their default settings plus
``--strict`` for mypy (with the ``ommi.mypy`` plugin, as the "Type checking"
guide tells users to enable it) and Python 3.11 for both, and only errors in
the example's own file count (an imported ``models.py`` is checked as its own
example).

Every example must check clean: the script fails on any error.
``tools/typecheck_docs_baseline.txt`` can list known errors (``--update``
rewrites it), and it must stay empty: its header says why. An entry is
``checker | page | message``, without line numbers.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "content"
BASELINE = Path(__file__).with_name("typecheck_docs_baseline.txt")
PYTHON_VERSION = "3.11"


@dataclass
class Example:
    """One python block to check, with the files written beside it."""

    page: str
    line: int
    name: str
    code: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "_", self.id)


@dataclass(frozen=True)
class Error:
    """One error a checker reported in an example's own file."""

    checker: str
    example: Example
    line: int
    message: str

    def key(self) -> str:
        """The baseline entry: no line numbers, so editing a page keeps it valid."""
        return f"{self.checker} | {self.example.page} | {self.message}"

    def __str__(self) -> str:
        return f"{self.example.id} (+{self.line}) [{self.checker}] {self.message}"


def _docs_parser() -> ModuleType:
    """The docs test module, whose parser decides what an example is."""
    path = ROOT / "ommi-core" / "tests" / "test_docs_examples.py"
    spec = importlib.util.spec_from_file_location("_ommi_docs_examples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def collect() -> tuple[list[Example], list[str]]:
    """Every example of README.md and docs/content, and the ids of the blocks left out (skip markers)."""
    parser = _docs_parser()
    examples: list[Example] = []
    skipped: list[str] = []
    for block in parser.all_blocks():
        if block.language != "python" or block.title == "Output":
            continue
        page = block.page.relative_to(ROOT).as_posix()
        if block.marker is not None and block.directive()[0] == "skip":
            skipped.append(f"{page}:{block.line}")
            continue
        examples.append(Example(page, block.line, block.title or "example.py", block.code, dict(block.files)))
    return examples, skipped


def _write(example: Example, base: Path) -> Path:
    """Write the example and its files under ``base``; the example's own file."""
    directory = base / example.slug
    for name, content in {**example.files, example.name: example.code}.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return directory / example.name


_MYPY_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def run_mypy(example: Example, script: Path, cache: Path) -> list[Error]:
    """``mypy --strict`` on the example's own file (imports followed silently)."""
    directory = cache.parent / example.slug
    config = cache.parent / "mypy.ini"
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(config),
        "--strict",
        "--python-version",
        PYTHON_VERSION,
        "--follow-imports",
        "silent",
        "--cache-dir",
        str(cache),
        "--no-error-summary",
        "--show-error-codes",
        "--hide-error-context",
        "--no-pretty",
        "--no-color-output",
        str(script.relative_to(directory)),
    ]
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(directory / "src"), str(directory)]))
    completed = subprocess.run(  # noqa: S603 - a fixed command on files this script wrote
        command, cwd=directory, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"mypy failed on {example.id}:\n{completed.stdout}\n{completed.stderr}")
    errors = []
    for line in completed.stdout.splitlines():
        match = _MYPY_LINE.match(line)
        if match is not None:
            errors.append(Error("mypy", example, int(match["line"]), match["message"]))
    return errors


def run_pyright(examples: list[Example], scripts: list[Path], base: Path) -> list[Error]:
    """One pyright run over every example, each directory an execution environment of its own."""
    config = {
        "pythonVersion": PYTHON_VERSION,
        "include": [str(s.relative_to(base)) for s in scripts],
        "executionEnvironments": [
            {"root": example.slug, "extraPaths": [f"{example.slug}/src"]} for example in examples
        ],
    }
    (base / "pyrightconfig.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    command = [shutil.which("pyright") or "pyright", "--outputjson", "--pythonpath", sys.executable]
    completed = subprocess.run(command, cwd=base, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"pyright failed:\n{completed.stdout}\n{completed.stderr}") from None
    by_file = {s.resolve(): e for s, e in zip(scripts, examples, strict=True)}
    errors = []
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] != "error":
            continue
        example = by_file.get(Path(diagnostic["file"]).resolve())
        if example is None:
            continue
        message = " ".join(diagnostic["message"].split())
        if "rule" in diagnostic:
            message += f" [{diagnostic['rule']}]"
        errors.append(Error("pyright", example, diagnostic["range"]["start"]["line"] + 1, message))
    return errors


def check(examples: list[Example], checkers: tuple[str, ...] = ("mypy", "pyright")) -> list[Error]:
    """Every error both checkers report on the examples, in page order."""
    with tempfile.TemporaryDirectory(prefix="ommi-typecheck-docs-") as temp:
        base = Path(temp)
        (base / "mypy.ini").write_text("[mypy]\nplugins = ommi.mypy\n", encoding="utf-8")
        scripts = [_write(example, base) for example in examples]
        errors: list[Error] = []
        if "mypy" in checkers:
            cache = base / ".mypy_cache"
            # The first run fills the cache of ommi's own modules; the others reuse it.
            errors.extend(run_mypy(examples[0], scripts[0], cache))
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                caches = [base / f".mypy_cache_{n}" for n in range(2)]
                for directory in caches:
                    shutil.copytree(cache, directory)
                futures = [
                    pool.submit(run_mypy, example, script, caches[index % 2])
                    for index, (example, script) in enumerate(zip(examples[1:], scripts[1:], strict=True))
                ]
                for future in futures:
                    errors.extend(future.result())
        if "pyright" in checkers:
            errors.extend(run_pyright(examples, scripts, base))
    order = {id(example): index for index, example in enumerate(examples)}
    return sorted(errors, key=lambda e: (order[id(e.example)], e.checker, e.line))


def read_baseline() -> collections.Counter[str]:
    """The known remaining errors (blank lines and ``#`` comments ignored)."""
    if not BASELINE.exists():
        return collections.Counter()
    lines = BASELINE.read_text(encoding="utf-8").splitlines()
    return collections.Counter(line for line in lines if line.strip() and not line.startswith("#"))


def write_baseline(errors: list[Error]) -> None:
    """Rewrite the entries of the baseline, keeping its header (the ``#`` lines at its top)."""
    header: list[str] = []
    if BASELINE.exists():
        for line in BASELINE.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                header.append(line)
            else:
                break
    entries = [error.key() for error in errors]
    BASELINE.write_text("\n".join([*header, *entries]) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Check the examples; exit 1 on an error the baseline does not list."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline with the errors found")
    parser.add_argument("--checker", choices=["mypy", "pyright"], action="append", help="run only this checker")
    parser.add_argument("--no-baseline", action="store_true", help="fail on any error, listed or not")
    parser.add_argument("--all", action="store_true", help="print every error, not only those the baseline lacks")
    parser.add_argument(
        "--page", action="append", help="check only the examples of pages whose path contains this text (repeatable)"
    )
    args = parser.parse_args(argv)
    checkers = tuple(args.checker or ("mypy", "pyright"))
    examples, skipped = collect()
    if args.page:
        examples = [example for example in examples if any(text in example.page for text in args.page)]
        if not examples:
            parser.error(f"no example on a page matching {args.page}")
    if args.update and args.page:
        parser.error("--update rewrites the whole baseline: run it without --page")
    errors = check(examples, checkers)
    if args.all or args.no_baseline:
        for error in errors:
            print(error)
    counts = collections.Counter(error.checker for error in errors)
    print(
        f"{len(examples)} examples ({len(skipped)} skip-marked fragments left out: {', '.join(skipped) or 'none'}); "
        + ", ".join(f"{checker}: {counts[checker]} errors" for checker in checkers)
    )
    if args.update:
        write_baseline(errors)
        print(f"wrote {len(errors)} entries to {BASELINE.name}")
        return 0
    known = collections.Counter() if args.no_baseline else read_baseline()
    found = collections.Counter(error.key() for error in errors)
    pages = {example.page for example in examples}
    known = collections.Counter(
        {key: n for key, n in known.items() if key.split(" | ")[0] in checkers and key.split(" | ")[1] in pages}
    )
    new = found - known
    gone = known - found
    for key in sorted(gone):
        print(f"fixed (remove from the baseline): {key}")
    if new:
        print(f"{sum(new.values())} error(s) not in {BASELINE.name}:")
        for error in errors:
            if new[error.key()] > 0:
                new[error.key()] -= 1
                print(f"  NEW {error}")
        return 1
    if not errors:
        print("every example type-checks")
    else:
        stale = f"; {sum(gone.values())} of its entries no longer occur" if gone else ""
        print(f"no errors beyond the baseline{stale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
