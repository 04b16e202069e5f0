"""Conformance tests: every condition operator, NULL semantics, precedence, sorting and pages.

The semantics are those of the reference driver (:mod:`ommi_testkit.reference`):
``==``/``<``/... never match NULL while ``!=`` and ``not_in`` do; an empty
``in_`` matches nothing and an empty ``not_in`` everything; text compares by
code point and text matching is case-sensitive and literal; ascending sorts put
NULL first, descending sorts last; ties are broken by the key.
"""

# Model classes double as query operands (``Person.age >= 18``, ``model.save()``),
# which a type checker cannot see without a plugin; those checks are off here.
# mypy: disable-error-code="misc, attr-defined, arg-type, operator, union-attr, comparison-overlap"

from __future__ import annotations

from typing import Any

import pytest
from ommi import DBQueryResult, Ommi, when
from ommi.errors import QueryError, ValidationError
from ommi.query.find import FindQuery

from ommi_testkit.suites.base import SuiteBase
from ommi_testkit.suites.models import Item, Person, TextRecord


async def _rows(query: FindQuery[Any]) -> list[Any]:
    return await (await query.all.or_raise()).to_list()


async def _names(query: FindQuery[Any]) -> list[str]:
    """Names of the matching people, sorted (for set-like comparisons)."""
    return sorted(p.name for p in await _rows(query))


async def _ordered(query: FindQuery[Any]) -> list[str]:
    """Names of the matching people in the order the query returns them."""
    return [p.name for p in await _rows(query)]


async def _seed_people(db: Ommi) -> None:
    # Keys are chosen so that key order differs from insertion order: ties must break by key.
    await db.add(
        Person("Alice", 30, 88.5, True, "Al", 1, id=5),
        Person("Bob", 25, 72.0, False, None, 2, id=4),
        Person("Carol", 35, 95.25, True, "Caz", None, id=3),
        Person("dave", 25, 60.0, True, None, 3, id=2),
        Person("Eve", 40, 72.0, False, "Evie", None, id=1),
    ).or_raise()


EVERYONE = ["Alice", "Bob", "Carol", "Eve", "dave"]

SPECIAL_TEXTS = [
    "100%",
    "100 percent",
    "a_b",
    "axb",
    "a*b",
    "a?b",
    "a[b]c",
    "abc",
    "back\\slash",
    "backXslash",
    "it's",
    'say "hi"',
    "%",
    "_",
    "ABC",
]


async def _seed_texts(db: Ommi) -> None:
    await db.add(*[TextRecord(text, id=i + 1) for i, text in enumerate(SPECIAL_TEXTS)]).or_raise()
    await db.add(TextRecord("has null maybe", None, id=100)).or_raise()


async def _texts(query: FindQuery[Any]) -> list[str]:
    return sorted(r.value for r in await _rows(query))


