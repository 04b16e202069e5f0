"""``SQLiteDriver``: Ommi on SQLite, through aiosqlite."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Self

from ommi.drivers import Capabilities, Driver, DriverTransaction, get_logger
from ommi.errors import TransactionError
from ommi.models.schema import ModelSchema

from ommi_sqlite.memory import acquire_shared, release_shared
from ommi_sqlite.operations import SQLCore, SQLiteOperations
from ommi_sqlite.pool import Gate, Link, Pool, no_gate
from ommi_sqlite.schema import apply_schema, drop_schema
from ommi_sqlite.settings import SQLiteSettings, parse_settings

__all__ = ["SQLiteDriver", "SQLiteTransaction"]

log = get_logger("ommi.sqlite.driver")


class SQLiteDriver(SQLiteOperations, Driver):
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

    URLs (as :func:`ommi.connect` passes them): ``sqlite:///relative.db``,
    ``sqlite:////absolute/path.db``, and ``sqlite://`` or ``sqlite:///:memory:``
    for memory. Unknown settings raise :class:`ommi.errors.ConfigurationError`.

    Behaviour: foreign keys are enforced; a transaction holds the writer
    connection from ``BEGIN IMMEDIATE`` (so it can never fail half-way for
    want of the write lock) to commit or rollback, while reads elsewhere see
    the last committed state. An in-memory database lives in one connection:
    concurrent tasks are safe, but while a transaction is open other tasks wait
    for it, so memory drivers declare ``transaction_isolation`` absent.
    """

    name = "sqlite"
    capabilities = Capabilities()
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

    @classmethod
    def connect(
        cls, settings: str | os.PathLike[str] | Mapping[str, Any] | None = None, /, **options: Any
    ) -> Self:
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
        if getattr(self, "_shared", False) or (pool is not None and pool.is_open):
            warnings.warn(f"{self!r} was not closed; use `async with Ommi(driver)`", ResourceWarning, stacklevel=1)

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        if self.settings.shared_memory_name is None:
            await self._pool.open()
        elif not self._shared:
            self._pool = await acquire_shared(self.settings, self.settings.display_name)
            self._shared = True

    async def close(self) -> None:
        if self._shared:
            self._shared = False
            pool, self._pool = self._pool, Pool(self.settings, self.settings.display_name)
            await asyncio.shield(release_shared(self.settings, pool))
            return
        await asyncio.shield(self._pool.close())

    async def begin(self) -> SQLiteTransaction:
        link = await self._pool.lock_writer()
        try:
            await link.execute("BEGIN IMMEDIATE")
        except BaseException:
            await asyncio.shield(_release(self._pool, link))
            raise
        log.debug("transaction.begin", driver="sqlite", database=link.database)
        return SQLiteTransaction(self, link)

    # -- where operations run ------------------------------------------------

    def _write(self) -> contextlib.AbstractAsyncContextManager[Link]:
        return self._pool.write()

    def _read(self) -> contextlib.AbstractAsyncContextManager[Link]:
        return self._pool.read()

    def _stream(self) -> contextlib.AbstractAsyncContextManager[tuple[Link, Gate]]:
        return self._pool.stream()

    # -- schema --------------------------------------------------------------

    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        async with self._pool.write() as link:
            await apply_schema(link, self._core, schemas)

    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        async with self._pool.write() as link:
            await drop_schema(link, self._core, schemas)


async def _release(pool: Pool, link: Link) -> None:
    """Roll back whatever is open on the writer and give it back; never raises."""
    try:
        await link.rollback()
    except Exception:  # the caller is already raising the error that matters
        log.warning("transaction.rollback.failed", driver="sqlite", database=link.database, exc_info=True)
    finally:
        pool.unlock_writer()


class SQLiteTransaction(SQLiteOperations, DriverTransaction):
    """A transaction on the writer connection, from ``BEGIN IMMEDIATE`` to commit or rollback."""

    def __init__(self, driver: SQLiteDriver, link: Link) -> None:
        self._driver = driver
        self._core = driver._core
        self._link: Link | None = link

    def _current(self) -> Link:
        if self._link is None:
            raise TransactionError("the transaction has ended; start a new one with db.transaction()")
        return self._link

    @contextlib.asynccontextmanager
    async def _own(self) -> AsyncIterator[Link]:
        yield self._current()

    def _write(self) -> contextlib.AbstractAsyncContextManager[Link]:
        return self._own()

    def _read(self) -> contextlib.AbstractAsyncContextManager[Link]:
        return self._own()

    @contextlib.asynccontextmanager
    async def _stream(self) -> AsyncIterator[tuple[Link, Gate]]:
        yield self._current(), no_gate

    async def commit(self) -> None:
        link = self._current()
        self._link = None
        try:
            await link.execute("COMMIT")
        except BaseException:
            await asyncio.shield(_release(self._driver._pool, link))
            raise
        self._driver._pool.unlock_writer()
        log.debug("transaction.commit", driver="sqlite", database=link.database)

    async def rollback(self) -> None:
        link = self._link
        if link is None:
            return
        self._link = None
        try:
            await link.rollback()
        finally:
            self._driver._pool.unlock_writer()
        log.debug("transaction.rollback", driver="sqlite", database=link.database)
