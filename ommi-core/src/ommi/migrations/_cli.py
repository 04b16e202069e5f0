"""``ommi migrate``: the command line of :mod:`ommi.migrations`.

``ommi.cli`` adds the ``migrate`` command with :func:`add_arguments` and runs
it with :func:`main`::

    ommi migrate make   [--models MODULE[:COLLECTION]] [--dir DIR] [--name NAME]
                        [--allow-destructive] [--rename Model.old=new ...]
    ommi migrate apply  [--url URL] [--dir DIR] [--to ID] [--dry-run] [--lock-timeout SECONDS]
    ommi migrate sql    [--url URL] [--dir DIR] [--to ID]          (apply --dry-run)
    ommi migrate status [--url URL] [--dir DIR]
    ommi migrate down   [--url URL] [--dir DIR] --to ID|zero [--dry-run] [--lock-timeout SECONDS]

Each setting comes from its flag, else the environment (``OMMI_URL``,
``OMMI_MODELS``, ``OMMI_MIGRATIONS``), else the ``[tool.ommi]`` table of the
nearest ``pyproject.toml`` (keys ``url``, ``models``, ``migrations``), else
the default (``migrations`` for the directory). ``MODULE`` is imported with
the working directory on ``sys.path``; ``:COLLECTION`` names a
``ModelCollection`` (or a list of models) in it, else the models of the
global collection defined in that module or below it are used.

Exit status: 0 when done (also when there is nothing to do), 1 when a
migration is refused (:class:`~ommi.errors.MigrationError`: a destructive
change without ``--allow-destructive``, a changed file, a lock held past
``--lock-timeout``...), 2 for any other error (settings, connection, database).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ommi.connect import connect
from ommi.database import Ommi
from ommi.drivers.urls import scrub_secrets
from ommi.errors import ConfigurationError, MigrationError, OmmiError
from ommi.migrations.files import DEFAULT_DIRECTORY
from ommi.migrations.runner import MigrationResult, apply, down, make, status
from ommi.models.collections import ModelCollection, get_global_collection
from ommi.models.schema import is_model

__all__ = ["add_arguments", "load_models", "main", "settings"]

_ENVIRONMENT = {"url": "OMMI_URL", "models": "OMMI_MODELS", "migrations": "OMMI_MIGRATIONS"}


def add_arguments(commands: Any) -> argparse.ArgumentParser:
    """Add ``migrate`` and its subcommands to ``commands`` (the ``add_subparsers()`` of ``ommi``)."""
    migrate = commands.add_parser(
        "migrate",
        help="write migration files from the models and apply them (make, apply, sql, status, down)",
        description="Schema migrations: see the guide 'Migrations'.",
    )
    steps = migrate.add_subparsers(dest="migrate_command", required=True, metavar="{make,apply,sql,status,down}")

    def common(parser: argparse.ArgumentParser, *, url: bool) -> None:
        parser.add_argument(
            "--dir",
            dest="directory",
            help=f"migrations directory (default: $OMMI_MIGRATIONS, [tool.ommi] migrations, {DEFAULT_DIRECTORY})",
        )
        if url:
            parser.add_argument(
                "--url", help="database URL (default: $OMMI_URL, else [tool.ommi] url in pyproject.toml)"
            )

    make_parser = steps.add_parser("make", help="write the next migration file from the difference with the models")
    common(make_parser, url=False)
    make_parser.add_argument(
        "--url", help="accepted for symmetry with the other commands; make reads no database", default=None
    )
    make_parser.add_argument(
        "--models", help="MODULE[:COLLECTION] holding the models (default: $OMMI_MODELS, [tool.ommi] models)"
    )
    make_parser.add_argument("--name", help="the file name's slug (default: one describing the changes)")
    make_parser.add_argument(
        "--allow-destructive", action="store_true", help="write changes that drop or narrow stored data"
    )
    make_parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="MODEL.OLD=NEW",
        help="a field stored under a new name (repeatable); without it a rename is a removal and an addition",
    )

    apply_parser = steps.add_parser("apply", help="apply the pending migrations, each in one transaction")
    common(apply_parser, url=True)
    apply_parser.add_argument("--to", help="stop after this migration id (default: the last)")
    apply_parser.add_argument("--dry-run", action="store_true", help="print what would run; change nothing")
    _lock_timeout_argument(apply_parser)

    sql_parser = steps.add_parser("sql", help="print the statements apply would run (apply --dry-run)")
    common(sql_parser, url=True)
    sql_parser.add_argument("--to", help="stop after this migration id (default: the last)")

    status_parser = steps.add_parser("status", help="list the migrations, applied or pending")
    common(status_parser, url=True)

    down_parser = steps.add_parser("down", help="undo the migrations after --to (reversible ones only)")
    common(down_parser, url=True)
    down_parser.add_argument("--to", required=True, help="the migration id to go back to, or zero for none")
    down_parser.add_argument("--dry-run", action="store_true", help="print what would run; change nothing")
    _lock_timeout_argument(down_parser)
    parser: argparse.ArgumentParser = migrate
    return parser


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None


def _lock_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="wait at most this long for the migration lock and, on PostgreSQL, for each table lock; a wait that "
        "runs out stops with exit status 1 and that migration unapplied (default: the driver's lock wait setting)",
    )


def _pyproject(start: Path) -> dict[str, Any]:
    """The ``[tool.ommi]`` table of the nearest ``pyproject.toml`` at or above ``start`` (empty if none)."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            try:
                with candidate.open("rb") as file:
                    data = tomllib.load(file)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(f"{candidate} cannot be read: {exc}") from exc
            table = data.get("tool", {}).get("ommi", {})
            if not isinstance(table, dict):
                raise ConfigurationError(f"{candidate}: [tool.ommi] must be a table")
            return table
    return {}


