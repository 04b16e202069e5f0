"""A catalogue of bad input, and of hostile names that must still work.

* :data:`BAD_VALUES`: values that do not fit a :class:`~ommi_testkit.reliability.models.Sample`
  field (wrong Python type, NaN and infinities, integers beyond 64 bits, NUL
  and lone surrogates in text, datetimes with the wrong awareness or out of
  range...). Each must raise the named :mod:`ommi.errors` exception before
  anything is written, wherever the value enters: ``add``, ``update``,
  ``save``, or a query condition.
* :data:`UNSUPPORTED_ANNOTATIONS`: field types no codec serves; ``@ommi_model``
  must refuse them with :class:`~ommi.errors.ModelDefinitionError`.
* :data:`HOSTILE_NAMES`: table and column names full of quotes, SQL,
  placeholders and operator characters. Each must either work exactly (be
  quoted, never spliced) or be refused with an :mod:`ommi.errors` exception
  before anything is created; :data:`INVALID_NAMES` must always be refused.
* :func:`hostile_model`: a model stored under such names.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import uuid
from dataclasses import dataclass, make_dataclass
from typing import Annotated, Any

from ommi import ModelCollection, StoreAs, ommi_model
from ommi.errors import OmmiError, ValidationError

__all__ = [
    "BAD_VALUES",
    "HOSTILE_NAMES",
    "INVALID_NAMES",
    "UNSUPPORTED_ANNOTATIONS",
    "BadValue",
    "hostile_model",
]


class _Other(enum.Enum):
    PURPLE = "purple"


@dataclass(frozen=True, slots=True)
class BadValue:
    """A value ``field`` of a ``Sample`` must refuse with ``error``."""

    label: str
    field: str
    value: Any
    error: type[OmmiError] = ValidationError

    def __repr__(self) -> str:
        return self.label


_UTC_PLUS_5 = _dt.timezone(_dt.timedelta(hours=5))
_UTC_MINUS_5 = _dt.timezone(_dt.timedelta(hours=-5))

BAD_VALUES: tuple[BadValue, ...] = (
    BadValue("str_in_int", "number", "1"),
    BadValue("float_in_int", "number", 1.5),
    BadValue("bool_in_int", "number", True),
    BadValue("int_above_int64", "number", 2**63),
    BadValue("int_below_int64", "number", -(2**63) - 1),
    BadValue("int_of_100_digits", "number", 10**100),
    BadValue("decimal_in_int", "number", decimal.Decimal(1)),
    BadValue("nan", "real", math.nan),
    BadValue("infinity", "real", math.inf),
    BadValue("minus_infinity", "real", -math.inf),
    BadValue("int_too_big_for_a_float", "real", 10**400),
    BadValue("str_in_float", "real", "1.0"),
    BadValue("decimal_nan", "exact", decimal.Decimal("NaN")),
    BadValue("decimal_signalling_nan", "exact", decimal.Decimal("sNaN")),
    BadValue("decimal_infinity", "exact", decimal.Decimal("Infinity")),
    BadValue("float_in_decimal", "exact", 0.1),
    BadValue("str_in_decimal", "exact", "0.1"),
    BadValue("str_in_bool", "flag", "true"),
    BadValue("int_in_bool", "flag", 1),
    BadValue("nul_in_text", "text", "a\x00b"),
    BadValue("lone_surrogate_in_text", "text", "a\ud800b"),
    BadValue("bytes_in_text", "text", b"text"),
    BadValue("int_in_text", "text", 5),
    BadValue("str_in_bytes", "blob", "bytes"),
    BadValue("list_in_bytes", "blob", [1, 2]),
    BadValue("str_in_uuid", "ident", "12345678-1234-5678-1234-567812345678"),
    BadValue("int_in_uuid", "ident", 5),
    BadValue("datetime_in_date", "day", _dt.datetime(2020, 1, 2, 3, 4)),
    BadValue("str_in_date", "day", "2020-01-02"),
    BadValue("date_in_datetime", "moment", _dt.date(2020, 1, 2)),
    BadValue("aware_in_naive_datetime", "moment", _dt.datetime(2020, 1, 2, tzinfo=_dt.UTC)),
    BadValue("naive_in_aware_datetime", "instant", _dt.datetime(2020, 1, 2)),
    BadValue("aware_before_year_1_in_utc", "instant", _dt.datetime(1, 1, 1, 1, tzinfo=_UTC_PLUS_5)),
    BadValue("aware_after_year_9999_in_utc", "instant", _dt.datetime(9999, 12, 31, 23, tzinfo=_UTC_MINUS_5)),
    BadValue("enum_value_not_a_member", "shade", "purple"),
    BadValue("member_of_another_enum", "shade", _Other.PURPLE),
    BadValue("uuid_in_int", "number", uuid.UUID(int=1)),
)
"""Values every ``Sample`` field entry point must refuse before any I/O."""


class _Custom:
    pass


UNSUPPORTED_ANNOTATIONS: tuple[tuple[str, Any], ...] = (
    ("list", list[int]),
    ("dict", dict[str, int]),
    ("set", set[int]),
    ("tuple", tuple[int, ...]),
    ("complex", complex),
    ("object", object),
    ("any", Any),
    ("union_of_two_types", int | str),
    ("custom_class", _Custom),
    ("bytearray", bytearray),
)
"""Field annotations ``@ommi_model`` must refuse with ``ModelDefinitionError``."""


HOSTILE_NAMES: tuple[str, ...] = (
    'quote"inside',
    "single'quote",
    "semi; DROP TABLE rel_owner; --",
    "with space",
    "dot.ted",
    "percent%s",
    "pyformat%(x)s",
    "question?mark",
    "back\\slash",
    "unicodé中😀",
    "select",
    "$dollar",
    "_id",
    "x" * 70,
)
"""Names that must be quoted correctly (or refused cleanly), for tables and columns alike."""

INVALID_NAMES: tuple[Any, ...] = ("", "nul\x00inside", 5, b"bytes")
"""Names ``@ommi_model(name=...)`` and ``StoreAs(...)`` must refuse with ``ModelDefinitionError``."""


def hostile_model(table: str, column: str, collection: ModelCollection) -> type:
    """A model stored as table ``table`` with its text field stored as column ``column``.

    Its fields: ``id`` (int key) and ``value`` (``str | None`` stored as ``column``).
    """
    cls = make_dataclass(
        "Hostile",
        [("id", int), ("value", Annotated[str | None, StoreAs(column)], None)],
    )
    model: type = ommi_model(collection=collection, name=table)(cls)
    return model
