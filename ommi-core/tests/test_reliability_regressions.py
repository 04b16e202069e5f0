"""Regressions the reliability tests (ommi-testkit/tests/reliability) found in core's value validation.

Each value below used to escape validation and fail later, inside a driver,
with a raw Python exception (``UnicodeEncodeError``, ``OverflowError``)
instead of :class:`ommi.errors.ValidationError` before any I/O.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from ommi import Key, ModelCollection, Ommi, TimezoneAware, ommi_model
from ommi.drivers import DriverTransaction
from ommi.errors import DatabaseError, QueryError, SchemaMismatchError, ValidationError
from ommi.models import get_schema
from ommi.models.schema import Field, ModelSchema
from ommi.query.ast import Query
from ommi_testkit.reference import ReferenceDriver

models = ModelCollection("test_reliability_regressions")


@ommi_model(collection=models)
@dataclass
class Record:
    id: int
    text: str | None = None
    real: float | None = None
    instant: Annotated[dt.datetime | None, TimezoneAware] = None


PLUS_5 = dt.timezone(dt.timedelta(hours=5))
MINUS_5 = dt.timezone(dt.timedelta(hours=-5))

BAD = [
    pytest.param("text", "a\ud800b", "lone surrogate", id="lone_surrogate_in_text"),
    pytest.param("text", "\udfff", "lone surrogate", id="lone_low_surrogate_in_text"),
    pytest.param("instant", dt.datetime(1, 1, 1, 1, tzinfo=PLUS_5), "UTC instant", id="aware_before_year_1_in_utc"),
    pytest.param(
        "instant", dt.datetime(9999, 12, 31, 23, tzinfo=MINUS_5), "UTC instant", id="aware_after_year_9999_in_utc"
    ),
    pytest.param("real", 10**400, "double", id="int_too_big_for_a_float"),
]


@pytest.mark.parametrize(("name", "value", "why"), BAD)
def test_regression_values_that_used_to_escape_validation_raise_validation_error(
    name: str, value: object, why: str
) -> None:
    """Field.encode refuses the value with ValidationError naming the field and the reason."""
    field = get_schema(Record).by_name[name]
    with pytest.raises(ValidationError, match=rf"Record\.{name}.*{why}"):
        field.encode(value)
    with pytest.raises(ValidationError, match=rf"Record\.{name}"):
        field == value  # noqa: B015 - building the condition validates the value


@pytest.mark.parametrize(("name", "value", "why"), BAD)
async def test_regression_values_that_used_to_escape_validation_write_nothing(
    name: str, value: object, why: str
) -> None:
    """``add`` refuses the value before the driver sees anything: the table stays empty."""
    async with Ommi(ReferenceDriver.connect()) as db:
        await db.use_models(models)
        with pytest.raises(ValidationError):
            await db.add(Record(id=1), Record(id=2, **{name: value})).or_raise()
        assert await db.find(Record).count.or_raise() == 0


def test_regression_text_with_non_ascii_but_no_surrogates_is_accepted() -> None:
    """The surrogate check only refuses what UTF-8 cannot encode."""
    field = get_schema(Record).by_name["text"]
    assert field.encode("é中😀\U0010ffff") == "é中😀\U0010ffff"


# -- keys returned by Operations.insert (issue 11, item 4) -------------------------------------------

key_models = ModelCollection("test_reliability_returned_keys")


@ommi_model(collection=key_models, name="returned_key_item")
@dataclass
class KeyedItem:
    score: float
    id: int | None = None


@ommi_model(collection=key_models, name="returned_key_other")
@dataclass
class OtherItem:
    label: str
    id: int | None = None


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@ommi_model(collection=key_models, name="returned_key_level")
@dataclass
class LevelItem:
    label: str
    id: Annotated[Level | None, Key] = None


class ReturnsKeysAs(ReferenceDriver):
    """The reference database behind a driver that hands back its generated keys converted by ``convert``.

    A real client can do this: SQLite gave ``1.0`` for an int key on a table
    whose first column is REAL.
    """

    def __init__(self, convert: Callable[[list[Any]], Any]) -> None:
        super().__init__()
        self.convert = convert

    async def insert(self, schema: ModelSchema, rows: Sequence[tuple[Any, ...]]) -> Sequence[Any] | None:
        keys = await super().insert(schema, rows)
        return None if keys is None else self.convert(list(keys))

    async def begin(self) -> DriverTransaction:
        return _ConvertingTransaction(await super().begin(), self.convert)


class _ConvertingTransaction(DriverTransaction):
    def __init__(self, tx: DriverTransaction, convert: Callable[[list[Any]], Any]) -> None:
        self.tx = tx
        self.convert = convert

    async def insert(self, schema: ModelSchema, rows: Sequence[tuple[Any, ...]]) -> Sequence[Any] | None:
        keys = await self.tx.insert(schema, rows)
        return None if keys is None else self.convert(list(keys))

    def fetch(self, query: Query, batch_size: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        return self.tx.fetch(query, batch_size)

    async def count(self, query: Query) -> int:
        return await self.tx.count(query)

    async def delete(self, query: Query) -> int:
        return await self.tx.delete(query)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        return await self.tx.update(query, values)

    async def commit(self) -> None:
        await self.tx.commit()

    async def rollback(self) -> None:
        await self.tx.rollback()


async def test_regression_integral_float_keys_are_set_as_ints() -> None:
    async with Ommi(ReturnsKeysAs(lambda keys: [float(k) for k in keys])) as db:
        await db.use_models(key_models)
        single = await db.add(KeyedItem(0.5)).or_raise()
        many = await db.add(KeyedItem(1.5), KeyedItem(2.5)).or_raise()
        mixed = await db.add(KeyedItem(3.5), OtherItem("x")).or_raise()
        for item in [single, *many, *mixed]:
            assert type(item.id) is int, item
        assert [single.id, many[0].id, many[1].id] == [1, 2, 3]
        assert await db.find(KeyedItem.id == single.id).one.or_raise() == single


async def test_regression_returned_keys_go_through_the_key_codec() -> None:
    async with Ommi(ReturnsKeysAs(lambda keys: [float(k) for k in keys])) as db:
        await db.use_models(key_models)
        item = await db.add(LevelItem("first")).or_raise()
        assert item.id is Level.LOW


@pytest.mark.parametrize(
    ("convert", "why"),
    [
        pytest.param(lambda keys: [k + 0.5 for k in keys], r"1\.5 \(float\)", id="fractional_float"),
        pytest.param(lambda keys: [str(k) for k in keys], r"'1' \(str\)", id="text"),
        pytest.param(lambda keys: [True for _ in keys], r"True \(bool\)", id="bool"),
        pytest.param(lambda keys: [float("nan") for _ in keys], r"nan \(float\)", id="nan"),
        pytest.param(lambda keys: [2.0**70 for _ in keys], r"\(float\)", id="beyond_int64"),
        pytest.param(lambda keys: keys[:-1], r"returned 1 key for 2", id="too_few"),
        pytest.param(lambda keys: 7, r"returned 7", id="not_a_sequence"),
    ],
)
async def test_regression_undecodable_keys_are_a_database_error_and_never_set(
    convert: Callable[[list[Any]], Any], why: str
) -> None:
    async with Ommi(ReturnsKeysAs(convert)) as db:
        await db.use_models(key_models)
        first, second = KeyedItem(1.0), KeyedItem(2.0)
        with pytest.raises(DatabaseError, match=rf"(?s)the reference driver.*{why}.*KeyedItem\.id") as caught:
            await db.add(first, second).or_raise()
        assert not isinstance(caught.value, ValidationError)
        assert "driver" in str(caught.value)
        assert (first.id, second.id) == (None, None)

        # Several models: the add is rolled back, nothing stored, no key set.
        mixed = KeyedItem(3.0), OtherItem("y")
        with pytest.raises(DatabaseError):
            await db.add(*mixed).or_raise()
        assert [m.id for m in mixed] == [None, None]
        assert await db.find(OtherItem).count.or_raise() == 0


async def test_regression_key_outside_the_enum_is_a_database_error() -> None:
    async with Ommi(ReturnsKeysAs(lambda keys: [k + 10 for k in keys])) as db:
        await db.use_models(key_models)
        item = LevelItem("x")
        with pytest.raises(DatabaseError, match=r"(?s)11.*LevelItem\.id"):
            await db.add(item).or_raise()
        assert item.id is None


# -- update() never sets a key to None (issue 11, item 6) --------------------------------------------

update_models = ModelCollection("test_reliability_update_none")


@ommi_model(collection=update_models, name="update_none_item")
@dataclass
class UpdatedItem:
    name: str
    id: int | None = None


@ommi_model(collection=update_models, name="update_none_pair")
@dataclass
class UpdatedPair:
    region: Annotated[str | None, Key]
    code: Annotated[int | None, Key]
    note: str | None = None


BACKENDS = ["reference", "sqlite", "postgresql"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_regression_update_refuses_none_for_a_key_before_any_io(make_driver: Callable[..., Any]) -> None:
    from ommi.testing import record_queries

    async with Ommi(make_driver()) as db:
        await db.remove_models(update_models)
        await db.use_models(update_models)
        item = await db.add(UpdatedItem("kept")).or_raise()
        await db.add(UpdatedPair("north", 1)).or_raise()
        attempts = [
            (UpdatedItem, "id", lambda: db.find(UpdatedItem.id == item.id).update(id=None)),
            (UpdatedItem, "id", lambda: db.find(UpdatedItem).update({"id": None})),
            (UpdatedItem, "id", lambda: db.find(UpdatedItem).update({UpdatedItem.id: None}, name="x")),
            (UpdatedPair, "code", lambda: db.find(UpdatedPair).update(code=None)),
            (UpdatedPair, "region", lambda: db.find(UpdatedPair.code == 1).update(region=None, note="n")),
        ]
        for model, field, attempt in attempts:
            expected = rf"{model.__name__}\.{field}.*key.*None"
            with record_queries() as recorded, pytest.raises(ValidationError, match=expected) as caught:
                await attempt().or_raise()
            assert recorded.count == 0, (str(caught.value), recorded.events)
        assert await db.find(UpdatedItem).one.or_raise() == item
        assert await db.find(UpdatedPair).one.or_raise() == UpdatedPair("north", 1)
        # A value that fails its field's validator is refused before any write too, with the key untouched.
        with record_queries() as recorded, pytest.raises(ValidationError, match=r"UpdatedItem\.name"):
            await db.find(UpdatedItem).update(id=item.id + 1, name=None).or_raise()
        assert recorded.count == 0
        assert await db.find(UpdatedItem).one.or_raise() == item
        await db.remove_models(update_models)


# -- windows past the 64-bit range (issue 11, item 15) -----------------------------------------------

INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("limit", "page", "named"),
    [
        pytest.param(2**63, 0, str(2**63), id="limit_past_int64"),
        pytest.param(10**30, 0, str(10**30), id="huge_limit"),
        pytest.param(2, 2**62, str(2**62), id="offset_past_int64"),
        pytest.param(1000, 10**17, str(10**17), id="page_times_limit_past_int64"),
        pytest.param(INT64_MAX, 2, str(2 * INT64_MAX), id="max_limit_third_page"),
    ],
)
def test_regression_windows_past_64_bits_are_a_query_error(limit: int, page: int, named: str) -> None:
    db = Ommi(ReferenceDriver.connect())
    with pytest.raises(QueryError, match=rf"(?s)limit\(\).*{named}.*{INT64_MAX}"):
        db.find(UpdatedItem).limit(limit, page)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_regression_largest_windows_run_on_every_backend(make_driver: Callable[..., Any]) -> None:
    async with Ommi(make_driver()) as db:
        await db.remove_models(update_models)
        await db.use_models(update_models)
        await db.add(UpdatedItem("a"), UpdatedItem("b")).or_raise()
        everything = db.find(UpdatedItem).limit(INT64_MAX)
        assert [i.name for i in await (await everything.all.or_raise()).to_list()] == ["a", "b"]
        assert await everything.count.or_raise() == 2
        for last_page in (db.find(UpdatedItem).limit(1, INT64_MAX), db.find(UpdatedItem).limit(INT64_MAX, 1)):
            assert await (await last_page.all.or_raise()).to_list() == []
            assert await last_page.count.or_raise() == 0
        await db.remove_models(update_models)


# -- stored values the model no longer accepts (issue 11, item 15) -----------------------------------


class ColourBefore(enum.Enum):
    RED = "red"
    GREEN = "green"
    MAUVE = "mauve"


class ColourAfter(enum.Enum):
    RED = "red"
    GREEN = "green"


before_models = ModelCollection("test_reliability_enum_before")
after_models = ModelCollection("test_reliability_enum_after")


@ommi_model(collection=before_models, name="enum_drift_paint")
@dataclass
class PaintBefore:
    colour: ColourBefore
    id: int | None = None


@ommi_model(collection=after_models, name="enum_drift_paint")
@dataclass
class Paint:
    colour: ColourAfter
    id: int | None = None


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_regression_enum_value_removed_from_the_model_is_a_clear_error(make_driver: Callable[..., Any]) -> None:
    async with Ommi(make_driver()) as db:
        await db.remove_models(before_models)
        await db.use_models(before_models)
        await db.add(PaintBefore(ColourBefore.RED), PaintBefore(ColourBefore.MAUVE)).or_raise()
        await db.use_models(after_models)

        expected = r"(?s)Paint\.colour.*'mauve'.*ColourAfter.*(migrate|update).*stored"
        with pytest.raises(SchemaMismatchError, match=expected):
            await (await db.find(Paint).all.or_raise()).to_list()
        with pytest.raises(SchemaMismatchError, match=expected):
            await db.find(Paint.id == 2).one.or_raise()
        with pytest.raises(SchemaMismatchError, match=expected):
            async for _ in db.find(Paint).all(batch_size=1):
                pass
        red = await db.find(Paint.id == 1).one.or_raise()
        assert red.colour is ColourAfter.RED
        assert await db.find(Paint).count.or_raise() == 2

        # reload() checks every value before changing the instance.
        stale = Paint(ColourAfter.GREEN, id=2)
        with pytest.raises(SchemaMismatchError, match=expected):
            await db.reload(stale).or_raise()
        assert stale == Paint(ColourAfter.GREEN, id=2)
        await db.remove_models(before_models)
