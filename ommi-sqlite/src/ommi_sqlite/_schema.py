"""Creating, checking and dropping tables.

``apply_schema`` never changes a table that exists: it reads each one with
``pragma_table_info`` (and its indexes with ``pragma_index_list``) and, when
it differs from its model, raises :class:`ommi.errors.SchemaMismatchError`
listing every difference, before creating anything. A ``Unique`` or
``Index`` of the model that no stored index provides is such a difference;
indexes the table has beyond the model's are not. Creation runs in one transaction, so a failure leaves the
database as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ommi.drivers import get_logger
from ommi.errors import SchemaMismatchError
from ommi.models.constraints import StoredIndex, missing_constraints
from ommi.models.schema import ModelSchema
from ommi.models.types import StorageType
from ommi.sql import creation_order
from ommi.sql.limits import Limits

from ommi_sqlite._dialect import DECIMAL_COLLATION, refuse_reserved_name
from ommi_sqlite._operations import SQLCore
from ommi_sqlite._pool import Link
from ommi_sqlite._types import accepted_types, classify

__all__ = [
    "CatalogIndex",
    "apply_schema",
    "drop_schema",
    "index_differences",
    "read_indexes",
    "stored_indexes",
    "table_differences",
    "table_limits",
]

log = get_logger("ommi.sqlite.driver")

_TABLE_INFO = 'SELECT name, type, "notnull", pk FROM pragma_table_info(?)'
_KEY_COLLATIONS = (
    "SELECT x.name, x.coll FROM pragma_index_list(?) AS l, pragma_index_xinfo(l.name) AS x "
    "WHERE l.origin = 'pk' AND x.key"
)

_INDEXES = (
    'SELECT l.name, l."unique", l.partial, l.origin, i.name '
    "FROM pragma_index_list(?) AS l, pragma_index_info(l.name) AS i ORDER BY l.name, i.seqno"
)


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    """One index of a table as ``pragma_index_list`` describes it (drift checks and ``ommi inspect`` read it).

    Attributes:
        name: its name (``sqlite_autoindex_*`` for a ``UNIQUE`` or ``PRIMARY KEY`` written in ``CREATE TABLE``).
        columns: its columns in order, ``None`` for an expression.
        unique: whether it refuses equal values.
        partial: whether it has a ``WHERE`` clause.
        origin: ``c`` made by ``CREATE INDEX``, ``u`` by a ``UNIQUE`` constraint, ``pk`` by the primary key.
    """

    name: str
    columns: tuple[str | None, ...]
    unique: bool
    partial: bool
    origin: str

    @property
    def full(self) -> bool:
        """Neither partial nor on an expression: it can provide a model's constraint."""
        return not self.partial and None not in self.columns


async def read_indexes(link: Link, table: str) -> list[CatalogIndex]:
    """Every index of ``table``, in name order, the primary key's included."""
    found: dict[str, tuple[list[str | None], tuple[bool, bool, str]]] = {}
    for name, unique, partial, origin, column in await link.fetchall(_INDEXES, [table]):
        columns, _ = found.setdefault(str(name), ([], (bool(unique), bool(partial), str(origin))))
        columns.append(None if column is None else str(column))
    return [CatalogIndex(name, tuple(columns), *kind) for name, (columns, kind) in found.items()]


async def stored_indexes(link: Link, table: str) -> list[StoredIndex]:
    """The indexes of ``table`` that can provide a model's constraint: partial and expression indexes cannot."""
    indexes = await read_indexes(link, table)
    return [StoredIndex(tuple(c for c in i.columns if c is not None), i.unique) for i in indexes if i.full]


def index_differences(schema: ModelSchema, stored: Sequence[StoredIndex]) -> list[str]:
    """The model's unique constraints and indexes that no stored index provides (see ``ommi.models.constraints``)."""
    return missing_constraints(schema.constraints, stored)


def table_differences(core: SQLCore, schema: ModelSchema, columns: Sequence[tuple[Any, ...]]) -> list[str]:
    """How a stored table (rows of ``pragma_table_info``) differs from its model."""
    stored = {str(name): (str(kind), bool(notnull), int(pk)) for name, kind, notnull, pk in columns}
    problems: list[str] = []
    key_position = {f.column: position for position, f in enumerate(schema.key, start=1)}
    for f in schema.fields:
        if f.column not in stored:
            problems.append(f"missing column {f.column!r} (for {f!r})")
            continue
        kind, notnull, pk = stored[f.column]
        if f is schema.auto_field:
            wanted_kind, wanted_notnull = core.dialect.auto_key_type, notnull  # the rowid is never NULL
            if kind.upper() != wanted_kind.upper():
                problems.append(f"column {f.column!r} has type {kind or 'none'} but {f!r} needs {wanted_kind}")
        else:
            wanted_kind, wanted_notnull = core.dialect.column_type(f), f.key or not f.nullable
            found = classify(kind)
            if found is None or found[0] is not f.storage:
                problems.append(
                    f"column {f.column!r} has type {kind or 'none'} but {f!r} needs "
                    f"{accepted_types(f.storage, wanted_kind)}"
                )
        if notnull != wanted_notnull:
            if wanted_notnull:
                problems.append(f"column {f.column!r} allows NULL but {f!r} is not optional")
            else:
                problems.append(f"column {f.column!r} is NOT NULL but {f!r} is optional")
        expected_pk = key_position.get(f.column, 0)
        if pk != expected_pk:
            if not expected_pk:
                problems.append(f"column {f.column!r} is part of the stored primary key but {f!r} is not a key")
            elif not pk:
                problems.append(f"column {f.column!r} is not part of the stored primary key but {f!r} is a key")
            else:
                problems.append(
                    f"column {f.column!r} is key column {pk} in the table but key column {expected_pk} in the model"
                )
    wanted = {f.column for f in schema.fields}
    model = schema.cls.__name__
    problems.extend(f"extra column {name!r} that {model} does not have" for name in stored if name not in wanted)
    return problems


