"""PostgreSQL row locks (``FOR UPDATE``) and timeouts (``lock_timeout`` / ``statement_timeout``), on the real server.

What only row-level locking shows (``skip_locked`` answering while the holder
is open, ``nowait``), the SQL sent, the settings from the URL and per
transaction, that ``SET LOCAL`` never leaks into the pool's next user, and
SQLSTATE 57014 told apart from a cancel request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
import pytest
from ommi import ModelCollection, Ommi, ReferenceTo, ommi_model
from ommi.errors import ConfigurationError, OperationalError, TimeoutError, TransactionError
from ommi_postgresql import PostgreSQLDriver
from ommi_postgresql._settings import MAX_TIMEOUT

models = ModelCollection("ommi_postgresql_lock_tests")


@ommi_model(collection=models)
@dataclass
class LockJob:
    label: str
    amount: int = 0
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class LockNote:
    job_id: Annotated[int, ReferenceTo(LockJob)]
    text: str
    id: int | None = None


@asynccontextmanager
async def opened(make_driver: Callable[..., PostgreSQLDriver], **settings: Any) -> AsyncIterator[Ommi]:
    async with Ommi(make_driver(**settings), allow_implicit_model_setup=False) as db:
        await db.remove_models(models)
        await db.use_models(models)
        try:
            yield db
        finally:
            await db.remove_models(models)


async def _hold(db: Ommi, label: str, locked: asyncio.Event, release: asyncio.Event) -> None:
    """Lock the job ``label`` (``FOR UPDATE``) until ``release`` is set."""
    async with db.transaction() as t:
        await t.find(LockJob.label == label).for_update().all.to_list()
        locked.set()
        await release.wait()


def test_the_locking_clause_of_each_form() -> None:
    """``FOR UPDATE`` after the window; ``OF "t0"`` with a related condition; ``SKIP LOCKED`` / ``NOWAIT``."""
    from ommi_postgresql._dialect import PostgreSQLCompiler, PostgreSQLDialect

    compiler = PostgreSQLCompiler(PostgreSQLDialect("s"))
    db = Ommi(PostgreSQLDriver.connect("postgresql://nobody@127.0.0.1:1/none"))
    plain = db.find(LockJob.amount == 0).sort(LockJob.id).limit(1).for_update(skip_locked=True).query()
    sql = compiler.select(plain).sql
    assert sql.endswith("LIMIT %s FOR UPDATE SKIP LOCKED"), sql
    joined = db.find(LockJob, LockNote.text == "x").for_update(nowait=True).query()
    assert compiler.select(joined).sql.endswith(' FOR UPDATE OF "t0" NOWAIT')
    assert "FOR UPDATE" not in compiler.select(db.find(LockJob).query()).sql  # the cache keeps them apart


async def test_skip_locked_answers_while_the_holder_is_open(make_driver: Callable[..., PostgreSQLDriver]) -> None:
    """Row-level locks: B's ``skip_locked`` returns the other rows at once, A still open."""
    async with opened(make_driver) as db:
        await db.add(LockJob("x"), LockJob("y"), LockJob("z")).or_raise()
        locked, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(db, "x", locked, release))
        await locked.wait()
        try:
            async with db.transaction() as t:
                rows = await t.find(LockJob).sort(LockJob.label).for_update(skip_locked=True).all.to_list()
                assert [r.label for r in rows] == ["y", "z"]
                assert not holder.done()
                # nowait: the locked row fails at once, naming what happened.
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="nowait"):
                async with db.transaction() as t:
                    await t.find(LockJob.label == "x").for_update(nowait=True).all.to_list()
            assert time.monotonic() - started < 2
        finally:
            release.set()
            await holder


async def test_a_related_condition_locks_only_the_target_rows(make_driver: Callable[..., PostgreSQLDriver]) -> None:
    """``FOR UPDATE OF`` the target: the related model's rows a condition read stay writable by others."""
    async with opened(make_driver) as db:
        job = await db.add(LockJob("x")).or_raise()
        assert job.id is not None
        await db.add(LockNote(job.id, "note")).or_raise()
        async with db.transaction() as t:
            jobs = await t.find(LockJob, LockNote.text == "note").for_update().all.to_list()
            assert [j.label for j in jobs] == ["x"]
            async with db.transaction(lock_timeout=0.5) as other:
                assert await other.find(LockNote.text == "note").update(text="changed").or_raise() == 1
            with pytest.raises(TimeoutError, match="lock_timeout"):
                async with db.transaction(lock_timeout=0.2) as other:
                    await other.find(LockJob.label == "x").update(amount=1).or_raise()


