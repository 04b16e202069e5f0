"""How documents are stored and read: BSON types, streaming cursors, conditions on related models."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from bson import Binary, Decimal128, Int64
from ommi import ModelCollection, Ommi, ReferenceTo, TimezoneAware, ValidationError, ommi_model
from ommi.models import get_schema
from ommi_mongodb import MongoDBDriver, _plan
from pymongo import monitoring

models = ModelCollection("ommi_mongodb_test_storage")
keyword_models = ModelCollection("ommi_mongodb_test_keyword")

OpenDb = Callable[..., Awaitable[Ommi]]
UTC = datetime.UTC


@ommi_model(collection=models, name="mdb_typed")
@dataclass
class Typed:
    """Fields whose stored BSON form the tests inspect."""

    integer: int
    real: float
    day: datetime.date
    moment: datetime.datetime
    instant: Annotated[datetime.datetime, TimezoneAware]
    blob: bytes
    uid: uuid.UUID | None = None
    amount: decimal.Decimal | None = None
    id: int | None = None


@ommi_model(collection=models, name="mdb_row")
@dataclass
class Row:
    """Numbered rows for streaming."""

    position: int
    id: int | None = None


@ommi_model(collection=models, name="mdb_author")
@dataclass
class Author:
    """The referenced side of a relation."""

    name: str
    id: int | None = None


@ommi_model(collection=models, name="mdb_book")
@dataclass
class Book:
    """The referencing side."""

    title: str
    author_id: Annotated[int | None, ReferenceTo(Author)] = None
    id: int | None = None


@ommi_model(collection=keyword_models, name="group")
@dataclass
class KeywordNamed:
    """Stored in a collection named after an SQL keyword."""

    select: str
    id: int | None = None


def _collection(db: Ommi, model: type) -> Any:
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    return driver._database()[driver.collection_name(get_schema(model))]


def _typed(**changes: Any) -> Typed:
    values: dict[str, Any] = {
        "integer": 5,
        "real": 2.0,
        "day": datetime.date(1969, 7, 20),
        "moment": datetime.datetime(2024, 3, 1, 12, 30, 15, 123456),
        "instant": datetime.datetime(2024, 3, 1, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        "blob": b"\x00\xff",
    }
    values.update(changes)
    return Typed(**values)


async def test_storage_bson_types(open_db: OpenDb) -> None:
    """int64, double, date at midnight, millisecond date-times, UTC instants and binary are what is stored."""
    db = await open_db(models)
    await db.add(_typed()).or_raise()
    raw = await _collection(db, Typed).find_one({})
    assert raw is not None
    assert isinstance(raw["integer"], int) and raw["integer"] == 5
    assert isinstance(raw["real"], float) and raw["real"] == 2.0
    assert raw["day"] == datetime.datetime(1969, 7, 20)
    assert raw["moment"] == datetime.datetime(2024, 3, 1, 12, 30, 15, 123000)
    assert raw["instant"] == datetime.datetime(2024, 3, 1, 10, 30)
    assert bytes(raw["blob"]) == b"\x00\xff"


async def test_storage_values_read_back(open_db: OpenDb) -> None:
    """Values read back as the model's types: date, naive and aware (UTC) datetimes, milliseconds kept."""
    db = await open_db(models)
    await db.add(_typed()).or_raise()
    got = await db.find(Typed).one.or_raise()
    assert got.day == datetime.date(1969, 7, 20) and type(got.day) is datetime.date
    assert got.moment == datetime.datetime(2024, 3, 1, 12, 30, 15, 123000) and got.moment.tzinfo is None
    assert got.instant == datetime.datetime(2024, 3, 1, 10, 30, tzinfo=UTC) and got.instant.utcoffset() is not None
    assert got.blob == b"\x00\xff" and type(got.blob) is bytes


@pytest.mark.needs_real_mongodb(reason="it cannot store Decimal128 and reads UUIDs back as plain bytes")
async def test_storage_decimal128_and_standard_uuid(open_db: OpenDb) -> None:
    """Decimal is stored as Decimal128 digit for digit, UUID as binary subtype 4, int as int64."""
    db = await open_db(models)
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await db.add(_typed(integer=2**40, uid=uid, amount=decimal.Decimal("1234.5000"))).or_raise()
    collection = _collection(db, Typed).with_options(codec_options=_raw_codec_options())
    raw = await collection.find_one({})
    assert raw is not None
    assert raw["amount"] == Decimal128("1234.5000")
    assert isinstance(raw["uid"], Binary) and raw["uid"].subtype == 4 and raw["uid"].as_uuid() == uid
    assert isinstance(raw["integer"], Int64)
    got = await db.find(Typed).one.or_raise()
    assert str(got.amount) == "1234.5000" and got.uid == uid
    assert await db.find(Typed.amount > decimal.Decimal("1234.4")).count.or_raise() == 1


def _raw_codec_options() -> Any:
    from bson.binary import UuidRepresentation
    from bson.codec_options import CodecOptions

    return CodecOptions(uuid_representation=UuidRepresentation.UNSPECIFIED)


