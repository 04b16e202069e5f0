"""Connections of the SQLite driver: one writer, a few readers, and their locks.

A *file* database runs in WAL mode with

* one **writer** connection behind an :class:`asyncio.Lock`: every write, and
  every transaction from ``BEGIN IMMEDIATE`` to ``COMMIT``/``ROLLBACK``, holds
  the lock, so writers of this process queue fairly in the event loop instead
  of spinning in SQLite's busy handler;
* up to ``pool_size`` **reader** connections, opened on demand. WAL readers see
  the last committed state and never wait for the writer, so other tasks never
  see a transaction's uncommitted rows. A streaming ``.all`` keeps its reader
  until the iterator is exhausted or closed.

A *memory* database exists only inside one connection, so the driver has one
connection and one lock (the "gate"). Each statement or batch of a read takes
the gate briefly; a write or a whole transaction holds it. Concurrent tasks are
safe, but while a transaction is open every other task waits for it: memory
databases have no transaction isolation in the "read while someone writes"
sense (the driver declares ``transaction_isolation`` absent for them). A
stream there, as in a transaction, shares its connection with writes, so it
reads a snapshot of its rows (see :class:`Stream`).

Every wait (for the writer, a reader or the gate) is bounded by
``busy_timeout`` and ends in :class:`ommi.errors.TimeoutError` naming it;
SQLite's own busy handler, for other processes' locks, uses the same timeout.
A transaction given its own ``lock_timeout`` waits that long instead.

``statement_timeout`` (the setting, or a transaction's own) bounds each call
into SQLite: a progress handler, installed on a connection the first time a
bound applies to it, interrupts the statement once its deadline passed
(:meth:`Link.bound`); the call fails with :class:`ommi.errors.TimeoutError`
naming ``statement_timeout``. An interrupted statement is undone; an
interrupted write inside a transaction undoes the whole transaction (SQLite's
rule), which the driver's transaction then reports.

A :class:`Pool` is one *generation* of the driver: opened once, closed once,
never opened again. ``close()`` closes every connection, also those in use,
and wakes every task waiting for one, which then fails with
:class:`ommi.errors.ConnectionError`. Work begun on a generation (an
operation, a stream, a transaction) holds that generation and releases only
its locks, so nothing it does can touch the generation the driver opens next.

Each connection keeps its cursors for reuse and sqlite3's statement cache holds
the prepared statements, so repeated queries are neither re-prepared nor given
a new cursor.

Every connection's aiosqlite worker thread is a daemon thread, so the
interpreter never waits for a database left open at exit; a pool still open
then is closed by an ``atexit`` handler (:func:`close_pools_at_exit`), each
connection in its own worker thread, which rolls back a transaction left
open (it never committed) and checkpoints the WAL file.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import contextlib
import dataclasses
import itertools
import logging
import secrets
import sqlite3
import threading
import time
import warnings
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import aiosqlite
from ommi import errors
from ommi.drivers import get_logger, map_exceptions

from ommi_sqlite._dialect import DECIMAL_COLLATION, DECIMAL_SUM, FOLD_FUNCTION, DecimalSum, compare_decimals, fold_text
from ommi_sqlite._errors import exception_map
from ommi_sqlite._settings import MEMORY, SQLiteSettings

__all__ = ["Channel", "Gate", "Link", "Pool", "Stream", "close_pools_at_exit", "no_gate", "variable_limit"]

log = get_logger("ommi.sqlite.driver")

_LOCKS = frozenset({"the write lock", "the in-memory database"})
"""What ``_acquire`` waits for that another transaction holds: a wait past the timeout is a BusyError."""

_MIN_VERSION = (3, 35, 0)
_VARIABLE_LIMIT = [999]
_IDLE_CURSORS = 4
_FETCH_CHUNK = 1000
_PROGRESS_STEPS = 10_000
"""SQLite virtual-machine steps between two calls of the statement-timeout handler (about a millisecond or less)."""
"""Most rows fetched per call into the worker thread; a larger batch takes several calls."""
_SNAPSHOT_TOKEN = secrets.token_hex(4)
_snapshot_numbers = itertools.count(1)
_EXIT_GRACE = 2.0
"""Seconds the interpreter's exit waits, in all, for the worker threads closing pools left open."""
_open_pools: weakref.WeakSet[Pool] = weakref.WeakSet()
"""Pools opened and not closed: :func:`close_pools_at_exit` closes them."""


