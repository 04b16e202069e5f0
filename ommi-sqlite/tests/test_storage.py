"""What the driver writes into the file, what it reads back, and the keys it hands out."""

from __future__ import annotations

import datetime
import decimal
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pytest
from ommi import Key, ModelCollection, Ommi, StoreAs, TimezoneAware, ommi_model
from ommi.errors import IntegrityError

models = ModelCollection("ommi_sqlite_test_storage")


@ommi_model(collection=models)
@dataclass
class Sample:
    moment: datetime.datetime
    aware: Annotated[datetime.datetime, TimezoneAware]
    day: datetime.date
    amount: decimal.Decimal
    flag: bool
    ident: uuid.UUID
    blob: bytes
    ratio: float = 0.0
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Entry:
    text: str
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Label:
    code: Annotated[str, Key]
    title: str = ""


@ommi_model(collection=models)
@dataclass
class Price:
    amount: decimal.Decimal | None
    id: int | None = None


@ommi_model(collection=models, name='odd "table"; DROP TABLE Entry; --')
@dataclass
class Odd:
    select: Annotated[str, StoreAs("select")]
    where: Annotated[str | None, StoreAs('wh"ere); DROP TABLE Entry; --')] = None
    id: int | None = None


def _sample() -> Sample:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    return Sample(
        moment=datetime.datetime(2024, 1, 2, 3, 4, 5),
        aware=datetime.datetime(2024, 1, 2, 12, 0, 0, 250, tzinfo=plus_two),
        day=datetime.date(99, 5, 6),
        amount=decimal.Decimal("12.3400"),
        flag=True,
        ident=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        blob=b"\x00\xffbytes",
        ratio=0.5,
    )


