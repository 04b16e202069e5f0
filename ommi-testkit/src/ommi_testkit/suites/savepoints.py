"""Conformance tests: savepoints, ``async with t.transaction() as inner:`` inside a transaction."""

# Model classes double as query operands (``TxEntry.label == "x"``) and gain
# methods from the decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from ommi import IntegrityError, Ommi, TransactionError, active_database
from ommi.database import Savepoint, Transaction

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_extra import TxCode, TxEntry


class _Boom(Exception):
    """Raised inside a savepoint block to make it roll back."""


async def _labels(executor: Ommi | Transaction) -> list[str]:
    return sorted(entry.label for entry in await fetch(executor.find(TxEntry)))


class SavepointTests(SuiteBase):
    """Savepoints: an inner block that rolls back alone, nested to any depth, and misuse refused."""

    # -- what a savepoint keeps and undoes ------------------------------------------

    @requires("transactions", "savepoints")
    async def test_savepoint_exception_rolls_back_only_the_inner_block(self, db: Ommi) -> None:
        """An exception in ``t.transaction()`` undoes the inner block, propagates, and the outer commits."""
        error = _Boom("inner")
        async with db.transaction() as t:
            await t.add(TxEntry("outer")).or_raise()
            with pytest.raises(_Boom) as caught:  # noqa: PT012 - the block is what raises
                async with t.transaction() as inner:
                    assert isinstance(inner, Transaction)
                    await inner.add(TxEntry("inner")).or_raise()
                    await inner.find(TxEntry.label == "outer").update(amount=7).or_raise()
                    raise error
            assert caught.value is error
            assert await _labels(t) == ["outer"]
            assert (await t.find(TxEntry.label == "outer").one.or_raise()).amount == 0
            await t.add(TxEntry("after")).or_raise()
        assert await _labels(db) == ["after", "outer"]

    @requires("transactions", "savepoints")
    async def test_savepoint_released_work_commits_and_rolls_back_with_the_outer(self, db: Ommi) -> None:
        """A released savepoint's rows belong to the outer transaction: kept on commit, gone on its rollback."""
        async with db.transaction() as t:
            async with t.transaction() as inner:
                await inner.add(TxEntry("kept")).or_raise()
            assert inner.committed
        assert await _labels(db) == ["kept"]
        with pytest.raises(_Boom):  # noqa: PT012 - the block is what raises
            async with db.transaction() as t:
                async with t.transaction() as inner:
                    await inner.add(TxEntry("lost")).or_raise()
                raise _Boom
        assert await _labels(db) == ["kept"]

    @requires("transactions", "savepoints")
    async def test_savepoints_nest_to_any_depth(self, db: Ommi) -> None:
        """Four levels: a failing level undoes itself and the released levels inside it, nothing around it."""
        async with db.transaction() as t:
            await t.add(TxEntry("level0")).or_raise()
            async with t.transaction() as one:
                await one.add(TxEntry("level1")).or_raise()
                with pytest.raises(_Boom):  # noqa: PT012 - the block is what raises
                    async with one.transaction() as two:
                        await two.add(TxEntry("level2")).or_raise()
                        async with two.transaction() as three:
                            await three.add(TxEntry("level3")).or_raise()
                        assert await _labels(two) == ["level0", "level1", "level2", "level3"]
                        raise _Boom
                assert await _labels(one) == ["level0", "level1"]
                async with one.transaction() as again:
                    await again.add(TxEntry("level2b")).or_raise()
        assert await _labels(db) == ["level0", "level1", "level2b"]

    @requires("transactions", "savepoints")
    async def test_savepoint_recovers_the_transaction_after_a_failed_statement(self, db: Ommi) -> None:
        """A failed statement inside a savepoint: after its rollback the outer transaction goes on and commits.

        On PostgreSQL a failed statement directly in ``t`` spoils the whole
        transaction; in a savepoint it spoils only the savepoint.
        """
        await db.add(TxCode("taken")).or_raise()
        async with db.transaction() as t:
            await t.add(TxEntry("before")).or_raise()
            with pytest.raises(IntegrityError):  # noqa: PT012 - the block is what raises
                async with t.transaction() as inner:
                    await inner.add(TxEntry("inside")).or_raise()
                    await inner.add(TxCode("taken")).or_raise()
            await t.add(TxEntry("after")).or_raise()
            assert await t.find(TxCode).count.or_raise() == 1
        assert await _labels(db) == ["after", "before"]

    @requires("transactions", "savepoints")
    async def test_savepoint_rolled_back_resets_its_generated_keys_only(self, db: Ommi) -> None:
        """Keys generated inside a rolled-back savepoint are reset; the outer level's and a released one's stay."""
        outer, released, undone = TxEntry("outer"), TxEntry("released"), TxEntry("undone")
        async with db.transaction() as t:
            await t.add(outer).or_raise()
            async with t.transaction() as inner:
                await inner.add(released).or_raise()
            with pytest.raises(_Boom):  # noqa: PT012 - the block is what raises
                async with t.transaction() as inner:
                    await inner.add(undone).or_raise()
                    assert undone.id is not None
                    raise _Boom
            assert undone.id is None
            assert outer.id is not None and released.id is not None
        assert outer.id is not None and released.id is not None
        assert {e.id for e in await fetch(db.find(TxEntry))} == {outer.id, released.id}

    @requires("transactions", "savepoints")
    async def test_savepoint_released_keys_reset_when_the_outer_rolls_back(self, db: Ommi) -> None:
        """A released savepoint's keys are reset when the transaction around it rolls back."""
        entry = TxEntry("released")
        with pytest.raises(_Boom):  # noqa: PT012 - the block is what raises
            async with db.transaction() as t:
                async with t.transaction() as inner:
                    await inner.add(entry).or_raise()
                assert entry.id is not None
                raise _Boom
        assert entry.id is None

    @requires("transactions", "savepoints")
    async def test_savepoint_explicit_commit_and_rollback(self, db: Ommi) -> None:
        """``inner.rollback()`` undoes the savepoint now, ``inner.commit()`` releases it; the block ends quietly."""
        async with db.transaction() as t:
            async with t.transaction() as inner:
                await inner.add(TxEntry("undone")).or_raise()
                await inner.rollback()
            async with t.transaction() as inner:
                await inner.add(TxEntry("released")).or_raise()
                await inner.commit()
            await t.add(TxEntry("outer")).or_raise()
        assert await _labels(db) == ["outer", "released"]

    @requires("transactions", "savepoints")
    async def test_savepoint_is_the_active_executor_of_its_block(self, db: Ommi) -> None:
        """Inside the block the savepoint is the context's executor; afterwards the transaction is again."""
        async with db.transaction() as t:
            async with t.transaction() as inner:
                assert active_database() is inner
                await TxEntry("by_model_method").save().or_raise()
            assert active_database() is t
        assert await _labels(db) == ["by_model_method"]

    # -- misuse ---------------------------------------------------------------------

    @requires("transactions", "savepoints")
    async def test_savepoint_use_after_its_block_raises(self, db: Ommi) -> None:
        """After its block (released or rolled back) every operation on the savepoint raises TransactionError."""
        async with db.transaction() as t:
            async with t.transaction() as released:
                pass
            with pytest.raises(_Boom):
                async with t.transaction() as undone:
                    raise _Boom
            for ended in (released, undone):
                with pytest.raises(TransactionError):
                    await ended.add(TxEntry("late")).or_raise()
                with pytest.raises(TransactionError):
                    await ended.find(TxEntry).count.or_raise()
                with pytest.raises(TransactionError):
                    async with ended:
                        pass
            await t.add(TxEntry("outer")).or_raise()
        assert await _labels(db) == ["outer"]

    @requires("transactions", "savepoints")
    async def test_savepoint_outer_refused_while_inner_open(self, db: Ommi) -> None:
        """While a savepoint is open, operations on the levels around it raise TransactionError (nothing lands)."""
        async with db.transaction() as t, t.transaction() as inner:
            with pytest.raises(TransactionError, match="savepoint"):
                await t.add(TxEntry("through_outer")).or_raise()
            async with inner.transaction() as deeper:
                with pytest.raises(TransactionError, match="savepoint"):
                    await inner.find(TxEntry).count.or_raise()
                await deeper.add(TxEntry("deeper")).or_raise()
            with pytest.raises(TransactionError):
                async with t.transaction():
                    pass
            await inner.add(TxEntry("inner")).or_raise()
        assert await _labels(db) == ["deeper", "inner"]

    @requires("transactions", "savepoints")
    async def test_savepoint_out_of_order_exit_rolls_back_and_raises(self, db: Ommi) -> None:
        """Exiting a savepoint while one inside it is open: TransactionError, both undone, the outer usable."""
        async with db.transaction() as t:
            await t.add(TxEntry("outer")).or_raise()
            first = t.transaction()
            await first.__aenter__()
            await first.add(TxEntry("first")).or_raise()
            second = first.transaction()
            await second.__aenter__()
            await second.add(TxEntry("second")).or_raise()
            with pytest.raises(TransactionError, match="still open"):
                await first.__aexit__(None, None, None)
            with pytest.raises(TransactionError):
                await second.add(TxEntry("late")).or_raise()
            with pytest.raises(TransactionError):
                await second.__aexit__(None, None, None)
            assert await _labels(t) == ["outer"]
            await t.add(TxEntry("after")).or_raise()
        assert await _labels(db) == ["after", "outer"]

    @requires("transactions", "savepoints")
    async def test_leaving_the_transaction_with_a_savepoint_open_rolls_back_and_raises(self, db: Ommi) -> None:
        """The outer block ending normally while a savepoint is open: TransactionError, nothing committed."""
        inner: Savepoint | None = None
        with pytest.raises(TransactionError, match="still open"):  # noqa: PT012 - the block is what raises
            async with db.transaction() as t:
                await t.add(TxEntry("outer")).or_raise()
                inner = t.transaction()
                await inner.__aenter__()
                await inner.add(TxEntry("inner")).or_raise()
        assert inner is not None
        assert await _labels(db) == []
        with pytest.raises(TransactionError):
            await inner.add(TxEntry("late")).or_raise()
        with pytest.raises(TransactionError):
            await inner.__aexit__(None, None, None)
        assert not t.committed

    @requires("transactions", "savepoints")
    async def test_savepoint_opened_by_another_task_is_refused_to_the_others(self, db: Ommi) -> None:
        """Two tasks share ``t``; while one has a savepoint open the other's operations on ``t`` are refused.

        Refusing (not serialising) keeps the other task's writes from landing
        in a savepoint that may roll back; it can go on once the savepoint ends.
        """
        opened, finish = asyncio.Event(), asyncio.Event()

        async def with_savepoint(t: Transaction) -> None:
            async with t.transaction() as inner:
                await inner.add(TxEntry("in_savepoint")).or_raise()
                opened.set()
                await finish.wait()

        async with db.transaction() as t:
            task = asyncio.create_task(with_savepoint(t))
            await opened.wait()
            with pytest.raises(TransactionError, match="savepoint"):
                await t.add(TxEntry("other_task")).or_raise()
            with pytest.raises(TransactionError):
                async with t.transaction():
                    pass
            finish.set()
            await task
            await t.add(TxEntry("other_task_after")).or_raise()
        assert await _labels(db) == ["in_savepoint", "other_task_after"]

    @requires("transactions", "savepoints")
    async def test_savepoint_two_tasks_opening_at_once_one_wins(self, db: Ommi) -> None:
        """Two tasks open a savepoint of one transaction at the same moment: one opens it, the other is refused."""

        async def open_one(t: Transaction, label: str) -> str:
            async with t.transaction() as inner:
                await inner.add(TxEntry(label)).or_raise()
                await asyncio.sleep(0.01)
            return label

        async with db.transaction() as t:
            results = await asyncio.gather(open_one(t, "a"), open_one(t, "b"), return_exceptions=True)
        winners = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, TransactionError)]
        assert len(winners) == 1 and len(refused) == 1, results
        assert await _labels(db) == winners

    @requires("transactions", "savepoints")
    async def test_savepoint_names_are_generated_and_distinct(self, db: Ommi) -> None:
        """Each savepoint gets a fresh name of Ommi's own (``ommi_sp_`` and random hex), never an application's."""
        async with db.transaction() as t:
            names = set()
            for _ in range(20):
                async with t.transaction() as inner:
                    names.add(inner._name)
                    await inner.add(TxEntry("x")).or_raise()
        assert len(names) == 20
        assert all(re.fullmatch(r"ommi_sp_[0-9a-f]{16}", name) for name in names)
        assert await db.find(TxEntry).count.or_raise() == 20

    @requires("transactions", "savepoints")
    async def test_nested_with_transaction_runs_in_a_savepoint(self, db: Ommi) -> None:
        """``t.with_transaction(fn)`` runs ``fn`` once in a savepoint: its failure undoes only ``fn``'s work."""

        async def failing(inner: Transaction) -> None:
            await inner.add(TxEntry("undone")).or_raise()
            raise _Boom

        async def working(inner: Transaction) -> int:
            assert isinstance(inner, Savepoint)
            await inner.add(TxEntry("kept")).or_raise()
            return 5

        async with db.transaction() as t:
            with pytest.raises(_Boom):
                await t.with_transaction(failing)
            assert await t.with_transaction(working) == 5
        assert await _labels(db) == ["kept"]

    # -- cancellation -----------------------------------------------------------------

    @requires("transactions", "savepoints")
    async def test_savepoint_cancelled_at_any_point_is_all_or_nothing(self, db: Ommi) -> None:
        """A task cancelled anywhere in a savepoint (entering, inside, releasing, rolling back) never half-applies it.

        After each cancellation the outer transaction takes operations again
        (no savepoint is left open), and each savepoint's two rows are both
        there or both missing, in the transaction and after its commit.
        """

        async def body(t: Transaction, number: int, fail: bool) -> None:
            async with t.transaction() as inner:
                await inner.add(TxEntry(f"a{number:02}")).or_raise()
                await inner.add(TxEntry(f"b{number:02}")).or_raise()
                if fail:
                    raise _Boom

        delays = [("steps", n) for n in range(0, 24, 2)] + [("seconds", n * 0.0007) for n in range(1, 9)]
        async with db.transaction() as t:
            for number, (kind, amount) in enumerate(delays):
                task = asyncio.create_task(body(t, number, fail=number % 3 == 2))
                if kind == "steps":
                    for _ in range(int(amount)):
                        await asyncio.sleep(0)
                else:
                    await asyncio.sleep(amount)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, _Boom):
                    await task
                assert t._savepoints == []
                await t.add(TxEntry(f"outer{number:02}")).or_raise()
            inside = await _labels(t)
        stored = await _labels(db)
        assert stored == inside
        for number in range(len(delays)):
            assert f"outer{number:02}" in stored
            assert (f"a{number:02}" in stored) == (f"b{number:02}" in stored), (number, stored)
            if number % 3 == 2:
                assert f"a{number:02}" not in stored
