"""Regressions of "Reliability II" (issue 11), SQLite driver part.

* item 2: a transaction of a closed generation never releases the writer lock
  of a later one, and close() racing operations and transactions ends each of
  them cleanly;
* item 4: generated keys come back as ints whatever the table's first column;
* item 11: ``Decimal`` keys are unique by value, not by text;
* item 12: ``open()`` after ``close()`` builds fresh state; a closed in-memory
  database is gone;
* item 13: a stream on the writer connection (in memory, or in a transaction)
  reads one snapshot, and fails with TransactionError once its transaction ended;
* item 15: a huge limit or offset never raises a raw OverflowError.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sqlite3
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
from ommi import Key, ModelCollection, Ommi, ReferenceTo, StoreAs, ommi_model
from ommi.errors import ConnectionError as OmmiConnectionError
from ommi.errors import IntegrityError, ModelDefinitionError, OperationalError, QueryError, TransactionError
from ommi.models.schema import get_schema
from ommi.query.ast import Comparison, Op, Query
from ommi.query.find import plan_query
from ommi.sql import SQLCompiler
from ommi_sqlite import SQLiteDriver
from ommi_sqlite._dialect import SQLiteDialect

models = ModelCollection("ommi_sqlite_test_reliability")


@ommi_model(collection=models)
@dataclass
class Item:
    number: int
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Reading:
    """First column REAL: SQLite 3.40 gave RETURNING of the key that column's affinity (1.0)."""

    value: float
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Note:
    """First column TEXT."""

    text: str
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Flag:
    """First column BOOLEAN (NUMERIC affinity)."""

    on: bool
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Amount:
    """First column DECIMAL_TEXT (TEXT affinity)."""

    amount: Decimal
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Coin:
    value: Annotated[Decimal, Key]
    label: str = ""


@ommi_model(collection=models)
@dataclass
class Holder:
    coin: Annotated[Decimal, ReferenceTo(Coin)]
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Slot:
    shelf: Annotated[Decimal, Key]
    position: Annotated[int, Key]
    label: str = ""


@ommi_model(collection=models)
@dataclass
class Shadow:
    """Columns named like SQLite's rowid aliases: a snapshot must not order by them."""

    rowid: Annotated[int, StoreAs("rowid")]
    oid: Annotated[Decimal, StoreAs("oid")]
    id: int | None = None


ITEM = get_schema(Item)


def item_rows(*numbers: int) -> list[tuple[Any, ...]]:
    return [ITEM.encode_instance(Item(n)) for n in numbers]


async def numbers(driver: SQLiteDriver) -> list[int]:
    found: list[int] = []
    async for batch in driver.fetch(plan_query((Item,)), 100):
        found.extend(row[ITEM.by_name["number"].index] for row in batch)
    return sorted(found)


@pytest.fixture(params=["file", "memory"])
def make_driver(request: pytest.FixtureRequest, db_path: Path) -> Callable[..., SQLiteDriver]:
    """Build an unopened driver on a file or on a private in-memory database."""

    def make(**settings: Any) -> SQLiteDriver:
        if request.param == "file":
            return SQLiteDriver.connect(str(db_path), **settings)
        return SQLiteDriver.connect(**settings)

    return make


# -- item 2: generations -------------------------------------------------------


@pytest.mark.parametrize("end", ["commit", "rollback"])
async def test_old_transaction_never_releases_the_writer_lock_of_a_reopened_driver(
    make_driver: Callable[..., SQLiteDriver], end: str
) -> None:
    """A transaction begun before close() ends on its own generation, never on the reopened one.

    Before the fix the old transaction's commit or rollback released the NEW
    writer lock, held by a new transaction: a plain insert then ran inside that
    transaction and vanished with its rollback (and the new transaction's end
    raised "RuntimeError: Lock is not acquired").
    """
    driver = make_driver(busy_timeout=2)
    await driver.open()
    await driver.apply_schema([ITEM])
    old = await driver.begin()
    await old.insert(ITEM, item_rows(1))
    await driver.close()

    await driver.open()
    await driver.apply_schema([ITEM])  # a closed memory database is gone; a file keeps its table
    new = await driver.begin()
    await new.insert(ITEM, item_rows(2))
    if end == "commit":
        with pytest.raises(OmmiConnectionError, match="closed"):
            await old.commit()
    else:
        await old.rollback()  # its writes went with the closed connection: nothing left to undo
    assert driver.pool.stats()["writer_locked"] == 1, "the old transaction released the new writer lock"

    plain = asyncio.create_task(driver.insert(ITEM, item_rows(3)))
    await asyncio.sleep(0.05)
    assert not plain.done(), "a plain insert ran while the new transaction holds the writer"
    await new.rollback()
    await plain
    assert await numbers(driver) == [3]  # 1 died with the close, 2 with the rollback, 3 is committed
    assert driver.pool.stats()["writer_locked"] == 0
    await driver.close()


