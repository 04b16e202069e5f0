"""Conformance tests: ``contains`` / ``startswith`` / ``endswith`` with ``case_sensitive=False``.

The meaning is :func:`ommi.query.evaluate.fold_case`'s (the reference driver
runs it): both the stored value and the text are folded one character to one
character, then matched literally. The texts here avoid the few characters
the queries guide lists as folded differently by some backend (the Turkish
dotted and dotless i, the Greek sigmas, the micro sign, the long s...).
Every test needs the ``case_insensitive_text`` capability.
"""

# Model classes double as query operands (``TextRecord.value.contains(...)``).
# mypy: disable-error-code="misc, attr-defined, arg-type, operator, union-attr, call-arg"

from __future__ import annotations

from typing import Any

import pytest
from ommi import Ommi, QueryError, ValidationError, when

from ommi_testkit.suites._support import fetch, seed_blog
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import Order, Person, TextRecord
from ommi_testkit.suites.models_extra import RelPost, RelUser

TEXTS = [
    "Hello World",
    "HELLO there",
    "say hello",
    "ÉCOLE Normale",
    "petite école",
    "Äpfel und Öl",
    "GROẞE Straße",
    "ΚΑΛΗΜΕΡΑ φίλε",
    "καλημερα",
    "ПРИВЕТ мир",
    "привет МИР",
    "a%B_c\\D.e*F+g?H(i)J[k]L{m}N^o$P|q",
    "a%b",
    "AXB",
    "",
]


async def _seed(db: Ommi) -> None:
    await db.add(*[TextRecord(text, text.upper() or None, id=i + 1) for i, text in enumerate(TEXTS)]).or_raise()
    await db.add(TextRecord("no maybe", None, id=100)).or_raise()


async def _values(query: Any) -> list[str]:
    return sorted(r.value for r in await fetch(query))


