"""Model definition: what @ommi_model accepts, rejects, and leaves untouched."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import pytest
from ommi import (
    Auto,
    Key,
    ModelCollection,
    Ommi,
    ReferenceTo,
    StoreAs,
    TimezoneAware,
    ommi_model,
)
from ommi.errors import ModelDefinitionError, QueryError, ValidationError
from ommi.models import StorageType, get_schema
from ommi.models.adapters import positional_constructor
from ommi.query.ast import Comparison, Op

models = ModelCollection("test_models")


@ommi_model(collection=models)
@dataclass
class Item:
    name: str
    price: float = 0.0
    id: int | None = None


@ommi_model(collection=models, name="stored_things")
@dataclass
class Thing:
    code: Annotated[str, Key | StoreAs("thing_code")]
    when: Annotated[datetime, TimezoneAware]
    item_id: Annotated[int | None, ReferenceTo(Item)] = None


def test_class_access_gives_query_fields_instance_access_gives_values() -> None:
    """Item.name is a query operand; item.name is the plain value; defaults still work."""
    item = Item("pen")
    assert item.name == "pen" and item.price == 0.0
    condition = Item.name == "pen"
    assert isinstance(condition, Comparison) and condition.op is Op.EQ and condition.value == "pen"


def test_model_stays_a_plain_dataclass() -> None:
    """Equality, asdict and pickling are unchanged by the decorator."""
    item = Item("pen", 2.5, 7)
    assert item == Item("pen", 2.5, 7)
    assert dataclasses.asdict(item) == {"name": "pen", "price": 2.5, "id": 7}
    assert pickle.loads(pickle.dumps(item)) == item


def test_id_field_is_the_implicit_generated_key() -> None:
    """A field named id is the key when none is marked, and an int key is generated."""
    schema = get_schema(Item)
    assert [f.name for f in schema.key] == ["id"]
    assert schema.auto_field is schema.by_name["id"]


def test_metadata_combines_with_or() -> None:
    """Key | StoreAs sets both; TimezoneAware switches the storage type; ReferenceTo(Model) uses its key."""
    schema = get_schema(Thing)
    code = schema.by_name["code"]
    assert code.key and code.column == "thing_code"
    assert schema.name == "stored_things"
    assert schema.by_name["when"].storage is StorageType.DATETIME_TZ
    assert schema.by_name["item_id"].reference is get_schema(Item).by_name["id"]
    assert schema.auto_field is None


def test_unsupported_field_type_names_model_and_field() -> None:
    """A field type without a codec fails at decoration with model and field in the message."""
    with pytest.raises(ModelDefinitionError, match=r"Broken\.payload"):

        @ommi_model(collection=ModelCollection("x"))
        @dataclass
        class Broken:
            payload: set[int]
            id: int | None = None


def test_model_without_key_is_rejected() -> None:
    """No Key and no id field: a clear error."""
    with pytest.raises(ModelDefinitionError, match="no field is marked Key"):

        @ommi_model(collection=ModelCollection("x"))
        @dataclass
        class Keyless:
            name: str


def test_broken_reference_fails_at_first_use() -> None:
    """ReferenceTo naming an unknown model fails, naming model and field, when first used."""

    @ommi_model(collection=ModelCollection("x"))
    @dataclass
    class Dangling:
        other_id: Annotated[int, ReferenceTo("Nowhere.id")]
        id: int | None = None

    with pytest.raises(ModelDefinitionError, match=r"Dangling\.other_id.*Nowhere"):
        get_schema(Dangling)


def test_auto_requires_single_int_key() -> None:
    """Auto on a text key is refused."""
    with pytest.raises(ModelDefinitionError, match="Auto needs a single int key"):

        @ommi_model(collection=ModelCollection("x"))
        @dataclass
        class BadAuto:
            code: Annotated[str, Key | Auto]


def test_not_a_model_class() -> None:
    """Decorating a plain class says what is needed."""
    with pytest.raises(ModelDefinitionError, match="dataclass"):

        @ommi_model
        class Plain:
            id: int


def test_values_are_validated_before_any_io() -> None:
    """Conditions encode their values: a wrong type is a ValidationError at build time."""
    with pytest.raises(ValidationError, match=r"Item\.price"):
        Item.price == "cheap"  # noqa: B015
    with pytest.raises(ValidationError, match="64-bit"):
        Item.id == 2**64  # noqa: B015


def test_conditions_refuse_truthiness() -> None:
    """Using `and`/`or` on conditions is an error instead of silently dropping one side."""
    with pytest.raises(QueryError, match="when"):
        bool(Item.name == "a")


def test_incompatible_field_comparison() -> None:
    """Comparing fields of different storage types is refused."""
    with pytest.raises(QueryError, match="cannot compare"):
        Item.name == Item.price  # noqa: B015


def test_auto_on_a_non_key_field_is_rejected() -> None:
    """Auto on an ordinary field is refused at decoration instead of failing at insert."""
    with pytest.raises(ModelDefinitionError, match=r"Counter\.hits.*Key \| Auto"):

        @ommi_model(collection=ModelCollection("x"))
        @dataclass
        class Counter:
            hits: Annotated[int, Auto]
            id: int | None = None


def test_auto_on_the_implicit_id_key_is_accepted() -> None:
    """`id: Annotated[int, Auto]` is the implicit key and may say Auto."""

    @ommi_model(collection=ModelCollection("x"))
    @dataclass
    class Counted:
        name: str
        id: Annotated[int | None, Auto] = None

    assert get_schema(Counted).auto_field is get_schema(Counted).by_name["id"]


class _Recorded:
    """Counts the calls of code in model classes that loading must never run."""

    calls = 0


def _hand_written_init(cls: type) -> type:
    def __init__(self: object, *values: object) -> None:
        _Recorded.calls += 1
        for name, value in zip(("id", "name"), values, strict=True):
            object.__setattr__(self, name, value)

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


@dataclass
class _PostInit:
    id: int
    name: str

    def __post_init__(self) -> None:
        _Recorded.calls += 1


@dataclass
class _OwnSetattr:
    id: int
    name: str

    def __setattr__(self, name: str, value: object) -> None:
        _Recorded.calls += 1
        object.__setattr__(self, name, value)


@dataclass(init=False)
class _NoGeneratedInit:
    id: int
    name: str

    def __init__(self, id: int, name: str) -> None:  # noqa: A002 - the field's name
        _Recorded.calls += 1
        self.id, self.name = id, name


@dataclass
class _WithInitVar:
    id: int
    name: str
    secret: dataclasses.InitVar[str] = "x"


@dataclass
class _KeywordOnly:
    id: int
    name: str = dataclasses.field(kw_only=True)


@dataclass(frozen=True, slots=True)
class _FrozenSlots:
    id: int
    name: str


@dataclass
class _Plain:
    id: int
    name: str


@pytest.mark.parametrize(
    ("cls", "positional"),
    [
        (_Plain, True),
        (_FrozenSlots, True),
        (_PostInit, False),
        (_OwnSetattr, False),
        (_NoGeneratedInit, False),
        (_WithInitVar, False),
        (_KeywordOnly, False),
        (_hand_written_init(dataclass(type("_Patched", (), {"__annotations__": {"id": int, "name": str}}))), False),
    ],
)
def test_loading_builds_dataclasses_without_running_their_code(cls: type, positional: bool) -> None:
    """Rows become instances through the generated ``__init__`` only where that runs nothing else.

    ``__post_init__``, a hand-written ``__init__`` or ``__setattr__``, ``InitVar``
    and keyword-only fields all keep the slower path that stores values directly.
    """
    collection = ModelCollection(f"build_{cls.__name__}")
    model = ommi_model(collection=collection)(cls)
    schema = get_schema(model)
    assert (positional_constructor(schema.adapter, model, ("id", "name")) is model) is positional
    before = _Recorded.calls
    built = schema.build((7, "seven"))
    many = schema.build_rows([(1, "one"), (2, "two")])
    assert _Recorded.calls == before, "loading ran code of the model class"
    assert type(built) is model and (built.id, built.name) == (7, "seven")
    assert [(m.id, m.name) for m in many] == [(1, "one"), (2, "two")]


# -- ReferenceTo must name a single key (issue 11, item 15) ------------------------------------------


def _reference_models() -> tuple[ModelCollection, type, type]:
    collection = ModelCollection("reference_targets")

    @ommi_model(collection=collection, name="ref_target_single")
    @dataclass
    class Single:
        label: str
        id: int | None = None

    @ommi_model(collection=collection, name="ref_target_pair")
    @dataclass
    class Pair:
        region: Annotated[str, Key]
        code: Annotated[int, Key]
        label: str = ""

    return collection, Single, Pair


@pytest.mark.parametrize(
    ("target", "storage", "why"),
    [
        pytest.param(lambda s, p: s.label, str, r"Single\.label.*not.*key", id="non_key_field"),
        pytest.param(lambda s, p: "Single.label", str, r"Single\.label.*not.*key", id="non_key_field_by_name"),
        pytest.param(lambda s, p: p.code, int, r"Pair\.code.*one part of.*composite key", id="second_key_part"),
        pytest.param(lambda s, p: p.region, str, r"Pair\.region.*one part of.*composite key", id="first_key_part"),
        pytest.param(lambda s, p: "Pair.code", int, r"Pair\.code.*one part of.*composite key", id="key_part_by_name"),
    ],
)
async def test_reference_to_anything_but_a_single_key_is_a_model_definition_error(
    target: Any, storage: type, why: str
) -> None:
    collection, single, pair = _reference_models()

    def define() -> type:
        kind, spec = storage, ReferenceTo(target(single, pair))

        @ommi_model(collection=collection, name="ref_holder")
        @dataclass
        class Holder:
            ref: Annotated[kind, spec]  # type: ignore[valid-type]
            id: int | None = None

        return Holder

    async def define_and_use() -> None:
        get_schema(define())
        from ommi_sqlite import SQLiteDriver

        async with Ommi(SQLiteDriver.connect("sqlite://")) as db:
            await db.use_models(collection)

    with pytest.raises(ModelDefinitionError, match=rf"(?s)Holder\.ref.*{why}"):
        await define_and_use()


def test_reference_to_a_field_object_is_checked_at_definition() -> None:
    collection, single, _ = _reference_models()
    with pytest.raises(ModelDefinitionError, match=r"Single\.label"):

        @ommi_model(collection=collection)
        @dataclass
        class Early:
            ref: Annotated[str, ReferenceTo(single.label)]
            id: int | None = None


def test_sort_keys_and_joins_compare_fields_by_identity() -> None:
    """No ``Field == Field`` (a query condition, with no truth value) hides in comparisons of query parts."""
    from ommi.query.ast import Join, SortKey

    _, single, pair = _reference_models()
    assert SortKey(single.id) == SortKey(single.id)
    assert SortKey(single.id) != SortKey(single.label)
    assert SortKey(single.id) != SortKey(single.id, descending=True)
    assert len({SortKey(single.id), SortKey(single.id), SortKey(pair.code)}) == 2
    schema = get_schema(pair)
    assert Join(schema, ((pair.code, single.id),)) == Join(schema, ((pair.code, single.id),))
    assert Join(schema, ((pair.code, single.id),)) != Join(schema, ((pair.region, single.label),))
