"""The reference driver: a pure-Python, in-memory implementation of the driver contract.

It is the executable definition of what a query means. It evaluates the query
tree directly in Python with the semantics every driver must match:

* ``==``/``<``/... never match NULL; ``!=`` and ``not_in`` do match NULL;
* text compares by code point and ``contains``/``startswith``/``endswith`` are
  case-sensitive;
* ascending sorts put NULL first, descending sorts put it last;
* a condition on a related model holds when some related row (or none, as in a
  LEFT JOIN) satisfies the whole condition; a target row appears at most once.
* an update expression (``balance=Account.balance + 1``) follows
  :mod:`ommi.query.arithmetic`: exact 64-bit ints, finite IEEE floats, exact
  Decimals, NULL in gives NULL out; a row whose result is out of range fails
  the whole update, which changes no row;
* a unique constraint (``Unique``) refuses a write leaving two rows with equal
  values in all its fields, and the write changes nothing; a row with ``None``
  in any of them is never compared (SQL's rule);
* a projection (``.values``) gives the fields of each match in the order of
  ``.all``; ``.distinct()`` keeps the first of equal tuples (Python equality,
  ``None`` equal to ``None``) of the matches sorted by projected fields, then
  windows them; ``.exists`` is whether a row lies past the offset. These run
  through the contract's default :meth:`~ommi.drivers.Operations.fetch_values`
  and :meth:`~ommi.drivers.Operations.exists` over this driver's ``fetch``:
  that code is their definition. ``raw`` is absent (``raw_sql``): there is no SQL.
* a JSON path comparison is type-strict and a missing path reads as ``null``
  (:func:`ommi.query.evaluate.json_at` / ``json_compare``); stored JSON values
  are copied on every read, so a model's dict or list never aliases the store.

Transactions work on a private copy of the data and hold the database's write
lock until they end, so other tasks never see uncommitted rows. A migration
(``begin_migration``) is such a transaction, whose operations rewrite the
copied tables: rows are re-laid out field by field, values converted with
``ommi.migrations.CONVERSIONS``, constraints checked, all committed at once.
References are checked by table name, as a database does, so models of
several collections (or of a migration state) mapping one table agree. A statement
that fails inside a transaction changes nothing and leaves the transaction
usable; a ``.all`` stream of a transaction raises ``TransactionError`` when it
is read on after the transaction ended. Generated int keys continue above
every key the application chose, on insert and by ``update``.

Columns are matched by name, as SQL does: a model whose fields are a subset
of a table's columns (the previous version of a model, still running during a
rolling deploy after a migration added a field) reads, updates and deletes its
columns, and its inserts give the others their column default. Migrations keep
a field's migration default as its column default (the rule of
:mod:`ommi.sql.migrate`); a column without one gets ``None``, which a
required column refuses (``IntegrityError``).
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import itertools
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from ommi.drivers import Capabilities, Driver, DriverTransaction, Operations
from ommi.drivers.base import MigrationTransaction, TransactionOptions
from ommi.errors import (
    ConfigurationError,
    ConnectionError,
    IntegrityError,
    MigrationError,
    MigrationTimeoutError,
    OperationalError,
    SchemaMismatchError,
    TimeoutError,
    TransactionError,
)
from ommi.expressions import Arithmetic, Expr, Query
from ommi.migrations import HISTORY_TABLE, ChangeType, MigrationStep, RenameField, is_historical
from ommi.migrations.inspection import (
    InspectedColumn,
    InspectedIndex,
    InspectedTable,
    Inspection,
    build_inspection,
)
from ommi.models.constraints import StoredIndex, missing_constraints
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.query.arithmetic import compute
from ommi.query.evaluate import holds, ordered

__all__ = ["ConstraintViolation", "ReferenceDriver", "ReferenceSettings", "ReferenceStore", "evaluate", "run_query"]

Row = tuple[Any, ...]
_T = TypeVar("_T", bound="_ReferenceTransaction")

MIGRATION_LOCK_WAIT = 30.0
"""Seconds ``begin_migration`` waits for the write lock when ``apply`` gives no ``lock_timeout``."""


class _Table:
    __slots__ = ("columns", "constraints", "defaults", "next_id", "rows", "schema")

    def __init__(self, columns: tuple[tuple[str, str, bool], ...], schema: ModelSchema | None = None) -> None:
        self.columns = columns
        # The model the table was created for: deletes check the references its fields hold.
        self.schema = schema
        self.rows: dict[tuple[Any, ...], Row] = {}
        self.next_id = 1
        # Column -> its DEFAULT: what an insert of a model without that field stores there.
        self.defaults: dict[str, Any] = {}
        # Its unique constraints and indexes, as a database keeps them: (name, columns, unique).
        self.constraints: tuple[tuple[str, tuple[str, ...], bool], ...] = _constraints(schema)

    def copy(self) -> _Table:
        table = _Table(self.columns, self.schema)
        table.rows = dict(self.rows)
        table.next_id = self.next_id
        table.defaults = self.defaults
        table.constraints = self.constraints
        return table

    def check_unique(self, rows: Iterable[Row]) -> None:
        """Refuse rows (laid out as this table stores them) that collide in a unique constraint; NULL never collides."""
        names = [column[0] for column in self.columns]
        for name, columns, unique in self.constraints:
            if not unique:
                continue
            positions = [names.index(column) for column in columns]
            seen: set[tuple[Any, ...]] = set()
            for row in rows:
                values = tuple(row[i] for i in positions)
                if None in values:
                    continue
                if values in seen:
                    raise ConstraintViolation(
                        f"duplicate value {values!r} for the unique constraint {name} on ({', '.join(columns)})"
                    )
                seen.add(values)

    def positions(self, schema: ModelSchema) -> list[int] | None:
        """Where each field of ``schema`` sits in this table's rows; ``None`` when the rows are laid out as ``schema``.

        Raises:
            OperationalError: ``schema`` has a field the table has no column for.
        """
        names = [column[0] for column in self.columns]
        wanted = [f.column for f in schema.fields]
        if names == wanted:
            return None
        missing = [column for column in wanted if column not in names]
        if missing:
            raise OperationalError(f"table {schema.name} has no column named {missing[0]}")
        return [names.index(column) for column in wanted]

    def view(self, schema: ModelSchema) -> Iterable[Row]:
        """The rows as ``schema`` reads them (its fields, by column name)."""
        positions = self.positions(schema)
        if positions is None:
            return self.rows.values()
        return [tuple(row[i] for i in positions) for row in self.rows.values()]

    def stored(self, schema: ModelSchema, row: Row) -> Row:
        """``row`` of ``schema`` as this table stores it: its other columns get their default (or ``None``)."""
        if self.positions(schema) is None:
            return row
        given = {f.column: row[f.index] for f in schema.fields}
        return tuple(given[c[0]] if c[0] in given else self.defaults.get(c[0]) for c in self.columns)


_Tables = dict[str, _Table]


def _constraints(schema: ModelSchema | None) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    """The unique constraints and indexes a table made for ``schema`` has."""
    return () if schema is None else tuple((c.name, c.columns, c.unique) for c in schema.constraints)


def _missing_constraints(table: _Table, schema: ModelSchema) -> list[str]:
    """The drift of a stored table's indexes: the model's constraints that none of them provides."""
    stored = [StoredIndex(columns, unique) for _, columns, unique in table.constraints]
    return missing_constraints(schema.constraints, stored)


def _signature(schema: ModelSchema) -> tuple[tuple[str, str, bool], ...]:
    return tuple((f.column, f.storage.value, f.nullable and not f.key) for f in schema.fields)


def _key(schema: ModelSchema, row: Row) -> tuple[Any, ...]:
    return tuple(row[f.index] for f in schema.key)


def _names(fields: Sequence[Field]) -> str:
    return "(" + ", ".join(f.column for f in fields) + ")"


def _is_single_key(field: Field) -> bool:
    """Whether ``field`` is the single key of its model (fields compare by identity: ``==`` builds a condition)."""
    key = field.schema.key
    return len(key) == 1 and key[0] is field


def _references(field: Field, schema: ModelSchema) -> bool:
    """Whether ``field`` holds keys of ``schema``'s table: by table and column, as a database sees it."""
    target = field.reference
    return (
        target is not None
        and target.schema.name == schema.name
        and len(schema.key) == 1
        and target.column == schema.key[0].column
    )


