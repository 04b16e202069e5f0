"""The connection pool under pressure: exhaustion, cancellation, lost connections, many tasks.

Each test names its connections with a unique ``application_name`` so the
admin connection can find them in ``pg_stat_activity`` (and terminate them).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.errors import ConnectionError, TimeoutError
from ommi_postgresql import PostgreSQLDriver

models = ModelCollection("ommi_postgresql_pool_tests")


@ommi_model(collection=models)
@dataclass
class PoolEntry:
    """A row written by one worker task."""

    worker: int
    seq: int
    done: bool = False
    id: int | None = None


OpenDB = Callable[..., AbstractAsyncContextManager[tuple[Ommi, str]]]


@pytest.fixture
def open_db(make_driver: Callable[..., PostgreSQLDriver]) -> OpenDB:
    """``async with open_db(**settings) as (db, app_name)``: an open database with the models created."""

    @asynccontextmanager
    async def open_(**settings: Any) -> AsyncIterator[tuple[Ommi, str]]:
        name = f"ommi_pool_{uuid.uuid4().hex[:10]}"
        async with Ommi(make_driver(application_name=name, **settings)) as db:
            await db.remove_models(models)
            await db.use_models(models)
            try:
                yield db, name
            finally:
                await db.remove_models(models)

    return open_


def backends(admin: psycopg.Connection[Any], name: str) -> list[tuple[int, str]]:
    """(pid, state) of the server processes serving connections named ``name``."""
    rows = admin.execute(
        "SELECT pid, state FROM pg_stat_activity WHERE application_name = %s ORDER BY pid", [name]
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``condition`` (letting the event loop run) until it holds."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_pool_exhaustion_times_out_naming_the_pool_size(open_db: OpenDB) -> None:
    """With every connection held by a transaction, the next operation fails with TimeoutError naming the size."""
    async with open_db(pool_min_size=1, pool_max_size=2, pool_timeout=0.5) as (db, _):
        first = db.transaction()
        second = db.transaction()
        await first.__aenter__()
        await second.__aenter__()
        try:
            with pytest.raises(TimeoutError, match=r"all 2 connections of the pool are in use") as caught:
                await db.find(PoolEntry).count.or_raise()
            assert "pool_max_size" in str(caught.value)
            assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        finally:
            await first.__aexit__(None, None, None)
            await second.__aexit__(None, None, None)
        # The connections came back: the same operation now works.
        assert await db.find(PoolEntry).count.or_raise() == 0


async def test_concurrent_transactions_use_separate_connections(
    open_db: OpenDB, admin: psycopg.Connection[Any]
) -> None:
    """Five open transactions hold five server connections at once, and none sees the others' rows."""
    async with open_db(pool_min_size=1, pool_max_size=5) as (db, name):
        opened = [db.transaction() for _ in range(5)]
        for number, tx in enumerate(opened):
            await tx.__aenter__()
            await tx.add(PoolEntry(worker=number, seq=0)).or_raise()
        try:
            assert len(backends(admin, name)) == 5
            assert [state for _, state in backends(admin, name)] == ["idle in transaction"] * 5
            assert await opened[0].find(PoolEntry).count.or_raise() == 1
        finally:
            for tx in opened:
                await tx.__aexit__(None, None, None)
        assert await db.find(PoolEntry).count.or_raise() == 5


async def test_cancelled_task_inside_transaction_rolls_back_and_returns_connection(
    open_db: OpenDB, admin: psycopg.Connection[Any]
) -> None:
    """Cancelling a task that waits inside a transaction rolls it back and frees its (only) connection."""
    async with open_db(pool_min_size=1, pool_max_size=1, pool_timeout=2) as (db, name):
        inside = asyncio.Event()

        async def work() -> None:
            async with db.transaction() as tx:
                await tx.add(PoolEntry(worker=1, seq=1)).or_raise()
                inside.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(work())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # With a pool of one, this would time out if the connection had leaked.
        assert await db.find(PoolEntry).count.or_raise() == 0
        assert [state for _, state in backends(admin, name)] == ["idle"]


