"""Regressions the reliability tests (ommi-testkit/tests/reliability) found in core's value validation.

Each value below used to escape validation and fail later, inside a driver,
with a raw Python exception (``UnicodeEncodeError``, ``OverflowError``)
instead of :class:`ommi.errors.ValidationError` before any I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

import pytest
from ommi import ModelCollection, Ommi, TimezoneAware, ommi_model
from ommi.errors import ValidationError
from ommi.models import get_schema
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
