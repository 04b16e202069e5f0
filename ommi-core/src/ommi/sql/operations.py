"""The data operations of a SQL driver, written once: a driver supplies a dialect and a connection layer.

:class:`SQLOperations` implements ``fetch``, ``count``, ``delete`` and
``update`` of :class:`ommi.drivers.Operations`: it builds each statement with
the driver's :class:`~ommi.sql.SQLCompiler` (cached by shape), turns the
client's rows into canonical rows (``Dialect.from_db``), and reads either in
one round trip (a window that fits one batch) or in batches. A driver
subclasses it once and answers five questions, its *connection layer*:

* :meth:`~SQLOperations._connection`: where one statement runs;
* :meth:`~SQLOperations._atomic`: where several statements succeed or fail together;
* :meth:`~SQLOperations._execute`: run a statement, return its row count;
* :meth:`~SQLOperations._fetch_all`: run a statement, return all its rows;
* :meth:`~SQLOperations._stream`: the rows of a ``SELECT``, in batches.

``insert`` stays the driver's: how many rows one statement carries and how
generated keys come back differ too much between databases (see
``docs/content/guides/writing-a-driver.md``). A driver whose database must
move a key generator past explicit keys implements
:meth:`ommi.sql.Dialect.reserve_key`; :meth:`SQLOperations.update` sends it
before a key is changed.

A transaction shared by several tasks runs one statement at a time:
:class:`SQLTransactionOperations` implements the connection layer's
``_connection``/``_atomic`` for a transaction as *turns* under one
:class:`asyncio.Lock`, and gives streams :meth:`~SQLTransactionOperations._stream_turn`
for each batch, so no statement of one task lands in the middle of another's.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Generic, TypeVar

from ommi.drivers.base import Operations, Row
from ommi.errors import TransactionError
from ommi.expressions import Query
from ommi.models.schema import Field
from ommi.sql._statement import Compiled
from ommi.sql.compiler import SQLCompiler

__all__ = ["SQLOperations", "SQLTransactionOperations"]

C = TypeVar("C")
"""The driver's connection type (whatever its connection layer hands out)."""


