"""Hostile strings: values and searches that MongoDB would read as operators or regular expressions."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from ommi import Key, ModelCollection, Ommi, StoreAs, ommi_model
from ommi.expressions import Op
from ommi.models import get_schema
from ommi.query.evaluate import fold_case
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._filters import pcre_escape, text_pattern, to_filter

models = ModelCollection("ommi_mongodb_test_hostile")

OpenDb = Callable[..., Awaitable[Ommi]]


@ommi_model(collection=models, name="mdb_note")
@dataclass
class Note:
    """Free text, searched with hostile strings."""

    text: str
    tag: str | None = None
    id: int | None = None


@ommi_model(collection=models, name="mdb_tag")
@dataclass
class Tag:
    """A text key the application chooses, ``$``-prefixed ones included."""

    code: Annotated[str, Key]
    label: str = ""


@ommi_model(collection=models, name="mdb_odd_names")
@dataclass
class OddNames:
    """Columns MongoDB would read as an operator, a path, the document id or an escape."""

    dollar: Annotated[str, StoreAs("$where")]
    dotted: Annotated[str, StoreAs("a.b")]
    underscore_id: Annotated[int, StoreAs("_id")]
    percent: Annotated[str, StoreAs("100%2E")]
    id: int | None = None


HOSTILE = [
    ".*",
    "^a",
    "a$",
    "a.c",
    "(?i)ABC",
    "[abc]",
    "a|b",
    "\\",
    "\\d+",
    "a+b?",
    "{1,2}",
    "$gt",
    '{"$gt": ""}',
    "$where: function() { return true }",
    "line\nbreak",
    "end\n",
    "tab\there",
    "ünïcödé ✓ 🎉",
    "%2E%24",
    "",
]


async def _texts(db: Ommi, *conditions: Any) -> list[str]:
    iterator = await db.find(Note, *conditions).all.or_raise()
    return sorted(note.text for note in await iterator.to_list())


@pytest.fixture
async def notes(open_db: OpenDb) -> Ommi:
    db = await open_db(models)
    # Decoys that a regex or operator reading of the hostile strings would match.
    decoys = ["abc", "ABC", "a", "b", "axc", "1", "12", "aab", "x", "line", "end", "endless"]
    await db.add(*(Note(text) for text in [*HOSTILE, *decoys])).or_raise()
    return db


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t) for t in HOSTILE])
async def test_hostile_values_round_trip_and_match_exactly(notes: Ommi, text: str) -> None:
    """Each hostile string is stored as given and ``==`` matches only it."""
    assert await _texts(notes, Note.text == text) == [text]
    assert text not in await _texts(notes, Note.text != text)


@pytest.mark.parametrize("text", [t for t in HOSTILE if t], ids=[repr(t) for t in HOSTILE if t])
async def test_hostile_text_search_is_literal(notes: Ommi, text: str) -> None:
    """contains / startswith / endswith treat the text literally (no regex, case-sensitive)."""
    every = [*HOSTILE, "abc", "ABC", "a", "b", "axc", "1", "12", "aab", "x", "line", "end", "endless"]
    assert await _texts(notes, Note.text.contains(text)) == sorted(t for t in every if text in t)
    assert await _texts(notes, Note.text.startswith(text)) == sorted(t for t in every if t.startswith(text))
    assert await _texts(notes, Note.text.endswith(text)) == sorted(t for t in every if t.endswith(text))


@pytest.mark.parametrize("text", [t for t in HOSTILE if t], ids=[repr(t) for t in HOSTILE if t])
async def test_hostile_case_insensitive_search_is_literal(notes: Ommi, text: str) -> None:
    """With ``case_sensitive=False`` the text is still literal: an escaped regular expression with option ``i``."""
    every = [*HOSTILE, "abc", "ABC", "a", "b", "axc", "1", "12", "aab", "x", "line", "end", "endless"]
    folded = fold_case(text)
    for method, holds in (
        ("contains", lambda t: folded in fold_case(t)),
        ("startswith", lambda t: fold_case(t).startswith(folded)),
        ("endswith", lambda t: fold_case(t).endswith(folded)),
    ):
        condition = getattr(Note.text, method)(text.swapcase(), case_sensitive=False)
        assert await _texts(notes, condition) == sorted(t for t in every if holds(t)), method


def test_pcre_escape_makes_every_ascii_character_literal() -> None:
    """Each printable ASCII character and each control but NUL, alone and in company, matches only itself.

    Python's ``re`` reads a backslash before a non-alphanumeric character as PCRE
    does (the character itself), so it checks the escaped pattern here; the
    tests above send such patterns to the server.
    """
    characters = [chr(c) for c in range(1, 128)]
    for ch in characters:
        pattern = pcre_escape(ch)
        assert re.fullmatch(pattern, ch), repr(ch)
        assert pattern == ch if ch.isalnum() else pattern == "\\" + ch
    every = "".join(characters) + "ünï ΣΑΣ 🎉"
    assert re.fullmatch(pcre_escape(every), every)
    assert re.fullmatch(pcre_escape(every), every.swapcase(), re.IGNORECASE)
    assert not re.search(pcre_escape(".*"), "abc")
    assert text_pattern(Op.ISTARTSWITH, "a.b") == "^a\\.b"
    assert text_pattern(Op.IENDSWITH, "$") == "\\$(?![\\s\\S])"


def test_case_insensitive_filters_carry_option_i() -> None:
    """Only the ``case_sensitive=False`` matches get ``$options: "i"``; the pattern is the escaped text."""
    assert to_filter(Note.text.contains("A+b", case_sensitive=False)) == {"text": {"$regex": "A\\+b", "$options": "i"}}
    assert to_filter(Note.text.contains("A+b")) == {"text": {"$regex": "A\\+b"}}


async def test_hostile_endswith_ignores_trailing_newline(notes: Ommi) -> None:
    """``endswith("end")`` does not match ``"end\\n"`` (a regex ``$`` would)."""
    assert await _texts(notes, Note.text.endswith("end")) == ["end"]
    assert await _texts(notes, Note.text.endswith("\n")) == ["end\n"]


async def test_hostile_search_is_case_sensitive(notes: Ommi) -> None:
    """``contains("abc")`` does not match ``"ABC"``."""
    assert await _texts(notes, Note.text.contains("abc")) == ["[abc]", "abc"]
    assert await _texts(notes, Note.text.startswith("A")) == ["ABC"]
    assert await _texts(notes, Note.text.endswith("Bc")) == []


async def test_hostile_operator_text_in_in_and_updates(notes: Ommi) -> None:
    """Operator-looking text works in ``in_`` and as an update value, staying text."""
    assert await _texts(notes, Note.text.in_(["$gt", '{"$gt": ""}'])) == ["$gt", '{"$gt": ""}']
    assert await notes.find(Note.text == "$gt").update(tag="$set").or_raise() == 1
    tagged = await (await notes.find(Note.tag == "$set").all.or_raise()).to_list()
    assert [n.text for n in tagged] == ["$gt"]


async def test_hostile_dollar_keys(open_db: OpenDb) -> None:
    """Keys starting with ``$`` (or looking like documents) are stored and found as text."""
    db = await open_db(models)
    codes = ["$gt", "$where", "$", "{}", "a.b", "$ne"]
    await db.add(*(Tag(code, f"label {code}") for code in codes)).or_raise()
    for code in codes:
        assert (await db.find(Tag.code == code).one.or_raise()).label == f"label {code}"
    assert await db.find(Tag.code != "$gt").count.or_raise() == len(codes) - 1
    assert await db.find(Tag.code.startswith("$")).count.or_raise() == 4
    assert await db.find(Tag.code == "$ne").delete.or_raise() == 1
    assert await db.find(Tag).count.or_raise() == len(codes) - 1


async def test_hostile_column_names_are_escaped(open_db: OpenDb) -> None:
    """Columns named ``$where``, ``a.b``, ``_id`` and ``100%2E`` are stored escaped and work in queries."""
    db = await open_db(models)
    await db.add(OddNames("d1", "x1", 10, "p1"), OddNames("d2", "x2", 20, "p2")).or_raise()
    assert (await db.find(OddNames.dollar == "d2").one.or_raise()).dotted == "x2"
    assert (await db.find(OddNames.dotted == "x1").one.or_raise()).underscore_id == 10
    assert (await db.find(OddNames.underscore_id > 15).one.or_raise()).percent == "p2"
    assert await db.find(OddNames.percent == "p1").update(dollar="changed").or_raise() == 1
    assert (await db.find(OddNames.dollar == "changed").one.or_raise()).percent == "p1"
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    stored = await driver._database()[driver.collection_name(get_schema(OddNames))].find_one({"%5Fid": 20})
    assert stored is not None
    assert set(stored) == {"_id", "%24where", "a%2Eb", "%5Fid", "100%252E"}


def test_and_of_plain_conditions_becomes_one_flat_filter() -> None:
    """AND of distinct field conditions is sent flat; a repeated operator or two ORs keep `$and`."""

    from ommi_mongodb._filters import _merge_and

    assert _merge_and([{"age": {"$gte": 30}}, {"age": {"$lte": 40}}, {"active": {"$eq": True}}]) == {
        "age": {"$gte": 30, "$lte": 40},
        "active": {"$eq": True},
    }
    assert _merge_and([{"age": {"$gte": 30}}, {"age": {"$gte": 35}}]) == {
        "$and": [{"age": {"$gte": 30}}, {"age": {"$gte": 35}}]
    }
    ors = [{"$or": [{"a": {"$eq": 1}}]}, {"$or": [{"b": {"$eq": 2}}]}]
    assert _merge_and(ors) == {"$and": ors}
