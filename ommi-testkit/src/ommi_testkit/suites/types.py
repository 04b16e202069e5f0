"""Conformance tests: every field type round-trips exactly, compares and sorts; bad values are refused.

Each type group has its own ``*Record`` model (see :mod:`ommi_testkit.suites.models`)
with a required ``value`` and an optional ``maybe``. The parametrized tests run
once per type; the named tests cover each type's edge cases.
"""

# Model classes double as query operands (``Person.age >= 18``, ``model.save()``),
# which a type checker cannot see without a plugin; those checks are off here.
# mypy: disable-error-code="misc, attr-defined, arg-type, operator, union-attr, comparison-overlap"

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from ommi import DBResult, Ommi
from ommi.errors import ValidationError
from ommi.query.find import FindQuery

from ommi_testkit.suites.base import SuiteBase, capability_mark, requires
from ommi_testkit.suites.models import (
    AwareDateTimeRecord,
    BoolRecord,
    BytesRecord,
    Color,
    ColorRecord,
    DateRecord,
    DateTimeRecord,
    DecimalRecord,
    Everything,
    FloatRecord,
    IntRecord,
    Priority,
    PriorityRecord,
    TextRecord,
    UUIDRecord,
)

D = decimal.Decimal
UTC = datetime.UTC
PLUS_5 = datetime.timezone(datetime.timedelta(hours=5))
MINUS_5 = datetime.timezone(datetime.timedelta(hours=-5))
PLUS_0530 = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
INT64 = 2**63 - 1


@dataclass(frozen=True)
class TypeCase:
    """Distinct values of one field type, in ascending order (``False < True`` for bool)."""

    model: type
    values: tuple[Any, ...]


CASES: dict[str, TypeCase] = {
    "int": TypeCase(IntRecord, (-(2**40), 0, 7, INT64)),
    "float": TypeCase(FloatRecord, (-1.5, 2.5e-300, 0.1, 1e300)),
    "decimal": TypeCase(DecimalRecord, (D("-1.5"), D("0.1"), D("0.10000000000000001"), D("12345.6789"))),
    "text": TypeCase(TextRecord, ("Apple", "Zebra", "apple", "banana")),
    "bytes": TypeCase(BytesRecord, (b"\x00\x01", b"\x00\xff", b"\x01\x00", b"\xff\x00")),
    "uuid": TypeCase(UUIDRecord, (uuid.UUID(int=1), uuid.UUID(int=2**64), uuid.UUID(int=2**127 + 5))),
    "date": TypeCase(DateRecord, (datetime.date(1969, 12, 31), datetime.date(2000, 2, 29), datetime.date(2999, 1, 1))),
    "datetime": TypeCase(
        DateTimeRecord,
        (
            datetime.datetime(1969, 12, 31, 23, 59, 59),
            datetime.datetime(2000, 2, 29, 12, 0, 0, 123000),
            datetime.datetime(2000, 2, 29, 12, 0, 0, 124000),
            datetime.datetime(2038, 1, 19, 3, 14, 8),
        ),
    ),
    # Wall-clock order (10:00, 06:00, 03:00) is the reverse of the instants' order.
    "aware_datetime": TypeCase(
        AwareDateTimeRecord,
        (
            datetime.datetime(2024, 1, 1, 10, 0, tzinfo=PLUS_5),
            datetime.datetime(2024, 1, 1, 6, 0, 0, 500000, tzinfo=UTC),
            datetime.datetime(2024, 1, 1, 3, 0, tzinfo=MINUS_5),
        ),
    ),
    "str_enum": TypeCase(ColorRecord, (Color.BLUE, Color.GREEN, Color.RED)),
    # Numeric order (1, 5, 10) differs from the order of the values as text.
    "int_enum": TypeCase(PriorityRecord, (Priority.LOW, Priority.MEDIUM, Priority.HIGH)),
    "bool": TypeCase(BoolRecord, (False, True)),
}


