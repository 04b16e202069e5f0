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
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
from ommi import Key, ModelCollection, Ommi, ReferenceTo, ommi_model
from ommi.errors import ConnectionError as OmmiConnectionError
from ommi.errors import IntegrityError, OperationalError, QueryError, TransactionError
from ommi.models.schema import get_schema
from ommi.query.ast import Comparison, Op, Query
from ommi.query.find import plan_query
from ommi.sql import SQLCompiler
from ommi_sqlite import SQLiteDriver
from ommi_sqlite.dialect import SQLiteDialect

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