def settings(
    args: argparse.Namespace, *, cwd: Path | None = None, environ: dict[str, str] | None = None
) -> dict[str, str | None]:
    """``url``, ``models`` and ``migrations``: from the flags, else the environment, else ``[tool.ommi]``."""
    environment = os.environ if environ is None else environ
    table = _pyproject(cwd or Path.cwd())
    flags = {"url": getattr(args, "url", None), "models": getattr(args, "models", None), "migrations": args.directory}
    resolved: dict[str, str | None] = {}
    for key, flag in flags.items():
        value = flag or environment.get(_ENVIRONMENT[key]) or table.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"[tool.ommi] {key} must be a string, not {value!r}")
        resolved[key] = value
    resolved["migrations"] = resolved["migrations"] or DEFAULT_DIRECTORY
    return resolved


def load_models(spec: str, *, cwd: Path | None = None) -> list[type]:
    """The model classes ``MODULE[:COLLECTION]`` names.

    Raises:
        ConfigurationError: the module cannot be imported, the attribute is
            missing or not a collection of models, or no model was found.
    """
    module_name, _, attribute = spec.partition(":")
    root = str(cwd or Path.cwd())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--models {spec}: the module {module_name!r} cannot be imported: {exc}") from exc
    if attribute:
        found = getattr(module, attribute, None)
        if isinstance(found, ModelCollection):
            return list(found)
        if isinstance(found, (list, tuple)) and found and all(is_model(m) for m in found):
            return list(found)
        raise ConfigurationError(
            f"--models {spec}: {module_name}.{attribute} is not a ModelCollection or a list of models"
        )
    models = [
        m for m in get_global_collection() if m.__module__ == module_name or m.__module__.startswith(module_name + ".")
    ]
    if not models:
        raise ConfigurationError(
            f"--models {spec}: no model of the global collection is defined in {module_name}; name the module that "
            "defines them, or a collection: MODULE:COLLECTION"
        )
    return models


def _print_results(results: Sequence[MigrationResult], verb: str, out: TextIO, *, statements: bool) -> None:
    for result in results:
        print(f"-- {result.id} ({result.path})" if statements else f"{verb} {result.id} ({result.path})", file=out)
        if statements:
            for statement in result.statements:
                print(statement, file=out)


async def _with_database(url: str, command: str, directory: str, args: argparse.Namespace, out: TextIO) -> int:
    db: Ommi = connect(url, allow_implicit_model_setup=False)
    try:
        if command in ("apply", "sql"):
            dry = command == "sql" or args.dry_run
            results = await apply(
                db, directory, to=args.to, dry_run=dry, lock_timeout=getattr(args, "lock_timeout", None)
            )
            if not results:
                print(f"Nothing to apply: {db.driver.description} is up to date with {directory}.", file=out)
            _print_results(results, "Applied", out, statements=dry)
        elif command == "down":
            results = await down(db, directory, to=args.to, dry_run=args.dry_run, lock_timeout=args.lock_timeout)
            if not results:
                print(f"Nothing to undo: nothing after {args.to} is applied.", file=out)
            _print_results(results, "Undid", out, statements=args.dry_run)
        else:
            statuses = await status(db, directory)
            if not statuses:
                print(f"No migrations in {directory}.", file=out)
            marks = {"applied": "[x]", "pending": "[ ]", "changed": "[!]", "unknown": "[?]"}
            for entry in statuses:
                when = f" {entry.applied_at:%Y-%m-%d %H:%M:%S} UTC" if entry.applied_at is not None else ""
                where = f"  {entry.path}" if entry.path is not None else "  (no file)"
                print(f"{marks[entry.state]} {entry.id}  {entry.state}{when}{where}", file=out)
    finally:
        await db.close()
    return 0


def _make(args: argparse.Namespace, config: dict[str, str | None], out: TextIO) -> int:
    if not config["models"]:
        raise ConfigurationError(
            "ommi migrate make needs the models: --models MODULE[:COLLECTION], $OMMI_MODELS, or models in [tool.ommi]"
        )
    directory = config["migrations"] or DEFAULT_DIRECTORY
    path = make(
        load_models(config["models"]),
        directory,
        name=args.name,
        allow_destructive=args.allow_destructive,
        renames=args.rename,
    )
    if path is None:
        print(f"No changes: the models match the migrations in {directory}.", file=out)
        return 0
    print(f"Wrote {path}: review it, then commit it with the model change.", file=out)
    return 0


def main(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``ommi migrate <command>`` with the parsed ``args``; the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    command: str = args.migrate_command
    url = ""
    try:
        config = settings(args)
        url = config["url"] or ""
        if command == "make":
            return _make(args, config, out)
        if not url:
            raise ConfigurationError(
                f"ommi migrate {command} needs a database: --url URL, $OMMI_URL, or url in [tool.ommi]"
            )
        return asyncio.run(_with_database(url, command, config["migrations"] or DEFAULT_DIRECTORY, args, out))
    except KeyboardInterrupt:
        # asyncio.run cancelled the work first: the migration in progress was rolled back (resumed by the
        # next apply on MongoDB), which the traceback would not say.
        print(
            f"ommi migrate {command}: interrupted; nothing of the migration in progress was committed (on MongoDB "
            "the next apply resumes it). `ommi migrate status` shows where the database stands",
            file=err,
        )
        return 130
    except MigrationError as exc:
        print(f"ommi migrate {command}: {scrub_secrets(str(exc), url) if url else exc}", file=err)
        return 1
    except OmmiError as exc:
        shown = scrub_secrets(str(exc), url) if url else str(exc)
        print(f"ommi migrate {command}: {type(exc).__name__}: {shown}", file=err)
        return 2
