"""``ommi inspect`` on MongoDB: schema records where ``use_models()`` left them, else a sample of documents.

Each test uses a collection prefix of its own, so the inspection sees only
the collections it made. Indexes print as ``Unique``/``Index`` under the
names the server reports.
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from bson import ObjectId
from ommi import IntegrityError, ModelCollection, Ommi, ommi_model
from ommi.migrations import FieldSpec, IndexSpec
from ommi.migrations.inspection import InspectedColumn
from ommi.migrations.printer import render_models
from ommi.models.schema import get_schema
from ommi.models.types import StorageType
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._inspect import _indexes
from pymongo import AsyncMongoClient, IndexModel

recorded = ModelCollection("ommi_mongodb_test_inspect")


@ommi_model(collection=recorded, name="planet")
@dataclass
class Planet:
    name: str
    moons: int | None = None
    id: int | None = None


@pytest_asyncio.fixture
async def prefix(mongodb_url: str, mongodb_database: str) -> AsyncIterator[str]:
    """A collection prefix for this test alone; its collections are dropped afterwards."""
    chosen = f"insp{secrets.token_hex(3)}_"
    yield chosen
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        database = client[mongodb_database]
        for name in await database.list_collection_names():
            if name.startswith(chosen):
                await database.drop_collection(name)
    finally:
        await client.close()


async def test_collections_are_read_from_records_or_samples(
    make_driver: Callable[..., MongoDBDriver], mongodb_url: str, mongodb_database: str, prefix: str, tmp_path: Path
) -> None:
    """A collection use_models() made comes from its record; one another tool wrote, from its documents."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        raw = client[mongodb_database]
        await raw[prefix + "people"].insert_many(
            [{"_id": 1, "name": "Ada", "age": 36}, {"_id": 2, "name": "Grace", "nick": "amazing"}]
        )
        await raw[prefix + "blobs"].insert_one({"_id": ObjectId(), "size": 1})
        await raw[prefix + "mixed"].insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": "one"}])
    finally:
        await client.close()
    async with Ommi(make_driver(collection_prefix=prefix)) as db:
        await db.use_models(recorded)
        await db.add(Planet("Mars", 2)).or_raise()
        inspection = await db.driver.inspect_schema()
        assert set(inspection.state.models) == {"people", "planet"}
        people = inspection.state.model("people")
        assert list(people.fields) == [
            FieldSpec("id", "int", key=True, generated=True),
            FieldSpec("name", "str"),
            FieldSpec("age", "int", nullable=True),
            FieldSpec("nick", "str", nullable=True),
        ]
        assert inspection.notes["people"] == ("field types guessed from a sample of 2 documents",)
        assert inspection.notes["planet"] == ("field types from the driver's schema record",)
        assert "'id' (ObjectId)" in inspection.skipped["blobs"]
        assert "'v' (integer or text)" in inspection.skipped["mixed"]

        text = render_models(inspection)
        assert "# note: field types guessed from a sample of 2 documents" in text
        path = tmp_path / "mongo_models.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("ommi_mongodb_inspected", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        models = {get_schema(m).name: m for m in module.models}
        await db.use_models(module.models)  # no drift against the record; the sampled collection is adopted
        people_rows = await (await db.find(models["people"]).all.or_raise()).to_list()
        assert sorted((p.id, p.name, p.age, p.nick) for p in people_rows) == [
            (1, "Ada", 36, None),
            (2, "Grace", None, "amazing"),
        ]
        planets = await (await db.find(models["planet"]).all.or_raise()).to_list()
        assert [(p.name, p.moons) for p in planets] == [("Mars", 2)]
        await db.remove_models(recorded)