async def test_cancelling_a_waiting_for_update_keeps_the_transaction_rollbackable(
    make_driver: Callable[..., PostgreSQLDriver],
) -> None:
    """B is cancelled while its ``FOR UPDATE`` waits: B rolls back cleanly; A keeps its lock and commits."""
    async with opened(make_driver) as db:
        await db.add(LockJob("x")).or_raise()
        locked, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(db, "x", locked, release))
        await locked.wait()
        waiting = asyncio.Event()
        outcome: dict[str, Any] = {}

        async def waiter() -> None:
            async with db.transaction() as t:
                try:
                    waiting.set()
                    await t.find(LockJob.label == "x").for_update().all.to_list()
                except asyncio.CancelledError:
                    await t.rollback()
                    outcome["rolled_back"] = True
                    raise

        task = asyncio.create_task(waiter())
        await waiting.wait()
        await asyncio.sleep(0.2)  # B is waiting for the row on the server now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert outcome == {"rolled_back": True}
        with pytest.raises(TimeoutError, match="lock_timeout"):  # A still holds the row
            async with db.transaction(lock_timeout=0.2) as t:
                await t.find(LockJob.label == "x").for_update().all.to_list()
        release.set()
        await holder
        async with db.transaction(lock_timeout=1) as t:
            assert len(await t.find(LockJob.label == "x").for_update(nowait=True).all.to_list()) == 1


async def test_statement_timeout_alone_bounds_a_statement_blocked_on_a_lock(
    make_driver: Callable[..., PostgreSQLDriver],
) -> None:
    """Only ``statement_timeout`` set: the blocked update fails after it, naming ``statement_timeout``."""
    async with opened(make_driver) as db:
        await db.add(LockJob("x")).or_raise()
        locked, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(db, "x", locked, release))
        await locked.wait()
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"statement_timeout=0\.3s exceeded"):
                async with db.transaction(statement_timeout=0.3) as t:
                    await t.find(LockJob.label == "x").update(amount=9).or_raise()
            assert 0.25 <= time.monotonic() - started < 5
        finally:
            release.set()
            await holder
        assert (await db.find(LockJob.label == "x").one.or_raise()).amount == 0


async def test_url_settings_and_per_transaction_overrides(postgresql_url: str, postgresql_schema: str) -> None:
    """``?lock_timeout=0.2&statement_timeout=5`` bounds every transaction; a transaction's own override it."""
    url = postgresql_url + ("&" if "?" in postgresql_url else "?") + "lock_timeout=0.2&statement_timeout=5"
    driver = PostgreSQLDriver.connect(url, schema=postgresql_schema)
    assert (driver.settings.lock_timeout, driver.settings.statement_timeout) == (0.2, 5.0)
    async with opened(lambda: driver) as db:
        await db.add(LockJob("x")).or_raise()
        locked, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(db, "x", locked, release))
        await locked.wait()
        try:
            with pytest.raises(TimeoutError, match=r"lock_timeout=0\.2s exceeded"):
                async with db.transaction() as t:  # the database's setting
                    await t.find(LockJob.label == "x").update(amount=1).or_raise()
            with pytest.raises(TimeoutError, match=r"statement_timeout=0\.3s exceeded"):
                async with db.transaction(lock_timeout=10, statement_timeout=0.3) as t:  # its own
                    await t.find(LockJob.label == "x").update(amount=2).or_raise()
            with pytest.raises(TimeoutError, match=r"lock_timeout=0\.4s exceeded"):
                async with db.transaction(lock_timeout=0.4) as t:  # statement_timeout stays the setting's 5 s
                    await t.find(LockJob.label == "x").update(amount=3).or_raise()
        finally:
            release.set()
            await holder
        assert (await db.find(LockJob.label == "x").one.or_raise()).amount == 0


