"""Core's side of keyset pagination and case-insensitive text: the fold, the planned conditions, the refusals.

The drivers' side is the testkit's ``KeysetTests`` and ``CaseInsensitiveTextTests``;
here the reference driver (a real driver; nothing is mocked) stands in where a
database is needed, with a capability turned off to prove core refuses first.
"""

# Model classes double as query operands.
# mypy: disable-error-code="arg-type, operator, union-attr, comparison-overlap"

from __future__ import annotations

import dataclasses
import sys
import unicodedata
from dataclasses import dataclass

import pytest
from ommi import Ommi, ommi_model
from ommi.errors import QueryError, UnsupportedFeature
from ommi.expressions import FOLDED_TEXT_OPS, TEXT_OPS, And, Comparison, Op, Or
from ommi.models.collections import ModelCollection
from ommi.query.evaluate import fold_case, holds
from ommi.sql import Dialect, SQLCompiler
from ommi.testing import record_queries
from ommi_testkit import ReferenceDriver

models = ModelCollection("core_keyset_text_case_tests")


@ommi_model(collection=models)
@dataclass
class Note:
    title: str
    rank: int | None = None
    id: int | None = None


# -- the fold ----------------------------------------------------------------


def test_fold_case_is_one_to_one_per_character() -> None:
    """Every code point folds to exactly one; ASCII folds as lower(); the examples the docs give."""
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        assert len(fold_case(chr(code))) == 1, hex(code)
    assert fold_case("Hello, World! %_[]") == "hello, world! %_[]"
    assert fold_case("Straße STRAẞE") == "straße straße"  # ß stays (not "ss"); capital ẞ becomes ß
    assert fold_case("İ") == "İ"  # its lower-casing is two characters: kept
    sigmas = "\u03a3\u03c3\u03c2"
    assert fold_case(sigmas) == "\u03c3" * 3  # capital, small and final sigma: one letter, wherever
    assert fold_case("\u212a") == "k"  # KELVIN SIGN
    assert fold_case("\u00b5") == "\u03bc"  # MICRO SIGN folds to Greek mu
    assert fold_case("ПРИВЕТ") == "привет"


def test_fold_case_is_stable_and_idempotent() -> None:
    """Folding twice changes nothing more; a string folds as its characters do one by one."""
    sample = "".join(chr(c) for c in range(0x20, 0x3000) if unicodedata.category(chr(c)) != "Cs")
    once = fold_case(sample)
    assert fold_case(once) == once
    assert once == "".join(fold_case(ch) for ch in sample)


def test_holds_folds_both_sides() -> None:
    """The reference semantics: value and text folded, then a literal match; NULL never matches."""
    value = {"v": "Ünïcode ΚΑΛΗΜΕΡΑ"}

    def check(op: Op, text: str) -> bool:
        return holds(Comparison(Note.title, op, text), lambda f: value["v"])

    assert check(Op.ICONTAINS, "ÜNÏ")
    assert check(Op.ISTARTSWITH, "ünïcode")
    assert check(Op.IENDSWITH, "καλημερα")
    assert not check(Op.CONTAINS, "ÜNÏ")
    assert not check(Op.ISTARTSWITH, "καλημερα")
    assert not holds(Comparison(Note.title, Op.ICONTAINS, ""), lambda f: None)


def test_case_insensitive_conditions_are_operators_of_their_own() -> None:
    """``case_sensitive=False`` picks ``Op.I*``; the default keeps the old operators; bad flags are refused."""
    assert Note.title.contains("a", case_sensitive=False).op is Op.ICONTAINS
    assert Note.title.startswith("a", case_sensitive=False).op is Op.ISTARTSWITH
    assert Note.title.endswith("a", case_sensitive=False).op is Op.IENDSWITH
    assert Note.title.contains("a").op is Op.CONTAINS
    assert FOLDED_TEXT_OPS < TEXT_OPS
    with pytest.raises(QueryError, match="case_sensitive must be True or False"):
        Note.title.contains("a", case_sensitive=0)
    with pytest.raises(QueryError, match=r"contains\(\.\.\., case_sensitive=False\) needs a text field"):
        Note.rank.contains("1", case_sensitive=False)


def test_generic_dialect_folds_both_sides_with_lower() -> None:
    """The base dialect: ``lower(column) LIKE lower(?)``, with the LIKE metacharacters escaped in the parameter."""
    compiler = SQLCompiler(Dialect())
    db = Ommi(ReferenceDriver())
    statement = compiler.select(db.find(Note.title.contains("5%_\\", case_sensitive=False)).query())
    assert "lower(" in statement.sql and "LIKE lower(?) ESCAPE" in statement.sql
    assert statement.params == ["%5\\%\\_\\\\%"]