def evaluate(expr: Expr, env: Mapping[int, Row | None]) -> bool:
    """Whether ``expr`` holds for the rows in ``env`` (schema id -> row, None when absent)."""

    def value_of(field: Field) -> Any:
        row = env[id(field.schema)]
        return None if row is None else row[field.index]

    return holds(expr, value_of)


def _matches(query: Query, tables: _Tables, row: Row) -> bool:
    if query.where is None:
        return True
    env: dict[int, Row | None] = {id(query.model): row}
    if not query.joins:
        return evaluate(query.where, env)
    candidates: list[list[Row | None]] = []
    for join in query.joins:
        table = tables.get(join.model.name)
        related: list[Row | None] = [
            other
            for other in (table.view(join.model) if table else ())
            if all(
                other[theirs.index] is not None and other[theirs.index] == row[mine.index]
                for mine, theirs in join.pairs
            )
        ]
        candidates.append(related or [None])
    for combination in itertools.product(*candidates):
        for join, other in zip(query.joins, combination, strict=True):
            env[id(join.model)] = other
        if evaluate(query.where, env):
            return True
    return False


def run_query(query: Query, tables: _Tables) -> list[Row]:
    """Every matching row, sorted and windowed."""
    table = _table(tables, query.model)
    rows = [row for row in table.view(query.model) if _matches(query, tables, row)]
    rows = ordered(rows, query.sort, lambda row, field: row[field.index])
    end = None if query.limit is None else query.offset + query.limit
    return rows[query.offset : end]