async def test_values_are_stored_in_sortable_canonical_forms(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """Datetimes are fixed-width ISO text (aware ones in UTC), Decimal exact text, bool 0/1, bytes BLOB."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(_sample()).or_raise()
    stored = raw.execute(
        "SELECT moment, aware, day, amount, flag, ident, blob, ratio, typeof(flag), typeof(blob) FROM Sample"
    ).fetchone()
    assert stored == (
        "2024-01-02 03:04:05.000000",
        "2024-01-02 10:00:00.000250+00:00",
        "0099-05-06",
        "12.3400",
        1,
        "12345678-1234-5678-1234-567812345678",
        b"\x00\xffbytes",
        0.5,
        "integer",
        "blob",
    )
    types = {name: kind for _, name, kind, *_ in raw.execute("PRAGMA table_info(Sample)")}
    assert types["amount"] == "DECIMAL_TEXT" and types["moment"] == "DATETIME_TEXT"


async def test_values_come_back_as_canonical_python_values(connect_file: Callable[..., Ommi]) -> None:
    """Every value reads back as the same Python value and type; datetimes are never strings."""
    original = _sample()
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(original).or_raise()
        loaded = await db.find(Sample.id == original.id).one.or_raise()
    assert loaded == original
    assert type(loaded.moment) is datetime.datetime and loaded.moment.tzinfo is None
    assert loaded.aware.utcoffset() == datetime.timedelta(0) and loaded.aware == original.aware
    assert type(loaded.amount) is decimal.Decimal and str(loaded.amount) == "12.3400"
    assert loaded.flag is True and isinstance(loaded.ident, uuid.UUID)


async def test_datetimes_sort_and_compare_as_instants(connect_file: Callable[..., Ommi]) -> None:
    """Aware values in different zones compare by instant, and microseconds never break text order."""
    utc = datetime.UTC
    base = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=utc)
    values = [
        base + datetime.timedelta(microseconds=1),
        base.astimezone(datetime.timezone(datetime.timedelta(hours=-5))),  # same instant, other zone
        base - datetime.timedelta(seconds=1),
        base.astimezone(datetime.timezone(datetime.timedelta(hours=9))) + datetime.timedelta(seconds=1),
    ]
    naive = datetime.datetime(2024, 1, 1)
    async with connect_file() as db:
        await db.use_models(models)
        for i, aware in enumerate(values):
            sample = _sample()
            sample.aware, sample.moment = aware, naive + datetime.timedelta(microseconds=999_999 * (i % 2))
            await db.add(sample).or_raise()
        ordered = [s.aware async for s in db.find(Sample).sort(Sample.aware.asc).all]
        assert ordered == sorted(values)
        later = await db.find(Sample.aware > base).count.or_raise()
        assert later == 2
        assert await db.find(Sample.aware == base).count.or_raise() == 1
        assert await db.find(Sample.moment > naive).count.or_raise() == 2


async def test_decimals_compare_exactly(connect_file: Callable[..., Ommi]) -> None:
    """Decimal comparisons are exact: more digits than a double holds, and equal values of other exponents."""
    amounts = ["0.1", "0.1000000000000000001", "1.0", "1.00", "10", "9.99", "-3", "1E+2"]
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(*(Price(decimal.Decimal(a)) for a in amounts), Price(None)).or_raise()
        over = [str(p.amount) async for p in db.find(Price.amount > decimal.Decimal("0.1")).sort(Price.amount.asc).all]
        assert over == ["0.1000000000000000001", "1.0", "1.00", "9.99", "10", "1E+2"]
        equal = {str(p.amount) async for p in db.find(Price.amount == decimal.Decimal("1")).all}
        assert equal == {"1.0", "1.00"}
        assert await db.find(Price.amount.in_([decimal.Decimal("100")])).count.or_raise() == 1
        # != matches NULL too, like the reference driver.
        assert await db.find(Price.amount != decimal.Decimal("1")).count.or_raise() == len(amounts) - 2 + 1


async def test_add_many_returns_generated_keys_in_order(connect_file: Callable[..., Ommi]) -> None:
    """``add(*many)`` (several INSERT statements) sets each generated key, around keys given by the caller."""
    entries = [Entry(f"e{i}") for i in range(700)]
    entries[10].id = 5000
    entries[400].id = 20
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(*entries).or_raise()
        assert entries[10].id == 5000 and entries[400].id == 20
        stored = {e.text: e.id async for e in db.find(Entry).all}
    assert stored == {e.text: e.id for e in entries}
    assert len({e.id for e in entries}) == 700
    assert entries[11].id is not None and entries[11].id > 5000  # keys are handed out in row order


async def test_add_many_is_all_or_nothing(connect_file: Callable[..., Ommi]) -> None:
    """A failing row in a multi-statement add stores none of the rows, inside a transaction too."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(Entry("first", id=1)).or_raise()
        doomed = [Entry(f"d{i}") for i in range(600)] + [Entry("dup", id=1)]
        with pytest.raises(IntegrityError):
            await db.add(*doomed).or_raise()
        assert await db.find(Entry).count.or_raise() == 1
        async with db.transaction() as t:
            with pytest.raises(IntegrityError):
                await t.add(*[Entry(f"t{i}") for i in range(600)], Entry("dup", id=1)).or_raise()
            await t.add(Entry("kept")).or_raise()
        assert sorted([e.text async for e in db.find(Entry).all]) == ["first", "kept"]


async def test_given_text_keys_are_never_replaced(connect_file: Callable[..., Ommi]) -> None:
    """A key the application chose is stored as given; no rowid replaces it."""
    labels = [Label("b", "B"), Label("a", "A")]
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(*labels).or_raise()
        assert [label.code for label in labels] == ["b", "a"]
        assert (await db.find(Label.code == "a").one.or_raise()).title == "A"


async def test_deleted_keys_are_not_handed_out_again(connect_file: Callable[..., Ommi]) -> None:
    """Generated keys keep growing after the newest row is deleted (AUTOINCREMENT)."""
    async with connect_file() as db:
        await db.use_models(models)
        first, second = await db.add(Entry("a"), Entry("b")).or_raise()
        await db.find(Entry.id == second.id).delete.or_raise()
        third = await db.add(Entry("c")).or_raise()
    assert third.id > second.id > first.id


async def test_glob_characters_match_literally_and_by_case(connect_file: Callable[..., Ommi]) -> None:
    """contains/startswith/endswith treat ``* ? [ ]`` literally and are case-sensitive."""
    texts = ["a*b", "aXb", "A*B", "a?c", "[x]", "x]", "plain", "a%b", "a_b"]
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(*(Entry(t) for t in texts)).or_raise()

        async def matching(condition: object) -> list[str]:
            return sorted([e.text async for e in db.find(condition).all])

        assert await matching(Entry.text.contains("*")) == ["A*B", "a*b"]
        assert await matching(Entry.text.contains("a*")) == ["a*b"]
        assert await matching(Entry.text.contains("?")) == ["a?c"]
        assert await matching(Entry.text.startswith("[")) == ["[x]"]
        assert await matching(Entry.text.endswith("]")) == ["[x]", "x]"]
        assert await matching(Entry.text.contains("%")) == ["a%b"]
        assert await matching(Entry.text.startswith("A")) == ["A*B"]


async def test_injection_attempts_stay_data(connect_file: Callable[..., Ommi], raw: sqlite3.Connection) -> None:
    """Quotes and statements in values, table names and StoreAs names are stored and matched as data."""
    hostile = "x'); DROP TABLE Entry; --"
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(Entry(hostile), Odd(select=hostile, where='"; DELETE FROM Entry; --')).or_raise()
        found = await db.find(Odd.select == hostile).one.or_raise()
        assert found.where == '"; DELETE FROM Entry; --'
        assert await db.find(Odd.where.contains("DELETE")).update(select="updated").or_raise() == 1
        assert await db.find(Entry.text == hostile).count.or_raise() == 1
        assert await db.find(Odd).delete.or_raise() == 1
    tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"Entry", 'odd "table"; DROP TABLE Entry; --'} <= tables
    assert raw.execute("SELECT text FROM Entry").fetchall() == [(hostile,)]
