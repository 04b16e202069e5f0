"""Conformance tests: JSON fields (``dict[str, Any]`` / ``list[...]``) store, round-trip and are queried by path.

A JSON value round-trips *equal* and *typed*: ints stay ints, floats stay
floats (``1.0`` too), nesting and ``None`` inside containers are kept; only
the order of an object's keys may change (PostgreSQL's ``jsonb`` sorts them).
Path comparisons are type-strict (``meta["n"] > 3`` never holds for ``"4"``,
``== 1`` never for ``true``), a missing path reads as ``null``, ``!=`` holds for
NULL, and MongoDB's implicit array traversal never leaks (``meta["plan"] ==
"pro"`` does not match ``{"plan": ["pro"]}``). Bad values are refused before
any I/O and change nothing.
"""

# Model classes double as query operands (``JsonDoc.meta["plan"] == "pro"``): a type
# checker sees comparisons of plain values.
# mypy: disable-error-code="arg-type, union-attr, comparison-overlap, misc, index, call-overload"

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import ommi
import pytest
import pytest_asyncio
from ommi import Key, ModelCollection, Ommi, Unique, migrations, ommi_model
from ommi.errors import ModelDefinitionError, QueryError, SchemaMismatchError, UnsupportedFeature, ValidationError
from ommi.migrations.history import history_models
from ommi.migrations.printer import render_models
from ommi.models import get_schema
from ommi.models.types import INT64_MAX, INT64_MIN, MAX_JSON_DEPTH, StorageType

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_json import (
    JsonDoc,
    JsonDriftObject,
    JsonDriftText,
    JsonNoteV1,
    JsonNoteV2,
    JsonNoteV3,
    json_drift_models,
    json_mig_v1,
    json_mig_v2,
    json_mig_v3,
    json_models,
)


def typed(value: Any) -> Any:
    """``value`` with the type of every scalar beside it, so ``1 == 1.0`` and ``True == 1`` do not hide a change."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


async def _names(db: Ommi, *condition: Any) -> list[str]:
    return sorted(doc.name for doc in await fetch(db.find(JsonDoc, *condition)))


EDGE: dict[str, Any] = {
    "int": 1,
    "float_one": 1.0,
    "zero": 0.0,
    "small": 5e-324,
    "big_float": 1.5e300,
    "exp": 1e20,
    "max": INT64_MAX,
    "min": INT64_MIN,
    "true": True,
    "false": False,
    "null": None,
    "text": "plain",
    "unicode": "h\u00e9llo \u4e16\u754c \U0001f600",
    "quote": 'say "hi" \\ back',
    "empty_text": "",
    "empty_dict": {},
    "empty_list": [],
    "nested": {"a": {"b": [1, [2.5, None], {"c": "d"}]}},
    "mixed": [None, True, 0, 0.5, "x", [], {}],
    "ke\u00ffs with spaces": 1,
}


_LABELS_DEFAULT = {"p": "50%", "q": "it's", "l": [1, 2.0, None]}

_LABELS_STEP = f"""
from ommi.migrations import AddField, FieldSpec

id = "0003_labels"
parent = "{{parent}}"

operations = [AddField("tk_json_note", FieldSpec("labels", "json", default={_LABELS_DEFAULT!r}))]
"""


class JsonTables(SuiteBase):
    """The ``json_db`` fixture: ``db`` with the JSON models' tables (the suites using them inherit it)."""

    @pytest_asyncio.fixture
    async def json_db(self, db: Ommi) -> AsyncIterator[Ommi]:
        """``db`` with the JSON suite's tables created, dropped again afterwards."""
        await db.remove_models(json_models)
        await db.use_models(json_models)
        try:
            yield db
        finally:
            await db.remove_models(json_models)


