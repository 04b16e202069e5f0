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

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
from ommi import Key, ModelCollection, Ommi, ReferenceTo, ommi_model
from ommi.errors import IntegrityError, QueryError
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
