"""Data operations shared by the driver (pooled, autocommit) and its transactions (one connection).

Subclasses say where a statement runs (:meth:`_Operations._connection`), where
several statements run atomically (:meth:`_Operations._atomic`) and how a
streaming cursor gets its connection (:meth:`_Operations._stream`).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, NamedTuple

from ommi.drivers import Operations, Row, get_logger
from ommi.models.schema import Field, ModelSchema
from ommi.query.ast import Query
from ommi.sql import Compiled
from psycopg import AsyncConnection, AsyncCursor

from ommi_postgresql.pool import PooledConnection

if TYPE_CHECKING:
    from ommi_postgresql.driver import PostgreSQLDriver

__all__ = ["execute", "log_statement"]

log = get_logger("ommi.postgresql.query")


async def execute(
    conn: AsyncConnection[Any], sql: str, params: Sequence[Any] = (), *, alone: bool = False
) -> AsyncCursor[Any]:
    """Run one statement; logs its text (never its parameters) at debug level.

    Parameters are always passed, even none, so that psycopg turns the ``%%``
    of quoted identifiers back into ``%`` in every statement.

    ``alone``: the caller holds the connection by itself until it has read
    the results (a pooled connection lent for one operation). The statement
    then runs on the connection's reusable cursor (:class:`PooledConnection`)
    instead of a new one, which saves a tenth of a primary-key lookup. A
    transaction's connection may be shared by concurrent tasks, whose results
    must not land on one cursor, so it never passes ``alone``.
    """
    if alone and isinstance(conn, PooledConnection):
        cursor = conn.reusable_cursor
        if cursor is None or cursor.closed:
            cursor = conn.reusable_cursor = conn.cursor()
        run = cursor.execute(sql, params)
    else:
        run = conn.execute(sql, params)
    if not log.is_enabled_for(logging.DEBUG):
        return await run
    started = time.perf_counter()
    cursor = await run
    log_statement("query.execute", sql, started, cursor.rowcount)
    return cursor


def log_statement(event: str, sql: str, started: float, rows: int) -> None:
    """Log a statement's text, row count and duration at debug level (never its parameters)."""
    if log.is_enabled_for(logging.DEBUG):
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        log.debug(event, driver="postgresql", sql=sql, rows=rows, duration_ms=duration_ms)


class _Insert(NamedTuple):
    """One INSERT statement of a plan: these columns of these rows, returning that key."""

    fields: Sequence[Field]
    indexes: list[int]
    returning: Field | None = None


_ADVANCE_IDENTITY = None
"""The plan step that moves the identity sequence past the explicit keys."""

_Plan = list[_Insert | None]


def _chunks(indexes: list[int], size: int) -> list[list[int]]:
    return [indexes[start : start + size] for start in range(0, len(indexes), size)]