def _detached(schema: ModelSchema, rows: list[Row]) -> list[Row]:
    """``rows`` with their JSON values copied, as a database hands out fresh values on every read."""
    positions = [f.index for f in schema.fields if f.storage is StorageType.JSON]
    if not positions:
        return rows
    copied = []
    for row in rows:
        values = list(row)
        for i in positions:
            if values[i] is not None:
                values[i] = copy.deepcopy(values[i])
        copied.append(tuple(values))
    return copied


def _table(tables: _Tables, schema: ModelSchema) -> _Table:
    table = tables.get(schema.name)
    if table is None:
        raise OperationalError(f"no such table: {schema.name} (run db.use_models() or allow implicit setup)")
    return table


def _row_value(schema: ModelSchema, row: Row, target: Field, value: Any) -> Any:
    """What ``value`` (a literal, a field to copy or an update expression) gives ``target`` in ``row``.

    Every value is computed from the row as it was before the update (as SQL
    does); fields are found by column, so a model with fewer fields than the
    table reads the stored row.
    """

    def value_of(field: Field) -> Any:
        return row[schema.by_column[field.column].index]

    if isinstance(value, Field):
        return value_of(value)
    if isinstance(value, Arithmetic):
        return compute(target, value, value_of)
    return value


class ConstraintViolation(Exception):
    """The reference engine's own error for a broken constraint (duplicate key, NULL, dangling reference).

    It plays the part of a client library's exception: the driver translates it
    into :class:`ommi.errors.IntegrityError` in one place (:func:`_run`), chained,
    as every real driver must.
    """


def _run(action: Callable[[_Tables], Any], tables: _Tables) -> Any:
    try:
        return action(tables)
    except ConstraintViolation as exc:
        raise IntegrityError(str(exc)) from exc


