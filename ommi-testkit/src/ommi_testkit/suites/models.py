"""Models the conformance suite stores, all in their own collection (``testkit_models``).

The ``db`` fixture creates every model of :data:`testkit_models` before a test
and drops them afterwards, so a test can use any of them straight away. The
models are part of the testkit's public surface: suites in other modules (and
drivers' own tests) import them, so their names, fields and stored names only
ever grow, never change.

Groups:

* :class:`Person`: the everyday model for CRUD and queries (str, int, float,
  bool and optional fields, a generated int key).
* :class:`Item`: a numbered row for pagination, batching and counting.
* One ``*Record`` model per field type, each with a required ``value`` and an
  optional ``maybe`` of that type, for round-trips and comparisons.
* :class:`Everything`: one field of every type in a single row.
* :class:`Token` (str key) and :class:`Document` (UUID key): keys the
  application chooses and the database must keep.
* :class:`Placement`: a composite key of a str and an int.
* :class:`Order`: stored as ``order`` with columns named after SQL keywords and
  one needing identifier escaping.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from dataclasses import dataclass
from typing import Annotated

from ommi import Key, ModelCollection, StoreAs, TimezoneAware, ommi_model

__all__ = [
    "AwareDateTimeRecord",
    "BoolRecord",
    "BytesRecord",
    "Color",
    "ColorRecord",
    "DateRecord",
    "DateTimeRecord",
    "DecimalRecord",
    "Document",
    "Everything",
    "FloatRecord",
    "IntRecord",
    "Item",
    "Order",
    "Person",
    "Placement",
    "Priority",
    "PriorityRecord",
    "TextRecord",
    "Token",
    "UUIDRecord",
    "testkit_models",
]

testkit_models = ModelCollection("ommi_testkit")
"""Every model below; the suite's fixtures create and drop exactly these."""


class Color(enum.StrEnum):
    """A str-valued enum: stored as its text value."""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(enum.IntEnum):
    """An int-valued enum: stored as its integer value (so it sorts numerically)."""

    LOW = 1
    MEDIUM = 5
    HIGH = 10


@ommi_model(collection=testkit_models)
@dataclass
class Person:
    """The everyday model: a generated int key and fields of the common scalar types."""

    name: str
    age: int
    score: float = 0.0
    active: bool = True
    nickname: str | None = None
    rank: int | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class Item:
    """A numbered row: ``position`` is unique within a test, ``group`` repeats."""

    position: int
    group: str = "a"
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class IntRecord:
    """Round-trips ``int`` (signed 64 bit)."""

    value: int
    maybe: int | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class FloatRecord:
    """Round-trips ``float`` (double precision)."""

    value: float
    maybe: float | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class BoolRecord:
    """Round-trips ``bool``."""

    value: bool
    maybe: bool | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class TextRecord:
    """Round-trips ``str``."""

    value: str
    maybe: str | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class BytesRecord:
    """Round-trips ``bytes``."""

    value: bytes
    maybe: bytes | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class DecimalRecord:
    """Round-trips ``decimal.Decimal``."""

    value: decimal.Decimal
    maybe: decimal.Decimal | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class UUIDRecord:
    """Round-trips ``uuid.UUID``."""

    value: uuid.UUID
    maybe: uuid.UUID | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class DateRecord:
    """Round-trips ``datetime.date``."""

    value: datetime.date
    maybe: datetime.date | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class DateTimeRecord:
    """Round-trips naive ``datetime.datetime`` (they come back naive, unshifted)."""

    value: datetime.datetime
    maybe: datetime.datetime | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class AwareDateTimeRecord:
    """Round-trips aware datetimes: stored as instants, returned aware (UTC)."""

    value: Annotated[datetime.datetime, TimezoneAware]
    maybe: Annotated[datetime.datetime | None, TimezoneAware] = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class ColorRecord:
    """Round-trips a str-valued ``Enum`` (stored by value)."""

    value: Color
    maybe: Color | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class PriorityRecord:
    """Round-trips an int-valued ``Enum`` (stored by value)."""

    value: Priority
    maybe: Priority | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class Everything:
    """One field of every supported type, optional, in a single row."""

    integer: int | None = None
    real: float | None = None
    flag: bool | None = None
    text: str | None = None
    blob: bytes | None = None
    amount: decimal.Decimal | None = None
    uid: uuid.UUID | None = None
    day: datetime.date | None = None
    moment: datetime.datetime | None = None
    instant: Annotated[datetime.datetime | None, TimezoneAware] = None
    color: Color | None = None
    priority: Priority | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class Token:
    """A str key chosen by the application (never generated or overwritten)."""

    code: Annotated[str, Key]
    label: str = ""


@ommi_model(collection=testkit_models)
@dataclass
class Document:
    """A UUID key chosen by the application."""

    uid: Annotated[uuid.UUID, Key]
    title: str = ""


@ommi_model(collection=testkit_models)
@dataclass
class Placement:
    """A composite key: (``region``, ``number``) identifies a row; neither is generated."""

    region: Annotated[str, Key]
    number: Annotated[int, Key]
    label: str = ""


@ommi_model(collection=testkit_models, name="order")
@dataclass
class Order:
    """Stored as ``order`` (an SQL keyword) with keyword and odd column names.

    ``select`` keeps its name as the column; the others are renamed with
    ``StoreAs``, one of them to a name with a space and a double quote.
    """

    select: str
    from_: Annotated[str, StoreAs("from")] = ""
    group_by: Annotated[int, StoreAs("group")] = 0
    where: Annotated[str | None, StoreAs("where")] = None
    odd: Annotated[str, StoreAs('odd "name"')] = ""
    id: int | None = None