class QueryTests(SuiteBase):
    """Conditions, combinations, sorting and pagination on ``db.find``."""

    # -- comparison operators ----------------------------------------------

    async def test_filter_equal(self, db: Ommi) -> None:
        """``==`` matches equal values (int, str, float, bool)."""
        await _seed_people(db)
        assert await _names(db.find(Person.age == 25)) == ["Bob", "dave"]
        assert await _names(db.find(Person.name == "Carol")) == ["Carol"]
        assert await _names(db.find(Person.score == 72.0)) == ["Bob", "Eve"]
        assert await _names(db.find(Person.active == False)) == ["Bob", "Eve"]  # noqa: E712 - a query

    async def test_filter_not_equal(self, db: Ommi) -> None:
        """``!=`` matches every other value."""
        await _seed_people(db)
        assert await _names(db.find(Person.age != 25)) == ["Alice", "Carol", "Eve"]
        assert await _names(db.find(Person.active != True)) == ["Bob", "Eve"]  # noqa: E712 - a query

    async def test_filter_less_than(self, db: Ommi) -> None:
        """``<`` is strict."""
        await _seed_people(db)
        assert await _names(db.find(Person.age < 30)) == ["Bob", "dave"]
        assert await _names(db.find(Person.score < 72.0)) == ["dave"]

    async def test_filter_less_or_equal(self, db: Ommi) -> None:
        """``<=`` includes the bound."""
        await _seed_people(db)
        assert await _names(db.find(Person.age <= 30)) == ["Alice", "Bob", "dave"]
        assert await _names(db.find(Person.score <= 72.0)) == ["Bob", "Eve", "dave"]

    async def test_filter_greater_than(self, db: Ommi) -> None:
        """``>`` is strict."""
        await _seed_people(db)
        assert await _names(db.find(Person.age > 30)) == ["Carol", "Eve"]
        assert await _names(db.find(Person.score > 88.5)) == ["Carol"]

    async def test_filter_greater_or_equal(self, db: Ommi) -> None:
        """``>=`` includes the bound."""
        await _seed_people(db)
        assert await _names(db.find(Person.age >= 35)) == ["Carol", "Eve"]
        assert await _names(db.find(Person.score >= 88.5)) == ["Alice", "Carol"]

    async def test_filter_text_compares_by_code_point(self, db: Ommi) -> None:
        """Text ``<``/``>`` compare by code point: every upper-case letter sorts before ``"d"``."""
        await _seed_people(db)
        assert await _names(db.find(Person.name > "Eve")) == ["dave"]
        assert await _names(db.find(Person.name < "C")) == ["Alice", "Bob"]
        assert await _names(db.find(Person.name >= "a")) == ["dave"]

    async def test_filter_several_predicates_are_anded(self, db: Ommi) -> None:
        """``db.find(A, B)`` matches rows where both hold."""
        await _seed_people(db)
        assert await _names(db.find(Person.age == 25, Person.active == True)) == ["dave"]  # noqa: E712
        assert await _names(db.find(Person, Person.age > 26, Person.score < 90)) == ["Alice", "Eve"]

    async def test_filter_model_alone_matches_everything(self, db: Ommi) -> None:
        """``db.find(Model)`` matches every row of the model."""
        await _seed_people(db)
        assert await _names(db.find(Person)) == EVERYONE

    async def test_filter_without_model_or_condition_fails(self, db: Ommi) -> None:
        """``db.find()`` with neither a model nor a condition is a ``QueryError``."""
        result = await db.find().count
        assert isinstance(result, DBQueryResult.DBQueryFailure)
        assert isinstance(result.exception, QueryError)

    async def test_filter_value_of_wrong_type_is_rejected(self, db: Ommi) -> None:
        """Comparing a field with a value it cannot hold raises ``ValidationError`` when building."""
        with pytest.raises(ValidationError):
            _ = Person.age == "thirty"
        with pytest.raises(ValidationError):
            _ = Person.name.in_(["ok", 3])

    async def test_filter_conditions_have_no_truth_value(self, db: Ommi) -> None:
        """Using ``and``/``or``/``not`` on conditions raises ``QueryError`` instead of dropping one side."""
        with pytest.raises(QueryError):
            bool(Person.age == 1)
        with pytest.raises(QueryError):
            _ = (Person.age == 1) or (Person.age == 2)

    # -- NULL --------------------------------------------------------------

    async def test_null_equal_none_matches_null(self, db: Ommi) -> None:
        """``== None`` matches exactly the NULL values."""
        await _seed_people(db)
        assert await _names(db.find(Person.nickname == None)) == ["Bob", "dave"]  # noqa: E711 - a query
        assert await _names(db.find(Person.rank == None)) == ["Carol", "Eve"]  # noqa: E711 - a query

    async def test_null_not_equal_none_matches_values(self, db: Ommi) -> None:
        """``!= None`` matches exactly the non-NULL values."""
        await _seed_people(db)
        assert await _names(db.find(Person.nickname != None)) == ["Alice", "Carol", "Eve"]  # noqa: E711
        assert await _names(db.find(Person.rank != None)) == ["Alice", "Bob", "dave"]  # noqa: E711

    async def test_null_never_matches_equality(self, db: Ommi) -> None:
        """``==`` with a value never matches a NULL."""
        await _seed_people(db)
        assert await _names(db.find(Person.nickname == "Al")) == ["Alice"]
        assert await _names(db.find(Person.rank == 3)) == ["dave"]

    async def test_null_never_matches_ordering(self, db: Ommi) -> None:
        """``<``, ``<=``, ``>``, ``>=`` never match a NULL."""
        await _seed_people(db)
        assert await _names(db.find(Person.rank < 3)) == ["Alice", "Bob"]
        assert await _names(db.find(Person.rank <= 3)) == ["Alice", "Bob", "dave"]
        assert await _names(db.find(Person.rank > 1)) == ["Bob", "dave"]
        assert await _names(db.find(Person.rank >= 1)) == ["Alice", "Bob", "dave"]
        assert await _names(db.find(Person.nickname < "Z")) == ["Alice", "Carol", "Eve"]

    async def test_null_matches_not_equal(self, db: Ommi) -> None:
        """``!=`` with a value matches NULL too (NULL differs from every value)."""
        await _seed_people(db)
        assert await _names(db.find(Person.nickname != "Al")) == ["Bob", "Carol", "Eve", "dave"]
        assert await _names(db.find(Person.rank != 1)) == ["Bob", "Carol", "Eve", "dave"]

    async def test_null_in_never_matches(self, db: Ommi) -> None:
        """``in_`` never matches a NULL."""
        await _seed_people(db)
        assert await _names(db.find(Person.rank.in_([1, 2, 99]))) == ["Alice", "Bob"]

    async def test_null_matches_not_in(self, db: Ommi) -> None:
        """``not_in`` matches NULL too."""
        await _seed_people(db)
        assert await _names(db.find(Person.rank.not_in([1, 2]))) == ["Carol", "Eve", "dave"]
        assert await _names(db.find(Person.nickname.not_in(["Al", "Caz"]))) == ["Bob", "Eve", "dave"]

    async def test_null_never_matches_text_operators(self, db: Ommi) -> None:
        """``contains``/``startswith``/``endswith`` never match a NULL, not even with an empty string."""
        await _seed_texts(db)
        await db.add(TextRecord("x", "abc", id=200)).or_raise()
        assert await _texts(db.find(TextRecord.maybe.contains(""))) == ["x"]
        assert await _texts(db.find(TextRecord.maybe.startswith("a"))) == ["x"]
        assert await _texts(db.find(TextRecord.maybe.endswith("c"))) == ["x"]

    async def test_null_in_or_and_combinations(self, db: Ommi) -> None:
        """NULL rules hold inside combinations: ``(rank < 2) or (rank != 1)`` includes NULL ranks."""
        await _seed_people(db)
        assert await _names(db.find(when(Person.rank < 2).Or(Person.rank != 1))) == EVERYONE
        assert await _names(db.find(when(Person.rank == None).And(Person.age > 35))) == ["Eve"]  # noqa: E711

    # -- in_ / not_in ------------------------------------------------------

    async def test_in_matches_listed_values(self, db: Ommi) -> None:
        """``in_`` matches any listed value, on ints and on text."""
        await _seed_people(db)
        assert await _names(db.find(Person.age.in_([25, 40]))) == ["Bob", "Eve", "dave"]
        assert await _names(db.find(Person.name.in_(["Alice", "dave", "Zed"]))) == ["Alice", "dave"]

    async def test_in_accepts_any_iterable(self, db: Ommi) -> None:
        """``in_`` takes lists, tuples, sets and generators, and repeated values are harmless."""
        await _seed_people(db)
        assert await _names(db.find(Person.age.in_((30, 30, 35)))) == ["Alice", "Carol"]
        assert await _names(db.find(Person.age.in_({35}))) == ["Carol"]
        assert await _names(db.find(Person.age.in_(a for a in (40,)))) == ["Eve"]

    async def test_in_empty_matches_nothing(self, db: Ommi) -> None:
        """An empty ``in_`` matches no row."""
        await _seed_people(db)
        assert await _names(db.find(Person.age.in_([]))) == []
        assert await db.find(Person.rank.in_([])).count.or_raise() == 0

    async def test_not_in_excludes_listed_values(self, db: Ommi) -> None:
        """``not_in`` matches every value not listed."""
        await _seed_people(db)
        assert await _names(db.find(Person.age.not_in([25, 40]))) == ["Alice", "Carol"]

    async def test_not_in_empty_matches_everything(self, db: Ommi) -> None:
        """An empty ``not_in`` matches every row, NULLs included."""
        await _seed_people(db)
        assert await _names(db.find(Person.rank.not_in([]))) == EVERYONE
        assert await db.find(Person.age.not_in([])).count.or_raise() == 5

    async def test_in_with_none_is_rejected(self, db: Ommi) -> None:
        """``in_``/``not_in`` cannot hold ``None`` (use ``== None``): a ``QueryError`` when building."""
        with pytest.raises(QueryError):
            Person.rank.in_([1, None])
        with pytest.raises(QueryError):
            Person.rank.not_in([None])

    async def test_in_many_values(self, db: Ommi) -> None:
        """``in_`` with a thousand values works."""
        await db.add(*[Item(p, id=p + 1) for p in range(20)]).or_raise()
        values = list(range(0, 2000, 2))
        assert [i.position for i in await _rows(db.find(Item.position.in_(values)).sort(Item.position))] == list(
            range(0, 20, 2)
        )
        assert await db.find(Item.position.not_in(values)).count.or_raise() == 10

    # -- text matching -----------------------------------------------------

    async def test_text_contains_is_case_sensitive(self, db: Ommi) -> None:
        """``contains`` matches substrings with exact case."""
        await _seed_people(db)
        assert await _names(db.find(Person.name.contains("a"))) == ["Carol", "dave"]
        assert await _names(db.find(Person.name.contains("A"))) == ["Alice"]
        assert await _names(db.find(Person.name.contains("li"))) == ["Alice"]

    async def test_text_startswith_is_case_sensitive(self, db: Ommi) -> None:
        """``startswith`` matches prefixes with exact case."""
        await _seed_people(db)
        assert await _names(db.find(Person.name.startswith("d"))) == ["dave"]
        assert await _names(db.find(Person.name.startswith("D"))) == []
        assert await _names(db.find(Person.name.startswith("Ca"))) == ["Carol"]

    async def test_text_endswith_is_case_sensitive(self, db: Ommi) -> None:
        """``endswith`` matches suffixes with exact case."""
        await _seed_people(db)
        assert await _names(db.find(Person.name.endswith("e"))) == ["Alice", "Eve", "dave"]
        assert await _names(db.find(Person.name.endswith("E"))) == []

    async def test_text_whole_value_and_empty_pattern(self, db: Ommi) -> None:
        """A pattern equal to the whole value matches it; an empty pattern matches every value."""
        await _seed_people(db)
        assert await _names(db.find(Person.name.contains("Carol"))) == ["Carol"]
        assert await _names(db.find(Person.name.startswith("Carol"))) == ["Carol"]
        assert await _names(db.find(Person.name.contains(""))) == EVERYONE

    async def test_text_percent_is_literal(self, db: Ommi) -> None:
        """``%`` in a pattern is a literal character, not a wildcard."""
        await _seed_texts(db)
        assert await _texts(db.find(TextRecord.value.contains("%"))) == ["%", "100%"]
        assert await _texts(db.find(TextRecord.value.endswith("0%"))) == ["100%"]
        assert await _texts(db.find(TextRecord.value.startswith("%"))) == ["%"]
        assert await _texts(db.find(TextRecord.value.contains("100%"))) == ["100%"]

    async def test_text_underscore_is_literal(self, db: Ommi) -> None:
        """``_`` in a pattern is a literal character, not a one-character wildcard."""
        await _seed_texts(db)
        assert await _texts(db.find(TextRecord.value.contains("a_b"))) == ["a_b"]
        assert await _texts(db.find(TextRecord.value.startswith("_"))) == ["_"]
        assert await _texts(db.find(TextRecord.value.endswith("_b"))) == ["a_b"]

    async def test_text_glob_and_bracket_characters_are_literal(self, db: Ommi) -> None:
        """``*``, ``?`` and ``[...]`` are literal characters in patterns."""
        await _seed_texts(db)
        assert await _texts(db.find(TextRecord.value.contains("a*b"))) == ["a*b"]
        assert await _texts(db.find(TextRecord.value.contains("a?b"))) == ["a?b"]
        assert await _texts(db.find(TextRecord.value.contains("[b]"))) == ["a[b]c"]
        assert await _texts(db.find(TextRecord.value.startswith("a["))) == ["a[b]c"]
        assert await _texts(db.find(TextRecord.value.contains("[abc]"))) == []
        assert await _texts(db.find(TextRecord.value.endswith("*b"))) == ["a*b"]

    async def test_text_backslash_is_literal(self, db: Ommi) -> None:
        """A backslash in a pattern is a literal character, not an escape."""
        await _seed_texts(db)
        assert await _texts(db.find(TextRecord.value.contains("\\"))) == ["back\\slash"]
        assert await _texts(db.find(TextRecord.value.contains("k\\s"))) == ["back\\slash"]
        assert await _texts(db.find(TextRecord.value.endswith("\\slash"))) == ["back\\slash"]

    async def test_text_quotes_are_literal(self, db: Ommi) -> None:
        """Single and double quotes in patterns match themselves."""
        await _seed_texts(db)
        assert await _texts(db.find(TextRecord.value.contains("'"))) == ["it's"]
        assert await _texts(db.find(TextRecord.value.contains('"hi"'))) == ['say "hi"']
        assert await _texts(db.find(TextRecord.value.endswith("'s"))) == ["it's"]

    async def test_text_case_sensitive_on_ascii_letters(self, db: Ommi) -> None:
        """Text matching never folds case: ``abc`` and ``ABC`` are different."""
        await _seed_texts(db)
        assert await _texts(db.find(TextRecord.value.contains("bc"))) == ["abc"]
        assert await _texts(db.find(TextRecord.value.contains("BC"))) == ["ABC"]
        assert await _texts(db.find(TextRecord.value == "abc")) == ["abc"]

    async def test_text_operators_need_a_text_field(self, db: Ommi) -> None:
        """``contains`` on a non-text field is a ``QueryError`` when building; a non-str pattern is invalid."""
        with pytest.raises(QueryError):
            Person.age.contains("1")
        with pytest.raises(ValidationError):
            Person.name.contains(1)

    # -- precedence --------------------------------------------------------

    async def test_precedence_or_then_and_groups_left(self, db: Ommi) -> None:
        """``when(A).Or(B).And(C)`` means ``(A or B) and C``."""
        await _seed_people(db)
        a, b, c = Person.age == 25, Person.name == "Eve", Person.active == False  # noqa: E712
        assert await _names(db.find(when(a).Or(b).And(c))) == ["Bob", "Eve"]

    async def test_precedence_and_then_or_groups_left(self, db: Ommi) -> None:
        """``when(A).And(B).Or(C)`` means ``(A and B) or C``."""
        await _seed_people(db)
        a, b, c = Person.age == 25, Person.active == True, Person.name == "Eve"  # noqa: E712
        assert await _names(db.find(when(a).And(b).Or(c))) == ["Eve", "dave"]

    async def test_precedence_nested_when_is_a_group(self, db: Ommi) -> None:
        """``when(A, when(B).Or(C))`` means ``A and (B or C)``."""
        await _seed_people(db)
        a, b, c = Person.active == True, Person.age == 25, Person.name == "Eve"  # noqa: E712
        assert await _names(db.find(when(a, when(b).Or(c)))) == ["dave"]
        assert await _names(db.find(a, when(b).Or(c))) == ["dave"]

    async def test_precedence_or_with_several_conditions_ands_them(self, db: Ommi) -> None:
        """``when(A).Or(B, C)`` means ``A or (B and C)``."""
        await _seed_people(db)
        a, b, c = Person.name == "Alice", Person.age == 25, Person.active == False  # noqa: E712
        assert await _names(db.find(when(a).Or(b, c))) == ["Alice", "Bob"]

    async def test_precedence_and_chain(self, db: Ommi) -> None:
        """``.And`` chains narrow step by step."""
        await _seed_people(db)
        query = when(Person.age >= 25).And(Person.active == True).And(Person.score > 70)  # noqa: E712
        assert await _names(db.find(query)) == ["Alice", "Carol"]

    async def test_precedence_or_chain(self, db: Ommi) -> None:
        """``.Or`` chains widen step by step."""
        await _seed_people(db)
        query = when(Person.name == "Alice").Or(Person.name == "Bob").Or(Person.age == 40)
        assert await _names(db.find(query)) == ["Alice", "Bob", "Eve"]

    async def test_precedence_or_on_a_bare_condition(self, db: Ommi) -> None:
        """``.Or``/``.And`` work directly on a comparison as on ``when(...)``."""
        await _seed_people(db)
        assert await _names(db.find((Person.age == 30).Or(Person.age == 35))) == ["Alice", "Carol"]
        assert await _names(db.find((Person.age == 25).And(Person.name == "Bob"))) == ["Bob"]

    async def test_precedence_groups_of_groups(self, db: Ommi) -> None:
        """``when(A.Or(B)).And(C.Or(D))`` is ``(A or B) and (C or D)``."""
        await _seed_people(db)
        left = when(Person.age == 25).Or(Person.age == 40)
        right = when(Person.score == 72.0).Or(Person.nickname == None)  # noqa: E711 - a query
        assert await _names(db.find(when(left).And(right))) == ["Bob", "Eve", "dave"]
        assert await _names(db.find(when(left).And(when(Person.active == True).Or(Person.rank == 1)))) == [  # noqa: E712
            "dave"
        ]

    async def test_precedence_building_never_changes_earlier_conditions(self, db: Ommi) -> None:
        """Extending a condition returns a new one; the original still means what it did."""
        await _seed_people(db)
        base = when(Person.age == 25)
        wider = base.Or(Person.age == 40)
        narrower = base.And(Person.active == True)  # noqa: E712 - a query
        assert await _names(db.find(base)) == ["Bob", "dave"]
        assert await _names(db.find(wider)) == ["Bob", "Eve", "dave"]
        assert await _names(db.find(narrower)) == ["dave"]

    # -- sorting -----------------------------------------------------------

    async def test_sort_ascending(self, db: Ommi) -> None:
        """``sort(field)`` and ``sort(field.asc)`` order ascending; ties break by key."""
        await _seed_people(db)
        expected = ["dave", "Bob", "Alice", "Carol", "Eve"]
        assert await _ordered(db.find(Person).sort(Person.age)) == expected
        assert await _ordered(db.find(Person).sort(Person.age.asc)) == expected

    async def test_sort_descending(self, db: Ommi) -> None:
        """``sort(field.desc)`` orders descending; ties still break by ascending key."""
        await _seed_people(db)
        assert await _ordered(db.find(Person).sort(Person.age.desc)) == ["Eve", "Carol", "Alice", "dave", "Bob"]

    async def test_sort_several_keys(self, db: Ommi) -> None:
        """Later sort keys order rows that tie on earlier ones, each in its own direction."""
        await _seed_people(db)
        assert await _ordered(db.find(Person).sort(Person.score.desc, Person.name)) == [
            "Carol",
            "Alice",
            "Bob",
            "Eve",
            "dave",
        ]
        assert await _ordered(db.find(Person).sort(Person.active, Person.age.desc)) == [
            "Eve",
            "Bob",
            "Carol",
            "Alice",
            "dave",
        ]

    async def test_sort_text_by_code_point(self, db: Ommi) -> None:
        """Text sorts by code point: upper case before lower case, no locale folding."""
        await _seed_people(db)
        assert await _ordered(db.find(Person).sort(Person.name)) == ["Alice", "Bob", "Carol", "Eve", "dave"]
        assert await _ordered(db.find(Person).sort(Person.name.desc)) == ["dave", "Eve", "Carol", "Bob", "Alice"]

    async def test_sort_null_first_ascending(self, db: Ommi) -> None:
        """Ascending, NULL sorts before every value (NULL ties break by key)."""
        await _seed_people(db)
        assert await _ordered(db.find(Person).sort(Person.nickname)) == ["dave", "Bob", "Alice", "Carol", "Eve"]
        assert await _ordered(db.find(Person).sort(Person.rank)) == ["Eve", "Carol", "Alice", "Bob", "dave"]

    async def test_sort_null_last_descending(self, db: Ommi) -> None:
        """Descending, NULL sorts after every value."""
        await _seed_people(db)
        assert await _ordered(db.find(Person).sort(Person.nickname.desc)) == ["Eve", "Carol", "Alice", "dave", "Bob"]
        assert await _ordered(db.find(Person).sort(Person.rank.desc)) == ["dave", "Bob", "Alice", "Eve", "Carol"]

    async def test_sort_with_a_filter(self, db: Ommi) -> None:
        """Sorting applies to the filtered rows."""
        await _seed_people(db)
        assert await _ordered(db.find(Person.active == True).sort(Person.score.desc)) == [  # noqa: E712
            "Carol",
            "Alice",
            "dave",
        ]

    async def test_sort_one_returns_the_first_in_order(self, db: Ommi) -> None:
        """``.one`` on a sorted query returns the first row of that order."""
        await _seed_people(db)
        assert (await db.find(Person).sort(Person.age.desc).one.or_raise()).name == "Eve"
        assert (await db.find(Person.age == 25).sort(Person.name.desc).one.or_raise()).name == "dave"

    async def test_sort_rejects_non_fields(self, db: Ommi) -> None:
        """``sort()`` takes fields or ``.asc``/``.desc`` only: anything else is a ``QueryError``."""
        with pytest.raises(QueryError):
            db.find(Person).sort("age")

    # -- limit and pages ---------------------------------------------------

    async def test_limit_first_page(self, db: Ommi) -> None:
        """``limit(n)`` returns the first ``n`` rows of the sorted result."""
        await db.add(*[Item(p, id=p + 1) for p in (11, 3, 7, 0, 9, 1, 5, 2, 10, 4, 8, 6)]).or_raise()
        query = db.find(Item).sort(Item.position)
        assert [i.position for i in await _rows(query.limit(5))] == [0, 1, 2, 3, 4]
        assert [i.position for i in await _rows(query.limit(5, 0))] == [0, 1, 2, 3, 4]

    async def test_limit_pages_are_zero_based(self, db: Ommi) -> None:
        """``limit(5, 1)`` returns items 5..9; the last page is partial; past the end is empty."""
        await db.add(*[Item(p, id=p + 1) for p in (11, 3, 7, 0, 9, 1, 5, 2, 10, 4, 8, 6)]).or_raise()
        query = db.find(Item).sort(Item.position)
        assert [i.position for i in await _rows(query.limit(5, 1))] == [5, 6, 7, 8, 9]
        assert [i.position for i in await _rows(query.limit(5, 2))] == [10, 11]
        assert [i.position for i in await _rows(query.limit(5, 3))] == []
        assert [i.position for i in await _rows(query.limit(1, 7))] == [7]

    async def test_limit_pages_cover_everything_once(self, db: Ommi) -> None:
        """Walking the pages of a sorted query with ties yields every row exactly once."""
        await db.add(*[Item(p % 3, group=str(p), id=p + 1) for p in range(10)]).or_raise()
        seen: list[int] = []
        for page in range(4):
            seen += [i.id for i in await _rows(db.find(Item).sort(Item.position.desc).limit(3, page))]
        assert sorted(seen) == list(range(1, 11))
        assert seen[:4] == [3, 6, 9, 2]

    async def test_limit_without_sort_is_ordered_by_key(self, db: Ommi) -> None:
        """A limited query without ``sort`` is ordered by key, so pages are deterministic."""
        await db.add(*[Item(p, id=10 - p) for p in range(10)]).or_raise()
        assert [i.id for i in await _rows(db.find(Item).limit(4))] == [1, 2, 3, 4]
        assert [i.id for i in await _rows(db.find(Item).limit(4, 2))] == [9, 10]

    async def test_limit_with_filter_and_sort(self, db: Ommi) -> None:
        """Limits apply after filtering and sorting."""
        await _seed_people(db)
        query = db.find(Person.age < 40).sort(Person.score.desc)
        assert await _ordered(query.limit(2)) == ["Carol", "Alice"]
        assert await _ordered(query.limit(2, 1)) == ["Bob", "dave"]

    async def test_limit_rejects_invalid_values(self, db: Ommi) -> None:
        """``limit`` needs an int >= 1 and a page >= 0; anything else is a ``QueryError``."""
        for args in ((0,), (-1,), (5, -1), (True,), (2.5,)):
            with pytest.raises(QueryError):
                db.find(Item).limit(*args)

    async def test_limit_builders_are_immutable(self, db: Ommi) -> None:
        """``sort``/``limit`` return new queries; the original keeps matching everything."""
        await _seed_people(db)
        base = db.find(Person)
        limited = base.sort(Person.age).limit(2)
        assert await _ordered(limited) == ["dave", "Bob"]
        assert await base.count.or_raise() == 5
        assert await _names(base) == EVERYONE