class _Operations(Operations):
    """Insert, fetch, count, delete and update, compiled by the driver's compiler."""

    _driver: PostgreSQLDriver

    @abc.abstractmethod
    def _connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """A connection for one statement."""

    @abc.abstractmethod
    def _atomic(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """A connection on which several statements succeed or fail together."""

    @abc.abstractmethod
    def _stream(self, compiled: Compiled, batch_size: int) -> AsyncIterator[list[Row]]:
        """Rows of a ``SELECT`` in batches, through a server-side cursor."""

    _alone: bool = False
    """Whether each :meth:`_connection` is held by one operation alone (see :func:`execute`)."""

    def _map(self) -> Any:
        return self._driver._map()

    # -- rows ----------------------------------------------------------------

    async def fetch(self, query: Query, batch_size: int) -> AsyncIterator[list[Row]]:
        compiled = self._driver.compiler.select(query)
        convert = self._driver.compiler.row_converter(query.model)
        if query.limit is not None and query.limit <= batch_size:
            # A window that fits one batch needs no cursor: one round trip.
            with self._map():
                async with self._connection() as conn:
                    rows = await (await execute(conn, compiled.sql, compiled.params, alone=self._alone)).fetchall()
            if rows:
                yield convert(rows) if convert else rows
            return
        async for batch in self._stream(compiled, batch_size):
            yield convert(batch) if convert else batch

    async def count(self, query: Query) -> int:
        compiled = self._driver.compiler.count(query)
        with self._map():
            async with self._connection() as conn:
                row = await (await execute(conn, compiled.sql, compiled.params, alone=self._alone)).fetchone()
        return int(row[0]) if row else 0

    async def delete(self, query: Query) -> int:
        compiled = self._driver.compiler.delete(query)
        with self._map():
            async with self._connection() as conn:
                return (await execute(conn, compiled.sql, compiled.params, alone=self._alone)).rowcount

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        compiled = self._driver.compiler.update(query, values)
        with self._map():
            async with self._connection() as conn:
                return (await execute(conn, compiled.sql, compiled.params, alone=self._alone)).rowcount

    # -- insert --------------------------------------------------------------

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        """Insert ``rows``: one statement per chunk of up to ``insert_chunk_size`` rows.

        Rows whose generated key is ``None`` are inserted without it and the
        keys come back through ``RETURNING``; rows with an explicit key are
        inserted as given and the identity sequence is then moved past them, so
        later generated keys never collide with them.
        """
        auto = schema.auto_field
        if not rows:
            return [] if auto is not None else None
        size = self._driver.settings.insert_chunk_size
        everything = list(range(len(rows)))
        if auto is None:
            plan: _Plan = [_Insert(schema.fields, chunk) for chunk in _chunks(everything, size)]
            await self._insert_plan(schema, rows, plan, None, [])
            return None
        keys: list[Any] = [row[auto.index] for row in rows]
        generated = [i for i in everything if keys[i] is None]
        given = [i for i in everything if keys[i] is not None]
        without_key = tuple(f for f in schema.fields if f is not auto)
        plan = [_Insert(schema.fields, chunk) for chunk in _chunks(given, size)]
        if given:
            # Before any key is generated, so rows of this very batch cannot collide either.
            plan.append(_ADVANCE_IDENTITY)
        if without_key:
            plan += [_Insert(without_key, chunk, auto) for chunk in _chunks(generated, size)]
        else:
            # Nothing but the key: DEFAULT VALUES, one row at a time.
            plan += [_Insert((), [i], auto) for i in generated]
        await self._insert_plan(schema, rows, plan, max((keys[i] for i in given), default=None), keys)
        return keys

    async def _insert_plan(
        self,
        schema: ModelSchema,
        rows: Sequence[Row],
        plan: _Plan,
        highest: int | None,
        keys: list[Any],
    ) -> None:
        compiler = self._driver.compiler
        auto = schema.auto_field
        with self._map():
            async with self._atomic() if len(plan) > 1 else self._connection() as conn:
                for step in plan:
                    if step is _ADVANCE_IDENTITY:
                        if highest is not None and auto is not None:
                            advance = compiler.advance_identity(schema, auto, highest)
                            await execute(conn, advance.sql, advance.params, alone=self._alone)
                        continue
                    fields, indexes, returning = step
                    if len(indexes) == 1:
                        sql = compiler.insert(schema, fields, returning=(returning,) if returning else ())
                        params: list[Any] = compiler.row_params(fields, rows[indexes[0]])
                    else:
                        sql = compiler.insert_many(schema, fields, returning=returning)
                        params = [[compiler.param(f, rows[i][f.index]) for i in indexes] for f in fields]
                    cursor = await execute(conn, sql, params, alone=self._alone)
                    if returning is not None:
                        # Identity values are drawn in input order (ORDER BY the
                        # ordinality), so ascending keys map onto the rows in order.
                        new_keys = sorted(row[0] for row in await cursor.fetchall())
                        for index, key in zip(indexes, new_keys, strict=True):
                            keys[index] = key