async def test_operations_of_a_closed_generation_fail_cleanly(make_driver: Callable[..., SQLiteDriver]) -> None:
    """A transaction's statements after close() raise ConnectionError; so do the driver's own, until open()."""
    driver = make_driver()
    await driver.open()
    await driver.apply_schema([ITEM])
    tx = await driver.begin()
    await driver.close()
    with pytest.raises(OmmiConnectionError, match="closed"):
        await tx.insert(ITEM, item_rows(1))
    with pytest.raises(OmmiConnectionError, match="closed"):
        await tx.count(plan_query((Item,)))
    await tx.rollback()
    with pytest.raises(OmmiConnectionError, match="closed"):
        await driver.insert(ITEM, item_rows(1))
    with pytest.raises(OmmiConnectionError, match="closed"):
        await driver.begin()
    await driver.close()  # idempotent


async def test_close_wakes_tasks_waiting_for_the_writer(make_driver: Callable[..., SQLiteDriver]) -> None:
    """A task waiting for the writer when close() begins fails at once, not after busy_timeout."""
    driver = make_driver(busy_timeout=30)
    await driver.open()
    await driver.apply_schema([ITEM])
    tx = await driver.begin()
    waiting = asyncio.create_task(driver.insert(ITEM, item_rows(1)))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await driver.close()
    with pytest.raises(OmmiConnectionError, match="closed"):
        await asyncio.wait_for(waiting, 2)
    await tx.rollback()


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.01, 0.03])
async def test_close_racing_operations_and_transactions(make_driver: Callable[..., SQLiteDriver], delay: float) -> None:
    """Writers, readers, streams and transactions running while close() happens each end cleanly.

    Each either finishes or raises ConnectionError / TransactionError (never a
    RuntimeError, a raw sqlite3 or aiosqlite error, or a hang). The reopened
    driver starts with nothing held, and its writes are not undone by any of them.
    """
    driver = make_driver(busy_timeout=2, batch_size=4)
    await driver.open()
    await driver.apply_schema([ITEM])
    await driver.insert(ITEM, item_rows(*range(40)))
    query = plan_query((Item,))

    async def writer() -> None:
        while True:
            await driver.insert(ITEM, item_rows(1000, 1001))
            await asyncio.sleep(0)

    async def reader() -> None:
        while True:
            await driver.count(query)
            await asyncio.sleep(0)

    async def streamer() -> None:
        while True:
            async for _batch in driver.fetch(query, 4):
                await asyncio.sleep(0)

    async def transactional() -> None:
        while True:
            tx = await driver.begin()
            try:
                await tx.insert(ITEM, item_rows(2000))
                async for _batch in tx.fetch(query, 4):
                    await asyncio.sleep(0)
                await tx.delete(Query(ITEM, Comparison(ITEM.by_name["number"], Op.EQ, 2000)))
            except BaseException:
                await tx.rollback()
                raise
            await tx.commit()

    tasks = [asyncio.create_task(work()) for work in (writer, writer, reader, streamer, transactional, transactional)]
    await asyncio.sleep(delay)
    await driver.close()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    for result in results:
        assert isinstance(result, (OmmiConnectionError, TransactionError)), repr(result)

    await driver.open()
    assert driver.pool.stats() == {"readers_lent": 0, "readers_open": 0, "writer_locked": 0}
    await driver.apply_schema([ITEM])
    before = await numbers(driver)
    await driver.insert(ITEM, item_rows(7777))
    tx = await driver.begin()
    await tx.insert(ITEM, item_rows(8888))
    await tx.rollback()
    assert await numbers(driver) == sorted([*before, 7777])
    await driver.close()


# -- item 12: open() after close() ---------------------------------------------