async def test_a_driver_without_case_insensitive_text_refuses_before_any_io() -> None:
    """Every action refuses, naming the capability; no operation reaches the driver and nothing changes."""
    driver = ReferenceDriver()
    driver.capabilities = dataclasses.replace(driver.capabilities, case_insensitive_text=False)
    async with Ommi(driver) as db:
        await db.use_models(models)
        await db.add(Note("Alpha", id=1), Note("beta", id=2)).or_raise()
        match = db.find(Note.title.contains("ALPHA", case_sensitive=False))
        nested = db.find(Note, (Note.id > 0) | Note.title.endswith("A", case_sensitive=False))
        with record_queries() as recorded:
            for action in (match.all, match.count, match.delete, match.update(title="x"), nested.one):
                with pytest.raises(UnsupportedFeature, match="case_insensitive_text"):
                    await action.or_raise()
        assert recorded.count == 0
        assert sorted(n.title for n in await (await db.find(Note).all.or_raise()).to_list()) == ["Alpha", "beta"]


# -- keyset ------------------------------------------------------------------


def test_after_plans_an_ordinary_condition() -> None:
    """``(rank after v) OR (rank == v AND id > k)``, the key appended to the sort; NULL and descending forms."""
    db = Ommi(ReferenceDriver())
    row = Note("x", 3, id=5)
    query = db.find(Note).sort(Note.rank).after(row).query()
    assert [(k.field.name, k.descending) for k in query.sort] == [("rank", False), ("id", False)]
    assert isinstance(query.where, Or)
    past, tied = query.where.items
    assert isinstance(past, Comparison) and (past.field, past.op, past.value) == (Note.rank, Op.GT, 3)
    assert isinstance(tied, And)
    # Descending past a value: smaller, or NULL (last when descending).
    query = db.find(Note).sort(Note.rank.desc).after(row).query()
    assert isinstance(query.where, Or)
    below = query.where.items[0]
    assert isinstance(below, Or) and [c.op for c in below.items] == [Op.LT, Op.IS_NULL]  # type: ignore[attr-defined]
    # Descending after a NULL: only the other NULLs, by key.
    query = db.find(Note).sort(Note.rank.desc).after(Note("x", None, id=5)).query()
    assert isinstance(query.where, And)
    assert [getattr(c, "op", None) for c in query.where.items] == [Op.IS_NULL, Op.GT]


def test_before_with_a_limit_runs_reversed() -> None:
    """``.before(row).limit(n)`` runs its sort reversed (core reverses the rows back); without a limit it does not."""
    db = Ommi(ReferenceDriver())
    row = Note("x", 3, id=5)
    reversed_query = db.find(Note).sort(Note.rank.desc).before(row).limit(2).query()
    assert [(k.field.name, k.descending) for k in reversed_query.sort] == [("rank", False), ("id", True)]
    plain = db.find(Note).sort(Note.rank.desc).before(row).query()
    assert [(k.field.name, k.descending) for k in plain.sort] == [("rank", True), ("id", False)]
    sql = SQLCompiler(Dialect()).select(reversed_query).sql
    assert "ORDER BY" in sql and "LIMIT" in sql


async def test_before_with_a_limit_reads_in_batches_and_closes() -> None:
    """The reversed window comes back in the query's order whatever the batch size, and ``.one`` is its first row."""
    async with Ommi(ReferenceDriver()) as db:
        await db.use_models(models)
        await db.add(*[Note(f"n{i}", i % 3, id=i) for i in range(1, 11)]).or_raise()
        everything = await (await db.find(Note).sort(Note.rank, Note.title.desc).all.or_raise()).to_list()
        cursor = everything[7]
        for batch_size in (1, 2, 3, 50):
            query = db.find(Note).sort(Note.rank, Note.title.desc).before(cursor).limit(4)
            page = await (await query.all(batch_size=batch_size).or_raise()).to_list()
            assert [n.id for n in page] == [n.id for n in everything[3:7]], batch_size
        assert (await db.find(Note).sort(Note.rank, Note.title.desc).before(cursor).limit(4).one.or_raise()).id == (
            everything[3].id
        )


def test_a_cursor_row_missing_a_field_is_a_query_error() -> None:
    """An instance with a field never set (deleted attribute) is refused with QueryError, not AttributeError."""
    db = Ommi(ReferenceDriver())
    row = Note("x", 1, id=3)
    del row.title
    with pytest.raises(QueryError, match="no value for title"):
        db.find(Note).after(row)