class SQLOperations(Operations, Generic[C]):
    """``fetch``/``count``/``delete``/``update`` over a driver's compiler and connection layer.

    Subclasses provide :attr:`compiler` and the five connection-layer
    methods; each may translate the client's exceptions itself (with
    :func:`ommi.drivers.map_exceptions`), as the base never sees them.
    """

    @property
    @abc.abstractmethod
    def compiler(self) -> SQLCompiler:
        """The compiler (and through it the dialect) statements are built with."""

    # -- the connection layer ------------------------------------------------

    @abc.abstractmethod
    def _connection(self, *, write: bool) -> contextlib.AbstractAsyncContextManager[C]:
        """A connection for one statement (``write``: it changes data), given back on exit.

        A driver with separate readers and a writer picks by ``write``; a
        transaction answers with its own connection, one task at a time (see
        :class:`SQLTransactionOperations`).
        """

    @abc.abstractmethod
    def _atomic(self) -> contextlib.AbstractAsyncContextManager[C]:
        """A connection on which the statements of the block succeed or fail together.

        Outside a transaction: ``BEGIN``/``COMMIT`` (or a savepoint), rolled
        back when the block raises; inside one: the transaction's turn.
        """

    @abc.abstractmethod
    async def _execute(self, conn: C, sql: str, params: list[Any]) -> int:
        """Run one statement on ``conn``; return its row count (rows changed by DML)."""

    @abc.abstractmethod
    async def _fetch_all(self, conn: C, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Run one statement on ``conn``; return every row it yields, as the client gives them."""

    @abc.abstractmethod
    def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Any], None]:
        """The rows of a ``SELECT`` in batches of ``batch_size`` (the last may be shorter), as the client gives them.

        ``limit``: the query's limit, if any (once that many rows came the
        statement is done). The generator holds its connection until it is
        exhausted or closed; :meth:`SQLOperations.fetch` always closes it.
        """

    # -- operations ----------------------------------------------------------

    async def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        compiler = self.compiler
        compiled = compiler.select(query)
        convert = compiler.row_converter(query.model)
        if query.limit is not None and query.limit <= batch_size:
            # A window that fits one batch: one round trip, no cursor kept.
            async with self._connection(write=False) as conn:
                rows = await self._fetch_all(conn, compiled.sql, compiled.params)
            if rows:
                yield rows if convert is None else convert(rows)
            return
        batches = self._stream(compiled, batch_size, query.limit)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                yield batch if convert is None else convert(batch)

    async def count(self, query: Query) -> int:
        compiled = self.compiler.count(query)
        async with self._connection(write=False) as conn:
            rows = await self._fetch_all(conn, compiled.sql, compiled.params)
        return int(rows[0][0]) if rows else 0

    async def delete(self, query: Query) -> int:
        compiled = self.compiler.delete(query)
        async with self._connection(write=True) as conn:
            return await self._execute(conn, compiled.sql, compiled.params)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        """Update the matches; a new value for a generated key is first reserved (:meth:`Dialect.reserve_key`)."""
        if not values:
            return await self.count(query)
        compiler = self.compiler
        compiled = compiler.update(query, values)
        auto = query.model.auto_field
        key = values.get(auto) if auto is not None else None
        reserve = None
        if auto is not None and isinstance(key, int):
            reserve = compiler.dialect.reserve_key(query.model, auto, key)
        if reserve is None:
            async with self._connection(write=True) as conn:
                return await self._execute(conn, compiled.sql, compiled.params)
        # One atomic block: the reservation acts at once anyway, and it saves a commit of its own.
        async with self._atomic() as conn:
            await self._execute(conn, reserve.sql, reserve.params)
            return await self._execute(conn, compiled.sql, compiled.params)


class SQLTransactionOperations(SQLOperations[C]):
    """The connection layer of a transaction: its one connection, one statement (or batch) at a time.

    Several tasks may share a transaction (``asyncio.gather`` inside
    ``async with db.transaction() as tx``). Their statements take turns under
    the transaction's lock, :attr:`_turns`: an operation holds it for its
    statement (or the few statements of an atomic block), a stream only while
    it reads a batch, never while its rows are being consumed. Commit and
    rollback take the lock too, so they run after the statement in progress.

    A subclass creates ``_turns`` (an :class:`asyncio.Lock`) and sets
    ``_state`` when the transaction begins, and implements :meth:`_owned`
    (and, if a failed statement can leave the connection unusable,
    :meth:`_after_failure`).
    """

    _turns: asyncio.Lock
    """Held by the one task whose statement runs on the connection."""

    _state: str = "open"
    """``"open"``, ``"committed"`` or ``"rolled back"`` (named in errors)."""

    @abc.abstractmethod
    def _owned(self) -> C | None:
        """The transaction's connection while it is open, else ``None``."""

    def _check_usable(self, conn: C) -> None:
        """Raise when ``conn`` cannot take statements any more (the driver closed, the link broke); default: never."""

    def _after_failure(self, conn: C) -> None:
        """Called when a statement on ``conn`` raised (under the lock): mark the transaction broken if need be."""

    def _current(self) -> C:
        """The connection, or :class:`~ommi.errors.TransactionError` once the transaction ended."""
        conn = self._owned()
        if conn is None:
            raise TransactionError(f"the transaction is already {self._state}; start a new one with db.transaction()")
        self._check_usable(conn)
        return conn

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[C]:
        """The connection, held by this task alone for the block."""
        self._current()  # an ended transaction fails at once, without waiting for a turn
        async with self._turns:
            conn = self._current()
            try:
                yield conn
            except BaseException:
                self._after_failure(conn)
                raise

    def _connection(self, *, write: bool) -> contextlib.AbstractAsyncContextManager[C]:
        return self._turn()

    def _atomic(self) -> contextlib.AbstractAsyncContextManager[C]:
        # The transaction is atomic already.
        return self._turn()

    @contextlib.asynccontextmanager
    async def _stream_turn(self) -> AsyncIterator[C]:
        """A turn for a stream's next batch; an ended transaction raises instead of reading on."""
        async with self._turns:
            if self._owned() is None:
                raise TransactionError(
                    f"the transaction ended ({self._state}) before its result iterator was exhausted; "
                    "read the rows inside the transaction (or collect them with to_list() before it ends)"
                )
            conn = self._current()
            try:
                yield conn
            except BaseException:
                self._after_failure(conn)
                raise
