"""``ommi inspect [URL] [--out FILE [--force]]``: print models for an existing database.

The URL comes from the argument, else ``OMMI_URL``, else ``url`` in the
``[tool.ommi]`` table of the nearest ``pyproject.toml`` (as for ``ommi
migrate``). The module goes to standard output, or to ``--out FILE``, which
is never overwritten without ``--force``. Tables that map to no model are
named on standard error (and in the module's header).

Exit status, as ``ommi migrate``: 0 when the module was written (also when
some tables were skipped), 1 when refused (``--out`` exists without
``--force``), 2 for any other error (settings, connection, a driver without
the ``inspection`` capability).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from ommi.connect import connect
from ommi.drivers.urls import scrub_secrets
from ommi.errors import ConfigurationError, OmmiError, UnsupportedFeature
from ommi.migrations import _cli as migrate_cli
from ommi.migrations.inspection import Inspection
from ommi.migrations.printer import render_models

__all__ = ["add_arguments", "main"]


def add_arguments(commands: Any) -> argparse.ArgumentParser:
    """Add ``inspect`` to ``commands`` (the ``add_subparsers()`` of ``ommi``)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "inspect",
        help="print @ommi_model dataclasses for the tables of an existing database",
        description="Read an existing database's tables (or collections) and print models that map them: "
        "see the guide 'Schema', section 'Existing databases'.",
    )
    parser.add_argument(
        "url", nargs="?", default=None, help="database URL (default: $OMMI_URL, else [tool.ommi] url in pyproject.toml)"
    )
    parser.add_argument("--out", help="write the module to this file instead of standard output")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return parser


async def _inspect(url: str) -> Inspection:
    db = connect(url, allow_implicit_model_setup=False)
    driver = db.driver
    if not driver.capabilities.inspection:
        reason = driver.absent_reason("inspection")
        raise UnsupportedFeature(
            f"the {driver.name} driver cannot read its tables into models (capability 'inspection' is absent)"
            + (f": {reason}" if reason else "")
        )
    try:
        await db.open()
        return await driver.inspect_schema()
    finally:
        await db.close()


def _write(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path``: created exclusively, or (``force``) replaced whole through a temporary file."""
    if not force:
        with path.open("x", encoding="utf-8") as file:
            file.write(text)
        return
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``ommi inspect`` with the parsed ``args``; the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    url = ""
    try:
        url = migrate_cli.settings(argparse.Namespace(url=args.url, directory=None))["url"] or ""
        if not url:
            raise ConfigurationError("ommi inspect needs a database: URL, $OMMI_URL, or url in [tool.ommi]")
        target = Path(args.out) if args.out else None
        if target is not None and target.is_dir():
            raise ConfigurationError(f"--out {target} is a directory: name the file to write")
        if target is not None and target.exists() and not args.force:
            print(f"ommi inspect: {target} exists; pass --force to overwrite it", file=err)
            return 1
        inspection = asyncio.run(_inspect(url))
        if not inspection.state.models and not inspection.skipped:
            # Most often a mistyped URL: a SQLite path that did not exist (opened, so now an empty file), a
            # PostgreSQL schema or MongoDB database without tables. Nothing to write.
            raise ConfigurationError(
                "the database has no tables (or collections) to read: check the URL (a SQLite path, the "
                "PostgreSQL ?schema=, the MongoDB database name)"
            )
        text = render_models(inspection)
        for table, why in inspection.skipped.items():
            print(f"ommi inspect: skipped table {table!r}: {why}", file=err)
        if target is None:
            out.write(text)
            return 0
        try:
            _write(target, text, force=args.force)
        except FileExistsError:
            print(f"ommi inspect: {target} exists; pass --force to overwrite it", file=err)
            return 1
        except OSError as exc:
            raise ConfigurationError(f"--out {target}: cannot write it: {exc}") from exc
        models = len(inspection.state.models)
        print(f"Wrote {target}: {models} model{'s' if models != 1 else ''}; review it, then commit it.", file=out)
        return 0
    except OmmiError as exc:
        shown = scrub_secrets(str(exc), url) if url else str(exc)
        print(f"ommi inspect: {type(exc).__name__}: {shown}", file=err)
        return 2
