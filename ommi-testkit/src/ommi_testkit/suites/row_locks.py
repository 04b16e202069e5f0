"""Conformance tests: row locks (``find(...).for_update()``) and transaction timeouts.

What every driver with ``row_locks`` guarantees: the rows a ``for_update()``
query returns inside a transaction stay unchanged by anyone else until that
transaction ends. A driver locks them row by row (PostgreSQL) or keeps every
other writer out for the whole transaction (SQLite, the reference driver),
so the tests here assert only what holds either way; where row-level locking
shows more (``skip_locked`` answering while the holder is still open), a
driver's own tests assert it.

Timeouts (``timeouts``): ``db.transaction(lock_timeout=...)`` bounds the wait
for a lock another transaction holds; expiry raises
:class:`ommi.errors.TimeoutError` naming ``lock_timeout``, changes nothing,
and leaves the database usable.
"""

# Model classes double as query operands (``TxEntry.label == "x"``) and gain
# methods from the decorator: a type checker cannot see that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
import builtins
import math
import time

import pytest
from ommi import Ommi
from ommi.errors import ConfigurationError, QueryError, TimeoutError, TransactionError

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_extra import TxEntry

HOLD = 0.4
"""Seconds the holding transaction keeps its lock in the ordering tests."""

SHORT = 0.2
"""The lock_timeout of the transactions expected to give up."""


async def _amount(db: Ommi, label: str) -> int:
    entry = await db.find(TxEntry.label == label).one.or_raise()
    amount: int = entry.amount
    return amount


