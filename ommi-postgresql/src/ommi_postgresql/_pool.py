"""The connection pool: psycopg_pool's ``AsyncConnectionPool`` plus liveness checks and logging.

Every connection runs in autocommit mode, so a single statement is its own
transaction without extra round trips; transactions and streaming cursors send
``BEGIN`` themselves.

Lost connections: before a connection is handed out, :func:`_is_alive` looks
at its socket without a round trip. An idle connection has nothing to read, so
a readable socket means the server sent something on its own, typically the
"terminating connection" error before closing (``pg_terminate_backend``, a
server restart). Only then a round trip (an empty query) decides; a dead
connection goes back to the pool, which discards it and opens a replacement,
and the next one is tried at once. The pool's own ``check`` hook is not used
because it waits a second or more before trying the next connection after a
failed check, which after a server restart would stall every caller.

Generations: a :class:`Pool` is opened once and closed once. The driver builds
a new one for every :meth:`PostgreSQLDriver.open` after a close, and each
connection remembers the pool that lent it (:attr:`PooledConnection.lender`),
so a connection of a closed pool always goes back to that pool (which closes
it) and never into a later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import time
from typing import Any, NoReturn

import psycopg
from ommi import errors
from ommi.drivers import get_logger, map_exceptions
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import ConnStatus, PipelineStatus, TransactionStatus
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ommi_postgresql._errors import exception_map
from ommi_postgresql._settings import PostgreSQLSettings
from ommi_postgresql._timeouts import milliseconds

__all__ = ["Pool", "PooledConnection"]

log = get_logger("ommi.postgresql.pool")
_names = itertools.count(1)

_HOT_SECONDS = 1.0
"""How long a connection may go from task to task without passing through psycopg_pool."""


_PROBE = "SELECT current_schema(), EXISTS (SELECT 1 FROM pg_catalog.pg_collation WHERE collname = 'und-x-icu')"
"""What the pool asks once at open: the current schema, and whether ICU's root collation exists."""


class PooledConnection(AsyncConnection[Any]):
    """The pool's connections: psycopg's, plus one client cursor that single-statement operations reuse."""

    reusable_cursor: AsyncCursor[Any] | None = None
    left_pool_at = 0.0
    """When the connection last left psycopg_pool (``time.monotonic()``); see ``_HOT_SECONDS``."""
    lender: Pool | None = None
    """The :class:`Pool` (generation) that lent the connection: the only one it goes back to."""


