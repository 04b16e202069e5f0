"""Creating, checking and dropping tables, reading PostgreSQL's catalog.

``apply`` runs in one transaction under an advisory lock per PostgreSQL schema
(so two processes starting together do not race on ``CREATE TABLE``). Every
statement and catalog query names the driver's schema (its ``schema`` setting,
else the current schema when it opened), never relying on ``search_path``,
which puts ``pg_catalog`` first. It reads
every stored table of the models first and raises
:class:`~ommi.errors.SchemaMismatchError` before changing anything when one
differs from its model; otherwise it creates the missing tables and indexes.
It never alters, empties or drops anything: migrations do
(``ommi_postgresql._migrate``), and the drift error says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from ommi.drivers import get_logger
from ommi.errors import SchemaError, SchemaMismatchError
from ommi.models.constraints import StoredIndex, missing_constraints
from ommi.models.schema import Field, ModelSchema
from ommi.sql import creation_order
from ommi.sql.limits import ColumnLimit, Limits
from psycopg import AsyncConnection

from ommi_postgresql._dialect import MAX_IDENTIFIER_BYTES
from ommi_postgresql._operations import execute
from ommi_postgresql._types import accepted_types, classify

if TYPE_CHECKING:
    from ommi_postgresql.driver import PostgreSQLDriver

__all__ = ["CatalogIndex", "apply", "drop", "read_indexes"]

log = get_logger("ommi.postgresql.schema")

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('ommi.schema:' || %s, 0))"

_NAMESPACE_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s)"

_RELATIONS = """
SELECT c.relname, c.relkind FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s)
  AND c.relname = ANY(%s)
"""

_COLUMNS = """
SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attidentity <> '' OR COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%', false)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s)
  AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""

_PRIMARY_KEYS = """
SELECT c.relname, a.attname
FROM pg_catalog.pg_index AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.indrelid
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
WHERE i.indisprimary
  AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s)
  AND c.relname = ANY(%s)
"""

_KINDS = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "i": "index",
    "S": "sequence",
    "c": "composite type",
}


@dataclass
class _Stored:
    """What the catalog says about one table."""

    kind: str
    columns: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)
    """Column name -> (type as format_type() spells it, NOT NULL, generated: an identity or a nextval() default)."""
    key: set[str] = field(default_factory=set)
    catalog_indexes: list[CatalogIndex] = field(default_factory=list)
    """Every index of the table, the primary key's included."""

    @property
    def indexes(self) -> list[StoredIndex]:
        """Its full indexes (unique constraints among them): partial and expression indexes cannot provide any."""
        return [StoredIndex(i.columns, i.unique) for i in self.catalog_indexes if i.full]


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    """One index of a table as ``pg_index`` describes it (drift checks and ``ommi inspect`` read it).

    Attributes:
        table: the table's name.
        name: the index's name (a ``UNIQUE`` constraint's index has the constraint's name).
        columns: its key columns in order (``INCLUDE`` columns and expressions left out).
        unique: whether it refuses equal values.
        primary: whether it is the primary key's.
        partial: whether it has a ``WHERE`` clause.
        expression: whether a key column is an expression.
        method: the access method (``btree``, ``hash``, ``gin``...).
        include: whether it has ``INCLUDE`` columns.
        nulls_not_distinct: a unique index where ``NULL`` collides with ``NULL`` (PostgreSQL 15's option).
    """

    table: str
    name: str
    columns: tuple[str, ...]
    unique: bool
    primary: bool
    partial: bool
    expression: bool
    method: str
    include: bool
    nulls_not_distinct: bool

    @property
    def full(self) -> bool:
        """Neither partial nor on an expression: it can provide a model's constraint."""
        return not self.partial and not self.expression


# indnullsnotdistinct is read through to_jsonb: the column exists from PostgreSQL 15 on.
_INDEXES = """
SELECT c.relname, ic.relname, i.indisunique, i.indisprimary, i.indpred IS NOT NULL, i.indexprs IS NOT NULL,
       am.amname, i.indnkeyatts < i.indnatts,
       COALESCE((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false),
       ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE k.n <= i.indnkeyatts ORDER BY k.n)
FROM pg_catalog.pg_index AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.indrelid
JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am AS am ON am.oid = ic.relam
WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s)
  AND c.relname = ANY(%s)
ORDER BY c.relname, ic.relname
"""