async def test_reopened_driver_builds_fresh_state_and_a_closed_memory_database_is_gone() -> None:
    """After close(), open() makes a new pool (new locks, new connections); a memory database starts empty."""
    driver = SQLiteDriver.connect()
    await driver.open()
    await driver.apply_schema([ITEM])
    await driver.insert(ITEM, item_rows(1))
    first = driver.pool
    first_writer = first.writer
    await driver.close()
    assert not first.is_open

    await driver.open()
    assert driver.pool is not first
    assert driver.pool.writer is not first_writer
    assert not first.is_open, "the closed generation was opened again"
    with pytest.raises(OperationalError, match="no such table"):
        await driver.count(plan_query((Item,)))
    await driver.close()


async def test_reopened_named_memory_database_is_gone_after_its_last_driver_closed(memory_name: str) -> None:
    """A named memory database closed by its only driver is empty when that driver opens again."""
    driver = SQLiteDriver.connect(memory_name)
    await driver.open()
    await driver.apply_schema([ITEM])
    await driver.insert(ITEM, item_rows(1))
    tx = await driver.begin()
    await driver.close()
    with pytest.raises(OmmiConnectionError, match="closed"):
        await driver.count(plan_query((Item,)))
    await driver.open()
    await tx.rollback()  # of the closed generation: it leaves the new one alone
    assert driver.pool.stats()["writer_locked"] == 0
    with pytest.raises(OperationalError, match="no such table"):
        await driver.count(plan_query((Item,)))
    await driver.close()


# -- item 4: generated keys ----------------------------------------------------


@pytest.mark.parametrize(
    ("model", "make"),
    [
        (Reading, lambda n: Reading(n + 0.5)),
        (Note, lambda n: Note(f"note {n}")),
        (Flag, lambda n: Flag(n % 2 == 0)),
        (Amount, lambda n: Amount(Decimal(n) / 4)),
    ],
    ids=["REAL", "TEXT", "NUMERIC", "DECIMAL_TEXT"],
)
async def test_generated_keys_are_ints_whatever_the_first_column(
    connect_file: Callable[..., Ommi], model: type, make: Callable[[int], Any]
) -> None:
    """The driver returns a generated key as an exact int, and save/reload/remove/find by key work.

    Before the fix a table whose first column is REAL gave ``id=1.0`` (SQLite
    3.40 applies that column's affinity to ``RETURNING`` of the rowid).
    """
    schema = get_schema(model)
    async with connect_file() as db:
        await db.use_models(models)
        keys = await db.driver.insert(schema, [schema.encode_instance(make(n)) for n in range(3)])
        assert keys == [1, 2, 3]
        assert all(type(key) is int for key in keys), keys
        one = await db.add(make(10)).or_raise()
        assert one.id == 4 and type(one.id) is int
        several = await db.add(*(make(n) for n in range(20, 23))).or_raise()
        assert [m.id for m in several] == [5, 6, 7]
        assert all(type(m.id) is int for m in several)
        assert (await db.find(schema.by_name["id"] == one.id).one.or_raise()).id == one.id
        await db.save(one).or_raise()
        await db.reload(one).or_raise()
        assert await db.remove(one).or_raise() == 1
        assert await db.find(model).count.or_raise() == 6


# -- item 11: Decimal keys -----------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def make_db(request: pytest.FixtureRequest, db_path: Path) -> Callable[[], Ommi]:
    def make() -> Ommi:
        if request.param == "file":
            return Ommi(SQLiteDriver.connect(str(db_path)))
        return Ommi(SQLiteDriver.connect())

    return make


async def test_decimal_keys_are_unique_by_value(make_db: Callable[[], Ommi]) -> None:
    """``Decimal("1.0")`` and ``Decimal("1.00")`` are one key: the second add fails, lookups find the first.

    Before the fix they were two rows with one key, and ``remove()`` deleted both.
    """
    async with make_db() as db:
        await db.use_models(models)
        await db.add(Coin(Decimal("1.0"), "first")).or_raise()
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await db.add(Coin(Decimal("1.00"), "second")).or_raise()
        found = await db.find(Coin.value == Decimal("1.000")).one.or_raise()
        assert found.label == "first" and str(found.value) == "1.0"  # stored digit for digit
        await db.save(Coin(Decimal("1"), "renamed")).or_raise()  # updates the row of the equal key
        assert [(str(c.value), c.label) async for c in db.find(Coin).all] == [("1.0", "renamed")]

        await db.add(Slot(Decimal("2.5"), 1)).or_raise()
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await db.add(Slot(Decimal("2.50"), 1)).or_raise()
        await db.add(Slot(Decimal("2.50"), 2)).or_raise()

        holder = await db.add(Holder(Decimal("1.00"))).or_raise()  # references the key 1.0
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await db.add(Holder(Decimal("1.01"))).or_raise()
        await db.remove(holder).or_raise()

        assert await db.remove(Coin(Decimal("1.00"))).or_raise() == 1
        assert await db.find(Coin).count.or_raise() == 0


