"""Conformance tests: isolation levels and retried transactions (``db.with_transaction``)."""

# Model classes double as query operands (``TxEntry.label == "x"``) and gain
# methods from the decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ommi import DeadlockError, IntegrityError, Ommi, SerializationError, UnsupportedFeature, ValidationError
from ommi.database import Transaction

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_extra import TxCode, TxEntry

LEVELS = ("read_committed", "repeatable_read", "serializable")


async def _labels(db: Ommi) -> list[str]:
    return sorted(entry.label for entry in await fetch(db.find(TxEntry)))


class RetryTests(SuiteBase):
    """``db.transaction(isolation=...)`` and ``db.with_transaction(fn, retries=..., backoff=...)``."""

    # -- isolation levels ---------------------------------------------------------------

    @requires("transactions", "isolation_levels")
    async def test_isolation_each_offered_level_runs_a_transaction(self, db: Ommi) -> None:
        """Every level the driver offers begins, writes and commits; the others are refused naming the level."""
        offered = db.driver.supported_isolation_levels
        assert offered, "a driver declaring isolation_levels offers at least one level"
        assert offered <= set(LEVELS)
        for level in LEVELS:
            if level in offered:
                async with db.transaction(isolation=level) as t:
                    await t.add(TxEntry(level)).or_raise()
            else:
                with pytest.raises(UnsupportedFeature, match=level):
                    db.transaction(isolation=level)
        assert await _labels(db) == sorted(offered)

    @requires("transactions")
    async def test_isolation_unknown_level_refused_listing_the_valid_ones(self, db: Ommi) -> None:
        """An unknown level is a ValidationError naming it and the three valid ones, before anything runs."""
        for bad in ("chaos", "SERIALIZABLE", "read committed", "", 3):
            with pytest.raises(ValidationError) as caught:
                db.transaction(isolation=bad)
            assert repr(bad) in str(caught.value)
            for level in LEVELS:
                assert level in str(caught.value)
        calls = []

        async def fn(t: Transaction) -> None:
            calls.append(t)

        with pytest.raises(ValidationError):
            await db.with_transaction(fn, isolation="chaos")
        assert calls == []

    @requires("transactions")
    async def test_isolation_refused_where_the_capability_is_absent(self, db: Ommi) -> None:
        """A driver without ``isolation_levels`` refuses any level with UnsupportedFeature naming it; None works."""
        async with db.transaction(isolation=None) as t:
            await t.add(TxEntry("default")).or_raise()
        if db.driver.capabilities.isolation_levels:
            assert db.driver.supported_isolation_levels
        else:
            with pytest.raises(UnsupportedFeature, match="serializable"):
                db.transaction(isolation="serializable")
        assert await _labels(db) == ["default"]

    # -- with_transaction -----------------------------------------------------------------

    @requires("transactions")
    async def test_with_transaction_returns_the_result_and_commits(self, db: Ommi, second_db: Ommi) -> None:
        """``fn`` runs once in a transaction that commits; its result is returned."""
        calls: list[Transaction] = []

        async def fn(t: Transaction) -> str:
            calls.append(t)
            await t.add(TxEntry("done")).or_raise()
            return "result"

        assert await db.with_transaction(fn) == "result"
        assert len(calls) == 1 and calls[0].committed
        assert await second_db.find(TxEntry).count.or_raise() == 1

    @requires("transactions")
    async def test_with_transaction_reruns_after_serialization_errors(self, db: Ommi) -> None:
        """A SerializationError (or DeadlockError) reruns ``fn`` in a new transaction; failed attempts leave nothing.

        The instance added in each failed attempt has its generated key reset
        before the rerun, so the rerun inserts it again (one row, not two).
        """
        entry = TxEntry("entry")
        seen: list[int | None] = []
        errors = [SerializationError("conflict"), DeadlockError("deadlock")]

        async def fn(t: Transaction) -> int:
            seen.append(entry.id)
            await t.add(entry, TxEntry(f"attempt{len(seen)}")).or_raise()
            if errors:
                raise errors.pop(0)
            return len(seen)

        assert await db.with_transaction(fn, backoff=0.001) == 3
        assert seen == [None, None, None]
        assert entry.id is not None
        assert await _labels(db) == ["attempt3", "entry"]

    @requires("transactions")
    async def test_with_transaction_gives_up_with_the_last_error(self, db: Ommi) -> None:
        """``retries=2``: at most three runs; then the third run's error propagates and nothing is stored."""
        raised: list[SerializationError] = []

        async def fn(t: Transaction) -> None:
            await t.add(TxEntry(f"attempt{len(raised)}")).or_raise()
            raised.append(SerializationError(f"conflict {len(raised)}"))
            raise raised[-1]

        with pytest.raises(SerializationError) as caught:
            await db.with_transaction(fn, retries=2, backoff=0)
        assert len(raised) == 3
        assert caught.value is raised[-1]
        assert await _labels(db) == []

    @requires("transactions")
    async def test_with_transaction_retries_zero_runs_once(self, db: Ommi) -> None:
        """``retries=0`` runs ``fn`` once and lets its SerializationError through."""
        runs = []

        async def fn(t: Transaction) -> None:
            runs.append(1)
            raise SerializationError("conflict")

        with pytest.raises(SerializationError):
            await db.with_transaction(fn, retries=0)
        assert runs == [1]

    @requires("transactions")
    async def test_with_transaction_never_reruns_other_errors(self, db: Ommi) -> None:
        """An IntegrityError, a TransactionError-free bug (ValueError): one run, the error propagates, nothing kept."""
        await db.add(TxCode("taken")).or_raise()
        runs: list[str] = []

        async def duplicate(t: Transaction) -> None:
            runs.append("duplicate")
            await t.add(TxEntry("before")).or_raise()
            await t.add(TxCode("taken")).or_raise()

        async def buggy(t: Transaction) -> None:
            runs.append("buggy")
            await t.add(TxEntry("before")).or_raise()
            raise ValueError("a bug")

        with pytest.raises(IntegrityError):
            await db.with_transaction(duplicate, backoff=0)
        with pytest.raises(ValueError, match="a bug"):
            await db.with_transaction(buggy, backoff=0)
        assert runs == ["duplicate", "buggy"]
        assert await _labels(db) == []

    @requires("transactions")
    async def test_with_transaction_cancelled_inside_fn_keeps_nothing(self, db: Ommi) -> None:
        """Cancelling the task while ``fn`` runs propagates at once and rolls back what ``fn`` wrote."""
        started = asyncio.Event()
        entry = TxEntry("written")

        async def fn(t: Transaction) -> None:
            await t.add(entry).or_raise()
            started.set()
            await asyncio.sleep(30)

        task = asyncio.create_task(db.with_transaction(fn))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert entry.id is None
        assert await _labels(db) == []

    @requires("transactions")
    async def test_with_transaction_cancelled_during_backoff_keeps_nothing(self, db: Ommi) -> None:
        """Cancelled while it waits before a rerun: the cancellation propagates at once, nothing is stored."""
        runs: list[int] = []
        failed = asyncio.Event()

        async def fn(t: Transaction) -> None:
            runs.append(1)
            await t.add(TxEntry("attempt")).or_raise()
            failed.set()
            raise SerializationError("conflict")

        task = asyncio.create_task(db.with_transaction(fn, backoff=lambda retry: 30.0))
        await failed.wait()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert runs == [1]
        assert await _labels(db) == []

    @requires("transactions")
    async def test_with_transaction_bad_arguments_refused_before_running(self, db: Ommi) -> None:
        """A bad ``retries``, ``backoff`` or ``fn`` is a ValidationError, and ``fn`` never runs."""
        runs: list[Any] = []

        async def fn(t: Transaction) -> None:
            runs.append(t)

        bad: list[dict[str, Any]] = [
            {"retries": -1},
            {"retries": 1.5},
            {"retries": True},
            {"retries": "3"},
            {"backoff": -0.1},
            {"backoff": float("nan")},
            {"backoff": float("inf")},
            {"backoff": "fast"},
        ]
        for arguments in bad:
            with pytest.raises(ValidationError):
                await db.with_transaction(fn, **arguments)
        with pytest.raises(ValidationError):
            await db.with_transaction(None)
        assert runs == []
        assert await db.find(TxEntry).count.or_raise() == 0