async def test_storage_decimal_beyond_decimal128_is_rejected(open_db: OpenDb) -> None:
    """A Decimal with more than 34 significant digits is a ValidationError, never silently rounded."""
    db = await open_db(models)
    result = await db.add(_typed(amount=decimal.Decimal("1." + "1" * 40)))
    assert isinstance(result.exception, ValidationError)
    assert "Decimal128" in str(result.exception)
    assert await db.find(Typed).count.or_raise() == 0


class _Commands(monitoring.CommandListener):
    """Records the commands a client sends (PyMongo's monitoring API, passed through the settings)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]


async def test_storage_all_streams_in_batches_and_closes_the_cursor(open_db: OpenDb) -> None:
    """``.all`` reads with the batch size asked for, fetching more only as the caller iterates."""
    commands = _Commands()
    db = await open_db(models, event_listeners=[commands])
    await db.add(*(Row(i) for i in range(10))).or_raise()
    commands.sent.clear()
    iterator = await db.find(Row).sort(Row.position).all(batch_size=3).or_raise()
    seen = [(await anext(iterator)).position for _ in range(4)]
    assert seen == [0, 1, 2, 3]
    finds = [command for name, command in commands.sent if name == "find"]
    assert len(finds) == 1 and finds[0]["batchSize"] == 3
    assert commands.names().count("getMore") == 1, "only the batches iterated so far were fetched"
    await iterator.aclose()
    assert "killCursors" in commands.names(), "closing the iterator early closes the server cursor"


async def test_storage_all_reads_everything_with_a_small_batch(open_db: OpenDb) -> None:
    """Every document arrives once, in order, whatever the batch size."""
    db = await open_db(models, batch_size=4)
    await db.add(*(Row(i) for i in range(11))).or_raise()
    iterator = await db.find(Row).sort(Row.position.desc).all.or_raise()
    assert [r.position async for r in iterator] == list(range(10, -1, -1))


async def test_storage_related_conditions_left_join_without_duplicates(
    open_db: OpenDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Conditions on related models: LEFT JOIN semantics, each target once, across candidate chunks."""
    monkeypatch.setattr(_plan, "CHUNK", 2)  # several chunks with a handful of documents
    db = await open_db(models)
    ada, bob, cyd = Author("Ada"), Author("Bob"), Author("Cyd")
    await db.add(ada, bob, cyd).or_raise()
    books = [Book("x1", ada.id), Book("x2", ada.id), Book("y", bob.id), Book("loose", None), Book("lost", 999)]
    await db.add(*books).or_raise()

    async def names(*conditions: Any) -> list[str]:
        iterator = await db.find(Author, *conditions).sort(Author.name).all.or_raise()
        return [a.name for a in await iterator.to_list()]

    assert await names(Book.title.startswith("x")) == ["Ada"]
    assert await names(Book.title != "y") == ["Ada", "Cyd"]  # Cyd has no book: NULL != "y" holds
    assert await names(Book.title == None) == ["Cyd"]  # noqa: E711 - a query
    assert await db.find(Author, Book.title.startswith("x")).count.or_raise() == 1
    titles = await (await db.find(Book, Author.name == "Ada").sort(Book.title).all.or_raise()).to_list()
    assert [b.title for b in titles] == ["x1", "x2"]
    assert await db.find(Book, Author.name != "Ada").count.or_raise() == 3  # y, loose, lost
    assert await db.find(Book, Author.name == "Ada").update(title="by Ada").or_raise() == 2
    assert await db.find(Author, Book.title == "by Ada").delete.or_raise() == 1
    assert await names() == ["Bob", "Cyd"]


@pytest.mark.needs_real_mongodb(reason="it fails every command on a collection named after an SQL keyword")
async def test_keyword_collection_names(open_db: OpenDb) -> None:
    """A model stored in a collection named ``group`` (no prefix) works like any other."""
    db = await open_db(keyword_models, collection_prefix="")
    await db.add(KeywordNamed("a"), KeywordNamed("b")).or_raise()
    assert await db.find(KeywordNamed.select == "b").count.or_raise() == 1
    assert _collection(db, KeywordNamed).name == "group"


def test_storage_document_converters_have_real_file_names() -> None:
    """The generated converters are compiled through ``ommi._codegen``: tracebacks name the model and show the line."""
    import linecache
    import traceback

    from ommi._codegen import generated
    from ommi_mongodb import _values

    schema = get_schema(Row)
    to_document, to_row, size = _values._converters(schema)
    for function in (to_document, to_row, size):
        assert generated(function)
        assert function.__qualname__ == f"<document converters of {schema.name}>.{function.__name__}"
    filename = to_row.__code__.co_filename
    assert "document converters of mdb_row" in filename
    assert linecache.getlines(filename), "the generated source is registered in linecache"
    try:
        to_document(("not a row",))  # too short: position 1 is missing
    except IndexError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    else:  # pragma: no cover - the row is too short
        raise AssertionError("a row of the wrong width was converted")
    assert frames[-1].filename == to_document.__code__.co_filename
    assert frames[-1].line and "r[" in frames[-1].line