async def test_decimal_key_table_created_before_keeps_working_and_is_reported(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """A table made by an older ommi-sqlite (text-keyed) passes the drift check; use_models logs why it differs."""
    schema = get_schema(Coin)
    raw.execute(SQLCompiler(SQLiteDialect()).create_table(schema))  # the table definition before the fix
    with caplog.at_level(logging.WARNING, logger="ommi.sqlite.driver"):
        async with connect_file() as db:
            await db.use_models(models)
            await db.add(Coin(Decimal("3.0"))).or_raise()
            assert await db.find(Coin.value == Decimal("3")).count.or_raise() == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("schema.decimal_key.text" in m and schema.name in m for m in warnings), warnings


# -- item 13: streams on the writer connection ----------------------------------


async def test_memory_stream_reads_one_snapshot_while_another_task_writes() -> None:
    """One ``.all`` over 20 rows in memory yields each row once, as they were, whatever other tasks write.

    Before the fix the stream read through the writes between its batches:
    a row whose key moved came twice, and a deleted row went missing.
    """
    async with Ommi(SQLiteDriver.connect(batch_size=3)) as db:
        await db.use_models(models)
        await db.add(*(Item(n) for n in range(20))).or_raise()
        iterator = await db.find(Item).all.or_raise()
        seen = [(await anext(iterator)).number for _ in range(3)]

        async def writes() -> None:
            await db.find(Item.number == 0).update(id=1000).or_raise()  # an already read row moves to the end
            await db.find(Item.number == 15).delete.or_raise()  # a row not read yet goes
            await db.add(Item(99)).or_raise()

        await asyncio.create_task(writes())
        seen.extend([item.number async for item in iterator])
        assert sorted(seen) == list(range(20))
        assert sorted([i.number async for i in db.find(Item).all]) == [n for n in range(20) if n != 15] + [99]


@pytest.mark.parametrize("where", ["file", "memory"])
async def test_transaction_stream_reads_one_snapshot_while_the_transaction_writes(
    where: str, connect_file: Callable[..., Ommi]
) -> None:
    """A transaction's stream (on the writer connection) is not changed by the transaction's later writes."""
    db = connect_file(batch_size=3) if where == "file" else Ommi(SQLiteDriver.connect(batch_size=3))
    async with db:
        await db.use_models(models)
        await db.add(*(Item(n) for n in range(20))).or_raise()
        async with db.transaction() as t:
            iterator = await t.find(Item).all.or_raise()
            seen = [(await anext(iterator)).number for _ in range(3)]

            async def writes() -> None:  # a second task sharing the transaction
                await t.find(Item.number == 0).update(id=1000).or_raise()
                await t.find(Item.number == 15).delete.or_raise()
                await t.add(Item(99)).or_raise()

            await asyncio.create_task(writes())
            seen.extend([item.number async for item in iterator])
        assert sorted(seen) == list(range(20))
        assert await db.find(Item).count.or_raise() == 20


@pytest.mark.parametrize("where", ["file", "memory"])
@pytest.mark.parametrize("end", ["commit", "rollback"])
async def test_transaction_stream_after_its_end_raises_and_leaves_the_writer_clean(
    where: str, end: str, connect_file: Callable[..., Ommi]
) -> None:
    """Read on after its transaction ended, a stream raises TransactionError; the writer holds nothing of it."""
    db = connect_file(batch_size=3) if where == "file" else Ommi(SQLiteDriver.connect(batch_size=3))
    async with db:
        await db.use_models(models)
        await db.add(*(Item(n) for n in range(20))).or_raise()
        t = db.transaction()
        await t.__aenter__()
        iterator = await t.find(Item).all.or_raise()
        first = await anext(iterator)
        await t.add(Item(50)).or_raise()
        await (t.commit() if end == "commit" else t.rollback())
        assert first.number == 0
        with pytest.raises(TransactionError, match="ended"):
            await iterator.to_list()
        await iterator.aclose()
        writer = db.driver.pool.writer  # type: ignore[attr-defined]
        assert not writer.in_transaction
        assert await writer.fetchall("SELECT name FROM temp.sqlite_schema") == []
        await db.add(Item(51)).or_raise()
        expected = 22 if end == "commit" else 21
        assert await db.find(Item).count.or_raise() == expected


@pytest.mark.parametrize("in_transaction", [False, True], ids=["memory", "transaction"])
async def test_snapshot_keeps_the_order_and_window_of_the_query(
    in_transaction: bool, connect_file: Callable[..., Ommi]
) -> None:
    """A result read from a snapshot comes in the query's order and window, with its values as stored."""
    db = connect_file(batch_size=2) if in_transaction else Ommi(SQLiteDriver.connect(batch_size=2))
    async with db:
        await db.use_models(models)
        # rowid descends while oid ascends: ordering by a column named like the rowid would show.
        await db.add(*(Shadow(100 - n, Decimal(n) / 10) for n in range(12))).or_raise()

        async def check(session: Any) -> None:
            windowed = session.find(Shadow).sort(Shadow.oid.desc).limit(5, page=1)
            filtered = session.find(Shadow.oid >= Decimal("0.30")).sort(Shadow.oid)
            for find, expected in [(windowed, [6, 5, 4, 3, 2]), (filtered, list(range(3, 12)))]:
                found = [s async for s in find.all]
                assert [s.oid * 10 for s in found] == expected
                assert [s.rowid for s in found] == [100 - n for n in expected]
                assert all(type(s.oid) is Decimal and type(s.rowid) is int for s in found)

        if in_transaction:
            async with db.transaction() as t:
                await check(t)
        else:
            await check(db)


async def test_tasks_sharing_a_transaction_take_turns(make_driver: Callable[..., SQLiteDriver]) -> None:
    """Another task's insert never runs inside a failing multi-statement insert of the same transaction.

    Before the fix the second insert ran between the first one's statements,
    inside its savepoint, and the first one's failure rolled it back after it
    had reported success.
    """
    driver = make_driver()
    await driver.open()
    await driver.apply_schema([ITEM])
    try:
        tx = await driver.begin()
        await tx.insert(ITEM, item_rows(1))
        # 600 rows take several INSERTs inside one savepoint; the last row repeats key 1.
        failing_rows = [ITEM.encode_instance(Item(n, id=100 + n)) for n in range(599)]
        failing_rows.append(ITEM.encode_instance(Item(9999, id=1)))
        failing = asyncio.create_task(tx.insert(ITEM, failing_rows))
        await asyncio.sleep(0)  # its savepoint is open
        await tx.insert(ITEM, item_rows(777))
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await failing
        await tx.commit()
        assert await numbers(driver) == [1, 777]
    finally:
        await driver.close()


async def test_memory_snapshot_of_a_stream_closed_early_is_dropped_without_waiting() -> None:
    """Closing a memory stream early drops its copy; inside the task's own transaction it never waits for it."""

    async def snapshots(db: Ommi) -> list[Any]:
        return await db.driver.pool.writer.fetchall("SELECT name FROM temp.sqlite_schema")  # type: ignore[attr-defined]

    async with Ommi(SQLiteDriver.connect(batch_size=3, busy_timeout=5)) as db:
        await db.use_models(models)
        await db.add(*(Item(n) for n in range(20))).or_raise()
        iterator = await db.find(Item).all.or_raise()
        await anext(iterator)
        assert len(await snapshots(db)) == 1
        await iterator.aclose()
        assert await snapshots(db) == []

        iterator = await db.find(Item).all.or_raise()
        await anext(iterator)
        async with db.transaction() as t:
            await asyncio.wait_for(iterator.aclose(), 1)  # the database is this task's: no waiting for it
            await t.add(Item(20)).or_raise()
        assert await db.find(Item).count.or_raise() == 21  # the next turn on the database drops the copy
        assert await snapshots(db) == []


@pytest.mark.parametrize("in_transaction", [False, True], ids=["memory", "memory-transaction"])
async def test_cancelling_a_snapshot_stream_anywhere_leaves_the_database_usable(in_transaction: bool) -> None:
    """A task reading a snapshot stream, cancelled at any point, leaves no lock taken and no copy behind."""
    async with Ommi(SQLiteDriver.connect(batch_size=3, busy_timeout=2)) as db:
        await db.use_models(models)
        await db.add(*(Item(n) for n in range(30))).or_raise()
        pool = db.driver.pool  # type: ignore[attr-defined]

        async def read() -> None:
            if in_transaction:
                async with db.transaction() as t:
                    await t.add(Item(1000)).or_raise()
                    assert len([i async for i in t.find(Item).all]) == 31
            else:
                assert len([i async for i in db.find(Item).all]) == 30

        for turns in range(0, 150, 3):
            task = asyncio.create_task(read())
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            # Cleanup the cancellation interrupted goes on shielded for a moment; then nothing is held.
            for _ in range(100):
                if not pool.stats()["writer_locked"]:
                    break
                await asyncio.sleep(0.01)
            assert pool.stats()["writer_locked"] == 0, turns
            # All of the transaction or none (cancelled during its commit, it commits, then raises).
            assert await db.find(Item).count.or_raise() in (30, 31), turns
            await db.find(Item.number == 1000).delete.or_raise()
            assert await pool.writer.fetchall("SELECT name FROM temp.sqlite_schema") == [], turns


async def test_memory_stream_snapshot_keeps_python_memory_bounded() -> None:
    """Streaming 20,000 rows in batches of 100 from memory holds about one batch in Python, not the result."""
    async with Ommi(SQLiteDriver.connect(batch_size=100)) as db:
        await db.use_models(models)
        await db.add(*(Item(n) for n in range(20_000))).or_raise()
        gc.collect()
        tracemalloc.start()
        try:
            count = 0
            start = tracemalloc.get_traced_memory()[0]
            async for _item in db.find(Item).all:
                count += 1
            peak = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()
        assert count == 20_000
        assert peak < 1_000_000, f"{peak} bytes traced while streaming"


# -- item 15: huge windows -----------------------------------------------------


async def test_huge_limit_and_offset_never_overflow(make_driver: Callable[..., SQLiteDriver]) -> None:
    """A limit or offset past SQLite's 64-bit range means "no limit" / "nothing left", never OverflowError."""
    driver = make_driver(batch_size=4)
    await driver.open()
    await driver.apply_schema([ITEM])
    await driver.insert(ITEM, item_rows(*range(10)))
    try:
        for limit, offset, expected in [(2**63, 0, 10), (2**64, 3, 7), (5, 2**63, 0), (2**70, 2**70, 0)]:
            query = plan_query((Item,), limit=limit, offset=offset)
            assert await driver.count(query) == expected
            rows = [row async for batch in driver.fetch(query, 4) for row in batch]
            assert len(rows) == expected
    finally:
        await driver.close()


async def test_integer_parameter_out_of_range_is_a_query_error(make_driver: Callable[..., SQLiteDriver]) -> None:
    """A value past SQLite's 64-bit range reaching the driver raises QueryError, never a raw OverflowError."""
    driver = make_driver()
    await driver.open()
    await driver.apply_schema([ITEM])
    try:
        query = Query(ITEM, Comparison(ITEM.by_name["number"], Op.EQ, 2**64))
        with pytest.raises(QueryError, match="64-bit"):
            await driver.count(query)
        with pytest.raises(QueryError, match="64-bit"):
            [row async for batch in driver.fetch(query, 4) for row in batch]
    finally:
        await driver.close()


@pytest.fixture
def memory_name() -> str:
    import uuid

    return f"file:ommi-reliability-test-{uuid.uuid4().hex}?mode=memory"


# -- models named like SQLite's own tables ------------------------------------------


@pytest.mark.parametrize("name", ["sqlite_master", "sqlite_sequence", "SQLite_Schema", "sqlite_anything"])
async def test_models_named_like_sqlites_own_tables_are_refused_before_any_io(tmp_path: Path, name: str) -> None:
    """A model stored as ``sqlite_...`` is refused by set-up, drop and every query, naming @ommi_model(name=...).

    Before, set-up blamed a schema mismatch (it read sqlite_master's columns) and
    ``remove_models`` tried to drop SQLite's own catalog.
    """
    collection = ModelCollection()

    @ommi_model(collection=collection, name=name)
    @dataclass
    class Catalogish:
        label: str
        id: Annotated[int, Key] = 0

    driver = SQLiteDriver.connect(str(tmp_path / "reserved.db"))
    async with Ommi(driver, allow_implicit_model_setup=False) as db:
        for attempt in (
            lambda: db.use_models(collection),
            lambda: db.remove_models(collection),
            lambda: db.find(Catalogish).count.or_raise(),
            lambda: db.add(Catalogish("x", 1)).or_raise(),
        ):
            with pytest.raises(ModelDefinitionError, match=r"reserves every table name starting with 'sqlite_'"):
                await attempt()
    with contextlib.closing(sqlite3.connect(tmp_path / "reserved.db")) as check:
        assert check.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