def variable_limit() -> int:
    """The most ``?`` parameters one statement may have (read from the SQLite library)."""
    return _VARIABLE_LIMIT[0]


Gate = Callable[[], contextlib.AbstractAsyncContextManager[object]]
"""Entered around each call into SQLite by a stream (a lock for memory databases)."""


def no_gate() -> contextlib.AbstractAsyncContextManager[None]:
    """The gate of a connection used by one task at a time: nothing to wait for."""
    return contextlib.nullcontext()


class _OmmiConnection(sqlite3.Connection):
    """sqlite3 connection with Ommi's collation, Decimal sum and text fold; built in aiosqlite's worker thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.create_collation(DECIMAL_COLLATION, compare_decimals)
        # typeshed's protocol wants int results; SQLite takes any value an aggregate finalizes to.
        self.create_aggregate(DECIMAL_SUM, 1, DecimalSum)  # type: ignore[arg-type]
        self.create_function(FOLD_FUNCTION, 1, fold_text, deterministic=True)
        # The limit is a property of the (process-wide) library build.
        _VARIABLE_LIMIT[0] = self.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def _worker_thread(connection: aiosqlite.Connection) -> threading.Thread | None:
    """The thread running ``connection``'s calls into SQLite.

    aiosqlite 0.21 and later keep it in ``_thread``; before, the connection
    was the thread itself.
    """
    thread = getattr(connection, "_thread", connection)
    return thread if isinstance(thread, threading.Thread) else None


def _daemonize(connection: aiosqlite.Connection, database: str) -> None:
    """Make the (not yet started) worker thread of ``connection`` a daemon thread.

    aiosqlite's worker threads are not daemons: the interpreter waits for
    every one at exit, and the thread of a connection nobody closed waits
    for work forever, so a script that never closed its database would never
    exit. A daemon thread is not waited for; :func:`close_pools_at_exit`
    closes the connections left open instead.
    """
    thread = _worker_thread(connection)
    if thread is not None and not thread.is_alive() and thread.ident is None:
        thread.daemon = True
        thread.name = f"ommi-sqlite {database}"


async def _worker_stopped(connection: aiosqlite.Connection) -> None:
    """Wait for the worker thread of a connection that failed to open.

    aiosqlite stops the thread after a failed connect without waiting, and the
    thread then reports to the event loop; waiting here keeps that report from
    arriving after the loop has closed (an unhandled error in the thread).
    """
    thread = _worker_thread(connection)
    if thread is not None and thread.is_alive():
        await asyncio.to_thread(thread.join, 5.0)


async def _close_once_open(opening: asyncio.Future[aiosqlite.Connection], connecting: aiosqlite.Connection) -> None:
    """Wait for a connection whose opener was cancelled, then close it (or wait for its failed worker)."""
    try:
        conn = await opening
    except BaseException:  # noqa: BLE001 - the opener was cancelled: nobody waits for this error
        await _worker_stopped(connecting)
        return
    await conn.close()


def close_pools_at_exit() -> None:
    """Close the connections of every pool still open, from outside any event loop (an ``atexit`` handler).

    Each connection is closed in its own worker thread by aiosqlite's
    ``stop()`` (closing rolls back a transaction left open: it never
    committed), then the thread ends. The exit waits at most
    ``_EXIT_GRACE`` seconds in all: a thread still busy after that (a long
    statement) is a daemon and is abandoned, and SQLite's journal makes the
    abandoned statement all or nothing.
    """
    pools = list(_open_pools)
    if not pools:
        return
    threads: list[threading.Thread] = []
    with warnings.catch_warnings():
        # aiosqlite's stop() makes a future on asyncio.get_event_loop(): with no
        # loop current it makes none (and some Pythons warn about asking).
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # No loop runs any more: clear the current one, since a closed loop
            # left current would get the thread's report and fail it.
            with contextlib.suppress(Exception):
                asyncio.set_event_loop(None)
        for pool in pools:
            threads.extend(pool.abandon())
    deadline = time.monotonic() + _EXIT_GRACE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(close_pools_at_exit)


async def _discard(cursor: aiosqlite.Cursor) -> None:
    """Close the cursor of a statement that failed or was cancelled; never raises.

    A cancelled call leaves its statement running in the worker thread, and a
    statement not yet reset keeps what it holds: a reader's WAL snapshot (later
    reads on that connection would miss newer commits) or the writer's implicit
    transaction (later writes would join it, uncommitted). Closing the cursor,
    queued behind the statement, resets it.
    """
    with contextlib.suppress(Exception):
        await asyncio.shield(cursor.close())


class Link:
    """One aiosqlite connection and the cursors it reuses.

    Args:
        conn: the open connection.
        database: the database as messages name it.
        busy_timeout: for error messages.
    """

    def __init__(self, conn: aiosqlite.Connection, database: str, busy_timeout: float) -> None:
        self.conn = conn
        self.database = database
        self.busy_timeout = busy_timeout
        self._exceptions = exception_map(database, busy_timeout)
        self.statement_timeout: float | None = None
        """Seconds each call into SQLite may run (``None``: no bound); set with :meth:`bound`."""
        self._deadline: float | None = None
        """When the running call must stop (``time.monotonic()``); read by the progress handler in the worker thread."""
        self._handler = False
        self._idle: list[aiosqlite.Cursor] = []
        self._cursors: weakref.WeakSet[aiosqlite.Cursor] = weakref.WeakSet()
        self.cursors_opened = 0
        """How many cursors this connection has created (they are reused; a test watches this)."""
        self.leftovers: list[str] = []
        """Snapshot tables of streams closed while the connection was busy: dropped when it is free."""

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """The exception translation for this connection's database."""
        return map_exceptions(self._exceptions)

    async def bound(self, statement_timeout: float | None) -> None:
        """Bound each later call into SQLite on this connection to ``statement_timeout`` seconds (``None``: none).

        The progress handler is installed the first time a bound is set and
        stays (it returns at once while no deadline is set).
        """
        if statement_timeout is not None and not self._handler:
            await self.conn.set_progress_handler(self._progress, _PROGRESS_STEPS)
            self._handler = True
        self.rebound(statement_timeout)

    def rebound(self, statement_timeout: float | None) -> None:
        """Change the bound of a connection whose handler is installed already (no I/O)."""
        assert statement_timeout is None or self._handler, "call bound() first"
        self.statement_timeout = statement_timeout
        self._exceptions = exception_map(self.database, self.busy_timeout, statement_timeout=statement_timeout)

    def _progress(self) -> int:
        """SQLite's progress handler (in the worker thread): nonzero interrupts the running statement."""
        deadline = self._deadline
        return 1 if deadline is not None and time.monotonic() > deadline else 0

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Around one call into SQLite: its deadline, when the connection has a statement bound."""
        timeout = self.statement_timeout
        if timeout is None:
            yield
            return
        self._deadline = time.monotonic() + timeout
        try:
            yield
        finally:
            self._deadline = None

    def _trace(self, sql: str) -> None:
        if log.is_enabled_for(logging.DEBUG):
            # Statement text only; parameter values never reach the log.
            log.debug("query.execute", driver="sqlite", database=self.database, sql=sql)

    async def _cursor(self) -> aiosqlite.Cursor:
        if self._idle:
            return self._idle.pop()
        self.cursors_opened += 1
        cursor = await self.conn.cursor()
        self._cursors.add(cursor)
        return cursor

    def _reuse(self, cursor: aiosqlite.Cursor) -> None:
        if len(self._idle) < _IDLE_CURSORS:
            self._idle.append(cursor)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return its row count (rows changed by DML)."""
        self._trace(sql)
        with self.errors():
            cursor = await self._cursor()
            try:
                with self.timed():
                    await cursor.execute(sql, params)
            except BaseException:
                await _discard(cursor)
                raise
            count = cursor.rowcount
        self._reuse(cursor)
        return count

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a statement and return every row it yields, in one call into the worker thread.

        Statement and fetch run together in the thread, so a cancelled caller
        cannot leave the statement unfinished: it runs to its end and is
        reset there, and its rows are dropped.
        """
        self._trace(sql)
        with self.errors(), self.timed():
            rows: list[tuple[Any, ...]] = list(await self.conn.execute_fetchall(sql, params))  # type: ignore[arg-type]
        return rows

    @staticmethod
    def snapshot_name() -> str:
        """A new quoted name for a stream's snapshot table (never one a model could have by chance)."""
        return f'"ommi_snapshot_{_SNAPSHOT_TOKEN}_{next(_snapshot_numbers)}"'

    async def drop_leftovers(self) -> None:
        """Drop the snapshot tables left by streams closed early (the caller holds the connection); never raises."""
        while self.leftovers:
            table = self.leftovers.pop()
            try:
                await asyncio.shield(self.execute(f"DROP TABLE IF EXISTS temp.{table}"))
            except Exception:  # a closed connection took it along
                log.debug("stream.snapshot.drop_failed", driver="sqlite", database=self.database, exc_info=True)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on this connection."""
        return self.conn.in_transaction

    async def rollback(self) -> None:
        """Roll back whatever is open (a no-op without a transaction)."""
        with self.errors():
            await self.conn.rollback()

    def stop(self) -> threading.Thread | None:
        """Close the connection in its worker thread and end the thread, without an event loop; the thread.

        For the exit of the interpreter (:func:`close_pools_at_exit`): the
        caller joins the thread returned to wait for the close.
        """
        thread = _worker_thread(self.conn)
        try:
            self.conn.stop()
        except Exception:  # noqa: BLE001 - at exit there is nobody to report to
            return None
        return thread if thread is not None and thread.is_alive() else None

    async def close(self) -> None:
        """Close the connection, and its cursors first; errors while closing are logged, not raised.

        A statement still open on a cursor (a stream's, or a transaction's)
        would keep the closed connection alive as a "zombie", still holding
        its transaction and the write lock of the file, until that cursor is
        garbage collected; closing every cursor first releases them now.
        """
        self._idle.clear()
        for cursor in list(self._cursors):
            with contextlib.suppress(Exception):
                await cursor.close()
        try:
            await self.conn.close()
        except Exception:  # closing must not mask the error that led here
            log.warning("connection.close.failed", driver="sqlite", database=self.database, exc_info=True)


@dataclasses.dataclass(slots=True)
class Channel:
    """Where a stream reads.

    Attributes:
        link: the connection.
        gate: entered around each call into SQLite; it raises when the
            stream's owner ended (a closed pool, an ended transaction).
        shared: whether other work writes through ``link`` while the stream
            is open (an in-memory database's only connection, or a
            transaction's): the stream then reads a snapshot of its rows.
        streams: the open streams of the owner (a transaction), which ends
            them before it commits or rolls back; ``None`` for none.
        discard: drops a snapshot table of a stream closed early (it knows
            when the connection is free for that).
    """

    link: Link
    gate: Gate
    shared: bool = False
    streams: set[Stream] | None = None
    discard: Callable[[str], Awaitable[None]] | None = None


class Stream:
    """One streaming read: its cursor, and the snapshot table it reads from when it needs one.

    On a connection that others write through (:attr:`Channel.shared`) a live
    cursor would see those writes between batches (a row moved by an update
    twice, a deleted one never). So the first call reads at most one batch
    (``min(size, 1000)`` rows) and one more row: a result that fits is
    complete already. A larger result is copied, by one statement and under
    the same hold of the gate, into a temporary table (``INSERT INTO ...
    SELECT`` the query, in SQLite's temporary storage, not in Python memory),
    and the batches are read from that copy in its order. The copy is dropped
    when the stream ends.
    """

    __slots__ = ("channel", "cursor", "ended", "table")

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.cursor: aiosqlite.Cursor | None = None
        self.table: str | None = None
        self.ended = False
        """Set by :meth:`end`: the owner took back the cursor and the table."""

    async def end(self, *, drop: bool) -> None:
        """Close the cursor and (``drop``) drop the snapshot table, for the owner ending; never raises.

        The owner calls this holding the connection (a transaction, under its
        lock, before ``COMMIT`` or ``ROLLBACK``); the stream then raises at its
        next batch, through its gate.
        """
        if self.ended:
            return
        self.ended = True
        cursor, self.cursor = self.cursor, None
        if cursor is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(cursor.close())
        table, self.table = self.table, None
        if table is not None and drop:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.channel.link.execute(f"DROP TABLE IF EXISTS temp.{table}"))

    async def _snapshot(self, cursor: aiosqlite.Cursor, sql: str, params: Sequence[Any]) -> None:
        """Copy the rows of ``sql`` into a new temporary table and point ``cursor`` at the copy, in order.

        The copy's columns are positional (``c0``, ``c1``, ...) and untyped, so
        every value is kept exactly as read and no column of the model can
        shadow the sequence number ``n`` that keeps the query's order.
        """
        link = self.channel.link
        columns = ", ".join(f'"c{i}"' for i in range(len(cursor.description)))
        self.table = table = link.snapshot_name()
        await cursor.execute(f'CREATE TEMP TABLE {table} ("n" INTEGER PRIMARY KEY, {columns})')
        await cursor.execute(f"INSERT INTO temp.{table} ({columns}) {sql}", params)
        await cursor.execute(f'SELECT {columns} FROM temp.{table} ORDER BY "n"')

    async def batches(
        self, sql: str, params: Sequence[Any], size: int, limit: int | None = None
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """Yield the rows of a query in batches of ``size`` (``fetchmany``).

        The gate is entered around each call into SQLite, never while a batch
        is handed to the caller. ``limit`` is the query's LIMIT, if any: once
        that many rows came, the statement is known to be done. The cursor is
        reused when the rows are exhausted and closed when the caller stops
        early, so an unfinished statement never pins an old snapshot.
        """
        channel = self.channel
        link, gate = channel.link, channel.gate
        link._trace(sql)
        if channel.streams is not None:
            channel.streams.add(self)
        finished = False
        remaining = limit
        try:
            first: list[tuple[Any, ...]] | None = None
            async with gate():
                with link.errors(), link.timed():
                    self.cursor = cursor = await link._cursor()
                    await cursor.execute(sql, params)
                    if channel.shared:
                        probe = min(size, _FETCH_CHUNK)
                        first = list(await cursor.fetchmany(probe + 1))  # type: ignore[arg-type]
                        if len(first) > probe:
                            # More than a batch: read it from a copy taken now,
                            # before anyone can write between two batches.
                            first = None
                            await self._snapshot(cursor, sql, params)
            if first is not None:
                # The statement stepped past its last row: it is done, and reset.
                finished = True
                if first:
                    yield first
                return
            while True:
                rows: list[tuple[Any, ...]] = []
                while len(rows) < size:
                    # Each call into the worker thread builds its rows holding
                    # the GIL; small calls keep the event loop's turns short.
                    want = min(size - len(rows), _FETCH_CHUNK)
                    async with gate():
                        with link.errors(), link.timed():
                            chunk = await cursor.fetchmany(want)
                    rows.extend(chunk)  # type: ignore[arg-type]
                    if len(chunk) < want:  # type: ignore[arg-type]
                        break
                if remaining is not None:
                    remaining -= len(rows)
                # sqlite3 steps past each row it returns, so after the last row
                # of a LIMIT the statement has already finished and been reset.
                finished = len(rows) < size or (remaining is not None and remaining <= 0)
                if rows:
                    yield rows
                if finished:
                    return
        finally:
            if channel.streams is not None:
                channel.streams.discard(self)
            if not self.ended:
                self.ended = True
                cursor_left, self.cursor = self.cursor, None
                if cursor_left is not None:
                    if finished:
                        link._reuse(cursor_left)
                    else:
                        with contextlib.suppress(Exception):
                            await asyncio.shield(cursor_left.close())
                table_left, self.table = self.table, None
                if table_left is not None and channel.discard is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(channel.discard(table_left))


def _abandon(acquiring: asyncio.Future[Any], primitive: asyncio.Lock | asyncio.Semaphore) -> None:
    """Give up a pending ``primitive.acquire()``; release the primitive if it was taken after all."""

    def release_if_taken(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            primitive.release()

    if acquiring.done():
        release_if_taken(acquiring)
    else:
        acquiring.cancel()
        acquiring.add_done_callback(release_if_taken)


class Pool:
    """One generation of the driver's connections (see the module docstring)."""

    def __init__(self, settings: SQLiteSettings, database: str) -> None:
        self.settings = settings
        self.database = database
        self.writer: Link | None = None
        self._write_lock: asyncio.Lock | None = None
        self._reader_slots: asyncio.Semaphore | None = None
        self._idle_readers: list[Link] = []
        self._readers: set[Link] = set()
        self._lent_readers = 0
        self._closed = False
        self._opening: asyncio.Future[None] | None = None
        self._closing_signal: asyncio.Future[None] | None = None
        """Done when :meth:`close` begins: wakes the tasks waiting for a connection."""

    @classmethod
    def retired(cls, settings: SQLiteSettings, database: str) -> Pool:
        """A pool that is already closed: what a driver holds between ``close()`` and ``open()``."""
        pool = cls(settings, database)
        pool._closed = True
        return pool

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` ran and :meth:`close` did not."""
        return self.writer is not None and not self._closed

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` began; a closed pool never opens again."""
        return self._closed

    def stats(self) -> dict[str, int]:
        """What the pool holds right now, for monitoring and leak checks (read-only).

        * ``readers_lent``: reader slots taken by reads and open result
          iterators (at most ``pool_size``; 0 when nothing runs);
        * ``readers_open``: reader connections opened so far (kept for reuse);
        * ``writer_locked``: 1 while a write or a transaction holds the writer
          (for memory databases: any operation), else 0.
        """
        lock = self._write_lock
        return {
            "readers_lent": self._lent_readers,
            "readers_open": len(self._readers),
            "writer_locked": int(lock is not None and lock.locked()),
        }

    # -- opening and closing -------------------------------------------------

    async def _connect(self, *, writer: bool) -> Link:
        settings = self.settings
        target = MEMORY if settings.database in (MEMORY, "") else settings.database
        connecting = aiosqlite.connect(
            target,
            timeout=settings.busy_timeout,
            isolation_level=None,  # explicit BEGIN/COMMIT only
            cached_statements=settings.statement_cache_size,
            uri=target.startswith("file:"),
            factory=_OmmiConnection,
        )
        _daemonize(connecting, self.database)
        # Opening goes on in aiosqlite's thread whatever happens to this task: a cancelled open
        # lets it end and closes what it opened, else the connection would be left unclosed.
        opening: asyncio.Future[aiosqlite.Connection] = asyncio.ensure_future(connecting)
        try:
            with map_exceptions(exception_map(self.database, settings.busy_timeout, settings.relative_path_note())):
                conn = await asyncio.shield(opening)
        except asyncio.CancelledError:
            await asyncio.shield(_close_once_open(opening, connecting))
            raise
        except BaseException:
            await asyncio.shield(_worker_stopped(connecting))
            raise
        link = Link(conn, self.database, settings.busy_timeout)
        try:
            if settings.statement_timeout is not None:
                await link.bound(settings.statement_timeout)
            await link.execute("PRAGMA foreign_keys = ON")
            if not settings.is_memory:
                await link.execute(f"PRAGMA synchronous = {settings.synchronous.upper()}")
                if writer:
                    await self._set_journal_mode(link)
            else:
                # Nothing else reads the journal of a private memory database.
                await link.execute("PRAGMA journal_mode = MEMORY")
            # Touch the file now, so a path that is not a database fails in open().
            await link.fetchall("SELECT count(*) FROM sqlite_schema")
        except BaseException:
            await asyncio.shield(link.close())
            raise
        return link

    async def _set_journal_mode(self, link: Link) -> None:
        wanted = self.settings.journal_mode
        rows = await link.fetchall(f"PRAGMA journal_mode = {wanted.upper()}")
        actual = str(rows[0][0]).lower() if rows else ""
        if actual != wanted:
            log.warning(
                "pool.journal_mode.refused", driver="sqlite", database=self.database, wanted=wanted, actual=actual
            )

    async def open(self) -> None:
        """Open the writer connection (readers open on demand); concurrent calls open once.

        Raises:
            ConnectionError: the pool was closed (a closed generation never
                opens again; the driver builds a new pool), or the database
                cannot be opened.
        """
        self._check_not_closed()
        if self.is_open:
            return
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(self._open())
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        if sqlite3.sqlite_version_info < _MIN_VERSION:
            raise errors.ConnectionError(
                f"sqlite database {self.database}: the SQLite library is {sqlite3.sqlite_version}; "
                f"ommi-sqlite needs {'.'.join(map(str, _MIN_VERSION))} or newer (for RETURNING)"
            )
        # asyncio primitives belong to the loop that opens the pool.
        self._write_lock = asyncio.Lock()
        self._reader_slots = asyncio.Semaphore(self.settings.pool_size)
        self._closing_signal = asyncio.get_running_loop().create_future()
        writer = await self._connect(writer=True)
        if self._closed:  # close() began while the connection was being made
            await asyncio.shield(writer.close())
            self._check_not_closed()
        self.writer = writer
        _open_pools.add(self)
        log.debug("pool.open", driver="sqlite", database=self.database, readers=self.settings.pool_size)

    async def close(self) -> None:
        """Close every connection, also those in use, and wake the tasks waiting for one; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _open_pools.discard(self)
        signal = self._closing_signal
        if signal is not None and not signal.done():
            signal.set_result(None)
        opening = self._opening
        if opening is not None and not opening.done():
            # A connection being made closes itself when it sees the pool closed.
            await asyncio.wait([opening])
        if opening is not None and opening.done() and not opening.cancelled():
            opening.exception()  # retrieved: whoever awaited open() got it already
        links = [link for link in (self.writer, *self._readers) if link is not None]
        self._readers.clear()
        self._idle_readers.clear()
        for link in links:
            await link.close()
        log.debug("pool.close", driver="sqlite", database=self.database)

    def abandon(self) -> list[threading.Thread]:
        """Close the pool from outside its event loop (at exit): stop every connection; their worker threads.

        Nothing waits here: the caller joins the threads returned. The pool
        counts as closed afterwards.
        """
        self._closed = True
        _open_pools.discard(self)
        links = [link for link in (self.writer, *self._readers) if link is not None]
        self._readers.clear()
        self._idle_readers.clear()
        threads = [link.stop() for link in links]
        return [thread for thread in threads if thread is not None]

    def _check_not_closed(self) -> None:
        if self._closed:
            memory = " (an in-memory database starts empty again)" if self.settings.is_memory else ""
            raise errors.ConnectionError(
                f"sqlite database {self.database}: the driver was closed; work begun before close() cannot "
                f"go on. `await driver.open()` (or `await db.open()`) opens the database afresh{memory}"
            )

    def _check_open(self) -> None:
        self._check_not_closed()
        if self.writer is None:
            raise errors.ConnectionError(
                f"sqlite database {self.database}: the driver is not open; open it with `await driver.open()` "
                "or `async with Ommi(driver)`"
            )

    # -- waiting -------------------------------------------------------------

    def _timed_out(self, what: str, timeout: float | None = None, setting: str | None = None) -> errors.TimeoutError:
        """The error for a wait past ``timeout``: a :class:`~ommi.errors.BusyError` when ``what`` is a lock.

        Another transaction holding the write lock (or the in-memory database)
        is the in-process form of SQLite's busy database, so ``with_transaction``
        reruns on it; waiting for a free reader is not a conflict, so it stays
        a plain ``TimeoutError``. ``setting`` names the transaction option that
        set ``timeout`` (``lock_timeout``), which the message then names.
        """
        timeout = self.settings.busy_timeout if timeout is None else timeout
        log.warning("pool.acquire.timeout", driver="sqlite", database=self.database, waited_for=what, seconds=timeout)
        kind = errors.BusyError if what in _LOCKS else errors.TimeoutError
        if setting is not None:
            return kind(
                f"{setting}={timeout:g}s exceeded: sqlite database {self.database}: waited that long for {what}, "
                "which another transaction (or write) held the whole time"
            )
        return kind(
            f"sqlite database {self.database}: waited busy_timeout={timeout} s (the driver's lock_timeout) for {what}; "
            "a transaction or stream held it the whole time (in-memory databases serialise every "
            "operation behind an open transaction; use the transaction object inside it)"
        )

    async def _acquire(
        self,
        primitive: asyncio.Lock | asyncio.Semaphore,
        what: str,
        timeout: float | None = None,
        setting: str | None = None,
    ) -> None:
        """Take ``primitive``, waiting at most ``timeout`` (default ``busy_timeout``); fail at once if the pool closes.

        On return the caller holds it, even if the pool closed in between:
        the caller checks, and releases it.
        """
        timeout = self.settings.busy_timeout if timeout is None else timeout
        if not primitive.locked():
            # Free: taken without waiting (the timeout covers the rare hand-over in progress).
            try:
                async with asyncio.timeout(timeout):
                    await primitive.acquire()
            except builtins.TimeoutError:  # asyncio.timeout's
                raise self._timed_out(what, timeout, setting) from None
            return
        signal = self._closing_signal
        assert signal is not None
        acquiring = asyncio.ensure_future(primitive.acquire())
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait((acquiring, signal), return_when=asyncio.FIRST_COMPLETED)
        except builtins.TimeoutError:  # asyncio.timeout's
            _abandon(acquiring, primitive)
            raise self._timed_out(what, timeout, setting) from None
        except BaseException:
            _abandon(acquiring, primitive)
            raise
        if not acquiring.done():  # the pool closed first
            _abandon(acquiring, primitive)
            self._check_not_closed()

    @contextlib.asynccontextmanager
    async def _gate(self) -> AsyncIterator[None]:
        """Hold the in-memory database's lock for one call into SQLite."""
        lock = self._write_lock
        assert lock is not None and self.writer is not None
        await self._acquire(lock, "the in-memory database")
        try:
            self._check_not_closed()
            if self.writer.leftovers:
                await self.writer.drop_leftovers()
            yield
        finally:
            lock.release()

    async def _discard_snapshot(self, table: str) -> None:
        """Drop the snapshot table of a memory stream closed early: now if the database is free, else later.

        Never waits for the database (the task closing the stream may hold it,
        in a transaction): a busy database drops it the next time it is taken.
        """
        writer, lock = self.writer, self._write_lock
        if writer is None or lock is None or self._closed:
            return  # the connection, and its temporary tables, are gone
        writer.leftovers.append(table)
        if not lock.locked():
            with contextlib.suppress(errors.OmmiError):
                async with self._gate():
                    pass  # the gate drops the leftovers

    # -- the writer ----------------------------------------------------------

    async def lock_writer(self, timeout: float | None = None, setting: str | None = None) -> Link:
        """Take this generation's write lock and return its writer; :meth:`unlock_writer` gives it back.

        ``timeout``: seconds to wait for it (default ``busy_timeout``); ``setting``:
        the name the timeout error gives it (default: ``busy_timeout``'s message).
        """
        self._check_open()
        assert self._write_lock is not None and self.writer is not None
        what = "the in-memory database" if self.settings.is_memory else "the write lock"
        await self._acquire(self._write_lock, what, timeout, setting)
        if self._closed:
            self._write_lock.release()
            self._check_not_closed()
        if self.writer.leftovers:
            try:
                await self.writer.drop_leftovers()
            except BaseException:  # cancelled meanwhile: the lock must not stay taken
                self._write_lock.release()
                raise
        return self.writer

    def unlock_writer(self) -> None:
        """Release the write lock taken by :meth:`lock_writer` (of this generation, whatever the driver holds now)."""
        assert self._write_lock is not None
        self._write_lock.release()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Link]:
        """The writer, exclusively, for one operation."""
        link = await self.lock_writer()
        try:
            yield link
        finally:
            self.unlock_writer()

    # -- readers -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Link]:
        """A connection for one read that returns all its rows at once."""
        if self.settings.is_memory:
            async with self.write() as link:
                yield link
            return
        async with self._reader() as link:
            yield link

    @contextlib.asynccontextmanager
    async def stream(self) -> AsyncIterator[Channel]:
        """Where a streaming read runs: a reader of its own, or the in-memory database behind its gate.

        A memory database's stream shares its connection with every other
        task's writes, so it reads a snapshot (see :class:`Stream`).
        """
        self._check_open()
        if self.settings.is_memory:
            assert self.writer is not None
            yield Channel(self.writer, self._gate, shared=True, discard=self._discard_snapshot)
            return
        async with self._reader() as link:
            yield Channel(link, no_gate)

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[Link]:
        self._check_open()
        slots = self._reader_slots
        assert slots is not None
        await self._acquire(slots, f"one of the pool_size={self.settings.pool_size} reader connections")
        self._lent_readers += 1
        link: Link | None = None
        try:
            self._check_not_closed()
            link = self._idle_readers.pop() if self._idle_readers else None
            if link is None:
                made = await self._connect(writer=False)
                if self._closed:  # close() ran while it was being made: it belongs to no one
                    await asyncio.shield(made.close())
                    self._check_not_closed()
                link = made
                self._readers.add(link)
            yield link
        finally:
            if link is not None and not self._closed:
                if link.in_transaction:
                    # A reader never writes; anything open is a leftover to drop.
                    await asyncio.shield(link.rollback())
                self._idle_readers.append(link)
            self._lent_readers -= 1
            slots.release()
