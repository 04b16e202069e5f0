"""Conformance tests: ``Unique`` and ``Index`` created by ``use_models`` and migrations, enforced, drift-checked.

A unique constraint refuses a second row with equal values in all its
fields (``IntegrityError``) on ``add`` and ``update``, and the refused write
changes nothing stored; ``None`` in a field never collides. A table missing a
declared constraint is drift. Migrations add and remove them, refuse a
unique constraint that the stored rows already break, and undo both.
"""

# Model classes double as query operands (``Member.email == "x"``): a type
# checker sees a comparison of plain values.
# mypy: disable-error-code="arg-type, union-attr, list-item"

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from ommi import IntegrityError, Ommi, SchemaMismatchError, migrations
from ommi.migrations.history import history_models
from ommi.models import get_schema

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_constraints import (
    CONSTRAINT_COLLECTIONS,
    Member,
    MemberBare,
    TagV1,
    TagV2,
    con_bare,
    con_mig_v1,
    con_mig_v2,
    con_v1,
)

DAY = datetime.date(2024, 5, 1)


async def _drop(db: Ommi) -> None:
    for collection in CONSTRAINT_COLLECTIONS:
        await db.remove_models(collection)
    await db.remove_models(history_models)


async def _emails(db: Ommi) -> list[str | None]:
    return sorted((m.email for m in await fetch(db.find(Member))), key=lambda e: (e is not None, e or ""))


