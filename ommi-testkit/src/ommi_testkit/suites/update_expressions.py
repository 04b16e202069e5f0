"""Conformance tests: atomic update expressions, ``update(value=Model.value + 1)`` and field copies.

The meaning is :mod:`ommi.query.arithmetic`'s (the reference driver runs it):
each matched row's new value is computed from that row's values before the
update, in one atomic write; NULL in gives NULL out; a result out of the
field's range fails the whole update and changes no row; a value that breaks a
rule (a key target, a wrong type, another model's field) is refused before any
I/O and changes nothing stored. Concurrent increments lose nothing.

Every test needs the ``update_expressions`` capability (marked per method).
"""

# Model classes double as query operands (``IntRecord.value + 1``): a type
# checker sees arithmetic on plain values and update() takes Any.
# mypy: disable-error-code="arg-type, operator, call-overload"

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal

import pytest
from ommi import Ommi, QueryError, UnsupportedFeature, ValidationError
from ommi.models.types import INT64_MAX, INT64_MIN

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import DecimalRecord, FloatRecord, IntRecord, Person, TextRecord
from ommi_testkit.suites.models_constraints import Member, con_v1

D = decimal.Decimal


async def _ints(db: Ommi) -> list[tuple[int | None, int, int | None]]:
    """Every ``IntRecord`` as ``(id, value, maybe)``, by id."""
    rows = await fetch(db.find(IntRecord).sort(IntRecord.id))
    return [(r.id, r.value, r.maybe) for r in rows]


async def _floats(db: Ommi) -> list[tuple[float, float | None]]:
    rows = await fetch(db.find(FloatRecord).sort(FloatRecord.id))
    return [(r.value, r.maybe) for r in rows]


async def _add_ints(db: Ommi, *pairs: tuple[int, int | None]) -> None:
    await db.add(*(IntRecord(value, maybe, id=i) for i, (value, maybe) in enumerate(pairs, start=1))).or_raise()


