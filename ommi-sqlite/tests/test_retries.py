"""SQLite: a busy database is a BusyError (TimeoutError and SerializationError); with_transaction reruns it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.database import Transaction
from ommi.errors import BusyError, SerializationError
from ommi.errors import TimeoutError as OmmiTimeoutError
from ommi_sqlite._errors import translate

models = ModelCollection("ommi_sqlite_test_retries")


@ommi_model(collection=models)
@dataclass
class Counter:
    name: str
    value: int = 0
    id: int | None = None


def test_busy_is_both_a_timeout_and_a_serialization_error() -> None:
    """``SQLITE_BUSY`` and ``SQLITE_LOCKED`` become BusyError, which is both kinds (old handlers keep working)."""
    for code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_BUSY | (2 << 8)):
        exc = sqlite3.OperationalError("database is locked")
        exc.sqlite_errorcode = code
        translated = translate(exc, "'a.db'", 0.5)
        assert isinstance(translated, BusyError)
        assert isinstance(translated, OmmiTimeoutError) and isinstance(translated, TimeoutError)
        assert isinstance(translated, SerializationError)
        assert "busy_timeout=0.5" in str(translated)


async def test_with_transaction_reruns_while_another_connection_holds_the_write_lock(
    connect_file: Callable[..., Ommi],
) -> None:
    """Two Ommi on one file: while one holds the write lock, the other's with_transaction is busy, waits and reruns."""
    async with connect_file() as holder, connect_file(busy_timeout=0.05) as waiter:
        await holder.use_models(models)
        await waiter.use_models(models)
        runs: list[int] = []
        lock_held = asyncio.Event()

        async def hold_lock() -> None:
            async with holder.transaction() as t:
                await t.add(Counter("holder")).or_raise()
                lock_held.set()
                await asyncio.sleep(0.4)

        async def fn(t: Transaction) -> str:
            runs.append(1)
            await t.add(Counter("waiter")).or_raise()
            return "done"

        holding = asyncio.create_task(hold_lock())
        await lock_held.wait()
        result = await waiter.with_transaction(fn, retries=40, backoff=0.02)
        await holding
        assert result == "done"
        names = sorted(c.name for c in await (await holder.find(Counter).all.or_raise()).to_list())
        assert names == ["holder", "waiter"]
        # The rerun began only after the holder committed: the first attempts met the lock at BEGIN.
        assert len(runs) == 1


async def test_with_transaction_gives_up_with_busy_error_when_the_lock_stays(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """A lock held past every rerun: the last BusyError propagates, and nothing of the attempts is stored."""
    async with connect_file(busy_timeout=0.02) as db:
        await db.use_models(models)
        raw.execute("BEGIN IMMEDIATE")
        try:

            async def fn(t: Transaction) -> None:
                await t.add(Counter("never")).or_raise()

            with pytest.raises(BusyError, match=r"busy_timeout=0\.02"):
                await db.with_transaction(fn, retries=3, backoff=0.01)
        finally:
            raw.execute("ROLLBACK")
        assert await db.find(Counter).count.or_raise() == 0