def table_limits(schema: ModelSchema, columns: Sequence[tuple[Any, ...]]) -> Limits:
    """The limits Ommi enforces on the narrow columns of a stored table that matches ``schema``."""
    declared = {str(name): str(kind) for name, kind, _notnull, _pk in columns}
    limits = []
    for f in schema.fields:
        found = classify(declared.get(f.column, ""))
        if f is not schema.auto_field and found is not None and found[0] is f.storage and found[1] is not None:
            limits.append((f, found[1]))
    return tuple(limits)


async def apply_schema(link: Link, core: SQLCore, schemas: Sequence[ModelSchema]) -> None:
    """Create the missing tables and indexes of ``schemas``; never alter an existing table.

    ``link`` is the writer, held by the caller, outside any transaction.

    Raises:
        SchemaMismatchError: a stored table differs from its model; nothing was changed.
    """
    for schema in schemas:
        refuse_reserved_name(schema)
    ordered = creation_order(schemas)
    try:
        # BEGIN inside the try: cancelled while it runs, it must still be rolled back.
        await link.execute("BEGIN IMMEDIATE")
        problems = []
        limits: dict[ModelSchema, Limits] = {}
        new_tables = set()
        for schema in ordered:
            columns = await link.fetchall(_TABLE_INFO, [schema.name])
            if not columns:
                new_tables.add(schema.name)
            else:
                differences = table_differences(core, schema, columns)
                differences += index_differences(schema, await stored_indexes(link, schema.name))
                if differences:
                    problems.append(f"table {schema.name!r} ({schema.cls.__name__}): " + "; ".join(differences))
                else:
                    limits[schema] = table_limits(schema, columns)
                    await _report_text_keyed_decimals(link, schema)
        if problems:
            raise SchemaMismatchError(
                f"sqlite database {link.database}: stored tables differ from their models, nothing was changed: "
                + " | ".join(problems)
                + ". Write a migration for the change and apply it: `ommi migrate make --models MODULE` then "
                "`ommi migrate apply --url URL` (or drop the tables with db.remove_models() when their rows can go)."
            )
        for schema in ordered:
            for statement in core.compiler.create_statements(schema):
                await link.execute(statement)
            if schema.name in new_tables:
                # The indexes on its references, and its constraints: an existing table has the
                # constraints already (else it drifted, above), perhaps under other names, and keeps
                # the indexes it has (use_models changes nothing on a table it did not make).
                for statement in core.compiler.create_indexes(schema):
                    await link.execute(statement)
                for statement in core.compiler.constraint_statements(schema):
                    await link.execute(statement)
        await link.execute("COMMIT")
    except BaseException:
        await asyncio.shield(_rollback(link))
        raise
    for schema in ordered:
        core.compiler.set_limits(schema, limits.get(schema, ()))


async def _report_text_keyed_decimals(link: Link, schema: ModelSchema) -> None:
    """Log a table, made before ommi-sqlite compared ``Decimal`` keys by value, whose key still compares text.

    Such a table keeps working as it did: its primary key takes ``1.0`` and
    ``1.00`` as two keys (queries still compare by value). Rebuilding the
    table gives it the value semantics.
    """
    decimal_keys = {f.column for f in schema.key if f.storage is StorageType.DECIMAL}
    if not decimal_keys:
        return
    collations = {str(name): str(coll) for name, coll in await link.fetchall(_KEY_COLLATIONS, [schema.name])}
    by_text = sorted(c for c in decimal_keys if collations.get(c, "").lower() != DECIMAL_COLLATION)
    if by_text:
        log.warning(
            "schema.decimal_key.text",
            driver="sqlite",
            database=link.database,
            table=schema.name,
            columns=by_text,
            advice=(
                f"the table was created before ommi-sqlite compared Decimal keys by value: its primary key "
                f"takes Decimal('1.0') and Decimal('1.00') as two keys. Copy the rows into a table created by "
                f"use_models() to compare keys by value (COLLATE {DECIMAL_COLLATION})"
            ),
        )


async def drop_schema(link: Link, core: SQLCore, schemas: Sequence[ModelSchema]) -> None:
    """Drop the tables of ``schemas`` (referencing tables first), with their indexes.

    Foreign keys are switched off for the drop, as a table referenced from
    outside ``schemas`` would otherwise refuse to go; they are switched back
    on afterwards, whatever happens.
    """
    for schema in schemas:
        refuse_reserved_name(schema)
    ordered = list(reversed(creation_order(schemas)))
    # Every statement inside the try blocks: a task cancelled while one runs
    # must still leave the writer with foreign keys on and no transaction open.
    try:
        await link.execute("PRAGMA foreign_keys = OFF")
        try:
            await link.execute("BEGIN IMMEDIATE")
            for schema in ordered:
                for statement in core.compiler.drop_statements(schema):
                    await link.execute(statement)
            await link.execute("COMMIT")
        except BaseException:
            await asyncio.shield(_rollback(link))
            raise
    finally:
        await asyncio.shield(link.execute("PRAGMA foreign_keys = ON"))


async def _rollback(link: Link) -> None:
    with contextlib.suppress(Exception):
        await link.rollback()