async def read_indexes(conn: AsyncConnection[Any], namespace: str, tables: list[str]) -> list[CatalogIndex]:
    """Every index of the tables named ``tables`` in ``namespace``, by table and name, primary keys' included."""
    rows = await (await execute(conn, _INDEXES, [namespace, tables])).fetchall()
    return [
        CatalogIndex(
            table=str(table),
            name=str(name),
            columns=tuple(columns),
            unique=bool(unique),
            primary=bool(primary),
            partial=bool(partial),
            expression=bool(expression),
            method=str(method),
            include=bool(include),
            nulls_not_distinct=bool(not_distinct),
        )
        for table, name, unique, primary, partial, expression, method, include, not_distinct, columns in rows
    ]


def _index_differences(schema: ModelSchema, stored: _Stored) -> list[str]:
    """The model's unique constraints and indexes that no stored index provides (see ``ommi.models.constraints``)."""
    if stored.kind != "table":
        return []
    return missing_constraints(schema.constraints, stored.indexes)


def _check_identifiers(schemas: Sequence[ModelSchema]) -> None:
    for schema in schemas:
        names = [("table", schema.name)] + [(f"column of {schema.name}", f.column) for f in schema.fields]
        for what, name in names:
            if len(name.encode()) > MAX_IDENTIFIER_BYTES:
                raise SchemaError(
                    f"the {what} name {name!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes and would "
                    f"be truncated; give {schema.cls.__qualname__} a shorter name (name= or StoreAs)"
                )


async def _read(conn: AsyncConnection[Any], namespace: str, names: list[str]) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    for name, kind in await (await execute(conn, _RELATIONS, [namespace, names])).fetchall():
        stored[name] = _Stored(_KINDS.get(kind, f"relation of kind {kind!r}"))
    columns = await (await execute(conn, _COLUMNS, [namespace, names])).fetchall()
    for table, column, type_name, not_null, generated in columns:
        stored[table].columns[column] = (type_name, not_null, generated)
    for table, column in await (await execute(conn, _PRIMARY_KEYS, [namespace, names])).fetchall():
        stored[table].key.add(column)
    for index in await read_indexes(conn, namespace, names):
        stored[index.table].catalog_indexes.append(index)
    return stored


def _limits(schema: ModelSchema, stored: _Stored) -> Limits:
    """The limits of the narrower (accepted) columns of a stored table that matches ``schema``."""
    limits: list[tuple[Field, ColumnLimit]] = []
    for f in schema.fields:
        found = classify(stored.columns[f.column][0]) if f.column in stored.columns else None
        if found is not None and found[0] is f.storage and found[1] is not None:
            limits.append((f, found[1]))
    return tuple(limits)


def _differences(driver: PostgreSQLDriver, schema: ModelSchema, stored: _Stored) -> list[str]:
    if stored.kind != "table":
        return [f"{schema.name!r} is a {stored.kind}, not a table"]
    types = driver.compiler.dialect.catalog_types
    wanted = {f.column: f for f in schema.fields}
    problems = [f"missing column {c!r}" for c in wanted if c not in stored.columns]
    problems += [f"unexpected column {c!r}" for c in stored.columns if c not in wanted]
    for column, f in wanted.items():
        if column not in stored.columns:
            continue
        type_name, not_null, generated = stored.columns[column]
        found = classify(type_name)
        if found is None or found[0] is not f.storage:
            problems.append(
                f"column {column!r} is {type_name} but the model wants {accepted_types(f.storage, types[f.storage])}"
            )
        want_not_null = f.key or not f.nullable
        if not_null != want_not_null:
            problems.append(
                f"column {column!r} is {'NOT NULL' if not_null else 'nullable'} but the model wants it "
                f"{'NOT NULL' if want_not_null else 'nullable'}"
            )
        if f is schema.auto_field and not generated:
            problems.append(f"column {column!r} has no identity or default but the model has the database generate it")
    key = {f.column for f in schema.key}
    if stored.key != key:
        have = ", ".join(sorted(stored.key)) or "none"
        problems.append(f"the primary key is ({have}) but the model wants ({', '.join(sorted(key))})")
    return problems


