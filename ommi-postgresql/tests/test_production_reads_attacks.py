"""Issue 16's reads under attack on the real server: the connection killed, ``close()`` racing them, tasks sharing one.

``.values``, ``.exists``, ``.aggregate``, ``.prefetch`` and ``db.raw`` each get
the server ending their transaction's session (``pg_terminate_backend``),
``db.close()`` arriving while 40 of them run, and 25 tasks running them at once
on one transaction. The invariant: every answer given is the right one, every
failure is an ``OmmiError``, and the database answers normally afterwards.
Cancellation at each await and hostile input are in the conformance suites
(``ProjectionTests``, ``AggregateTests``, ``PrefetchTests``, ``CombinedReadTests``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
import pytest
import pytest_asyncio
from ommi import Count, LazyLoadEveryRelated, ModelCollection, Ommi, ReferenceTo, Sum, ommi_model
from ommi.database import Executor, Transaction
from ommi.errors import OmmiError
from ommi_postgresql import PostgreSQLDriver
from ommi_postgresql.driver import PostgreSQLTransaction

models = ModelCollection("ommi_postgresql_production_reads_attacks")


@ommi_model(collection=models, name="pra_shelf")
@dataclass
class Shelf:
    name: str
    id: int | None = None

    books: LazyLoadEveryRelated[Book]


@ommi_model(collection=models, name="pra_book")
@dataclass
class Book:
    title: str
    pages: int
    shelf_id: Annotated[int, ReferenceTo(Shelf.id)]
    id: int | None = None


READS = ["values", "exists", "aggregate", "prefetch", "raw"]


async def _read(on: Executor, operation: str) -> Any:
    """One read of the data set ``_seed`` stores, as plain values to compare."""
    if operation == "values":
        return await on.find(Book).sort(Book.title).values(Book.title, Book.pages).to_list()
    if operation == "exists":
        return await on.find(Book, Book.pages > 250).exists.or_raise()
    if operation == "aggregate":
        return await on.find(Book).group_by(Book.shelf_id).aggregate(n=Count(), pages=Sum(Book.pages)).or_raise()
    if operation == "prefetch":
        shelves = await on.find(Shelf).sort(Shelf.name).prefetch(Shelf.books).all.to_list()
        return [(s.name, sorted(b.title for b in await s.books)) for s in shelves]
    rows = await on.raw('SELECT count(*), sum(pages) FROM "pra_book"').or_raise()
    return [tuple(int(v) for v in row) for row in rows]


async def _seed(db: Ommi) -> dict[str, Any]:
    """Two shelves of books; the right answer of every read."""
    a, b = await db.add(Shelf("a"), Shelf("b")).or_raise()
    assert a.id is not None and b.id is not None
    await db.add(Book("x", 100, a.id), Book("y", 300, a.id), Book("z", 200, b.id)).or_raise()
    return {
        "values": [("x", 100), ("y", 300), ("z", 200)],
        "exists": True,
        "aggregate": [{"shelf_id": a.id, "n": 2, "pages": 400}, {"shelf_id": b.id, "n": 1, "pages": 200}],
        "prefetch": [("a", ["x", "y"]), ("b", ["z"])],
        "raw": [(3, 600)],
    }


@pytest_asyncio.fixture
async def db(make_driver: Callable[..., PostgreSQLDriver]) -> AsyncIterator[Ommi]:
    async with Ommi(make_driver(pool_max_size=8), allow_implicit_model_setup=False) as database:
        await database.remove_models(models)
        await database.use_models(models)
        try:
            yield database
        finally:
            if not database._driver_open:
                await database.open()
            await database.remove_models(models)


def _kill(admin: psycopg.Connection[Any], t: Transaction) -> None:
    tx = t._tx
    assert isinstance(tx, PostgreSQLTransaction) and tx._conn is not None
    admin.execute("SELECT pg_terminate_backend(%s)", [tx._conn.info.backend_pid])


@pytest.mark.parametrize("operation", READS)
async def test_connection_killed_under_a_read_is_an_ommi_error_and_the_database_recovers(
    db: Ommi, admin: psycopg.Connection[Any], operation: str
) -> None:
    """A read answers in the transaction; its session is killed; the next read there fails cleanly, db still answers."""
    expected = await _seed(db)
    with pytest.raises(OmmiError):  # noqa: PT012 - the block is what raises
        async with db.transaction() as t:
            assert await _read(t, operation) == expected[operation]
            _kill(admin, t)
            await _read(t, operation)
    assert await _read(db, operation) == expected[operation]


@pytest.mark.parametrize("operation", READS)
async def test_close_racing_many_reads_gives_right_answers_or_ommi_errors(db: Ommi, operation: str) -> None:
    """``close()`` arrives while 40 reads run: each gives the right answer or an OmmiError, nothing else."""
    expected = await _seed(db)
    answered: list[Any] = []
    refused: list[OmmiError] = []

    async def one() -> None:
        try:
            answered.append(await _read(db, operation))
        except OmmiError as exc:
            refused.append(exc)

    tasks = [asyncio.create_task(one()) for _ in range(40)]
    await asyncio.sleep(0.005)
    await db.close()
    await asyncio.gather(*tasks)
    assert refused, "close() came after every read: the race was not exercised"
    assert all(answer == expected[operation] for answer in answered)
    await db.open()
    assert await _read(db, operation) == expected[operation]


async def test_tasks_sharing_a_transaction_read_together(db: Ommi) -> None:
    """25 tasks run every kind of read on one transaction at once: each gets its own right answer."""
    expected = await _seed(db)
    async with db.transaction() as t:
        reads: list[Awaitable[Any]] = [_read(t, operation) for operation in READS * 5]
        answers = await asyncio.gather(*reads)
        await t.add(Book("w", 50, expected["aggregate"][0]["shelf_id"])).or_raise()
        assert await t.find(Book).values(Book.title).distinct().to_list() == [("w",), ("x",), ("y",), ("z",)]
    assert answers == [expected[operation] for operation in READS * 5]
