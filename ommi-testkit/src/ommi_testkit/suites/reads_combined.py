"""Conformance tests: the read features of one query used together.

Each read feature has its own suite (projections, aggregates, prefetch,
keyset pages, case-insensitive text, JSON fields); these tests combine them,
where one feature's translation meets another's: a JSON path condition in a
projection, an ``exists`` probe or an aggregate (MongoDB checks paths in Python
after a narrowing filter, so the fields a condition reads must reach it), a
case-insensitive match in every action, ``.values`` and ``.prefetch`` on a
keyset page (``.before(row).limit(n)`` runs reversed and is turned back), and
the refusals of JSON fields where no order or equality is shared by databases.
"""

# Model classes double as query operands (``Person.age >= 18``): a type checker
# sees comparisons of plain values.
# mypy: disable-error-code="arg-type, union-attr, comparison-overlap, misc, index, call-overload"
# mypy: disable-error-code="attr-defined, call-arg"

from __future__ import annotations

import ommi
import pytest
from ommi import Count, Max, Min, Ommi, Sum
from ommi.errors import QueryError
from ommi.testing import record_queries

from ommi_testkit.suites._support import seed_blog
from ommi_testkit.suites.base import requires
from ommi_testkit.suites.json_fields import JsonTables
from ommi_testkit.suites.models import Person
from ommi_testkit.suites.models_extra import RelPost, RelUser
from ommi_testkit.suites.models_json import JsonDoc


async def _seed_people(db: Ommi) -> list[Person]:
    people = [
        Person("alice", 30, nickname="Al", id=1),
        Person("Bob", 25, id=2),
        Person("ALINE", 25, id=3),
        Person("carol", 35, id=4),
        Person("Dave", 30, id=5),
    ]
    await db.add(*people).or_raise()
    return people