class UpdateExpressionTests(SuiteBase):
    """``+ - * /`` and field copies in ``update()``: atomic per row, validated before I/O, all or nothing."""

    # -- arithmetic ---------------------------------------------------------

    @requires("update_expressions")
    async def test_update_expr_increment_and_decrement(self, db: Ommi) -> None:
        """``value + 1`` on every match, ``value - 10`` on a filtered subset; the matched count is returned."""
        await _add_ints(db, (1, None), (5, None), (-3, None))
        assert await db.find(IntRecord).update(value=IntRecord.value + 1).or_raise() == 3
        assert [v for _, v, _ in await _ints(db)] == [2, 6, -2]
        assert await db.find(IntRecord.value > 0).update(value=IntRecord.value - 10).or_raise() == 2
        assert [v for _, v, _ in await _ints(db)] == [-8, -4, -2]

    @requires("update_expressions")
    async def test_update_expr_literal_on_either_side(self, db: Ommi) -> None:
        """``2 * value`` and ``1 + value`` mean ``value * 2`` and ``value + 1``; ``value * -1`` negates."""
        await _add_ints(db, (3, None))
        await db.find(IntRecord).update(value=2 * IntRecord.value).or_raise()
        assert (await _ints(db))[0][1] == 6
        await db.find(IntRecord).update(value=1 + IntRecord.value).or_raise()
        assert (await _ints(db))[0][1] == 7
        await db.find(IntRecord).update(value=IntRecord.value * -1).or_raise()
        assert (await _ints(db))[0][1] == -7

    @requires("update_expressions")
    async def test_update_expr_literal_minus_field(self, db: Ommi) -> None:
        """``10 - value`` keeps the operand order of subtraction."""
        await _add_ints(db, (3, None), (-4, None))
        await db.find(IntRecord).update(value=10 - IntRecord.value).or_raise()
        assert [v for _, v, _ in await _ints(db)] == [7, 14]

    @requires("update_expressions")
    async def test_update_expr_multiply_and_nesting(self, db: Ommi) -> None:
        """``(value + 1) * 2`` and ``value * 3 - (value - 1)`` follow the parentheses Python built."""
        await _add_ints(db, (4, None), (-7, None))
        await db.find(IntRecord).update(value=(IntRecord.value + 1) * 2).or_raise()
        assert [v for _, v, _ in await _ints(db)] == [10, -12]
        await db.find(IntRecord).update(value=IntRecord.value * 3 - (IntRecord.value - 1)).or_raise()
        assert [v for _, v, _ in await _ints(db)] == [21, -23]

    @requires("update_expressions")
    async def test_update_expr_field_with_field(self, db: Ommi) -> None:
        """Two fields of the same row: ``maybe = value * maybe``; a NULL operand gives NULL."""
        await _add_ints(db, (3, 4), (5, None), (-2, 6))
        assert await db.find(IntRecord).update(maybe=IntRecord.value * IntRecord.maybe).or_raise() == 3
        assert [m for _, _, m in await _ints(db)] == [12, None, -12]

    @requires("update_expressions")
    async def test_update_expr_null_operand_gives_null(self, db: Ommi) -> None:
        """``maybe + 1`` leaves NULL as NULL (SQL's rule) and increments the others."""
        await _add_ints(db, (1, None), (2, 7))
        await db.find(IntRecord).update(maybe=IntRecord.maybe + 1).or_raise()
        assert [m for _, _, m in await _ints(db)] == [None, 8]

    @requires("update_expressions")
    async def test_update_expr_values_read_the_row_before_the_update(self, db: Ommi) -> None:
        """Every value of one update reads the row as it was: ``value + 1`` and ``maybe = value`` together."""
        await _add_ints(db, (1, None), (10, 3))
        await db.find(IntRecord).update(value=IntRecord.value + 1, maybe=IntRecord.value).or_raise()
        assert [(v, m) for _, v, m in await _ints(db)] == [(2, 1), (11, 10)]

    @requires("update_expressions")
    async def test_update_expr_mixed_with_plain_values(self, db: Ommi) -> None:
        """An expression and a literal value in one update()."""
        await _add_ints(db, (1, None), (2, None))
        await db.find(IntRecord.value == 2).update(value=IntRecord.value * 5, maybe=-1).or_raise()
        assert [(v, m) for _, v, m in await _ints(db)] == [(1, None), (10, -1)]

    @requires("update_expressions")
    async def test_update_expr_float_arithmetic(self, db: Ommi) -> None:
        """Float fields: IEEE double results, an int literal widened to a float."""
        await db.add(FloatRecord(1.5, id=1), FloatRecord(-0.1, id=2)).or_raise()
        await db.find(FloatRecord).update(value=FloatRecord.value * 3).or_raise()
        await db.find(FloatRecord).update(value=FloatRecord.value + 0.25).or_raise()
        assert [v for v, _ in await _floats(db)] == [1.5 * 3.0 + 0.25, -0.1 * 3.0 + 0.25]

    @requires("update_expressions")
    async def test_update_expr_float_division(self, db: Ommi) -> None:
        """``value / 3`` is IEEE true division (not a multiplication by 1/3), nested as written."""
        await db.add(FloatRecord(1.0, id=1), FloatRecord(-0.7, id=2)).or_raise()
        await db.find(FloatRecord).update(value=(FloatRecord.value + 0.1) / 3).or_raise()
        assert [v for v, _ in await _floats(db)] == [(1.0 + 0.1) / 3.0, (-0.7 + 0.1) / 3.0]

    @requires("update_expressions", "exact_decimal")
    async def test_update_expr_decimal_is_exact(self, db: Ommi) -> None:
        """Decimal fields compute exactly: no rounding of 0.1 + 0.2, nor of a 30-digit product."""
        big = D("123456789012345.123456789012345")
        await db.add(DecimalRecord(D("0.1"), id=1), DecimalRecord(big, id=2)).or_raise()
        await db.find(DecimalRecord.id == 1).update(value=DecimalRecord.value + D("0.2")).or_raise()
        await db.find(DecimalRecord.id == 2).update(value=DecimalRecord.value * 2 - D("0.000000000000001")).or_raise()
        rows = await fetch(db.find(DecimalRecord).sort(DecimalRecord.id))
        assert rows[0].value == D("0.3")
        assert rows[1].value == D("246913578024690.246913578024689")  # 30 digits: Python's default context rounds it

    # -- field copies -------------------------------------------------------

    @requires("update_expressions")
    async def test_update_expr_field_copy(self, db: Ommi) -> None:
        """``maybe = value`` copies each row's own value; a text copy works as well as a number."""
        await _add_ints(db, (3, None), (4, 9))
        assert await db.find(IntRecord).update(maybe=IntRecord.value).or_raise() == 2
        assert [(v, m) for _, v, m in await _ints(db)] == [(3, 3), (4, 4)]
        await db.add(TextRecord("kept", "old", id=1)).or_raise()
        await db.find(TextRecord).update(maybe=TextRecord.value).or_raise()
        assert (await db.find(TextRecord).one.or_raise()).maybe == "kept"

    # -- limits -------------------------------------------------------------

    @requires("update_expressions")
    async def test_update_expr_int_overflow_changes_nothing(self, db: Ommi) -> None:
        """One row's result beyond 64 bits fails the whole update: no row changes, also not the others."""
        await _add_ints(db, (1, None), (INT64_MAX - 1, None), (INT64_MAX, None), (0, None))
        before = await _ints(db)
        with pytest.raises(ValidationError):
            await db.find(IntRecord).update(value=IntRecord.value + 1).or_raise()
        assert await _ints(db) == before
        with pytest.raises(ValidationError):
            await db.find(IntRecord).update(value=IntRecord.value * -2).or_raise()
        assert await _ints(db) == before
        # The edges themselves are in range: -MAX - 1 is MIN.
        await db.find(IntRecord.value == INT64_MAX).update(value=IntRecord.value * -1).or_raise()
        await db.find(IntRecord.value < 0).update(value=IntRecord.value - 1).or_raise()
        assert (await _ints(db))[2][1] == INT64_MIN
        with pytest.raises(ValidationError):
            await db.find(IntRecord).update(value=IntRecord.value - 1).or_raise()
        assert [v for _, v, _ in await _ints(db)] == [1, INT64_MAX - 1, INT64_MIN, 0]

    @requires("update_expressions")
    async def test_update_expr_intermediate_overflow_is_refused(self, db: Ommi) -> None:
        """A step beyond 64 bits fails even when the final value would fit: ``value * 4 - value * 3``."""
        await _add_ints(db, (INT64_MAX // 2, None))
        before = await _ints(db)
        with pytest.raises(ValidationError):
            await db.find(IntRecord).update(value=IntRecord.value * 4 - IntRecord.value * 3).or_raise()
        assert await _ints(db) == before

    @requires("update_expressions")
    async def test_update_expr_float_overflow_changes_nothing(self, db: Ommi) -> None:
        """A float result that is not finite (overflow to infinity) fails the update; nothing changes."""
        await db.add(FloatRecord(1.0, id=1), FloatRecord(1e308, id=2)).or_raise()
        with pytest.raises(ValidationError):
            await db.find(FloatRecord).update(value=FloatRecord.value * 10).or_raise()
        assert [v for v, _ in await _floats(db)] == [1.0, 1e308]

    @requires("update_expressions")
    async def test_update_expr_float_underflow_changes_nothing(self, db: Ommi) -> None:
        """Nonzero floats whose product underflows to zero fail the update (PostgreSQL's rule); a zero sum does not."""
        await db.add(FloatRecord(1e-200, id=1), FloatRecord(2.0, id=2)).or_raise()
        with pytest.raises(ValidationError):
            await db.find(FloatRecord).update(value=FloatRecord.value * 1e-200).or_raise()
        assert [v for v, _ in await _floats(db)] == [1e-200, 2.0]
        await db.find(FloatRecord.id == 1).update(value=FloatRecord.value - 1e-200).or_raise()
        await db.find(FloatRecord).update(value=FloatRecord.value * 0.5).or_raise()
        assert [v for v, _ in await _floats(db)] == [0.0, 1.0]

    # -- refused before any I/O ----------------------------------------------

    @requires("update_expressions")
    async def test_update_expr_key_target_refused(self, db: Ommi) -> None:
        """An expression or copy assigned to a key field is refused; the rows keep their keys."""
        await _add_ints(db, (1, 2))
        before = await _ints(db)
        with pytest.raises(ValidationError, match="key"):
            await db.find(IntRecord).update(id=IntRecord.id + 1).or_raise()
        with pytest.raises(ValidationError, match="key"):
            await db.find(IntRecord).update(id=IntRecord.value).or_raise()
        assert await _ints(db) == before

    @requires("update_expressions")
    async def test_update_expr_wrong_types_refused_before_io(self, db: Ommi) -> None:
        """Wrong operand types, int division, division by zero or by a field: refused, nothing stored changes."""
        await _add_ints(db, (1, 2))
        await db.add(FloatRecord(2.0, 3.0, id=1), Person("Ann", 30, id=1)).or_raise()
        before = (await _ints(db), await _floats(db))
        refused: list[tuple[type[Exception], object, dict[str, object]]] = [
            (ValidationError, IntRecord, {"value": IntRecord.value + 1.5}),  # a float literal into an int field
            (ValidationError, IntRecord, {"value": IntRecord.value / 2}),  # true division into an int field
            (ValidationError, IntRecord, {"value": IntRecord.maybe + 1}),  # nullable operand, required target
            (ValidationError, FloatRecord, {"value": FloatRecord.value / 0}),
            (QueryError, FloatRecord, {"value": FloatRecord.value / FloatRecord.maybe}),
            (ValidationError, FloatRecord, {"value": FloatRecord.value + D("1")}),
            (ValidationError, Person, {"score": Person.score + Person.age}),  # int field in a float expression
            (ValidationError, Person, {"name": Person.age}),  # a copy between types
            (ValidationError, Person, {"name": Person.name + 1}),  # arithmetic on text
            (ValidationError, Person, {"active": Person.active + 1}),  # bool is not a number
        ]
        for error, model, values in refused:
            with pytest.raises(error):
                await db.find(model).update(values).or_raise()
        with pytest.raises(ValidationError):
            IntRecord.value + True
        with pytest.raises(ValidationError):
            IntRecord.value * "2"
        assert (await _ints(db), await _floats(db)) == before
        assert (await db.find(Person).one.or_raise()).name == "Ann"

    @requires("update_expressions", "constraints")
    async def test_update_expr_unique_target_refused(self, db: Ommi) -> None:
        """A field of a unique constraint cannot be computed (engines check uniqueness row by row, in their order)."""
        await db.remove_models(con_v1)
        await db.use_models(con_v1)
        try:
            day = datetime.date(2024, 5, 1)
            await db.add(Member("red", 1, day, id=1), Member("red", 2, day, id=2)).or_raise()
            with pytest.raises(ValidationError, match="unique constraint"):
                await db.find(Member).update(number=Member.number + 1).or_raise()
            assert sorted(m.number for m in await fetch(db.find(Member))) == [1, 2]
        finally:
            await db.remove_models(con_v1)

    @requires("update_expressions")
    async def test_update_expr_other_model_refused(self, db: Ommi) -> None:
        """An expression reading another model's field is a QueryError; nothing changes."""
        await _add_ints(db, (1, None))
        await db.add(Person("Ann", 30)).or_raise()
        with pytest.raises(QueryError, match="another model"):
            await db.find(IntRecord).update(value=Person.age + 1).or_raise()
        with pytest.raises(QueryError, match="another model"):
            await db.find(IntRecord).update(value=Person.age).or_raise()
        assert (await _ints(db))[0][1] == 1

    @requires("update_expressions")
    async def test_update_expr_is_not_a_condition(self, db: Ommi) -> None:
        """Arithmetic builds update values, not conditions: comparing one is a QueryError."""
        with pytest.raises(QueryError, match="not a condition"):
            db.find(IntRecord.value + 1 > 2)

    # -- concurrency, transactions, cancellation ---------------------------

    @requires("update_expressions")
    async def test_update_expr_concurrent_increments_lose_nothing(self, db: Ommi) -> None:
        """100 concurrent ``value + 1`` updates of one row (separate operations): the row ends at 100."""
        await _add_ints(db, (0, None), (0, None))
        counts = await asyncio.gather(
            *(db.find(IntRecord.id == 1).update(value=IntRecord.value + 1).or_raise() for _ in range(100))
        )
        assert counts == [1] * 100
        assert [v for _, v, _ in await _ints(db)] == [100, 0]

    @requires("update_expressions", "transactions")
    async def test_update_expr_inside_a_transaction(self, db: Ommi) -> None:
        """Inside a transaction: rolled back, nothing changed; committed, the transaction's own reads saw it."""
        await _add_ints(db, (1, None))
        seen = []

        async def rolled_back() -> None:
            async with db.transaction() as tx:
                await tx.find(IntRecord).update(value=IntRecord.value + 41).or_raise()
                seen.append((await tx.find(IntRecord).one.or_raise()).value)
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            await rolled_back()
        assert seen == [42]
        assert (await _ints(db))[0][1] == 1
        async with db.transaction() as tx:
            await tx.find(IntRecord).update(value=IntRecord.value * 3).or_raise()
            await tx.find(IntRecord).update(value=IntRecord.value + 1).or_raise()
        assert (await _ints(db))[0][1] == 4

    @requires("update_expressions", "transactions")
    async def test_update_expr_tasks_sharing_a_transaction(self, db: Ommi) -> None:
        """20 tasks incrementing through one shared transaction: their statements take turns, none is lost."""
        await _add_ints(db, (0, None))
        async with db.transaction() as tx:
            await asyncio.gather(*(tx.find(IntRecord).update(value=IntRecord.value + 1).or_raise() for _ in range(20)))
        assert (await _ints(db))[0][1] == 20

    @requires("update_expressions")
    async def test_update_expr_cancelled_changes_all_or_none(self, db: Ommi) -> None:
        """An update of many rows cancelled at each of its awaits leaves every row updated or none."""
        await db.add(*(IntRecord(0, id=i) for i in range(1, 201))).or_raise()
        expected = 0
        for delay in range(12):
            task = asyncio.create_task(db.find(IntRecord).update(value=IntRecord.value + 1).or_raise())
            for _ in range(delay):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            values = {v for _, v, _ in await _ints(db)}
            assert len(values) == 1, f"cancelled after {delay} steps: rows differ {sorted(values)}"
            (value,) = values
            assert value in (expected, expected + 1)
            expected = value

    @requires("update_expressions")
    async def test_update_expr_absent_capability_is_refused_before_io(self, db: Ommi) -> None:
        """A driver declaring ``update_expressions`` absent gets UnsupportedFeature naming it (checked in core)."""
        await _add_ints(db, (1, None))
        driver = db.driver
        saved = driver.capabilities
        driver.capabilities = type(saved)(**{**saved.as_dict(), "update_expressions": False})
        try:
            with pytest.raises(UnsupportedFeature, match="update_expressions"):
                await db.find(IntRecord).update(value=IntRecord.value + 1).or_raise()
            assert await db.find(IntRecord).update(maybe=5).or_raise() == 1  # plain values still work
        finally:
            driver.capabilities = saved
        assert [(v, m) for _, v, m in await _ints(db)] == [(1, 5)]