async def apply(driver: PostgreSQLDriver, conn: AsyncConnection[Any], schemas: Sequence[ModelSchema]) -> None:
    """Create the missing tables and indexes of ``schemas``; raise on drift, change nothing then."""
    compiler = driver.compiler
    namespace = compiler.dialect.namespace
    if namespace is None:
        raise SchemaError(
            f"no PostgreSQL schema on the search_path exists to create tables in ({driver.description}); "
            "set the driver's schema setting or fix search_path"
        )
    ordered = creation_order(schemas)
    _check_identifiers(ordered)
    indexes = {s.name: compiler.indexes(s) for s in ordered}
    async with conn.transaction():
        await execute(conn, _LOCK, [namespace])
        exists = (await (await execute(conn, _NAMESPACE_EXISTS, [namespace])).fetchone() or [False])[0]
        if not exists:
            if driver.settings.schema is None:
                raise SchemaError(
                    f"the PostgreSQL schema {namespace!r} that held the tables when the driver opened no longer "
                    f"exists ({driver.description}); set the driver's schema setting or fix search_path"
                )
            await execute(conn, f"CREATE SCHEMA IF NOT EXISTS {compiler.dialect.quote(namespace)}")
        names = [s.name for s in ordered]
        stored = await _read(conn, namespace, names + [name for s in ordered for name, _ in indexes[s.name]])
        problems = []
        limits: dict[ModelSchema, Limits] = {}
        for schema in ordered:
            if schema.name in stored:
                differences = _differences(driver, schema, stored[schema.name])
                differences += _index_differences(schema, stored[schema.name])
                if differences:
                    problems.append(f"table {schema.name!r}: " + "; ".join(differences))
                else:
                    limits[schema] = _limits(schema, stored[schema.name])
        if problems:
            raise SchemaMismatchError(
                f"the stored tables differ from the models ({driver.description}): "
                + " | ".join(problems)
                + ". use_models() never alters or drops tables: write a migration for the change and apply it, "
                "`ommi migrate make --models MODULE` then `ommi migrate apply --url URL` (or change the models back)"
            )
        for schema in ordered:
            # Recorded before the commit: the tables exist as checked (the lock holds off a
            # concurrent use_models), and a created table has Ommi's own types, no limits.
            compiler.set_limits(schema, limits.get(schema, ()))
        created = []
        for schema in ordered:
            if schema.name not in stored:
                for statement in compiler.create_statements(schema):
                    await execute(conn, statement)
                # An existing table has them already (else it drifted, above), perhaps under other names.
                for statement in compiler.constraint_statements(schema):
                    await execute(conn, statement)
                created.append(schema.name)
                # The indexes on its references. Only for a table made here: on an existing
                # table (another tool's, an inspected one) use_models changes nothing, and a
                # CREATE INDEX locks the table against writes while it builds.
                for name, statement in indexes[schema.name]:
                    if name not in stored:
                        await execute(conn, statement)
    if created:
        log.info("schema.created", driver="postgresql", tables=created, where=driver.description)


async def drop(driver: PostgreSQLDriver, conn: AsyncConnection[Any], schemas: Sequence[ModelSchema]) -> None:
    """Drop the tables of ``schemas`` (with their indexes and identity sequences) if they exist."""
    if not schemas:
        return
    table = driver.compiler.dialect.table
    tables = ", ".join(table(s) for s in creation_order(schemas))
    try:
        # One statement: PostgreSQL sorts out the foreign keys between the tables dropped together.
        await execute(conn, f"DROP TABLE IF EXISTS {tables}")
    except psycopg.errors.DependentObjectsStillExist as exc:
        raise SchemaError(
            f"cannot drop {tables}: other tables or views depend on them ({exc.diag.message_detail or exc}); "
            f"drop those models first ({driver.description})"
        ) from exc
    log.info("schema.dropped", driver="postgresql", tables=[s.name for s in schemas], where=driver.description)