async def test_cancelled_task_blocked_in_a_statement_is_cancelled_on_the_server(
    open_db: OpenDB, admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """A task cancelled while its statement waits for a lock stops on the server too; nothing is left behind."""
    async with open_db(pool_min_size=1, pool_max_size=1, pool_timeout=2) as (db, name):
        with admin.transaction():
            admin.execute(f'LOCK TABLE "{postgresql_schema}"."PoolEntry" IN ACCESS EXCLUSIVE MODE')

            async def work() -> None:
                async with db.transaction() as tx:
                    # An explicit key: core lets an add that generates keys finish before a
                    # cancellation propagates (its keys must say what is stored), which here
                    # would mean waiting for the lock until lock_timeout.
                    await tx.add(PoolEntry(worker=2, seq=1, id=7)).or_raise()

            task = asyncio.create_task(work())
            await wait_for(
                lambda: bool(
                    admin.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
                        [name],
                    ).fetchall()
                ),
                "the insert to wait for the lock",
            )
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
            assert [state for _, state in backends(admin, name)] == ["idle"]
        assert await db.find(PoolEntry).count.or_raise() == 0


async def test_terminated_idle_connections_are_replaced_without_errors(
    open_db: OpenDB, admin: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """After pg_terminate_backend kills every pooled connection, the next operations all succeed."""
    caplog.set_level(logging.WARNING, logger="ommi.postgresql.pool")
    async with open_db(pool_min_size=3, pool_max_size=3) as (db, name):
        await wait_for(lambda: len(backends(admin, name)) == 3, "three pooled connections")
        before = {pid for pid, _ in backends(admin, name)}
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = %s", [name]
        ).fetchall()
        assert killed == [(True,)] * 3
        for number in range(10):
            await db.add(PoolEntry(worker=3, seq=number)).or_raise()
            assert await db.find(PoolEntry.worker == 3).count.or_raise() == number + 1
        after = {pid for pid, _ in backends(admin, name)}
        assert after and not (after & before)
        # Each dead connection was noticed before use, not by a failing operation.
        assert sum("pool.connection.lost" in r.getMessage() for r in caplog.records) == 3


async def test_terminated_connection_fails_only_the_operation_in_flight(
    open_db: OpenDB, admin: psycopg.Connection[Any]
) -> None:
    """A transaction whose connection is killed fails with ConnectionError; everything after it works."""
    async with open_db(pool_min_size=1, pool_max_size=2) as (db, name):
        tx = await db.transaction().__aenter__()
        await tx.add(PoolEntry(worker=4, seq=0)).or_raise()
        (pid,) = [p for p, state in backends(admin, name) if state == "idle in transaction"]
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        with pytest.raises(ConnectionError) as caught:
            await tx.find(PoolEntry).count.or_raise()
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        # Leaving the block rolls back; the failed rollback on the dead connection is logged, not raised.
        await tx.__aexit__(type(caught.value), caught.value, None)
        for number in range(5):
            await db.add(PoolEntry(worker=5, seq=number)).or_raise()
        assert await db.find(PoolEntry.worker == 4).count.or_raise() == 0
        assert await db.find(PoolEntry.worker == 5).count.or_raise() == 5


async def test_hundred_concurrent_tasks_mixed_reads_and_writes(open_db: OpenDB) -> None:
    """100 tasks on a pool of 10 add, read, update and delete their rows; every row is accounted for."""
    async with open_db(pool_min_size=2, pool_max_size=10) as (db, _):

        async def worker(number: int) -> set[int]:
            entries = [PoolEntry(worker=number, seq=seq) for seq in range(6)]
            await db.add(*entries).or_raise()
            assert all(entry.id is not None for entry in entries)
            mine = await (await db.find(PoolEntry.worker == number).sort(PoolEntry.seq).all.or_raise()).to_list()
            assert [(e.id, e.seq) for e in mine] == [(e.id, e.seq) for e in entries]
            assert await db.find(PoolEntry.worker == number, PoolEntry.seq < 3).update(done=True).or_raise() == 3
            assert await db.find(PoolEntry.worker == number, PoolEntry.seq == 5).delete.or_raise() == 1
            if number % 4 == 0:
                async with db.transaction() as tx:
                    extra = await tx.add(PoolEntry(worker=number, seq=6, done=True)).or_raise()
                    assert await tx.find(PoolEntry.worker == number).count.or_raise() == 6
                entries.append(extra)
            return {e.id for e in entries if e.seq != 5 and e.id is not None}

        kept = await asyncio.gather(*(worker(number) for number in range(100)))
        everything = await (await db.find(PoolEntry).all.or_raise()).to_list()
        expected = set().union(*kept)
        assert len(expected) == 100 * 5 + 25
        assert {e.id for e in everything} == expected
        assert len(everything) == len(expected)
        by_worker: dict[int, list[PoolEntry]] = {}
        for entry in everything:
            by_worker.setdefault(entry.worker, []).append(entry)
        for number, rows in by_worker.items():
            assert sorted(e.seq for e in rows) == [0, 1, 2, 3, 4] + ([6] if number % 4 == 0 else [])
            assert sorted(e.seq for e in rows if e.done) == [0, 1, 2] + ([6] if number % 4 == 0 else [])


