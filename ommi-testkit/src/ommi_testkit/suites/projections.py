"""Conformance tests: ``.values(...)`` / ``.distinct()`` projections, ``.exists``, and ``db.raw`` on SQL drivers.

``.values(A.x, A.y)`` streams tuples of the fields' decoded values in the
query's order; ``.distinct()`` keeps each different tuple once (``None``
equal to ``None``), sorted by projected fields only (the requested sort, then
the other projected fields ascending, ``None`` first), the window applying to
the distinct tuples. ``.exists`` is one cheap query. ``db.raw(sql, params)``
(capability ``raw_sql``) runs the database's own SQL with the client's
paramstyle, inside the transaction it is called on. Bad input is refused
before any I/O.
"""

# Model classes double as query operands (``Person.age >= 18``): a type checker
# sees comparisons of plain values.
# mypy: disable-error-code="arg-type, union-attr, comparison-overlap, misc, attr-defined, call-overload"

from __future__ import annotations

import asyncio
import datetime
import decimal
import uuid
from typing import Any

import pytest
from ommi import Ommi
from ommi.drivers import Driver
from ommi.errors import OmmiError, QueryError, TransactionError, UnsupportedFeature
from ommi.models.schema import get_schema
from ommi.testing import record_queries

from ommi_testkit.suites._support import seed_blog
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import (
    Color,
    DecimalRecord,
    Everything,
    FloatRecord,
    Item,
    Order,
    Person,
    Priority,
)
from ommi_testkit.suites.models_extra import RelPost, RelUser


async def _seed_people(db: Ommi) -> None:
    # Keys differ from insertion order: ties must break by key.
    await db.add(
        Person("Alice", 30, 88.5, True, "Al", 1, id=5),
        Person("Bob", 25, 72.0, False, None, 2, id=4),
        Person("Carol", 35, 95.25, True, "Caz", None, id=3),
        Person("dave", 25, 60.0, True, None, 3, id=2),
        Person("Eve", 40, 72.0, False, "Evie", None, id=1),
    ).or_raise()


def _placeholders(driver: Driver) -> tuple[str, str]:
    """The driver's positional placeholder and a named one (``{}`` for the name), from its SQL dialect."""
    compiler = getattr(driver, "compiler", None)
    placeholder = getattr(getattr(compiler, "dialect", None), "placeholder", None)
    if placeholder == "?":
        return "?", ":{}"
    if placeholder == "%s":
        return "%s", "%({})s"
    pytest.fail(
        f"driver {driver.name!r} declares raw_sql but its paramstyle is unknown to the testkit (placeholder "
        f"{placeholder!r}); the raw tests know '?' (qmark/named) and '%s' (format/pyformat)"
    )


def _table(driver: Driver, model: Any) -> str:
    """The quoted table of ``model`` as the driver's dialect names it (its schema included)."""
    dialect = driver.compiler.dialect
    table: str = dialect.table(get_schema(model))
    return table


