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
* :data:`SYSTEM_TABLE_NAMES` / :data:`SYSTEM_FIELD_NAMES`: names that collide
  with the databases' and the drivers' own objects (catalog tables, system
  columns, the MongoDB driver's collections, ``_id``...). Each must work
  exactly or be refused with an :mod:`ommi.errors` exception when the model
  is defined or set up; never may a model read or write the system's object.
* :func:`hostile_model` and :func:`named_model`: models stored under such names.

The runners a driver's tests call (each returns its
:class:`~ommi_testkit.reliability.figures.Figures` and a list of problems,
empty when all is well):

* :func:`bad_value_workload`: every bad value through every entry point;
* :func:`long_value_workload`: a million characters, a MiB of bytes, 17 MiB;
* :func:`hostile_name_workload`: tables and columns under hostile names;
* :func:`system_name_workload`: models and fields under system names;
* :func:`empty_membership_workload`: ``in_([])`` and ``not_in([])``;
* :func:`incompatible_comparison_problems`, :func:`unsupported_annotation_problem`,
  :func:`invalid_name_problems`: refusals at definition, without a database.

::

    from ommi_testkit.reliability.bad_input import bad_value_workload

    async def test_bad_values():
        async with Ommi(MyDriver.connect(...)) as db:
            figures, problems = await bad_value_workload(db, backend="mydb", profile="quick")
        assert problems == []
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import gc
import keyword
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, make_dataclass
from typing import Annotated, Any

from ommi import ModelCollection, Ommi, StoreAs, ommi_model
from ommi.errors import DatabaseError, ModelDefinitionError, OmmiError, QueryError, ValidationError

from ommi_testkit.reliability.differential import snapshot
from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.models import Owner, Receipt, Sample, differential_models, workload_models
from ommi_testkit.reliability.quirks import columns_not_run