def _params(names: list[str]) -> list[Any]:
    # Decimal digits beyond double precision need exact decimals.
    return [
        pytest.param(name, id=name, marks=[capability_mark("exact_decimal")] if name == "decimal" else [])
        for name in names
    ]


ALL_TYPES = _params(list(CASES))


async def _rows(query: FindQuery[Any]) -> list[Any]:
    return await (await query.all.or_raise()).to_list()


async def _seed(db: Ommi, case: TypeCase) -> list[Any]:
    records = [case.model(value=v, maybe=v, id=i + 1) for i, v in enumerate(case.values)]
    records.append(case.model(value=case.values[0], maybe=None, id=len(case.values) + 1))
    await db.add(*records).or_raise()
    return records


def _same(got: Any, expected: Any) -> bool:
    """Equal, of the same type, and as aware/naive as expected."""
    if type(got) is not type(expected) or got != expected:
        return False
    if isinstance(expected, datetime.datetime):
        return (got.utcoffset() is None) == (expected.utcoffset() is None)
    return True


async def _ids(query: FindQuery[Any]) -> list[int]:
    return [r.id for r in await _rows(query)]


TRICKY_TEXTS = {
    "empty": "",
    "spaces": "  padded  ",
    "whitespace": "tab\tnewline\ncarriage\r",
    "emoji": "family 👩‍👩‍👧‍👦 and 🎉 and 𝄞",
    "cjk": "漢字 かな カナ 한국어",
    "combining": "e\u0301 a\u0308 n\u0303 (combining marks, not normalised)",
    "rtl": "שלום עולם مرحبا بالعالم \u200f",
    "single_quote": "O'Brien's",
    "double_quote": 'say "hello"',
    "semicolon": "a; b; c;",
    "sql_comment": "value -- not a comment /* nor this */",
    "injection": "'; DROP TABLE Person; --",
    "backslashes": "C:\\path\\to\\file \\n \\\\",
    "wildcards": "%_*?[^]{}$.+()|",
    "long": "lorem ipsum " * 10_000,
}

INVALID_VALUES = {
    "str_in_int": (IntRecord, "1"),
    "float_in_int": (IntRecord, 1.5),
    "bool_in_int": (IntRecord, True),
    "str_in_float": (FloatRecord, "1.0"),
    "decimal_in_float": (FloatRecord, D("1.0")),
    "int_in_bool": (BoolRecord, 1),
    "bytes_in_text": (TextRecord, b"text"),
    "int_in_text": (TextRecord, 1),
    "str_in_bytes": (BytesRecord, "bytes"),
    "float_in_decimal": (DecimalRecord, 1.5),
    "str_in_uuid": (UUIDRecord, "12345678-1234-5678-1234-567812345678"),
    "datetime_in_date": (DateRecord, datetime.datetime(2024, 1, 1)),
    "str_in_date": (DateRecord, "2024-01-01"),
    "date_in_datetime": (DateTimeRecord, datetime.date(2024, 1, 1)),
    "unknown_str_enum_value": (ColorRecord, "purple"),
    "unknown_int_enum_value": (PriorityRecord, 3),
    "float_nan": (FloatRecord, math.nan),
    "float_infinity": (FloatRecord, math.inf),
    "float_negative_infinity": (FloatRecord, -math.inf),
    "decimal_nan": (DecimalRecord, D("NaN")),
    "decimal_infinity": (DecimalRecord, D("Infinity")),
    "int_above_64_bits": (IntRecord, 2**63),
    "int_below_64_bits": (IntRecord, -(2**63) - 1),
    "huge_int": (IntRecord, 10**30),
    "nul_in_text": (TextRecord, "before\x00after"),
    "aware_in_naive_datetime": (DateTimeRecord, datetime.datetime(2024, 1, 1, tzinfo=UTC)),
    "naive_in_aware_datetime": (AwareDateTimeRecord, datetime.datetime(2024, 1, 1)),
    "none_in_required": (IntRecord, None),
}

