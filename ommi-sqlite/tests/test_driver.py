"""The driver's machinery: WAL, pooled connections, streaming, concurrency, cancellation, logging."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest
from ommi import ModelCollection, Ommi, ReferenceTo, ommi_model
from ommi.errors import IntegrityError
from ommi.errors import TimeoutError as OmmiTimeoutError
from ommi.query.find import plan_query
from ommi_sqlite import SQLiteDriver

models = ModelCollection("ommi_sqlite_test_driver")


@ommi_model(collection=models)
@dataclass
class Row:
    number: int
    text: str = ""
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Child:
    row_id: Annotated[int, ReferenceTo(Row)]
    id: int | None = None


async def test_file_databases_use_wal_and_foreign_keys(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """A file database is switched to WAL, and references are enforced."""
    async with connect_file() as db:
        await db.use_models(models)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with pytest.raises(IntegrityError, match="FOREIGN KEY") as caught:
            await db.add(Child(row_id=404)).or_raise()
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)


async def test_journal_mode_setting_is_applied(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, db_path: Path
) -> None:
    """``journal_mode="delete"`` keeps a file out of WAL (only WAL is stored in the file itself)."""
    async with connect_file(journal_mode="delete") as db:
        await db.use_models(models)
        await db.add(Row(1)).or_raise()
        wal_exists = Path(f"{db_path}-wal").exists()  # noqa: ASYNC240 - a stat in a test
    assert not wal_exists
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)


async def test_audit_11_batch_size_setting_sizes_the_batches(connect_file: Callable[..., Ommi]) -> None:
    """The driver's ``batch_size`` is the default size of each fetched batch (audit item 11)."""
    async with connect_file(batch_size=3) as db:
        await db.use_models(models)
        await db.add(*(Row(i) for i in range(8))).or_raise()
        driver = db.driver
        batches = [len(batch) async for batch in driver.fetch(plan_query((Row,)), driver.default_batch_size)]
        assert batches == [3, 3, 2]
        assert len(await (await db.find(Row).all.or_raise()).to_list()) == 8


async def test_audit_8_event_loop_stays_responsive_while_rows_stream(connect_file: Callable[..., Ommi]) -> None:
    """A 1 ms heartbeat keeps ticking while 50k rows stream (audit item 8: SQLite blocked the loop).

    A responsiveness bound, not a benchmark: the largest gap between beats
    must stay far below what a blocking read of 50k rows would cause.
    """
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(*(Row(i, "x" * 20) for i in range(50_000))).or_raise()
        gaps: list[tuple[float, float]] = []  # (wall time, CPU time of the loop's thread) between beats
        stop = asyncio.Event()

        async def heartbeat() -> None:
            last, last_cpu = time.perf_counter(), time.thread_time()
            while not stop.is_set():
                await asyncio.sleep(0.001)
                now, now_cpu = time.perf_counter(), time.thread_time()
                gaps.append((now - last, now_cpu - last_cpu))
                last, last_cpu = now, now_cpu

        # A full garbage collection stops every thread, and its length grows
        # with whatever earlier tests of this process left alive; freezing
        # those objects keeps the measurement about the driver.
        gc.collect()
        gc.freeze()
        try:
            beating = asyncio.create_task(heartbeat())
            await asyncio.sleep(0.01)
            count = 0
            async for _ in db.find(Row).all:
                count += 1
            stop.set()
            await beating
        finally:
            gc.unfreeze()
    assert count == 50_000
    assert len(gaps) > 10
    wall, cpu = max(gaps)
    assert wall < 0.2, f"the event loop stalled for {wall * 1000:.0f} ms ({cpu * 1000:.0f} ms of it running)"


async def test_audit_9_concurrent_reads_use_pooled_connections(connect_file: Callable[..., Ommi]) -> None:
    """Audit item 9: several streams read at once, each on a pooled reader connection of its own."""
    async with connect_file(pool_size=3, busy_timeout=0.5, batch_size=1) as db:
        await db.use_models(models)
        await db.add(*(Row(i) for i in range(5))).or_raise()
        iterators = [await db.find(Row).sort(Row.number.asc).all.or_raise() for _ in range(3)]
        firsts = await asyncio.gather(*(anext(it) for it in iterators))
        assert [row.number for row in firsts] == [0, 0, 0]
        pool = db.driver._pool  # type: ignore[attr-defined]
        assert len(pool._readers) == 3  # three connections, not one shared
        for iterator in iterators:
            await iterator.aclose()
        # Released readers are reused rather than reopened.
        await asyncio.gather(*(db.find(Row).count.or_raise() for _ in range(6)))
        assert len(pool._readers) == 3


