"""MongoDB and ``Unique``/``Index``: the partial filter that keeps ``None`` out, idempotent and failed index builds.

The conformance suite (``ConstraintTests``) checks the behaviour every driver
shares; these tests check how the MongoDB driver gets it: the unique index's
``partialFilterExpression``, an ``AddUnique`` step run twice (a resumed
migration), and an ``AddUnique`` over duplicates leaving no index behind.
The indexed model is the testkit's ``con_member`` (``ommi_testkit.suites.models_constraints``).
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from ommi import IntegrityError, Ommi
from ommi.migrations import AddUnique, CreateModel, FieldSpec, MigrationStep, SchemaState
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._migrate import Planner
from ommi_testkit.suites.models_constraints import Member, con_v1


async def _indexes(db: Ommi, name: str) -> list[dict[str, Any]]:
    assert isinstance(db.driver, MongoDBDriver)
    database = db.driver._opening().database
    full = db.driver.settings.collection_prefix + name
    return [dict(info) async for info in await database[full].list_indexes()]


@pytest_asyncio.fixture
async def members(open_db: Callable[..., Awaitable[Ommi]]) -> AsyncIterator[Ommi]:
    yield await open_db(con_v1)


@pytest.mark.needs_real_mongodb(reason="nx-27017 does not report an index's partialFilterExpression in listIndexes")
async def test_unique_index_leaves_null_out_with_a_partial_filter(members: Ommi) -> None:
    """The unique indexes index only documents whose fields all hold a value of their type: ``null`` never collides."""
    by_keys = {tuple(dict(info["key"])): info for info in await _indexes(members, "con_member")}
    assert by_keys[("email",)]["unique"] is True
    assert by_keys[("email",)]["partialFilterExpression"] == {"email": {"$type": "string"}}
    assert by_keys[("team", "number")]["partialFilterExpression"] == {
        "team": {"$type": "string"},
        "number": {"$type": "number"},
    }
    assert "partialFilterExpression" not in by_keys[("joined",)]


async def test_null_is_stored_and_not_indexed_as_a_value(members: Ommi) -> None:
    """Documents keep ``email: null`` (the driver stores ``None`` as ``null``), and several of them are accepted."""
    day = datetime.date(2024, 1, 1)
    await members.add(Member("eu", 1, day), Member("eu", 2, day), Member("us", 1, day, "a@x")).or_raise()
    with pytest.raises(IntegrityError):
        await members.add(Member("us", 2, day, "a@x")).or_raise()
    assert isinstance(members.driver, MongoDBDriver)
    raw = members.driver._opening().database[members.driver.settings.collection_prefix + "con_member"]
    documents = [document async for document in raw.find({})]
    assert all("email" in d for d in documents)
    assert sorted(repr(d["email"]) for d in documents) == ["'a@x'", "None", "None"]


def _add_unique_step() -> MigrationStep:
    fields = [FieldSpec("id", "int", key=True, generated=True), FieldSpec("label", "str")]
    before = CreateModel("mc_tag", fields).state_forwards(SchemaState())
    operation = AddUnique("mc_tag", "uq_mc_tag_label", ["label"])
    return MigrationStep("0002_unique", 0, operation, before, before.apply(operation))


@pytest_asyncio.fixture
async def tags(make_driver: Callable[..., MongoDBDriver]) -> AsyncIterator[tuple[Ommi, MigrationStep]]:
    step = _add_unique_step()
    db = Ommi(make_driver(), allow_implicit_model_setup=False)
    await db.open()
    models = list(step.before.model_classes().values())
    await db.remove_models(models)
    await db.use_models(models)
    try:
        yield db, step
    finally:
        await db.remove_models(models)
        await db.close()


async def _run(db: Ommi, step: MigrationStep) -> None:
    assert isinstance(db.driver, MongoDBDriver)
    planner = Planner(db.driver, db.driver._current)
    for command in planner.commands(step):
        await command.run()


async def test_add_unique_runs_twice_like_once(tags: tuple[Ommi, MigrationStep]) -> None:
    """A resumed migration runs an ``AddUnique`` step again: it succeeds and leaves one unique index."""
    db, step = tags
    Tag = step.before.model_classes()["mc_tag"]
    await db.add(Tag(label="red"), Tag(label="blue")).or_raise()
    await _run(db, step)
    await _run(db, step)
    unique = [i for i in await _indexes(db, "mc_tag") if i.get("unique") and tuple(dict(i["key"])) == ("label",)]
    assert len(unique) == 1
    with pytest.raises(IntegrityError):
        await db.add(Tag(label="red")).or_raise()


async def test_add_unique_over_duplicates_leaves_no_index(tags: tuple[Ommi, MigrationStep]) -> None:
    """Stored duplicates fail the step with ``IntegrityError`` naming the values; no index is left behind."""
    db, step = tags
    Tag = step.before.model_classes()["mc_tag"]
    await db.add(Tag(label="red"), Tag(label="red"), Tag(label="blue")).or_raise()
    with pytest.raises(IntegrityError, match="'red'"):
        await _run(db, step)
    assert not [i for i in await _indexes(db, "mc_tag") if tuple(dict(i["key"])) == ("label",)]
    await db.add(Tag(label="red")).or_raise()
