"""Core of savepoints, isolation levels and retried transactions (ommi._transactions), on the reference driver.

Argument checks happen before any I/O; the backoff is computed from a seeded
random generator and the retry loop's sleep is injected, so both are
deterministic; savepoint cancellation is tested at each of its three driver
calls, slowed down so that the cancellation lands inside the call.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio
from ommi import ModelCollection, Ommi, ommi_model
from ommi._transactions import MAX_BACKOFF, check_options, retry_delay, run_with_retries
from ommi.database import Transaction
from ommi.drivers import DriverTransaction, TransactionOptions
from ommi.errors import (
    BusyError,
    DatabaseClosedError,
    DatabaseError,
    DeadlockError,
    QueryError,
    SerializationError,
    TimeoutError,
    TransactionError,
    UnsupportedFeature,
    ValidationError,
)
from ommi.sql.operations import _savepoint_name
from ommi_testkit.reference import ReferenceDriver, _ReferenceTransaction

models = ModelCollection("test_transactions_core")


@ommi_model(collection=models, name="tx_core_item")
@dataclass
class Item:
    label: str
    id: int | None = None


class _SlowTransaction(_ReferenceTransaction):
    """The reference transaction, its savepoint calls taking 50 ms (a cancellation can land inside them)."""

    async def savepoint(self, name: str) -> None:
        await asyncio.sleep(0.05)
        await super().savepoint(name)

    async def release_savepoint(self, name: str) -> None:
        await asyncio.sleep(0.05)
        await super().release_savepoint(name)

    async def rollback_to_savepoint(self, name: str) -> None:
        await asyncio.sleep(0.05)
        await super().rollback_to_savepoint(name)


class _SlowSavepoints(ReferenceDriver):
    async def begin(self, options: TransactionOptions | None = None) -> DriverTransaction:
        return await self._begin(_SlowTransaction)


class _Plain(ReferenceDriver):
    """A driver written before savepoints and isolation levels: neither capability."""

    capabilities = dataclasses.replace(ReferenceDriver.capabilities, savepoints=False, isolation_levels=False)


class _SerializableOnly(ReferenceDriver):
    supported_isolation_levels = frozenset({"serializable"})


@pytest_asyncio.fixture
async def db() -> AsyncIterator[Ommi]:
    async with Ommi(_SlowSavepoints()) as database:
        await database.use_models(models)
        yield database


async def _labels(executor: Ommi | Transaction) -> list[str]:
    return sorted(i.label for i in await (await executor.find(Item).all.or_raise()).to_list())


# -- the error classes -------------------------------------------------------------


def test_serialization_error_hierarchy() -> None:
    """DeadlockError and BusyError are SerializationErrors; BusyError is also both TimeoutErrors."""
    assert issubclass(SerializationError, DatabaseError)
    assert issubclass(DeadlockError, SerializationError)
    assert issubclass(BusyError, SerializationError) and issubclass(BusyError, TimeoutError)
    assert isinstance(BusyError("x"), builtins.TimeoutError)
    assert str(BusyError("locked")) == "locked"
    assert "rerun the whole transaction" in (SerializationError.__doc__ or "")


# -- isolation levels ------------------------------------------------------------------


def test_unknown_isolation_level_lists_the_valid_ones_before_any_io() -> None:
    db = Ommi(ReferenceDriver())
    for bad in ("snapshot", "SERIALIZABLE", None.__class__.__name__, 1):
        with pytest.raises(ValidationError, match="'read_committed', 'repeatable_read', 'serializable'"):
            db.transaction(isolation=bad)  # type: ignore[arg-type]
    assert db._state == "new"  # nothing was opened


def test_isolation_refused_by_a_driver_without_the_capability() -> None:
    with pytest.raises(UnsupportedFeature, match=r"'repeatable_read'.*capability 'isolation_levels' is absent"):
        Ommi(_Plain()).transaction(isolation="repeatable_read")
    Ommi(_Plain()).transaction()  # no level: the database's default, fine


def test_isolation_refused_for_a_level_the_driver_does_not_offer() -> None:
    db = Ommi(_SerializableOnly())
    with pytest.raises(UnsupportedFeature, match=r"'read_committed'.*offers 'serializable'"):
        db.transaction(isolation="read_committed")
    check_options(db.driver, TransactionOptions(isolation="serializable"))


async def test_isolation_reaches_the_driver_as_options() -> None:
    """``begin`` gets the options only when a level is set (a driver's plain ``begin()`` otherwise)."""
    seen: list[TransactionOptions | None] = []

    class Recording(ReferenceDriver):
        async def begin(self, options: TransactionOptions | None = None) -> DriverTransaction:
            seen.append(options)
            return await super().begin(options)

    async with Ommi(Recording()) as db:
        async with db.transaction():
            pass
        async with db.transaction(isolation="serializable"):
            pass
    assert seen == [None, TransactionOptions(isolation="serializable")]


# -- savepoints: capability and names ----------------------------------------------------


async def test_savepoints_refused_without_the_capability_before_any_io() -> None:
    async with Ommi(_Plain()) as db:
        await db.use_models(models)
        async with db.transaction() as t:
            with pytest.raises(UnsupportedFeature, match="capability 'savepoints' is absent"):
                t.transaction()
            with pytest.raises(UnsupportedFeature):
                await t.with_transaction(_add("x"))
            await t.add(Item("outer")).or_raise()
        assert await _labels(db) == ["outer"]


async def test_a_driver_transaction_without_savepoints_refuses_the_calls() -> None:
    """The base class's savepoint methods raise UnsupportedFeature (a driver written before them)."""

    class Bare(DriverTransaction):
        insert = fetch = count = delete = update = commit = rollback = None  # type: ignore[assignment]

    Bare.__abstractmethods__ = frozenset()
    bare = Bare()
    for call in (bare.savepoint, bare.release_savepoint, bare.rollback_to_savepoint):
        with pytest.raises(UnsupportedFeature, match="savepoints"):
            await call("ommi_sp_0")


def test_sql_savepoint_names_must_be_plain_identifiers() -> None:
    assert _savepoint_name("ommi_sp_00ff") == '"ommi_sp_00ff"'
    for bad in ('x"; DROP TABLE t; --', "", "1abc", "a" * 64, "with space"):
        with pytest.raises(QueryError):
            _savepoint_name(bad)


def _add(label: str) -> Callable[[Transaction], Awaitable[None]]:
    async def fn(t: Transaction) -> None:
        await t.add(Item(label)).or_raise()

    return fn


# -- savepoints: cancellation at each driver call ------------------------------------------


async def _cancel_after(task: asyncio.Task[object], seconds: float) -> None:
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_while_the_savepoint_is_made(db: Ommi) -> None:
    """Cancelled inside ``SAVEPOINT``: the call finishes, the savepoint is taken away, the outer goes on."""
    entered: list[bool] = []

    async def body(t: Transaction) -> None:
        async with t.transaction() as inner:
            entered.append(True)
            await inner.add(Item("inner")).or_raise()

    async with db.transaction() as t:
        await t.add(Item("outer")).or_raise()
        await _cancel_after(asyncio.create_task(body(t)), 0.02)
        assert entered == []
        assert t._savepoints == []
        assert isinstance(t._tx, _SlowTransaction) and t._tx._savepoints == {}
        await t.add(Item("after")).or_raise()
    assert await _labels(db) == ["after", "outer"]


async def test_cancelled_while_the_savepoint_is_released(db: Ommi) -> None:
    """Cancelled inside ``RELEASE``: the release finishes (the block's work stays whole), then the cancellation."""
    item = Item("inner")

    async def body(t: Transaction) -> None:
        async with t.transaction() as inner:
            await inner.add(item).or_raise()

    async with db.transaction() as t:
        await _cancel_after(asyncio.create_task(body(t)), 0.07)
        assert t._savepoints == []
        assert item.id is not None
        assert await _labels(t) == ["inner"]
        await t.add(Item("after")).or_raise()
    assert await _labels(db) == ["after", "inner"]


async def test_cancelled_while_rolling_back_to_the_savepoint(db: Ommi) -> None:
    """Cancelled inside ``ROLLBACK TO``: the rollback finishes (nothing of the block stays), keys reset."""
    item = Item("inner")

    async def body(t: Transaction) -> None:
        async with t.transaction() as inner:
            await inner.add(item).or_raise()
            raise ValueError("undo")

    async with db.transaction() as t:
        await _cancel_after(asyncio.create_task(body(t)), 0.07)
        assert t._savepoints == []
        assert item.id is None
        assert await _labels(t) == []
        await t.add(Item("after")).or_raise()
    assert await _labels(db) == ["after"]


async def test_transaction_ending_with_a_savepoint_open_rolls_back(db: Ommi) -> None:
    """``t.commit()`` while a savepoint is open: TransactionError and a rollback, never a commit of half of it."""
    async with db.transaction() as t:
        inner = t.transaction()
        await inner.__aenter__()
        await inner.add(Item("inner")).or_raise()
        with pytest.raises(TransactionError, match="still open"):
            await t.commit()
    assert await _labels(db) == []


async def test_database_closed_while_a_savepoint_is_open() -> None:
    """close() during a savepoint: its operations and its release raise DatabaseClosedError, a failing block's
    own error propagates, and nothing is committed."""
    async with Ommi(ReferenceDriver()) as db:
        await db.use_models(models)
        item = Item("inner")
        with pytest.raises(DatabaseClosedError):  # noqa: PT012 - the block is what raises
            async with db.transaction() as t, t.transaction() as inner:
                await inner.add(item).or_raise()
                await db.close()
                with pytest.raises(DatabaseClosedError):
                    await inner.add(Item("late")).or_raise()
        assert item.id is None
        with pytest.raises(ValueError, match="mine"):  # noqa: PT012 - the block is what raises
            await db.open()
            async with db.transaction() as t, t.transaction() as inner:
                await inner.add(Item("x")).or_raise()
                await db.close()
                raise ValueError("mine")
        await db.open()
        assert await _labels(db) == []


# -- retries: backoff and the loop ----------------------------------------------------------


def test_backoff_is_jittered_exponential_and_capped() -> None:
    rng = random.Random(7)
    for retry in range(1, 12):
        ceiling = min(0.1 * 2 ** (retry - 1), MAX_BACKOFF)
        for _ in range(50):
            delay = retry_delay(0.1, retry, rng)
            assert ceiling / 2 <= delay <= ceiling
    assert retry_delay(0.0, 3, rng) == 0.0
    assert 10.0 <= retry_delay(20.0, 1, rng) <= 20.0  # a base above the cap is its own ceiling
    assert retry_delay(0.1, 10_000, rng) <= MAX_BACKOFF  # no overflow for huge retry numbers


def test_backoff_is_deterministic_with_a_seeded_generator() -> None:
    first = [retry_delay(0.05, n, random.Random(3)) for n in range(1, 6)]
    second = [retry_delay(0.05, n, random.Random(3)) for n in range(1, 6)]
    assert first == second
    assert first[0] == 0.05 * (0.5 + random.Random(3).random() / 2)


def test_backoff_callable_gives_the_delay_and_is_checked() -> None:
    assert retry_delay(lambda n: n * 0.5, 3) == 1.5
    for bad in (-1, float("nan"), "1", None, True):
        with pytest.raises(ValidationError, match="backoff function"):
            retry_delay(lambda n, bad=bad: bad, 1)  # type: ignore[misc]


async def test_retry_loop_sleeps_the_computed_delays_and_reruns(db: Ommi) -> None:
    """Three conflicts, then success: three sleeps of the seeded delays, four runs, the last one's rows."""
    sleeps: list[float] = []
    runs: list[int] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def fn(t: Transaction) -> int:
        runs.append(1)
        await t.add(Item(f"run{len(runs)}")).or_raise()
        if len(runs) <= 3:
            raise (DeadlockError if len(runs) == 2 else SerializationError)("conflict")
        return len(runs)

    result = await run_with_retries(db.transaction, fn, retries=5, backoff=0.2, sleep=sleep, rng=random.Random(11))
    assert result == 4
    expected_rng = random.Random(11)
    assert sleeps == [retry_delay(0.2, n, expected_rng) for n in (1, 2, 3)]
    assert await _labels(db) == ["run4"]


async def test_retry_loop_raises_the_last_error_after_retries_plus_one_runs(db: Ommi) -> None:
    errors: list[SerializationError] = []

    async def sleep(seconds: float) -> None:
        return None

    async def fn(t: Transaction) -> None:
        errors.append(SerializationError(str(len(errors))))
        raise errors[-1]

    with pytest.raises(SerializationError) as caught:
        await run_with_retries(db.transaction, fn, retries=4, backoff=1.0, sleep=sleep)
    assert len(errors) == 5 and caught.value is errors[-1]


async def test_with_transaction_checks_isolation_before_running(db: Ommi) -> None:
    runs: list[int] = []

    async def fn(t: Transaction) -> None:
        runs.append(1)

    with pytest.raises(UnsupportedFeature, match="'read_committed'"):
        await Ommi(_SerializableOnly()).with_transaction(fn, isolation="read_committed")
    assert await db.with_transaction(fn, isolation="serializable") is None
    assert runs == [1]
