"""Two models of one collection whose stored names collide are refused at definition (issue 11, item 7).

``auth.User`` and ``crm.User`` (two modules, one class name) used to replace
each other silently in the collection: the first model's table was never
created, and the errors blamed implicit setup.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.errors import ModelDefinitionError
from ommi_testkit.reference import ReferenceDriver


def _module(name: str) -> types.ModuleType:
    """A module of its own, as ``auth.py`` and ``crm.py`` would be."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    return module


def _model_in(
    module: types.ModuleType, collection: ModelCollection, *, name: str | None = None, cls_name: str = "User"
) -> type:
    namespace = {
        "__module__": module.__name__,
        "__qualname__": cls_name,
        "__annotations__": {"name": "str", "id": "int | None"},
        "id": None,
    }
    cls = dataclass(type(cls_name, (), namespace))
    setattr(module, cls_name, cls)
    return ommi_model(collection=collection, name=name)(cls)


@pytest.fixture
def modules() -> tuple[types.ModuleType, types.ModuleType]:
    auth, crm = _module("test_model_names_auth"), _module("test_model_names_crm")
    yield auth, crm
    del sys.modules[auth.__name__], sys.modules[crm.__name__]


def test_same_class_name_in_two_modules_is_refused(modules: tuple[types.ModuleType, types.ModuleType]) -> None:
    auth, crm = modules
    collection = ModelCollection("names_same_class")
    first = _model_in(auth, collection)
    with pytest.raises(ModelDefinitionError) as caught:
        _model_in(crm, collection)
    message = str(caught.value)
    assert "test_model_names_auth.User" in message
    assert "test_model_names_crm.User" in message
    assert "'User'" in message
    assert "@ommi_model(name=" in message
    # The first model stays the collection's, untouched.
    assert collection.models == (first,)
    assert collection.find_model("User") is first


@pytest.mark.parametrize(
    ("first_name", "second_name", "second_cls"),
    [
        pytest.param("user", None, "user", id="explicit_equals_default"),
        pytest.param(None, "User", "Account", id="default_equals_explicit"),
        pytest.param("people", "people", "Person", id="both_explicit"),
        pytest.param("user", None, "User", id="differ_only_in_case"),
    ],
)
def test_colliding_stored_names_are_refused(
    modules: tuple[types.ModuleType, types.ModuleType], first_name: str | None, second_name: str | None, second_cls: str
) -> None:
    auth, crm = modules
    collection = ModelCollection("names_collide")
    first = _model_in(auth, collection, name=first_name)
    with pytest.raises(
        ModelDefinitionError,
        match=r"(?s)test_model_names_auth\.User.*test_model_names_crm|test_model_names_crm.*test_model_names_auth\.User",
    ):
        _model_in(crm, collection, name=second_name, cls_name=second_cls)
    assert collection.models == (first,)


async def test_distinct_stored_names_work_side_by_side(modules: tuple[types.ModuleType, types.ModuleType]) -> None:
    auth, crm = modules
    collection = ModelCollection("names_distinct")
    auth_user = _model_in(auth, collection, name="auth_user")
    crm_user = _model_in(crm, collection, name="crm_user")
    assert set(collection.models) == {auth_user, crm_user}
    async with Ommi(ReferenceDriver.connect()) as db:
        await db.use_models(collection)
        await db.add(auth_user(name="a"), crm_user(name="c")).or_raise()
        assert [u.name for u in await (await db.find(auth_user).all.or_raise()).to_list()] == ["a"]
        assert [u.name for u in await (await db.find(crm_user).all.or_raise()).to_list()] == ["c"]


def test_same_name_in_different_collections_is_fine(modules: tuple[types.ModuleType, types.ModuleType]) -> None:
    auth, crm = modules
    _model_in(auth, ModelCollection("names_auth"))
    _model_in(crm, ModelCollection("names_crm"))


def test_redefining_a_model_in_the_same_place_replaces_it() -> None:
    """A module reloaded (or a test run twice) defines the same model again: that is not a collision."""
    collection = ModelCollection("names_redefined")

    def define() -> type:
        @ommi_model(collection=collection)
        @dataclass
        class Thing:
            name: str
            id: int | None = None

        return Thing

    first, second = define(), define()
    assert first is not second
    assert collection.models == (second,)


def test_a_string_reference_to_a_class_name_two_models_share_is_refused(
    modules: tuple[types.ModuleType, types.ModuleType],
) -> None:
    from typing import Annotated

    from ommi import ReferenceTo
    from ommi.models import get_schema

    auth, crm = modules
    collection = ModelCollection("names_ambiguous")
    _model_in(auth, collection, name="auth_user")
    _model_in(crm, collection, name="crm_user")

    @ommi_model(collection=collection)
    @dataclass
    class Ticket:
        owner: Annotated[int, ReferenceTo("User.id")]
        id: int | None = None

    with pytest.raises(ModelDefinitionError, match=r"(?s)'User' names several models.*auth\.User.*crm\.User"):
        get_schema(Ticket)
