"""PostgreSQL's connection layer under :class:`ommi.sql.SQLOperations`.

The driver (pooled, autocommit) and its transactions (one connection) say
where a statement runs (``_connection``), where several run atomically
(``_atomic``) and how a streaming cursor gets its connection (``_stream``);
every data operation comes from :class:`ommi.sql.SQLOperations`, with the
statements of :class:`~ommi_postgresql._dialect.PostgreSQLDialect`. This
module adds the checks of ``Decimal`` values before any I/O and tells a
generated key taken by a stored row from other unique violations.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from ommi.drivers import Row, get_logger
from ommi.errors import DatabaseError, IntegrityError, ValidationError
from ommi.expressions import Arithmetic, Query
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.sql import SQLOperations
from psycopg import AsyncConnection, AsyncCursor

from ommi_postgresql._dialect import PostgreSQLCompiler, numeric_problem
from ommi_postgresql._pool import PooledConnection

if TYPE_CHECKING:
    from ommi_postgresql.driver import PostgreSQLDriver

__all__ = ["execute", "log_statement"]

log = get_logger("ommi.postgresql.query")


async def execute(
    conn: AsyncConnection[Any],
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = (),
    *,
    alone: bool = False,
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


def _check_numeric(driver: PostgreSQLDriver, schema: ModelSchema, values: Iterable[tuple[Field, Any]]) -> None:
    """Refuse, before any I/O, a Decimal that PostgreSQL's ``numeric`` cannot hold (its error would be raw)."""
    for field, value in values:
        if value is None:
            continue
        problem = numeric_problem(value)
        if problem is not None:
            text = str(value)
            shown = text if len(text) <= 40 else f"{text[:20]}...{text[-12:]}"
            raise ValidationError(
                f"{schema.cls.__qualname__}.{field.name} = Decimal('{shown}') cannot be stored: {problem}; "
                f"nothing was written ({driver.description})"
            )


class PostgreSQLOperations(SQLOperations[AsyncConnection[Any]]):
    """Statements through psycopg, compiled by the driver's compiler (a new one for each open)."""

    _driver: PostgreSQLDriver

    _alone: bool = False
    """Whether each :meth:`_connection` is held by one operation alone (see :func:`execute`)."""

    @property
    def compiler(self) -> PostgreSQLCompiler:
        return self._driver._statements

    def _map(self) -> contextlib.AbstractContextManager[None]:
        return self._driver._map()

    async def _execute(self, conn: AsyncConnection[Any], sql: str, params: list[Any]) -> int:
        with self._map():
            return (await execute(conn, sql, params, alone=self._alone)).rowcount

    async def _fetch_all(self, conn: AsyncConnection[Any], sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._map():
            rows: list[tuple[Any, ...]] = await (await execute(conn, sql, params, alone=self._alone)).fetchall()
            return rows

    async def _raw_rows(
        self, conn: AsyncConnection[Any], statement: str, params: Sequence[Any] | Mapping[str, Any] | None
    ) -> list[tuple[Any, ...]]:
        """Run a raw statement through psycopg; ``[]`` when it yields no rows (DML, DDL).

        ``params`` ``None`` sends the text as it is (psycopg then reads no
        placeholders, so a ``%`` needs no doubling); with parameters,
        ``%s`` / ``%(name)s`` are placeholders and ``%%`` is a ``%``.
        """
        with self._map():
            cursor = await execute(conn, statement, params, alone=self._alone)
            if cursor.description is None:
                return []
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
            return rows

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        """Refuse a Decimal ``numeric`` cannot hold before any I/O, then update (see :meth:`SQLOperations.update`)."""
        decimals = [
            (f, literal)
            for f, v in values.items()
            if f.storage is StorageType.DECIMAL and not isinstance(v, Field)
            for literal in (v.literals() if isinstance(v, Arithmetic) else (v,))
        ]
        _check_numeric(self._driver, query.model, decimals)
        return await super().update(query, values)

    def _max_insert_rows(self, width: int) -> int:
        return self._driver.settings.insert_chunk_size

    def _deadlocked(self, error: DatabaseError) -> bool:
        """``deadlock_detected`` (40P01): PostgreSQL aborted this transaction to let another one go on."""
        return getattr(error.__cause__, "sqlstate", None) == "40P01"

    def _describe(self) -> str:
        return self._driver.description

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        """Refuse a Decimal ``numeric`` cannot hold before any I/O, then insert (see :meth:`SQLOperations.insert`).

        Rows with explicit keys are written after the identity sequence was
        moved past them (``PostgreSQLDialect.reserve_key``), rows without one
        leave the column to the identity, many rows at once through
        ``unnest`` (``insert_chunk_size`` a statement); a generated key that a
        stored row holds anyway (written by another client, or concurrently)
        is replaced by a new one (``reserve_stored_keys``, :meth:`_key_taken`).
        """
        decimals = [f for f in schema.fields if f.storage is StorageType.DECIMAL]
        if decimals and rows:
            _check_numeric(self._driver, schema, ((f, row[f.index]) for row in rows for f in decimals))
        return await super().insert(schema, rows)

    async def _key_taken(self, conn: AsyncConnection[Any], schema: ModelSchema, error: IntegrityError) -> bool:
        """Whether the unique violation behind ``error`` is on the primary key (a taken generated key)."""
        cause = error.__cause__
        if not isinstance(cause, psycopg.errors.UniqueViolation):
            return False
        query = self.compiler.primary_key_constraint(schema)
        rows = await self._fetch_all(conn, query.sql, query.params)
        return bool(rows) and rows[0][0] == cause.diag.constraint_name
