"""The storage engine: tables of rows in dicts, changed copy-on-write.

A database is a ``dict`` of table name to :class:`Table`. A table maps each
row's key (a tuple) to the row (a tuple of canonical values in the model's
field order). Nothing here knows about Ommi's driver interface: the functions
take the current tables and return *new* tables, so a change that fails half
way leaves the database as it was, and readers keep a consistent snapshot.

The engine raises its own exceptions (:class:`StoreError` and subclasses),
the way a database client library would; the driver translates them into
:mod:`ommi.errors` in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ommi.models.schema import Field, ModelSchema

__all__ = [
    "Column",
    "DuplicateKey",
    "MissingValue",
    "NoSuchTable",
    "ShapeMismatch",
    "StoreError",
    "Table",
    "Tables",
    "create_tables",
    "drop_tables",
    "insert_rows",
    "replace_rows",
    "shape_of",
    "table_of",
]

Row = tuple[Any, ...]
Key = tuple[Any, ...]


class StoreError(Exception):
    """Any refusal of the engine (the driver's "native" exception)."""


class NoSuchTable(StoreError):
    """An operation named a table that does not exist."""


class DuplicateKey(StoreError):
    """A row's key is already taken."""


class MissingValue(StoreError):
    """A column that may not be NULL got ``None``."""


class ShapeMismatch(StoreError):
    """A stored table has other columns than its model; ``args[1]`` lists the differences."""


@dataclass(frozen=True, slots=True)
class Column:
    """One stored column: its name, storage type name, and whether it may hold NULL."""

    name: str
    storage: str
    nullable: bool


@dataclass(frozen=True, slots=True)
class Table:
    """One table. Frozen: a change builds a new ``Table`` (see :func:`dataclasses.replace`)."""

    columns: tuple[Column, ...]
    key: tuple[int, ...]
    rows: Mapping[Key, Row] = field(default_factory=dict)
    next_id: int = 1

    def key_of(self, row: Row) -> Key:
        """The key of ``row``."""
        return tuple(row[i] for i in self.key)


Tables = Mapping[str, Table]


def shape_of(schema: ModelSchema) -> tuple[tuple[Column, ...], tuple[int, ...]]:
    """The columns and key positions a model's table has."""
    columns = tuple(Column(f.column, f.storage.value, f.nullable and not f.key) for f in schema.fields)
    return columns, tuple(f.index for f in schema.key)


def table_of(tables: Tables, schema: ModelSchema) -> Table:
    """The table of ``schema``, or :class:`NoSuchTable`."""
    try:
        return tables[schema.name]
    except KeyError:
        raise NoSuchTable(f"no such table: {schema.name}") from None


def _differences(stored: Table, schema: ModelSchema) -> list[str]:
    columns, key = shape_of(schema)
    have = {c.name: c for c in stored.columns}
    want = {c.name: c for c in columns}
    problems = [f"column {name!r} is missing (the model has it)" for name in want if name not in have]
    problems += [f"column {name!r} is stored but the model has no such field" for name in have if name not in want]
    for name in want.keys() & have.keys():
        if have[name].storage != want[name].storage:
            problems.append(f"column {name!r} stores {have[name].storage}, the model wants {want[name].storage}")
        if have[name].nullable != want[name].nullable:
            nullable = {True: "NULL allowed", False: "NOT NULL"}
            problems.append(
                f"column {name!r} is {nullable[have[name].nullable]}, the model wants {nullable[want[name].nullable]}"
            )
    if not problems and (stored.columns != columns or stored.key != key):
        problems.append("the column order or the key differs from the model")
    return problems


def create_tables(tables: Tables, schemas: Sequence[ModelSchema]) -> dict[str, Table]:
    """``tables`` plus an empty table for each model that has none; existing tables must match.

    Raises:
        ShapeMismatch: a stored table differs from its model (nothing is created then).
    """
    problems = []
    for schema in schemas:
        stored = tables.get(schema.name)
        if stored is not None:
            problems += [f"table {schema.name!r}: {p}" for p in _differences(stored, schema)]
    if problems:
        raise ShapeMismatch("the stored tables differ from the models", problems)
    result = dict(tables)
    for schema in schemas:
        if schema.name not in result:
            columns, key = shape_of(schema)
            result[schema.name] = Table(columns, key)
    return result


def drop_tables(tables: Tables, schemas: Iterable[ModelSchema]) -> dict[str, Table]:
    """``tables`` without those of ``schemas`` (missing ones are fine)."""
    doomed = {schema.name for schema in schemas}
    return {name: table for name, table in tables.items() if name not in doomed}


def _check_values(schema: ModelSchema, table: Table, row: Row) -> None:
    for column, value in zip(table.columns, row, strict=True):
        if value is None and not column.nullable:
            raise MissingValue(f"{schema.name}.{column.name} may not be NULL")


def insert_rows(tables: Tables, schema: ModelSchema, rows: Sequence[Row]) -> tuple[dict[str, Table], list[Any]]:
    """Add ``rows`` to the model's table, generating the auto key where a row holds ``None``.

    Returns:
        The new tables and, when the model has a generated key, its value for every row.

    Raises:
        NoSuchTable, DuplicateKey, MissingValue: nothing was added.
    """
    table = table_of(tables, schema)
    stored = dict(table.rows)
    next_id = table.next_id
    auto = schema.auto_field
    generated: list[Any] = []
    for row in rows:
        if auto is not None:
            if row[auto.index] is None:
                row = (*row[: auto.index], next_id, *row[auto.index + 1 :])
            # An explicit key moves the counter past it, so later generated keys never clash.
            next_id = max(next_id, row[auto.index] + 1)
            generated.append(row[auto.index])
        _check_values(schema, table, row)
        key = table.key_of(row)
        if key in stored:
            raise DuplicateKey(f"duplicate key {key!r} in table {schema.name}")
        stored[key] = row
    return {**tables, schema.name: replace(table, rows=stored, next_id=next_id)}, generated


def _changed(row: Row, values: Mapping[Field, Any]) -> Row:
    cells = list(row)
    for target, value in values.items():
        cells[target.index] = value
    return tuple(cells)


def replace_rows(
    tables: Tables, schema: ModelSchema, matched: Sequence[Row], values: Mapping[Field, Any] | None
) -> dict[str, Table]:
    """Delete the ``matched`` rows (``values is None``) or set ``values`` on them.

    Raises:
        NoSuchTable, DuplicateKey, MissingValue: nothing was changed.
    """
    table = table_of(tables, schema)
    stored = dict(table.rows)
    updated = [] if values is None else [_changed(row, values) for row in matched]
    if values is not None and not any(target.key for target in values):
        # Keys stay: overwrite in place, which also keeps the rows' stored order.
        for new in updated:
            _check_values(schema, table, new)
            stored[table.key_of(new)] = new
        return {**tables, schema.name: replace(table, rows=stored)}
    for row in matched:
        del stored[table.key_of(row)]
    for new in updated:
        _check_values(schema, table, new)
        key = table.key_of(new)
        # The matched rows' old keys are gone, so this catches real clashes only.
        if key in stored:
            raise DuplicateKey(f"duplicate key {key!r} in table {schema.name}")
        stored[key] = new
    return {**tables, schema.name: replace(table, rows=stored)}
