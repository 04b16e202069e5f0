"""``PostgreSQLDriver``: Ommi on PostgreSQL through psycopg 3 and a connection pool.

Each operation of the driver borrows a pooled connection for one statement (or
for the few statements of a multi-row insert, inside ``BEGIN``/``COMMIT``) and
gives it back at once, so concurrent tasks run in parallel on separate
connections. A transaction keeps one connection from :meth:`begin` until it
commits or rolls back. ``.all`` streams through a server-side cursor
(``DECLARE ... CURSOR`` / ``FETCH FORWARD n``) so memory stays flat however many
rows match; the cursor's connection is given back as soon as the rows run out
or the iterator is closed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self

import psycopg
from ommi.drivers import Capabilities, Driver, DriverTransaction, Row, get_logger
from ommi.errors import TransactionError
from ommi.models.schema import ModelSchema
from ommi.sql import Compiled
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import TransactionStatus

from ommi_postgresql import schema as _schema
from ommi_postgresql.dialect import PostgreSQLCompiler
from ommi_postgresql.errors import map_exceptions
from ommi_postgresql.operations import _Operations, execute, log_statement
from ommi_postgresql.pool import Pool
from ommi_postgresql.settings import Settings, resolve

__all__ = ["PostgreSQLDriver", "PostgreSQLTransaction"]

log = get_logger("ommi.postgresql.driver")
_cursor_names = itertools.count(1)

# Streams outside a transaction each have a connection of their own, so one
# cursor name serves them all and its DECLARE is prepared like any statement.
_STREAM_CURSOR = "ommi_stream"


async def _first_batch(
    conn: AsyncConnection[Any], compiled: Compiled, name: str, batch_size: int, *, begin: bool
) -> tuple[AsyncCursor[Any], str, list[Any]]:
    """Open a cursor and fetch its first batch in one round trip (pipelined)."""
    cursor = conn.cursor()
    fetch_sql = f'FETCH FORWARD {int(batch_size)} FROM "{name}"'
    declare = f'DECLARE "{name}" NO SCROLL CURSOR FOR {compiled.sql}'
    started = time.perf_counter()
    async with conn.pipeline():
        if begin:
            await cursor.execute("BEGIN")
        await cursor.execute(declare, compiled.params)
        await cursor.execute(fetch_sql)
    rows = await cursor.fetchall()
    log_statement("query.stream", declare, started, len(rows))
    return cursor, fetch_sql, rows


class PostgreSQLDriver(_Operations, Driver):
    """The PostgreSQL driver.

    Build it with :meth:`connect` (no I/O); ``async with Ommi(driver)`` opens
    the pool and closes it on exit. See :mod:`ommi_postgresql.settings` for the
    settings and where they come from.
    """

    name: ClassVar[str] = "postgresql"
    capabilities: Capabilities = Capabilities()
    compiler: PostgreSQLCompiler
    _alone = True  # every operation gets a pooled connection of its own

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default_batch_size = settings.batch_size
        self.compiler = PostgreSQLCompiler()
        self._where = settings.describe()
        self._pool = Pool(settings, self._where)
        self._driver = self

    @classmethod
    def connect(cls, settings: str | Mapping[str, Any] | None = None, /, **options: Any) -> Self:
        """A driver for a ``postgresql://`` / ``postgres://`` URL, a settings mapping, or the PG* environment.

        Keyword options override the URL, which overrides the mapping's other
        entries; libpq's environment variables fill in whatever none of them sets.

        Raises:
            ConfigurationError: the settings cannot be used.
        """
        return cls(resolve(settings, options))

    @property
    def description(self) -> str:
        """``postgresql://user@host:port/db`` (never the password)."""
        return self._where

    @property
    def pool(self) -> Pool:
        """The connection pool (for statistics: ``driver.pool.stats()``)."""
        return self._pool

    def __repr__(self) -> str:
        return f"<PostgreSQLDriver {self._where}>"

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None and self._pool.is_open:
            warnings.warn(f"{self!r} was not closed; use `async with Ommi(driver)`", ResourceWarning, stacklevel=1)

    def _map(self) -> Any:
        return map_exceptions(
            self._where, pool_max_size=self.settings.pool_max_size, pool_timeout=self.settings.pool_timeout
        )

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        await self._pool.open()

    async def close(self) -> None:
        await asyncio.shield(self._pool.close())

    async def _release(self, conn: AsyncConnection[Any]) -> None:
        if self._pool.keep(conn):
            return
        # Shielded: a cancelled task must still hand its connection back.
        await asyncio.shield(self._pool.release(conn))

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        conn = await self._pool.acquire()
        try:
            yield conn
        finally:
            await self._release(conn)

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[AsyncConnection[Any]]:
        async with self._connection() as conn:
            await conn.execute("BEGIN")
            yield conn
            await conn.execute("COMMIT")
            # An exception skips COMMIT; the release rolls back.

    async def _stream(self, compiled: Compiled, batch_size: int) -> AsyncIterator[list[Row]]:
        rows: list[Any] = []
        with self._map():
            conn = await self._pool.acquire()
            try:
                cursor, fetch_sql, rows = await _first_batch(conn, compiled, _STREAM_CURSOR, batch_size, begin=True)
                while len(rows) == batch_size:
                    yield rows
                    await cursor.execute(fetch_sql)
                    rows = await cursor.fetchall()
                # COMMIT ends the transaction and closes the cursor with it.
                await cursor.execute("COMMIT")
            finally:
                await self._release(conn)
        if rows:
            yield rows

    async def begin(self) -> DriverTransaction:
        """Start a transaction on a pooled connection it keeps until commit or rollback."""
        with self._map():
            conn = await self._pool.acquire()
            try:
                await conn.execute("BEGIN")
            except BaseException:
                await self._release(conn)
                raise
        return PostgreSQLTransaction(self, conn)

    # -- schema ----------------------------------------------------------------

    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        with self._map():
            async with self._connection() as conn:
                await _schema.apply(self, conn, schemas)

    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        with self._map():
            async with self._connection() as conn:
                await _schema.drop(self, conn, schemas)


