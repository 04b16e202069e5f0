"""Conformance tests: ``aggregate(...)``, ``group_by(...)`` and ``having(...)``.

The meaning is :mod:`ommi.query.aggregate`'s (the reference driver computes it
in Python): SQL's NULL rules (``Count()`` counts rows, the others skip NULL and
give ``None`` over no value), one dict over no row, groups ordered by their
fields with NULL first, an integer sum outside 64 bits refused on every
backend, exact ``Decimal`` sums, ``Avg`` of integers as the exact sum over the
count. Bad requests are refused before any I/O.
"""

# Model classes double as query operands (``AggPost.views``): a type checker
# sees plain values where the aggregates take fields.
# mypy: disable-error-code="arg-type, comparison-overlap, misc, operator, union-attr"

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from ommi import Aggregated, Avg, Count, Max, Min, Ommi, QueryError, Sum, ValidationError
from ommi.models.types import INT64_MAX, INT64_MIN
from ommi.results import DBAction
from ommi.testing import record_queries

from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import DecimalRecord, Priority, PriorityRecord, TextRecord
from ommi_testkit.suites.models_aggregate import AggAuthor, AggKeywords, AggPost, agg_models

D = decimal.Decimal
DAY = datetime.date(2024, 1, 1)


async def _seed(db: Ommi) -> None:
    """Two authors; four posts of ``ann`` (one all-NULL), one of ``bob``; ``cyd`` has none."""
    await db.add(AggAuthor("ann", "red", id=1), AggAuthor("bob", "red", id=2), AggAuthor("cyd", None, id=3)).or_raise()
    await db.add(
        AggPost(1, "a", 10, 1.5, DAY, id=1),
        AggPost(1, "b", 20, 2.5, DAY + datetime.timedelta(days=3), id=2),
        AggPost(1, "b", 5, None, None, id=3),
        AggPost(1, "c", None, None, None, id=4),
        AggPost(2, "a", 7, -1.0, DAY - datetime.timedelta(days=1), id=5),
    ).or_raise()


