"""Bad input: refused with a clear ommi.errors exception before anything is written, on every backend.

Hostile names must work (quoted, never spliced) or be refused before
anything is created; very long values must round-trip (or be refused
cleanly where the database has a size limit); ``in_([])`` is not an error
but matches nothing, and ``not_in([])`` matches everything.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from dataclasses import make_dataclass
from typing import Annotated, Any

import pytest
from ommi import ModelCollection, Ommi, StoreAs, ommi_model
from ommi.errors import ModelDefinitionError, OmmiError, QueryError, ValidationError
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.bad_input import (
    BAD_VALUES,
    HOSTILE_NAMES,
    INVALID_NAMES,
    UNSUPPORTED_ANNOTATIONS,
    BadValue,
    hostile_model,
)
from ommi_testkit.reliability.differential import snapshot
from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.models import Owner, Sample, differential_models
from ommi_testkit.reliability.quirks import is_nx_27017

BACKENDS = ["reference", "sqlite", "postgresql", "mongodb"]

NX_27017_COLUMNS = {
    'quote"inside': "nx-27017 cannot filter on a field whose name holds a double quote",
    "back\\slash": "nx-27017 matches nothing on a field whose name holds a backslash",
    "unicodé中😀": "nx-27017 matches nothing on a field whose name is not ASCII",
}
"""Column names nx-27017 (the CI stand-in for MongoDB) mishandles; a real MongoDB runs them."""


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


async def _fresh(db: Ommi) -> None:
    await db.remove_models(differential_models)
    await db.use_models(differential_models)
    await db.add(Owner(id=1, name="sentinel", rank=1)).or_raise()
    await db.add(Sample(id=1, owner_id=1, number=5, text="keep"), Sample(id=2)).or_raise()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_values_are_refused_before_anything_is_written(backend: Any, profile: Profile) -> None:
    """Every bad value, through add (alone and with a valid row), update, save and every condition form.

    Each raises the catalogue's ``ommi.errors`` class naming the field, and
    the database holds exactly what it held before.
    """
    figures = Figures("bad_input", backend.name, profile.name)
    problems: list[str] = []
    async with Ommi(backend.make()) as db:
        await _fresh(db)
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
                await _expect(
                    bad, "update", lambda bad=bad: db.find(Sample).update(**{bad.field: bad.value}).or_raise()
                ),
                await _expect(
                    bad,
                    "save",
                    lambda bad=bad: db.save(Sample(id=1, owner_id=1, **{bad.field: bad.value})).or_raise(),
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
    record(figures)
    assert problems == [], "\n".join(problems)
    assert figures.cases == len(BAD_VALUES) * 9


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_long_text_and_bytes_round_trip(backend: Any) -> None:
    """A million characters of text and a MiB of bytes round-trip exactly and can be found by equality.

    17 MiB of bytes (beyond MongoDB's 16 MiB document limit) either round-trips
    or is refused with an ommi.errors exception, the database unchanged.
    """
    text = "é中😀x" * 250_000
    blob = bytes(range(256)) * 4096
    async with Ommi(backend.make()) as db:
        await _fresh(db)
        await db.add(Sample(id=10, text=text, blob=blob)).or_raise()
        stored = await db.find(Sample.id == 10).one.or_raise()
        assert stored.text == text and stored.blob == blob
        assert await db.find(Sample.text == text).count.or_raise() == 1
        before = await snapshot(db)
        huge = b"\x01" * (17 * 2**20)
        try:
            await db.add(Sample(id=11, blob=huge)).or_raise()
        except OmmiError:
            assert await snapshot(db) == before
        else:
            assert (await db.find(Sample.id == 11).one.or_raise()).blob == huge
        await db.remove_models(differential_models)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_hostile_names_work_or_are_refused_cleanly(backend: Any, profile: Profile) -> None:
    """Tables and columns named with quotes, SQL, placeholders, dots, ``$``, unicode, 70 characters.

    Each either works exactly (create, add, find by the column, update, delete,
    drop) or is refused by ``use_models`` with an ommi.errors exception; either
    way the other tables keep their rows.
    """
    figures = Figures("hostile_names", backend.name, profile.name)
    problems: list[str] = []
    keep: list[Any] = []  # every model stays alive: this test is about names, not object lifetimes
    async with Ommi(backend.make()) as db:
        await _fresh(db)
        sentinel = await snapshot(db)
        nx = is_nx_27017(db.driver)
        for name in HOSTILE_NAMES:
            for table, column in ((f"h_{name}", "value"), ("h_column", name)):
                if nx and column in NX_27017_COLUMNS:
                    figures.notes.append(f"column {column!r} not run: {NX_27017_COLUMNS[column]}")
                    continue
                collection = ModelCollection("hostile")
                model = hostile_model(table, column, collection)
                keep.append((model, collection))
                figures.cases += 1
                try:
                    await db.remove_models(collection)
                    await db.use_models(collection)
                except OmmiError:
                    figures.expected_errors += 1
                    if await snapshot(db) != sentinel:
                        problems.append(f"{table!r}/{column!r}: refused, but other tables changed")
                    continue
                try:
                    await db.add(model(id=1, value="a"), model(id=2, value="b'\""), model(id=3)).or_raise()
                    found = [m.id async for m in db.find(model.value == "b'\"").all]
                    updated = await db.find(model.value != None).update(value="z").or_raise()  # noqa: E711
                    deleted = await db.find(model.id == 1).delete.or_raise()
                    rows = sorted([(m.id, m.value) async for m in db.find(model).all])
                    if (found, updated, deleted, rows) != ([2], 2, 1, [(2, "z"), (3, None)]):
                        problems.append(f"{table!r}/{column!r}: wrong results {found} {updated} {deleted} {rows}")
                except Exception as exc:
                    problems.append(f"{table!r}/{column!r}: created, then failed: {type(exc).__name__}: {exc}")
                finally:
                    await db.remove_models(collection)
                if await snapshot(db) != sentinel:
                    problems.append(f"{table!r}/{column!r}: other tables changed")
        await db.remove_models(differential_models)
    record(figures)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_empty_in_matches_nothing_and_empty_not_in_everything(backend: Any) -> None:
    """``in_([])`` is a valid condition matching no row; ``not_in([])`` matches every row, NULLs included."""
    async with Ommi(backend.make()) as db:
        await _fresh(db)
        assert await db.find(Sample.number.in_([])).count.or_raise() == 0
        assert await db.find(Sample.number.not_in([])).count.or_raise() == 2
        assert await db.find(Sample.number.in_([]).Or(Sample.id == 2)).count.or_raise() == 1
        assert await db.find(Sample.number.in_([])).update(text="x").or_raise() == 0
        assert await db.find(Sample.number.in_([])).delete.or_raise() == 0
        assert [s.id async for s in db.find(Sample.text.not_in([])).sort(Sample.id).all] == [1, 2]
        await db.remove_models(differential_models)


def test_bad_input_incompatible_comparisons_are_query_errors() -> None:
    """Comparing fields of different storage types, text matches on non-text fields and other misuse."""
    cases: list[tuple[str, Callable[[], Any], type[OmmiError]]] = [
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
    ]
    problems = []
    for label, build, error in cases:
        try:
            build()
        except error:
            continue
        except Exception as exc:
            problems.append(f"{label}: {type(exc).__name__}: {exc}, not {error.__name__}")
        else:
            problems.append(f"{label}: accepted")
    assert problems == []


@pytest.mark.parametrize(("label", "annotation"), UNSUPPORTED_ANNOTATIONS, ids=[a for a, _ in UNSUPPORTED_ANNOTATIONS])
def test_bad_input_unsupported_field_types_are_refused(label: str, annotation: Any) -> None:
    """``@ommi_model`` refuses a field no codec serves, naming the model and the field."""
    cls = make_dataclass("Unsupported", [("id", int), ("odd", annotation)])
    with pytest.raises(ModelDefinitionError, match=r"Unsupported\.odd"):
        ommi_model(collection=ModelCollection("unsupported"))(cls)


@pytest.mark.parametrize("name", INVALID_NAMES, ids=repr)
def test_bad_input_invalid_names_are_refused(name: Any) -> None:
    """Empty names, names with NUL and names that are not text: as a model name and as a StoreAs name."""
    with pytest.raises(ModelDefinitionError):
        ommi_model(collection=ModelCollection("invalid"), name=name)(make_dataclass("Named", [("id", int)]))
    cls = make_dataclass("Column", [("id", int), ("value", Annotated[int, StoreAs(name)])])
    with pytest.raises(ModelDefinitionError, match=r"Column\.value"):
        ommi_model(collection=ModelCollection("invalid"))(cls)
    gc.collect()