async def test_audit_10_cursors_are_reused(connect_file: Callable[..., Ommi]) -> None:
    """Audit item 10: repeated operations reuse each connection's cursor instead of opening new ones."""
    async with connect_file(pool_size=1) as db:
        await db.use_models(models)
        for number in range(30):
            await db.add(Row(number)).or_raise()
            await db.find(Row.number == number).count.or_raise()
            await db.find(Row.number == number).update(text="x").or_raise()
            assert len([r async for r in db.find(Row.number == number).all]) == 1
        pool = db.driver._pool  # type: ignore[attr-defined]
        (reader,) = pool._readers
        assert pool.writer.cursors_opened == 1
        assert reader.cursors_opened == 1


async def test_closing_a_stream_early_gives_its_connection_back(connect_file: Callable[..., Ommi]) -> None:
    """With one reader connection, a stream closed early (or exhausted) frees it for the next read."""
    async with connect_file(pool_size=1, busy_timeout=1, batch_size=2) as db:
        await db.use_models(models)
        await db.add(*(Row(i) for i in range(10))).or_raise()
        iterator = await db.find(Row).all.or_raise()
        first = await anext(iterator)
        assert first.number == 0
        await iterator.aclose()
        assert await db.find(Row).count.or_raise() == 10  # would time out if the reader were still held
        assert len([r async for r in db.find(Row).all]) == 10
        assert await db.find(Row.number > 4).count.or_raise() == 5


async def test_a_held_stream_makes_other_reads_wait_then_time_out(connect_file: Callable[..., Ommi]) -> None:
    """When every reader is streaming, another read waits up to busy_timeout, then fails clearly."""
    async with connect_file(pool_size=1, busy_timeout=0.2, batch_size=2) as db:
        await db.use_models(models)
        await db.add(*(Row(i) for i in range(10))).or_raise()
        iterator = await db.find(Row).all.or_raise()
        await anext(iterator)
        with pytest.raises(OmmiTimeoutError, match=r"busy_timeout=0.2 s.*pool_size=1"):
            await db.find(Row).count.or_raise()
        await iterator.aclose()


async def test_writes_while_streaming_do_not_deadlock(connect_file: Callable[..., Ommi]) -> None:
    """Updating each row while iterating works on a file and in memory."""
    for db in (connect_file(batch_size=3), Ommi(SQLiteDriver.connect(batch_size=3))):
        async with db:
            await db.use_models(models)
            await db.add(*(Row(i) for i in range(7))).or_raise()
            async for row in db.find(Row).sort(Row.number.asc).all:
                await db.find(Row.id == row.id).update(text=f"seen {row.number}").or_raise()
            assert await db.find(Row.text.startswith("seen")).count.or_raise() == 7


async def test_writers_wait_for_an_open_transaction(connect_file: Callable[..., Ommi]) -> None:
    """Concurrent writers, of this Ommi and of a second one on the file, wait for a transaction instead of failing."""
    async with connect_file() as db, connect_file() as other:
        await db.use_models(models)
        committed = asyncio.Event()
        finished: dict[str, float] = {}

        async def transaction() -> None:
            async with db.transaction() as t:
                await t.add(Row(1)).or_raise()
                await asyncio.sleep(0.3)
            finished["transaction"] = time.perf_counter()
            committed.set()

        async def writer(name: str, target: Ommi, number: int) -> None:
            await asyncio.sleep(0.05)  # the transaction is open by now
            await target.add(Row(number)).or_raise()
            finished[name] = time.perf_counter()

        await asyncio.gather(transaction(), writer("same", db, 2), writer("same2", db, 3), writer("other", other, 4))
        assert committed.is_set()
        for name in ("same", "same2", "other"):
            assert finished[name] >= finished["transaction"] - 0.01, name
        assert sorted([r.number async for r in db.find(Row).all]) == [1, 2, 3, 4]


async def test_other_tasks_read_committed_rows_while_a_transaction_is_open(connect_file: Callable[..., Ommi]) -> None:
    """On a file, reads outside an open transaction run at once and see only committed rows."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(Row(1)).or_raise()
        async with db.transaction() as t:
            await t.add(Row(2)).or_raise()
            started = time.perf_counter()
            assert await db.find(Row).count.or_raise() == 1
            assert time.perf_counter() - started < 1.0
            assert await t.find(Row).count.or_raise() == 2
        assert await db.find(Row).count.or_raise() == 2


async def test_memory_transactions_serialise_other_tasks(memory_name: str) -> None:
    """In memory, another task's read waits for the open transaction, then sees its commit."""
    async with Ommi(SQLiteDriver.connect(memory_name)) as db:
        await db.use_models(models)
        assert not db.driver.capabilities.transaction_isolation
        seen: list[int] = []

        async def reader() -> None:
            seen.append(await db.find(Row).count.or_raise())

        async with db.transaction() as t:
            await t.add(Row(1)).or_raise()
            task = asyncio.create_task(reader())
            await asyncio.sleep(0.05)
            assert not task.done()
        await task
        assert seen == [1]