async def _raw_shop(
    mongodb_url: str, mongodb_database: str, name: str, *extra: IndexModel
) -> dict[tuple[str, ...], str]:
    """A collection written by another tool, with Ommi's kind of indexes (and ``extra``): index names by fields."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        raw = client[mongodb_database][name]
        await raw.insert_many(
            [
                {"_id": 1, "email": "a@x", "team": "red", "number": 1, "code": "c1"},
                {"_id": 2, "email": "b@x", "team": "red", "number": 2, "code": "c2"},
            ]
        )
        await raw.create_indexes(
            [
                IndexModel([("email", 1)], name="shop_email", unique=True),
                IndexModel(
                    [("team", 1), ("number", 1)],
                    name="shop_team_number",
                    unique=True,
                    partialFilterExpression={"team": {"$type": "string"}, "number": {"$type": "number"}},
                ),
                IndexModel([("code", 1), ("team", 1)], name="by_code_team"),
                *extra,
            ]
        )
        # A server may name an index its own way: the names it reports are the ones to keep.
        return {tuple(dict(info["key"])): str(info["name"]) async for info in await raw.list_indexes()}
    finally:
        await client.close()


async def test_indexes_print_under_their_stored_names_and_hold(
    make_driver: Callable[..., MongoDBDriver], mongodb_url: str, mongodb_database: str, prefix: str, tmp_path: Path
) -> None:
    """Unique, composite unique (with Ommi's null-excluding filter) and plain indexes print; duplicates still fail."""
    names = await _raw_shop(mongodb_url, mongodb_database, prefix + "shop")
    async with Ommi(make_driver(collection_prefix=prefix)) as db:
        inspection = await db.driver.inspect_schema()
        shop = inspection.state.model("shop")
        assert set(shop.indexes) == {
            IndexSpec(names[("email",)], ["email"], unique=True),
            IndexSpec(names[("team", "number")], ["team", "number"], unique=True),
            IndexSpec(names[("code", "team")], ["code", "team"]),
        }
        text = render_models(inspection)
        assert f"        Unique('team', 'number', name={names[('team', 'number')]!r}),\n" in text
        path = tmp_path / "mongo_shop_models.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("ommi_mongodb_inspected_shop", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        Shop = module.Shop
        assert {(c.name, c.columns, c.unique) for c in get_schema(Shop).constraints} == {
            (i.name, tuple(i.fields), i.unique) for i in shop.indexes
        }
        await db.use_models(module.models)
        with pytest.raises(IntegrityError):
            await db.add(Shop(email="a@x", team="blue", number=1, code="c3")).or_raise()
        with pytest.raises(IntegrityError):
            await db.add(Shop(email="c@x", team="red", number=1, code="c3")).or_raise()
        await db.add(Shop(email="c@x", team="red", number=3, code="c3")).or_raise()
        assert await db.find(Shop).count.or_raise() == 3


@pytest.mark.needs_real_mongodb(
    reason="nx-27017 reports no partialFilterExpression, direction or TTL option in listIndexes, and renames indexes"
)
async def test_indexes_no_model_declares_are_notes(
    make_driver: Callable[..., MongoDBDriver], mongodb_url: str, mongodb_database: str, prefix: str
) -> None:
    """A partial, a descending, a TTL index and the driver's index for a reference are left out with a note."""
    await _raw_shop(
        mongodb_url,
        mongodb_database,
        prefix + "shop",
        IndexModel([("code", 1)], name="code_partial", unique=True, partialFilterExpression={"number": {"$gt": 1}}),
        IndexModel([("number", -1)], name="number_desc"),
        IndexModel([("number", 1)], name="number_ttl", expireAfterSeconds=60),
        IndexModel([("team", 1)], name=f"ix_{prefix}shop_team"),
    )
    async with Ommi(make_driver(collection_prefix=prefix)) as db:
        inspection = await db.driver.inspect_schema()
    notes = "\n".join(inspection.notes["shop"])
    assert "unique index 'code_partial' on (code) left out: it is partial" in notes
    assert "index 'number_desc' on (number) left out: it is not ascending" in notes
    assert "index 'number_ttl' on (number) left out: it is a TTL index" in notes
    assert f"index 'ix_{prefix}shop_team' on (team) left out: the driver makes it for a reference" in notes
    assert {i.name for i in inspection.state.model("shop").indexes} == {
        "shop_email",
        "shop_team_number",
        "by_code_team",
    }


def test_stored_index_descriptions_map_to_fields_or_reasons() -> None:
    """What MongoDB's listIndexes reports (nx-27017 reports less) maps to fields, or says why no model declares it."""
    columns = [
        InspectedColumn("region", "string", StorageType.TEXT, nullable=False, key=1),
        InspectedColumn("number", "integer", StorageType.INTEGER, nullable=False, key=2),
        InspectedColumn("a.b", "string", StorageType.TEXT),
    ]
    stored: list[dict[str, Any]] = [
        {"name": "_id_", "key": {"_id": 1}},
        {"name": "ux_c_key", "key": {"_id.region": 1, "_id.number": 1}, "unique": True},
        {
            "name": "ommi",
            "key": {"a%2Eb": 1},
            "unique": True,
            "partialFilterExpression": {"a%2Eb": {"$type": "string"}},
        },
        {"name": "part", "key": {"a%2Eb": 1}, "partialFilterExpression": {"a%2Eb": {"$exists": True}}},
        {"name": "desc", "key": {"_id.number": -1.0}},
        {"name": "text", "key": {"a%2Eb": "text"}},
        {"name": "sparse", "key": {"_id.number": 1}, "sparse": True},
        {"name": "nested", "key": {"a.b": 1}},
        {"name": "ix_c_a.b", "key": {"a%2Eb": 1}},
    ]
    indexes = {i.name: i for i in _indexes("c", columns, stored)}
    assert set(indexes) == {"ommi", "part", "desc", "text", "sparse", "nested", "ix_c_a.b"}
    assert (indexes["ommi"].columns, indexes["ommi"].unique, indexes["ommi"].unsupported) == (["a.b"], True, None)
    assert "partial" in str(indexes["part"].unsupported)
    assert "not ascending" in str(indexes["desc"].unsupported) and "not ascending" in str(indexes["text"].unsupported)
    assert indexes["sparse"].unsupported == "it is sparse"
    assert indexes["nested"].unsupported == "it covers 'a.b', where no mapped field is stored"
    assert indexes["ix_c_a.b"].for_reference and indexes["ix_c_a.b"].columns == ["a.b"]
