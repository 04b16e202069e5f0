"""``SQLOperations.insert``: one insert for every SQL driver, planned by the dialect.

The connection layer runs on the standard library's ``sqlite3`` (a real
database, in memory) and implements only the five required methods, plus
``_key_taken`` where a test needs it. Two dialects: the generic one (keys
from an ``AUTOINCREMENT`` rowid, which never collide with stored rows) and
:class:`SequenceDialect`, whose keys come from a counter that hands out
numbers without looking at the table, as a PostgreSQL identity does, so the
base's reservations and its retries of taken keys run against a real table.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import pytest
from ommi import Key, ModelCollection, ommi_model
from ommi.errors import IntegrityError
from ommi.models import get_schema
from ommi.models.schema import Field, ModelSchema
from ommi.query.find import plan_query
from ommi.sql import Compiled, Dialect, SQLCompiler, SQLOperations, SQLTransactionOperations

models = ModelCollection("test_sql_insert")


@ommi_model(collection=models)
@dataclass
class Item:
    name: str
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Code:
    code: Annotated[str, Key]
    label: str = ""


T = TypeVar("T")
ITEM = get_schema(Item)
CODE = get_schema(Code)


class Counter:
    """A key generator outside the table: ``next_key()`` in SQL, moved by ``move_key(n)`` (never backwards)."""

    def __init__(self) -> None:
        self.last = 0
        self.stuck = False

    def next_key(self) -> int:
        if self.stuck:
            return 1
        self.last += 1
        return self.last

    def move_key(self, key: int | None) -> int:
        if key is not None and key > self.last:
            self.last = key
        return self.last


class AutoincrementDialect(Dialect):
    """The generic dialect on SQLite: rows without a key leave the column to ``AUTOINCREMENT``."""

    name = "autoincrement"
    foreign_keys = False

    def auto_key_column(self, field: Field) -> str:
        return "INTEGER PRIMARY KEY AUTOINCREMENT"


class SequenceDialect(AutoincrementDialect):
    """Keys from :class:`Counter`, which may hand out keys that stored rows hold."""

    name = "sequence"

    def auto_key_column(self, field: Field) -> str:
        return "BIGINT PRIMARY KEY DEFAULT (next_key())"

    def reserve_key(self, schema: ModelSchema, field: Field, key: int) -> Compiled | None:
        return Compiled("SELECT move_key(?)", [key])

    def reserve_stored_keys(self, schema: ModelSchema, field: Field) -> Compiled | None:
        return Compiled(f"SELECT move_key((SELECT max({self.quote(field.column)}) FROM {self.table(schema)}))", [])


class Operations(SQLOperations[sqlite3.Connection]):
    """A connection layer of the five required methods (and ``_key_taken``), recording every statement."""

    def __init__(self, conn: sqlite3.Connection, dialect: Dialect, *, rows_per_statement: int = 256) -> None:
        self.conn = conn
        self._compiler = SQLCompiler(dialect)
        self.rows_per_statement = rows_per_statement
        self.statements: list[str] = []

    @property
    def compiler(self) -> SQLCompiler:
        return self._compiler

    @contextlib.asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[sqlite3.Connection]:
        yield self.conn

    @contextlib.asynccontextmanager
    async def _atomic(self) -> AsyncIterator[sqlite3.Connection]:
        await self._execute(self.conn, "SAVEPOINT a", [])
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK TO a")
            raise
        finally:
            self.conn.execute("RELEASE a")

    def _run(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> sqlite3.Cursor:
        self.statements.append(sql)
        try:
            return conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    async def _execute(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> int:
        await asyncio.sleep(0)  # a real client awaits here: a cancellation or another task may come in
        return self._run(conn, sql, params).rowcount

    async def _fetch_all(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        await asyncio.sleep(0)
        return self._run(conn, sql, params).fetchall()

    async def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Any], None]:
        cursor = self.conn.execute(compiled.sql, compiled.params)
        while rows := cursor.fetchmany(batch_size):
            yield rows

    def _max_insert_rows(self, width: int) -> int:
        return self.rows_per_statement

    async def _key_taken(self, conn: sqlite3.Connection, schema: ModelSchema, error: IntegrityError) -> bool:
        return str(error.__cause__).startswith("UNIQUE constraint failed") and str(error).endswith(".id")

    def inserts(self) -> list[str]:
        return [s for s in self.statements if s.startswith("INSERT")]


class Transaction(SQLTransactionOperations[sqlite3.Connection], Operations):
    """A transaction on the same connection: turns (and savepoints for atomic blocks) come from the base."""

    def __init__(self, conn: sqlite3.Connection, dialect: Dialect, **options: Any) -> None:
        super().__init__(conn, dialect, **options)
        self._turns = asyncio.Lock()
        self._conn: sqlite3.Connection | None = conn
        self.inside = 0
        conn.execute("BEGIN")

    def _owned(self) -> sqlite3.Connection | None:
        return self._conn

    async def _execute(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> int:
        return await self._one_at_a_time(super()._execute(conn, sql, params))

    async def _fetch_all(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return await self._one_at_a_time(super()._fetch_all(conn, sql, params))

    async def _one_at_a_time(self, statement: Awaitable[T]) -> T:
        self.inside += 1
        try:
            assert self.inside == 1, "two statements of the transaction ran at once"
            return await statement
        finally:
            self.inside -= 1


@pytest.fixture
def counter() -> Counter:
    return Counter()


@pytest.fixture
def conn(counter: Counter) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as connection:
        connection.create_function("next_key", 0, counter.next_key, deterministic=False)
        connection.create_function("move_key", 1, counter.move_key, deterministic=False)
        yield connection


Make = Callable[..., Operations]


@pytest.fixture
def make(conn: sqlite3.Connection) -> Make:
    """``make(dialect, **options)``: operations with this test's tables created through ``dialect``."""

    def build(dialect: Dialect, transaction: bool = False, **options: Any) -> Operations:
        ops = (Transaction if transaction else Operations)(conn, dialect, **options)
        for schema in (ITEM, CODE):
            for statement in ops.compiler.create_statements(schema):
                conn.execute(statement)
        return ops

    return build