async def test_memory_read_inside_own_transaction_times_out_clearly() -> None:
    """In memory, using ``db`` (not the transaction) inside a transaction waits busy_timeout, then says why."""
    async with Ommi(SQLiteDriver.connect(busy_timeout=0.1)) as db:
        await db.use_models(models)
        async with db.transaction() as t:
            with pytest.raises(OmmiTimeoutError, match="in-memory database"):
                await db.find(Row).count.or_raise()
            await t.add(Row(1)).or_raise()
        assert await db.find(Row).count.or_raise() == 1


async def test_cancelled_transaction_rolls_back_and_frees_the_writer(connect_file: Callable[..., Ommi]) -> None:
    """Cancelling a task inside a transaction rolls it back and releases the write lock."""
    async with connect_file(busy_timeout=1) as db:
        await db.use_models(models)
        inside = asyncio.Event()

        async def work() -> None:
            async with db.transaction() as t:
                await t.add(Row(1)).or_raise()
                inside.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(work())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await db.add(Row(2)).or_raise()  # the writer is free again
        assert [r.number async for r in db.find(Row).all] == [2]


async def test_cancelled_while_waiting_for_the_writer(connect_file: Callable[..., Ommi]) -> None:
    """A task cancelled while it waits to begin a transaction leaves the lock to the others."""
    async with connect_file() as db:
        await db.use_models(models)
        async with db.transaction() as t:
            waiting = asyncio.create_task(db.add(Row(9)).or_raise())
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await t.add(Row(1)).or_raise()
        await db.add(Row(2)).or_raise()
        assert sorted([r.number async for r in db.find(Row).all]) == [1, 2]


async def test_named_memory_database_is_shared_until_the_last_driver_closes(memory_name: str) -> None:
    """Drivers naming the same memory URI share the database; it is gone when the last one closes."""
    first = Ommi(SQLiteDriver.connect(memory_name))
    async with first:
        await first.use_models(models)
        await first.add(Row(1)).or_raise()
        async with Ommi(SQLiteDriver.connect(memory_name), allow_implicit_model_setup=False) as second:
            assert await second.find(Row).count.or_raise() == 1
        assert await first.find(Row).count.or_raise() == 1
    async with Ommi(SQLiteDriver.connect(memory_name)) as again:
        await again.use_models(models)
        assert await again.find(Row).count.or_raise() == 0


async def test_statements_are_logged_at_debug_without_values(
    connect_file: Callable[..., Ommi], caplog: pytest.LogCaptureFixture
) -> None:
    """Statement text goes to ``ommi.sqlite.driver`` at debug; parameter values never do."""
    with caplog.at_level(logging.DEBUG, logger="ommi.sqlite.driver"):
        async with connect_file() as db:
            await db.use_models(models)
            await db.add(Row(424242, "secret-value")).or_raise()
            await db.find(Row.text == "secret-value").count.or_raise()
    messages = [r.getMessage() for r in caplog.records if r.name == "ommi.sqlite.driver"]
    assert any("INSERT INTO" in m and "query.execute" in m for m in messages)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "query.execute" in r.getMessage())
    assert not any("secret-value" in m or "424242" in m for m in messages)


async def test_close_is_idempotent_and_closes_everything(db_path: Path) -> None:
    """``close`` twice is fine; operations after it fail with a ConnectionError, not a hang."""
    from ommi.errors import ConnectionError as OmmiConnectionError

    driver = SQLiteDriver.connect(str(db_path))
    await driver.open()
    await driver.close()
    await driver.close()
    with pytest.raises(OmmiConnectionError, match="closed"):
        await driver.count(plan_query((Row,)))


def test_plugin_module_imports_no_database_client() -> None:
    """Importing ``ommi_sqlite.plugin`` (as the entry point does) imports neither aiosqlite nor sqlite3."""
    code = (
        "import sys, ommi_sqlite.plugin\n"
        "loaded = [m for m in ('aiosqlite', 'sqlite3', '_sqlite3') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "from ommi.plugins import driver_specs\n"
        "spec = driver_specs()['sqlite']\n"
        "assert spec.schemes == ('sqlite',) and spec.distribution == 'ommi-sqlite', spec\n"
        "assert spec.driver == 'ommi_sqlite.driver:SQLiteDriver'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def memory_name() -> str:
    import uuid

    return f"file:ommi-driver-test-{uuid.uuid4().hex}?mode=memory"
