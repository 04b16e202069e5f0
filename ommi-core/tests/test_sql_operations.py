"""``ommi.sql.SQLOperations``: a SQL driver is a dialect plus a connection layer.

The connection layer here runs on the standard library's ``sqlite3`` (a real
database, in memory); everything else (statements, conversion, batching, the
turns of a shared transaction) comes from the base.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from ommi import ModelCollection, ReferenceTo, ommi_model, when
from ommi.drivers import Row
from ommi.errors import TransactionError
from ommi.models import get_schema
from ommi.models.schema import Field, ModelSchema
from ommi.query.ast import Op
from ommi.query.find import plan_query
from ommi.sql import Compiled, Dialect, SQLCompiler, SQLOperations, SQLTransactionOperations

models = ModelCollection("test_sql_operations")


@ommi_model(collection=models)
@dataclass
class Author:
    name: str
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Book:
    title: str
    author_id: Annotated[int, ReferenceTo(Author)]
    id: int | None = None


class TinyDialect(Dialect):
    """SQLite through the generic dialect, plus the hooks under test."""

    name = "tiny"
    foreign_keys = False

    def __init__(self) -> None:
        self.reserved: list[int] = []

    def auto_key_column(self, field: Field) -> str:
        return "INTEGER PRIMARY KEY AUTOINCREMENT"

    def before_create_table(self, schema: ModelSchema) -> list[str]:
        return [f"CREATE TABLE IF NOT EXISTS {self.quote(schema.name + '_before')} (x)"]

    def after_create_table(self, schema: ModelSchema) -> list[str]:
        return [f"CREATE TABLE IF NOT EXISTS {self.quote(schema.name + '_after')} (x)"]

    def after_drop_table(self, schema: ModelSchema) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.quote(schema.name + '_after')}"]

    def reserve_key(self, schema: ModelSchema, field: Field, key: int) -> Compiled | None:
        self.reserved.append(key)
        return Compiled("SELECT ?", [key])


class TinyOperations(SQLOperations[sqlite3.Connection]):
    """The whole connection layer of a driver on stdlib sqlite3."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.dialect = TinyDialect()
        self._compiler = SQLCompiler(self.dialect)
        self.statements: list[str] = []

    @property
    def compiler(self) -> SQLCompiler:
        return self._compiler

    @contextlib.asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[sqlite3.Connection]:
        yield self.conn

    @contextlib.asynccontextmanager
    async def _atomic(self) -> AsyncIterator[sqlite3.Connection]:
        self.conn.execute("SAVEPOINT a")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK TO a")
            raise
        finally:
            self.conn.execute("RELEASE a")

    async def _execute(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> int:
        self.statements.append(sql)
        await asyncio.sleep(0)  # a real client awaits here: another task may run
        return conn.execute(sql, params).rowcount

    async def _fetch_all(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        self.statements.append(sql)
        await asyncio.sleep(0)
        return conn.execute(sql, params).fetchall()

    async def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Any], None]:
        cursor = self.conn.execute(compiled.sql, compiled.params)
        while rows := cursor.fetchmany(batch_size):
            yield rows

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        keys = []
        for row in rows:
            keys.append(self.conn.execute(self.compiler.insert(schema, schema.fields), list(row)).lastrowid)
        return keys


@pytest.fixture
def ops() -> Iterator[TinyOperations]:
    # Closed at the end: Python 3.13's sqlite3 warns (ResourceWarning) about a
    # connection collected open, in whichever later test the collector runs.
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as connection:
        operations = TinyOperations(connection)
        for schema in (get_schema(Author), get_schema(Book)):
            for statement in operations.compiler.create_statements(schema):
                operations.conn.execute(statement)
        yield operations


async def collect(batches: AsyncGenerator[list[Row], None]) -> list[list[Row]]:
    return [batch async for batch in batches]


async def test_operations_come_from_the_base(ops: TinyOperations) -> None:
    """fetch (one round trip, or batches), count, update and delete need only the connection layer."""
    author = get_schema(Author)
    await ops.insert(author, [("a", None), ("b", None), ("c", None)])
    everything = plan_query((Author,))
    assert await collect(ops.fetch(plan_query((Author.name != "b",), limit=2), 10)) == [[("a", 1), ("c", 3)]]
    assert await collect(ops.fetch(everything, 2)) == [[("a", 1), ("b", 2)], [("c", 3)]]
    assert await ops.count(plan_query((Author.name.startswith("b"),))) == 1
    assert await ops.update(plan_query((Author.name == "c",)), {author.fields[0]: "z"}) == 1
    assert await ops.update(plan_query((Author.name == "z",)), {}) == 1  # nothing to set: the count
    assert await ops.delete(plan_query((Author.name == "a",))) == 1
    assert await ops.count(everything) == 2


