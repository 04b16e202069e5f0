"""The data operations of a SQL driver, written once: a driver supplies a dialect and a connection layer.

:class:`SQLOperations` implements every data operation of
:class:`ommi.drivers.Operations` (``insert``, ``fetch``, ``count``,
``delete``, ``update``): it builds each statement with the driver's
:class:`~ommi.sql.SQLCompiler` and :class:`~ommi.sql.Dialect` (cached by
shape), turns canonical rows into the client's parameters
(``Dialect.to_param``) and the client's rows into canonical rows
(``Dialect.from_db``), and reads either in one round trip (a window that fits
one batch) or in batches. A driver subclasses it once and answers five
questions, its *connection layer*:

* :meth:`~SQLOperations._connection`: where one statement runs;
* :meth:`~SQLOperations._atomic`: where several statements succeed or fail together;
* :meth:`~SQLOperations._execute`: run a statement, return its row count;
* :meth:`~SQLOperations._fetch_all`: run a statement, return all its rows;
* :meth:`~SQLOperations._stream`: the rows of a ``SELECT``, in batches.

:meth:`SQLOperations.insert` plans its statements through the dialect's
insert hooks (``Dialect.insert_sql``, ``insert_params``, ``insert_sizes``,
``null_generates_key``), reserves explicit generated keys
(``Dialect.reserve_key``) and, where the database's generator can hand out a
key already stored (``Dialect.reserve_stored_keys``), tries again with new
keys. Three optional methods tune it: :meth:`~SQLOperations._max_insert_rows`
(rows per statement), :meth:`~SQLOperations._key_taken` (a failed insert
outside a transaction lost a generated key to a stored row) and
:meth:`~SQLOperations._describe` (the database in error messages).
:meth:`SQLOperations.upsert` (:mod:`ommi.sql.upsert`) writes ``INSERT ... ON
CONFLICT`` through ``Dialect.upsert_sql``, in :meth:`~SQLOperations._undoable`
blocks where it checks rows itself, and sends a call again where
:meth:`~SQLOperations._deadlocked` says the database aborted it.
:meth:`SQLOperations.update` sends ``reserve_key`` before a key is changed.
All three first refuse values that a narrow stored column cannot hold
(:mod:`ommi.sql.limits`, recorded on the compiler by the driver's
``use_models``), before anything is sent.

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
import re
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from ommi._logging import get_logger
from ommi.drivers.base import Operations, Row
from ommi.errors import DatabaseError, IntegrityError, QueryError, TransactionError
from ommi.expressions import Arithmetic, Comparison, Op, Query
from ommi.models.schema import Field, ModelSchema
from ommi.query.aggregate import Aggregation, having_positions, keep_group
from ommi.sql._statement import Compiled
from ommi.sql.compiler import InsertLayout, RowConverter, SQLCompiler
from ommi.sql.limits import check_rows, check_values
from ommi.sql.upsert import sql_upsert

__all__ = ["SQLOperations", "SQLTransactionOperations"]

C = TypeVar("C")
"""The driver's connection type (whatever its connection layer hands out)."""

_KEY_ATTEMPTS = 10
"""Statements an insert of generated keys sends before giving up on keys that stored rows keep taking."""

_SAVEPOINT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
"""What a savepoint name may be: core makes them (``ommi_sp_`` and hex digits); anything else is refused."""


def _savepoint_name(name: str) -> str:
    """The savepoint's name, quoted; refuses a name that is not a plain identifier (no SQL reaches the database)."""
    if not isinstance(name, str) or _SAVEPOINT_NAME.fullmatch(name) is None:
        raise QueryError(f"a savepoint name must be letters, digits and underscores (at most 63), not {name!r}")
    return f'"{name}"'


_Group = tuple[bool, bool, Sequence[int] | None]
"""Rows an insert writes alike: every field or not (``keyed``), ``RETURNING`` the key or not, which (``None``: all)."""


