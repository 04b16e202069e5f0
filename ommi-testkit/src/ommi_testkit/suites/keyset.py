"""Conformance tests: keyset pagination, ``find(...).sort(...).after(row)`` and ``.before(row)``.

The meaning is :mod:`ommi.query.keyset`'s: the rows strictly after (before)
the given row in the query's sort order, the key breaking ties, NULL first
ascending and last descending. Core builds an ordinary condition from the
row's values, so every driver runs it without knowing about cursors; these
tests check that each driver's comparisons, NULL tests and sort agree on it.
"""

# Model classes double as query operands (``Person.age``), which a type checker
# cannot see without a plugin; those checks are off here.
# mypy: disable-error-code="misc, attr-defined, arg-type, operator, union-attr, call-arg"

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ommi import Ommi, QueryError, ValidationError
from ommi.query.find import FindQuery

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase
from ommi_testkit.suites.models import Item, Order, Person, Placement

# (name, age, score, active, nickname, rank, id): duplicate ages, scores and
# ranks, NULL nicknames and ranks; keys not in insertion order. Keys stay below
# 10: nx-27017, the wire server the MongoDB tests run on, sorts integer keys as
# text (1, 10, 2), a gap ommi_mongodb._testserver_compat lists.
PEOPLE = [
    ("Ann", 30, 1.5, True, "a", 2, 7),
    ("Ben", 25, 2.5, False, None, None, 3),
    ("Cid", 30, 2.5, True, "c", 1, 9),
    ("Dot", 41, 0.0, False, None, 2, 1),
    ("Eli", 25, 1.5, True, "e", None, 8),
    ("Fay", 30, 0.0, False, "a", 3, 4),
    ("Gus", 19, 2.5, True, None, 1, 6),
    ("Hal", 41, 1.5, True, "h", None, 2),
    ("Ivy", 25, 0.0, False, "a", 2, 5),
]

SORTS: list[tuple[str, Callable[[], tuple[Any, ...]]]] = [
    ("key only", lambda: ()),
    ("age", lambda: (Person.age,)),
    ("age desc", lambda: (Person.age.desc,)),
    ("rank (NULLs)", lambda: (Person.rank,)),
    ("rank desc (NULLs)", lambda: (Person.rank.desc,)),
    ("nickname, age desc", lambda: (Person.nickname, Person.age.desc)),
    ("active desc, rank, score desc", lambda: (Person.active.desc, Person.rank, Person.score.desc)),
    ("score, id desc", lambda: (Person.score, Person.id.desc)),
]


async def _seed(db: Ommi) -> None:
    await db.add(*[Person(n, a, s, act, nick, r, id=i) for n, a, s, act, nick, r, i in PEOPLE]).or_raise()


def _query(db: Ommi, sort: tuple[Any, ...], *conditions: Any) -> FindQuery[Any]:
    query = db.find(Person, *conditions)
    return query.sort(*sort) if sort else query


async def _forward(db: Ommi, sort: tuple[Any, ...], size: int, *conditions: Any) -> list[Any]:
    """Every row, page after page of ``size`` with ``.after(last)``."""
    seen: list[Any] = []
    while True:
        query = _query(db, sort, *conditions)
        page = await fetch((query.after(seen[-1]) if seen else query).limit(size))
        assert len(page) <= size
        if not page:
            return seen
        seen.extend(page)


async def _backward(db: Ommi, sort: tuple[Any, ...], size: int, last: Any, *conditions: Any) -> list[Any]:
    """Every row up to ``last``, page before page of ``size`` with ``.before(first)``, in the query's order."""
    seen = [last]
    while True:
        page = await fetch(_query(db, sort, *conditions).before(seen[0]).limit(size))
        assert len(page) <= size
        if not page:
            return seen
        seen[:0] = page


def _ids(rows: list[Any]) -> list[int]:
    return [row.id for row in rows]


