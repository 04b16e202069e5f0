"""Conformance tests: transactions (commit, rollback, misuse, isolation, cancellation)."""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ommi import IntegrityError, Ommi, TransactionError, active_database
from ommi.database import Transaction

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_extra import RelPost, RelUser, TxCode, TxEntry


class _Boom(Exception):
    """Raised inside a transaction block to make it roll back."""


async def _labels(db: Ommi) -> list[str]:
    return sorted(entry.label for entry in await fetch(db.find(TxEntry)))


class TransactionTests(SuiteBase):
    """``async with db.transaction() as t:`` and everything that runs inside it."""

    # -- ending a transaction -----------------------------------------------------

    @requires("transactions")
    async def test_transaction_commits_on_normal_exit(self, db: Ommi, second_db: Ommi) -> None:
        """Leaving the block normally commits: the rows are there for this and another connection."""
        async with db.transaction() as t:
            await t.add(TxEntry("a"), TxEntry("b")).or_raise()
        assert await _labels(db) == ["a", "b"]
        assert await second_db.find(TxEntry).count.or_raise() == 2

    @requires("transactions")
    async def test_transaction_rolls_back_on_exception(self, db: Ommi) -> None:
        """An exception in the block rolls everything back and propagates unchanged."""
        await db.add(TxEntry("kept")).or_raise()
        error = _Boom("stop")

        async def block() -> None:
            async with db.transaction() as t:
                await t.add(TxEntry("lost")).or_raise()
                await t.find(TxEntry.label == "kept").update(amount=99).or_raise()
                raise error

        with pytest.raises(_Boom) as info:
            await block()
        assert info.value is error
        assert await _labels(db) == ["kept"]
        assert (await db.find(TxEntry.label == "kept").one.or_raise()).amount == 0

    @requires("transactions")
    async def test_transaction_explicit_rollback(self, db: Ommi) -> None:
        """``await t.rollback()`` discards the writes; the block then ends without error."""
        async with db.transaction() as t:
            await t.add(TxEntry("lost")).or_raise()
            await t.rollback()
        assert await db.find(TxEntry).count.or_raise() == 0

    @requires("transactions")
    async def test_transaction_explicit_commit_survives_later_exception(self, db: Ommi) -> None:
        """``await t.commit()`` makes the writes permanent even if the block raises afterwards."""

        async def block() -> None:
            async with db.transaction() as t:
                await t.add(TxEntry("committed")).or_raise()
                await t.commit()
                raise _Boom

        with pytest.raises(_Boom):
            await block()
        assert await _labels(db) == ["committed"]

    @requires("transactions")
    async def test_transaction_many_in_a_row_release_connections(self, db: Ommi) -> None:
        """Thirty transactions in a row, alternately committed and rolled back, all work."""
        for number in range(30):
            async with db.transaction() as t:
                await t.add(TxEntry(f"e{number:02}", number)).or_raise()
                if number % 2:
                    await t.rollback()
        assert await db.find(TxEntry).count.or_raise() == 15
        assert await db.find(TxEntry.amount == 1).count.or_raise() == 0

    # -- working inside ---------------------------------------------------------

    @requires("transactions")
    async def test_transaction_add_sets_generated_keys(self, db: Ommi) -> None:
        """``t.add`` returns the model (or list) with generated keys set, like ``db.add``."""
        async with db.transaction() as t:
            one = await t.add(TxEntry("one")).or_raise()
            many = await t.add(TxEntry("two"), TxEntry("three")).or_raise()
        assert isinstance(one, TxEntry)
        assert isinstance(many, list)
        assert len(many) == 2
        ids = [one.id, *(m.id for m in many)]
        assert all(isinstance(i, int) for i in ids)
        assert len(set(ids)) == 3
        assert (await db.find(TxEntry.id == one.id).one.or_raise()).label == "one"

    @requires("transactions")
    async def test_transaction_find_supports_every_form(self, db: Ommi) -> None:
        """``t.find`` offers ``.all``, ``.one``, ``.count``, ``.update``, ``.delete``, bare and called."""
        async with db.transaction() as t:
            await t.add(*(TxEntry(f"e{i}", i) for i in range(5))).or_raise()
            assert len(await (await t.find(TxEntry).or_raise()).to_list()) == 5
            assert len(await (await t.find(TxEntry).all()).value.to_list()) == 5
            assert len([e async for e in t.find(TxEntry.amount >= 3).all]) == 2
            assert (await t.find(TxEntry.amount == 2).one.or_raise()).label == "e2"
            assert (await t.find(TxEntry.amount == 2).one()).value.label == "e2"
            assert await t.find(TxEntry).count.or_raise() == 5
            assert await t.find(TxEntry).count().or_use(-1) == 5
            assert await t.find(TxEntry.amount < 2).update(label="low").or_raise() == 2
            assert await t.find(TxEntry.amount == 4).delete.or_raise() == 1
            assert await t.find(TxEntry.amount == 3).delete().or_raise() == 1
            assert await t.find(TxEntry.amount == 9).one.or_use(None) is None
            result = await t.find(TxEntry)
            assert len(await result.or_raise().to_list()) == 3
        assert await _labels(db) == ["e2", "low", "low"]

    @requires("transactions")
    async def test_transaction_reads_its_own_writes(self, db: Ommi) -> None:
        """Inside the transaction its uncommitted rows, updates and deletions are visible."""
        await db.add(TxEntry("old")).or_raise()
        async with db.transaction() as t:
            await t.add(TxEntry("new")).or_raise()
            await t.find(TxEntry.label == "old").delete.or_raise()
            assert [e.label for e in await (await t.find(TxEntry).or_raise()).to_list()] == ["new"]
            assert await t.find(TxEntry.label == "old").count.or_raise() == 0

    @requires("transactions")
    async def test_transaction_failed_statement_propagates_and_rolls_back(self, db: Ommi) -> None:
        """A failing statement inside the block raises out of it and nothing of the block is kept."""
        await db.add(TxCode("taken")).or_raise()

        async def block() -> None:
            async with db.transaction() as t:
                await t.add(TxEntry("before")).or_raise()
                await t.add(TxCode("taken")).or_raise()

        with pytest.raises(IntegrityError):
            await block()
        assert await db.find(TxEntry).count.or_raise() == 0
        assert await db.find(TxCode).count.or_raise() == 1

    @requires("transactions")
    async def test_transaction_multi_model_add_is_all_or_nothing(self, db: Ommi) -> None:
        """``db.add`` of several models is atomic: one failing insert leaves no row of the others."""
        await db.add(TxCode("taken")).or_raise()
        result = await db.add(TxEntry("first"), TxCode("fresh"), TxCode("taken"))
        assert isinstance(result.exception, IntegrityError)
        assert await db.find(TxEntry).count.or_raise() == 0
        assert [c.code for c in await fetch(db.find(TxCode))] == ["taken"]

    # -- a failed statement caught inside the block -------------------------------
    #
    # A statement that fails inside a transaction, and that the application
    # catches, leaves the driver two correct choices: the rest of the
    # transaction stays valid and commits everything else, or the transaction
    # is spoiled and the next statement or the commit raises TransactionError,
    # with nothing of the transaction stored. A commit that reports success but
    # lost some of the transaction's writes is never correct.

    async def _caught_failure_outcome(self, db: Ommi, fail: Callable[[Transaction], Awaitable[Any]]) -> None:
        """Write ``before``, run ``fail`` (which must fail, caught), write ``after``: all or nothing is stored."""
        failure: BaseException | None = None
        try:
            async with db.transaction() as t:
                await t.add(TxEntry("before")).or_raise()
                caught = await fail(t)
                assert caught is not None, "the failing statement did not fail"
                await t.add(TxEntry("after")).or_raise()
        except TransactionError as exc:
            failure = exc
        labels = await _labels(db)
        if failure is None:
            assert labels == ["after", "before"], f"the commit reported success but stored only {labels}"
        else:
            assert labels == [], f"the transaction failed ({failure}) but {labels} were stored"

    @requires("transactions")
    async def test_transaction_caught_failed_insert_commits_all_or_raises(self, db: Ommi) -> None:
        """A duplicate-key insert caught inside the block: everything else commits, or TransactionError and nothing.

        After ``add(A)``, a failing ``add`` of a duplicate key (caught) and
        ``add(B)``, leaving the block either stores A and B without an error,
        or raises TransactionError (from ``add(B)`` or the commit) and stores
        neither. The duplicate's own failure is an IntegrityError.
        """
        await db.add(TxCode("taken")).or_raise()

        async def duplicate(t: Transaction) -> BaseException | None:
            result = await t.add(TxCode("taken", "again"))
            assert isinstance(result.exception, IntegrityError), result
            return result.exception

        await self._caught_failure_outcome(db, duplicate)
        assert [(c.code, c.label) for c in await fetch(db.find(TxCode))] == [("taken", "")]

    @requires("transactions")
    async def test_transaction_caught_failed_update_commits_all_or_raises(self, db: Ommi) -> None:
        """An update to a taken key, caught inside the block: the rest commits, or TransactionError and nothing."""
        await db.add(TxCode("taken"), TxCode("free")).or_raise()

        async def collide(t: Transaction) -> BaseException | None:
            with pytest.raises(IntegrityError) as info:
                await t.find(TxCode.code == "free").update(code="taken").or_raise()
            return info.value

        await self._caught_failure_outcome(db, collide)
        assert sorted(c.code for c in await fetch(db.find(TxCode))) == ["free", "taken"]

    @requires("transactions", "foreign_keys")
    async def test_transaction_caught_failed_delete_commits_all_or_raises(self, db: Ommi) -> None:
        """A delete of a referenced row, caught inside the block: the rest commits, or TransactionError and nothing."""
        user = await db.add(RelUser("referenced")).or_raise()
        await db.add(RelPost("holds the reference", user.id)).or_raise()

        async def referenced(t: Transaction) -> BaseException | None:
            with pytest.raises(IntegrityError) as info:
                await t.find(RelUser.id == user.id).delete.or_raise()
            return info.value

        await self._caught_failure_outcome(db, referenced)
        assert await db.find(RelUser).count.or_raise() == 1
        assert await db.find(RelPost).count.or_raise() == 1

    # -- streams and the end of their transaction ---------------------------------

    @requires("transactions")
    async def test_transaction_iterator_after_commit_raises_transaction_error(self, db: Ommi) -> None:
        """A ``.all`` iterator of a transaction, read further after the block committed, raises TransactionError.

        Rows it had already handed over stay valid; reading on needs the
        ended transaction, so it fails instead of reading outside it.
        """
        await db.add(*(TxEntry(f"e{n}", n) for n in range(5))).or_raise()
        async with db.transaction() as t:
            iterator = await t.find(TxEntry).sort(TxEntry.amount).all(batch_size=1).or_raise()
            first = await anext(iterator)
        assert first.label == "e0"
        with pytest.raises(TransactionError):
            await iterator.to_list()
        assert await db.find(TxEntry).count.or_raise() == 5

    @requires("transactions")
    async def test_transaction_iterator_after_rollback_raises_transaction_error(self, db: Ommi) -> None:
        """An ``async for`` over a transaction's ``.all`` continued after ``rollback()`` raises TransactionError."""
        await db.add(*(TxEntry(f"e{n}", n) for n in range(5))).or_raise()
        seen: list[str] = []

        async def read_past_rollback(t: Transaction) -> None:
            async for entry in t.find(TxEntry).sort(TxEntry.amount).all(batch_size=2):
                seen.append(entry.label)
                if len(seen) == 1:
                    await t.rollback()

        async with db.transaction() as t:
            await t.add(TxEntry("lost", 99)).or_raise()
            with pytest.raises(TransactionError):
                await read_past_rollback(t)
        assert seen[0] == "e0"
        assert len(seen) <= 2, seen
        assert await db.find(TxEntry.label == "lost").count.or_raise() == 0

    # -- misuse --------------------------------------------------------------------

    @requires("transactions")
    async def test_transaction_use_after_commit_raises_transaction_error(self, db: Ommi) -> None:
        """After ``commit()`` every operation, and a second commit or rollback, raises TransactionError."""
        async with db.transaction() as t:
            await t.commit()
            with pytest.raises(TransactionError):
                await t.add(TxEntry("late")).or_raise()
            failure = await t.add(TxEntry("late"))
            assert isinstance(failure.exception, TransactionError)
            with pytest.raises(TransactionError):
                await t.find(TxEntry).count.or_raise()
            with pytest.raises(TransactionError):
                await t.commit()
            with pytest.raises(TransactionError):
                await t.rollback()
        assert await db.find(TxEntry).count.or_raise() == 0

    @requires("transactions")
    async def test_transaction_use_after_rollback_raises_transaction_error(self, db: Ommi) -> None:
        """After ``rollback()`` reads and writes through the transaction raise TransactionError."""
        async with db.transaction() as t:
            await t.add(TxEntry("lost")).or_raise()
            await t.rollback()
            with pytest.raises(TransactionError):
                await t.find(TxEntry).all.or_raise()
            with pytest.raises(TransactionError):
                await t.find(TxEntry).delete.or_raise()
        assert await db.find(TxEntry).count.or_raise() == 0

    @requires("transactions")
    async def test_transaction_use_after_block_raises_transaction_error(self, db: Ommi) -> None:
        """A transaction kept past its block refuses work with TransactionError; the data is committed."""
        async with db.transaction() as t:
            await t.add(TxEntry("in")).or_raise()
        with pytest.raises(TransactionError):
            await t.add(TxEntry("out")).or_raise()
        with pytest.raises(TransactionError):
            await t.find(TxEntry).one.or_raise()
        assert await _labels(db) == ["in"]

    @requires("transactions")
    async def test_transaction_cannot_be_entered_twice(self, db: Ommi) -> None:
        """Entering the same transaction object a second time raises TransactionError."""
        transaction = db.transaction()
        async with transaction:
            pass
        with pytest.raises(TransactionError):
            async with transaction:
                pass

    # -- isolation ---------------------------------------------------------------

    @requires("transactions", "transaction_isolation")
    async def test_transaction_uncommitted_rows_invisible_outside(self, db: Ommi, second_db: Ommi) -> None:
        """Rows written in an open transaction are invisible to ``db`` and to another connection."""
        async with db.transaction() as t:
            await t.add(TxEntry("pending")).or_raise()
            assert await t.find(TxEntry).count.or_raise() == 1
            assert await db.find(TxEntry).count.or_raise() == 0
            assert await second_db.find(TxEntry).count.or_raise() == 0
        assert await db.find(TxEntry).count.or_raise() == 1
        assert await second_db.find(TxEntry).count.or_raise() == 1

    @requires("transactions", "transaction_isolation")
    async def test_transaction_uncommitted_changes_invisible_to_other_task(self, db: Ommi) -> None:
        """Another task reading while the transaction is open sees the old rows, then the new ones."""
        await db.add(TxEntry("stable", 1)).or_raise()

        async def snapshot() -> list[tuple[str, int]]:
            return sorted((e.label, e.amount) for e in await fetch(db.find(TxEntry)))

        async with db.transaction() as t:
            await t.add(TxEntry("pending", 2)).or_raise()
            await t.find(TxEntry.label == "stable").update(amount=10).or_raise()
            assert await asyncio.create_task(snapshot()) == [("stable", 1)]
        assert await asyncio.create_task(snapshot()) == [("pending", 2), ("stable", 10)]

    @requires("transactions")
    async def test_transaction_outside_write_does_not_land_inside(self, db: Ommi, second_db: Ommi) -> None:
        """A write by another task while a transaction is open is not part of it: a rollback keeps it."""
        async with db.transaction() as t:
            await t.add(TxEntry("inside")).or_raise()
            outside = asyncio.create_task(second_db.add(TxEntry("outside")).or_raise())
            for _ in range(5):  # give the other task a chance to run (it may wait for a lock)
                await asyncio.sleep(0)
            await t.rollback()
        await asyncio.wait_for(outside, timeout=30)
        assert await _labels(db) == ["outside"]

    @requires("transactions")
    async def test_transaction_cancelled_task_rolls_back(self, db: Ommi) -> None:
        """Cancelling a task inside a transaction rolls it back; the database stays usable."""
        started = asyncio.Event()

        async def work() -> None:
            async with db.transaction() as t:
                await t.add(TxEntry("cancelled")).or_raise()
                started.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(work())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await db.find(TxEntry).count.or_raise() == 0
        await db.add(TxEntry("after")).or_raise()
        async with db.transaction() as t:
            await t.add(TxEntry("next")).or_raise()
        assert await _labels(db) == ["after", "next"]

    @requires("transactions")
    async def test_transaction_concurrent_transactions_both_commit(self, db: Ommi) -> None:
        """Transactions in concurrent tasks each commit their own rows."""

        async def work(label: str) -> None:
            async with db.transaction() as t:
                await t.add(TxEntry(label)).or_raise()
                await asyncio.sleep(0)
                await t.add(TxEntry(label + "2")).or_raise()

        await asyncio.wait_for(asyncio.gather(work("a"), work("b"), work("c")), timeout=60)
        assert await _labels(db) == ["a", "a2", "b", "b2", "c", "c2"]

    @requires("transactions")
    async def test_transaction_shared_by_concurrent_tasks_gives_each_its_own_rows(self, db: Ommi) -> None:
        """Tasks querying through one transaction at the same time each get their own query's results."""
        await db.add(*(TxEntry(f"q{n}", n) for n in range(12))).or_raise()

        async with db.transaction() as t:

            async def label(n: int) -> str:
                return str((await t.find(TxEntry.amount == n).one.or_raise()).label)

            labels = await asyncio.wait_for(asyncio.gather(*(label(n) for n in range(12))), timeout=60)
        assert labels == [f"q{n}" for n in range(12)]

    # -- model methods and lazy fields inside a transaction -------------------------

    @requires("transactions")
    async def test_transaction_model_methods_participate(self, db: Ommi) -> None:
        """``save``, ``delete`` and ``reload`` inside the block run in the transaction and roll back with it."""
        keep, gone = TxEntry("keep", 1), TxEntry("gone", 2)
        await db.add(keep, gone).or_raise()

        async def block() -> None:
            async with db.transaction():
                keep.amount = 100
                await keep.save().or_raise()
                await gone.delete().or_raise()
                await TxEntry("fresh").save().or_raise()
                keep.amount = -1
                await keep.reload().or_raise()
                assert keep.amount == 100  # reloaded from inside the transaction
                raise _Boom

        with pytest.raises(_Boom):
            await block()
        assert sorted((e.label, e.amount) for e in await fetch(db.find(TxEntry))) == [("gone", 2), ("keep", 1)]
        await keep.reload().or_raise()
        assert keep.amount == 1

    @requires("transactions")
    async def test_transaction_model_methods_commit(self, db: Ommi, second_db: Ommi) -> None:
        """Model methods inside a committed block persist."""
        entry = TxEntry("entry", 1)
        await db.add(entry).or_raise()
        async with db.transaction():
            entry.amount = 7
            await entry.save().or_raise()
        assert (await second_db.find(TxEntry.id == entry.id).one.or_raise()).amount == 7

    @requires("transactions", "transaction_isolation")
    async def test_transaction_model_save_invisible_until_commit(self, db: Ommi, second_db: Ommi) -> None:
        """A ``save`` inside an open transaction is not visible to another connection until commit."""
        entry = TxEntry("entry", 1)
        await db.add(entry).or_raise()
        async with db.transaction():
            entry.amount = 5
            await entry.save().or_raise()
            assert (await second_db.find(TxEntry.id == entry.id).one.or_raise()).amount == 1
        assert (await second_db.find(TxEntry.id == entry.id).one.or_raise()).amount == 5

    @requires("transactions")
    async def test_transaction_block_restores_active_database(self, db: Ommi) -> None:
        """Inside the block the transaction is the active database; afterwards ``db`` is again."""
        assert active_database() is db
        entry = TxEntry("x")
        async with db.transaction() as t:
            assert active_database() is t
        assert active_database() is db
        await entry.save().or_raise()
        assert await db.find(TxEntry).count.or_raise() == 1

    @requires("transactions")
    async def test_transaction_lazy_load_sees_uncommitted_rows(self, db: Ommi) -> None:
        """Lazy relations loaded inside the block read through the transaction."""
        async with db.transaction() as t:
            user = await t.add(RelUser("Tx")).or_raise()
            post = await t.add(RelPost("tx post", user.id)).or_raise()
            assert await post.author == user
            assert await user.posts == [post]
            await t.rollback()
        assert await db.find(RelUser).count.or_raise() == 0
