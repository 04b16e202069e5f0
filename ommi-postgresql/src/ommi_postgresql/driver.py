"""``PostgreSQLDriver``: Ommi on PostgreSQL through psycopg 3 and a connection pool.

Each operation of the driver borrows a pooled connection for one statement (or
for the few statements of a multi-row insert, inside ``BEGIN``/``COMMIT``) and
gives it back at once, so concurrent tasks run in parallel on separate
connections. A transaction keeps one connection from :meth:`begin` until it
commits or rolls back. ``.all`` streams through a server-side cursor
(``DECLARE ... CURSOR`` / ``FETCH FORWARD n``) so memory stays flat however many
rows match; the cursor's connection is given back as soon as the rows run out
or the iterator is closed.

Each :meth:`PostgreSQLDriver.open` after a :meth:`~PostgreSQLDriver.close`
builds a new :class:`~ommi_postgresql._pool.Pool` and compiler; work begun
before the close ends on the connections of its own pool, which close as they
come back, and never reaches the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Self

import psycopg
from ommi import errors
from ommi.drivers import (
    Capabilities,
    Driver,
    DriverTransaction,
    ExceptionMap,
    Row,
    TransactionOptions,
    get_logger,
    map_exceptions,
)
from ommi.models.schema import ModelSchema
from ommi.sql import Compiled, SQLTransactionOperations
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import ConnStatus, PipelineStatus, TransactionStatus

from ommi_postgresql import _inspect, _schema
from ommi_postgresql._dialect import PostgreSQLCompiler, PostgreSQLDialect
from ommi_postgresql._errors import exception_map
from ommi_postgresql._migrate import MigrationSteps, lock_for_migration, migration_statements
from ommi_postgresql._operations import PostgreSQLOperations, execute, log_statement
from ommi_postgresql._pool import Pool, PooledConnection
from ommi_postgresql._settings import PostgreSQLSettings, resolve
from ommi_postgresql._timeouts import local_settings

if TYPE_CHECKING:
    from ommi.migrations import MigrationStep
    from ommi.migrations.inspection import Inspection

__all__ = ["PostgreSQLDriver", "PostgreSQLMigration", "PostgreSQLTransaction"]

log = get_logger("ommi.postgresql.driver")
_cursor_names = itertools.count(1)

_ISOLATION = {
    "read_committed": "READ COMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}
"""``db.transaction(isolation=...)`` as PostgreSQL spells it in ``BEGIN ISOLATION LEVEL``."""

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


class PostgreSQLDriver(PostgreSQLOperations, Driver[PostgreSQLSettings]):
    """The PostgreSQL driver.

    Build it with :meth:`connect` (no I/O); ``async with Ommi(driver)`` opens
    the pool and closes it on exit. See :mod:`ommi_postgresql._settings` for the
    settings and where they come from.
    """

    name: ClassVar[str] = "postgresql"
    capabilities: Capabilities = Capabilities(
        migrations=True,
        inspection=True,
        constraints=True,
        savepoints=True,
        isolation_levels=True,
        row_locks=True,
        timeouts=True,
        update_expressions=True,
        upsert=True,
        # db.raw(sql, params): the statement through psycopg (%s or %(name)s parameters).
        raw_sql=True,
        # lower() under the ICU root collation on both sides (the queries guide lists where it
        # differs from core's fold_case).
        case_insensitive_text=True,
        json_fields=True,
    )
    supported_isolation_levels: frozenset[str] = frozenset(_ISOLATION)
    _alone = True  # every operation gets a pooled connection of its own

    def __init__(self, settings: PostgreSQLSettings) -> None:
        self.settings = settings
        self.default_batch_size = settings.batch_size
        self._where = settings.describe()
        self._exceptions = exception_map(
            self._where,
            pool_max_size=settings.pool_max_size,
            pool_timeout=settings.pool_timeout,
            lock_timeout=settings.lock_timeout,
            statement_timeout=settings.statement_timeout,
        )
        self._pool = Pool(settings, self._where)
        self._statements = self._compiler(self._pool)
        self._lifecycle = asyncio.Lock()
        self._driver = self

    @staticmethod
    def _compiler(pool: Pool) -> PostgreSQLCompiler:
        return PostgreSQLCompiler(PostgreSQLDialect(pool.namespace, required=True))

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
        """The connection pool of the current generation (for statistics: ``driver.pool.stats()``)."""
        return self._pool

    @property
    def namespace(self) -> str | None:
        """The PostgreSQL schema holding the tables (the ``schema`` setting, else the current schema at open)."""
        return self._pool.namespace

    def __repr__(self) -> str:
        return f"<PostgreSQLDriver {self._where}>"

    def absent_reason(self, capability: str) -> str | None:
        """Why ``case_insensitive_text`` is absent on this server (it has no ICU collation)."""
        if capability == "case_insensitive_text" and self._pool.is_open and not self._pool.icu:
            return (
                f"the server has no ICU collation {PostgreSQLDialect.fold_collation} (PostgreSQL built without "
                "ICU), which case-insensitive matches lower-case under so that they do not depend on the server's "
                "locale"
            )
        return None

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None and self._pool.is_open:
            warnings.warn(f"{self!r} was not closed; use `async with Ommi(driver)`", ResourceWarning, stacklevel=1)

    def _map(self) -> contextlib.AbstractContextManager[None]:
        return map_exceptions(self._exceptions)

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool; after :meth:`close`, a new pool and compiler (only the narrow-column limits carry over)."""
        if self._pool.is_open:
            return
        async with self._lifecycle:
            pool = self._pool
            if pool.is_open:
                return
            if pool.is_closed:
                pool = Pool(self.settings, self._where)
            await pool.open()
            if not pool.icu:
                # Case-insensitive matches lower-case under ICU's root collation, which a
                # server built without ICU lacks (narrowed only: never widens an override).
                self.capabilities = dataclasses.replace(self.capabilities, case_insensitive_text=False)
            statements = self._compiler(pool)
            # The narrow-column limits use_models() recorded still hold for the same tables.
            statements.limits.update(self._statements.limits)
            self._pool, self._statements = pool, statements

    async def close(self) -> None:
        """Close the pool; idempotent, and safe while operations run (shielded from cancellation).

        Operations that already hold a connection finish on it (it closes when
        it comes back); any later one, and any waiting for a connection, raises
        :class:`ommi.errors.DatabaseClosedError` until :meth:`open` builds a new pool.
        """
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        async with self._lifecycle:
            await self._pool.close()

    async def _release(self, conn: AsyncConnection[Any]) -> None:
        # Back to the pool that lent it, which may be closed by now: never into a later one.
        lender = conn.lender if isinstance(conn, PooledConnection) and conn.lender is not None else self._pool
        if lender.keep(conn):
            return
        # Shielded: a cancelled task must still hand its connection back.
        await asyncio.shield(lender.release(conn))

    @asynccontextmanager
    async def _connection(self, *, write: bool = False) -> AsyncIterator[AsyncConnection[Any]]:
        with self._map():
            conn = await self._pool.acquire()
            try:
                yield conn
            finally:
                await self._release(conn)

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[AsyncConnection[Any]]:
        async with self._connection(write=True) as conn:
            with self._map():
                await conn.execute("BEGIN")
            yield conn
            with self._map():
                await conn.execute("COMMIT")
            # An exception skips COMMIT; the release rolls back.

    async def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Row], None]:
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

    async def begin(self, options: TransactionOptions | None = None) -> DriverTransaction:
        """Start a transaction on a pooled connection it keeps until commit or rollback.

        ``options.isolation`` becomes ``BEGIN ISOLATION LEVEL ...``; without it
        the server's ``default_transaction_isolation`` applies (``read committed``
        unless configured otherwise). ``options.statement_timeout`` /
        ``lock_timeout`` are set for the transaction alone (``SET LOCAL``, see
        :mod:`ommi_postgresql._timeouts`).
        """
        level = options.isolation if options is not None else None
        statement = "BEGIN" if level is None else f"BEGIN ISOLATION LEVEL {_ISOLATION[level]}"
        timeouts = None if options is None else local_settings(options.statement_timeout, options.lock_timeout)
        with self._map():
            conn = await self._pool.acquire()
            try:
                await conn.execute(statement)
                if timeouts is not None:
                    await conn.execute(*timeouts)
            except BaseException:
                await self._release(conn)  # rolls back what was begun
                raise
        transaction = PostgreSQLTransaction(self, conn)
        if timeouts is not None:
            assert options is not None
            transaction._own_timeouts(options.statement_timeout, options.lock_timeout)
        return transaction

    # -- schema ----------------------------------------------------------------

    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        with self._map():
            async with self._connection(write=True) as conn:
                await _schema.apply(self, conn, schemas)

    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        with self._map():
            async with self._connection(write=True) as conn:
                await _schema.drop(self, conn, schemas)

    async def inspect_schema(self) -> Inspection:
        """Read the tables of the driver's schema into models (see :mod:`ommi_postgresql._inspect`)."""
        with self._map():
            async with self._connection(write=False) as conn:
                return await _inspect.inspect(self, conn)

    # -- migrations (ommi_postgresql._migrate) ---------------------------------

    async def begin_migration(self, *, lock_timeout: float | None = None) -> PostgreSQLMigration:
        """A transaction holding the migration lock of the driver's schema (``pg_advisory_xact_lock``).

        ``lock_timeout`` bounds each lock wait of the transaction (default: the ``lock_timeout`` setting).
        """
        with self._map():
            conn = await self._pool.acquire()
            try:
                await lock_for_migration(self, conn, lock_timeout)
            except BaseException:
                await self._release(conn)  # rolls back what was begun
                raise
        migration = PostgreSQLMigration(self, conn)
        migration._lock_timeout = self.settings.lock_timeout if lock_timeout is None else lock_timeout
        return migration

    def migration_statements(self, step: MigrationStep) -> list[str]:
        return migration_statements(self.compiler, step)