async def test_set_local_never_reaches_the_next_user_of_the_connection(
    make_driver: Callable[..., PostgreSQLDriver],
) -> None:
    """After a transaction with its own timeouts (committed, rolled back, timed out) the connection has its settings."""
    async with opened(make_driver, pool_min_size=1, pool_max_size=1, lock_timeout=7) as db:
        driver = db.driver
        assert isinstance(driver, PostgreSQLDriver)

        async def shown() -> tuple[str, str]:
            conn = await driver.pool.acquire()
            try:
                cursor = await conn.execute(
                    "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
                )
                row = await cursor.fetchone()
                assert row is not None
                return row[0], row[1]
            finally:
                await driver._release(conn)

        before = await shown()
        assert before[0] == "7s"
        async with db.transaction(lock_timeout=0.1, statement_timeout=0.2):
            pass
        assert await shown() == before
        async with db.transaction(lock_timeout=0.1) as t:
            await t.rollback()
        assert await shown() == before

        async def slow() -> None:
            async with db.transaction(statement_timeout=0.05) as t:
                conn = t._tx._conn  # type: ignore[union-attr]  # a slow statement the API cannot make
                with t._tx._map():  # type: ignore[union-attr]
                    await conn.execute("SELECT pg_sleep(2)")

        with pytest.raises(TimeoutError, match="statement_timeout"):
            await slow()
        assert await shown() == before
        await db.add(LockJob("after")).or_raise()


async def test_a_cancel_request_is_not_a_timeout(
    make_driver: Callable[..., PostgreSQLDriver], admin: psycopg.Connection[Any]
) -> None:
    """57014 from ``pg_cancel_backend`` is an OperationalError saying so, not a TimeoutError."""
    async with opened(make_driver) as db:
        await db.add(LockJob("x")).or_raise()
        locked, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(db, "x", locked, release))
        await locked.wait()
        try:

            async def blocked() -> None:
                async with db.transaction() as t:
                    await t.find(LockJob.label == "x").update(amount=1).or_raise()

            task = asyncio.create_task(blocked())
            for _ in range(100):
                await asyncio.sleep(0.05)
                rows = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE%%LockJob%%'"
                ).fetchall()
                if rows:
                    break
            assert rows, "the update never waited for the lock"
            admin.execute("SELECT pg_cancel_backend(%s)", [rows[0][0]])
            with pytest.raises(OperationalError, match="on request") as info:
                await task
            assert not isinstance(info.value, TimeoutError)
        finally:
            release.set()
            await holder


async def test_migrations_run_without_the_statement_timeout(make_driver: Callable[..., PostgreSQLDriver]) -> None:
    """The migration lock keeps its own lock_timeout and switches a configured statement_timeout off."""
    driver = make_driver(statement_timeout=0.05)
    async with Ommi(driver, allow_implicit_model_setup=False):
        migration = await driver.begin_migration(lock_timeout=0.5)
        try:
            with migration._map():
                await migration._conn.execute("SELECT pg_sleep(0.2)")  # type: ignore[union-attr]
                cursor = await migration._conn.execute("SELECT current_setting('lock_timeout')")  # type: ignore[union-attr]
                assert (await cursor.fetchone()) == ("500ms",)
        finally:
            await migration.rollback()


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "abc", str(MAX_TIMEOUT * 2)])
@pytest.mark.parametrize("name", ["lock_timeout", "statement_timeout"])
def test_bad_timeout_settings_are_refused(name: str, bad: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        PostgreSQLDriver.connect(f"postgresql://u@127.0.0.1/db?{name}={bad}")


def test_statement_timeout_none_is_the_servers() -> None:
    assert PostgreSQLDriver.connect("postgresql://u@127.0.0.1/db").settings.statement_timeout is None
    assert (
        PostgreSQLDriver.connect("postgresql://u@127.0.0.1/db?statement_timeout=none").settings.statement_timeout
        is None
    )
    with pytest.raises(ConfigurationError, match="lock_timeout"):
        PostgreSQLDriver.connect("postgresql://u@127.0.0.1/db", lock_timeout=True)


async def test_for_update_outside_a_transaction_sends_nothing(make_driver: Callable[..., PostgreSQLDriver]) -> None:
    """Refused before any I/O: the driver never even opens."""
    driver = make_driver()
    db = Ommi(driver)
    with pytest.raises(TransactionError, match="transaction"):
        await db.find(LockJob).for_update().all.or_raise()
    assert not driver.pool.is_open
    await db.close()
