"""Mistakes made loud (issue 13): forgotten awaits, results used as values, other ORMs' habits."""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
import warnings
from dataclasses import dataclass, make_dataclass
from typing import Any, Literal

import ommi
import pytest
from ommi import QueryError
from ommi.models import ModelCollection
from ommi.results import DBFailure, DBSuccess

models = ModelCollection("friendly")


@ommi.ommi_model(collection=models)
@dataclass
class Person:
    name: str
    age: int
    id: int | None = None


def _collected_warnings() -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


@pytest.fixture
async def db() -> ommi.Ommi:
    async with ommi.connect("sqlite://") as database:
        await database.use_models(models)
        yield database


async def test_a_forgotten_await_warns_and_stores_nothing(db: ommi.Ommi) -> None:
    with pytest.warns(RuntimeWarning, match=r"add\(\.\.\.\) was never awaited, so it did not run"):
        db.add(Person("ada", 36))  # no await: the action is dropped at the end of the statement
    assert await db.find(Person).count.or_raise() == 0


async def test_actions_that_ran_or_were_handed_on_do_not_warn(db: ommi.Ommi) -> None:
    await db.add(Person("ada", 36))
    await db.add(Person("bob", 40)).or_raise()
    await db.find(Person).count.or_use(0)
    async for _ in db.find(Person).all:
        pass
    async for _ in db.find(Person).all(batch_size=1):
        pass
    await db.find(Person.name == "ada").update(age=37).or_raise()
    assert [p.name for p in await db.find(Person).sort(Person.name).all.to_list()] == ["ada", "bob"]
    # A task cancelled before its first step never ran the body: not a forgotten await.
    task = asyncio.ensure_future(db.add(Person("cy", 1)).or_raise())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert _collected_warnings() == []


async def test_results_used_as_their_value_say_what_to_write(db: ommi.Ommi) -> None:
    added = await db.add(Person("ada", 36))
    with pytest.raises(AttributeError, match=r"write result\.value\.id, or get the value directly"):
        _ = added.id  # type: ignore[attr-defined]
    failed = await db.find(Person.name == "nobody").one
    with pytest.raises(AttributeError, match=r"the operation failed .*use \.or_raise\(\)"):
        _ = failed.name  # type: ignore[union-attr]
    with pytest.raises(TypeError, match=r"async for item in db\.find\(\.\.\.\)\.all"):
        for _ in await db.find(Person).all:  # type: ignore[attr-defined]
            pass
    iterator = await db.find(Person).all.or_raise()
    with pytest.raises(TypeError, match=r"'ResultIterator' object is not iterable: .*to_list\(\)"):
        list(iterator)  # type: ignore[call-overload]
    await iterator.aclose()


def test_results_still_copy_and_pickle() -> None:
    success = DBSuccess(3)
    assert copy.copy(success) == success and pickle.loads(pickle.dumps(success)) == success
    failure = DBFailure(ValueError("x"))
    assert copy.deepcopy(failure).exception.args == ("x",)
    assert not hasattr(success, "__html__")


def test_ampersand_and_bar_combine_conditions() -> None:
    both = (Person.age >= 18) & (Person.name == "ada")
    either = (Person.age < 18) | (Person.name == "ada")
    assert repr(both) == repr(ommi.when(Person.age >= 18, Person.name == "ada"))
    assert repr(either) == repr(ommi.when(Person.age < 18).Or(Person.name == "ada"))


def test_other_orms_habits_name_the_ommi_spelling() -> None:
    with pytest.raises(QueryError, match="negate the comparison itself"):
        _ = ~(Person.age >= 18)
    with pytest.raises(QueryError, match=r"Person.name.in_|\.in_\(\[\.\.\.\]\)"):
        _ = Person.name in ["ada", "bob"]
    with pytest.raises(QueryError, match="instead of and/or/not"):
        _ = (Person.age >= 18) and (Person.name == "ada")
    with pytest.raises(QueryError, match=r"write .*\.desc without \(\)"):
        Person.age.desc()  # type: ignore[operator]
    with pytest.raises(QueryError, match=r"to sort descending write .*\.desc"):
        _ = -Person.age  # type: ignore[operator]
    with pytest.raises(QueryError, match="put each comparison in parentheses"):
        _ = Person.age >= 18 & (Person.name == "ada")  # type: ignore[operator]


async def test_save_outside_a_database_names_ommi_connect() -> None:
    with pytest.raises(ommi.OmmiError, match=r"async with ommi\.connect\(url\) as db:"):
        await Person("ada", 36).save().or_raise()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("annotation", "hint"),
    [
        (frozenset[int], "keep a collection in a related model"),
        (set[str], r"annotate it list\[\.\.\.\] to store a JSON array"),
        (set[str], "keep a collection in a related model"),
        (tuple[int, int], "keep a collection in a related model"),
        (Literal["a", "b"], r"use an Enum of \('a', 'b'\)"),
    ],
)
def test_unsupported_field_types_say_what_to_do(annotation: Any, hint: str) -> None:
    thing = make_dataclass("Thing", [("value", annotation)])
    with pytest.raises(ommi.errors.ModelDefinitionError, match=hint):
        ommi.ommi_model(collection=ModelCollection("hints"))(thing)


async def test_use_models_given_a_model_class_says_what_to_write(db: ommi.Ommi) -> None:
    """``use_models(Model)`` / ``remove_models(Model)`` is a ConfigurationError naming the list form, before any I/O."""
    from ommi.errors import ConfigurationError
    from ommi.testing import record_queries

    models = ModelCollection("test_friendly_use_models")

    @ommi.ommi_model(collection=models)
    @dataclass
    class Gadget:
        name: str
        id: int | None = None

    with record_queries() as recorded:
        for call in (db.use_models, db.remove_models):
            with pytest.raises(ConfigurationError, match=r"the model class .*Gadget.*\(\[Model\]\)"):
                await call(Gadget)  # type: ignore[arg-type]
            with pytest.raises(ConfigurationError, match="not 'gadgets'"):
                await call("gadgets")  # type: ignore[arg-type]
    assert recorded.count == 0
    await db.use_models([Gadget])  # type: ignore[arg-type]
    await db.add(Gadget("a")).or_raise()
    assert [g.name for g in await db.find(Gadget).all.to_list()] == ["a"]
