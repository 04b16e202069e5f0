"""Regressions of issue 11 ("Reliability II") on the MongoDB driver.

* A key is never written as something it cannot be read back as, and a document
  whose key cannot be read gives a clear ``ommi.errors`` error.
* Huge windows never raise a raw ``OverflowError``.
* Models named like the driver's own collections are refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import pytest
from bson import ObjectId
from ommi import (
    Key,
    ModelCollection,
    ModelDefinitionError,
    Ommi,
    SchemaMismatchError,
    ValidationError,
    ommi_model,
)
from ommi.errors import OmmiError
from ommi.models import get_schema
from ommi.query.ast import Comparison, Op, Query
from ommi_mongodb import MongoDBDriver
from pymongo import AsyncMongoClient

models = ModelCollection("ommi_mongodb_test_reliability")

OpenDb = Callable[..., Awaitable[Ommi]]


@ommi_model(collection=models, name="mdb_rel_stock")
@dataclass
class Stock:
    """A composite key whose ``region`` part the update changes."""

    region: Annotated[str, Key]
    number: Annotated[int, Key]
    qty: int = 0


@ommi_model(collection=models, name="mdb_rel_counted")
@dataclass
class Counted:
    """A generated int key."""

    label: str
    when: date | None = None
    id: int | None = None


# -- item 6: keys are written readable, and unreadable ones are reported ----------------


async def test_driver_refuses_to_set_a_key_to_none(open_db: OpenDb) -> None:
    """``update(id=None)`` reaching the driver is refused before anything is written."""
    db = await open_db(models)
    stored = await db.add(Counted("a")).or_raise()
    schema = get_schema(Counted)
    query = Query(schema, Comparison(schema.by_name["id"], Op.EQ, stored.id))
    with pytest.raises(ValidationError, match="key"):
        await db.driver.update(query, {schema.by_name["id"]: None})
    rows = await (await db.find(Counted).all.or_raise()).to_list()
    assert [(c.id, c.label) for c in rows] == [(stored.id, "a")]


async def test_update_of_a_key_to_none_changes_nothing(open_db: OpenDb) -> None:
    """Through Ommi, ``update(id=None)`` fails with an Ommi error and the row stays readable."""
    db = await open_db(models)
    stored = await db.add(Counted("a")).or_raise()
    with pytest.raises(OmmiError):
        await db.find(Counted.id == stored.id).update(id=None).or_raise()
    rows = await (await db.find(Counted).all.or_raise()).to_list()
    assert [(c.id, c.label) for c in rows] == [(stored.id, "a")]


async def test_driver_refuses_to_insert_a_key_part_of_none(open_db: OpenDb) -> None:
    """A row whose key part is None reaching the driver is refused, not stored."""
    db = await open_db(models)
    with pytest.raises(ValidationError, match="key"):
        await db.driver.insert(get_schema(Stock), [(None, 1, 0), ("eu", 2, 0)])
    assert await db.find(Stock).count.or_raise() == 0


async def _raw_insert(mongodb_url: str, db: Ommi, model: type, document: dict[str, Any]) -> None:
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        await client[driver.settings.database or ""][driver.collection_name(get_schema(model))].insert_one(document)
    finally:
        await client.close()


async def test_document_with_an_unreadable_key_is_a_clear_error(open_db: OpenDb, mongodb_url: str) -> None:
    """A document another program stored with an ObjectId ``_id`` makes reads fail with SchemaMismatchError."""
    db = await open_db(models)
    await db.add(Counted("fine")).or_raise()
    await _raw_insert(mongodb_url, db, Counted, {"_id": ObjectId(), "label": "foreign", "when": None})
    with pytest.raises(SchemaMismatchError, match=r"(?s)mdb_rel_counted.*\bid\b.*ObjectId"):
        await (await db.find(Counted).all.or_raise()).to_list()
    assert await db.find(Counted).count.or_raise() == 2


async def test_document_with_an_unreadable_field_is_a_clear_error(open_db: OpenDb, mongodb_url: str) -> None:
    """A stored value of the wrong type (a string where a date belongs) is reported, naming the field."""
    db = await open_db(models)
    await _raw_insert(mongodb_url, db, Counted, {"_id": 5, "label": "odd", "when": "yesterday"})
    with pytest.raises(SchemaMismatchError, match=r"(?s)mdb_rel_counted.*\bwhen\b.*yesterday"):
        await (await db.find(Counted).all.or_raise()).to_list()


# -- item 15: huge windows, reserved collection names --------------------------------------


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [(2**63, 0, 3), (2**64 + 5, 0, 3), (5, 2**63, 0), (2**62, 2**62, 0), (None, 2**70, 0)],
)
async def test_huge_windows_never_overflow(open_db: OpenDb, limit: int | None, offset: int, expected: int) -> None:
    """A limit or offset beyond 64 bits reads what it means (everything, or nothing), with no OverflowError."""
    db = await open_db(models)
    await db.add(*(Counted(f"r{n}") for n in range(3))).or_raise()
    query = Query(get_schema(Counted), limit=limit, offset=offset)
    rows = [row async for batch in db.driver.fetch(query, 2**64) for row in batch]
    assert len(rows) == expected
    assert await db.driver.count(query) == expected


@pytest.mark.parametrize("name", ["_ommi_counters", "_ommi_schema", "system.views"])
async def test_models_named_like_the_drivers_collections_are_refused(
    make_driver: Callable[..., MongoDBDriver], name: str
) -> None:
    """A model stored in one of the driver's own collections is refused, naming the reserved names."""
    reserved = ModelCollection(f"ommi_mongodb_test_reserved_{name}")

    @ommi_model(collection=reserved, name=name)
    @dataclass
    class Intruder:
        label: str
        id: int | None = None

    db = Ommi(make_driver(collection_prefix=""))
    await db.open()
    try:
        with pytest.raises(ModelDefinitionError, match=r"(?s)_ommi_counters.*_ommi_schema"):
            await db.use_models(reserved)
        with pytest.raises(ModelDefinitionError, match="reserved"):
            await db.driver.insert(get_schema(Intruder), [("x", None)])
        with pytest.raises(ModelDefinitionError, match="reserved"):
            await db.driver.drop_schema([get_schema(Intruder)])
    finally:
        await db.close()


async def test_configured_counters_collection_is_reserved(make_driver: Callable[..., MongoDBDriver]) -> None:
    """A ``counters_collection`` setting reserves that name instead of the default."""
    reserved = ModelCollection("ommi_mongodb_test_reserved_custom")

    @ommi_model(collection=reserved, name="my_counters")
    @dataclass
    class Intruder:
        label: str
        id: int | None = None

    db = Ommi(make_driver(collection_prefix="", counters_collection="my_counters"))
    await db.open()
    try:
        with pytest.raises(ModelDefinitionError, match="my_counters"):
            await db.use_models(reserved)
    finally:
        await db.close()