class ConstraintTests(SuiteBase):
    """``Unique``/``Index``: made with the table, enforced on every write, checked for drift, migrated."""

    @pytest_asyncio.fixture
    async def con_db(self, db: Ommi) -> AsyncIterator[Ommi]:
        """``db`` with the constraint suite's tables dropped before and after, and ``con_v1`` in use."""
        await _drop(db)
        await db.use_models(con_v1)
        try:
            yield db
        finally:
            await _drop(db)

    @pytest.fixture
    def con_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "migrations"

    # -- enforcement ------------------------------------------------------------------

    @requires("constraints")
    async def test_constraints_unique_refuses_second_row(self, con_db: Ommi) -> None:
        """A second row with an equal unique value is an ``IntegrityError``; the first stays alone."""
        await con_db.add(Member("red", 1, DAY, "a@x")).or_raise()
        with pytest.raises(IntegrityError):
            await con_db.add(Member("blue", 2, DAY, "a@x")).or_raise()
        assert await _emails(con_db) == ["a@x"]

    @requires("constraints")
    async def test_constraints_unique_batch_is_all_or_none(self, con_db: Ommi) -> None:
        """An ``add`` of several rows, one colliding with another of the batch, stores none of them."""
        await con_db.add(Member("red", 1, DAY, "a@x")).or_raise()
        with pytest.raises(IntegrityError):
            await con_db.add(
                Member("red", 2, DAY, "b@x"), Member("red", 3, DAY, "c@x"), Member("red", 4, DAY, "b@x")
            ).or_raise()
        assert await _emails(con_db) == ["a@x"]

    @requires("constraints")
    async def test_constraints_none_never_collides(self, con_db: Ommi) -> None:
        """Rows with ``None`` in a unique field are all stored (SQL's rule, on every driver)."""
        await con_db.add(Member("red", 1, DAY), Member("red", 2, DAY), Member("red", 3, DAY, None)).or_raise()
        assert await _emails(con_db) == [None, None, None]

    @requires("constraints")
    async def test_constraints_composite_unique_needs_all_fields_equal(self, con_db: Ommi) -> None:
        """``Unique("team", "number")`` refuses equal pairs only; equal teams or numbers alone are fine."""
        await con_db.add(Member("red", 1, DAY), Member("red", 2, DAY), Member("blue", 1, DAY)).or_raise()
        with pytest.raises(IntegrityError):
            await con_db.add(Member("red", 1, DAY, "new@x")).or_raise()
        assert await con_db.find(Member).count.or_raise() == 3

    @requires("constraints")
    async def test_constraints_update_refused_changes_nothing(self, con_db: Ommi) -> None:
        """An ``update`` giving several rows one unique value is refused and changes none of them."""
        await con_db.add(Member("red", 1, DAY, "a@x"), Member("red", 2, DAY, "b@x"), Member("red", 3, DAY)).or_raise()
        with pytest.raises(IntegrityError):
            await con_db.find(Member.team == "red").update(email="same@x").or_raise()
        assert await _emails(con_db) == [None, "a@x", "b@x"]
        with pytest.raises(IntegrityError):
            await con_db.find(Member.number == 3).update(email="a@x").or_raise()
        assert await _emails(con_db) == [None, "a@x", "b@x"]
        await con_db.find(Member.number == 3).update(email="c@x").or_raise()
        assert await _emails(con_db) == ["a@x", "b@x", "c@x"]

    @requires("constraints")
    async def test_constraints_update_swapping_into_free_values_works(self, con_db: Ommi) -> None:
        """An ``update`` of several rows to values no other row holds is accepted (the check is not too eager)."""
        await con_db.add(Member("red", 1, DAY, "a@x"), Member("red", 2, DAY, "b@x"), Member("blue", 1, DAY)).or_raise()
        await con_db.find(Member.team == "red").update(team="green").or_raise()
        assert sorted(m.team for m in await fetch(con_db.find(Member))) == ["blue", "green", "green"]

    @requires("constraints")
    async def test_constraints_schema_exposes_them(self) -> None:
        """``ModelSchema.constraints`` lists them with stored names; ``unique_constraint`` finds one by its fields."""
        schema = get_schema(Member)
        assert [(c.columns, c.unique) for c in schema.constraints] == [
            (("joined",), False),
            (("email",), True),
            (("team", "number"), True),
        ]
        found = schema.unique_constraint([Member.number, Member.team])
        assert found is not None and found.columns == ("team", "number")
        assert schema.unique_constraint([Member.joined]) is None

    # -- drift ----------------------------------------------------------------------------

    @requires("constraints")
    async def test_constraints_missing_on_existing_table_is_drift(self, db: Ommi) -> None:
        """A table without the model's constraints is drift naming ``ommi migrate make``; nothing is created."""
        await _drop(db)
        try:
            await db.use_models(con_bare)
            await db.add(MemberBare("red", 1, DAY, "a@x"), MemberBare("red", 2, DAY, "a@x")).or_raise()
            with pytest.raises(SchemaMismatchError, match="ommi migrate make") as caught:
                await db.use_models(con_v1)
            assert "unique" in str(caught.value) and "index" in str(caught.value)
            # Nothing was made: the duplicates are still accepted through the bare model.
            await db.add(MemberBare("red", 3, DAY, "a@x")).or_raise()
            assert await db.find(MemberBare).count.or_raise() == 3
        finally:
            await _drop(db)

    @requires("constraints")
    async def test_constraints_use_models_again_is_no_drift(self, con_db: Ommi, second_db: Ommi) -> None:
        """The tables ``use_models`` made pass its drift check, from this and another ``Ommi``."""
        await con_db.use_models(con_v1)
        await second_db.use_models(con_v1)
        await con_db.add(Member("red", 1, DAY, "a@x")).or_raise()
        with pytest.raises(IntegrityError):
            await second_db.add(Member("red", 9, DAY, "a@x")).or_raise()

    @requires("constraints")
    async def test_constraints_extra_stored_index_is_not_drift(self, con_db: Ommi) -> None:
        """A model without the constraints maps a table that has them: indexes no model declares are not drift."""
        await con_db.use_models(con_bare)
        await con_db.add(MemberBare("red", 1, DAY, "a@x")).or_raise()
        with pytest.raises(IntegrityError):
            await con_db.add(MemberBare("red", 2, DAY, "a@x")).or_raise()

    # -- migrations --------------------------------------------------------------------------

    @requires("constraints", "migrations")
    async def test_constraints_migrations_add_and_remove(self, db: Ommi, con_dir: Path) -> None:
        """``make`` writes AddUnique/AddIndex; ``apply`` keeps the rows and enforces; ``down`` takes them away."""
        await _drop(db)
        try:
            migrations.make(con_mig_v1, con_dir)
            await migrations.apply(db, con_dir)
            await db.add(TagV1("color", "red"), TagV1("size", "big")).or_raise()
            path = migrations.make(con_mig_v2, con_dir)
            text = path.read_text(encoding="utf-8")
            assert "AddUnique(" in text and "AddIndex(" in text
            await migrations.apply(db, con_dir)
            await db.use_models(con_mig_v2)
            assert sorted(t.label for t in await fetch(db.find(TagV2))) == ["big", "red"]
            with pytest.raises(IntegrityError):
                await db.add(TagV2("shade", "red")).or_raise()
            await migrations.down(db, con_dir, to=migrations.load(con_dir)[0].id)
            await db.use_models(con_mig_v1)
            await db.add(TagV1("shade", "red")).or_raise()
            assert await db.find(TagV1).count.or_raise() == 3
            with pytest.raises(SchemaMismatchError):
                await db.use_models(con_mig_v2)
        finally:
            await _drop(db)

    @requires("constraints", "migrations")
    async def test_constraints_migration_on_duplicates_fails(self, db: Ommi, con_dir: Path) -> None:
        """AddUnique over stored duplicates fails with ``IntegrityError``; the database stays at the last migration."""
        await _drop(db)
        try:
            migrations.make(con_mig_v1, con_dir)
            await migrations.apply(db, con_dir)
            await db.add(TagV1("color", "red"), TagV1("shade", "red")).or_raise()
            migrations.make(con_mig_v2, con_dir)
            with pytest.raises(IntegrityError, match=r"red|duplicate|UNIQUE|unique"):
                await migrations.apply(db, con_dir)
            applied = [s.id for s in await migrations.status(db, con_dir) if s.state == "applied"]
            assert applied == [migrations.load(con_dir)[0].id]
            # No unique constraint was left behind: duplicates are still accepted, and v1 has no drift.
            await db.use_models(con_mig_v1)
            await db.add(TagV1("size", "red")).or_raise()
            assert await db.find(TagV1.label == "red").count.or_raise() == 3
        finally:
            await _drop(db)
