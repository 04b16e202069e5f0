"""The data operations: SQLite's connection layer under :class:`ommi.sql.SQLOperations`, and its inserts.

:class:`SQLiteOperations` runs statements on a :class:`~ommi_sqlite._pool.Link`
and streams through a :class:`~ommi_sqlite._pool.Channel`; where they come from
(:meth:`~ommi.sql.SQLOperations._connection`, ``_atomic`` and
:meth:`~SQLiteOperations._channel`) the driver answers from its pool and a
transaction with its own connection, one task at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from itertools import chain
from typing import Any

from ommi.drivers import Row
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.sql import Compiled, SQLCompiler, SQLOperations

from ommi_sqlite._dialect import DECIMAL_COLLATION, SQLiteDialect
from ommi_sqlite._pool import Channel, Link, Stream, variable_limit

__all__ = ["SQLCore", "SQLiteCompiler", "SQLiteOperations", "collated_by_value", "undo_savepoint"]

_MAX_INSERT_ROWS = 256
"""Rows per multi-row INSERT; larger adds are split (inside a savepoint)."""


def _chunk_sizes(total: int, largest: int) -> list[int]:
    """Split ``total`` rows into statements of power-of-two sizes up to ``largest``.

    Powers of two keep the number of distinct INSERT texts per model small, so
    they all stay in the statement cache.
    """
    sizes = [largest] * (total // largest)
    rest = total % largest
    size = largest
    while rest:
        while size > rest:
            size //= 2
        sizes.append(size)
        rest -= size
    return sizes


def collated_by_value(field: Field) -> bool:
    """Whether ``field``'s column is declared with the exact ``Decimal`` collation.

    Keys, so that the primary key is unique by value (``1.0`` and ``1.00`` are
    one key) and key lookups use its index; and references, so that the
    index of a referencing column serves the foreign key's checks.
    """
    return field.storage is StorageType.DECIMAL and (field.key or field.reference is not None)


class SQLiteCompiler(SQLCompiler):
    """The SQL compiler, with ``Decimal`` key and reference columns collated by value."""

    def column_type(self, field: Field) -> str:
        kind = super().column_type(field)
        return f"{kind} COLLATE {DECIMAL_COLLATION}" if collated_by_value(field) else kind


class SQLCore:
    """What the driver and its transactions share: the compiler and per-model caches."""

    def __init__(self) -> None:
        self.dialect = SQLiteDialect()
        self.compiler = SQLiteCompiler(self.dialect)
        # Keyed by the schema object, weakly: an id() may be reused by a later
        # model once a model is collected, and would serve it the old SQL.
        self._insert_sql: weakref.WeakKeyDictionary[ModelSchema, dict[tuple[int, bool], str]] = (
            weakref.WeakKeyDictionary()
        )

    def insert_sql(self, schema: ModelSchema, rows: int, *, returning: bool) -> str:
        """The INSERT of ``rows`` rows of every field, returning the generated key if asked."""
        by_shape = self._insert_sql.setdefault(schema, {})
        sql = by_shape.get((rows, returning))
        if sql is None:
            sql = self.compiler.insert(schema, schema.fields, rows=rows)
            auto = schema.auto_field
            if returning and auto is not None:
                # CAST: SQLite 3.40 hands back RETURNING of a rowid alias with the
                # affinity of the table's first column (1.0 when that one is REAL);
                # the cast makes the generated key an exact int whatever the table.
                sql += f" RETURNING CAST({self.dialect.quote(auto.column)} AS INTEGER)"
            by_shape[rows, returning] = sql
        return sql

    def max_insert_rows(self, schema: ModelSchema) -> int:
        """The largest power of two of rows one INSERT may carry for ``schema``."""
        fit = max(1, min(_MAX_INSERT_ROWS, variable_limit() // max(1, len(schema.fields))))
        return 1 << (fit.bit_length() - 1)

    async def insert(self, link: Link, schema: ModelSchema, rows: Sequence[Row]) -> list[Any] | None:
        """Insert ``rows`` on ``link`` (which the caller holds for writing); all or none.

        Multi-row INSERTs of up to :meth:`max_insert_rows` rows; ``RETURNING``
        only when some row leaves its generated key to the database.
        """
        auto = schema.auto_field
        given = [row[auto.index] for row in rows] if auto is not None else []
        returning = None in given
        convert = self.compiler.params_converter(schema)
        params_rows = rows if convert is None else convert(rows)
        sizes = _chunk_sizes(len(rows), self.max_insert_rows(schema))
        keys: list[Any] = []
        several = len(sizes) > 1
        try:
            if several:
                # One savepoint around the statements: all rows or none, inside a
                # transaction as well as outside one. Inside the try: a task
                # cancelled while it runs must still undo it, or the writer would
                # stay in a transaction that swallows every later write.
                await link.execute('SAVEPOINT "ommi_insert"')
            start = 0
            for size in sizes:
                sql = self.insert_sql(schema, size, returning=returning)
                params = list(chain.from_iterable(params_rows[start : start + size]))
                if returning:
                    returned = await link.fetchall(sql, params)
                    keys.extend(_match_keys(given[start : start + size], [r[0] for r in returned]))
                else:
                    await link.execute(sql, params)
                start += size
            if several:
                await link.execute('RELEASE "ommi_insert"')
        except BaseException:
            if several:
                await asyncio.shield(undo_savepoint(link))
            raise
        if auto is None:
            return None
        return keys if returning else given


async def undo_savepoint(link: Link, name: str = '"ommi_insert"') -> None:
    """Roll back to the savepoint ``name`` (quoted) and release it; never raises."""
    with contextlib.suppress(Exception):
        await link.execute(f"ROLLBACK TO {name}")
        await link.execute(f"RELEASE {name}")


def _match_keys(given: list[Any], returned: list[Any]) -> list[Any]:
    """Each row's key: the given one, or the generated one in row order.

    SQLite does not promise RETURNING rows in insertion order, but it does hand
    out AUTOINCREMENT keys in increasing order within a statement; so the
    generated keys, sorted, belong to the rows without a key, in row order.
    """
    remaining = Counter(returned)
    remaining.subtract(key for key in given if key is not None)
    generated = iter(sorted(remaining.elements()))
    return [key if key is not None else next(generated) for key in given]


class SQLiteOperations(SQLOperations[Link]):
    """SQLite's connection layer: statements on a :class:`Link`, streams through a :class:`Channel`."""

    _core: SQLCore

    @property
    def compiler(self) -> SQLCompiler:
        return self._core.compiler

    def _channel(self) -> contextlib.AbstractAsyncContextManager[Channel]:
        """Where a streaming read runs (a reader of its own, or a shared connection behind a gate)."""
        raise NotImplementedError

    async def _execute(self, conn: Link, sql: str, params: list[Any]) -> int:
        return await conn.execute(sql, params)

    async def _fetch_all(self, conn: Link, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return await conn.fetchall(sql, params)

    async def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Any], None]:
        async with self._channel() as channel:
            batches = Stream(channel).batches(compiled.sql, compiled.params, batch_size, limit)
            async with contextlib.aclosing(batches):
                async for rows in batches:
                    yield rows

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        if not rows:
            return [] if schema.auto_field is not None else None
        async with self._connection(write=True) as link:
            return await self._core.insert(link, schema, rows)
