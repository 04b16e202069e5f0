"""The code Ommi generates for each model: named after the model, and agreeing with the per-field validators.

``ModelSchema`` compiles an encoder (the hot path of ``add``) whose common
cases are tested inline (``FAST_CHECKS``) before any validator runs, and row
builders (the hot path of fetching). The inline tests must accept exactly
the values the validators (``Field._check`` / ``CHECKERS``) accept unchanged,
and the encoder as a whole must give what ``Field.encode`` gives field by field,
or fail where it fails: checked here with Hypothesis over values of every
storage type, hostile ones included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import traceback
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ommi import ModelCollection, TimezoneAware, ValidationError, ommi_model
from ommi._codegen import generated
from ommi.models import get_schema
from ommi.models.adapters import _GENERATED_INIT_FILE, _generated_init_takes
from ommi.models.types import CHECKERS, FAST_CHECKS, INT64_MAX, INT64_MIN, StorageType

collection = ModelCollection("generated_code")


@ommi_model(collection=collection)
@dataclass
class Everything:
    integer: int
    text: str
    real: float
    flag: bool
    amount: decimal.Decimal
    blob: bytes
    token: uuid.UUID
    day: dt.date
    moment: dt.datetime
    instant: Annotated[dt.datetime, TimezoneAware]
    maybe: int | None = None
    id: int | None = None


class _Int(int):
    pass


class _Str(str):
    __slots__ = ()


class _Float(float):
    pass


class _Bytes(bytes):
    pass


_boundaries = st.sampled_from([INT64_MIN, INT64_MAX, INT64_MIN - 1, INT64_MAX + 1, 2**200, -(2**200), 0, -1])
_tricky_text = st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfff", "é", "日本", "\N{SNOWMAN}", " "])
_timezones = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5)), dt.timezone(dt.timedelta(hours=-11))])

hostile: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(),
    _boundaries,
    st.integers().map(_Int),
    _boundaries.map(_Int),
    st.booleans(),
    st.text(),
    st.text(st.characters(exclude_categories=())),  # lone surrogates too
    _tricky_text,
    st.text().map(_Str),
    _tricky_text.map(_Str),
    st.floats(),  # NaN, infinities, -0.0, subnormals
    st.floats().map(_Float),
    st.decimals(),
    st.binary(),
    st.binary().map(bytearray),
    st.binary().map(_Bytes),
    st.binary().map(memoryview),
    st.uuids(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=_timezones),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(1, 1, 2), timezones=_timezones),
    st.just(object()),
    st.just([1]),
)


def _fast_check(storage: StorageType) -> Any:
    return eval(f"lambda v: {FAST_CHECKS[storage].format(v='v')}")


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _outcome(function: Any, *args: Any, refusals: tuple[type[Exception], ...] = (ValidationError,)) -> tuple[str, Any]:
    try:
        return "ok", function(*args)
    except refusals:
        return "refused", None


_VALIDATOR_REFUSALS = (ValidationError, TypeError, ValueError, OverflowError)
"""What a bare validator may raise; ``Field.encode`` reports each as ``ValidationError``."""


@pytest.mark.parametrize("storage", sorted(FAST_CHECKS, key=lambda s: s.value))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=hostile)
def test_fast_checks_pass_only_what_the_validator_returns_unchanged(storage: StorageType, value: Any) -> None:
    """Where the inline test holds, the storage type's validator accepts the value and returns it as it is."""
    if not _fast_check(storage)(value):
        return
    status, result = _outcome(CHECKERS[storage], value, refusals=_VALIDATOR_REFUSALS)
    assert status == "ok", f"the fast check of {storage.value} passed {value!r}, which its validator refuses"
    assert _same(result, value), f"the validator of {storage.value} changed {value!r} into {result!r}"