class SQLOperations(Operations, Generic[C]):
    """``insert``/``fetch``/``count``/``delete``/``update`` over a driver's compiler and connection layer.

    Subclasses provide :attr:`compiler` and the five connection-layer
    methods; each translates the client's exceptions itself (with
    :func:`ommi.drivers.map_exceptions`): the base sees only
    :mod:`ommi.errors`. :meth:`_max_insert_rows`, :meth:`_key_taken` and
    :meth:`_describe` have defaults.
    """

    _in_transaction: ClassVar[bool] = False
    """Whether every statement runs inside a transaction (:class:`SQLTransactionOperations`)."""

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
        back when the block raises, also when it is cancelled; inside one:
        the transaction's turn, in a savepoint unless a failed statement
        aborts the whole transaction (:class:`SQLTransactionOperations`).
        Used by :meth:`insert` for several statements and by :meth:`update`
        with a key reservation.
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

    def _undoable(self) -> contextlib.AbstractAsyncContextManager[C]:
        """An atomic block whose statements are undone also when the block raises an error of its own.

        :meth:`_atomic` relies, inside a transaction where a failed statement
        aborts it (PostgreSQL), on the database to discard the block; an
        error raised by the caller after statements that succeeded (an upsert
        finding a row it must refuse) would leave them in the transaction.
        Outside a transaction it is :meth:`_atomic` (rolled back on any error).
        """
        return self._atomic()

    def _deadlocked(self, error: DatabaseError) -> bool:
        """Whether ``error`` is the database aborting the statement's transaction to break a deadlock.

        Asked by :meth:`upsert` outside a transaction, whose block was then
        rolled back entirely: it is sent again. Default: ``False``.
        """
        return False

    def _insert_values(self, schema: ModelSchema, rows: Sequence[Row]) -> tuple[InsertLayout, Sequence[Row]]:
        """The insert layout of ``schema`` and ``rows`` as its statements bind them, the rows checked first.

        Shared by :meth:`insert` and the upsert (:mod:`ommi.sql.upsert`): the
        size limits of the columns are checked before anything is sent, so a
        row that does not fit stores none of them.
        """
        compiler = self.compiler
        limits = compiler.limits.get(schema)
        if limits is not None:
            check_rows(schema, rows, limits)
        layout = compiler.insert_layout(schema)
        convert = layout.convert
        return layout, rows if convert is None else convert(rows)

    def _max_insert_rows(self, width: int) -> int:
        """The most rows one ``INSERT`` of ``width`` parameters a row may carry (at least 1).

        The client's parameter limit or a setting of the driver; the dialect
        splits larger inserts (``Dialect.insert_sizes``). Default: 256 rows,
        fewer when they would pass 999 parameters.
        """
        return max(1, min(256, 999 // max(1, width)))

    async def _key_taken(self, conn: C, schema: ModelSchema, error: IntegrityError) -> bool:
        """Whether ``error``, raised by an insert of generated keys outside a transaction, is a taken generated key.

        Asked only when ``Dialect.reserve_stored_keys`` gives a statement
        (the generator may hand out a stored key). ``True``: the statement
        stored nothing because a key it generated belongs to a stored row
        (a violation of the primary key); the base moves the generator past
        the stored keys and sends it again. Default: ``False``, the error
        propagates. Inside a transaction the statement skips taken keys
        instead (``skip_taken``), as a failure would abort it.
        """
        return False

    def _describe(self) -> str:
        """The database as error messages name it (default: the dialect's name)."""
        return self.compiler.dialect.name

    # -- operations ----------------------------------------------------------

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        """Insert ``rows``, all or none; return every row's generated key (given or generated) in order.

        The statements come from the dialect: rows with and without a
        generated key together (``Dialect.null_generates_key``) or apart,
        ``Dialect.insert_sizes`` rows each (at most :meth:`_max_insert_rows`),
        ``RETURNING`` the key only where one is missing. Before rows with
        explicit keys are written, ``Dialect.reserve_key`` moves the
        generator past the largest. One statement runs on :meth:`_connection`;
        several in one :meth:`_atomic` block (all or none, inside a
        transaction too). Cancelled at any await, the block undoes what it
        wrote (core waits for an insert of generated keys to end instead of
        cancelling it: see :meth:`ommi.drivers.Operations.insert`).
        """
        auto = schema.auto_field
        if not rows:
            return [] if auto is not None else None
        dialect = self.compiler.dialect
        layout, values = self._insert_values(schema, rows)
        keys: list[Any] = []
        reserve = None
        groups: list[_Group]
        if auto is None:
            groups = [(True, False, None)]
        else:
            keys = [row[auto.index] for row in rows]
            missing = keys.count(None)
            if missing == 0:
                groups = [(True, False, None)]
            elif dialect.null_generates_key and layout.reserve_stored is None:
                groups = [(True, True, None)]  # NULL where a key is missing: the database generates it
            elif missing == len(keys):
                groups = [(dialect.null_generates_key, True, None)]
            else:
                given = [i for i, key in enumerate(keys) if key is not None]
                generated = [i for i, key in enumerate(keys) if key is None]
                groups = [(True, False, given), (dialect.null_generates_key, True, generated)]
            if missing < len(keys):
                # Before the explicit keys are written: from then on no generated key
                # can take one of them, in this insert or any concurrent one.
                reserve = dialect.reserve_key(schema, auto, max(key for key in keys if key is not None))
        everything = len(schema.fields)
        plan = []
        for keyed, returning, positions in groups:
            width = everything if keyed else len(layout.unkeyed_columns)
            count = len(rows) if positions is None else len(positions)
            if count == 1 or not width:  # no fields: DEFAULT VALUES, one row a statement
                sizes = [1] * count
            else:
                sizes = dialect.insert_sizes(count, self._max_insert_rows(width))
            plan.append((keyed, returning, positions, sizes))
        several = reserve is not None or len(plan) > 1 or len(plan[0][3]) > 1
        # Inside a transaction or an atomic block a failed statement would abort
        # it: a statement skips taken keys there instead (see _insert_returning).
        skip_taken = layout.reserve_stored is not None and (several or self._in_transaction)
        async with self._atomic() if several else self._connection(write=True) as conn:
            if reserve is not None:
                await self._execute(conn, reserve.sql, reserve.params)
            for keyed, returning, positions, sizes in plan:
                columns = None if keyed else layout.unkeyed_columns
                start = 0
                for size in sizes:
                    stop = start + size
                    slots: Sequence[int]
                    if positions is None:
                        slots, chunk = range(start, stop), values[start:stop]
                    else:
                        slots = positions[start:stop]
                        chunk = [values[i] for i in slots]
                    params = dialect.insert_params(chunk, columns)
                    if returning:
                        sql = layout.sql(schema, keyed, size, True, skip_taken)
                        await self._insert_returning(conn, schema, layout, sql, params, slots, keys, keyed, skip_taken)
                    else:
                        await self._execute(conn, layout.sql(schema, keyed, size, False, False), params)
                    start = stop
        return keys if auto is not None else None

    async def _insert_returning(
        self,
        conn: C,
        schema: ModelSchema,
        layout: InsertLayout,
        sql: str,
        params: list[Any],
        slots: Sequence[int],
        keys: list[Any],
        keyed: bool,
        skip_taken: bool,
    ) -> None:
        """Run one ``INSERT ... RETURNING`` of the rows ``slots``; write the keys it generated into ``keys``.

        Generated keys increase along a statement's rows, so the returned
        keys, sorted, less the explicit keys the statement also wrote, are
        those of the rows without a key, in order.

        When the generator may hand out a stored key (``layout.reserve_stored``,
        a sequence that does not look at the table: rows written by another
        client, or written without ``Dialect.reserve_key``), a statement
        that lost a key to a stored row is sent again with new keys, after the
        generator was moved past the stored keys, up to ten times, all or none:

        * on its own (no transaction), it fails as a whole (``_key_taken``
          tells that failure from others), storing nothing;
        * inside a transaction or an atomic block, where a failure would
          abort it, it skips the rows whose key is taken (``skip_taken``); as
          they cannot be told apart, the rows it did insert are deleted again.

        Raises:
            IntegrityError: still no free key after ten statements.
        """
        given = [keys[i] for i in slots if keys[i] is not None] if keyed else []
        missing = len(slots) - len(given)
        stored = layout.reserve_stored
        decode = layout.decode_key
        dialect = self.compiler.dialect
        for _ in range(_KEY_ATTEMPTS):
            try:
                returned = await self._fetch_all(conn, sql, params)
            except IntegrityError as exc:
                if stored is None or skip_taken or not await self._key_taken(conn, schema, exc):
                    raise
            else:
                generated = [row[0] for row in returned] if decode is None else [decode(row[0]) for row in returned]
                if given:
                    remaining = Counter(generated)
                    remaining.subtract(given)
                    generated = list(remaining.elements())
                generated.sort()
                if len(generated) == missing:
                    new = iter(generated)
                    for slot in slots:
                        if keys[slot] is None:
                            keys[slot] = next(new)
                    return
                if stored is None:
                    raise DatabaseError(
                        f"the database returned {len(generated)} generated keys for {missing} new "
                        f"{schema.cls.__qualname__} rows ({self._describe()})"
                    )
                if generated:
                    auto = schema.auto_field
                    assert auto is not None
                    undo = self.compiler.delete(Query(schema, Comparison(auto, Op.IN, generated)))
                    await self._execute(conn, undo.sql, undo.params)
            get_logger(f"ommi.{dialect.name}.query").info(
                "insert.generated_key_taken", driver=dialect.name, table=schema.name
            )
            assert stored is not None
            await self._execute(conn, stored.sql, stored.params)
        raise IntegrityError(
            f"no free generated key for {schema.cls.__qualname__} after {_KEY_ATTEMPTS} attempts: rows with "
            "explicit keys keep taking the next values of its key generator; try the add again (inside a "
            f"transaction, roll it back first) ({self._describe()})"
        )

    async def upsert(self, schema: ModelSchema, rows: Sequence[Row], on: Sequence[Field]) -> Sequence[Any] | None:
        """``INSERT ... ON CONFLICT (on) DO UPDATE`` (``Dialect.upsert_sql``), all or none: :mod:`ommi.sql.upsert`."""
        result: Sequence[Any] | None = await sql_upsert(self, schema, rows, on)
        return result

    def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        compiler = self.compiler
        return self._read(compiler.select(query), compiler.row_converter(query.model), query.limit, batch_size)

    def fetch_values(
        self, query: Query, fields: Sequence[Field], distinct: bool, batch_size: int
    ) -> AsyncGenerator[list[Row], None]:
        """The projected columns only (``GROUP BY`` them when ``distinct``), read as :meth:`fetch` reads rows."""
        compiler = self.compiler
        compiled = compiler.select_values(query, fields, distinct)
        return self._read(compiled, compiler.values_converter(fields), query.limit, batch_size)

    async def _read(
        self,
        compiled: Compiled,
        convert: RowConverter | None,
        limit: int | None,
        batch_size: int,
    ) -> AsyncGenerator[list[Row], None]:
        """The rows of a compiled ``SELECT`` in batches, converted; a window fitting one batch in one round trip."""
        if limit is not None and limit <= batch_size:
            # A window that fits one batch: one round trip, no cursor kept.
            async with self._connection(write=False) as conn:
                rows = await self._fetch_all(conn, compiled.sql, compiled.params)
            if rows:
                yield rows if convert is None else convert(rows)
            return
        batches = self._stream(compiled, batch_size, limit)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                yield batch if convert is None else convert(batch)

    async def exists(self, query: Query) -> bool:
        """``SELECT 1 ... LIMIT 1`` (with the query's offset): one row or none."""
        compiled = self.compiler.exists(query)
        async with self._connection(write=False) as conn:
            rows = await self._fetch_all(conn, compiled.sql, compiled.params)
        return bool(rows)

    async def raw(
        self, statement: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run ``statement`` on a writing connection (the transaction's, in a turn), rows as the client gives them."""
        async with self._connection(write=True) as conn:
            return await self._raw_rows(conn, statement, params)

    async def _raw_rows(
        self, conn: C, statement: str, params: Sequence[Any] | Mapping[str, Any] | None
    ) -> list[tuple[Any, ...]]:
        """Run a raw statement on ``conn``; every row it yields (``[]`` for none), as tuples from the client.

        Default: :meth:`_fetch_all` with the parameters as given (a client
        whose ``fetchall`` fails on a statement without rows overrides it).
        """
        return await self._fetch_all(conn, statement, params if params is not None else [])  # type: ignore[arg-type]

    async def count(self, query: Query) -> int:
        compiled = self.compiler.count(query)
        async with self._connection(write=False) as conn:
            rows = await self._fetch_all(conn, compiled.sql, compiled.params)
        return int(rows[0][0]) if rows else 0

    async def aggregate(self, query: Query, aggregation: Aggregation) -> list[Row]:
        """One ``GROUP BY`` statement (:meth:`SQLCompiler.aggregate`); ``having`` applied to the finished rows."""
        compiled, finish = self.compiler.aggregate(query, aggregation)
        async with self._connection(write=False) as conn:
            rows = await self._fetch_all(conn, compiled.sql, compiled.params)
        result = [finish(row) for row in rows]
        if aggregation.having is None:
            return result
        names = having_positions(aggregation)
        return [row for row in result if keep_group(aggregation.having, names, row)]

    async def delete(self, query: Query) -> int:
        compiled = self.compiler.delete(query)
        async with self._connection(write=True) as conn:
            return await self._execute(conn, compiled.sql, compiled.params)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        """Update the matches; a new value for a generated key is first reserved (:meth:`Dialect.reserve_key`).

        A value may be a field to copy or an update expression (compiled by
        :meth:`SQLCompiler.arithmetic`): one statement, so every matched row
        changes or none does.
        """
        if not values:
            return await self.count(query)
        compiler = self.compiler
        limits = compiler.limits.get(query.model)
        if limits is not None:
            # An expression's result is the database's to check (a narrow column's own range error).
            plain = {f: v for f, v in values.items() if not isinstance(v, (Field, Arithmetic))}
            check_values(query.model, plain, limits)
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

    An atomic block (an insert of several statements) is one turn, run in
    a savepoint where a failed statement undoes only itself
    (``Dialect.failed_statement_aborts_transaction`` false), so that the
    block stays all or none inside the transaction.

    A subclass creates ``_turns`` (an :class:`asyncio.Lock`) and sets
    ``_state`` when the transaction begins, and implements :meth:`_owned`
    (and, if a failed statement can leave the connection unusable,
    :meth:`_after_failure`).
    """

    _in_transaction: ClassVar[bool] = True

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
        """A turn whose statements succeed or fail together: a savepoint, unless a failure aborts the transaction.

        Where a failed statement undoes only itself (``Dialect.failed_statement_aborts_transaction``
        false, as in SQLite), the earlier statements of a failed block would
        stay in the transaction: the block runs in a savepoint, rolled back
        when it raises (cancelled too). Where a failure aborts the whole
        transaction (PostgreSQL), the turn alone is atomic enough.
        """
        if self.compiler.dialect.failed_statement_aborts_transaction:
            return self._turn()
        return self._savepoint()

    def _undoable(self) -> contextlib.AbstractAsyncContextManager[C]:
        """A turn in a savepoint, whatever the dialect: rolled back when the block raises, for any reason."""
        return self._savepoint()

    @contextlib.asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[C]:
        async with self._turn() as conn:
            try:
                # Inside the try: cancelled while it runs, it must still be undone.
                await self._execute(conn, 'SAVEPOINT "ommi_atomic"', [])
                yield conn
                await self._execute(conn, 'RELEASE "ommi_atomic"', [])
            except BaseException:
                await asyncio.shield(self._undo_savepoint(conn))
                raise

    async def _undo_savepoint(self, conn: C) -> None:
        """Roll back to the block's savepoint and release it; never raises (the block's error is the one to see)."""
        with contextlib.suppress(Exception):
            await self._execute(conn, 'ROLLBACK TO "ommi_atomic"', [])
            await self._execute(conn, 'RELEASE "ommi_atomic"', [])

    # -- savepoints (DriverTransaction.savepoint and its pair), one turn each ----------

    async def savepoint(self, name: str) -> None:
        """``SAVEPOINT "name"``, in a turn of its own."""
        sql = f"SAVEPOINT {_savepoint_name(name)}"
        async with self._turn() as conn:
            await self._execute(conn, sql, [])

    async def release_savepoint(self, name: str) -> None:
        """``RELEASE SAVEPOINT "name"`` (and every savepoint made after it)."""
        sql = f"RELEASE SAVEPOINT {_savepoint_name(name)}"
        async with self._turn() as conn:
            await self._execute(conn, sql, [])

    async def rollback_to_savepoint(self, name: str) -> None:
        """``ROLLBACK TO SAVEPOINT "name"`` then ``RELEASE`` it, in one turn.

        ``ROLLBACK TO`` keeps the savepoint; releasing it too leaves the
        transaction as it was before ``SAVEPOINT`` (usable again after a
        failed statement on PostgreSQL).
        """
        quoted = _savepoint_name(name)
        async with self._turn() as conn:
            await self._execute(conn, f"ROLLBACK TO SAVEPOINT {quoted}", [])
            await self._execute(conn, f"RELEASE SAVEPOINT {quoted}", [])

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