VALID_VALUES = {
    IntRecord: 1,
    FloatRecord: 1.0,
    BoolRecord: True,
    TextRecord: "ok",
    BytesRecord: b"ok",
    DecimalRecord: D("1"),
    UUIDRecord: uuid.UUID(int=7),
    DateRecord: datetime.date(2024, 1, 1),
    DateTimeRecord: datetime.datetime(2024, 1, 1),
    AwareDateTimeRecord: datetime.datetime(2024, 1, 1, tzinfo=UTC),
    ColorRecord: Color.RED,
    PriorityRecord: Priority.LOW,
}


class FieldTypeTests(SuiteBase):
    """Round-trips, comparisons and sorting for every field type, and validation of bad values."""

    # -- every type --------------------------------------------------------

    @pytest.mark.parametrize("type_name", ALL_TYPES)
    async def test_types_round_trip(self, db: Ommi, type_name: str) -> None:
        """Every value comes back equal and of the same type (naive stays naive, aware stays aware)."""
        case = CASES[type_name]
        await _seed(db, case)
        stored = await _rows(db.find(case.model).sort(case.model.id))
        for record, expected in zip(stored, case.values, strict=False):
            assert _same(record.value, expected), (record.value, expected)
            assert _same(record.maybe, expected), (record.maybe, expected)
        assert stored[-1].maybe is None
        assert len(stored) == len(case.values) + 1

    @pytest.mark.parametrize("type_name", ALL_TYPES)
    async def test_types_filter_equal(self, db: Ommi, type_name: str) -> None:
        """``==`` finds exactly the row holding each value; ``== None`` the row without one."""
        case = CASES[type_name]
        await _seed(db, case)
        last = len(case.values) + 1
        for i, value in enumerate(case.values):
            expected = [i + 1, last] if i == 0 else [i + 1]
            assert await _ids(db.find(case.model.value == value).sort(case.model.id)) == expected
            assert await _ids(db.find(case.model.maybe == value)) == [i + 1]
        assert await _ids(db.find(case.model.maybe == None)) == [last]  # noqa: E711 - a query

    @pytest.mark.parametrize("type_name", ALL_TYPES)
    async def test_types_filter_in_and_not_in(self, db: Ommi, type_name: str) -> None:
        """``in_`` and ``not_in`` work on every type (``not_in`` matching NULL too)."""
        case = CASES[type_name]
        await _seed(db, case)
        first, last_value = case.values[0], case.values[-1]
        assert await _ids(db.find(case.model.maybe.in_([first, last_value])).sort(case.model.id)) == [
            1,
            len(case.values),
        ]
        expected = [i + 1 for i in range(1, len(case.values))] + [len(case.values) + 1]
        assert await _ids(db.find(case.model.maybe.not_in([first])).sort(case.model.id)) == expected

    @pytest.mark.parametrize("type_name", ALL_TYPES)
    async def test_types_update_round_trip(self, db: Ommi, type_name: str) -> None:
        """Values written by ``update`` read back exactly."""
        case = CASES[type_name]
        await _seed(db, case)
        new = case.values[-1]
        assert await db.find(case.model.id == 1).update(value=new, maybe=None).or_raise() == 1
        record = await db.find(case.model.id == 1).one.or_raise()
        assert _same(record.value, new)
        assert record.maybe is None

    @pytest.mark.parametrize("type_name", ALL_TYPES)
    async def test_types_filter_ordering(self, db: Ommi, type_name: str) -> None:
        """``<``, ``<=``, ``>``, ``>=`` and ``!=`` follow the type's order (NULL never matches ordering)."""
        case = CASES[type_name]
        await _seed(db, case)
        field, n = case.model.maybe, len(case.values)
        for i, pivot in enumerate(case.values):
            below, above = list(range(1, i + 1)), list(range(i + 2, n + 1))
            assert await _ids(db.find(field < pivot).sort(case.model.id)) == below
            assert await _ids(db.find(field <= pivot).sort(case.model.id)) == [*below, i + 1]
            assert await _ids(db.find(field > pivot).sort(case.model.id)) == above
            assert await _ids(db.find(field >= pivot).sort(case.model.id)) == [i + 1, *above]
            assert await _ids(db.find(field != pivot).sort(case.model.id)) == [*below, *above, n + 1]

    @pytest.mark.parametrize("type_name", ALL_TYPES)
    async def test_types_sort(self, db: Ommi, type_name: str) -> None:
        """Sorting follows the type's order: NULL first ascending, last descending."""
        case = CASES[type_name]
        await _seed(db, case)
        n = len(case.values)
        assert await _ids(db.find(case.model).sort(case.model.maybe)) == [n + 1, *range(1, n + 1)]
        assert await _ids(db.find(case.model).sort(case.model.maybe.desc)) == [*range(n, 0, -1), n + 1]
        # value ties (ids 1 and n + 1) break by key
        assert await _ids(db.find(case.model).sort(case.model.value.desc)) == [*range(n, 1, -1), 1, n + 1]

    # -- edge cases per type -----------------------------------------------

    async def test_types_bytes_of_different_lengths_sort_octet_by_octet(self, db: Ommi) -> None:
        """Bytes order octet by octet, a prefix first, whatever the lengths (not shorter first).

        MongoDB's own order of binary values puts shorter ones first; drivers
        must give Ommi's order anyway.
        """
        values = [b"b", b"ab", b"a", b"", b"\x00\x00\x00", b"\xff"]
        await db.add(*[BytesRecord(v, id=i + 1) for i, v in enumerate(values)]).or_raise()
        expected = sorted(range(1, len(values) + 1), key=lambda i: values[i - 1])
        assert await _ids(db.find(BytesRecord).sort(BytesRecord.value)) == expected
        assert await _ids(db.find(BytesRecord).sort(BytesRecord.value.desc)) == expected[::-1]
        window = db.find(BytesRecord).sort(BytesRecord.value).limit(2, page=1)
        assert await _ids(window) == expected[2:4]

    async def test_types_int_64_bit_limits(self, db: Ommi) -> None:
        """Ints at ±(2**63 - 1) round-trip and compare correctly."""
        await db.add(IntRecord(INT64, id=1), IntRecord(-INT64, id=2), IntRecord(2**31, id=3)).or_raise()
        assert [r.value for r in await _rows(db.find(IntRecord).sort(IntRecord.value))] == [-INT64, 2**31, INT64]
        assert await _ids(db.find(IntRecord.value == INT64)) == [1]
        assert await _ids(db.find(IntRecord.value < -(2**62))) == [2]

    async def test_types_float_exact_round_trip(self, db: Ommi) -> None:
        """Doubles come back bit for bit (no decimal rounding on the way)."""
        values = [0.1, 0.1 + 0.2, 1 / 3, 1e308, -1e-308, 5e-324, 2.0**53 + 2, 123456789.123456789]
        await db.add(*[FloatRecord(v, id=i + 1) for i, v in enumerate(values)]).or_raise()
        stored = [r.value for r in await _rows(db.find(FloatRecord).sort(FloatRecord.id))]
        assert [v.hex() for v in stored] == [v.hex() for v in values]
        assert await _ids(db.find(FloatRecord.value == 0.1 + 0.2)) == [2]

    async def test_types_float_field_accepts_ints(self, db: Ommi) -> None:
        """An int stored in a float field comes back as a float."""
        await db.add(FloatRecord(3, maybe=-2, id=1)).or_raise()
        record = await db.find(FloatRecord.id == 1).one.or_raise()
        assert (record.value, record.maybe) == (3.0, -2.0)
        assert type(record.value) is float

    @requires("exact_decimal")
    async def test_types_decimal_exact_round_trip(self, db: Ommi) -> None:
        """Decimals keep every digit (beyond what a double can hold)."""
        values = [D("12345678901234567890.123456789"), D("0.1"), D("-0.000001"), D("1E+20"), D("0")]
        await db.add(*[DecimalRecord(v, id=i + 1) for i, v in enumerate(values)]).or_raise()
        stored = [r.value for r in await _rows(db.find(DecimalRecord).sort(DecimalRecord.id))]
        assert stored == values
        assert all(type(v) is D for v in stored)
        assert await _ids(db.find(DecimalRecord.value == D("12345678901234567890.123456789"))) == [1]
        assert await _ids(db.find(DecimalRecord.value > D("12345678901234567890.123456788"))) == [1, 4]

    async def test_types_decimal_binary_fractions_round_trip(self, db: Ommi) -> None:
        """Decimals that a double represents exactly round-trip on every driver, as ``Decimal``."""
        values = [D("1.5"), D("-2.25"), D("1024"), D("0.125")]
        await db.add(*[DecimalRecord(v, id=i + 1) for i, v in enumerate(values)]).or_raise()
        stored = [r.value for r in await _rows(db.find(DecimalRecord).sort(DecimalRecord.id))]
        assert stored == values
        assert all(type(v) is D for v in stored)

    async def test_types_bytes_with_nul_and_every_octet(self, db: Ommi) -> None:
        """Bytes keep NUL bytes and every octet value, including empty and large values."""
        values = [b"", b"\x00", b"a\x00b\x00", bytes(range(256)), bytes(range(256)) * 1024]
        await db.add(*[BytesRecord(v, id=i + 1) for i, v in enumerate(values)]).or_raise()
        stored = [r.value for r in await _rows(db.find(BytesRecord).sort(BytesRecord.id))]
        assert stored == values
        assert all(type(v) is bytes for v in stored)
        assert await _ids(db.find(BytesRecord.value == b"a\x00b\x00")) == [3]
        assert await _ids(db.find(BytesRecord.value == b"a")) == []

    @pytest.mark.parametrize("text_name", list(TRICKY_TEXTS))
    async def test_types_text_round_trip(self, db: Ommi, text_name: str) -> None:
        """Unicode, quotes, semicolons and comment markers round-trip exactly and match with ``==``."""
        text = TRICKY_TEXTS[text_name]
        await db.add(TextRecord(text, maybe=text, id=1), TextRecord("other", id=2)).or_raise()
        record = await db.find(TextRecord.value == text).one.or_raise()
        assert (record.id, record.value, record.maybe) == (1, text, text)
        assert await db.find(TextRecord.maybe == text).count.or_raise() == 1
        assert await db.find(TextRecord).count.or_raise() == 2

    async def test_types_text_is_not_normalised(self, db: Ommi) -> None:
        """Text is stored as given: composed and decomposed forms of a letter stay distinct."""
        composed, decomposed = "caf\u00e9", "cafe\u0301"
        await db.add(TextRecord(composed, id=1), TextRecord(decomposed, id=2)).or_raise()
        assert await _ids(db.find(TextRecord.value == composed)) == [1]
        assert await _ids(db.find(TextRecord.value == decomposed)) == [2]
        assert (await db.find(TextRecord.id == 2).one.or_raise()).value == decomposed

    async def test_types_falsy_values_are_not_null(self, db: Ommi) -> None:
        """``""``, ``0``, ``False`` and ``b""`` are values, distinct from ``None``."""
        await db.add(TextRecord("a", maybe="", id=1), TextRecord("b", id=2)).or_raise()
        await db.add(IntRecord(1, maybe=0, id=1), IntRecord(2, id=2)).or_raise()
        await db.add(BoolRecord(True, maybe=False, id=1), BoolRecord(True, id=2)).or_raise()
        await db.add(BytesRecord(b"a", maybe=b"", id=1), BytesRecord(b"b", id=2)).or_raise()
        for model, falsy in ((TextRecord, ""), (IntRecord, 0), (BoolRecord, False), (BytesRecord, b"")):
            assert _same((await db.find(model.id == 1).one.or_raise()).maybe, falsy)
            assert await _ids(db.find(model.maybe == None)) == [2]  # noqa: E711 - a query
            assert await _ids(db.find(model.maybe == falsy)) == [1]

    async def test_types_naive_datetime_comes_back_naive_and_unshifted(self, db: Ommi) -> None:
        """Naive datetimes return naive with the same wall-clock time (even in DST gaps)."""
        values = [
            datetime.datetime(2024, 3, 10, 2, 30),
            datetime.datetime(2024, 10, 27, 2, 30),
            datetime.datetime(1900, 1, 1),
        ]
        await db.add(*[DateTimeRecord(v, id=i + 1) for i, v in enumerate(values)]).or_raise()
        stored = [r.value for r in await _rows(db.find(DateTimeRecord).sort(DateTimeRecord.id))]
        assert stored == values
        assert all(v.tzinfo is None for v in stored)

    async def test_types_aware_datetime_comes_back_aware_for_the_same_instant(self, db: Ommi) -> None:
        """A ``TimezoneAware`` field returns aware datetimes for the same instant; queries compare instants."""
        original = datetime.datetime(2024, 6, 1, 12, 0, tzinfo=PLUS_0530)
        await db.add(AwareDateTimeRecord(original, id=1)).or_raise()
        record = await db.find(AwareDateTimeRecord.id == 1).one.or_raise()
        assert record.value.utcoffset() is not None
        assert record.value == original
        assert record.value.astimezone(UTC) == datetime.datetime(2024, 6, 1, 6, 30, tzinfo=UTC)
        same_instant = datetime.datetime(2024, 6, 1, 1, 30, tzinfo=MINUS_5)
        assert await _ids(db.find(AwareDateTimeRecord.value == same_instant)) == [1]

    async def test_types_datetime_milliseconds_always_kept(self, db: Ommi) -> None:
        """Millisecond fractions survive on every driver, naive and aware."""
        naive = datetime.datetime(2024, 1, 2, 3, 4, 5, 678000)
        aware = datetime.datetime(2024, 1, 2, 3, 4, 5, 1000, tzinfo=UTC)
        await db.add(DateTimeRecord(naive, id=1), AwareDateTimeRecord(aware, id=1)).or_raise()
        assert (await db.find(DateTimeRecord.id == 1).one.or_raise()).value == naive
        assert (await db.find(AwareDateTimeRecord.id == 1).one.or_raise()).value == aware

    @requires("microsecond_datetimes")
    async def test_types_datetime_microseconds_kept(self, db: Ommi) -> None:
        """Microseconds survive where the driver declares ``microsecond_datetimes``."""
        naive = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)
        aware = datetime.datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=PLUS_5)
        await db.add(DateTimeRecord(naive, id=1), AwareDateTimeRecord(aware, id=1)).or_raise()
        assert (await db.find(DateTimeRecord.id == 1).one.or_raise()).value == naive
        assert (await db.find(AwareDateTimeRecord.id == 1).one.or_raise()).value == aware
        assert await _ids(db.find(DateTimeRecord.value > datetime.datetime(2024, 1, 2, 3, 4, 5, 123455))) == [1]

    async def test_types_date_is_not_a_datetime(self, db: Ommi) -> None:
        """Date fields return ``datetime.date`` values, never ``datetime.datetime``."""
        await db.add(DateRecord(datetime.date(2024, 2, 29), id=1)).or_raise()
        value = (await db.find(DateRecord.id == 1).one.or_raise()).value
        assert type(value) is datetime.date
        assert value == datetime.date(2024, 2, 29)

    async def test_types_enum_members_come_back(self, db: Ommi) -> None:
        """Enum fields return the enum members themselves."""
        await db.add(ColorRecord(Color.GREEN, id=1), PriorityRecord(Priority.HIGH, id=1)).or_raise()
        assert (await db.find(ColorRecord.id == 1).one.or_raise()).value is Color.GREEN
        assert (await db.find(PriorityRecord.id == 1).one.or_raise()).value is Priority.HIGH

    async def test_types_enum_stored_by_value(self, db: Ommi) -> None:
        """Enums are stored by value: conditions on the plain values match, int enums order numerically."""
        await db.add(*[ColorRecord(c, id=i + 1) for i, c in enumerate(Color)]).or_raise()
        await db.add(*[PriorityRecord(p, id=i + 1) for i, p in enumerate(Priority)]).or_raise()
        assert [r.value for r in await _rows(db.find(ColorRecord.value == "green"))] == [Color.GREEN]
        assert [r.value for r in await _rows(db.find(PriorityRecord.value == 5))] == [Priority.MEDIUM]
        # As text "5" > "10"; stored as numbers, MEDIUM (5) < HIGH (10).
        assert [
            r.value for r in await _rows(db.find(PriorityRecord.value < Priority.HIGH).sort(PriorityRecord.id))
        ] == [
            Priority.LOW,
            Priority.MEDIUM,
        ]

    async def test_types_every_type_in_one_row(self, db: Ommi) -> None:
        """A row holding every type round-trips; so does one holding only ``None``."""
        full = Everything(
            integer=-3,
            real=2.5,
            flag=False,
            text="ü",
            blob=b"\x00",
            amount=D("3.25"),
            uid=uuid.UUID(int=99),
            day=datetime.date(2020, 1, 1),
            moment=datetime.datetime(2020, 1, 1, 12, 30),
            instant=datetime.datetime(2020, 1, 1, 12, 30, tzinfo=UTC),
            color=Color.BLUE,
            priority=Priority.MEDIUM,
            id=1,
        )
        await db.add(full, Everything(id=2)).or_raise()
        stored = await _rows(db.find(Everything).sort(Everything.id))
        assert stored == [full, Everything(id=2)]
        assert stored[0].moment.tzinfo is None and stored[0].instant.utcoffset() is not None

    # -- validation --------------------------------------------------------

    @pytest.mark.parametrize("case_name", list(INVALID_VALUES))
    async def test_validation_rejects_bad_values(self, db: Ommi, case_name: str) -> None:
        """A value that does not fit its field fails with ``ValidationError`` and nothing is stored."""
        model, bad = INVALID_VALUES[case_name]
        good = VALID_VALUES[model]
        await db.add(model(good, id=1)).or_raise()
        result = await db.add(model(good, id=2), model(bad, id=3))
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, ValidationError)
        assert f"{model.__name__}.value" in str(result.exception)
        assert await _ids(db.find(model)) == [1]

    @pytest.mark.parametrize("case_name", ["str_in_int", "nul_in_text", "aware_in_naive_datetime", "float_nan"])
    async def test_validation_rejects_bad_values_in_updates(self, db: Ommi, case_name: str) -> None:
        """``update`` with a value that does not fit fails with ``ValidationError``; the row is unchanged."""
        model, bad = INVALID_VALUES[case_name]
        good = VALID_VALUES[model]
        await db.add(model(good, id=1)).or_raise()
        with pytest.raises(ValidationError):
            await db.find(model.id == 1).update(value=bad).or_raise()
        assert _same((await db.find(model.id == 1).one.or_raise()).value, good)

    @pytest.mark.parametrize("case_name", ["int_above_64_bits", "str_in_uuid", "naive_in_aware_datetime"])
    async def test_validation_rejects_bad_values_in_conditions(self, db: Ommi, case_name: str) -> None:
        """A condition comparing a field with a value it cannot hold raises ``ValidationError`` when built."""
        model, bad = INVALID_VALUES[case_name]
        with pytest.raises(ValidationError):
            _ = model.value == bad
        with pytest.raises(ValidationError):
            model.value.in_([bad])

    async def test_validation_save_of_a_bad_value_changes_nothing(self, db: Ommi) -> None:
        """``model.save()`` with an aware datetime in a naive field fails; the stored row keeps its value."""
        naive = datetime.datetime(2024, 1, 1, 12, 0)
        record = DateTimeRecord(naive, id=1)
        await db.add(record).or_raise()
        record.value = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=PLUS_5)
        with pytest.raises(ValidationError):
            await record.save().or_raise()
        assert (await db.find(DateTimeRecord.id == 1).one.or_raise()).value == naive