class _Store(Operations):
    """Operations over a set of tables (the database's or a transaction's copy)."""

    batch_delay: float = 0.0

    def _tables(self) -> _Tables:
        raise NotImplementedError

    async def _write(self, action: Callable[[_Tables], Any]) -> Any:
        raise NotImplementedError

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        def action(tables: _Tables, schema: ModelSchema = schema, rows: Sequence[Row] = rows) -> Sequence[Any] | None:
            table = _table(tables, schema)
            if table.schema is not None and table.positions(schema) is not None:
                # A model with fewer fields than the table (an older version): stored as the table's.
                rows = [table.stored(schema, row) for row in rows]
                schema = table.schema
            staged = dict(table.rows)
            next_id = table.next_id
            keys: list[Any] = []
            auto = schema.auto_field
            for row in rows:
                if auto is not None:
                    if row[auto.index] is None:
                        row = (*row[: auto.index], next_id, *row[auto.index + 1 :])
                    next_id = max(next_id, row[auto.index] + 1)
                    keys.append(row[auto.index])
                self._check_row(schema, row, tables)
                key = _key(schema, row)
                if key in staged:
                    raise ConstraintViolation(f"duplicate key {key!r} in {schema.name}")
                staged[key] = row
            self._check_self_references(schema, staged.values(), staged)
            table.check_unique(staged.values())
            table.rows, table.next_id = staged, next_id
            return keys if auto is not None else None

        result: Sequence[Any] | None = await self._write(action)
        return result

    async def upsert(self, schema: ModelSchema, rows: Sequence[Row], on: Sequence[Field]) -> Sequence[Any] | None:
        """The definition of ``upsert``: rows written one after the other, each checked as it is written.

        A row matches the stored row with equal values in every field of ``on``
        (never when one of them is ``None``); matched, it replaces the stored
        row's non-key fields (through a model with fewer fields than the
        table, only its own columns) and keeps the stored key, which it must
        hold itself unless its generated key is ``None``. Unmatched, it is
        inserted as ``insert`` would. The unique constraints and references
        are checked after each row; any failure writes nothing of the call.
        """

        def action(tables: _Tables) -> Sequence[Any] | None:
            table = _table(tables, schema)
            model, given_rows, target = schema, list(rows), list(on)
            if table.schema is not None and table.positions(schema) is not None:
                # A model with fewer fields than the table (an older version): its columns, in the table's layout.
                model = table.schema
                given_rows = [table.stored(schema, row) for row in given_rows]
                target = [model.by_column[f.column] for f in on]
            own = {model.by_column[f.column].index for f in schema.fields}
            by_key = [id(f) for f in target] == [id(f) for f in model.key]
            auto = model.auto_field
            staged = dict(table.rows)
            next_id = table.next_id
            keys: list[Any] = []
            for row in given_rows:
                matched: Row | None = None
                if by_key:
                    key = _key(model, row)
                    matched = None if None in key else staged.get(key)
                else:
                    values = tuple(row[f.index] for f in target)
                    if None not in values:
                        matched = next(
                            (old for old in staged.values() if tuple(old[f.index] for f in target) == values), None
                        )
                if matched is not None:
                    stored_key = _key(model, matched)
                    if auto is not None and row[auto.index] is None:
                        row = (*row[: auto.index], matched[auto.index], *row[auto.index + 1 :])
                    if _key(model, row) != stored_key:
                        raise ConstraintViolation(
                            f"the {model.name} row with {_names(target)} = "
                            f"{tuple(row[f.index] for f in target)!r} is stored under the key {stored_key!r}, "
                            f"not {_key(model, row)!r}"
                        )
                    row = tuple(
                        value if index in own and not field.key else matched[index]
                        for index, (value, field) in enumerate(zip(row, model.fields, strict=True))
                    )
                elif auto is not None:
                    if row[auto.index] is None:
                        row = (*row[: auto.index], next_id, *row[auto.index + 1 :])
                    next_id = max(next_id, row[auto.index] + 1)
                self._check_row(model, row, tables)
                key = _key(model, row)
                if matched is None and key in staged:
                    raise ConstraintViolation(f"duplicate key {key!r} in {model.name}")
                staged[key] = row
                # Checked row by row, as a database checks its unique indexes while it writes.
                table.check_unique(staged.values())
                if auto is not None:
                    keys.append(row[auto.index])
            self._check_self_references(model, staged.values(), staged)
            table.rows, table.next_id = staged, next_id
            return keys if auto is not None else None

        result: Sequence[Any] | None = await self._write(action)
        return result

    @staticmethod
    def _check_row(schema: ModelSchema, row: Row, tables: _Tables) -> None:
        for f in schema.fields:
            value = row[f.index]
            if value is None and (f.key or not f.nullable):
                raise ConstraintViolation(f"{schema.name}.{f.column} cannot be NULL")
            target = f.reference
            if value is not None and target is not None and _is_single_key(target):
                referenced = tables.get(target.schema.name)
                if referenced is not None and (value,) not in referenced.rows and target.schema.name != schema.name:
                    raise ConstraintViolation(
                        f"{schema.name}.{f.column} = {value!r} references a missing {target.schema.name} row"
                    )

    @staticmethod
    def _check_self_references(schema: ModelSchema, rows: Iterable[Row], by_key: Mapping[tuple[Any, ...], Row]) -> None:
        """Self-references (a row naming another row of its own table) must name a stored row."""
        for f in schema.fields:
            target = f.reference
            if target is None or not _is_single_key(target) or not _references(f, schema):
                continue
            for row in rows:
                value = row[f.index]
                if value is not None and (value,) not in by_key:
                    raise ConstraintViolation(
                        f"{schema.name}.{f.column} = {value!r} references a missing {schema.name} row"
                    )

    @staticmethod
    def _check_unreferenced(schema: ModelSchema, keys: list[tuple[Any, ...]], tables: _Tables) -> None:
        if len(schema.key) != 1 or not keys:
            return
        removed = {k[0] for k in keys}
        # Every table, whatever collection its model belongs to, may hold references.
        for table in tables.values():
            other = table.schema
            if other is None:
                continue
            for f in other.fields:
                if _references(f, schema):
                    for row in table.rows.values():
                        if row[f.index] in removed and not (other.name == schema.name and _key(other, row) in keys):
                            raise ConstraintViolation(
                                f"{schema.name} rows are still referenced by {other.name}.{f.column}"
                            )

    async def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        rows = _detached(query.model, run_query(query, self._tables()))
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]
            await asyncio.sleep(self.batch_delay)

    async def count(self, query: Query) -> int:
        return len(run_query(query, self._tables()))

    async def delete(self, query: Query) -> int:
        def action(tables: _Tables) -> int:
            table = _table(tables, query.model)
            doomed = [_key(query.model, row) for row in run_query(query, tables)]
            self._check_unreferenced(query.model, doomed, tables)
            for key in doomed:
                del table.rows[key]
            return len(doomed)

        result: int = await self._write(action)
        return result

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        def action(tables: _Tables, values: Mapping[Field, Any] = values) -> int:
            table = _table(tables, query.model)
            matched = run_query(query, tables)
            schema = query.model
            if table.schema is not None and table.positions(schema) is not None:
                # Through a model with fewer fields than the table: the stored rows change, by column.
                matched = [table.rows[_key(schema, row)] for row in matched]
                schema = table.schema
                values = {schema.by_column[f.column]: value for f, value in values.items()}
            staged = dict(table.rows)
            for row in matched:
                del staged[_key(schema, row)]
            changed_keys = any(f.key for f in values)
            if changed_keys:
                self._check_unreferenced(schema, [_key(schema, r) for r in matched], tables)
            computed = any(isinstance(value, (Field, Arithmetic)) for value in values.values())
            for row in matched:
                new = list(row)
                for f, value in values.items():
                    new[f.index] = _row_value(schema, row, f, value) if computed else value
                updated = tuple(new)
                self._check_row(schema, updated, tables)
                key = _key(schema, updated)
                if key in staged:
                    raise ConstraintViolation(f"duplicate key {key!r} in {schema.name}")
                staged[key] = updated
            self._check_self_references(schema, staged.values(), staged)
            table.check_unique(staged.values())
            if changed_keys:
                table.rows = staged
                # A key set by update is taken: generated keys continue above it, as after an explicit insert.
                auto = schema.auto_field
                chosen = [value for f, value in values.items() if f is auto]
                if chosen and matched and chosen[0] is not None:
                    table.next_id = max(table.next_id, chosen[0] + 1)
            else:
                for row in matched:
                    key = _key(schema, row)
                    table.rows[key] = staged[key]
            return len(matched)

        result: int = await self._write(action)
        return result