async def test_update_reserves_an_explicit_generated_key_first(ops: TinyOperations) -> None:
    """A new value for a generated key is reserved through the dialect, in one atomic block with the update."""
    author = get_schema(Author)
    await ops.insert(author, [("a", None)])
    assert author.auto_field is not None
    await ops.update(plan_query((Author.id == 1,)), {author.auto_field: 40})
    assert ops.dialect.reserved == [40]
    assert ops.statements[-2:] == ["SELECT ?", 'UPDATE "Author" SET "id" = ? WHERE "Author"."id" = ?']
    await ops.update(plan_query((Author.id == 40,)), {author.fields[0]: "b"})
    assert ops.dialect.reserved == [40]  # no key changed: nothing reserved


def test_dialect_ddl_hooks_surround_create_table(ops: TinyOperations) -> None:
    """before/after_create_table run around CREATE TABLE; foreign_keys = False leaves the clauses out."""
    statements = ops.compiler.create_statements(get_schema(Book))
    assert [s.split(" (")[0] for s in statements] == [
        'CREATE TABLE IF NOT EXISTS "Book_before"',
        'CREATE TABLE IF NOT EXISTS "Book"',
        'CREATE TABLE IF NOT EXISTS "Book_after"',
    ]
    assert "FOREIGN KEY" not in statements[1]
    assert "FOREIGN KEY" in SQLCompiler(Dialect()).create_table(get_schema(Book))
    assert ops.compiler.drop_statements(get_schema(Book)) == [
        'DROP TABLE IF EXISTS "Book"',
        'DROP TABLE IF EXISTS "Book_after"',
    ]
    assert Dialect().reserve_key(get_schema(Book), get_schema(Book).fields[2], 5) is None


class TwoPlaceholders(Dialect):
    """A text match binding two parameters, to check that text and parameters stay together."""

    def text_match(self, column: str, op: Op, text: str) -> tuple[str, list[Any]]:
        return f"instr({column}, ?) > ? - 1", [text, 1]


def test_text_match_parameters_stay_in_placeholder_order() -> None:
    """Text and parameters of a text match come from one call, cached or not, among other conditions."""
    compiler = SQLCompiler(TwoPlaceholders())
    query = plan_query((when(Author.name.contains("x")).Or(Author.id > 3), Author.name != "q"), limit=2)
    first = compiler.select(query)
    again = compiler.select(
        plan_query((when(Author.name.contains("y")).Or(Author.id > 4), Author.name != "r"), limit=2)
    )
    assert first.sql == again.sql == compiler.compile_select(query).sql
    assert 'instr("t0"."name", ?) > ? - 1' in first.sql
    assert first.params == ["x", 1, 3, "q", 2]
    assert again.params == ["y", 1, 4, "r", 2]
    assert compiler.delete(query).params == ["x", 1, 3, "q"]


class TinyTransaction(SQLTransactionOperations[sqlite3.Connection], TinyOperations):
    """A transaction over the same connection: turns come from the base."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self._turns = asyncio.Lock()
        self._conn: sqlite3.Connection | None = conn
        self.inside = 0

    def _owned(self) -> sqlite3.Connection | None:
        return self._conn

    async def _execute(self, conn: sqlite3.Connection, sql: str, params: list[Any]) -> int:
        self.inside += 1
        try:
            assert self.inside == 1, "two statements of the transaction ran at once"
            return await super()._execute(conn, sql, params)
        finally:
            self.inside -= 1

    async def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Any], None]:
        cursor = None
        while True:
            async with self._stream_turn() as conn:
                if cursor is None:
                    cursor = conn.execute(compiled.sql, compiled.params)
                rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield rows


async def test_tasks_sharing_a_transaction_take_turns(ops: TinyOperations) -> None:
    """Statements of tasks sharing a transaction never overlap; an ended transaction refuses more."""
    author = get_schema(Author)
    await ops.insert(author, [(f"n{i}", None) for i in range(5)])
    tx = TinyTransaction(ops.conn)
    results = await asyncio.gather(*(tx.delete(plan_query((Author.name == f"n{i}",))) for i in range(5)))
    assert results == [1] * 5
    await ops.insert(author, [("s1", None), ("s2", None), ("s3", None)])
    stream = tx.fetch(plan_query((Author,)), 2)
    assert len(await anext(stream)) == 2
    tx._conn, tx._state = None, "committed"
    with pytest.raises(TransactionError, match=r"ended \(committed\) before its result iterator"):
        await anext(stream)
    with pytest.raises(TransactionError, match="already committed"):
        await tx.count(plan_query((Author,)))