@requires("case_insensitive_text")
class CaseInsensitiveTextTests(SuiteBase):
    """``case_sensitive=False``: one fold for every backend, text still literal, NULL never matches."""

    async def test_text_icase_ascii(self, db: Ommi) -> None:
        """ASCII letters match whatever their case, for each of the three matches; the default stays case-sensitive."""
        await _seed(db)
        value = TextRecord.value
        assert await _values(db.find(value.contains("hello", case_sensitive=False))) == [
            "HELLO there",
            "Hello World",
            "say hello",
        ]
        assert await _values(db.find(value.startswith("hElLo", case_sensitive=False))) == ["HELLO there", "Hello World"]
        assert await _values(db.find(value.endswith("WORLD", case_sensitive=False))) == ["Hello World"]
        assert await _values(db.find(value.contains("hello"))) == ["say hello"]
        assert await _values(db.find(value.contains("hello", case_sensitive=True))) == ["say hello"]

    async def test_text_icase_latin1_and_sharp_s(self, db: Ommi) -> None:
        """É/é, Ä/ä and Ö/ö fold together; capital sharp s (ẞ) folds to ß, but ß is not "ss" (one-to-one folding)."""
        await _seed(db)
        value = TextRecord.value
        assert await _values(db.find(value.contains("école", case_sensitive=False))) == [
            "petite école",
            "ÉCOLE Normale",
        ]
        assert await _values(db.find(value.startswith("äPFEL", case_sensitive=False))) == ["Äpfel und Öl"]
        assert await _values(db.find(value.endswith("öL", case_sensitive=False))) == ["Äpfel und Öl"]
        assert await _values(db.find(value.contains("große", case_sensitive=False))) == ["GROẞE Straße"]
        assert await _values(db.find(value.contains("STRASSE", case_sensitive=False))) == []

    async def test_text_icase_greek_and_cyrillic(self, db: Ommi) -> None:
        """Greek and Cyrillic letters fold with their capitals; accents still count (iota with tonos is not iota)."""
        await _seed(db)
        value = TextRecord.value
        assert await _values(db.find(value.startswith("καλημερα", case_sensitive=False))) == [
            "ΚΑΛΗΜΕΡΑ φίλε",
            "καλημερα",
        ]
        assert await _values(db.find(value.contains("ΦΊΛΕ", case_sensitive=False))) == ["ΚΑΛΗΜΕΡΑ φίλε"]
        assert await _values(db.find(value.contains("ΦΙΛΕ", case_sensitive=False))) == []
        assert await _values(db.find(value.contains("привет мир", case_sensitive=False))) == [
            "ПРИВЕТ мир",
            "привет МИР",
        ]
        assert await _values(db.find(value.endswith("мир", case_sensitive=False))) == ["ПРИВЕТ мир", "привет МИР"]

    async def test_text_icase_metacharacters_are_literal(self, db: Ommi) -> None:
        """``% _ \\ . * + ? ( ) [ ] { } ^ $ |`` match themselves, never as wildcards or pattern syntax."""
        await _seed(db)
        value = TextRecord.value
        meta = "a%B_c\\D.e*F+g?H(i)J[k]L{m}N^o$P|q"
        assert await _values(db.find(value.contains(meta.swapcase(), case_sensitive=False))) == [meta]
        for piece in ["%b_", "c\\d", "d.e", "e*f", "f+g", "g?h", "(i)", "[k]", "{m}", "n^o", "o$p", "p|q"]:
            assert await _values(db.find(value.contains(piece.upper(), case_sensitive=False))) == [meta], piece
        assert await _values(db.find(value.startswith("A%", case_sensitive=False))) == [meta, "a%b"]
        assert await _values(db.find(value.endswith("$p|Q", case_sensitive=False))) == [meta]
        # Wildcards of LIKE, GLOB and regular expressions stay literal.
        assert await _values(db.find(value.contains("a_b", case_sensitive=False))) == []
        assert await _values(db.find(value.contains("a.b", case_sensitive=False))) == []
        assert await _values(db.find(value.startswith("%", case_sensitive=False))) == []
        assert await _values(db.find(value.contains("[xyz]", case_sensitive=False))) == []
        assert await _values(db.find(value.contains(".*", case_sensitive=False))) == []
        assert await _values(db.find(value.endswith("q$", case_sensitive=False))) == []
        assert await _values(db.find(value.startswith("^a", case_sensitive=False))) == []

    async def test_text_icase_empty_text_and_null(self, db: Ommi) -> None:
        """An empty text matches every value, the empty one included; NULL matches nothing."""
        await _seed(db)
        every = sorted([*TEXTS, "no maybe"])
        for method in ("contains", "startswith", "endswith"):
            query = db.find(getattr(TextRecord.value, method)("", case_sensitive=False))
            assert await _values(query) == every, method
        maybe = TextRecord.maybe
        assert await db.find(maybe.contains("", case_sensitive=False)).count.or_raise() == len(TEXTS) - 1
        assert await db.find(maybe.contains("maybe", case_sensitive=False)).count.or_raise() == 0
        assert await _values(db.find(maybe.startswith("hello", case_sensitive=False))) == ["HELLO there", "Hello World"]

    async def test_text_icase_combined_with_other_conditions(self, db: Ommi) -> None:
        """Inside AND and OR, next to other comparisons, and in ``count`` and ``delete``."""
        await _seed(db)
        value = TextRecord.value
        hello = value.contains("HELLO", case_sensitive=False)
        assert await _values(db.find(hello, TextRecord.id > 1)) == ["HELLO there", "say hello"]
        assert await _values(db.find(when(hello).Or(value.endswith("МИР", case_sensitive=False)))) == [
            "HELLO there",
            "Hello World",
            "say hello",
            "ПРИВЕТ мир",
            "привет МИР",
        ]
        assert await db.find(hello).count.or_raise() == 3
        assert await db.find(hello, TextRecord.id != 1).delete.or_raise() == 2
        assert await _values(db.find(hello)) == ["Hello World"]

    async def test_text_icase_sorted_and_paged(self, db: Ommi) -> None:
        """A case-insensitive match sorts and pages like any condition."""
        await _seed(db)
        query = db.find(TextRecord.value.contains("O", case_sensitive=False)).sort(TextRecord.value.desc)
        rows = await fetch(query)
        assert [r.value for r in rows] == sorted((r.value for r in rows), reverse=True)
        assert [r.value for r in await fetch(query.limit(2, 1))] == [r.value for r in rows[2:4]]

    async def test_text_icase_keyword_columns(self, db: Ommi) -> None:
        """Fields stored as ``select`` and ``from`` in a table called ``order`` match like any other."""
        await db.add(Order(select="Big SALE", from_="Stock"), Order(select="small", from_="STOCKHOLM")).or_raise()
        found = await fetch(db.find(Order.select.contains("sale", case_sensitive=False)))
        assert [o.select for o in found] == ["Big SALE"]
        found = await fetch(db.find(Order.from_.startswith("stock", case_sensitive=False)).sort(Order.select))
        assert [o.select for o in found] == ["Big SALE", "small"]
        assert await db.find(Order.from_.endswith("HOLM", case_sensitive=False)).count.or_raise() == 1

    @requires("related_conditions")
    async def test_text_icase_on_a_related_model(self, db: Ommi) -> None:
        """A case-insensitive match on a related model filters the target (through the join)."""
        await seed_blog(db)
        authors = await fetch(db.find(RelUser, RelPost.title.startswith("X-R", case_sensitive=False)))
        assert [u.name for u in authors] == ["Alice"]
        authors = await fetch(db.find(RelUser, RelPost.title.endswith("X", case_sensitive=False)).sort(RelUser.name))
        assert [u.name for u in authors] == ["Alice", "Carol"]

    async def test_text_icase_refusals(self, db: Ommi) -> None:
        """A non-text field is a QueryError, a non-bool ``case_sensitive`` too, a non-str text a ValidationError."""
        with pytest.raises(QueryError, match="text field"):
            Person.age.contains("1", case_sensitive=False)
        with pytest.raises(QueryError, match="case_sensitive"):
            Person.name.contains("a", case_sensitive="no")
        with pytest.raises(QueryError, match="case_sensitive"):
            Person.name.startswith("a", case_sensitive=None)
        with pytest.raises(ValidationError):
            Person.name.endswith(1, case_sensitive=False)
        with pytest.raises(TypeError):
            Person.name.contains("a", False)  # keyword-only: a positional flag is a mistake
