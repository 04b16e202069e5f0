"""Conformance tests: ``Driver.inspect_schema`` (capability ``inspection``), the core of ``ommi inspect``.

Tables that ``use_models()`` created are read back: each becomes a model with
the same stored fields, keys and references, and the printed module of
models, imported, passes ``use_models()`` against them and reads their rows.
Other tables the database holds are left alone (the test looks at its own).
Unique constraints and indexes are read back too (compared by fields, as
drift compares them: a server may name an index its own way), and the
printed models' unique constraints refuse duplicates.
"""

# Model classes double as query operands and gain attributes from the printed
# module: a type checker sees neither.
# mypy: disable-error-code="attr-defined, arg-type"

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest
import pytest_asyncio
from ommi import Index, IntegrityError, Key, ModelCollection, Ommi, ReferenceTo, TimezoneAware, Unique, ommi_model
from ommi.migrations import SchemaState
from ommi.migrations.printer import render_models
from ommi.models import get_schema

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires

inspected_models = ModelCollection("ommi_testkit_inspection")
_modules = itertools.count()


@ommi_model(collection=inspected_models, name="insp_owner")
@dataclass
class InspOwner:
    name: str
    id: int | None = None


@ommi_model(collection=inspected_models, name="insp_pet")
@dataclass
class InspPet:
    name: str
    owner: Annotated[int, ReferenceTo(InspOwner)]
    weight: float
    born: Annotated[dt.datetime, TimezoneAware]
    nickname: str | None = None
    id: int | None = None


@ommi_model(collection=inspected_models, name="insp_pair")
@dataclass
class InspPair:
    left: Annotated[str, Key]
    right: Annotated[int, Key]
    note: str | None = None


@ommi_model(
    collection=inspected_models,
    name="insp_member",
    constraints=[Unique("team", "number"), Index("joined", "team", name="ix_insp_member_by_joined")],
)
@dataclass
class InspMember:
    team: str
    number: int
    joined: Annotated[dt.date, Index]
    email: Annotated[str | None, Unique] = None
    id: int | None = None


def _constraints(model: type) -> set[tuple[tuple[str, ...], bool]]:
    """A model's unique constraints and indexes as drift compares them: columns (a unique one's in any order)."""
    return {(tuple(sorted(c.columns)) if c.unique else c.columns, c.unique) for c in get_schema(model).constraints}


class InspectionTests(SuiteBase):
    """Stored tables read back into models that match them."""

    @pytest_asyncio.fixture
    async def insp_db(self, db: Ommi) -> AsyncIterator[Ommi]:
        """``db`` with the suite's tables created empty, dropped afterwards."""
        await db.remove_models(inspected_models)
        await db.use_models(inspected_models)
        try:
            yield db
        finally:
            await db.remove_models(inspected_models)

    @requires("inspection")
    async def test_inspection_reads_back_the_models(self, insp_db: Ommi) -> None:
        """Each table use_models() made inspects to the same stored fields, keys, generated key and references."""
        inspection = await insp_db.driver.inspect_schema()
        expected = SchemaState.from_models(inspected_models)
        for model in expected:
            assert model.name in inspection.state, inspection.skipped.get(model.name, "not found")
            read = inspection.state.model(model.name)
            want = {f.name: f.replace(default=None) for f in model.fields}
            got = {f.name: f for f in read.fields}
            if not insp_db.driver.capabilities.foreign_keys:
                # Nothing stores a reference the database does not enforce: the field stays plain.
                want = {name: f.replace(reference=None) for name, f in want.items()}
            assert got == want, model.name
            indexes = {(tuple(sorted(i.fields)) if i.unique else tuple(i.fields), i.unique) for i in read.indexes}
            wanted = {(tuple(sorted(i.fields)) if i.unique else tuple(i.fields), i.unique) for i in model.indexes}
            if not insp_db.driver.capabilities.foreign_keys:
                # No reference is printed, so the index the driver made for one is an index like any other
                # when the server did not keep the name that tells it apart (ix_<collection>_<field>).
                indexes -= {((f.name,), False) for f in model.fields if f.reference is not None}
            assert indexes == wanted, model.name

    @requires("inspection")
    async def test_inspection_printed_models_pass_use_models(self, insp_db: Ommi, tmp_path: Path) -> None:
        """The printed module imports, its models pass use_models() with no drift and read the stored rows."""
        born = dt.datetime(2020, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
        owner = await insp_db.add(InspOwner("Ada")).or_raise()
        await insp_db.add(InspPet("Rex", owner.id, 12.5, born)).or_raise()
        await insp_db.add(InspPair("a", 1, "first")).or_raise()
        path = tmp_path / "inspected_models.py"
        path.write_text(render_models(await insp_db.driver.inspect_schema()), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"ommi_testkit_inspected_{next(_modules)}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        printed = {get_schema(m).name: m for m in module.models}
        mine = {name: printed[name] for name in ("insp_owner", "insp_pet", "insp_pair", "insp_member")}
        collection = ModelCollection("ommi_testkit_inspection_printed")  # the suite's tables, not the others
        for model in mine.values():
            collection.add(model)
        await insp_db.use_models(collection)
        pets = await fetch(insp_db.find(mine["insp_pet"]))
        assert [(p.name, p.weight, p.born, p.nickname) for p in pets] == [("Rex", 12.5, born, None)]
        pairs = await fetch(insp_db.find(mine["insp_pair"]))
        assert [(p.left, p.right, p.note) for p in pairs] == [("a", 1, "first")]
        added = await insp_db.add(mine["insp_owner"](name="Grace")).or_raise()
        assert added.id is not None and added.id != owner.id

    @requires("inspection")
    async def test_inspection_printed_constraints_refuse_duplicates(self, insp_db: Ommi, tmp_path: Path) -> None:
        """Unique fields, a composite unique and indexes print as the model declared them; duplicates still fail."""
        path = tmp_path / "inspected_constraints.py"
        path.write_text(render_models(await insp_db.driver.inspect_schema()), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"ommi_testkit_inspected_{next(_modules)}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        member = next(m for m in module.models if get_schema(m).name == "insp_member")
        assert _constraints(member) == _constraints(InspMember)
        collection = ModelCollection("ommi_testkit_inspection_constraints")
        collection.add(member)
        await insp_db.use_models(collection)  # every printed constraint is one the table has
        day = dt.date(2024, 1, 2)
        await insp_db.add(member(team="a", number=1, joined=day, email="x@y")).or_raise()
        await insp_db.add(member(team="a", number=2, joined=day)).or_raise()
        await insp_db.add(member(team="b", number=1, joined=day)).or_raise()  # None never collides
        with pytest.raises(IntegrityError):
            await insp_db.add(member(team="c", number=1, joined=day, email="x@y")).or_raise()
        with pytest.raises(IntegrityError):
            await insp_db.add(member(team="a", number=1, joined=day)).or_raise()
        rows = await fetch(insp_db.find(member))
        assert sorted((r.team, r.number, r.email) for r in rows) == [("a", 1, "x@y"), ("a", 2, None), ("b", 1, None)]
