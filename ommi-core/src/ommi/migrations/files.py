"""Migration files: reading a directory of them in order, and writing the next one.

A migration file is a plain Python module named ``NNNN_<slug>.py``::

    from ommi.migrations import AddField, FieldSpec

    id = "0002_add_users_age"
    parent = "0001_initial"

    operations = [
        AddField(
            "users",
            FieldSpec("age", "int", default=0),
        ),
    ]


    async def run(db: MigrationDatabase) -> None:      # optional: data changes
        ...

    async def reverse(db: MigrationDatabase) -> None:  # optional: what `down` runs instead of run
        ...

``id`` names the migration (the file's stem when ``make`` writes it) and
``parent`` the one it follows (``None`` for the first). The files form one
chain: two files following the same parent (two branches merged) are refused,
naming both. Files whose names start with ``_`` are ignored; any other
``.py`` file must follow the naming rule.

The *checksum* of a migration covers its operations as :meth:`Operation.source`
writes them (so reformatting the file changes nothing) and is stored with the
history record: a file whose operations changed after it was applied is an
error naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ommi.errors import MigrationError
from ommi.migrations.operations import Operation, python_literal
from ommi.migrations.state import FieldSpec, SchemaState

if TYPE_CHECKING:
    from ommi.migrations.runner import MigrationDatabase

__all__ = ["DEFAULT_DIRECTORY", "Migration", "load", "render", "replay", "slug_for"]

DEFAULT_DIRECTORY = "migrations"
"""Where migration files live unless told otherwise (relative to the working directory)."""

_FILE_NAME = re.compile(r"^(\d{4,})_([A-Za-z0-9_]+)\.py$")

DataStep = Callable[["MigrationDatabase"], Awaitable[None]]
"""``async def run(db)`` / ``async def reverse(db)`` of a migration file."""


@dataclasses.dataclass(frozen=True)
class Migration:
    """One migration file, loaded.

    Attributes:
        id: the migration's id (its ``id``).
        parent: the id of the migration it follows, ``None`` for the first.
        operations: its operations, in order.
        path: the file.
        run: its data step, run after the operations in the same transaction.
        reverse: what ``down`` runs (before undoing the operations) instead of ``run``.
    """

    id: str
    parent: str | None
    operations: tuple[Operation, ...]
    path: Path
    run: DataStep | None = None
    reverse: DataStep | None = None

    @property
    def checksum(self) -> str:
        """SHA-256 of the operations as migration files write them (formatting does not count)."""
        text = "\n".join(op.source() for op in self.operations)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def number(self) -> int:
        """The number the file name starts with."""
        match = _FILE_NAME.match(self.path.name)
        return int(match.group(1)) if match else 0

    def irreversible(self) -> list[str]:
        """Why ``down`` cannot undo this migration: one line per reason (empty: it can)."""
        reasons = [f"{op.describe()} cannot be undone" for op in self.operations if op.inverse() is None]
        if self.run is not None and self.reverse is None:
            reasons.append("its run(db) step has no reverse(db)")
        return reasons


def _load_module(path: Path) -> ModuleType:
    name = f"ommi_migration_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise MigrationError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs (dataclasses and pickling look modules up), then dropped again.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except MigrationError as exc:
        raise MigrationError(f"{path}: {exc}") from exc
    except Exception as exc:
        raise MigrationError(f"{path} fails when imported: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
    return module


def _data_step(module: ModuleType, name: str, path: Path) -> DataStep | None:
    step = getattr(module, name, None)
    if step is None:
        return None
    if not inspect.iscoroutinefunction(step):
        raise MigrationError(f"{path}: {name} must be an `async def {name}(db)` function")
    data_step: DataStep = step
    return data_step


def _read(path: Path) -> Migration:
    module = _load_module(path)
    missing = [name for name in ("id", "parent", "operations") if not hasattr(module, name)]
    if missing:
        raise MigrationError(
            f"{path}: a migration file defines id, parent and operations; {', '.join(missing)} missing"
        )
    migration_id: Any = module.id
    parent: Any = module.parent
    operations: Any = module.operations
    if not isinstance(migration_id, str) or not migration_id or migration_id == "zero":
        raise MigrationError(f"{path}: id must be a non-empty string other than 'zero', not {migration_id!r}")
    if parent is not None and not isinstance(parent, str):
        raise MigrationError(f"{path}: parent must be the id of the previous migration (a string) or None")
    if not isinstance(operations, (list, tuple)) or not all(isinstance(op, Operation) for op in operations):
        raise MigrationError(f"{path}: operations must be a list of ommi.migrations operations")
    return Migration(
        migration_id,
        parent,
        tuple(operations),
        path,
        _data_step(module, "run", path),
        _data_step(module, "reverse", path),
    )


def _chain(migrations: list[Migration], directory: Path) -> list[Migration]:
    by_id: dict[str, Migration] = {}
    for migration in migrations:
        other = by_id.get(migration.id)
        if other is not None:
            raise MigrationError(f"{other.path.name} and {migration.path.name} both have the id {migration.id!r}")
        by_id[migration.id] = migration
    children: dict[str | None, list[Migration]] = {}
    for migration in migrations:
        if migration.parent is not None and migration.parent not in by_id:
            raise MigrationError(
                f"{migration.path}: its parent {migration.parent!r} is no migration of {directory}; "
                "set parent to the id of the migration it follows (None for the first)"
            )
        children.setdefault(migration.parent, []).append(migration)
    for parent, following in children.items():
        if len(following) > 1:
            names = " and ".join(m.path.name for m in sorted(following, key=lambda m: m.path.name))
            after = f"the migration {parent!r}" if parent is not None else "nothing (parent = None)"
            raise MigrationError(
                f"{directory} has two heads: {names} both follow {after}, as happens when two branches each "
                f"added a migration. Make one follow the other: set its parent to the other's id and renumber "
                f"its file, then check that its operations still fit (ommi migrate make reports what is left)"
            )
    ordered: list[Migration] = []
    current = children.get(None, [])
    while current:
        ordered.append(current[0])
        current = children.get(current[0].id, [])
    if len(ordered) != len(migrations):
        stray = sorted(m.path.name for m in migrations if m not in ordered)
        raise MigrationError(f"{directory}: {', '.join(stray)} do not follow from the first migration (a cycle)")
    return ordered


def load(directory: str | Path = DEFAULT_DIRECTORY) -> list[Migration]:
    """The migrations of ``directory``, in order (parent first); an empty list for a missing or empty directory.

    Raises:
        MigrationError: a file is misnamed or fails to load, two files have
            the same id, a parent is unknown, two files follow the same
            parent (naming both), or the files form a cycle.
    """
    root = Path(directory)
    if not root.is_dir():
        if root.exists():
            raise MigrationError(f"{root} is not a directory")
        return []
    migrations = []
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if not _FILE_NAME.match(path.name):
            raise MigrationError(
                f"{path}: migration files are named NNNN_name.py (a number, then letters, digits or _); "
                "rename it, or start its name with _ to keep a helper module there"
            )
        migrations.append(_read(path))
    return _chain(migrations, root)


def replay(migrations: Sequence[Migration], *, upto: int | None = None) -> list[SchemaState]:
    """The state after each migration: ``result[i]`` follows ``migrations[i]`` (``upto``: stop after that many).

    Raises:
        MigrationError: an operation does not fit the state it meets (naming the file).
    """
    states: list[SchemaState] = []
    state = SchemaState()
    for migration in migrations[:upto]:
        for operation in migration.operations:
            try:
                state = state.apply(operation)
            except MigrationError as exc:
                raise MigrationError(f"{migration.path}: {exc}") from exc
        states.append(state)
    return states


def _subject(operation: Operation) -> str:
    for attribute in ("field", "old", "fields"):
        value = getattr(operation, attribute, None)
        if isinstance(value, FieldSpec):
            return value.name
        if isinstance(value, str):
            return value
        if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
            return " ".join(value)
    return ""


_VERBS = {
    "create_model": "create",
    "drop_model": "drop",
    "add_field": "add",
    "remove_field": "remove",
    "rename_field": "rename",
    "change_type": "change",
    "set_default": "default",
    "add_index": "index",
    "remove_index": "unindex",
    "add_unique": "unique",
    "remove_unique": "ununique",
}


def slug_for(operations: Sequence[Operation], *, first: bool) -> str:
    """A file-name slug describing ``operations`` (``initial``, ``add_users_age``, ``create_books_and_more``)."""
    if first:
        return "initial"
    words = [" ".join((_VERBS.get(op.kind, op.kind), op.model, _subject(op))) for op in operations[:2]]
    if len(operations) > 2:
        words.append("and more")
    slug = re.sub(r"[^A-Za-z0-9]+", "_", " ".join(words)).strip("_").lower()
    return slug[:50].rstrip("_") or "migration"


def _imports(operations: Sequence[Operation]) -> list[str]:
    text = "\n".join(op.source() for op in operations)
    modules = [name for name in ("datetime", "decimal", "uuid") if f"{name}." in text]
    helpers = {name for name in ("FieldSpec", "IndexSpec") if f"{name}(" in text}
    names = sorted({type(op).__name__ for op in operations} | helpers)
    lines = [f"import {name}" for name in modules]
    if lines:
        lines.append("")
    lines.append(f"from ommi.migrations import {', '.join(names)}")
    return lines


def render(migration_id: str, parent: str | None, operations: Sequence[Operation], *, summary: str) -> str:
    """The source of a migration file: docstring, imports, ``id``, ``parent``, ``operations``, a data-step stub."""
    body = "".join("    " + op.source().replace("\n", "\n    ") + ",\n" for op in operations)
    described = "\n".join(f"- {op.describe()}" for op in operations)
    destructive = [op for op in operations if op.destructive]
    example = operations[0].model if operations else "model"
    warning = "\nDestructive: applying it drops or narrows stored data; back up first.\n" if destructive else ""
    return (
        f'"""{summary}\n\n'
        f"{described}\n{warning}\n"
        "Written by `ommi migrate make`: review it, then commit it with the model change.\n"
        '"""\n\n'
        + "\n".join(_imports(operations))
        + "\n\n"
        + f"id = {python_literal(migration_id)}\n"
        + f"parent = {python_literal(parent)}\n\n"
        + f"operations = [\n{body}]\n\n\n"
        "# Data changes go in `async def run(db)`, run after the operations in the same transaction,\n"
        f"# with Ommi's API on the models as this migration leaves them (`db.models[{python_literal(example)}]`).\n"
        "# `async def reverse(db)` is what `ommi migrate down` runs instead.\n"
    )