class AggregateTests(SuiteBase):
    """``aggregate``, ``group_by`` and ``having``: SQL's semantics, identical on every driver."""

    @pytest_asyncio.fixture
    async def agg_db(self, db: Ommi) -> AsyncIterator[Ommi]:
        """``db`` with the aggregate suite's tables (``agg_models``) created, dropped again afterwards."""
        await db.remove_models(agg_models)
        await db.use_models(agg_models)
        try:
            yield db
        finally:
            await db.remove_models(agg_models)

    # -- one group ----------------------------------------------------------------------

    async def test_aggregate_every_function_with_nulls(self, agg_db: Ommi) -> None:
        """Count() counts rows, Count(f) non-NULL values; Sum/Avg/Min/Max skip NULL and keep their types."""
        await _seed(agg_db)
        result = await (
            agg_db.find(AggPost)
            .aggregate(
                n=Count(),
                viewed=Count(AggPost.views),
                total=Sum(AggPost.views),
                mean=Avg(AggPost.views),
                low=Min(AggPost.views),
                high=Max(AggPost.views),
                first=Min(AggPost.day),
                last=Max(AggPost.day),
                title=Max(AggPost.title),
            )
            .or_raise()
        )
        assert result == {
            "n": 5,
            "viewed": 4,
            "total": 42,
            "mean": 10.5,
            "low": 5,
            "high": 20,
            "first": DAY - datetime.timedelta(days=1),
            "last": DAY + datetime.timedelta(days=3),
            "title": "c",
        }
        assert type(result["total"]) is int and type(result["mean"]) is float and type(result["first"]) is datetime.date

    async def test_aggregate_floats(self, agg_db: Ommi) -> None:
        """Sum and Avg of a float field are floats over the non-NULL values; Min and Max are the values."""
        await _seed(agg_db)
        result = await (
            agg_db.find(AggPost)
            .aggregate(
                total=Sum(AggPost.score),
                mean=Avg(AggPost.score),
                low=Min(AggPost.score),
                high=Max(AggPost.score),
                n=Count(AggPost.score),
            )
            .or_raise()
        )
        assert result["n"] == 3 and result["low"] == -1.0 and result["high"] == 2.5
        assert math.isclose(result["total"], 3.0) and math.isclose(result["mean"], 1.0)
        assert type(result["total"]) is float and type(result["mean"]) is float

    async def test_aggregate_decimals_are_exact(self, agg_db: Ommi) -> None:
        """Decimal Sum is exact (0.1 + 0.2 + 0.30 - 0.6 == 0), Avg is the exact sum over the count to 28 digits."""
        values = [D("0.1"), D("0.2"), D("0.30"), D("-0.6")]
        await agg_db.add(*(DecimalRecord(v, v, id=i) for i, v in enumerate(values, start=1))).or_raise()
        await agg_db.add(DecimalRecord(D("1.0"), None, id=5)).or_raise()
        everything = await (
            agg_db.find(DecimalRecord)
            .aggregate(
                total=Sum(DecimalRecord.maybe),
                mean=Avg(DecimalRecord.maybe),
                low=Min(DecimalRecord.maybe),
                high=Max(DecimalRecord.maybe),
                n=Count(DecimalRecord.maybe),
            )
            .or_raise()
        )
        assert everything == {"total": 0, "mean": 0, "low": D("-0.6"), "high": D("0.30"), "n": 4}
        assert isinstance(everything["total"], D) and isinstance(everything["mean"], D)
        mean = (
            await agg_db.find(DecimalRecord, DecimalRecord.id <= 3).aggregate(mean=Avg(DecimalRecord.value)).or_raise()
        )
        assert mean["mean"] == D("0.2")
        await agg_db.add(
            DecimalRecord(D("12345678901234567890.123456789"), id=6),
            DecimalRecord(D("0.000000000000000000000000001"), id=7),
        ).or_raise()
        exact = (
            await agg_db.find(DecimalRecord, DecimalRecord.id >= 5).aggregate(total=Sum(DecimalRecord.value)).or_raise()
        )
        assert exact["total"] == D("12345678901234567891.123456789000000000000000001")
        odd = agg_db.find(DecimalRecord, DecimalRecord.id.in_([1, 2, 5])).aggregate(mean=Avg(DecimalRecord.value))
        assert (await odd.or_raise())["mean"] == decimal.Context(prec=28).divide(D("1.3"), D(3))
        groups = (
            await agg_db.find(DecimalRecord, DecimalRecord.id <= 5)
            .group_by(DecimalRecord.maybe)
            .aggregate(n=Count())
            .or_raise()
        )
        assert [(g["maybe"], g["n"]) for g in groups] == [
            (None, 1),
            (D("-0.6"), 1),
            (D("0.1"), 1),
            (D("0.2"), 1),
            (D("0.30"), 1),
        ]

    async def test_aggregate_avg_of_ints_is_the_exact_mean(self, agg_db: Ommi) -> None:
        """Avg of int values is their exact sum divided by the count, correctly rounded (no 64-bit overflow)."""
        await agg_db.add(AggAuthor("ann", id=1)).or_raise()
        await agg_db.add(
            AggPost(1, views=INT64_MAX, id=1), AggPost(1, views=INT64_MAX - 1, id=2), AggPost(1, views=2, id=3)
        ).or_raise()
        big = await agg_db.find(AggPost, AggPost.id <= 2).aggregate(mean=Avg(AggPost.views)).or_raise()
        assert big["mean"] == (2 * INT64_MAX - 1) / 2
        small = await agg_db.find(AggPost, AggPost.id >= 2).aggregate(mean=Avg(AggPost.views)).or_raise()
        assert small["mean"] == (INT64_MAX + 1) / 2

    async def test_aggregate_min_max_order_as_ommi_sorts(self, agg_db: Ommi) -> None:
        """Text compares by code point ("B" < "a" < "é"); an IntEnum's Min/Max decode to members."""
        await agg_db.add(TextRecord("a"), TextRecord("é"), TextRecord("B")).or_raise()
        text = await agg_db.find(TextRecord).aggregate(low=Min(TextRecord.value), high=Max(TextRecord.value)).or_raise()
        assert text == {"low": "B", "high": "é"}
        await agg_db.add(PriorityRecord(Priority.HIGH), PriorityRecord(Priority.LOW)).or_raise()
        ranks = await agg_db.find(PriorityRecord).aggregate(low=Min(PriorityRecord.value)).or_raise()
        assert ranks["low"] is min(Priority.HIGH, Priority.LOW)

    async def test_aggregate_over_no_row_gives_one_dict(self, agg_db: Ommi) -> None:
        """Over an empty table, and over no match: counts 0, every other aggregate None."""
        expected = {"n": 0, "viewed": 0, "total": None, "mean": None, "low": None, "high": None}
        aggregates = {
            "n": Count(),
            "viewed": Count(AggPost.views),
            "total": Sum(AggPost.views),
            "mean": Avg(AggPost.score),
            "low": Min(AggPost.day),
            "high": Max(AggPost.score),
        }
        assert await agg_db.find(AggPost).aggregate(**aggregates).or_raise() == expected
        await _seed(agg_db)
        assert await agg_db.find(AggPost, AggPost.views > 100).aggregate(**aggregates).or_raise() == expected
        nulls = await agg_db.find(AggPost, AggPost.id == 4).aggregate(**aggregates).or_raise()
        assert nulls == expected | {"n": 1}

    # -- groups -------------------------------------------------------------------------

    async def test_group_by_orders_groups_with_null_first(self, agg_db: Ommi) -> None:
        """One dict per group, keyed by the field's attribute name; the NULL group comes first."""
        await _seed(agg_db)
        groups = await agg_db.find(AggPost).group_by(AggPost.day).aggregate(n=Count(), v=Sum(AggPost.views)).or_raise()
        assert groups == [
            {"day": None, "n": 2, "v": 5},
            {"day": DAY - datetime.timedelta(days=1), "n": 1, "v": 7},
            {"day": DAY, "n": 1, "v": 10},
            {"day": DAY + datetime.timedelta(days=3), "n": 1, "v": 20},
        ]

    async def test_group_by_several_fields(self, agg_db: Ommi) -> None:
        """Groups by every combination present, ordered by the fields in group_by order."""
        await _seed(agg_db)
        groups = await (
            agg_db.find(AggPost)
            .group_by(AggPost.title, AggPost.author_id)
            .aggregate(n=Count(), low=Min(AggPost.score))
            .or_raise()
        )
        assert [(g["title"], g["author_id"], g["n"], g["low"]) for g in groups] == [
            ("a", 1, 1, 1.5),
            ("a", 2, 1, -1.0),
            ("b", 1, 2, 2.5),
            ("c", 1, 1, None),
        ]

    async def test_group_by_after_where_leaves_out_empty_groups(self, agg_db: Ommi) -> None:
        """Only groups with a matching row exist; no match at all gives an empty list."""
        await _seed(agg_db)
        groups = await agg_db.find(AggPost, AggPost.views >= 10).group_by(AggPost.title).aggregate(n=Count()).or_raise()
        assert groups == [{"title": "a", "n": 1}, {"title": "b", "n": 1}]
        assert (
            await agg_db.find(AggPost, AggPost.views > 99).group_by(AggPost.title).aggregate(n=Count()).or_raise() == []
        )

    async def test_having_with_and_or(self, agg_db: Ommi) -> None:
        """having() filters groups on aggregate names; & and | combine; NULL fails every comparison but !=."""
        await _seed(agg_db)
        grouped = agg_db.find(AggPost).group_by(AggPost.title)
        two = await grouped.having(Aggregated("n") >= 2).aggregate(n=Count()).or_raise()
        assert two == [{"title": "a", "n": 2}, {"title": "b", "n": 2}]
        either = await (
            grouped.having((Aggregated("n") < 2) | (Aggregated("v") == 17)).aggregate(n=Count(), v=Sum(AggPost.views))
        ).or_raise()
        assert [g["title"] for g in either] == ["a", "c"]
        both = await (
            grouped.having((Aggregated("n") < 2) & (Aggregated("v") == None))  # noqa: E711
            .aggregate(n=Count(), v=Sum(AggPost.views))
            .or_raise()
        )
        assert both == [{"title": "c", "n": 1, "v": None}]
        not_25 = await grouped.having(Aggregated("v") != 25).aggregate(v=Sum(AggPost.views)).or_raise()
        assert [g["title"] for g in not_25] == ["a", "c"]
        chained = (
            await grouped.having(Aggregated("n") >= 1)
            .having(Aggregated("m") > 2.0)
            .aggregate(n=Count(), m=Avg(AggPost.views))
            .or_raise()
        )
        assert chained == [{"title": "a", "n": 2, "m": 8.5}, {"title": "b", "n": 2, "m": 12.5}]

    @requires("related_conditions")
    async def test_aggregate_with_a_related_condition_counts_each_row_once(self, agg_db: Ommi) -> None:
        """A condition on a related model matching several related rows still counts each target row once."""
        await _seed(agg_db)
        result = await agg_db.find(AggAuthor, AggPost.views > 0).aggregate(n=Count(), ids=Sum(AggAuthor.id)).or_raise()
        assert result == {"n": 2, "ids": 3}
        teams = await (
            agg_db.find(AggAuthor, AggPost.title == "b").group_by(AggAuthor.team).aggregate(n=Count()).or_raise()
        )
        assert teams == [{"team": "red", "n": 1}]
        posts = (
            await agg_db.find(AggPost, AggAuthor.name == "ann").aggregate(n=Count(), v=Sum(AggPost.views)).or_raise()
        )
        assert posts == {"n": 4, "v": 35}

    # -- limits and overflow ---------------------------------------------------------------

    async def test_aggregate_integer_sum_outside_64_bits_fails(self, agg_db: Ommi) -> None:
        """A sum past the signed 64-bit range is a ValidationError; one passing through it on the way is exact."""
        await agg_db.add(AggAuthor("ann", id=1)).or_raise()
        await agg_db.add(
            AggPost(1, views=INT64_MAX, id=1), AggPost(1, views=1, id=2), AggPost(1, views=-1, id=3)
        ).or_raise()
        fits = await agg_db.find(AggPost).aggregate(total=Sum(AggPost.views)).or_raise()
        assert fits == {"total": INT64_MAX}
        with pytest.raises(ValidationError):
            await agg_db.find(AggPost, AggPost.id <= 2).aggregate(total=Sum(AggPost.views)).or_raise()
        grouped = agg_db.find(AggPost, AggPost.id <= 2).group_by(AggPost.author_id)
        with pytest.raises(ValidationError):
            await grouped.aggregate(total=Sum(AggPost.views)).or_raise()
        await agg_db.add(AggPost(1, views=INT64_MIN, id=4), AggPost(1, views=-1, id=5)).or_raise()
        with pytest.raises(ValidationError):
            await agg_db.find(AggPost, AggPost.id >= 4).aggregate(total=Sum(AggPost.views)).or_raise()

    async def test_aggregate_float_sum_overflow_fails(self, agg_db: Ommi) -> None:
        """A float Sum or Avg whose sum overflows a double is a ValidationError; Min and Max still answer."""
        await agg_db.add(AggAuthor("ann", id=1)).or_raise()
        await agg_db.add(AggPost(1, score=1.7e308, id=1), AggPost(1, score=1.7e308, id=2)).or_raise()
        for aggregate in (Sum(AggPost.score), Avg(AggPost.score)):
            with pytest.raises(ValidationError):
                await agg_db.find(AggPost).aggregate(v=aggregate).or_raise()
        extremes = await agg_db.find(AggPost).aggregate(n=Count(AggPost.score), high=Max(AggPost.score)).or_raise()
        assert extremes == {"n": 2, "high": 1.7e308}

    # -- names ------------------------------------------------------------------------------

    async def test_aggregate_fields_named_like_sql_keywords(self, agg_db: Ommi) -> None:
        """Fields called count, sum, group and select, in a table called group, group and aggregate."""
        await agg_db.add(
            AggKeywords("x", 1, 10, "s"), AggKeywords("x", 2, None, "t"), AggKeywords(None, 3, 5, None)
        ).or_raise()
        groups = await (
            agg_db.find(AggKeywords)
            .group_by(AggKeywords.group)
            .having(Aggregated("total") > 0)
            .aggregate(total=Sum(AggKeywords.sum), count_=Count(AggKeywords.count), select=Max(AggKeywords.select))
            .or_raise()
        )
        assert groups == [
            {"group": None, "total": 5, "count_": 1, "select": None},
            {"group": "x", "total": 10, "count_": 2, "select": "t"},
        ]
        named = await agg_db.find(AggKeywords).aggregate(count=Count(), sum=Sum(AggKeywords.count)).or_raise()
        assert named == {"count": 3, "sum": 6}

    # -- refusals ----------------------------------------------------------------------------

    async def test_aggregate_refusals_before_io(self, agg_db: Ommi) -> None:
        """Malformed aggregations are QueryErrors (bad having values ValidationErrors) and send nothing."""
        await _seed(agg_db)
        with pytest.raises(QueryError):
            Sum(AggPost.title)
        with pytest.raises(QueryError):
            Avg(AggPost.day)
        with pytest.raises(QueryError):
            Min(AggKeywords)
        with pytest.raises(QueryError):
            agg_db.find(AggPost).group_by()
        with pytest.raises(QueryError):
            agg_db.find(AggPost).group_by(AggPost.title, AggPost.title)
        with pytest.raises(QueryError):
            agg_db.find(AggPost).group_by(AggPost.title).having()
        find = agg_db.find(AggPost)
        grouped = find.group_by(AggPost.title)
        bad: list[tuple[type[Exception], DBAction[Any]]] = [
            (QueryError, find.aggregate()),
            (QueryError, find.aggregate(n=5)),
            (QueryError, find.limit(2).aggregate(n=Count())),
            (QueryError, find.sort(AggPost.views).aggregate(n=Count())),
            (QueryError, find.aggregate(n=Count(AggAuthor.name))),
            (QueryError, agg_db.find(AggPost).group_by(AggAuthor.name).aggregate(n=Count())),
            (QueryError, grouped.aggregate(title=Count())),
            (QueryError, grouped.having(Aggregated("m") > 1).aggregate(n=Count())),
            (QueryError, grouped.having(AggPost.views > 1).aggregate(n=Count())),
            (QueryError, agg_db.find(AggPost, Aggregated("n") > 1).aggregate(n=Count())),
            (ValidationError, grouped.having(Aggregated("n") > 1.5).aggregate(n=Count())),
            (ValidationError, grouped.having(Aggregated("d") > "soon").aggregate(d=Max(AggPost.day))),
        ]
        with record_queries() as recorded:
            for error, action in bad:
                with pytest.raises(error):
                    await action.or_raise()
        assert recorded.count == 0, recorded.events
        assert await agg_db.find(AggPost).count.or_raise() == 5

    @requires("transactions")
    async def test_aggregate_inside_a_transaction(self, agg_db: Ommi) -> None:
        """Inside a transaction the aggregate sees the transaction's own writes; a rollback takes them back."""
        await _seed(agg_db)
        async with agg_db.transaction() as t:
            await t.add(AggPost(2, "z", 100, id=9)).or_raise()
            inside = await t.find(AggPost).group_by(AggPost.author_id).aggregate(v=Sum(AggPost.views)).or_raise()
            assert inside == [{"author_id": 1, "v": 35}, {"author_id": 2, "v": 107}]
            await t.rollback()
        after = await agg_db.find(AggPost).aggregate(v=Sum(AggPost.views)).or_raise()
        assert after == {"v": 42}

    async def test_aggregate_cancelled_leaves_the_database_usable(self, agg_db: Ommi) -> None:
        """An aggregate cancelled while it runs raises CancelledError; the next one answers normally."""
        await _seed(agg_db)
        for steps in range(4):
            task = asyncio.ensure_future(agg_db.find(AggPost).group_by(AggPost.title).aggregate(n=Count()).or_raise())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        again = await agg_db.find(AggPost).group_by(AggPost.title).aggregate(n=Count()).or_raise()
        assert [g["n"] for g in again] == [2, 2, 1]

    async def test_aggregate_is_one_query(self, agg_db: Ommi) -> None:
        """An aggregate is one driver operation, recorded as ``aggregate``."""
        await _seed(agg_db)
        with record_queries() as recorded:
            await agg_db.find(AggPost).group_by(AggPost.title).aggregate(n=Count()).or_raise()
        assert [e.operation for e in recorded.events] == ["aggregate"]
        assert recorded.events[0].rows == 3