class JsonFieldTests(JsonTables):
    """JSON fields: exact round trips, refusals before I/O, type-strict path conditions and ``has``."""

    async def _docs(self, db: Ommi, *docs: tuple[str, Any]) -> None:
        await db.add(*(JsonDoc(name, meta=meta) for name, meta in docs)).or_raise()

    # -- round trips ----------------------------------------------------------------

    @requires("json_fields")
    async def test_json_round_trip_keeps_values_and_types(self, json_db: Ommi) -> None:
        """Nesting, 64-bit int bounds, ``1.0``, unicode, empty containers and nulls read back equal and typed."""
        tags = ["x", 1, 1.0, True, None, [1, [2]], {"k": "v"}]
        await json_db.add(JsonDoc("edge", meta=EDGE, tags=tags, extra={"deep": {"er": [[[]]]}})).or_raise()
        await json_db.add(JsonDoc("empty", meta={}, tags=[])).or_raise()
        edge, empty = sorted(await fetch(json_db.find(JsonDoc)), key=lambda d: d.name)
        assert typed(edge.meta) == typed(EDGE)
        assert typed(edge.tags) == typed(tags)
        assert edge.extra == {"deep": {"er": [[[]]]}}
        assert (empty.meta, empty.tags, empty.extra) == ({}, [], None)

    @requires("json_fields")
    async def test_json_values_are_not_shared_with_the_instance(self, json_db: Ommi) -> None:
        """Changing an instance's dict after ``add`` or after a read changes nothing stored."""
        doc = JsonDoc("a", meta={"n": 1, "l": [1]})
        await json_db.add(doc).or_raise()
        doc.meta["n"] = 2
        doc.meta["l"].append(2)
        read = await json_db.find(JsonDoc.name == "a").one.or_raise()
        assert read.meta == {"n": 1, "l": [1]}
        read.meta["l"].append(3)
        again = await json_db.find(JsonDoc.name == "a").one.or_raise()
        assert again.meta == {"n": 1, "l": [1]}

    @requires("json_fields")
    async def test_json_update_replaces_the_value(self, json_db: Ommi) -> None:
        """``update(meta=...)`` stores the new value whole; a path condition picks the rows."""
        await self._docs(json_db, ("a", {"plan": "free", "n": 1}), ("b", {"plan": "pro", "n": 2}))
        new = {"plan": "team", "seats": [1, 2.0]}
        assert await json_db.find(JsonDoc.meta["plan"] == "pro").update(meta=new).or_raise() == 1
        docs = {d.name: d.meta for d in await fetch(json_db.find(JsonDoc))}
        assert typed(docs["b"]) == typed({"plan": "team", "seats": [1, 2.0]})
        assert docs["a"] == {"plan": "free", "n": 1}
        await json_db.find(JsonDoc.name == "a").update(extra={"set": True}).or_raise()
        assert (await json_db.find(JsonDoc.name == "a").one.or_raise()).extra == {"set": True}

    @requires("json_fields", "upsert")
    async def test_json_upsert_replaces_and_inserts_json_values(self, json_db: Ommi) -> None:
        """``upsert`` by key replaces a stored row's JSON values whole and inserts new rows with theirs."""
        first = JsonDoc("a", meta={"v": 1, "keep": "no"}, tags=["x"])
        await json_db.add(first).or_raise()
        replaced = JsonDoc("a", meta={"v": 2.0, "deep": {"l": [None]}}, tags=[], extra={"e": True}, id=first.id)
        await json_db.upsert(replaced, JsonDoc("b", meta={"v": 3}, tags=[1])).or_raise()
        docs = {d.name: d for d in await fetch(json_db.find(JsonDoc))}
        assert typed(docs["a"].meta) == typed({"v": 2.0, "deep": {"l": [None]}})
        assert (docs["a"].tags, docs["a"].extra) == ([], {"e": True})
        assert (docs["b"].meta, docs["b"].tags) == ({"v": 3}, [1])
        assert await _names(json_db, JsonDoc.meta["v"] >= 2) == ["a", "b"]

    @requires("json_fields", "update_expressions")
    async def test_json_update_copies_a_json_field_and_refuses_arithmetic(self, json_db: Ommi) -> None:
        """``update(extra=JsonDoc.meta)`` copies the value; arithmetic on a JSON field is refused before any write."""
        await self._docs(json_db, ("a", {"k": [1, 2.0, None]}))
        assert await json_db.find(JsonDoc).update(extra=JsonDoc.meta).or_raise() == 1
        doc = await json_db.find(JsonDoc).one.or_raise()
        assert typed(doc.extra) == typed({"k": [1, 2.0, None]})
        with pytest.raises((ValidationError, QueryError)):
            await json_db.find(JsonDoc).update(meta=ommi.field(JsonDoc.meta) + 1).or_raise()
        with pytest.raises((ValidationError, QueryError)):
            await json_db.find(JsonDoc).update(meta=JsonDoc.extra).or_raise()  # optional into required
        assert typed((await json_db.find(JsonDoc).one.or_raise()).meta) == typed({"k": [1, 2.0, None]})

    # -- refusals -------------------------------------------------------------------

    @requires("json_fields")
    async def test_json_refuses_values_no_backend_round_trips(self, json_db: Ommi) -> None:
        """NaN, infinities, non-str keys, tuples, sets, NUL, lone surrogates, ``$``/``.`` keys, huge ints, deep values.

        A value nested exactly ``MAX_JSON_DEPTH`` levels deep is stored; one level more is refused.
        """
        deep: Any = []
        for _ in range(MAX_JSON_DEPTH):
            deep = [deep]
        very_deep: Any = {}
        for _ in range(100_000):  # no RecursionError: the check walks with a stack
            very_deep = {"a": very_deep}
        bad: list[Any] = [
            {"a": float("nan")},
            {"a": [float("inf")]},
            {1: "int key"},
            {"a": (1, 2)},
            {"a": {1, 2}},
            {"a": "nul\x00"},
            {"nul\x00": 1},
            {"a": "\ud800"},
            {"$set": 1},
            {"a.b": 1},
            {"a": 2**63},
            {"a": INT64_MIN - 1},
            {"a": b"bytes"},
            {"deep": deep},
            very_deep,
        ]
        for value in bad:
            with pytest.raises(ValidationError):
                await json_db.add(JsonDoc("bad", meta=value)).or_raise()
        with pytest.raises(ValidationError):
            await json_db.add(JsonDoc("bad", meta=[1])).or_raise()
        with pytest.raises(ValidationError):
            await json_db.add(JsonDoc("bad", tags=(1, 2))).or_raise()
        assert await json_db.find(JsonDoc).count.or_raise() == 0
        at_limit: Any = {}
        for _ in range(MAX_JSON_DEPTH - 1):
            at_limit = {"a": at_limit}
        await json_db.add(JsonDoc("at_limit", meta=at_limit)).or_raise()
        assert (await json_db.find(JsonDoc).one.or_raise()).meta == at_limit

    @requires("json_fields")
    async def test_json_refuses_malformed_queries(self, json_db: Ommi) -> None:
        """Sorting by a JSON field, comparing it whole, containers as operands and bad path steps are QueryErrors."""
        with pytest.raises(QueryError):
            json_db.find(JsonDoc).sort(ommi.asc(JsonDoc.meta))
        with pytest.raises(QueryError):
            _ = JsonDoc.meta["a"].desc
        with pytest.raises(QueryError):
            _ = JsonDoc.meta == {"a": 1}
        with pytest.raises(QueryError):
            _ = JsonDoc.meta["a"] == [1]
        with pytest.raises(QueryError):
            _ = JsonDoc.meta["a"] > True
        with pytest.raises(QueryError):
            _ = JsonDoc.tags[-1] == 1
        for key in ('say "hi"', "back\\slash", "tab\t"):
            with pytest.raises(QueryError):
                _ = JsonDoc.meta[key] == 1
        with pytest.raises(QueryError):
            _ = JsonDoc.name["a"]
        with pytest.raises(QueryError):
            ommi.field(JsonDoc.name).has("a")
        with pytest.raises(QueryError):
            ommi.field(JsonDoc.tags).has(None)
        with pytest.raises(ValidationError):
            _ = JsonDoc.meta["n"] > float("nan")

    async def test_json_fields_cannot_be_keys_or_constraints(self) -> None:
        """A JSON field marked Key, Unique or Index, or a ``dict`` with non-str keys, is a ModelDefinitionError."""
        with pytest.raises(ModelDefinitionError, match="JSON field"):

            @ommi_model(collection=ModelCollection("ommi_testkit_json_bad_key"))
            @dataclasses.dataclass
            class BadKey:
                meta: Annotated[dict[str, Any], Key]

        with pytest.raises(ModelDefinitionError, match="JSON field"):

            @ommi_model(collection=ModelCollection("ommi_testkit_json_bad_unique"))
            @dataclasses.dataclass
            class BadUnique:
                meta: Annotated[dict[str, Any], Unique]
                id: int | None = None

        with pytest.raises(ModelDefinitionError, match="str keys"):

            @ommi_model(collection=ModelCollection("ommi_testkit_json_bad_keys"))
            @dataclasses.dataclass
            class BadKeys:
                meta: dict[int, Any]
                id: int | None = None

    @requires("json_fields")
    async def test_json_absent_capability_is_refused_before_io(self, json_db: Ommi) -> None:
        """A driver declaring ``json_fields`` absent refuses JSON models and path queries with UnsupportedFeature."""
        await self._docs(json_db, ("a", {"n": 1}))
        driver = json_db.driver
        saved = driver.capabilities
        driver.capabilities = type(saved)(**{**saved.as_dict(), "json_fields": False})
        try:
            with pytest.raises(UnsupportedFeature, match="json_fields"):
                await json_db.use_models(json_models)
            with pytest.raises(UnsupportedFeature, match="json_fields"):
                await json_db.find(JsonDoc, JsonDoc.meta["n"] == 1).count.or_raise()
            with pytest.raises(UnsupportedFeature, match="json_fields"):
                await json_db.find(JsonDoc, ommi.field(JsonDoc.tags).has(1)).delete().or_raise()
        finally:
            driver.capabilities = saved
        assert await json_db.find(JsonDoc, JsonDoc.meta["n"] == 1).count.or_raise() == 1

    # -- path conditions ----------------------------------------------------------------

    @requires("json_fields")
    async def test_json_path_equality_is_type_strict(self, json_db: Ommi) -> None:
        """``== 1`` matches 1 and 1.0, never ``true`` or ``"1"``; ``== True`` only ``true``; text only text."""
        await self._docs(
            json_db,
            ("int", {"v": 1}),
            ("float", {"v": 1.0}),
            ("bool", {"v": True}),
            ("text", {"v": "1"}),
            ("zero", {"v": 0}),
            ("false", {"v": False}),
            ("null", {"v": None}),
            ("missing", {}),
        )
        assert await _names(json_db, JsonDoc.meta["v"] == 1) == ["float", "int"]
        assert await _names(json_db, JsonDoc.meta["v"] == 1.0) == ["float", "int"]
        assert await _names(json_db, JsonDoc.meta["v"] == True) == ["bool"]  # noqa: E712
        assert await _names(json_db, JsonDoc.meta["v"] == False) == ["false"]  # noqa: E712
        assert await _names(json_db, JsonDoc.meta["v"] == 0) == ["zero"]
        assert await _names(json_db, JsonDoc.meta["v"] == "1") == ["text"]
        assert await _names(json_db, JsonDoc.meta["v"] != 1) == ["bool", "false", "missing", "null", "text", "zero"]

    @requires("json_fields")
    async def test_json_path_ordering_compares_within_a_kind(self, json_db: Ommi) -> None:
        """Numbers order numerically (ints with floats), text by code point; other kinds never match."""
        await self._docs(
            json_db,
            ("two", {"n": 2}),
            ("three", {"n": 3}),
            ("three_f", {"n": 3.0}),
            ("four_half", {"n": 4.5}),
            ("big", {"n": INT64_MAX}),
            ("text4", {"n": "4"}),
            ("true", {"n": True}),
            ("null", {"n": None}),
            ("list", {"n": [5]}),
            ("obj", {"n": {"x": 5}}),
            ("missing", {}),
        )
        assert await _names(json_db, JsonDoc.meta["n"] > 3) == ["big", "four_half"]
        assert await _names(json_db, JsonDoc.meta["n"] >= 3) == ["big", "four_half", "three", "three_f"]
        assert await _names(json_db, JsonDoc.meta["n"] < 3.5) == ["three", "three_f", "two"]
        assert await _names(json_db, JsonDoc.meta["n"] <= 2) == ["two"]
        assert await _names(json_db, JsonDoc.meta["n"] > "3") == ["text4"]
        assert await _names(json_db, JsonDoc.meta["n"] < "") == []
        await self._docs(json_db, ("upper", {"s": "Z"}), ("lower", {"s": "a"}), ("accent", {"s": "\u00e9"}))
        assert await _names(json_db, JsonDoc.meta["s"] > "Z") == ["accent", "lower"]
        assert await _names(json_db, JsonDoc.meta["s"] < "a") == ["upper"]

    @requires("json_fields")
    async def test_json_path_none_means_missing_or_null(self, json_db: Ommi) -> None:
        """``== None`` holds for a missing path, JSON ``null`` and a NULL field; ``!= None`` for the rest."""
        await json_db.add(
            JsonDoc("null", extra={"v": None}),
            JsonDoc("missing", extra={}),
            JsonDoc("field_null", extra=None),
            JsonDoc("value", extra={"v": 0}),
            JsonDoc("false", extra={"v": False}),
            JsonDoc("empty", extra={"v": []}),
        ).or_raise()
        assert await _names(json_db, JsonDoc.extra["v"] == None) == ["field_null", "missing", "null"]  # noqa: E711
        assert await _names(json_db, JsonDoc.extra["v"] != None) == ["empty", "false", "value"]  # noqa: E711
        assert await _names(json_db, JsonDoc.extra["v"] != 0) == ["empty", "false", "field_null", "missing", "null"]
        assert await _names(json_db, JsonDoc.extra == None) == ["field_null"]  # noqa: E711
        assert await json_db.find(JsonDoc.extra["v"] == None).count.or_raise() == 3  # noqa: E711

    @requires("json_fields")
    async def test_json_nested_and_index_paths(self, json_db: Ommi) -> None:
        """``meta["a"]["b"]`` reads nested objects; an int step indexes arrays only, never a key ``"0"``."""
        await self._docs(
            json_db,
            ("nested", {"a": {"b": 1}, "l": [10, 20]}),
            ("key_zero", {"a": {"0": 1}, "l": {"1": 20}}),
            ("short", {"a": {"b": 2}, "l": [10]}),
            ("scalar", {"a": "b", "l": "20"}),
        )
        assert await _names(json_db, JsonDoc.meta["a"]["b"] == 1) == ["nested"]
        assert await _names(json_db, JsonDoc.meta["a"]["b"] >= 1) == ["nested", "short"]
        assert await _names(json_db, JsonDoc.meta["l"][1] == 20) == ["nested"]
        assert await _names(json_db, JsonDoc.meta["l"][0] == 10) == ["nested", "short"]
        assert await _names(json_db, JsonDoc.meta["a"][0] == 1) == []
        # An index on a scalar is missing (PostgreSQL's '1'::jsonb -> 0 is 1: a regression found by the differential).
        assert await _names(json_db, JsonDoc.meta["a"]["b"][0] == 1) == []
        assert await _names(json_db, JsonDoc.meta["a"]["b"][0] == None) == ["key_zero", "nested", "scalar", "short"]  # noqa: E711
        assert await _names(json_db, JsonDoc.meta["l"][5] == None) == ["key_zero", "nested", "scalar", "short"]  # noqa: E711
        assert await _names(json_db, JsonDoc.meta["a"]["b"]["c"] == None) == [  # noqa: E711
            "key_zero",
            "nested",
            "scalar",
            "short",
        ]

    @requires("json_fields")
    async def test_json_paths_name_any_storable_key(self, json_db: Ommi) -> None:
        """Keys with spaces, brackets, ``*``, quotes, unicode, SQL words, a digit string or empty are read literally."""
        keys = ["a b", "x[0]", "star*", "\u00e9\U0001f600", "select", "0", "", "not$first", "'quote"]
        meta = {key: i for i, key in enumerate(keys)}
        await self._docs(json_db, ("weird", meta), ("nested", {"x": {key: "v" for key in keys}}))
        for i, key in enumerate(keys):
            assert await _names(json_db, JsonDoc.meta[key] == i) == ["weird"], key
            assert await _names(json_db, JsonDoc.meta["x"][key] == "v") == ["nested"], key
        assert await _names(json_db, JsonDoc.meta["x[0]"] == None) == ["nested"]  # noqa: E711
        (weird,) = [d for d in await fetch(json_db.find(JsonDoc)) if d.name == "weird"]
        assert weird.meta == meta

    @requires("json_fields")
    async def test_json_path_never_traverses_arrays_implicitly(self, json_db: Ommi) -> None:
        """A path whose value is an array does not match one of its elements (MongoDB's ``{"a.b": x}`` would)."""
        await self._docs(
            json_db,
            ("direct", {"plan": "pro", "a": {"b": 1}}),
            ("array", {"plan": ["pro"], "a": [{"b": 1}]}),
            ("nested_array", {"plan": [["pro"]], "a": {"b": [1]}}),
        )
        assert await _names(json_db, JsonDoc.meta["plan"] == "pro") == ["direct"]
        assert await _names(json_db, JsonDoc.meta["a"]["b"] == 1) == ["direct"]
        assert await _names(json_db, JsonDoc.meta["a"]["b"] > 0) == ["direct"]
        assert await _names(json_db, JsonDoc.meta["plan"] != "pro") == ["array", "nested_array"]
        assert await _names(json_db, JsonDoc.meta["plan"] >= "pro") == ["direct"]

    @requires("json_fields")
    async def test_json_has_tests_array_membership(self, json_db: Ommi) -> None:
        """``has(x)`` holds where the array holds an element equal to ``x``, type-strict, at the top level only."""
        await json_db.add(
            JsonDoc("strs", tags=["x", "y"], meta={"t": ["a", "b"]}),
            JsonDoc("ints", tags=[1, 2], meta={"t": "ab"}),
            JsonDoc("floats", tags=[1.0], meta={"t": {"a": 1}}),
            JsonDoc("bools", tags=[True, "1"], meta={}),
            JsonDoc("nested", tags=[[1], ["x"]], meta={"t": [["a"]]}),
            JsonDoc("empty", tags=[], extra=None),
        ).or_raise()
        tags = ommi.field(JsonDoc.tags)
        assert await _names(json_db, tags.has("x")) == ["strs"]
        assert await _names(json_db, tags.has(1)) == ["floats", "ints"]
        assert await _names(json_db, tags.has(True)) == ["bools"]
        assert await _names(json_db, tags.has("1")) == ["bools"]
        assert await _names(json_db, tags.has(3)) == []
        assert await _names(json_db, JsonDoc.meta["t"].has("a")) == ["strs"]
        assert await _names(json_db, JsonDoc.extra["t"].has("a")) == []
        assert await _names(json_db, tags.has("x") | tags.has(2)) == ["ints", "strs"]
        assert await json_db.find(tags.has(1)).count.or_raise() == 2

    @requires("json_fields")
    async def test_json_conditions_combine_with_others_and_windows(self, json_db: Ommi) -> None:
        """Path conditions mix with plain ones, ``|``, sort, limit and offset, count and delete."""
        await self._docs(json_db, *((f"d{i}", {"n": i, "even": i % 2 == 0}) for i in range(10)))
        evens = json_db.find(JsonDoc.meta["even"] == True, JsonDoc.meta["n"] >= 2)  # noqa: E712
        page = [d.name for d in await fetch(evens.sort(ommi.desc(JsonDoc.name)).limit(2, 1))]
        assert page == ["d4", "d2"]
        assert await evens.count.or_raise() == 4
        assert await _names(json_db, (JsonDoc.meta["n"] < 1) | (JsonDoc.name == "d9")) == ["d0", "d9"]
        await json_db.find(JsonDoc.meta["n"] > 5).delete().or_raise()
        assert await json_db.find(JsonDoc).count.or_raise() == 6

    # -- schema -------------------------------------------------------------------------

    @requires("json_fields", "schema_introspection")
    async def test_json_drift_from_text_is_reported(self, db: Ommi) -> None:
        """A stored text column whose model field became ``dict[str, Any]`` is a SchemaMismatchError naming it."""
        await db.remove_models(json_drift_models)
        try:
            await db.use_models(json_drift_models)
            await db.add(JsonDriftText("kept")).or_raise()
            with pytest.raises(SchemaMismatchError) as info:
                await db.use_models(ommi.models.get_schema(JsonDriftObject).collection)
            assert "tk_json_drift" in str(info.value)
            assert "body" in str(info.value)
            assert [d.body for d in await fetch(db.find(JsonDriftText))] == ["kept"]
        finally:
            await db.remove_models(json_drift_models)

    @requires("json_fields", "schema_introspection")
    async def test_json_table_matches_its_model_again(self, db: Ommi, second_db: Ommi) -> None:
        """``use_models`` on a table with JSON fields it made finds no drift (the stored type reads back as JSON)."""
        await db.remove_models(json_models)
        try:
            await db.use_models(json_models)
            await db.add(JsonDoc("a", meta={"k": [1]})).or_raise()
            await second_db.use_models(json_models)
            assert [d.meta for d in await fetch(second_db.find(JsonDoc))] == [{"k": [1]}]
        finally:
            await db.remove_models(json_models)

    @requires("json_fields", "migrations")
    async def test_json_migration_adds_a_json_field(self, fresh_db: Ommi, tmp_path: Path) -> None:
        """``migrations.make`` writes an ``AddField`` of type ``json``; applied, the models match and paths query it."""
        db = fresh_db
        directory = tmp_path / "migrations"

        async def drop() -> None:
            await db.remove_models(json_mig_v3)
            await db.remove_models(history_models)

        await drop()
        try:
            migrations.make(json_mig_v1, directory)
            await migrations.apply(db, directory)
            await db.add(JsonNoteV1("old")).or_raise()
            second = migrations.make(json_mig_v2, directory)
            assert second is not None
            assert '"json"' in second.read_text(encoding="utf-8")
            await migrations.apply(db, directory)
            await db.use_models(json_mig_v2)
            await db.add(JsonNoteV2("new", {"level": 2, "labels": ["a"]})).or_raise()
            assert [(n.text, n.meta) for n in await fetch(db.find(JsonNoteV2).sort(JsonNoteV2.text))] == [
                ("new", {"level": 2, "labels": ["a"]}),
                ("old", None),
            ]
            assert [n.text for n in await fetch(db.find(JsonNoteV2, JsonNoteV2.meta["level"] >= 2))] == ["new"]
            assert [n.text for n in await fetch(db.find(JsonNoteV2, JsonNoteV2.meta["labels"].has("a")))] == ["new"]
            assert migrations.make(json_mig_v2, directory) is None
            # A required JSON field with a default: the stored rows get it (and, on SQL, the column DEFAULT).
            (directory / "0003_labels.py").write_text(_LABELS_STEP.replace("{parent}", second.stem), encoding="utf-8")
            await migrations.apply(db, directory)
            await db.use_models(json_mig_v3)
            labels = {n.text: n.labels for n in await fetch(db.find(JsonNoteV3))}
            assert typed(labels["old"]) == typed(_LABELS_DEFAULT) and typed(labels["new"]) == typed(_LABELS_DEFAULT)
            matched = await fetch(db.find(JsonNoteV3, JsonNoteV3.labels["p"] == "50%"))
            assert sorted(n.text for n in matched) == ["new", "old"]
            await db.add(JsonNoteV3("newest")).or_raise()
            assert (await db.find(JsonNoteV3, JsonNoteV3.text == "newest").one.or_raise()).labels == {}
        finally:
            await drop()

    @requires("json_fields", "inspection")
    async def test_json_inspection_reads_json_as_dict(self, json_db: Ommi, tmp_path: Path) -> None:
        """``inspect_schema`` reports JSON columns as ``json``; the printed model reads them as ``dict[str, Any]``."""
        await json_db.add(JsonDoc("a", meta={"k": 1}, extra={"e": [1]})).or_raise()
        inspection = await json_db.driver.inspect_schema()
        read = inspection.state.model("tk_json_doc")
        types = {f.name: f.type for f in read.fields}
        assert (types["meta"], types["extra"]) == ("json", "json")
        source = render_models(inspection)
        assert "dict[str, Any]" in source  # and the module imports Any: it runs below
        path = tmp_path / "inspected_json_models.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("ommi_testkit_inspected_json", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        printed = next(m for m in module.models if get_schema(m).name == "tk_json_doc")
        assert get_schema(printed).by_column["meta"].storage is StorageType.JSON
        (doc,) = await fetch(json_db.find(printed))
        assert (doc.meta, doc.extra) == ({"k": 1}, {"e": [1]})
