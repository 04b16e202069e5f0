"""Generated integer keys: atomic under concurrency, never colliding with keys the application chose."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from ommi import IntegrityError, Key, ModelCollection, Ommi, ommi_model
from ommi.models import get_schema
from ommi_mongodb import MongoDBDriver

models = ModelCollection("ommi_mongodb_test_keys")

OpenDb = Callable[..., Awaitable[Ommi]]


@ommi_model(collection=models, name="mdb_counted")
@dataclass
class Counted:
    """A generated int key."""

    label: str
    id: int | None = None


@ommi_model(collection=models, name="mdb_slot")
@dataclass
class Slot:
    """A composite key: stored as an ``_id`` sub-document, never generated."""

    region: Annotated[str, Key]
    number: Annotated[int, Key]
    label: str = ""


def _driver(db: Ommi) -> MongoDBDriver:
    assert isinstance(db.driver, MongoDBDriver)
    return db.driver


async def _ids(db: Ommi) -> list[int]:
    iterator = await db.find(Counted).sort(Counted.id).all.or_raise()
    return [c.id for c in await iterator.to_list() if c.id is not None]


async def test_keys_fifty_concurrent_inserters_get_distinct_keys(open_db: OpenDb) -> None:
    """50 tasks inserting at once (one row, then three in one add) get 200 distinct keys, all stored."""
    db = await open_db(models)

    async def inserter(n: int) -> list[int | None]:
        one = await db.add(Counted(f"single {n}")).or_raise()
        several = await db.add(*(Counted(f"batch {n}.{i}") for i in range(3))).or_raise()
        return [one.id, *(c.id for c in several)]

    results = await asyncio.gather(*(inserter(n) for n in range(50)))
    keys = [key for keys in results for key in keys]
    assert None not in keys
    assert len(keys) == 200
    assert len(set(keys)) == 200, "two inserts were given the same key"
    assert sorted(await _ids(db)) == sorted(k for k in keys if k is not None)
    assert await db.find(Counted).count.or_raise() == 200


async def test_keys_concurrent_inserters_on_two_connections(open_db: OpenDb) -> None:
    """Two drivers (two connection pools) inserting concurrently never hand out the same key."""
    first = await open_db(models)
    second = await open_db(models)

    async def inserter(db: Ommi, n: int) -> int | None:
        return (await db.add(Counted(f"row {n}")).or_raise()).id

    keys = await asyncio.gather(*(inserter(first if n % 2 else second, n) for n in range(50)))
    assert len(set(keys)) == 50 and None not in keys
    assert await first.find(Counted).count.or_raise() == 50


async def test_keys_generated_keys_skip_past_chosen_ones(open_db: OpenDb) -> None:
    """After the application stores key 100, generated keys start above it (no collision)."""
    db = await open_db(models)
    first = await db.add(Counted("generated")).or_raise()
    chosen = await db.add(Counted("chosen", id=100)).or_raise()
    after = await db.add(Counted("after")).or_raise()
    assert first.id is not None and after.id is not None
    assert chosen.id == 100
    assert after.id > 100


async def test_keys_chosen_and_generated_keys_mixed_concurrently(open_db: OpenDb) -> None:
    """Tasks choosing keys and tasks leaving them to the database, at once.

    Every generated insert succeeds with a key no other row has. A chosen key
    can only fail when the database had already generated that key for
    another row (a true duplicate): then IntegrityError, and the row holding
    the key is the generated one.
    """
    db = await open_db(models)

    async def add(n: int) -> tuple[int, int | None, BaseException | None]:
        chosen = 20 + n if n % 5 == 0 else None
        try:
            added = await db.add(Counted(f"row {n}", id=chosen)).or_raise()
        except IntegrityError as exc:
            return n, chosen, exc
        return n, added.id, None

    outcomes = await asyncio.gather(*(add(n) for n in range(50)))
    stored = {c.id: c.label for c in await (await db.find(Counted).all.or_raise()).to_list()}
    for n, key, error in outcomes:
        if error is None:
            assert key is not None and stored[key] == f"row {n}"
        else:
            assert n % 5 == 0, f"a generated insert failed: {error!r}"
            assert isinstance(error, IntegrityError)
            assert stored[key] != f"row {n}", "the chosen key was refused although no other row had it"
    assert len(stored) == sum(1 for _, _, error in outcomes if error is None)
    last = await db.add(Counted("last")).or_raise()
    assert last.id is not None and last.id > max(stored)


async def test_keys_generated_key_taken_meanwhile_is_replaced(open_db: OpenDb) -> None:
    """A generated key that another writer took behind the counter's back is replaced by a fresh one."""
    db = await open_db(models)
    first = await db.add(Counted("first")).or_raise()
    assert first.id is not None
    driver = _driver(db)
    collection = driver._database()[driver.collection_name(get_schema(Counted))]
    await collection.insert_one({"_id": first.id + 1, "label": "foreign"})
    await collection.insert_one({"_id": first.id + 2, "label": "foreign"})
    second = await db.add(Counted("second"), Counted("third")).or_raise()
    keys = [c.id for c in second]
    assert all(key is not None and key > first.id + 2 for key in keys)
    assert await db.find(Counted).count.or_raise() == 5