class PostgreSQLTransaction(_Operations, DriverTransaction):
    """A database transaction on one pooled connection.

    A failed statement aborts a PostgreSQL transaction: later statements raise
    :class:`ommi.errors.TransactionError` and so does :meth:`commit`, after
    rolling back (nothing is committed half-way).
    """

    def __init__(self, driver: PostgreSQLDriver, conn: AsyncConnection[Any]) -> None:
        self._driver = driver
        self._conn: AsyncConnection[Any] | None = conn
        self._state = "open"

    def __del__(self) -> None:
        if getattr(self, "_conn", None) is not None:
            warnings.warn(
                "a PostgreSQL transaction was neither committed nor rolled back; its connection leaked",
                ResourceWarning,
                stacklevel=1,
            )

    def _current(self) -> AsyncConnection[Any]:
        if self._conn is None:
            raise TransactionError(f"the transaction is already {self._state}")
        return self._conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        yield self._current()

    _atomic = _connection  # the whole transaction is atomic already

    async def _stream(self, compiled: Compiled, batch_size: int) -> AsyncIterator[list[Row]]:
        conn = self._current()
        name = f"ommi_cursor_{next(_cursor_names)}"
        rows: list[Any] = []
        with self._map():
            cursor, fetch_sql, rows = await _first_batch(conn, compiled, name, batch_size, begin=False)
            try:
                while len(rows) == batch_size:
                    yield rows
                    if self._conn is not conn:
                        # The connection went back to the pool with the commit
                        # or rollback (and the cursor with the transaction).
                        raise TransactionError(
                            f"the transaction ended ({self._state}) before its result iterator was exhausted"
                        )
                    await cursor.execute(fetch_sql)
                    rows = await cursor.fetchall()
            finally:
                if self._conn is conn and conn.info.transaction_status == TransactionStatus.INTRANS:
                    try:
                        await asyncio.shield(cursor.execute(f'CLOSE "{name}"'))
                    except psycopg.Error:
                        log.warning("cursor.close.failed", driver="postgresql", exc_info=True)
        if rows:
            yield rows

    async def _finish(self, statement: str) -> None:
        conn = self._current()
        self._conn = None
        self._state = "committed" if statement == "COMMIT" else "rolled back"
        try:
            with self._map():
                failed = conn.info.transaction_status == TransactionStatus.INERROR
                cursor = await execute(conn, statement)
                if statement == "COMMIT" and (failed or cursor.statusmessage == "ROLLBACK"):
                    raise TransactionError(
                        "the transaction was rolled back, not committed: one of its statements failed "
                        f"({self._driver.description})"
                    )
        except BaseException:
            self._state = "rolled back"
            raise
        finally:
            await self._driver._release(conn)

    async def commit(self) -> None:
        await self._finish("COMMIT")

    async def rollback(self) -> None:
        await self._finish("ROLLBACK")
