"""Issue 15's operations under attack on the real server: the connection killed, ``close()`` racing them.

Update expressions, upserts, savepoints, ``with_transaction`` and ``for_update``
each get the server ending their session mid-transaction (``pg_terminate_backend``)
and ``db.close()`` arriving while many of them run. The invariant every time:
what was acknowledged is stored exactly once, what raised left nothing half-done.
Cancellation at each await and tasks sharing a transaction are in the conformance
suites (``UpdateExpressionTests``, ``UpsertTests``, ``SavepointTests``,
``RetryTests``, ``RowLockTests``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
import pytest
import pytest_asyncio
from ommi import Key, ModelCollection, Ommi, ommi_model
from ommi.database import Transaction
from ommi.errors import OmmiError
from ommi_postgresql import PostgreSQLDriver
from ommi_postgresql.driver import PostgreSQLTransaction

models = ModelCollection("ommi_postgresql_production_writes_attacks")


@ommi_model(collection=models)
@dataclass
class Counter:
    name: Annotated[str, Key]
    value: int


@pytest_asyncio.fixture
async def db(make_driver: Callable[..., PostgreSQLDriver]) -> AsyncIterator[Ommi]:
    async with Ommi(make_driver(pool_max_size=8, lock_timeout=20), allow_implicit_model_setup=False) as database:
        await database.remove_models(models)
        await database.use_models(models)
        try:
            yield database
        finally:
            if not database._driver_open:
                await database.open()
            await database.remove_models(models)


def _kill(admin: psycopg.Connection[Any], t: Transaction) -> None:
    """End the session of ``t``'s connection on the server (the transaction's driver side is PostgreSQL's)."""
    tx = getattr(t, "_root", t)._tx  # a savepoint runs on its transaction's connection
    assert isinstance(tx, PostgreSQLTransaction) and tx._conn is not None
    admin.execute("SELECT pg_terminate_backend(%s)", [tx._conn.info.backend_pid])


async def _stored(db: Ommi) -> dict[str, int]:
    return {c.name: c.value for c in await db.find(Counter).all.to_list()}


@pytest.mark.parametrize("operation", ["update_expression", "upsert", "savepoint", "for_update"])
async def test_connection_killed_inside_a_transaction_keeps_nothing_of_it(
    db: Ommi, admin: psycopg.Connection[Any], operation: str
) -> None:
    """The server ends the session after the operation ran in the transaction: an OmmiError, nothing of it stored."""
    await db.add(Counter("a", 1)).or_raise()
    with pytest.raises(OmmiError):  # noqa: PT012 - the block is what raises
        async with db.transaction() as t:
            if operation == "update_expression":
                assert await t.find(Counter.name == "a").update(value=Counter.value + 10).or_raise() == 1
            elif operation == "upsert":
                await t.upsert(Counter("a", 50), Counter("b", 2)).or_raise()
            elif operation == "savepoint":
                async with t.transaction() as inner:
                    await inner.add(Counter("c", 3)).or_raise()
            else:
                assert [c.name for c in await t.find(Counter.name == "a").for_update().all.to_list()] == ["a"]
                await t.find(Counter.name == "a").update(value=Counter.value * 7).or_raise()
            _kill(admin, t)
            await t.find(Counter).count.or_raise()
    assert await _stored(db) == {"a": 1}
    # The pool replaced the dead connection: the next operations work.
    assert await db.find(Counter.name == "a").update(value=Counter.value + 1).or_raise() == 1
    assert await _stored(db) == {"a": 2}


async def test_connection_killed_while_for_update_waits_leaves_the_holder_locked_and_working(
    db: Ommi, admin: psycopg.Connection[Any]
) -> None:
    """B waits on A's row lock; B's session is killed: B fails, A still holds the row and commits its write."""
    await db.add(Counter("a", 1)).or_raise()
    locked, release = asyncio.Event(), asyncio.Event()
    waiting: list[Transaction] = []

    async def holder() -> None:
        async with db.transaction() as t:
            await t.find(Counter.name == "a").for_update().all.to_list()
            locked.set()
            await release.wait()
            await t.find(Counter.name == "a").update(value=Counter.value + 100).or_raise()

    async def waiter() -> None:
        async with db.transaction() as t:
            waiting.append(t)
            await t.find(Counter.name == "a").for_update().all.to_list()
            await t.find(Counter.name == "a").update(value=Counter.value + 1000).or_raise()

    holding = asyncio.create_task(holder())
    await locked.wait()
    blocked = asyncio.create_task(waiter())
    for _ in range(100):
        await asyncio.sleep(0.02)
        if waiting:
            break
    await asyncio.sleep(0.2)  # the waiter's SELECT ... FOR UPDATE is now waiting for the lock
    assert not blocked.done()
    _kill(admin, waiting[0])
    with pytest.raises(OmmiError):
        await blocked
    release.set()
    await holding
    assert await _stored(db) == {"a": 101}


@pytest.mark.parametrize("operation", ["update_expression", "upsert", "with_transaction"])
async def test_close_racing_many_operations_keeps_exactly_what_was_acknowledged(db: Ommi, operation: str) -> None:
    """``close()`` arrives while 40 operations run: each one acknowledged is stored once, the others left nothing.

    Increments: the counter equals the number acknowledged (an increment that
    raised may still have committed only if the error says the connection
    broke at commit, which an autocommit UPDATE reports as ConnectionError:
    those are counted as "maybe"). Upserts and with_transaction write one row
    each: every acknowledged row is there, and nothing else but the "maybe" ones.
    """
    await db.add(Counter("total", 0)).or_raise()
    acknowledged: list[str] = []
    maybe: list[str] = []

    async def one(number: int) -> None:
        name = f"row{number}"
        try:
            if operation == "update_expression":
                await db.find(Counter.name == "total").update(value=Counter.value + 1).or_raise()
            elif operation == "upsert":
                await db.upsert(Counter(name, number)).or_raise()
            else:

                async def fn(t: Transaction) -> None:
                    await t.upsert(Counter(name, number)).or_raise()
                    await t.find(Counter.name == "total").update(value=Counter.value + 1).or_raise()

                await db.with_transaction(fn, backoff=0)
        except OmmiError as exc:
            if "closed" not in str(exc):
                maybe.append(name)
            return
        acknowledged.append(name)

    tasks = [asyncio.create_task(one(n)) for n in range(40)]
    await asyncio.sleep(0.01)
    await db.close()
    await asyncio.gather(*tasks)
    assert len(acknowledged) < len(tasks), "close() came after every operation: the race was not exercised"
    await db.open()
    stored = await _stored(db)
    total = stored.pop("total")
    if operation == "update_expression":
        assert len(acknowledged) <= total <= len(acknowledged) + len(maybe)
    else:
        assert set(acknowledged) <= set(stored) <= set(acknowledged) | set(maybe)
        assert all(stored[name] == int(name[3:]) for name in stored)
        if operation == "with_transaction":
            # Both writes of fn or neither: the total counts exactly the rows stored.
            assert total == len(stored)