class CombinedReadTests(JsonTables):
    """Projections, exists, aggregates, prefetch, keyset pages, folded text and JSON paths in one query."""

    @requires("json_fields")
    async def test_json_paths_filter_values_exists_count_and_aggregates(self, json_db: Ommi) -> None:
        """A path condition and ``has`` narrow ``.values``, ``.exists``, ``.count`` and ``.aggregate`` alike."""
        await json_db.add(
            JsonDoc("a", meta={"plan": "pro", "n": 1}, tags=["x"]),
            JsonDoc("b", meta={"plan": "free", "n": 2}, tags=["y"]),
            JsonDoc("c", meta={"plan": "pro", "n": 3}, tags=[]),
            JsonDoc("d", meta={"plan": ["pro"]}, tags=["x", "y"]),
        ).or_raise()
        pro = JsonDoc.meta["plan"] == "pro"
        has_x = ommi.field(JsonDoc.tags).has("x")
        rows = await json_db.find(JsonDoc, pro).sort(JsonDoc.name).values(JsonDoc.name, JsonDoc.meta).to_list()
        assert rows == [("a", {"plan": "pro", "n": 1}), ("c", {"plan": "pro", "n": 3})]
        assert await json_db.find(JsonDoc, has_x).sort(JsonDoc.name).values(JsonDoc.tags).to_list() == [
            (["x"],),
            (["x", "y"],),
        ]
        assert await json_db.find(JsonDoc, JsonDoc.meta["plan"] == "none").exists.or_raise() is False
        assert await json_db.find(JsonDoc, pro, JsonDoc.meta["n"] > 2).exists.or_raise() is True
        assert await json_db.find(JsonDoc, has_x).count.or_raise() == 2
        totals = await json_db.find(JsonDoc, pro).aggregate(n=Count(), names=Min(JsonDoc.name)).or_raise()
        assert totals == {"n": 2, "names": "a"}
        groups = await json_db.find(JsonDoc, has_x).group_by(JsonDoc.name).aggregate(n=Count()).or_raise()
        assert groups == [{"name": "a", "n": 1}, {"name": "d", "n": 1}]

    async def test_json_fields_are_refused_where_databases_order_them_differently(self, db: Ommi) -> None:
        """``group_by``, ``Min``/``Max``/``Sum`` and a distinct projection of a JSON field are QueryErrors before I/O.

        The refusals are core's, the same on every driver (no table is needed).
        """
        with record_queries() as recorded:
            with pytest.raises(QueryError, match="JSON"):
                _ = db.find(JsonDoc).group_by(JsonDoc.meta)
            for aggregate in (lambda: Min(JsonDoc.meta), lambda: Max(JsonDoc.tags), lambda: Sum(JsonDoc.meta)):
                with pytest.raises(QueryError):
                    await db.find(JsonDoc).aggregate(m=aggregate()).or_raise()
            with pytest.raises(QueryError, match="JSON"):
                await db.find(JsonDoc).values(JsonDoc.meta).distinct().to_list()
        assert recorded.count == 0

    @requires("case_insensitive_text")
    async def test_case_insensitive_match_in_every_action(self, db: Ommi) -> None:
        """``case_sensitive=False`` narrows ``.values``, ``.exists``, ``.count``, ``.aggregate`` and ``.delete``."""
        await _seed_people(db)
        al = Person.name.startswith("al", case_sensitive=False)
        assert await db.find(Person, al).sort(Person.id).values(Person.name).to_list() == [("alice",), ("ALINE",)]
        assert await db.find(Person, Person.name.endswith("VE", case_sensitive=False)).exists.or_raise() is True
        assert await db.find(Person, Person.name.contains("zz", case_sensitive=False)).exists.or_raise() is False
        assert await db.find(Person, al).count.or_raise() == 2
        grouped = await db.find(Person, al).group_by(Person.age).aggregate(n=Count()).or_raise()
        assert grouped == [{"age": 25, "n": 1}, {"age": 30, "n": 1}]
        assert await db.find(Person, al).delete.or_raise() == 2
        assert sorted(n for (n,) in await db.find(Person).values(Person.name).to_list()) == ["Bob", "Dave", "carol"]

    async def test_values_and_exists_on_keyset_pages_follow_the_page(self, db: Ommi) -> None:
        """``.values`` of ``.after`` / ``.before(row).limit(n)`` pages give the rows ``.all`` gives, in its order."""
        people = await _seed_people(db)
        by_age = db.find(Person).sort(Person.age, Person.name)
        everyone = [(p.age, p.name) for p in await by_age.all.to_list()]
        middle = next(p for p in people if p.name == "Dave")
        position = everyone.index((middle.age, middle.name))
        after = by_age.after(middle)
        before = by_age.before(middle).limit(2)
        assert await after.values(Person.age, Person.name).to_list() == everyone[position + 1 :]
        assert [(p.age, p.name) for p in await before.all.to_list()] == everyone[position - 2 : position]
        assert await before.values(Person.age, Person.name).to_list() == everyone[position - 2 : position]
        assert await before.values(Person.age, Person.name).distinct().to_list() == everyone[position - 2 : position]
        assert await before.exists.or_raise() is True
        assert await before.count.or_raise() == 2
        last = next(p for p in people if (p.age, p.name) == everyone[-1])
        assert await by_age.after(last).exists.or_raise() is False
        assert await by_age.after(last).values(Person.name).to_list() == []

    @requires("related_conditions")
    async def test_prefetch_on_keyset_pages_loads_the_page_only(self, db: Ommi) -> None:
        """A keyset page with ``prefetch`` loads its rows' relations, then awaiting them sends nothing."""
        blog = await seed_blog(db)
        by_name = db.find(RelUser).sort(RelUser.name)
        with record_queries() as recorded:
            page = await by_name.after(blog.alice).limit(1).prefetch(RelUser.posts).all.to_list()
            backward = await by_name.before(blog.carol).limit(2).prefetch(RelUser.posts).all.to_list()
        assert [u.name for u in page] == ["Bob"]
        assert [u.name for u in backward] == ["Alice", "Bob"]
        assert recorded.count == 4
        with record_queries() as after_loading:
            assert await page[0].posts == []
            assert sorted(p.title for p in await backward[0].posts) == ["hello", "x", "x-ray"]
        assert after_loading.count == 0

    @requires("related_conditions", "case_insensitive_text")
    async def test_aggregate_over_a_folded_match_on_related_rows_counts_each_row_once(self, db: Ommi) -> None:
        """A case-insensitive condition on a related model joins; each target row is counted once."""
        blog = await seed_blog(db)
        x_writers = RelPost.title.startswith("X", case_sensitive=False)
        assert await db.find(RelUser, x_writers).aggregate(n=Count()).or_raise() == {"n": 2}
        assert await db.find(RelUser, x_writers).sort(RelUser.name).values(RelUser.name).to_list() == [
            (blog.alice.name,),
            (blog.carol.name,),
        ]
        assert await db.find(RelUser, x_writers, RelUser.name == "Bob").exists.or_raise() is False