def stored(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute('SELECT "id", "name" FROM "Item" ORDER BY "id"').fetchall()


async def test_rows_without_a_key_are_inserted_apart_and_keys_come_back_in_row_order(make: Make) -> None:
    """Explicit keys first (one statement), then the rows without one, leaving the column to its default."""
    ops = make(AutoincrementDialect())
    keys = await ops.insert(ITEM, [("a", None), ("b", 7), ("c", None)])
    assert keys == [8, 7, 9]
    assert ops.inserts() == [
        'INSERT INTO "Item" ("name", "id") VALUES (?, ?)',
        'INSERT INTO "Item" ("name") VALUES (?), (?) RETURNING "id"',
    ]
    assert ops.statements[0] == "SAVEPOINT a"  # two statements: one atomic block
    assert await ops.insert(ITEM, [("d", None)]) == [10]
    assert ops.statements[-1] == 'INSERT INTO "Item" ("name") VALUES (?) RETURNING "id"'  # one: no block
    assert await ops.insert(ITEM, [("e", 20), ("f", 21)]) == [20, 21]
    assert await ops.insert(ITEM, []) == []
    assert await ops.insert(CODE, [("x", "")]) is None
    assert await ops.insert(CODE, []) is None


async def test_large_inserts_are_split_by_the_dialect_and_stay_all_or_none(
    make: Make, conn: sqlite3.Connection
) -> None:
    """11 rows, 4 at most a statement: 4 + 4 + 2 + 1 (powers of two); a failing statement undoes the others."""
    ops = make(AutoincrementDialect(), rows_per_statement=4)
    keys = await ops.insert(ITEM, [(f"n{i}", None) for i in range(11)])
    assert keys == list(range(1, 12))
    assert [s.count("(?)") for s in ops.inserts()] == [4, 4, 2, 1]
    rows = [(f"m{i}", 100 + i) for i in range(10)] + [("dup", 3)]
    with pytest.raises(IntegrityError):
        await ops.insert(ITEM, rows)
    assert len(stored(conn)) == 11
    assert await ops.count(plan_query((Item,))) == 11


async def test_explicit_keys_are_reserved_before_they_are_written(make: Make, counter: Counter) -> None:
    """The largest explicit key moves the generator first, in the same block: later generated keys skip it."""
    ops = make(SequenceDialect())
    assert await ops.insert(ITEM, [("a", None), ("b", 5), ("c", 3), ("d", None)]) == [6, 5, 3, 7]
    assert ops.statements[:3] == [
        "SAVEPOINT a",
        "SELECT move_key(?)",
        'INSERT INTO "Item" ("name", "id") VALUES (?, ?), (?, ?)',
    ]
    assert await ops.insert(ITEM, [("e", None)]) == [8]


async def test_a_taken_key_outside_a_transaction_is_drawn_again(make: Make, conn: sqlite3.Connection) -> None:
    """One statement on its own fails as a whole on the taken key; the generator moves past the stored keys."""
    ops = make(SequenceDialect())
    conn.execute("INSERT INTO \"Item\" (name, id) VALUES ('other', 1), ('other', 2), ('other', 3)")  # no reservation
    assert await ops.insert(ITEM, [("a", None)]) == [4]
    assert ops.statements == [
        'INSERT INTO "Item" ("name") VALUES (?) RETURNING "id"',
        'SELECT move_key((SELECT max("id") FROM "Item"))',
        'INSERT INTO "Item" ("name") VALUES (?) RETURNING "id"',
    ]
    with pytest.raises(IntegrityError, match="NOT NULL"):  # another violation is not retried
        await ops.insert(ITEM, [(None, None)])
    assert len(ops.inserts()) == 3


async def test_a_taken_key_in_a_block_is_skipped_then_the_rows_are_inserted_again(
    make: Make, conn: sqlite3.Connection
) -> None:
    """In an atomic block a failure would abort it: taken keys are skipped, the rows stored deleted and sent again."""
    ops = make(SequenceDialect(), rows_per_statement=2)
    conn.execute("INSERT INTO \"Item\" (name, id) VALUES ('other', 2)")
    keys = await ops.insert(ITEM, [("a", None), ("b", None), ("c", None)])
    assert keys == [3, 4, 5]
    assert (
        ops.inserts()[0] == 'INSERT INTO "Item" ("name") VALUES (?), (?) ON CONFLICT ("id") DO NOTHING RETURNING "id"'
    )
    assert 'DELETE FROM "Item" WHERE "Item"."id" IN (?)' in ops.statements
    assert stored(conn) == [(2, "other"), (3, "a"), (4, "b"), (5, "c")]


async def test_keys_still_taken_after_ten_statements_raise_and_store_nothing(
    make: Make, conn: sqlite3.Connection, counter: Counter
) -> None:
    """The backstop: IntegrityError after ten statements, all or none, outside and inside a transaction."""
    ops = make(SequenceDialect())
    conn.execute("INSERT INTO \"Item\" (name, id) VALUES ('other', 1)")
    counter.stuck = True  # hands out 1 whatever it is told
    with pytest.raises(IntegrityError, match=r"no free generated key for Item after 10 attempts.*\(sequence\)"):
        await ops.insert(ITEM, [("a", None)])
    assert len(ops.inserts()) == 10
    tx = Transaction(conn, SequenceDialect())
    with pytest.raises(IntegrityError, match="after 10 attempts"):
        await tx.insert(ITEM, [("b", None), ("c", None)])
    assert len(tx.inserts()) == 10
    assert all("DO NOTHING" in s for s in tx.inserts())
    conn.execute("COMMIT")
    assert stored(conn) == [(1, "other")]


async def test_an_atomic_block_in_a_transaction_is_a_savepoint(make: Make, conn: sqlite3.Connection) -> None:
    """Where a failed statement undoes only itself, a failed insert of several statements leaves none of its rows."""
    tx = make(AutoincrementDialect(), transaction=True, rows_per_statement=2)
    assert await tx.insert(ITEM, [("kept", None)]) == [1]
    with pytest.raises(IntegrityError):
        await tx.insert(ITEM, [("x", 10), ("y", 11), ("dup", 1)])
    assert tx.statements[-2:] == ['ROLLBACK TO "ommi_atomic"', 'RELEASE "ommi_atomic"']
    # The rolled-back savepoint took AUTOINCREMENT's counter back with it.
    assert await tx.insert(ITEM, [("after", None), ("after2", None), ("after3", None)]) == [2, 3, 4]
    conn.execute("COMMIT")
    assert [name for _, name in stored(conn)] == ["kept", "after", "after2", "after3"]


class AbortingDialect(AutoincrementDialect):
    failed_statement_aborts_transaction = True


async def test_no_savepoint_where_a_failure_aborts_the_transaction(make: Make) -> None:
    """PostgreSQL's case: the failure aborts the whole transaction, which a savepoint would hide."""
    tx = make(AbortingDialect(), transaction=True, rows_per_statement=2)
    await tx.insert(ITEM, [("a", None), ("b", None), ("c", None)])
    assert not any("SAVEPOINT" in s for s in tx.statements)


@pytest.mark.parametrize("dialect", [AutoincrementDialect, SequenceDialect])
@pytest.mark.parametrize("in_transaction", [False, True])
async def test_cancelled_at_any_await_an_insert_stores_all_its_rows_or_none(
    make: Make, conn: sqlite3.Connection, dialect: type[Dialect], in_transaction: bool
) -> None:
    """Cancelled after 0, 1, 2... loop steps (each statement awaits once): every row of the insert, or none.

    The sequence meets a key taken by another client at every insert, so its
    cancellations also land in the retry (the delete, the reservation).
    """
    ops = make(dialect(), transaction=in_transaction, rows_per_statement=2)
    outcomes = set()
    for steps in range(16):
        top = conn.execute('SELECT coalesce(max("id"), 0) FROM "Item"').fetchone()[0]
        conn.execute("INSERT INTO \"Item\" (name, id) VALUES ('other', ?)", [top + 2])  # no reservation
        rows = [(f"s{steps}-{i}", None) for i in range(3)] + [(f"s{steps}-given", -1 - steps)]
        task = asyncio.ensure_future(ops.insert(ITEM, rows))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        count = conn.execute('SELECT count(*) FROM "Item" WHERE name LIKE ?', [f"s{steps}-%"]).fetchone()[0]
        assert count in (0, 4), (steps, count)
        outcomes.add(count)
        if in_transaction:
            assert isinstance(ops, Transaction) and not ops._turns.locked()
    assert outcomes == {0, 4}
    if in_transaction:
        conn.execute("COMMIT")
    assert not conn.in_transaction


async def test_tasks_sharing_a_transaction_insert_in_turns(make: Make, conn: sqlite3.Connection) -> None:
    """Each insert holds the transaction's turn for its whole block: statements of two tasks never interleave."""
    tx = make(SequenceDialect(), transaction=True, rows_per_statement=2)
    conn.execute("INSERT INTO \"Item\" (name, id) VALUES ('other', 3)")
    batches = [[(f"t{task}-{i}", None) for i in range(5)] for task in range(6)]
    results = await asyncio.gather(*(tx.insert(ITEM, rows) for rows in batches))
    conn.execute("COMMIT")
    names = dict(stored(conn))
    for rows, keys in zip(batches, results, strict=True):
        assert keys is not None and list(keys) == sorted(keys)
        assert [names[key] for key in keys] == [name for name, _ in rows]
    assert len(names) == 31