class ProjectionTests(SuiteBase):
    """``.values`` / ``.distinct()``, ``.exists`` and ``db.raw``."""

    # -- values ---------------------------------------------------------------------

    async def test_values_tuples_in_query_order(self, db: Ommi) -> None:
        """Tuples of the named fields, in the order given, following the query's sort (key as tie-break)."""
        await _seed_people(db)
        query = db.find(Person).sort(Person.age)
        assert await query.values(Person.name, Person.age).to_list() == [
            ("dave", 25),
            ("Bob", 25),
            ("Alice", 30),
            ("Carol", 35),
            ("Eve", 40),
        ]
        assert await db.find(Person.age > 30).sort(Person.name).values(Person.name).to_list() == [("Carol",), ("Eve",)]
        streamed = [row async for row in db.find(Person).sort(Person.name.desc).values(Person.nickname)]
        assert streamed == [(None,), ("Evie",), ("Caz",), (None,), ("Al",)]  # "dave" sorts after "Eve"
        with record_queries() as recorded:
            iterator = await db.find(Person).sort(Person.id).values(Person.id).or_raise()
            assert [row async for row in iterator] == [(1,), (2,), (3,), (4,), (5,)]
        # One read; its event counts the rows of the first batch (the driver's batch size may split them).
        assert [(e.operation, e.model) for e in recorded.events] == [("select", "Person")]
        assert 1 <= (recorded.events[0].rows or 0) <= 5

    async def test_values_decode_every_storage_type(self, db: Ommi) -> None:
        """Each value decodes to its field's Python type (an Enum field gives the member); ``None`` stays ``None``."""
        full = Everything(
            integer=-(2**40),
            real=2.5,
            flag=True,
            text="žluť 🐍",
            blob=b"\x00\xffab",
            amount=decimal.Decimal("12.340"),
            uid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
            day=datetime.date(2024, 2, 29),
            moment=datetime.datetime(2024, 2, 29, 12, 30, 5, 123000),
            instant=datetime.datetime(2024, 2, 29, 12, 30, 5, 123000, tzinfo=datetime.UTC),
            color=Color.GREEN,
            priority=Priority.HIGH,
        )
        empty = Everything()
        await db.add(full, empty).or_raise()
        fields = (
            Everything.integer,
            Everything.real,
            Everything.flag,
            Everything.text,
            Everything.blob,
            Everything.amount,
            Everything.uid,
            Everything.day,
            Everything.moment,
            Everything.instant,
            Everything.color,
            Everything.priority,
        )
        rows = await db.find(Everything).sort(Everything.id).values(*fields).to_list()
        names = [f.name for f in fields]
        assert rows == [tuple(getattr(full, n) for n in names), tuple(None for _ in names)]
        for value, name in zip(rows[0], names, strict=True):
            assert type(value) is type(getattr(full, name)), name
        assert rows[0][10] is Color.GREEN and rows[0][11] is Priority.HIGH

    async def test_values_a_field_twice_and_a_window(self, db: Ommi) -> None:
        """A field may come twice (the tuple holds it twice); limit/page window the rows as for ``.all``."""
        await _seed_people(db)
        assert await db.find(Person).sort(Person.age).limit(2, 1).values(
            Person.age, Person.name, Person.age
        ).to_list() == [
            (30, "Alice", 30),
            (35, "Carol", 35),
        ]
        assert await db.find(Person).sort(Person.age).limit(2, 1).values(Person.name)(batch_size=1).to_list() == [
            ("Alice",),
            ("Carol",),
        ]

    async def test_values_empty_result(self, db: Ommi) -> None:
        """No match: no tuple, with or without ``distinct``."""
        await _seed_people(db)
        assert await db.find(Person.age > 100).values(Person.name).to_list() == []
        assert await db.find(Person.age > 100).values(Person.name).distinct().to_list() == []
        assert [row async for row in db.find(Person.age > 100).values(Person.age)] == []

    async def test_values_distinct_removes_duplicates_nulls_once(self, db: Ommi) -> None:
        """``distinct()`` keeps each tuple once, ``None`` equal to ``None``, sorted by projected fields, None first."""
        await _seed_people(db)
        assert await db.find(Person).values(Person.rank).distinct().to_list() == [(None,), (1,), (2,), (3,)]
        assert await db.find(Person).values(Person.score, Person.active).distinct().to_list() == [
            (60.0, True),
            (72.0, False),
            (88.5, True),
            (95.25, True),
        ]
        assert await db.find(Person).values(Person.active, Person.nickname).distinct().to_list() == [
            (False, None),
            (False, "Evie"),
            (True, None),
            (True, "Al"),
            (True, "Caz"),
        ]

    async def test_values_distinct_sort_then_window(self, db: Ommi) -> None:
        """The requested sort comes first, then the other projected fields; limit/page apply to distinct tuples."""
        await _seed_people(db)
        descending = db.find(Person).sort(Person.rank.desc).values(Person.rank).distinct()
        assert await descending.to_list() == [(3,), (2,), (1,), (None,)]
        page = db.find(Person).sort(Person.rank.desc).limit(2, 1).values(Person.rank).distinct()
        assert await page.to_list() == [(1,), (None,)]
        by_score = db.find(Person).sort(Person.score.desc).values(Person.active, Person.score).distinct()
        assert await by_score.to_list() == [(True, 95.25), (True, 88.5), (False, 72.0), (True, 60.0)]
        first = db.find(Person).limit(1).values(Person.age).distinct()
        assert await first.to_list() == [(25,)]
        assert await db.find(Person).limit(3, 1).values(Person.age).distinct().to_list() == [(40,)]

    async def test_values_distinct_equal_decimals_and_floats_are_one_tuple(self, db: Ommi) -> None:
        """Values equal as Ommi compares them (``Decimal`` 1.0 and 1.00, float -0.0 and 0.0) make one distinct tuple."""
        await db.add(
            DecimalRecord(decimal.Decimal("1.0")),
            DecimalRecord(decimal.Decimal("1.00")),
            DecimalRecord(decimal.Decimal("2")),
        ).or_raise()
        assert await db.find(DecimalRecord).values(DecimalRecord.value).distinct().to_list() == [
            (decimal.Decimal(1),),
            (decimal.Decimal(2),),
        ]
        await db.add(FloatRecord(-0.0), FloatRecord(0.0), FloatRecord(0.5)).or_raise()
        assert await db.find(FloatRecord).values(FloatRecord.value).distinct().to_list() == [(0.0,), (0.5,)]

    async def test_values_distinct_refuses_sort_on_unprojected_field_before_io(self, db: Ommi) -> None:
        """``distinct()`` with a sort on a field it does not project is a QueryError, and nothing is sent."""
        await _seed_people(db)
        with record_queries() as recorded:
            result = await db.find(Person).sort(Person.age).values(Person.name).distinct()
        assert isinstance(result.exception, QueryError)
        assert "Person.age" in str(result.exception)
        assert recorded.count == 0

    async def test_values_refuses_bad_fields_before_io(self, db: Ommi) -> None:
        """No field, a non-field, another model's field or a ``for_update()`` query: QueryError, no I/O."""
        await _seed_people(db)
        with record_queries() as recorded:
            for action in (
                db.find(Person).values(),
                db.find(Person).values("name"),
                db.find(Person).values(Item.position),
                db.find(Person, Person.age > 1).values(Person.name, Item.group).distinct(),
                db.find(Person).values(Person.name)(batch_size=0),
                db.find(Person).for_update().values(Person.name),
            ):
                result = await action
                assert isinstance(result.exception, QueryError), result
        assert recorded.count == 0

    @requires("related_conditions")
    async def test_values_with_condition_on_related_model(self, db: Ommi) -> None:
        """A condition on another model filters the projection; each target row counts once (no join fan-out)."""
        await seed_blog(db)
        authors = db.find(RelUser, RelPost.title.startswith("x")).sort(RelUser.name).values(RelUser.name)
        assert await authors.to_list() == [("Alice",), ("Carol",)]
        titles = db.find(RelPost, RelUser.name == "Alice").values(RelPost.title).distinct()
        assert await titles.to_list() == [("hello",), ("x",), ("x-ray",)]
        everyone = db.find(RelPost, RelUser.name != "Bob").values(RelPost.title).distinct()
        assert await everyone.to_list() == [("hello",), ("x",), ("x-ray",)]

    async def test_values_columns_named_like_sql_keywords(self, db: Ommi) -> None:
        """Fields stored as ``select``, ``from``, ``group``, ``where`` in a table ``order`` project and group."""
        await db.add(
            Order("a", "f", 2, None, 'q"uote'), Order("a", "f", 2, None, 'q"uote'), Order("b", "g", 1, "w", "x")
        ).or_raise()
        fields = (Order.select, Order.from_, Order.group_by, Order.where, Order.odd)
        assert await db.find(Order).sort(Order.group_by).values(*fields).distinct().to_list() == [
            ("b", "g", 1, "w", "x"),
            ("a", "f", 2, None, 'q"uote'),
        ]
        assert await db.find(Order.group_by == 2).values(Order.select).to_list() == [("a",), ("a",)]

    @requires("transactions")
    async def test_values_and_exists_inside_a_transaction(self, db: Ommi) -> None:
        """Inside a transaction both see its own uncommitted rows."""
        async with db.transaction() as t:
            await t.add(Item(1, "tx"), Item(2, "tx")).or_raise()
            assert await t.find(Item).values(Item.group).distinct().to_list() == [("tx",)]
            assert await t.find(Item.group == "tx").exists.or_raise() is True
            await t.rollback()
        assert await db.find(Item).exists.or_raise() is False

    async def test_values_stream_stopped_early_or_cancelled_releases_cursor(self, db: Ommi) -> None:
        """Breaking out of, or cancelling, a values stream mid-way releases its cursor: later queries work."""
        await db.add(*(Item(i, "g") for i in range(40))).or_raise()
        seen = []
        async for row in db.find(Item).sort(Item.position).values(Item.position)(batch_size=5):
            seen.append(row)
            if len(seen) == 7:
                break
        assert seen == [(i,) for i in range(7)]
        started = asyncio.Event()

        async def slow_reader() -> None:
            async for _ in db.find(Item).values(Item.position, Item.group)(batch_size=3):
                started.set()
                await asyncio.sleep(0.01)

        task = asyncio.create_task(slow_reader())
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await db.find(Item).count.or_raise() == 40
        assert await db.find(Item).values(Item.group).distinct().to_list() == [("g",)]
        await db.add(Item(99, "after")).or_raise()
        assert await db.find(Item.position == 99).exists.or_raise() is True

    @requires("transactions")
    async def test_values_stream_stopped_early_inside_a_transaction(self, db: Ommi) -> None:
        """A values stream left early inside a transaction releases its cursor; the transaction goes on and commits."""
        async with db.transaction() as t:
            await t.add(*(Item(i, "t") for i in range(25))).or_raise()
            seen = []
            async for row in t.find(Item).sort(Item.position).values(Item.position)(batch_size=4):
                seen.append(row)
                if len(seen) == 6:
                    break
            assert seen == [(i,) for i in range(6)]
            assert await t.find(Item.position > 20).values(Item.position).distinct().to_list() == [
                (21,),
                (22,),
                (23,),
                (24,),
            ]
            await t.add(Item(100, "t")).or_raise()
        assert await db.find(Item).count.or_raise() == 26

    async def test_values_and_exists_with_a_huge_in_list(self, db: Ommi) -> None:
        """``in_`` with 40,000 values (past SQLite's 32,766 parameters) works in a projection and in exists."""
        await db.add(*(Item(i, "h") for i in range(30))).or_raise()
        wanted = list(range(0, 80_000, 2))
        assert await db.find(Item.position.in_(wanted)).values(Item.position).distinct().to_list() == [
            (i,) for i in range(0, 30, 2)
        ]
        assert await db.find(Item.position.in_(wanted)).exists.or_raise() is True
        assert await db.find(Item.position.in_(range(1_000, 41_000))).exists.or_raise() is False

    # -- exists ---------------------------------------------------------------------

    async def test_exists_true_and_false_in_one_query(self, db: Ommi) -> None:
        """``.exists`` is a bool, sent as one operation whatever the number of matches."""
        await _seed_people(db)
        with record_queries() as recorded:
            assert await db.find(Person.age == 25).exists.or_raise() is True
            assert await db.find(Person.age == 26).exists.or_raise() is False
            assert await db.find(Person).exists.or_raise() is True
        assert [e.operation for e in recorded.events] == ["exists", "exists", "exists"]
        assert await db.find(Item).exists.or_raise() is False

    async def test_exists_honours_the_window_and_refuses_for_update(self, db: Ommi) -> None:
        """``limit(n, page).exists`` asks whether that page holds a row; ``for_update()`` is refused, no I/O."""
        await _seed_people(db)
        assert await db.find(Person).sort(Person.age).limit(2, 2).exists.or_raise() is True
        assert await db.find(Person).limit(5, 1).exists.or_raise() is False
        assert await db.find(Person.nickname == None).limit(1, 1).exists.or_raise() is True  # noqa: E711
        with record_queries() as recorded:
            result = await db.find(Person).for_update().exists
        assert isinstance(result.exception, QueryError)
        assert recorded.count == 0

    @requires("related_conditions")
    async def test_exists_with_condition_on_related_model(self, db: Ommi) -> None:
        """A condition on a related model decides existence (LEFT JOIN semantics: no post matches a NULL title)."""
        await seed_blog(db)
        assert await db.find(RelUser, RelPost.title == "hello").exists.or_raise() is True
        assert await db.find(RelUser, RelPost.title == "nothing").exists.or_raise() is False
        assert await db.find(RelUser.name == "Bob", RelPost.title == "x").exists.or_raise() is False

    # -- raw --------------------------------------------------------------------------

    @requires("raw_sql")
    async def test_raw_select_with_positional_and_named_params(self, db: Ommi) -> None:
        """``db.raw`` gives the rows as tuples; parameters bind in the driver's paramstyle."""
        await _seed_people(db)
        positional, named = _placeholders(db.driver)
        table = _table(db.driver, Person)
        rows = await db.raw(f"SELECT name, age FROM {table} WHERE age = {positional} ORDER BY name", [25]).or_raise()
        assert [tuple(row) for row in rows] == [("Bob", 25), ("dave", 25)]
        assert all(isinstance(row, tuple) for row in rows)
        named_rows = await db.raw(
            f"SELECT count(*) FROM {table} WHERE age >= {named.format('low')} AND age <= {named.format('high')}",
            {"low": 30, "high": 35},
        ).or_raise()
        assert named_rows == [(2,)]
        with record_queries() as recorded:
            assert await db.raw(f"SELECT name FROM {table} WHERE age > 100").or_raise() == []
        assert [(e.operation, e.model, e.rows) for e in recorded.events] == [("raw", "", 0)]

    @requires("raw_sql")
    async def test_raw_injection_through_params_stays_a_literal(self, db: Ommi) -> None:
        """A hostile value passed as a parameter is compared as text, never run."""
        await _seed_people(db)
        positional, _ = _placeholders(db.driver)
        table = _table(db.driver, Person)
        hostile = f"x'; DELETE FROM {table}; --"
        assert await db.raw(f"SELECT name FROM {table} WHERE name = {positional}", [hostile]).or_raise() == []
        assert await db.raw(f"SELECT {positional}", [hostile]).or_raise() == [(hostile,)]
        assert await db.find(Person).count.or_raise() == 5

    @requires("raw_sql", "transactions")
    async def test_raw_dml_in_a_transaction_is_rolled_back_with_it(self, db: Ommi) -> None:
        """``t.raw`` runs inside the transaction: its writes are seen there and vanish with the rollback."""
        await _seed_people(db)
        positional, _ = _placeholders(db.driver)
        table = _table(db.driver, Person)
        async with db.transaction() as t:
            assert await t.raw(f"DELETE FROM {table} WHERE age = {positional}", [25]).or_raise() == []
            assert await t.find(Person).count.or_raise() == 3
            assert await t.raw(f"SELECT count(*) FROM {table}").or_raise() == [(3,)]
            await t.rollback()
        assert await db.find(Person).count.or_raise() == 5
        await db.raw(f"UPDATE {table} SET age = age + 1 WHERE name = {positional}", ["Eve"]).or_raise()
        assert (await db.find(Person.name == "Eve").one.or_raise()).age == 41

    @requires("raw_sql", "savepoints")
    async def test_raw_inside_a_savepoint_follows_it(self, db: Ommi) -> None:
        """Through an open savepoint ``raw`` runs inside it (undone with it); through its parent it is refused."""
        await _seed_people(db)
        positional, _ = _placeholders(db.driver)
        table = _table(db.driver, Person)
        async with db.transaction() as t:
            async with t.transaction() as inner:
                await inner.raw(f"DELETE FROM {table} WHERE name = {positional}", ["Alice"]).or_raise()
                refused = await t.raw(f"SELECT count(*) FROM {table}")
                assert isinstance(refused.exception, TransactionError)
                await inner.rollback()
            assert await t.raw(f"SELECT count(*) FROM {table}").or_raise() == [(5,)]
        assert await db.find(Person).count.or_raise() == 5

    @requires("raw_sql", "transactions")
    async def test_raw_error_is_translated_and_the_transaction_follows_its_rules(self, db: Ommi) -> None:
        """A syntax error raises an ommi.errors class; the transaction then goes on or refuses, and rolls back."""
        await _seed_people(db)
        table = _table(db.driver, Person)
        outside = await db.raw("SELEC nothing FROM nowhere")
        assert isinstance(outside.exception, OmmiError), outside
        async with db.transaction() as t:
            await t.raw(f"DELETE FROM {table}").or_raise()
            failed = await t.raw("SELEC nothing FROM nowhere")
            assert isinstance(failed.exception, OmmiError), failed
            after = await t.raw("SELECT 1")
            # Either the transaction goes on (SQLite) or refuses until rolled back (PostgreSQL).
            assert after.or_use(None) == [(1,)] or isinstance(after.exception, OmmiError)
            await t.rollback()
        assert await db.find(Person).count.or_raise() == 5
        assert await db.raw("SELECT 1").or_raise() == [(1,)]

    @requires("raw_sql")
    async def test_raw_refuses_bad_arguments_before_io(self, db: Ommi) -> None:
        """A statement that is not a non-empty str, or params that are not a sequence/mapping: QueryError, no I/O."""
        with record_queries() as recorded:
            for action in (db.raw(""), db.raw(b"SELECT 1"), db.raw("SELECT 1", "abc"), db.raw("SELECT 1", 5)):
                result = await action
                assert isinstance(result.exception, QueryError), result
        assert recorded.count == 0

    async def test_raw_without_the_capability_is_unsupported(self, db: Ommi) -> None:
        """A driver without ``raw_sql`` refuses ``db.raw`` with UnsupportedFeature naming it, before any I/O."""
        if db.driver.capabilities.raw_sql:
            pytest.skip(f"driver {db.driver.name!r} declares raw_sql: see the other raw tests")
        with record_queries() as recorded:
            result = await db.raw("SELECT 1")
        assert isinstance(result.exception, UnsupportedFeature)
        assert "raw_sql" in str(result.exception)
        assert recorded.count == 0