class _ReferenceTransaction(_Store, DriverTransaction):
    def __init__(self, driver: ReferenceDriver) -> None:
        self._driver = driver
        self._copy = {name: table.copy() for name, table in driver._data.items()}
        self._open = True
        self._abandoned = False
        # Savepoint name -> the tables as they were when it was made (insertion order: oldest first).
        self._savepoints: dict[str, _Tables] = {}

    def _tables(self) -> _Tables:
        if self._abandoned:
            raise ConnectionError("the reference driver was closed; the transaction was rolled back")
        if not self._open:
            raise TransactionError("the transaction has ended")
        return self._copy

    def _abandon(self) -> None:
        """The driver closed: roll back, like a server whose client disconnected (releases the write lock)."""
        if self._open:
            self._open = False
            self._abandoned = True
            self._driver._lock_release()

    async def _write(self, action: Callable[[_Tables], Any]) -> Any:
        return _run(action, self._tables())

    async def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        # A stream reads through its transaction: once that has ended, the next batch is a TransactionError.
        rows = _detached(query.model, run_query(query, self._tables()))
        for start in range(0, len(rows), batch_size):
            self._tables()
            yield rows[start : start + batch_size]
            await asyncio.sleep(self.batch_delay)

    async def savepoint(self, name: str) -> None:
        """Remember a copy of the transaction's tables under ``name``."""
        tables = self._tables()
        self._savepoints.pop(name, None)
        self._savepoints[name] = {table_name: table.copy() for table_name, table in tables.items()}

    def _made_since(self, name: str) -> list[str]:
        """``name`` and the savepoints made after it (raises when there is no such savepoint)."""
        self._tables()
        names = list(self._savepoints)
        if name not in self._savepoints:
            raise TransactionError(f"no savepoint {name!r} in this transaction")
        return names[names.index(name) :]

    async def release_savepoint(self, name: str) -> None:
        for made in self._made_since(name):
            del self._savepoints[made]

    async def rollback_to_savepoint(self, name: str) -> None:
        self._copy = self._savepoints[self._made_since(name)[0]]
        await self.release_savepoint(name)

    async def commit(self) -> None:
        self._driver._data = self._tables()
        self._open = False
        self._driver._transactions.discard(self)
        self._driver._lock_release()

    async def rollback(self) -> None:
        if self._open:
            self._open = False
            self._driver._transactions.discard(self)
            self._driver._lock_release()


