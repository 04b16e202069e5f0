"""Conformance tests: ``use_models`` (non-destructive, drift detection) and ``remove_models``."""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from ommi import ModelCollection, Ommi, SchemaError, SchemaMismatchError
from ommi.drivers import Driver
from ommi.models import get_schema

from ommi_testkit.suites._support import fetch, implicit_models
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import testkit_models
from ommi_testkit.suites.models_extra import (
    RaceChild,
    RaceParent,
    RelUser,
    SchemaDriftNullable,
    SchemaDriftRenamed,
    SchemaDriftRetyped,
    SchemaDriftV1,
    SchemaDriftWider,
    SchemaKeepA,
    SchemaKeepB,
    drift_models,
    keep_a_models,
    keep_b_models,
    race_models,
)

# Collections the fixtures do not manage: this suite creates and drops them itself.
_PRIVATE = (drift_models, keep_a_models, keep_b_models, race_models)


def _collection_of(model: type) -> ModelCollection:
    return get_schema(model).collection


class SchemaTests(SuiteBase):
    """Schema management never destroys data and never lets a table drift silently from its model."""

    @pytest_asyncio.fixture
    async def schema_scratch_db(self, db: Ommi) -> AsyncIterator[Ommi]:
        """``db``, with the schema suite's private tables dropped before and after the test."""
        for collection in _PRIVATE:
            await db.remove_models(collection)
        try:
            yield db
        finally:
            for collection in _PRIVATE:
                await db.remove_models(collection)

    # -- non-destructive -----------------------------------------------------------

    async def test_schema_use_models_again_keeps_data(self, schema_scratch_db: Ommi) -> None:
        """Calling ``use_models`` again (same collection, or the testkit's) keeps every row."""
        db = schema_scratch_db
        await db.use_models(keep_a_models)
        await db.add(SchemaKeepA("one"), SchemaKeepA("two"), SchemaKeepA("three")).or_raise()
        await db.add(RelUser("survivor")).or_raise()
        await db.use_models(keep_a_models)
        await db.use_models(testkit_models)
        await db.use_models(keep_a_models)
        assert sorted(a.label for a in await fetch(db.find(SchemaKeepA))) == ["one", "three", "two"]
        assert [u.name for u in await fetch(db.find(RelUser))] == ["survivor"]

    async def test_schema_new_ommi_on_same_database_keeps_data(self, db: Ommi, second_db: Ommi) -> None:
        """A second ``Ommi`` on the same database running ``use_models`` at start-up keeps the rows."""
        await db.add(RelUser("Ada"), RelUser("Grace")).or_raise()
        await second_db.use_models(testkit_models)
        assert await second_db.find(RelUser).count.or_raise() == 2
        assert sorted(u.name for u in await fetch(db.find(RelUser))) == ["Ada", "Grace"]

    async def test_schema_use_models_creates_only_missing_tables(self, schema_scratch_db: Ommi) -> None:
        """``use_models`` on a collection with one existing and one new table creates the new one only."""
        db = schema_scratch_db
        await db.use_models(keep_a_models)
        await db.add(SchemaKeepA("kept")).or_raise()
        both = ModelCollection("ommi_testkit_keep_both")
        both.add(SchemaKeepA)
        both.add(SchemaKeepB)
        await db.use_models(both)
        assert [a.label for a in await fetch(db.find(SchemaKeepA))] == ["kept"]
        await db.add(SchemaKeepB("b1", 3)).or_raise()
        assert (await db.find(SchemaKeepB.code == "b1").one.or_raise()).size == 3

    async def test_schema_use_models_is_idempotent(self, schema_scratch_db: Ommi) -> None:
        """``use_models`` may run any number of times; the tables stay usable."""
        db = schema_scratch_db
        for _ in range(3):
            await db.use_models(keep_b_models)
        await db.add(SchemaKeepB("k")).or_raise()
        await db.use_models(keep_b_models)
        assert await db.find(SchemaKeepB).count.or_raise() == 1

    async def test_schema_use_models_concurrent_across_databases(
        self, schema_scratch_db: Ommi, driver_factory: Callable[[], Driver]
    ) -> None:
        """Twenty ``use_models`` calls at once, spread over three ``Ommi`` on one database, all succeed.

        Creating tables is idempotent also when several connections create the
        same tables at the same moment: no call fails with "already exists" (or
        anything else). Afterwards each table exists once: a row written through
        one database is the only row every database sees, and set-up run again
        changes nothing.
        """
        databases = [Ommi(driver_factory()) for _ in range(3)]
        try:
            for database in databases:
                await database.open()
            calls = [databases[n % len(databases)].use_models(race_models) for n in range(20)]
            results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=120)
            failures = [f"call {n}: {type(r).__name__}: {r}" for n, r in enumerate(results) if r is not None]
            assert failures == []
            parent = await databases[0].add(RaceParent("only")).or_raise()
            await databases[1].add(RaceChild(parent.id, "c1")).or_raise()
            for database in (*databases, schema_scratch_db):
                assert [p.label for p in await fetch(database.find(RaceParent))] == ["only"]
                assert [c.code for c in await fetch(database.find(RaceChild))] == ["c1"]
            await asyncio.gather(*(database.use_models(race_models) for database in databases))
            assert await schema_scratch_db.find(RaceParent).count.or_raise() == 1
        finally:
            for database in databases:
                await database.close()

    async def test_schema_use_models_defaults_to_global_collection(self, db: Ommi, second_db: Ommi) -> None:
        """``use_models()`` without a collection sets up the global collection."""
        ImplicitOwner, _ = implicit_models()
        await db.remove_models()  # the fixture dropped the global collection before these models joined it
        await second_db.use_models()
        owner = await second_db.add(ImplicitOwner("explicit")).or_raise()
        assert (await db.find(ImplicitOwner.id == owner.id).one.or_raise()).name == "explicit"

    # -- drift is an error -------------------------------------------------------

    async def _stored_v1(self, db: Ommi) -> None:
        await db.use_models(drift_models)
        await db.add(SchemaDriftV1("original")).or_raise()

    async def _assert_v1_intact(self, db: Ommi) -> None:
        assert [r.label for r in await fetch(db.find(SchemaDriftV1))] == ["original"]
        await db.add(SchemaDriftV1("still writable")).or_raise()
        assert await db.find(SchemaDriftV1).count.or_raise() == 2

    @requires("schema_introspection")
    async def test_schema_mismatch_extra_model_field(self, schema_scratch_db: Ommi) -> None:
        """A model with a field the stored table lacks raises SchemaMismatchError naming table and field."""
        db = schema_scratch_db
        await self._stored_v1(db)
        with pytest.raises(SchemaMismatchError) as info:
            await db.use_models(_collection_of(SchemaDriftWider))
        assert isinstance(info.value, SchemaError)
        assert "tk_schema_drift" in str(info.value)
        assert "weight" in str(info.value)
        await self._assert_v1_intact(db)

    @requires("schema_introspection")
    async def test_schema_mismatch_changed_type(self, schema_scratch_db: Ommi) -> None:
        """A field whose type changed raises SchemaMismatchError naming the table and the field."""
        db = schema_scratch_db
        await self._stored_v1(db)
        with pytest.raises(SchemaMismatchError) as info:
            await db.use_models(_collection_of(SchemaDriftRetyped))
        assert "tk_schema_drift" in str(info.value)
        assert "label" in str(info.value)
        await self._assert_v1_intact(db)

    @requires("schema_introspection")
    async def test_schema_mismatch_renamed_field(self, schema_scratch_db: Ommi) -> None:
        """A renamed field raises SchemaMismatchError naming both the stored and the model's column."""
        db = schema_scratch_db
        await self._stored_v1(db)
        with pytest.raises(SchemaMismatchError) as info:
            await db.use_models(_collection_of(SchemaDriftRenamed))
        message = str(info.value)
        assert "tk_schema_drift" in message
        assert "caption" in message
        assert "label" in message
        await self._assert_v1_intact(db)

    @requires("schema_introspection")
    async def test_schema_mismatch_changed_nullability(self, schema_scratch_db: Ommi) -> None:
        """A required field that became optional raises SchemaMismatchError naming the field."""
        db = schema_scratch_db
        await self._stored_v1(db)
        with pytest.raises(SchemaMismatchError) as info:
            await db.use_models(_collection_of(SchemaDriftNullable))
        assert "tk_schema_drift" in str(info.value)
        assert "label" in str(info.value)
        await self._assert_v1_intact(db)

    @requires("schema_introspection")
    async def test_schema_mismatch_seen_by_another_connection(self, schema_scratch_db: Ommi, second_db: Ommi) -> None:
        """Drift is detected from the stored table itself, also by a second ``Ommi`` on the database."""
        await self._stored_v1(schema_scratch_db)
        with pytest.raises(SchemaMismatchError):
            await second_db.use_models(_collection_of(SchemaDriftWider))
        await second_db.use_models(drift_models)
        assert await second_db.find(SchemaDriftV1).count.or_raise() == 1

    # -- remove_models -----------------------------------------------------------

    async def test_schema_remove_models_drops_tables_and_data(self, schema_scratch_db: Ommi) -> None:
        """``remove_models`` drops the tables: re-created, they are empty."""
        db = schema_scratch_db
        await db.use_models(keep_a_models)
        await db.add(SchemaKeepA("doomed")).or_raise()
        await db.remove_models(keep_a_models)
        await db.use_models(keep_a_models)
        assert await db.find(SchemaKeepA).count.or_raise() == 0

    async def test_schema_remove_models_leaves_other_collections(self, schema_scratch_db: Ommi) -> None:
        """``remove_models`` drops only the named collection's tables."""
        db = schema_scratch_db
        await db.use_models(keep_a_models)
        await db.use_models(keep_b_models)
        await db.add(SchemaKeepA("stays")).or_raise()
        await db.add(SchemaKeepB("goes")).or_raise()
        await db.remove_models(keep_b_models)
        assert [a.label for a in await fetch(db.find(SchemaKeepA))] == ["stays"]
        await db.use_models(keep_b_models)
        assert await db.find(SchemaKeepB).count.or_raise() == 0

    async def test_schema_remove_models_of_missing_tables_is_harmless(self, schema_scratch_db: Ommi) -> None:
        """Removing models whose tables do not exist (twice) is not an error."""
        db = schema_scratch_db
        await db.remove_models(keep_b_models)
        await db.remove_models(keep_b_models)
        await db.use_models(keep_b_models)
        await db.add(SchemaKeepB("fine")).or_raise()
        assert await db.find(SchemaKeepB).count.or_raise() == 1

    @requires("schema_introspection")
    async def test_schema_remove_then_use_other_shape(self, schema_scratch_db: Ommi) -> None:
        """After ``remove_models`` a table may be created again with another shape (the old one is gone)."""
        db = schema_scratch_db
        await self._stored_v1(db)
        await db.remove_models(drift_models)
        wider = _collection_of(SchemaDriftWider)
        try:
            await db.use_models(wider)
            await db.add(SchemaDriftWider("new", 5)).or_raise()
            assert (await db.find(SchemaDriftWider).one.or_raise()).weight == 5
        finally:
            await db.remove_models(wider)