class PostgreSQLTransaction(SQLTransactionOperations[AsyncConnection[Any]], PostgreSQLOperations, DriverTransaction):
    """A database transaction on one pooled connection, shareable by tasks.

    A failed statement aborts a PostgreSQL transaction: later statements raise
    :class:`ommi.errors.TransactionError` and so does :meth:`commit`, after
    rolling back (nothing is committed half-way).

    Several tasks may use the transaction at once: its statements take turns
    on the connection under a per-transaction lock, one statement (or one
    ``FETCH`` of a stream) at a time. A stream holds the lock only while it
    fetches a batch, never while its rows are being consumed, so a task may
    write through the transaction inside ``async for`` over its results.
    A statement interrupted by a cancellation so that the connection's state
    is unknown (a pipeline left open, a statement the server did not cancel)
    ends the transaction's usefulness: later statements and the commit raise
    :class:`ommi.errors.TransactionError` and the connection is closed.
    """

    def __init__(self, driver: PostgreSQLDriver, conn: AsyncConnection[Any]) -> None:
        self._driver = driver
        self._conn: AsyncConnection[Any] | None = conn
        self._state = "open"
        self._turns = asyncio.Lock()
        self._broken: str | None = None
        """Why the connection can no longer be trusted (set after an interrupted statement)."""
        self._exceptions: ExceptionMap | None = None
        """The exception map naming the transaction's own timeouts (``None``: the driver's)."""

    def _own_timeouts(self, statement_timeout: float | None, lock_timeout: float | None) -> None:
        """Name the transaction's own timeouts (where given; else the driver's settings) in its errors."""
        settings = self._driver.settings
        self._exceptions = exception_map(
            self._driver.description,
            pool_max_size=settings.pool_max_size,
            pool_timeout=settings.pool_timeout,
            lock_timeout=settings.lock_timeout if lock_timeout is None else lock_timeout,
            statement_timeout=settings.statement_timeout if statement_timeout is None else statement_timeout,
        )

    def _map(self) -> contextlib.AbstractContextManager[None]:
        if self._exceptions is None:
            return self._driver._map()
        return map_exceptions(self._exceptions)

    def __del__(self) -> None:
        if getattr(self, "_conn", None) is not None:
            warnings.warn(
                "a PostgreSQL transaction was neither committed nor rolled back; its connection leaked",
                ResourceWarning,
                stacklevel=1,
            )

    def _owned(self) -> AsyncConnection[Any] | None:
        return self._conn

    def _check_usable(self, conn: AsyncConnection[Any]) -> None:
        if self._broken is not None:
            raise errors.TransactionError(
                f"the transaction cannot go on: {self._broken}; it will be rolled back ({self._driver.description})"
            )

    def _after_failure(self, conn: AsyncConnection[Any]) -> None:
        self._check(conn)

    def _check(self, conn: AsyncConnection[Any]) -> None:
        """After a statement raised: mark the transaction broken when its connection is in an unknown state."""
        if self._broken is not None:
            return
        if conn.closed or conn.pgconn.status != ConnStatus.OK:
            self._broken = "its connection was lost"
        elif conn.pgconn.pipeline_status != PipelineStatus.OFF:
            self._broken = "a statement was interrupted (cancelled) in the middle of a pipeline"
        elif conn.info.transaction_status == TransactionStatus.ACTIVE:
            self._broken = "a statement was interrupted (cancelled) and the server did not confirm it stopped"

    async def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Row], None]:
        name = f"ommi_cursor_{next(_cursor_names)}"
        rows: list[Any] = []
        with self._map():
            async with self._turn() as conn:
                cursor, fetch_sql, rows = await _first_batch(conn, compiled, name, batch_size, begin=False)
            try:
                while len(rows) == batch_size:
                    yield rows
                    # Raises once the commit or rollback took the connection (and the cursor) back.
                    async with self._stream_turn():
                        await cursor.execute(fetch_sql)
                        rows = await cursor.fetchall()
            finally:
                await asyncio.shield(self._close_cursor(conn, name))
        if rows:
            yield rows

    async def _close_cursor(self, conn: AsyncConnection[Any], name: str) -> None:
        """Close a stream's cursor when the transaction goes on (its end closes the cursor anyway)."""
        async with self._turns:
            if (
                self._conn is conn
                and self._broken is None
                and conn.info.transaction_status == TransactionStatus.INTRANS
            ):
                try:
                    await conn.execute(f'CLOSE "{name}"')
                except psycopg.Error:
                    log.warning("cursor.close.failed", driver="postgresql", exc_info=True)
                except BaseException:
                    self._check(conn)
                    raise

    async def _finish(self, statement: str) -> None:
        # After the statements of other tasks sharing the transaction, never in the middle of one.
        async with self._turns:
            conn = self._conn
            if conn is None:
                raise errors.TransactionError(f"the transaction is already {self._state}")
            self._conn = None
            self._state = "committed" if statement == "COMMIT" else "rolled back"
            try:
                if self._broken is not None:
                    # Closing the connection ends the transaction on the server.
                    await conn.close()
                    if statement == "COMMIT":
                        raise errors.TransactionError(
                            f"the transaction was rolled back, not committed: {self._broken} "
                            f"({self._driver.description})"
                        )
                    return
                with self._map():
                    failed = conn.info.transaction_status == TransactionStatus.INERROR
                    cursor = await execute(conn, statement)
                    if statement == "COMMIT" and (failed or cursor.statusmessage == "ROLLBACK"):
                        raise errors.TransactionError(
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


class PostgreSQLMigration(MigrationSteps, PostgreSQLTransaction):
    """The transaction of one migration (``ommi.migrations``), under the migration lock until it ends.

    See :mod:`ommi_postgresql._migrate`.
    """