__all__ = [
    "BAD_VALUES",
    "HOSTILE_NAMES",
    "INCOMPATIBLE_COMPARISONS",
    "INVALID_NAMES",
    "SYSTEM_FIELD_NAMES",
    "SYSTEM_TABLE_NAMES",
    "UNSUPPORTED_ANNOTATIONS",
    "BadValue",
    "bad_value_workload",
    "empty_membership_workload",
    "fresh",
    "hostile_model",
    "hostile_name_workload",
    "incompatible_comparison_problems",
    "invalid_name_problems",
    "long_value_workload",
    "named_model",
    "system_name_workload",
    "unsupported_annotation_problem",
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
    # list[...] and dict[str, ...] are JSON fields; a dict with other keys is no JSON object.
    ("dict_int_keys", dict[int, str]),
    ("set", set[int]),
    ("frozenset", frozenset[str]),
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


SYSTEM_TABLE_NAMES: tuple[str, ...] = (
    "pg_am",
    "pg_class",
    "pg_stat_activity",
    "pg_type",
    "information_schema",
    "sqlite_master",
    "sqlite_schema",
    "sqlite_sequence",
    "sqlite_stat1",
    "_ommi_counters",
    "_ommi_schema",
    "system.profile",
    "select",
    "order",
    "_id",
    '"pg_class"',
    "`order`",
    "[select]",
    'Mixed"Case',
)
"""Model (table) names that collide with system catalogs, driver-owned tables, keywords; some quoted."""

SYSTEM_FIELD_NAMES: tuple[str, ...] = (
    "_id",
    "id_",
    "rowid",
    "oid",
    "_rowid_",
    "ctid",
    "xmin",
    "tableoid",
    "select",
    "order",
    "pg_class",
    "sqlite_master",
    "_ommi_schema",
    '"select"',
    "`order`",
    "$id",
)
"""Field (column) names that collide with system columns, ``_id``, keywords; some quoted.

A name that is a Python identifier becomes the dataclass field's own name;
any other is stored with ``StoreAs`` under a field called ``value``.
"""


def named_model(table: str, field: str, collection: ModelCollection) -> tuple[type, str]:
    """A model stored as ``table`` with an int key ``id`` and an optional text field stored as ``field``.

    Returns:
        ``(model, attribute)``: the attribute is ``field`` itself when it is a
        usable Python name, else ``value`` (stored as ``field`` with ``StoreAs``).

    Raises:
        ModelDefinitionError: Ommi refuses the name when the model is defined.
    """
    if field.isidentifier() and not keyword.iskeyword(field) and field != "id":
        cls = make_dataclass("Named", [("id", int), (field, str | None, None)])
        attribute = field
    else:
        cls = make_dataclass("Named", [("id", int), ("value", Annotated[str | None, StoreAs(field)], None)])
        attribute = "value"
    model: type = ommi_model(collection=collection, name=table)(cls)
    return model, attribute


# -- runners ------------------------------------------------------------------------


def _refusal(bad: BadValue, exc: BaseException | None, where: str) -> str | None:
    """A problem description, or None when ``exc`` is the clear refusal ``bad`` calls for."""
    if exc is None:
        return f"{bad!r}: {where} accepted {bad.value!r}"
    if not isinstance(exc, bad.error):
        return f"{bad!r}: {where} raised {type(exc).__name__}: {exc}, not {bad.error.__name__}"
    if f"Sample.{bad.field}" not in str(exc):
        return f"{bad!r}: {where}'s message does not name the field Sample.{bad.field}: {exc}"
    return None


async def _expect(bad: BadValue, where: str, action: Callable[[], Awaitable[Any]]) -> str | None:
    try:
        await action()
    except Exception as exc:
        return _refusal(bad, exc, where)
    return _refusal(bad, None, where)


def _expect_now(bad: BadValue, where: str, action: Callable[[], Any]) -> str | None:
    try:
        action()
    except Exception as exc:
        return _refusal(bad, exc, where)
    return _refusal(bad, None, where)


async def fresh(db: Ommi) -> None:
    """Create the differential tables afresh with one owner and two samples (the sentinel rows)."""
    await db.remove_models(differential_models)
    await db.use_models(differential_models)
    await db.add(Owner(id=1, name="sentinel", rank=1)).or_raise()
    await db.add(Sample(id=1, owner_id=1, number=5, text="keep"), Sample(id=2)).or_raise()


async def bad_value_workload(db: Ommi, *, backend: str, profile: str) -> tuple[Figures, list[str]]:
    """Every bad value through ``add`` (alone and with a valid row), ``update``, ``save`` and five conditions.

    Each must raise the catalogue's :mod:`ommi.errors` class naming the field,
    and the database must hold exactly what it held before. Nine checks per
    value (``figures.cases``).
    """
    figures = Figures("bad_input", backend, profile)
    problems: list[str] = []
    await fresh(db)
    before = await snapshot(db)
    for bad in BAD_VALUES:
        f = getattr(Sample, bad.field)
        attempts: list[str | None] = [
            await _expect(bad, "add", lambda bad=bad: db.add(Sample(id=90, **{bad.field: bad.value})).or_raise()),
            await _expect(
                bad,
                "add with a valid row",
                lambda bad=bad: db.add(Sample(id=91), Sample(id=92, **{bad.field: bad.value})).or_raise(),
            ),
            await _expect(bad, "update", lambda bad=bad: db.find(Sample).update(**{bad.field: bad.value}).or_raise()),
            await _expect(
                bad, "save", lambda bad=bad: db.save(Sample(id=1, owner_id=1, **{bad.field: bad.value})).or_raise()
            ),
        ]
        for label, build in (
            ("==", lambda f=f, bad=bad: f == bad.value),
            ("!=", lambda f=f, bad=bad: f != bad.value),
            ("<", lambda f=f, bad=bad: f < bad.value),
            ("in_", lambda f=f, bad=bad: f.in_([bad.value])),
            ("not_in", lambda f=f, bad=bad: f.not_in([bad.value])),
        ):
            attempts.append(_expect_now(bad, f"the condition {label}", build))
        problems += [a for a in attempts if a is not None]
        figures.cases += len(attempts)
        after = await snapshot(db)
        if after != before:
            problems.append(f"{bad!r}: the database changed: {after} != {before}")
        figures.rows_verified += sum(len(rows) for rows in after.values())
    await db.remove_models(differential_models)
    return figures, problems


async def long_value_workload(db: Ommi) -> list[str]:
    """A million characters of text and a MiB of bytes round-trip and are found by equality.

    17 MiB of bytes (beyond MongoDB's 16 MiB document limit) either round-trip
    or are refused with an :mod:`ommi.errors` exception, the database unchanged.
    """
    problems: list[str] = []
    text = "é中😀x" * 250_000
    blob = bytes(range(256)) * 4096
    await fresh(db)
    await db.add(Sample(id=10, text=text, blob=blob)).or_raise()
    stored = await db.find(Sample.id == 10).one.or_raise()
    if stored.text != text or stored.blob != blob:
        problems.append("a million characters of text or a MiB of bytes came back changed")
    if await db.find(Sample.text == text).count.or_raise() != 1:
        problems.append("the long text is not found by equality")
    before = await snapshot(db)
    huge = b"\x01" * (17 * 2**20)
    try:
        await db.add(Sample(id=11, blob=huge)).or_raise()
    except OmmiError:
        if await snapshot(db) != before:
            problems.append("17 MiB of bytes were refused, but the database changed")
    else:
        if (await db.find(Sample.id == 11).one.or_raise()).blob != huge:
            problems.append("17 MiB of bytes came back changed")
    await db.remove_models(differential_models)
    return problems


async def _round_trip(db: Ommi, model: Any, attribute: str) -> str | None:
    """Add, find by the field, update, delete and list rows of ``model``: None when every result is right."""
    field = getattr(model, attribute)
    await db.add(
        model(id=1, **{attribute: "a"}), model(id=2, **{attribute: "b'\""}), model(id=3, **{attribute: None})
    ).or_raise()
    found = [m.id async for m in db.find(field == "b'\"").all]
    updated = await db.find(field != None).update(**{attribute: "z"}).or_raise()  # noqa: E711
    deleted = await db.find(model.id == 1).delete.or_raise()
    rows = sorted([(m.id, getattr(m, attribute)) async for m in db.find(model).all])
    count = await db.find(model).count.or_raise()
    if (found, updated, deleted, rows, count) != ([2], 2, 1, [(2, "z"), (3, None)], 2):
        return f"wrong results {found} {updated} {deleted} {rows} {count}"
    return None


async def _named_case(
    db: Ommi, define: Callable[[ModelCollection], tuple[type, str]], label: str, figures: Figures, keep: list[Any]
) -> str | None:
    """Define, set up and round-trip one model; a refusal at definition or set-up is fine. A problem or None."""
    collection = ModelCollection("hostile")
    figures.cases += 1
    try:
        model, attribute = define(collection)
    except ModelDefinitionError as exc:
        figures.expected_errors += 1
        figures.notes.append(f"{label}: refused at definition: {exc}")
        return None
    except Exception as exc:
        return f"{label}: refused at definition with {type(exc).__name__} (not an ommi.errors error): {exc}"
    keep.append((model, collection))  # every model stays alive: these tests are about names, not lifetimes
    try:
        await db.use_models(collection)
    except OmmiError as exc:
        figures.expected_errors += 1
        figures.notes.append(f"{label}: refused at set-up: {type(exc).__name__}: {exc}")
        try:
            await db.remove_models(collection)
        except OmmiError as again:  # refused again: consistent, and nothing was created
            figures.notes.append(f"{label}: remove_models refused too: {type(again).__name__}: {again}")
        except Exception as again:
            return f"{label}: remove_models raised {type(again).__name__} (not an ommi.errors error): {again}"
        return None
    except Exception as exc:
        return f"{label}: set-up raised {type(exc).__name__} (not an ommi.errors error): {exc}"
    try:
        problem = await _round_trip(db, model, attribute)
    except Exception as exc:
        problem = f"created, then failed: {type(exc).__name__}: {exc}"
    dropped = await _drop(db, collection, label)
    return f"{label}: {problem}" if problem is not None else dropped


async def _drop(db: Ommi, collection: ModelCollection, label: str) -> str | None:
    """Drop ``collection``'s tables: None, or the problem.

    A deliberate refusal (an :mod:`ommi.errors` error that is not a
    :class:`~ommi.errors.DatabaseError`) is fine; a ``DatabaseError`` means a
    statement reached the database and was refused there, so the driver tried
    to drop an object that is not the model's table.
    """
    try:
        await db.remove_models(collection)
    except DatabaseError as exc:
        return f"{label}: remove_models reached the database, which refused: {type(exc).__name__}: {exc}"
    except OmmiError:
        return None
    except Exception as exc:
        return f"{label}: remove_models raised {type(exc).__name__} (not an ommi.errors error): {exc}"
    return None


async def hostile_name_workload(
    db: Ommi,
    *,
    backend: str,
    profile: str,
    names: tuple[str, ...] = HOSTILE_NAMES,
    skip_columns: Mapping[str, str] | None = None,
) -> tuple[Figures, list[str]]:
    """Tables and columns named with quotes, SQL, placeholders, dots, ``$``, unicode, 70 characters.

    Each either works exactly (create, add, find by the column, update,
    delete, drop) or is refused by ``use_models`` with an :mod:`ommi.errors`
    exception; either way the other tables keep their rows. ``skip_columns``
    names columns not to run, with the reason (a test server's defect); by
    default :func:`~ommi_testkit.reliability.quirks.columns_not_run` decides.
    """
    figures = Figures("hostile_names", backend, profile)
    problems: list[str] = []
    keep: list[Any] = []
    await fresh(db)
    if skip_columns is None:
        skip_columns = columns_not_run(db.driver, names)
    sentinel = await snapshot(db)
    for name in names:
        for table, column in ((f"h_{name}", "value"), ("h_column", name)):
            if skip_columns and column in skip_columns:
                figures.notes.append(f"column {column!r} not run: {skip_columns[column]}")
                continue
            label = f"{table!r}/{column!r}"
            problem = await _named_case(
                db, lambda c, t=table, k=column: (hostile_model(t, k, c), "value"), label, figures, keep
            )
            if problem is not None:
                problems.append(problem)
            if await snapshot(db) != sentinel:
                problems.append(f"{label}: other tables changed")
    await db.remove_models(differential_models)
    del keep
    gc.collect()
    return figures, problems


async def system_name_workload(
    db: Ommi,
    *,
    backend: str,
    profile: str,
    tables: tuple[str, ...] = SYSTEM_TABLE_NAMES,
    fields: tuple[str, ...] = SYSTEM_FIELD_NAMES,
    skip_fields: Mapping[str, str] | None = None,
) -> tuple[Figures, list[str]]:
    """Models named like system catalogs and driver tables, fields named like system columns.

    Each model either works exactly (create, add, find by the field, update,
    delete, drop, all on its own table) or is refused with an
    :mod:`ommi.errors` exception when it is defined or set up; a failure after
    a successful set-up is a problem (the model reached something that is not
    its table). After each one the other tables hold what they held, and
    generated keys still work (a driver keeping its key counters in a table
    of its own must not have lost them). ``skip_fields`` names fields not to
    run, with the reason (by default
    :func:`~ommi_testkit.reliability.quirks.columns_not_run` decides).
    """
    figures = Figures("system_names", backend, profile)
    problems: list[str] = []
    keep: list[Any] = []
    await fresh(db)
    if skip_fields is None:
        skip_fields = columns_not_run(db.driver, fields)
    for field in skip_fields:
        figures.notes.append(f"field {field!r} not run: {skip_fields[field]}")
    await db.remove_models(workload_models)
    await db.use_models(workload_models)
    sentinel = await snapshot(db)
    generated: list[int] = []
    cases = [(f"table {t!r}", t, "value") for t in tables] + [
        (f"field {f!r}", "h_system_field", f) for f in fields if f not in skip_fields
    ]
    for number, (label, table, field) in enumerate(cases):
        problem = await _named_case(db, lambda c, t=table, f=field: named_model(t, f, c), label, figures, keep)
        if problem is not None:
            problems.append(problem)
        if await snapshot(db) != sentinel:
            problems.append(f"{label}: other tables changed")
        try:
            receipt = await db.add(Receipt(token=f"after-{number}", worker=number)).or_raise()
            generated.append(receipt.id)
        except Exception as exc:
            problems.append(f"{label}: a generated-key add failed afterwards: {type(exc).__name__}: {exc}")
    stored = sorted([r.id async for r in db.find(Receipt).all])
    if len(set(generated)) != len(generated) or stored != sorted(generated):
        problems.append(f"generated keys went wrong: acknowledged {generated}, stored {stored}")
    figures.rows_verified += len(stored)
    await db.remove_models(workload_models)
    await db.remove_models(differential_models)
    del keep
    gc.collect()
    return figures, problems


async def empty_membership_workload(db: Ommi) -> list[str]:
    """``in_([])`` is a valid condition matching no row; ``not_in([])`` matches every row, NULLs included."""
    await fresh(db)
    results = {
        "in_([]) count": (await db.find(Sample.number.in_([])).count.or_raise(), 0),
        "not_in([]) count": (await db.find(Sample.number.not_in([])).count.or_raise(), 2),
        "in_([]) Or": (await db.find(Sample.number.in_([]).Or(Sample.id == 2)).count.or_raise(), 1),
        "in_([]) update": (await db.find(Sample.number.in_([])).update(text="x").or_raise(), 0),
        "in_([]) delete": (await db.find(Sample.number.in_([])).delete.or_raise(), 0),
        "not_in([]) rows": ([s.id async for s in db.find(Sample.text.not_in([])).sort(Sample.id).all], [1, 2]),
    }
    await db.remove_models(differential_models)
    return [f"{label}: {got!r}, expected {want!r}" for label, (got, want) in results.items() if got != want]


INCOMPATIBLE_COMPARISONS: tuple[tuple[str, Callable[[], Any], type[OmmiError]], ...] = (
    ("int == str field", lambda: Sample.number == Sample.text, QueryError),
    ("int < float field", lambda: Sample.number < Sample.real, QueryError),
    ("date == datetime field", lambda: Sample.day == Sample.moment, QueryError),
    ("text == related int field", lambda: Sample.text == Owner.rank, QueryError),
    ("contains on an int field", lambda: Sample.number.contains("1"), QueryError),
    ("startswith an int", lambda: Sample.text.startswith(1), ValidationError),
    ("ordering with None", lambda: Sample.number < None, QueryError),
    ("in_ of a string", lambda: Sample.text.in_("abc"), QueryError),
    ("in_ holding None", lambda: Sample.number.in_([1, None]), QueryError),
    ("truth value of a condition", lambda: bool(Sample.number == 1), QueryError),
)
"""Misused conditions, each refused with the ``ommi.errors`` class beside it when it is built."""


def incompatible_comparison_problems() -> list[str]:
    """Every :data:`INCOMPATIBLE_COMPARISONS` case that was not refused with its error class."""
    problems = []
    for label, build, error in INCOMPATIBLE_COMPARISONS:
        try:
            build()
        except error:
            continue
        except Exception as exc:
            problems.append(f"{label}: {type(exc).__name__}: {exc}, not {error.__name__}")
        else:
            problems.append(f"{label}: accepted")
    return problems


def unsupported_annotation_problem(annotation: Any) -> str | None:
    """None when ``@ommi_model`` refuses a field of ``annotation`` with ModelDefinitionError naming it."""
    cls = make_dataclass("Unsupported", [("id", int), ("odd", annotation)])
    try:
        ommi_model(collection=ModelCollection("unsupported"))(cls)
    except ModelDefinitionError as exc:
        return None if "Unsupported.odd" in str(exc) else f"{annotation!r}: the message does not name the field: {exc}"
    except Exception as exc:
        return f"{annotation!r}: {type(exc).__name__}: {exc}, not ModelDefinitionError"
    return f"{annotation!r}: accepted"


def invalid_name_problems(name: Any) -> list[str]:
    """Problems with refusing ``name`` as a model name and as a ``StoreAs`` name (empty when both refuse)."""
    problems = []
    try:
        ommi_model(collection=ModelCollection("invalid"), name=name)(make_dataclass("Named", [("id", int)]))
    except ModelDefinitionError:
        pass
    except Exception as exc:
        problems.append(f"model name {name!r}: {type(exc).__name__}: {exc}, not ModelDefinitionError")
    else:
        problems.append(f"model name {name!r}: accepted")
    cls = make_dataclass("Column", [("id", int), ("value", Annotated[int, StoreAs(name)])])
    try:
        ommi_model(collection=ModelCollection("invalid"))(cls)
    except ModelDefinitionError as exc:
        if "Column.value" not in str(exc):
            problems.append(f"StoreAs({name!r}): the message does not name Column.value: {exc}")
    except Exception as exc:
        problems.append(f"StoreAs({name!r}): {type(exc).__name__}: {exc}, not ModelDefinitionError")
    else:
        problems.append(f"StoreAs({name!r}): accepted")
    gc.collect()
    return problems