_valid: tuple[st.SearchStrategy[Any], ...] = (
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.text(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.binary(),
    st.uuids(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=_timezones, min_value=dt.datetime(2, 1, 1)),
    st.none() | st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
)
"""A value each field of ``Everything`` stores, in field order (``id`` apart)."""


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), key=st.none() | st.integers(min_value=1, max_value=INT64_MAX) | hostile)
def test_generated_encoder_accepts_and_refuses_what_the_fields_do(data: st.DataObject, key: Any) -> None:
    """``encode_instance`` (the generated encoder) and ``Field.encode`` field by field agree on every value.

    Each instance holds valid values except at a few positions, which hold any value.
    """
    values = [data.draw(strategy) for strategy in _valid]
    for position in data.draw(st.sets(st.integers(0, len(values) - 1), max_size=2)):
        values[position] = data.draw(hostile)
    schema = get_schema(Everything)
    instance = Everything(*values, id=key)
    expected_status, expected = _outcome(
        lambda: tuple(f.encode(getattr(instance, f.name)) for f in schema.fields),
    )
    status, encoded = _outcome(schema.encode_instance, instance)
    assert status == expected_status, (values, key)
    if status == "ok":
        assert len(encoded) == len(expected)
        assert all(_same(a, b) for a, b in zip(encoded, expected, strict=True)), (encoded, expected)


@settings(max_examples=200, deadline=None)
@given(value=hostile)
def test_each_field_refuses_what_its_validator_refuses(value: Any) -> None:
    """A required field stores what its storage type's validator returns, and refuses what it refuses."""
    schema = get_schema(Everything)
    for field in schema.fields:
        if field.nullable or field.auto:
            continue
        status, result = _outcome(field.encode, value)
        if value is None:
            assert status == "refused"
            continue
        expected_status, expected = _outcome(CHECKERS[field.storage], value, refusals=_VALIDATOR_REFUSALS)
        assert status == expected_status, (field, value)
        if status == "ok":
            assert _same(result, expected)


def test_generated_functions_are_named_after_their_model() -> None:
    """The encoder and row builders say which model they belong to, in tracebacks too."""
    schema = get_schema(Everything)
    instance = Everything(
        1, "a", 1.0, True, decimal.Decimal(1), b"", uuid.uuid4(), dt.date(2000, 1, 1), dt.datetime(2000, 1, 1),
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    schema.encode_instance(instance)
    label = f"{Everything.__module__}.{Everything.__qualname__}"
    encoder = schema._encode_row
    assert encoder is not None and generated(encoder)
    assert encoder.__qualname__ == f"<encoder of {label}>.encode"
    with pytest.raises((IndexError, TypeError)) as info:  # a row two values short
        schema.build((1, 2))
    text = "".join(traceback.format_exception(info.value))
    assert f"row builders of {label}" in text


def test_dataclass_signals_read_for_fast_building_hold_on_this_python() -> None:
    """What ``_generated_init_takes`` reads still means what it did (run on every supported Python).

    ``__dataclass_params__`` (init, frozen) has been there since 3.7 without
    being documented; the file name of a generated ``__init__`` is measured at
    import. If either changes, this fails instead of loading silently slowing
    down or, worse, skipping a hand-written ``__init__``.
    """

    @dataclass(frozen=True)
    class Frozen:
        id: int

    @dataclass
    class HandWritten:
        id: int

        def __init__(self, id: int) -> None:  # noqa: A002
            self.id = id * 2

    @dataclass
    class WithInitVar:
        id: int
        extra: dataclasses.InitVar[int] = 0

    params = Frozen.__dataclass_params__  # type: ignore[attr-defined]
    assert params.init is True and params.frozen is True
    assert HandWritten.__init__.__code__.co_filename != _GENERATED_INIT_FILE
    assert Frozen.__init__.__code__.co_filename == _GENERATED_INIT_FILE
    assert _generated_init_takes(Frozen, ("id",))
    assert not _generated_init_takes(HandWritten, ("id",))
    assert not _generated_init_takes(WithInitVar, ("id",))