async def test_server_refusing_new_connections_is_a_connection_error(
    make_driver: Callable[..., PostgreSQLDriver], admin: psycopg.Connection[Any], postgresql_url: str
) -> None:
    """When pooled connections die and new ones are refused, the error says so instead of "pool exhausted"."""
    role = f"ommi_limited_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        try:
            probe = psycopg.connect(postgresql_url, user=role, connect_timeout=3)
        except psycopg.OperationalError as exc:
            pytest.skip(f"the test server does not let a new role log in without a password: {exc}")
        probe.close()
        name = f"ommi_pool_{uuid.uuid4().hex[:10]}"
        driver = make_driver(user=role, application_name=name, pool_min_size=1, pool_max_size=2, pool_timeout=1)
        async with Ommi(driver, allow_implicit_model_setup=False) as db:
            admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = %s", [name]
            )
            with pytest.raises(ConnectionError, match=r"only 0 of the pool's 2 are in use") as caught:
                await db.find(PoolEntry).count.or_raise()
            assert isinstance(caught.value.__cause__, psycopg.OperationalError)
            admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_a_released_connection_goes_to_the_task_waiting_for_it(open_db: OpenDB) -> None:
    """With the only connection held, a waiting task gets it as soon as it is released, not at its timeout.

    A released idle connection is normally kept aside for the next acquire;
    it must go to psycopg_pool instead while a task waits there.
    """
    async with open_db(pool_min_size=1, pool_max_size=1, pool_timeout=10) as (db, _):
        await db.add(PoolEntry(worker=6, seq=0)).or_raise()  # leaves the connection kept aside
        holder = db.transaction()
        await holder.__aenter__()
        waiter = asyncio.create_task(db.find(PoolEntry.worker == 6).count.or_raise())
        await asyncio.sleep(0.2)
        assert not waiter.done()
        started = asyncio.get_running_loop().time()
        await holder.__aexit__(None, None, None)
        assert await asyncio.wait_for(waiter, timeout=5) == 1
        assert asyncio.get_running_loop().time() - started < 2
        for _ in range(3):
            assert await db.find(PoolEntry.worker == 6).count.or_raise() == 1


async def test_connections_kept_aside_count_as_available_and_go_back_after_a_while(
    open_db: OpenDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle connections kept for the next acquire show as available, and return to psycopg_pool in time."""
    import ommi_postgresql._pool as pool_module

    monkeypatch.setattr(pool_module, "_HOT_SECONDS", 0.1)
    async with open_db(pool_min_size=2, pool_max_size=2) as (db, _):
        await asyncio.gather(*(db.find(PoolEntry).count.or_raise() for _ in range(4)))
        pool = db.driver.pool  # type: ignore[attr-defined]
        stats = pool.stats()
        assert stats["connections_lent"] == 0
        assert stats["pool_available"] == stats["pool_size"] == 2
        requests = stats.get("requests_num", 0)
        assert await db.find(PoolEntry).count.or_raise() == 0
        assert pool.stats().get("requests_num", 0) == requests, "a fresh kept connection went through psycopg_pool"
        await asyncio.sleep(0.2)
        assert await db.find(PoolEntry).count.or_raise() == 0
        # The stale one went back to psycopg_pool (which applies max_lifetime and
        # max_idle) and the operation took its connection from there.
        assert pool.stats().get("requests_num", 0) > requests
        assert pool.stats()["pool_available"] == 2
