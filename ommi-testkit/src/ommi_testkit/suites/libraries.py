"""Conformance tests: attrs classes, pydantic v2 models and dataclass variants behave like plain models.

attrs and pydantic are optional: their tests skip, saying which library is
missing, when it cannot be imported. Their models live in
:mod:`~ommi_testkit.suites.models_attrs` and
:mod:`~ommi_testkit.suites.models_pydantic`, imported here so that they join
``testkit_models`` before the fixtures create its tables.
"""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import copy as copying
import dataclasses
import gc
import pickle
import weakref
from types import ModuleType
from typing import Any

import pytest
from ommi import Ommi
from ommi.testing import record_queries

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase
from ommi_testkit.suites.models_extra import FrozenNote, SlottedNote


def _optional(module: str, library: str) -> ModuleType | None:
    """Import one of the testkit's model modules, or None when ``library`` is not installed."""
    try:
        return __import__(module, fromlist=["_"])
    except ModuleNotFoundError as exc:
        if exc.name != library:
            raise
        return None


models_attrs = _optional("ommi_testkit.suites.models_attrs", "attrs")
models_pydantic = _optional("ommi_testkit.suites.models_pydantic", "pydantic")


def _attrs() -> Any:
    if models_attrs is None:
        pytest.skip("attrs is not installed (pip install attrs) - the attrs adapter cannot be tested")
    return models_attrs


def _pydantic() -> Any:
    if models_pydantic is None:
        pytest.skip("pydantic is not installed (pip install 'pydantic>=2') - the pydantic adapter cannot be tested")
    return models_pydantic


