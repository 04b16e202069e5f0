"""``SQLiteDriver``: Ommi on SQLite, through aiosqlite."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from ommi import errors
from ommi.drivers import Capabilities, Driver, DriverTransaction, TransactionOptions, get_logger
from ommi.models.schema import ModelSchema
from ommi.sql import SQLTransactionOperations

from ommi_sqlite._inspect import inspect
from ommi_sqlite._memory import acquire_shared, release_shared
from ommi_sqlite._migrate import MigrationSteps, lock_for_migration, migration_statements
from ommi_sqlite._operations import SQLCore, SQLiteOperations, undo_savepoint
from ommi_sqlite._pool import Channel, Link, Pool, Stream
from ommi_sqlite._schema import apply_schema, drop_schema
from ommi_sqlite._settings import SQLiteSettings, parse_settings

if TYPE_CHECKING:
    from ommi.migrations import MigrationStep
    from ommi.migrations.inspection import Inspection

__all__ = ["SQLiteDriver", "SQLiteMigration", "SQLiteTransaction"]

log = get_logger("ommi.sqlite.driver")


class SQLiteDriver(SQLiteOperations, Driver[SQLiteSettings]):
    """Ommi's SQLite driver: every call into SQLite runs on aiosqlite's threads.

    Build it with :meth:`connect` (no I/O happens until the database opens)::

        SQLiteDriver.connect()                      # private in-memory database
        SQLiteDriver.connect(":memory:")            # the same
        SQLiteDriver.connect("app.db")              # a file, created if missing
        SQLiteDriver.connect({"database": "app.db", "pool_size": 8})
        SQLiteDriver.connect("sqlite:///app.db?busy_timeout=10")
        SQLiteDriver.connect("app.db", batch_size=500)

    Settings (keyword arguments, mapping keys, or URL query parameters):

    * ``database`` (``":memory:"``): a file path, a ``file:`` URI or ``":memory:"``.
    * ``pool_size`` (4): reader connections of a file database; writes use one
      more connection of their own.
    * ``busy_timeout`` (5.0): seconds to wait for a connection, the write lock
      or another process's lock before raising :class:`ommi.errors.TimeoutError`.
    * ``batch_size`` (1000): rows per batch when ``.all`` streams and the query
      sets no ``batch_size``; also :attr:`default_batch_size`.
    * ``journal_mode`` (``"wal"``): journal of a file database; WAL lets
      readers run while a transaction is open.
    * ``synchronous`` (``"normal"``): ``PRAGMA synchronous``.
    * ``statement_cache_size`` (256): prepared statements kept per connection.

    URLs (as :func:`ommi.connect` passes them), SQLAlchemy's way:
    ``sqlite:///relative/path.db`` (three slashes: relative to the working
    directory), ``sqlite:////absolute/path.db`` (four slashes), and
    ``sqlite://`` or ``sqlite:///:memory:`` for memory. Any other form
    (``sqlite:/app.db``, ``sqlite:app.db``, a host) and unknown settings raise
    :class:`ommi.errors.ConfigurationError`.

    Behaviour: foreign keys are enforced; a transaction holds the writer
    connection from ``BEGIN IMMEDIATE`` (so it can never fail half-way for
    want of the write lock) to commit or rollback, while reads elsewhere see
    the last committed state. An in-memory database lives in one connection:
    concurrent tasks are safe, but while a transaction is open other tasks wait
    for it, so memory drivers declare ``transaction_isolation`` absent.

    ``close()`` is final for everything begun before it: operations,
    streams and transactions of the closed connections fail with
    :class:`ommi.errors.ConnectionError` (a transaction's ``rollback()``
    simply ends it). ``open()`` after ``close()`` builds a new pool (new
    connections, new locks); nothing of the closed one is reused, and a
    closed in-memory database is gone.
    """

    name = "sqlite"
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
        # db.raw(sql, params): the statement through the sqlite3 module (qmark or named parameters).
        raw_sql=True,
        # ommi_fold(), core's own fold_case registered on every connection.
        case_insensitive_text=True,
        json_fields=True,
    )
    # Every SQLite transaction is serializable (one writer from BEGIN IMMEDIATE on, readers see
    # committed states): it satisfies each level asked for, as the SQL standard allows.
    supported_isolation_levels = frozenset({"read_committed", "repeatable_read", "serializable"})
    default_batch_size = 1000

    def __init__(self, settings: SQLiteSettings | None = None) -> None:
        self.settings = settings if settings is not None else SQLiteSettings()
        # Instance attributes: connect() must never change the class defaults.
        self.default_batch_size = self.settings.batch_size
        if self.settings.is_memory:
            self.capabilities = dataclasses.replace(type(self).capabilities, transaction_isolation=False)
        self._core = SQLCore()
        # A named in-memory database takes its shared pool in open().
        self._pool = Pool(self.settings, self.settings.display_name)
        self._shared = False
        self._opening: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    def connect(cls, settings: str | os.PathLike[str] | Mapping[str, Any] | None = None, /, **options: Any) -> Self:
        """Build a driver from a path, a ``sqlite:`` URL or a mapping, plus keyword settings.

        Raises:
            ConfigurationError: an unknown setting or an unusable value.
        """
        return cls(parse_settings(settings, options))

    @property
    def pool(self) -> Pool:
        """The driver's connections (for statistics: ``driver.pool.stats()``)."""
        return self._pool

    @property
    def description(self) -> str:
        if self.settings.shared_memory_name is not None:
            return f"sqlite {self.settings.shown_database!r} (in memory)"
        if self.settings.is_memory:
            return "sqlite (in memory)"
        return f"sqlite {self.settings.shown_database!r}"

    def __repr__(self) -> str:
        return f"<SQLiteDriver {self.description}>"

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None and (pool.is_open or (getattr(self, "_shared", False) and not pool.closed)):
            warnings.warn(f"{self!r} was not closed; use `async with Ommi(driver)`", ResourceWarning, stacklevel=1)

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Open the database; after :meth:`close`, a new generation (new pool, new locks)."""
        closing = self._closing
        if closing is not None and not closing.done():
            await asyncio.shield(closing)  # a close in progress finishes first
        if self.settings.shared_memory_name is None:
            if self._pool.closed:
                # Never reopen a closed pool: work of that generation still
                # holds it and must not reach the new one.
                self._pool = Pool(self.settings, self.settings.display_name)
            await self._pool.open()
            return
        if self._shared:
            return
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(self._open_shared())
        await asyncio.shield(self._opening)

    async def _open_shared(self) -> None:
        pool = await acquire_shared(self.settings, self.settings.display_name)
        self._pool, self._shared = pool, True

    async def close(self) -> None:
        """Close every connection; work begun before fails cleanly. Idempotent, and safe while operations run."""
        if self._closing is None or self._closing.done():
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        opening = self._opening
        if opening is not None and not opening.done():
            await asyncio.wait([opening])
        if opening is not None and opening.done() and not opening.cancelled():
            opening.exception()  # retrieved: whoever awaited open() got it already
        if self._shared:
            self._shared = False
            pool, self._pool = self._pool, Pool.retired(self.settings, self.settings.display_name)
            await release_shared(self.settings, pool)
            return
        await self._pool.close()

    async def begin(self, options: TransactionOptions | None = None) -> SQLiteTransaction:
        """``BEGIN IMMEDIATE`` on the writer, holding its lock until commit or rollback.

        Serializable, so any ``options.isolation`` is satisfied as it is.
        ``options.lock_timeout`` bounds the wait for the write lock instead of
        ``busy_timeout`` (this process's lock, then SQLite's busy handler for
        another process's); ``options.statement_timeout`` bounds each statement
        of the transaction instead of the ``statement_timeout`` setting.
        """
        pool = self._pool  # the transaction belongs to this generation, whatever open() does later
        lock_timeout = None if options is None else options.lock_timeout
        statement_timeout = None if options is None else options.statement_timeout
        setting = None if lock_timeout is None else "lock_timeout"
        link = await pool.lock_writer(lock_timeout, setting)
        try:
            await _begin_immediate(link, lock_timeout, pool.settings.busy_timeout)
            if statement_timeout is not None:
                await link.bound(statement_timeout)
        except BaseException:
            await asyncio.shield(_release(pool, link))
            raise
        log.debug("transaction.begin", driver="sqlite", database=link.database)
        transaction = SQLiteTransaction(self, pool, link)
        return transaction

    # -- where operations run ------------------------------------------------

    def _connection(self, *, write: bool) -> contextlib.AbstractAsyncContextManager[Link]:
        return self._pool.write() if write else self._pool.read()

    @contextlib.asynccontextmanager
    async def _atomic(self) -> AsyncIterator[Link]:
        """The writer, with the block's statements inside a savepoint: all or none."""
        async with self._pool.write() as link:
            try:
                # Inside the try: cancelled while it runs, it must still be undone.
                await link.execute('SAVEPOINT "ommi_atomic"')
                yield link
                await link.execute('RELEASE "ommi_atomic"')
            except BaseException:
                await asyncio.shield(undo_savepoint(link, '"ommi_atomic"'))
                raise

    def _channel(self) -> contextlib.AbstractAsyncContextManager[Channel]:
        return self._pool.stream()

    # -- schema --------------------------------------------------------------

    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        async with self._pool.write() as link:
            await apply_schema(link, self._core, schemas)

    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        async with self._pool.write() as link:
            await drop_schema(link, self._core, schemas)

    async def inspect_schema(self) -> Inspection:
        """Read the database's tables into models (see :mod:`ommi_sqlite._inspect`)."""
        async with self._pool.read() as link:
            return await inspect(link, link.database)

    # -- migrations (ommi_sqlite._migrate) -------------------------------------

    async def begin_migration(self, *, lock_timeout: float | None = None) -> SQLiteMigration:
        pool = self._pool
        return SQLiteMigration(self, pool, await lock_for_migration(pool, lock_timeout))

    def migration_statements(self, step: MigrationStep) -> list[str]:
        return migration_statements(self._core, step)


def _busy_pragma(seconds: float) -> str:
    return f"PRAGMA busy_timeout = {max(1, round(seconds * 1000))}"


async def _begin_immediate(link: Link, lock_timeout: float | None, busy_timeout: float) -> None:
    """``BEGIN IMMEDIATE``, waiting at most ``lock_timeout`` (else ``busy_timeout``) for another process's lock.

    Raises:
        TimeoutError: naming ``lock_timeout`` when the transaction gave one.
    """
    if lock_timeout is None:
        await link.execute("BEGIN IMMEDIATE")
        return
    await link.execute(_busy_pragma(lock_timeout))
    try:
        await link.execute("BEGIN IMMEDIATE")
    except errors.TimeoutError as exc:
        raise errors.TimeoutError(
            f"lock_timeout={lock_timeout:g}s exceeded: sqlite database {link.database}: another connection "
            "(another process) held the database's write lock that long"
        ) from exc
    finally:
        await asyncio.shield(link.execute(_busy_pragma(busy_timeout)))


async def _release(pool: Pool, link: Link) -> None:
    """Roll back whatever is open on the writer of ``pool`` and unlock it; never raises.

    The writer's statement bound goes back to the setting's.
    """
    try:
        if not pool.closed:  # closing the connection rolled it back already
            await link.rollback()
    except Exception:  # the caller is already raising the error that matters
        log.warning("transaction.rollback.failed", driver="sqlite", database=link.database, exc_info=True)
    finally:
        _unbound(pool, link)
        pool.unlock_writer()


def _unbound(pool: Pool, link: Link) -> None:
    """Give the writer back the ``statement_timeout`` setting's bound (a transaction may have set its own)."""
    if link.statement_timeout != pool.settings.statement_timeout:
        link.rebound(pool.settings.statement_timeout)


class SQLiteTransaction(SQLTransactionOperations[Link], SQLiteOperations, DriverTransaction):
    """A transaction on the writer connection, from ``BEGIN IMMEDIATE`` to commit or rollback.

    It belongs to the pool (generation) it began on: it unlocks that pool's
    writer only. When the driver closed meanwhile, its statements and
    :meth:`commit` raise :class:`ommi.errors.ConnectionError` (SQLite rolled
    it back when the connection closed) and :meth:`rollback` just ends it.

    Tasks sharing the transaction take turns: each operation (and each call
    into SQLite of a stream) holds the transaction's lock, so the statements
    of two operations never interleave. Its streams read a snapshot (the
    connection is written through meanwhile, see
    :class:`ommi_sqlite._pool.Stream`); commit and rollback end them, and a
    stream read on afterwards raises :class:`ommi.errors.TransactionError`.
    """

    def __init__(self, driver: SQLiteDriver, pool: Pool, link: Link) -> None:
        self._driver = driver
        self._core = driver._core
        self._pool = pool
        self._link: Link | None = link
        self._state = "open"
        self._turns = asyncio.Lock()
        self._streams: set[Stream] = set()
        self._broken: str | None = None
        """Why the transaction cannot go on: SQLite rolled it back (an interrupted write)."""

    def _owned(self) -> Link | None:
        return self._link

    def _check_usable(self, conn: Link) -> None:
        self._pool._check_not_closed()
        self._after_failure(conn)
        if self._broken is not None:
            raise errors.TransactionError(
                f"the transaction cannot go on: {self._broken}; roll it back (sqlite database {conn.database})"
            )

    def _after_failure(self, conn: Link) -> None:
        if self._broken is None and not self._pool.closed and not conn.in_transaction:
            # SQLite undoes the whole transaction when a write inside it is interrupted (statement_timeout):
            # what follows would run outside any transaction and commit at once.
            self._broken = "SQLite rolled it back when a statement was interrupted (statement_timeout)"

    @contextlib.asynccontextmanager
    async def _channel(self) -> AsyncIterator[Channel]:
        link = self._current()
        yield Channel(link, self._stream_turn, shared=True, streams=self._streams, discard=self._discard_snapshot)

    async def _discard_snapshot(self, table: str) -> None:
        """Drop the snapshot table of a stream closed early (an ended transaction took it along)."""
        with contextlib.suppress(errors.OmmiError):
            async with self._stream_turn() as link:
                await link.execute(f"DROP TABLE IF EXISTS temp.{table}")

    async def _end_streams(self, *, drop: bool) -> None:
        for stream in list(self._streams):
            await stream.end(drop=drop)
        self._streams.clear()

    async def commit(self) -> None:
        async with self._turns:  # after any statement another task of the transaction is running
            link = self._link
            if link is None:
                raise errors.TransactionError(f"the transaction is already {self._state}")
            self._link = None
            self._state = "committed"
            pool = self._pool
            if pool.closed:
                self._state = "rolled back"
                pool.unlock_writer()
                raise errors.ConnectionError(
                    f"sqlite database {link.database}: the driver was closed while this transaction was open; "
                    "nothing of it was committed (closing the connection rolled it back)"
                )
            self._after_failure(link)
            if self._broken is not None:
                self._state = "rolled back"
                await asyncio.shield(_release(pool, link))
                raise errors.TransactionError(
                    f"the transaction was rolled back, not committed: {self._broken} (sqlite database {link.database})"
                )
            try:
                # Snapshot tables would outlive the commit; cursors left open would keep reading.
                await self._end_streams(drop=True)
                await link.execute("COMMIT")
            except BaseException:
                self._state = "rolled back"
                await asyncio.shield(_release(pool, link))
                raise
            _unbound(pool, link)
            pool.unlock_writer()
        log.debug("transaction.commit", driver="sqlite", database=link.database)

    async def rollback(self) -> None:
        async with self._turns:
            link = self._link
            if link is None:
                return
            self._link = None
            self._state = "rolled back"
            pool = self._pool
            try:
                await self._end_streams(drop=False)  # the rollback drops their snapshot tables
                if not pool.closed:  # else closing the connection rolled it back
                    await link.rollback()
            finally:
                _unbound(pool, link)
                pool.unlock_writer()
        log.debug("transaction.rollback", driver="sqlite", database=link.database)


class SQLiteMigration(MigrationSteps, SQLiteTransaction):
    """The transaction of one migration (``ommi.migrations``): foreign keys off until it ends.

    See :mod:`ommi_sqlite._migrate`.
    """