def _migrate(tables: _Tables, step: MigrationStep) -> None:
    """Apply one migration operation to ``tables`` (a transaction's copy); every table then follows ``step.after``."""
    operation = step.operation
    name = operation.model
    if operation.kind == "create_model":
        schema = step.after.schema(name)
        existing = tables.get(name)
        if existing is None:
            tables[name] = _Table(_signature(schema), schema)
        elif sorted(existing.columns) == sorted(_signature(schema)):
            # Made by use_models before the first migration, as the model says: adopted with its rows.
            position = {column[0]: index for index, column in enumerate(existing.columns)}
            _relayout(existing, schema, {f.column: _column(position[f.column]) for f in schema.fields}, tables)
        else:
            raise MigrationError(
                f"{operation.describe()} (migration {step.migration}): the table exists already with other "
                f"fields ({', '.join(c[0] for c in existing.columns)}); make it match the model, or drop it"
            )
    elif operation.kind == "drop_model":
        if tables.pop(name, None) is None:
            raise OperationalError(f"no such table: {name}")
    elif operation.kind in ("add_index", "remove_index", "add_unique", "remove_unique"):
        indexed = tables.get(name)
        if indexed is None:
            raise OperationalError(f"no such table: {name}")
        indexed.constraints = _constraints(step.after.schema(name))
        # Stored rows that collide fail a new unique constraint (an IntegrityError): the migration commits nothing.
        _run(lambda _tables: indexed.check_unique(indexed.rows.values()), tables)
    elif operation.kind in ("add_field", "remove_field", "rename_field", "change_type", "set_default"):
        table = tables.get(name)
        if table is None:
            raise OperationalError(f"no such table: {name}")
        _relayout(table, step.after.schema(name), _sources(table, step), tables)
    else:
        raise MigrationError(f"{operation.describe()}: the reference driver does not know {type(operation).__name__}")
    for table_name, table in tables.items():
        if table_name in step.after:
            table.schema = step.after.schema(table_name)
    if name in step.after and name in tables:
        # The column DEFAULT rule: a field's migration default is what inserts without the field store.
        fields = step.after.model(name).fields
        tables[name].defaults = {spec.name: spec.default for spec in fields if spec.default is not None}


def _sources(table: _Table, step: MigrationStep) -> dict[str, Callable[[Row], Any]]:
    """Each column of the model after ``step``: its value, read from a row as the table stores it now."""
    position = {column[0]: index for index, column in enumerate(table.columns)}
    after = step.after.schema(step.operation.model)
    operation = step.operation
    renamed = {operation.new: operation.old} if isinstance(operation, RenameField) else {}
    sources: dict[str, Callable[[Row], Any]] = {}
    for f in after.fields:
        stored = renamed.get(f.column, f.column)
        if stored not in position:
            spec = step.after.model(operation.model).field(f.column)
            default = spec.default if spec is not None else None
            sources[f.column] = _constant(default)
            continue
        index = position[stored]
        if isinstance(operation, ChangeType) and f.column == operation.new.name:
            conversion = operation.conversion
            convert = conversion.convert if conversion is not None else None
            fill = operation.new.default

            def changed(row: Row, _i: int = index, _convert: Any = convert, _fill: Any = fill) -> Any:
                value = row[_i]
                if value is None:
                    return _fill
                return _convert(value) if _convert is not None else value

            sources[f.column] = changed
        else:
            sources[f.column] = _column(index)
    return sources


def _constant(value: Any) -> Callable[[Row], Any]:
    return lambda row: value


def _column(index: int) -> Callable[[Row], Any]:
    return lambda row: row[index]


def _relayout(table: _Table, schema: ModelSchema, sources: Mapping[str, Callable[[Row], Any]], tables: _Tables) -> None:
    """Rewrite every row of ``table`` in ``schema``'s field order, checking NULLs, keys and references."""

    def action(tables: _Tables) -> None:
        rows: dict[tuple[Any, ...], Row] = {}
        for old in table.rows.values():
            row = tuple(sources[f.column](old) for f in schema.fields)
            _Store._check_row(schema, row, tables)
            key = _key(schema, row)
            if key in rows:
                raise ConstraintViolation(f"duplicate key {key!r} in {schema.name}")
            rows[key] = row
        _Store._check_self_references(schema, rows.values(), rows)
        table.rows, table.columns, table.schema = rows, _signature(schema), schema
        table.constraints = _constraints(schema)
        table.check_unique(rows.values())

    _run(action, tables)


class _ReferenceMigration(_ReferenceTransaction, MigrationTransaction):
    """A transaction whose operations also rewrite the copied tables; committed (or not) as a whole."""

    async def apply_operation(self, step: MigrationStep) -> None:
        _migrate(self._tables(), step)


class ReferenceStore:
    """The data of one in-memory database.

    Each :class:`ReferenceDriver` gets a store of its own unless one is passed
    (``ReferenceDriver.connect(store=store)``): drivers sharing a store see the
    same database, like two connections to one server (the testkit's
    ``second_db`` fixture needs that).
    """

    __slots__ = ("lock", "tables")

    def __init__(self) -> None:
        self.tables: _Tables = {}
        self.lock: asyncio.Lock | None = None