class RowLockTests(SuiteBase):
    """``t.find(...).for_update()`` and ``db.transaction(lock_timeout=..., statement_timeout=...)``."""

    # -- refusals, before any I/O ---------------------------------------------------

    @requires("row_locks")
    async def test_for_update_outside_a_transaction_is_refused(self, db: Ommi) -> None:
        """Through the database itself the lock would end with the statement: TransactionError, nothing read."""
        await db.add(TxEntry("a")).or_raise()
        for action in (db.find(TxEntry).for_update().all, db.find(TxEntry).for_update(skip_locked=True).one):
            with pytest.raises(TransactionError, match=r"async with db\.transaction\(\) as t"):
                await action.or_raise()

    @requires("row_locks")
    async def test_for_update_refuses_count_delete_update_and_both_modes(self, db: Ommi) -> None:
        """``count``/``delete``/``update`` refuse a locking query, and ``skip_locked`` excludes ``nowait``."""
        await db.add(TxEntry("a")).or_raise()
        async with db.transaction() as t:
            locked = t.find(TxEntry).for_update()
            with pytest.raises(QueryError, match="count"):
                await locked.count.or_raise()
            with pytest.raises(QueryError, match="delete"):
                await locked.delete.or_raise()
            with pytest.raises(QueryError, match="update"):
                await locked.update(amount=5).or_raise()
            with pytest.raises(QueryError, match="exclude"):
                t.find(TxEntry).for_update(skip_locked=True, nowait=True)
            with pytest.raises(QueryError, match="skip_locked"):
                t.find(TxEntry).for_update(skip_locked="yes")
        assert await _amount(db, "a") == 0
        assert await db.find(TxEntry).count.or_raise() == 1

    # -- what a lock returns ---------------------------------------------------------

    @requires("row_locks")
    async def test_for_update_returns_the_matches_like_the_plain_query(self, db: Ommi) -> None:
        """Locking changes no result: filter, sort, limit, ``.one``, ``skip_locked`` and ``nowait`` alike."""
        await db.add(*(TxEntry(f"e{n}", n) for n in range(6))).or_raise()
        async with db.transaction() as t:
            plain = [e.label for e in await fetch(t.find(TxEntry.amount >= 2).sort(TxEntry.amount.desc).limit(3))]
            for query in (
                t.find(TxEntry.amount >= 2).sort(TxEntry.amount.desc).limit(3).for_update(),
                t.find(TxEntry.amount >= 2).for_update(skip_locked=True).sort(TxEntry.amount.desc).limit(3),
                t.find(TxEntry.amount >= 2).sort(TxEntry.amount.desc).limit(3).for_update(nowait=True),
            ):
                assert [e.label for e in await fetch(query)] == plain == ["e5", "e4", "e3"]
            one = await t.find(TxEntry.label == "e1").for_update().one.or_raise()
            assert (one.label, one.amount) == ("e1", 1)
            await t.find(TxEntry.label == "e1").update(amount=10).or_raise()
        assert await _amount(db, "e1") == 10

    @requires("row_locks")
    async def test_for_update_of_a_related_condition_returns_each_target_once(self, db: Ommi) -> None:
        """A locking query filtering by a related model locks (and returns) the targets, each once."""
        from ommi_testkit.suites.models_extra import RelPost, RelUser

        alice = await db.add(RelUser("alice")).or_raise()
        bob = await db.add(RelUser("bob")).or_raise()
        await db.add(RelPost("p1", alice.id), RelPost("p2", alice.id), RelPost("p3", bob.id)).or_raise()
        async with db.transaction() as t:
            users = await fetch(t.find(RelUser, RelPost.title != "p3").sort(RelUser.name).for_update())
        assert [u.name for u in users] == ["alice"]

    # -- ordering: a locked row waits for its holder ------------------------------------

    @requires("row_locks")
    async def test_for_update_of_a_locked_row_waits_for_the_holder_and_sees_its_write(self, db: Ommi) -> None:
        """B's ``for_update()`` of the row A locked returns only after A committed, with A's write."""
        await db.add(TxEntry("x"), TxEntry("y")).or_raise()
        locked = asyncio.Event()
        times: dict[str, float] = {}

        async def holder() -> None:
            async with db.transaction() as t:
                await fetch(t.find(TxEntry.label == "x").for_update())
                locked.set()
                await asyncio.sleep(HOLD)
                await t.find(TxEntry.label == "x").update(amount=7).or_raise()
                times["a_writing"] = time.monotonic()
            times["a_committed"] = time.monotonic()

        async def waiter() -> int:
            await locked.wait()
            async with db.transaction() as t:
                entry = await t.find(TxEntry.label == "x").for_update().one.or_raise()
                times["b_locked"] = time.monotonic()
                await t.find(TxEntry.label == "x").update(amount=entry.amount + 1).or_raise()
            seen: int = entry.amount
            return seen

        _, seen = await asyncio.wait_for(asyncio.gather(holder(), waiter()), timeout=30)
        assert times["b_locked"] >= times["a_writing"], times
        assert seen == 7  # B read A's committed write, not the row as it was before
        assert await _amount(db, "x") == 8  # no update lost

    @requires("row_locks")
    async def test_skip_locked_never_returns_a_row_another_transaction_holds(self, db: Ommi) -> None:
        """While A holds ``x``, B's ``skip_locked`` query never returns it; answered while A is open, it gives the rest.

        A driver with row-level locks answers at once with the other rows; a
        driver whose transactions exclude each other (SQLite) answers once A
        ended, with every row (nothing is locked any more).
        """
        await db.add(TxEntry("x"), TxEntry("y"), TxEntry("z")).or_raise()
        locked = asyncio.Event()
        a_open = True

        async def holder() -> None:
            nonlocal a_open
            async with db.transaction() as t:
                await fetch(t.find(TxEntry.label == "x").for_update())
                locked.set()
                await asyncio.sleep(HOLD)
                a_open = False

        async def skipper() -> tuple[list[str], bool]:
            await locked.wait()
            async with db.transaction() as t:
                rows = await fetch(t.find(TxEntry).sort(TxEntry.label).for_update(skip_locked=True))
                answered_while_a_open = a_open
            return [e.label for e in rows], answered_while_a_open

        _, (labels, while_open) = await asyncio.wait_for(asyncio.gather(holder(), skipper()), timeout=30)
        assert labels == (["y", "z"] if while_open else ["x", "y", "z"])

    @requires("row_locks")
    async def test_queue_workers_claiming_with_skip_locked_process_each_job_once(self, db: Ommi) -> None:
        """N workers claim jobs with ``limit(1).for_update(skip_locked=True)``: every job done, none twice."""
        jobs = 12
        await db.add(*(TxEntry(f"job{n:02}") for n in range(jobs))).or_raise()
        claims: list[tuple[int, str]] = []

        async def worker(number: int) -> None:
            while True:
                async with db.transaction() as t:
                    query = t.find(TxEntry.amount == 0).sort(TxEntry.label).limit(1).for_update(skip_locked=True)
                    found = await fetch(query)
                    if not found:
                        return
                    job = found[0]
                    claims.append((number, job.label))
                    await asyncio.sleep(0.01)  # the work, holding the claim
                    await t.find(TxEntry.label == job.label).update(amount=number).or_raise()

        await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(1, 5))), timeout=60)
        labels = [label for _, label in claims]
        assert sorted(labels) == [f"job{n:02}" for n in range(jobs)], claims  # each job claimed exactly once
        stored = {e.label: e.amount for e in await fetch(db.find(TxEntry))}
        assert stored == {label: number for number, label in claims}
        assert await db.find(TxEntry.amount == 0).count.or_raise() == 0

    @requires("row_locks", "timeouts")
    async def test_cancelled_for_update_wait_leaves_its_transaction_rollbackable_and_the_holder_locked(
        self, db: Ommi
    ) -> None:
        """A ``for_update()`` cancelled while waiting: its transaction rolls back; A's lock is not released by it."""
        await db.add(TxEntry("x")).or_raise()
        locked, release = asyncio.Event(), asyncio.Event()
        checks: dict[str, object] = {}

        async def holder() -> None:
            async with db.transaction() as t:
                await fetch(t.find(TxEntry.label == "x").for_update())
                locked.set()
                await release.wait()
                await t.find(TxEntry.label == "x").update(amount=3).or_raise()

        async def canceller() -> None:
            await locked.wait()
            try:
                async with asyncio.timeout(SHORT):
                    async with db.transaction() as t:
                        try:
                            await fetch(t.find(TxEntry.label == "x").for_update())
                        except asyncio.CancelledError:
                            # Cancelled mid-wait: the transaction is still there to roll back.
                            await t.rollback()
                            checks["rolled_back"] = True
                            raise
            except builtins.TimeoutError:  # asyncio.timeout's (Ommi's TimeoutError is a subclass: none is raised here)
                checks["timed_out"] = True
            # A still holds x: another transaction bounded by lock_timeout cannot get it.
            with pytest.raises(TimeoutError, match="lock_timeout"):
                async with db.transaction(lock_timeout=SHORT) as t:
                    await fetch(t.find(TxEntry.label == "x").for_update())
            release.set()

        await asyncio.wait_for(asyncio.gather(holder(), canceller()), timeout=30)
        assert checks.get("timed_out") is True
        assert await _amount(db, "x") == 3  # A committed after all that
        async with db.transaction() as t:  # and the row can be locked again
            assert [e.amount for e in await fetch(t.find(TxEntry.label == "x").for_update())] == [3]

    # -- timeouts -------------------------------------------------------------------------

    @requires("transactions")
    async def test_transaction_timeouts_must_be_seconds_above_zero(self, db: Ommi) -> None:
        """0, negatives, NaN, infinity, text and bools are refused when ``transaction()`` is called."""
        for bad in (0, -1, math.nan, math.inf, "1", True):
            for name in ("lock_timeout", "statement_timeout"):
                with pytest.raises(ConfigurationError, match=name):
                    db.transaction(**{name: bad})

    @requires("timeouts")
    async def test_lock_timeout_expires_naming_it_and_changes_nothing(self, db: Ommi) -> None:
        """B with ``lock_timeout`` waits that long for the row A is writing, then fails naming it; A's write stands."""
        await db.add(TxEntry("x")).or_raise()
        locked, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with db.transaction() as t:
                await t.find(TxEntry.label == "x").update(amount=1).or_raise()
                locked.set()
                await release.wait()

        async def bounded() -> float:
            await locked.wait()
            started = time.monotonic()
            try:
                with pytest.raises(TimeoutError, match="lock_timeout") as info:
                    async with db.transaction(lock_timeout=SHORT) as t:
                        await t.find(TxEntry.label == "x").update(amount=2).or_raise()
                assert f"{SHORT:g}" in str(info.value)
                return time.monotonic() - started
            finally:
                release.set()

        _, waited = await asyncio.wait_for(asyncio.gather(holder(), bounded()), timeout=30)
        assert SHORT * 0.8 <= waited < SHORT + 5
        assert await _amount(db, "x") == 1

    @requires("timeouts")
    async def test_after_a_lock_timeout_the_next_transactions_wait_normally(self, db: Ommi) -> None:
        """A transaction's own timeout ends with it: the next plain transaction waits past it, and succeeds."""
        await db.add(TxEntry("x")).or_raise()
        for _ in range(2):  # twice: pooled connections are reused
            locked = asyncio.Event()

            async def holder(locked: asyncio.Event = locked) -> None:
                async with db.transaction() as t:
                    await t.find(TxEntry.label == "x").update(amount=1).or_raise()
                    locked.set()
                    await asyncio.sleep(SHORT * 2.5)

            async def bounded_then_plain(locked: asyncio.Event = locked) -> None:
                await locked.wait()
                with pytest.raises(TimeoutError, match="lock_timeout"):
                    async with db.transaction(lock_timeout=SHORT / 2, statement_timeout=30) as t:
                        await t.find(TxEntry.label == "x").update(amount=2).or_raise()
                async with db.transaction() as t:  # waits for the holder, well past SHORT / 2
                    await t.find(TxEntry.label == "x").update(amount=5).or_raise()

            await asyncio.wait_for(asyncio.gather(holder(), bounded_then_plain()), timeout=30)
            assert await _amount(db, "x") == 5
        await db.add(TxEntry("after")).or_raise()
        assert await db.find(TxEntry).count.or_raise() == 2