class ModelLibraryTests(SuiteBase):
    """The same CRUD, query and relation basics with every supported model library."""

    # -- attrs ---------------------------------------------------------------------

    async def test_library_attrs_crud_round_trip(self, db: Ommi) -> None:
        """An ``@attrs.define`` model is added (key generated), found, updated and deleted."""
        m = _attrs()
        ada = await db.add(m.AttrsAuthor("Ada", 36)).or_raise()
        assert isinstance(ada.id, int)
        found = await db.find(m.AttrsAuthor.id == ada.id).one.or_raise()
        assert type(found) is m.AttrsAuthor
        assert found == ada
        assert await db.find(m.AttrsAuthor.name == "Ada").update(age=37).or_raise() == 1
        assert (await db.find(m.AttrsAuthor.id == ada.id).one.or_raise()).age == 37
        assert await db.find(m.AttrsAuthor.id == ada.id).delete.or_raise() == 1
        assert await db.find(m.AttrsAuthor).count.or_raise() == 0

    async def test_library_attrs_queries(self, db: Ommi) -> None:
        """Conditions, sorting and paging work on attrs fields."""
        m = _attrs()
        await db.add(*(m.AttrsAuthor(f"a{n}", n) for n in range(6))).or_raise()
        query = db.find(m.AttrsAuthor.age >= 2).sort(m.AttrsAuthor.age.desc)
        assert [a.name for a in await fetch(query.limit(2, 1))] == ["a3", "a2"]
        assert await db.find(m.AttrsAuthor.name.in_(["a1", "a5", "zz"])).count.or_raise() == 2

    async def test_library_attrs_lazy_relations(self, db: Ommi) -> None:
        """Lazy relations load on attrs models, and are not constructor arguments."""
        m = _attrs()
        ada = await db.add(m.AttrsAuthor("Ada")).or_raise()
        books = await db.add(m.AttrsBook("Notes", ada.id), m.AttrsBook("Letters", ada.id)).or_raise()
        assert await books[0].author == ada
        assert await ada.books == books
        assert [f.name for f in m.attrs.fields(m.AttrsBook)] == ["title", "author_id", "id"]
        with pytest.raises(TypeError):
            m.AttrsBook("t", 1, author=ada)

    async def test_library_attrs_asdict_and_pickle_unchanged(self, db: Ommi) -> None:
        """``attrs.asdict``, equality and pickling are unaffected, also after a relation was loaded."""
        m = _attrs()
        ada = await db.add(m.AttrsAuthor("Ada", 3)).or_raise()
        await db.add(m.AttrsBook("Notes", ada.id)).or_raise()
        loaded = await db.find(m.AttrsAuthor.id == ada.id).one.or_raise()
        assert len(await loaded.books) == 1
        assert m.attrs.asdict(loaded) == {"name": "Ada", "age": 3, "id": ada.id}
        copy = pickle.loads(pickle.dumps(loaded))
        assert copy == loaded == ada
        assert copy != m.AttrsAuthor("Ada", 4, ada.id)

    async def test_library_attrs_loaded_relations_are_freed(self, db: Ommi) -> None:
        """An attrs instance (slotted) whose relation was loaded is freed once dropped; copies load their own."""
        m = _attrs()
        ada = await db.add(m.AttrsAuthor("Ada")).or_raise()
        await db.add(m.AttrsBook("Notes", ada.id)).or_raise()
        loaded = await db.find(m.AttrsAuthor.id == ada.id).one.or_raise()
        books = await loaded.books
        assert loaded == m.AttrsAuthor("Ada", 0, ada.id) and repr(loaded) == repr(ada)
        for twin in (m.attrs.evolve(loaded), copying.copy(loaded), copying.deepcopy(loaded)):
            with record_queries() as q:
                assert await twin.books == books and await twin.books is not books
            assert q.count == 1
        alive = weakref.ref(loaded)
        del loaded, twin
        gc.collect()
        assert alive() is None

    async def test_library_attrs_frozen_gets_generated_key(self, db: Ommi) -> None:
        """``add`` sets the generated key of a frozen attrs instance, which stays frozen."""
        m = _attrs()
        tag = m.AttrsFrozenTag("blue")
        await db.add(tag).or_raise()
        assert isinstance(tag.id, int)
        with pytest.raises(m.attrs.exceptions.FrozenInstanceError):
            tag.label = "red"
        assert await db.find(m.AttrsFrozenTag.id == tag.id).one.or_raise() == tag

    async def test_library_attrs_model_methods(self, db: Ommi) -> None:
        """``save``, ``reload`` and ``delete`` work on attrs instances."""
        m = _attrs()
        author = m.AttrsAuthor("Bea", 20)
        await author.save().or_raise()
        author.age = 21
        await author.save().or_raise()
        author.age = 0
        await author.reload().or_raise()
        assert author.age == 21
        assert await author.delete().or_raise() == 1

    # -- pydantic ------------------------------------------------------------------

    async def test_library_pydantic_crud_round_trip(self, db: Ommi) -> None:
        """A pydantic ``BaseModel`` is added (key generated), found, updated and deleted."""
        m = _pydantic()
        ada = await db.add(m.PydanticAuthor(name="Ada", age=36)).or_raise()
        assert isinstance(ada.id, int)
        found = await db.find(m.PydanticAuthor.id == ada.id).one.or_raise()
        assert type(found) is m.PydanticAuthor
        assert found == ada
        assert await db.find(m.PydanticAuthor.name == "Ada").update(age=37).or_raise() == 1
        assert (await db.find(m.PydanticAuthor.id == ada.id).one.or_raise()).age == 37
        assert await db.find(m.PydanticAuthor.id == ada.id).delete.or_raise() == 1
        assert await db.find(m.PydanticAuthor).count.or_raise() == 0

    async def test_library_pydantic_queries(self, db: Ommi) -> None:
        """Conditions, sorting and paging work on pydantic fields."""
        m = _pydantic()
        await db.add(*(m.PydanticAuthor(name=f"p{n}", age=n) for n in range(6))).or_raise()
        query = db.find(m.PydanticAuthor.age < 4).sort(m.PydanticAuthor.name.desc)
        assert [a.name for a in await fetch(query.limit(3))] == ["p3", "p2", "p1"]
        assert await db.find(m.PydanticAuthor.name.startswith("p")).count.or_raise() == 6

    async def test_library_pydantic_lazy_relations(self, db: Ommi) -> None:
        """Lazy relations load on pydantic models and are not model fields."""
        m = _pydantic()
        ada = await db.add(m.PydanticAuthor(name="Ada")).or_raise()
        assert ada.id is not None
        book = await db.add(m.PydanticBook(title="Notes", author_id=ada.id)).or_raise()
        assert await book.author == ada
        assert await ada.books == [book]
        assert list(m.PydanticBook.model_fields) == ["title", "author_id", "id"]

    async def test_library_pydantic_model_dump_and_pickle_unchanged(self, db: Ommi) -> None:
        """``model_dump``, JSON, equality and pickling are unaffected, also after a relation was loaded."""
        m = _pydantic()
        ada = await db.add(m.PydanticAuthor(name="Ada", age=5)).or_raise()
        await db.add(m.PydanticBook(title="Notes", author_id=ada.id)).or_raise()
        loaded = await db.find(m.PydanticAuthor.id == ada.id).one.or_raise()
        assert len(await loaded.books) == 1
        assert loaded.model_dump() == {"name": "Ada", "age": 5, "id": ada.id}
        assert loaded.model_dump() == ada.model_dump()
        assert m.PydanticAuthor.model_validate_json(loaded.model_dump_json()) == loaded
        copy = pickle.loads(pickle.dumps(loaded))
        assert copy == loaded
        assert copy.model_dump() == loaded.model_dump()

    async def test_library_pydantic_loaded_relations_stay_invisible(self, db: Ommi) -> None:
        """Loaded relations change no pydantic equality, repr or dump; copies load their own; cycles are freed."""
        m = _pydantic()
        ada = await db.add(m.PydanticAuthor(name="Ada", age=5)).or_raise()
        await db.add(m.PydanticBook(title="Notes", author_id=ada.id)).or_raise()
        loaded = await db.find(m.PydanticAuthor.id == ada.id).one.or_raise()
        books = await loaded.books
        assert await books[0].author == loaded  # book.author and author.books loaded: a cycle
        plain = m.PydanticAuthor(name="Ada", age=5, id=ada.id)
        assert loaded == plain and plain == loaded
        assert repr(loaded) == repr(plain) and loaded.model_dump_json() == plain.model_dump_json()
        for twin in (loaded.model_copy(), loaded.model_copy(deep=True), copying.copy(loaded)):
            assert twin == loaded and twin.model_dump() == plain.model_dump()
            with record_queries() as q:
                assert await twin.books == books and await twin.books is not books
            assert q.count == 1
        with record_queries() as q:
            assert await loaded.books is books
        assert q.count == 0
        alive = [weakref.ref(loaded), weakref.ref(books[0])]
        del loaded, books, twin
        gc.collect()
        assert [r() for r in alive] == [None, None]

    async def test_library_pydantic_validation_still_applies(self, db: Ommi) -> None:
        """Constructing a pydantic model still validates (and coerces) as pydantic always did."""
        m = _pydantic()
        import pydantic

        with pytest.raises(pydantic.ValidationError):
            m.PydanticAuthor(name=["not", "a", "str"])
        coerced = m.PydanticAuthor(name="Cy", age="7")
        assert coerced.age == 7
        await db.add(coerced).or_raise()
        assert (await db.find(m.PydanticAuthor.name == "Cy").one.or_raise()).age == 7

    async def test_library_pydantic_model_methods(self, db: Ommi) -> None:
        """``save``, ``reload`` and ``delete`` work on pydantic instances."""
        m = _pydantic()
        author = m.PydanticAuthor(name="Bea", age=20)
        await author.save().or_raise()
        assert author.id is not None
        author.age = 21
        await author.save().or_raise()
        author.age = 0
        await author.reload().or_raise()
        assert author.age == 21
        assert author.model_dump()["age"] == 21
        assert await author.delete().or_raise() == 1

    # -- dataclass variants --------------------------------------------------------

    async def test_library_dataclass_frozen_gets_generated_key(self, db: Ommi) -> None:
        """``add`` sets the generated key of a frozen dataclass, which stays frozen and hashable."""
        note = FrozenNote("hello")
        await db.add(note).or_raise()
        assert isinstance(note.id, int)
        with pytest.raises(dataclasses.FrozenInstanceError):
            note.text = "changed"
        found = await db.find(FrozenNote.id == note.id).one.or_raise()
        assert found == note
        assert hash(found) == hash(note)

    async def test_library_dataclass_slots_round_trip(self, db: Ommi) -> None:
        """A ``slots=True`` dataclass round-trips, updates, reloads and pickles."""
        note = await db.add(SlottedNote("a"), SlottedNote("b", True)).or_raise()
        assert [n.id is not None for n in note] == [True, True]
        assert [n.text for n in await fetch(db.find(SlottedNote.pinned == True))] == ["b"]  # noqa: E712
        first = note[0]
        first.pinned = True
        await first.save().or_raise()
        first.pinned = False
        await first.reload().or_raise()
        assert first.pinned is True
        assert pickle.loads(pickle.dumps(first)) == first
        assert dataclasses.asdict(first) == {"text": "a", "pinned": True, "id": first.id}