@dataclass(frozen=True, slots=True)
class ReferenceSettings:
    """The reference driver's settings (its ``driver.settings``)."""

    batch_size: int = 100
    """Rows per batch for ``.all`` when a query does not set one."""

    lock_timeout: float | None = None
    """Seconds a transaction (or a write) waits for the write lock; ``None``: as long as it takes."""

    statement_timeout: float | None = None
    """Accepted and kept, never reached: a statement in memory runs to its end at once, with no I/O to wait for."""


class ReferenceDriver(_Store, Driver[ReferenceSettings]):
    """The in-memory reference driver (``reference://``).

    Every instance is its own database unless several are given one
    :class:`ReferenceStore`.
    """

    name = "reference"
    capabilities = Capabilities(
        migrations=True,
        inspection=True,
        constraints=True,
        savepoints=True,
        isolation_levels=True,
        row_locks=True,
        timeouts=True,
        update_expressions=True,
        upsert=True,
        case_insensitive_text=True,
        json_fields=True,
    )
    # A transaction holds the write lock from begin to end and reads its own copy: serializable,
    # which satisfies every level (nothing interleaves with it, so it never fails to serialize).
    supported_isolation_levels = frozenset({"read_committed", "repeatable_read", "serializable"})
    default_batch_size = 100

    def __init__(
        self,
        batch_size: int = 100,
        *,
        store: ReferenceStore | None = None,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        for name, value in (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout)):
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
            if value is not None and not valid:
                raise ConfigurationError(f"reference driver setting {name} must be seconds above 0, not {value!r}")
        self.settings = ReferenceSettings(batch_size, lock_timeout, statement_timeout)
        self._store = store if store is not None else ReferenceStore()
        self.default_batch_size = batch_size
        # This driver's open transactions, rolled back by close(); a closed driver refuses work until open().
        self._transactions: set[_ReferenceTransaction] = set()
        self._closed = False

    # The tables and the write lock live in the (possibly shared) store.
    @property
    def _data(self) -> _Tables:
        return self._store.tables

    @_data.setter
    def _data(self, tables: _Tables) -> None:
        self._store.tables = tables

    @property
    def _lock(self) -> asyncio.Lock | None:
        return self._store.lock

    @_lock.setter
    def _lock(self, lock: asyncio.Lock | None) -> None:
        self._store.lock = lock

    @classmethod
    def connect(cls, settings: str | Mapping[str, Any] | None = None, /, **options: Any) -> Self:
        values: dict[str, Any] = {}
        if isinstance(settings, Mapping):
            values.update(settings)
        elif isinstance(settings, str) and settings.split("://", 1)[0] not in ("reference", ""):
            raise ConfigurationError(f"the reference driver takes reference:// URLs, not {settings!r}")
        values.update(options)
        unknown = set(values) - {"batch_size", "store", "lock_timeout", "statement_timeout"}
        if unknown:
            raise ConfigurationError(f"unknown reference driver settings: {sorted(unknown)}")
        return cls(**values)

    @property
    def description(self) -> str:
        return "reference (in memory)"

    async def open(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._closed = False

    async def close(self) -> None:
        """Roll back this driver's open transactions and refuse work until :meth:`open`; the data stays in the store."""
        self._closed = True
        transactions, self._transactions = self._transactions, set()
        for transaction in transactions:
            transaction._abandon()

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionError("the reference driver is closed; open it again first")

    def _tables(self) -> _Tables:
        self._check_open()
        return self._data

    async def _write(self, action: Callable[[_Tables], Any]) -> Any:
        self._check_open()
        assert self._lock is not None, "the driver is not open"
        await self._wait_for_lock(self.settings.lock_timeout, "lock_timeout")
        try:
            self._check_open()
            # Work on copies so a failing statement changes nothing.
            staged = {name: table.copy() for name, table in self._data.items()}
            result = _run(action, staged)
            self._data = staged
            return result
        finally:
            self._lock.release()

    async def _wait_for_lock(self, timeout: float | None, setting: str) -> None:
        """Take the write lock, waiting at most ``timeout`` seconds (``None``: as long as it takes).

        Raises:
            TimeoutError: naming ``setting`` and its value, when another transaction held it that long.
        """
        assert self._lock is not None, "the driver is not open"
        if timeout is None:
            await self._lock.acquire()
            return
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)  # cancelled by the timeout: not taken
        except builtins.TimeoutError:  # asyncio's
            raise TimeoutError(
                f"{setting}={timeout:g}s exceeded: the reference driver waited that long for its write lock, "
                "which another transaction held the whole time"
            ) from None

    def _lock_release(self) -> None:
        assert self._lock is not None
        self._lock.release()

    async def begin(self, options: TransactionOptions | None = None) -> DriverTransaction:
        """A transaction holding the write lock until it ends (transactions take turns, as on SQLite).

        ``options.lock_timeout`` bounds the wait for the lock (instead of the
        ``lock_timeout`` setting); ``options.statement_timeout`` is accepted and
        never reached (see :attr:`ReferenceSettings.statement_timeout`).
        """
        lock_timeout = options.lock_timeout if options is not None else None
        if lock_timeout is None:
            lock_timeout = self.settings.lock_timeout
        return await self._begin(_ReferenceTransaction, lock_timeout)

    async def begin_migration(self, *, lock_timeout: float | None = None) -> MigrationTransaction:
        """A transaction holding the write lock (the migration lock); its operations rewrite its copy of the tables.

        Waits at most ``lock_timeout`` (default :data:`MIGRATION_LOCK_WAIT`) for the lock.
        """
        wait = MIGRATION_LOCK_WAIT if lock_timeout is None else lock_timeout
        try:
            return await asyncio.wait_for(self._begin(_ReferenceMigration), wait)
        except builtins.TimeoutError:  # asyncio's (MigrationTimeoutError is not raised inside)
            raise MigrationTimeoutError(
                f"the reference driver: waited lock_timeout={wait} s for the migration lock (its write lock), "
                "held by another transaction or migration; nothing was applied"
            ) from None

    def migration_statements(self, step: MigrationStep) -> list[str]:
        return [f"-- reference: {step.operation.describe()}"]

    async def _begin(self, kind: type[_T], lock_timeout: float | None = None) -> _T:
        self._check_open()
        await self._wait_for_lock(lock_timeout, "lock_timeout")  # cancelled (wait_for's timeout): not taken
        if self._closed:
            self._lock_release()
            self._check_open()
        transaction = kind(self)
        self._transactions.add(transaction)
        return transaction

    async def inspect_schema(self) -> Inspection:
        """The stored tables as models: columns and indexes as stored, keys and references from each table's model."""
        tables = []
        for name, table in sorted(self._data.items()):
            schema = table.schema
            if schema is None or name.casefold() == HISTORY_TABLE:
                continue
            by_column = schema.by_column
            positions = {f.column: index for index, f in enumerate(schema.key, start=1)}
            columns = []
            for column, storage, nullable in table.columns:
                f = by_column.get(column)
                target = f.reference if f is not None else None
                columns.append(
                    InspectedColumn(
                        column,
                        storage,
                        StorageType(storage),
                        nullable=nullable,
                        key=positions.get(column, 0),
                        generated=f is not None and f is schema.auto_field,
                        reference=None if target is None else target.schema.name,
                        reference_column=None if target is None else target.column,
                    )
                )
            indexes = [InspectedIndex(n, cols, unique) for n, cols, unique in table.constraints]
            tables.append(InspectedTable(name, columns, indexes=indexes))
        return build_inspection("the reference driver's in-memory store", tables)

    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        problems = []
        relayout = []
        for schema in schemas:
            table = self._data.get(schema.name)
            historical = table is not None and table.schema is not None and is_historical(table.schema)
            missing = [] if table is None else _missing_constraints(table, schema)
            if missing:
                problems.append(f"table {schema.name}: " + "; ".join(missing))
                continue
            if historical and table is not None and sorted(table.columns) == sorted(_signature(schema)):
                # Made by migrations: its fields may be stored in another order than the model's.
                relayout.append(schema)
                continue
            if table is not None and table.columns != _signature(schema):
                stored = {c[0]: c for c in table.columns}
                wanted = {c[0]: c for c in _signature(schema)}
                diffs = [f"missing column {c}" for c in wanted if c not in stored]
                diffs += [f"unexpected column {c}" for c in stored if c not in wanted]
                diffs += [
                    f"column {c} is {stored[c][1:]} but the model wants {wanted[c][1:]}"
                    for c in wanted
                    if c in stored and stored[c] != wanted[c]
                ]
                problems.append(f"table {schema.name}: " + "; ".join(diffs))
        if problems:
            raise SchemaMismatchError(
                "stored schema differs from the models: " + " | ".join(problems) + ". Write a migration for the "
                "change and apply it: `ommi migrate make --models MODULE` then `ommi migrate apply --url URL` "
                "(or drop the tables with db.remove_models() when their rows can go)"
            )
        if relayout:

            def adopt(tables: _Tables) -> None:
                for schema in relayout:
                    table = tables[schema.name]
                    position = {column[0]: index for index, column in enumerate(table.columns)}
                    sources = {f.column: _column(position[f.column]) for f in schema.fields}
                    _relayout(table, schema, sources, tables)

            await self._write(adopt)
        for schema in schemas:
            self._data.setdefault(schema.name, _Table(_signature(schema), schema))

    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        for schema in schemas:
            self._data.pop(schema.name, None)