class KeysetTests(SuiteBase):
    """``.after(row)`` / ``.before(row)``: strict, stable pages in any sort, NULLs and ties included."""

    @pytest.mark.parametrize("sort", [s for _, s in SORTS], ids=[n for n, _ in SORTS])
    async def test_keyset_pages_cover_every_row_once(self, db: Ommi, sort: Callable[[], tuple[Any, ...]]) -> None:
        """Forward with ``.after`` and backward with ``.before``, pages of 1, 3 and 5 give the full order exactly."""
        await _seed(db)
        keys = sort()
        rows = await fetch(_query(db, keys) if keys else db.find(Person).sort(Person.id))
        everything = _ids(rows)
        assert sorted(everything) == sorted(p[-1] for p in PEOPLE)
        for size in (1, 3, 5):
            assert _ids(await _forward(db, keys, size)) == everything, size
            assert _ids(await _backward(db, keys, size, rows[-1])) == everything, size

    async def test_keyset_after_is_strict_and_follows_nulls(self, db: Ommi) -> None:
        """After a NULL ascending come the other NULLs (by key) then every value; descending, NULLs come last."""
        await _seed(db)
        ben = (await fetch(db.find(Person.id == 3)))[0]  # rank NULL
        after = await fetch(db.find(Person).sort(Person.rank).after(ben))
        assert _ids(after) == [8, 6, 9, 1, 5, 7, 4]
        after_desc = await fetch(db.find(Person).sort(Person.rank.desc).after(ben))
        assert _ids(after_desc) == [8]
        dot = (await fetch(db.find(Person.id == 1)))[0]  # rank 2
        assert _ids(await fetch(db.find(Person).sort(Person.rank.desc).after(dot))) == [5, 7, 6, 9, 2, 3, 8]
        assert _ids(await fetch(db.find(Person).sort(Person.rank.desc).before(dot))) == [4]

    async def test_keyset_without_sort_follows_the_key(self, db: Ommi) -> None:
        """Without ``.sort()`` the order is the key's; ``.after`` works with conditions as well."""
        await _seed(db)
        row = (await fetch(db.find(Person.id == 6)))[0]
        assert _ids(await fetch(db.find(Person).after(row))) == [7, 8, 9]
        assert _ids(await fetch(db.find(Person).before(row).limit(2))) == [4, 5]
        assert _ids(await fetch(db.find(Person.age == 30).after(row))) == [7, 9]
        assert await db.find(Person).after(row).count.or_raise() == 3

    async def test_keyset_before_without_limit_and_one(self, db: Ommi) -> None:
        """``.before`` without a limit is every earlier row in order; ``.one`` is the first row ``.all`` gives."""
        await _seed(db)
        row = (await fetch(db.find(Person.id == 6)))[0]
        assert _ids(await fetch(db.find(Person).before(row))) == [1, 2, 3, 4, 5]
        assert (await db.find(Person).before(row).one.or_raise()).id == 1
        assert (await db.find(Person).before(row).limit(2).one.or_raise()).id == 4
        assert (await db.find(Person).after(row).one.or_raise()).id == 7
        first = (await fetch(db.find(Person.id == 1)))[0]
        assert _ids(await fetch(db.find(Person).before(first).limit(3))) == []
        with pytest.raises(Exception, match="no Person"):
            await db.find(Person).before(first).limit(3).one.or_raise()

    async def test_keyset_composite_key_breaks_ties(self, db: Ommi) -> None:
        """A composite key (region, number) breaks ties of a duplicated sort field, both ways."""
        labels = ["x", "y", "x", "x", "y", "z"]
        rows = [
            Placement(region, number, labels[(ord(region) + number) % 6]) for region in "ba" for number in (2, 1, 3)
        ]
        await db.add(*rows).or_raise()
        ordered = await fetch(db.find(Placement).sort(Placement.label.desc))
        expected = sorted(rows, key=lambda p: (-ord(p.label), p.region, p.number))
        assert [(p.region, p.number) for p in ordered] == [(p.region, p.number) for p in expected]
        base = db.find(Placement).sort(Placement.label.desc)
        for size in (1, 2, 4):
            seen: list[Any] = []
            while page := await fetch((base.after(seen[-1]) if seen else base).limit(size)):
                seen.extend(page)
            assert [(p.region, p.number) for p in seen] == [(p.region, p.number) for p in expected], size
            back = await fetch(db.find(Placement).sort(Placement.label.desc).before(expected[-1]).limit(size))
            assert [(p.region, p.number) for p in back] == [(p.region, p.number) for p in expected[-1 - size : -1]]

    async def test_keyset_keyword_column_names(self, db: Ommi) -> None:
        """Sorting fields stored as ``select`` and ``group`` in a table called ``order``."""
        pairs = [("b", 1), ("a", 2), ("b", 1), ("c", 0)]
        await db.add(*[Order(select=s, group_by=g, id=i) for i, (s, g) in enumerate(pairs, 1)]).or_raise()
        rows = await fetch(db.find(Order).sort(Order.select, Order.group_by.desc))
        assert [r.id for r in rows] == [2, 1, 3, 4]
        assert [r.id for r in await fetch(db.find(Order).sort(Order.select, Order.group_by.desc).after(rows[1]))] == [
            3,
            4,
        ]
        assert [r.id for r in await fetch(db.find(Order).sort(Order.group_by).before(rows[0]).limit(1))] == [3]

    async def test_keyset_inserts_between_pages(self, db: Ommi) -> None:
        """Rows inserted (or deleted) between pages never make a page repeat or skip a row that stayed."""
        await _seed(db)
        query = db.find(Person).sort(Person.age, Person.name.desc)
        first = await fetch(query.limit(4))
        await db.add(Person("Aaa", 18, id=100), Person("Zed", 25, id=101), Person("Max", 99, id=102)).or_raise()
        await db.find(Person.id == 1).delete.or_raise()
        rest = await fetch(query.after(first[-1]).limit(100))
        seen = _ids(first) + _ids(rest)
        assert len(seen) == len(set(seen))
        survivors = {p[-1] for p in PEOPLE} - {1}
        assert survivors <= set(seen)
        assert 100 not in seen  # inserted before the cursor
        assert 102 in seen  # after it
        assert _ids(rest) == _ids(await fetch(query))[_ids(await fetch(query)).index(first[-1].id) + 1 :]

    async def test_keyset_delete_and_update_after(self, db: Ommi) -> None:
        """A cursor is a condition: ``delete``/``update`` apply to the rows past it."""
        await db.add(*[Item(position=p, group="g", id=p + 1) for p in range(6)]).or_raise()
        third = (await fetch(db.find(Item.id == 3)))[0]
        assert await db.find(Item).sort(Item.position.desc).after(third).delete.or_raise() == 2
        assert await db.find(Item).before(third).update(group="h").or_raise() == 0
        assert sorted((i.position, i.group) for i in await fetch(db.find(Item))) == [
            (2, "g"),
            (3, "g"),
            (4, "g"),
            (5, "g"),
        ]

    async def test_keyset_refusals(self, db: Ommi) -> None:
        """Wrong rows, two cursors and pages with cursors are refused before any I/O, changing nothing."""
        await _seed(db)
        row = (await fetch(db.find(Person.id == 6)))[0]
        with pytest.raises(QueryError, match="model instance"):
            db.find(Person).after({"id": 6})
        with pytest.raises(QueryError, match="model instance"):
            db.find(Person).before(Person)
        with pytest.raises(QueryError, match="no key"):
            db.find(Person).after(Person("New", 1))
        with pytest.raises(QueryError, match="one cursor"):
            db.find(Person).after(row).before(row)
        with pytest.raises(QueryError, match="one cursor"):
            db.find(Person).after(row).after(row)
        with pytest.raises(QueryError, match="pages and cursors"):
            db.find(Person).after(row).limit(5, 1)
        with pytest.raises(QueryError, match="pages and cursors"):
            db.find(Person).limit(5, 2).before(row)
        with pytest.raises(QueryError, match="finds Person"):
            await db.find(Person).after(Item(position=1, id=1)).all.or_raise()
        with pytest.raises(QueryError, match="finds Person"):
            await db.find(Person).before(Item(position=1, id=1)).count.or_raise()
        broken = Person("Bad", 1, id=6)
        broken.age = "old"  # type: ignore[assignment]  # the wrong type is the point
        with pytest.raises(ValidationError):
            db.find(Person).after(broken)
        assert await db.find(Person).after(row).limit(2, 0).count.or_raise() == 2
        assert await db.find(Person).count.or_raise() == len(PEOPLE)

    async def test_keyset_cursor_is_taken_when_given(self, db: Ommi) -> None:
        """Changing the row after ``.after(row)`` does not move the cursor."""
        await _seed(db)
        row = (await fetch(db.find(Person.id == 4)))[0]
        query = db.find(Person).sort(Person.age).after(row)
        row.age = 0
        row.id = 1
        assert _ids(await fetch(query)) == [7, 9, 1, 2]