async def test_keys_documents_written_by_other_tools_are_skipped(open_db: OpenDb) -> None:
    """Documents stored without the counter (another tool) do not make generated keys collide."""
    db = await open_db(models)
    driver = _driver(db)
    collection = driver._database()[driver.collection_name(get_schema(Counted))]
    await collection.insert_many([{"_id": 7, "label": "foreign"}, {"_id": 8, "label": "foreign"}])
    added = await db.add(Counted("mine")).or_raise()
    assert added.id is not None and added.id > 8


async def test_keys_duplicate_chosen_key_is_integrity_error(open_db: OpenDb) -> None:
    """Inserting a key that exists fails with IntegrityError chained to PyMongo's error; nothing changes."""
    db = await open_db(models)
    await db.add(Counted("original", id=5)).or_raise()
    result = await db.add(Counted("twin", id=5))
    assert isinstance(result.exception, IntegrityError)
    assert type(result.exception.__cause__).__module__.startswith("pymongo")
    assert [c.label for c in await (await db.find(Counted).all.or_raise()).to_list()] == ["original"]


async def test_keys_failed_batch_stores_nothing(open_db: OpenDb) -> None:
    """A batch whose third row has a taken key stores none of its rows."""
    db = await open_db(models)
    await db.add(Counted("taken", id=3)).or_raise()
    result = await db.add(Counted("a", id=1), Counted("b", id=2), Counted("c", id=3), Counted("d", id=4))
    assert isinstance(result.exception, IntegrityError)
    assert await _ids(db) == [3]


async def test_keys_composite_key_is_an_id_subdocument(open_db: OpenDb) -> None:
    """A composite key is stored as ``_id: {region, number}``, unique as a pair and queryable by part."""
    db = await open_db(models)
    await db.add(Slot("eu", 1, "a"), Slot("eu", 2, "b"), Slot("us", 1, "c")).or_raise()
    driver = _driver(db)
    collection = driver._database()[driver.collection_name(get_schema(Slot))]
    stored = await collection.find_one({"label": "b"})
    assert stored is not None and stored["_id"] == {"region": "eu", "number": 2}
    assert isinstance((await db.add(Slot("eu", 1, "twin"))).exception, IntegrityError)
    found = await (await db.find(Slot.number == 1).sort(Slot.region).all.or_raise()).to_list()
    assert [s.label for s in found] == ["a", "c"]


async def test_keys_update_of_a_key_field_rewrites_the_document(open_db: OpenDb) -> None:
    """Changing a key moves the document to the new ``_id``; a clash is IntegrityError and changes nothing."""
    db = await open_db(models)
    await db.add(Slot("eu", 1, "a"), Slot("eu", 2, "b")).or_raise()
    assert await db.find(Slot.label == "a").update(number=5).or_raise() == 1
    assert (await db.find(Slot.number == 5).one.or_raise()).label == "a"
    result = await db.find(Slot.label == "a").update(number=2)
    assert isinstance(result.exception, IntegrityError)
    rows = await (await db.find(Slot).sort(Slot.number).all.or_raise()).to_list()
    assert [(s.number, s.label) for s in rows] == [(2, "b"), (5, "a")]