def _readable(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover - Windows


async def _is_alive(conn: AsyncConnection[Any]) -> bool:
    pgconn = conn.pgconn
    if pgconn.status != ConnStatus.OK or conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    if pgconn.pipeline_status != PipelineStatus.OFF:
        return False
    try:
        if not _readable(pgconn.socket):
            return True
        await conn.execute("")
    except (psycopg.Error, OSError):
        return False
    return pgconn.status == ConnStatus.OK


class Pool:
    """A psycopg connection pool sized and timed by :class:`PostgreSQLSettings`: one generation of the driver.

    :meth:`open` connects (raising :class:`ommi.errors.ConnectionError` with
    libpq's reason when the server cannot be reached); :meth:`close` is
    idempotent and final: a closed pool never opens again (the driver builds
    a new one).
    """

    def __init__(self, settings: PostgreSQLSettings, where: str) -> None:
        self.settings = settings
        self.where = where
        self.name = f"ommi-postgresql-{next(_names)}"
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._open = False
        self._closed = False
        self._exceptions = exception_map(
            where,
            pool_max_size=settings.pool_max_size,
            pool_timeout=settings.pool_timeout,
            lock_timeout=settings.lock_timeout,
            statement_timeout=settings.statement_timeout,
        )
        self._opening: asyncio.Lock | None = None
        self.namespace: str | None = settings.schema
        """The PostgreSQL schema holding the tables: the ``schema`` setting, else the server's current schema."""
        self.icu = False
        """Whether the server has ICU's root collation (``und-x-icu``), read at open (case-insensitive matches)."""
        self._lent = 0
        """Connections handed out and not yet released (tells exhaustion from a dead server)."""
        self._hot: list[PooledConnection] = []
        """Healthy idle connections kept out of psycopg_pool for the next acquire (see :meth:`keep`)."""
        self._getconn_waiting = 0
        """Tasks waiting in psycopg_pool's getconn: while any waits, released connections go to it."""

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def is_closed(self) -> bool:
        """``close()`` has begun: the pool lends nothing any more and cannot open again."""
        return self._closed

    def _map(self) -> contextlib.AbstractContextManager[None]:
        return map_exceptions(self._exceptions)

    def _connect_kwargs(self) -> dict[str, Any]:
        return {"autocommit": True, "prepare_threshold": self.settings.prepare_threshold}

    def _session_settings(self) -> tuple[str, list[Any]]:
        """The statement setting each new connection's ``lock_timeout`` (``statement_timeout``, ``search_path``).

        ``statement_timeout`` only when the setting gives one, ``search_path`` only with a schema.
        """
        calls = ["set_config('lock_timeout', %s, false)"]
        params = [milliseconds(self.settings.lock_timeout)]
        if self.settings.statement_timeout is not None:
            calls.append("set_config('statement_timeout', %s, false)")
            params.append(milliseconds(self.settings.statement_timeout))
        schema = self.settings.schema
        if schema is not None:
            calls.append("set_config('search_path', %s, false)")
            params.append('"' + schema.replace('"', '""') + '"')
        return "SELECT " + ", ".join(calls), params

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        sql, params = self._session_settings()
        await conn.execute(sql, params)
        log.debug("pool.connection.opened", pool=self.name, backend_pid=conn.info.backend_pid)

    async def open(self) -> None:
        """Connect once to report a precise error early, then open the pool (once, however many tasks ask).

        Raises:
            DatabaseClosedError: the pool was closed (the driver opens a new one instead).
        """
        if self._open:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._closed:
                raise errors.DatabaseClosedError(f"this PostgreSQL connection pool was closed ({self.where})")
            if not self._open:
                await self._open_pool()

    async def _open_pool(self) -> None:
        started = time.perf_counter()
        settings = self.settings
        with self._map():
            # A direct connection first: when the server is unreachable or
            # refuses the credentials, libpq's own message reaches the caller
            # (a pool would only report that it timed out).
            try:
                probe = await AsyncConnection.connect(settings.conninfo, **self._connect_kwargs())
            except psycopg.Error as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise errors.ConnectionError(
                    f"cannot connect to PostgreSQL at {self.where}: {reason} (check the URL or settings, the PG* "
                    "environment variables, and that the server is running)"
                ) from exc
            try:
                # The namespace is resolved once: every statement names its table in
                # this schema, so a model called like a catalog table (pg_class) is
                # never looked up in pg_catalog, which search_path puts first.
                row = await (await probe.execute(_PROBE)).fetchone()
                if self.namespace is None:
                    self.namespace = row[0] if row else None
                self.icu = bool(row and row[1])
            finally:
                await probe.close()
            pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
                settings.conninfo,
                kwargs=self._connect_kwargs(),
                connection_class=PooledConnection,
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                timeout=settings.pool_timeout,
                max_idle=settings.pool_max_idle,
                max_lifetime=settings.pool_max_lifetime,
                configure=self._configure,
                name=self.name,
                open=False,
            )
            try:
                await pool.open(wait=True, timeout=max(settings.connect_timeout, settings.pool_timeout))
            except BaseException:
                await pool.close()
                raise
        if self._closed:  # pragma: no cover - the driver serialises open() and close()
            await pool.close()
            raise errors.DatabaseClosedError(f"this PostgreSQL connection pool was closed while opening ({self.where})")
        self._pool, self._open = pool, True
        log.info(
            "pool.open",
            pool=self.name,
            where=self.where,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def close(self) -> None:
        """Close every idle connection; connections still lent out close when returned. Final.

        From the first line on, :meth:`acquire` raises and :meth:`keep` refuses,
        so nothing started later uses this pool.
        """
        self._closed = True
        pool = self._pool
        if not self._open or pool is None:
            return
        self._open = False
        while self._hot:
            await pool.putconn(self._hot.pop())
        await pool.close()
        log.info("pool.close", pool=self.name, where=self.where)

    def stats(self) -> dict[str, int]:
        """psycopg_pool's counters (``pool_size``, ``pool_available``, ``requests_waiting``...).

        ``pool_available`` counts the idle connections the driver keeps for
        reuse as well; ``connections_lent`` is how many tasks hold one now.
        """
        if not self._open or self._pool is None:
            return {}
        stats = dict(self._pool.get_stats())
        stats["pool_available"] = stats.get("pool_available", 0) + len(self._hot)
        stats["connections_lent"] = self._lent
        return stats

    def _refuse(self) -> NoReturn:
        if self._closed:
            raise errors.DatabaseClosedError(
                f"the PostgreSQL driver was closed ({self.where}); reopen it with `await db.open()` or "
                "`async with db:` before using it again"
            )
        raise errors.ConnectionError(f"the PostgreSQL driver is not open ({self.where}); open it with `async with db:`")

    async def acquire(self) -> PooledConnection:
        """A live connection, waiting at most ``pool_timeout`` seconds for one to be free.

        Raises:
            ommi.errors.TimeoutError: none became free in time (the message names the pool size).
            ommi.errors.DatabaseClosedError: the pool was closed (before or while waiting).
            ommi.errors.ConnectionError: the pool is not open yet, or the server is gone.
        """
        pool = self._pool
        if pool is None or not self._open:
            self._refuse()
        assert pool is not None
        # psycopg_pool's PoolClosed (close() while this task waits) becomes DatabaseClosedError.
        with self._map():
            while self._hot:
                kept = self._hot.pop()
                fresh = time.monotonic() - kept.left_pool_at < _HOT_SECONDS
                try:
                    alive = fresh and await _is_alive(kept)
                except BaseException:
                    await asyncio.shield(pool.putconn(kept))
                    raise
                if alive:
                    self._lent += 1
                    return kept
                if fresh:
                    log.warning("pool.connection.lost", pool=self.name, where=self.where)
                # psycopg_pool applies its lifetime rules, or replaces a lost connection.
                await asyncio.shield(pool.putconn(kept))
            deadline = time.monotonic() + self.settings.pool_timeout
            while True:
                self._getconn_waiting += 1
                try:
                    conn = await pool.getconn(timeout=max(deadline - time.monotonic(), 0.0))
                except PoolTimeout as exc:
                    self._timed_out(exc)
                    raise
                finally:
                    self._getconn_waiting -= 1
                try:
                    alive = await _is_alive(conn)
                except BaseException:
                    await asyncio.shield(pool.putconn(conn))
                    raise
                if alive:
                    assert isinstance(conn, PooledConnection)
                    self._lent += 1
                    conn.left_pool_at = time.monotonic()
                    conn.lender = self
                    return conn
                log.warning("pool.connection.lost", pool=self.name, where=self.where)
                # The pool sees the broken connection, drops it and opens a replacement.
                await pool.putconn(conn)

    def _timed_out(self, exc: PoolTimeout) -> None:
        """Log a failed acquire; raise ConnectionError when the pool was not full but could not connect."""
        size = self.settings.pool_max_size
        log.warning(
            "pool.acquire.failed", pool=self.name, lent=self._lent, max_size=size, timeout=self.settings.pool_timeout
        )
        if self._lent < size:
            raise errors.ConnectionError(
                f"no PostgreSQL connection within {self.settings.pool_timeout} s although only {self._lent} of "
                f"the pool's {size} are in use: new connections to {self.where} fail; check that the server is "
                "up and accepts connections"
            ) from exc

    def keep(self, conn: AsyncConnection[Any]) -> bool:
        """Take a connection back at once, without awaiting anything, when it is healthy and idle.

        It then serves the next :meth:`acquire` directly: psycopg_pool's
        getconn/putconn and the shielded task a release needs cost more than
        a primary-key lookup's round trip. Refused (``False``: use
        :meth:`release`) when the connection is in a transaction, a pipeline
        or a bad state, when a task waits in psycopg_pool for a connection (it
        gets this one through :meth:`release`), or when the pool is closing.
        """
        if (
            not self._open
            or not isinstance(conn, PooledConnection)
            or conn.lender is not self
            or self._getconn_waiting
            or conn.closed
            or conn.pgconn.status != ConnStatus.OK
            or conn.info.transaction_status != TransactionStatus.IDLE
            or conn.pgconn.pipeline_status != PipelineStatus.OFF
        ):
            return False
        self._lent -= 1
        self._hot.append(conn)
        return True

    async def release(self, conn: AsyncConnection[Any]) -> None:
        """Give a connection back (to this pool, which lent it), rolling back a transaction left open.

        After :meth:`close` the connection is closed instead (the server rolls
        back whatever it had open).
        """
        pool = self._pool
        self._lent -= 1
        try:
            status = conn.info.transaction_status
            if self._closed:
                await conn.close()
            elif conn.pgconn.pipeline_status != PipelineStatus.OFF:
                # A pipeline (a stream's BEGIN, DECLARE and FETCH) interrupted by a
                # cancellation: its commands and results are unaccounted for, and on
                # this connection the next execute() would only queue its statement,
                # so a write would be acknowledged without running. Never reuse it.
                await conn.close()
            elif status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                try:
                    await conn.execute("ROLLBACK")
                except psycopg.Error:
                    log.warning("pool.rollback.failed", pool=self.name, exc_info=True)
                    await conn.close()
            elif status == TransactionStatus.ACTIVE:
                # A statement was interrupted and could not be cancelled: the
                # connection's state is unknown, so it is not reused.
                await conn.close()
        finally:
            if pool is not None:
                await pool.putconn(conn)
            else:
                await conn.close()
