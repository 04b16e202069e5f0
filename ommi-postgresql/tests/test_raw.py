"""``db.raw`` on PostgreSQL under attack: cancelled mid-statement, inside and outside a transaction.

The conformance suite (``ProjectionTests``) checks the portable behaviour;
these tests need a statement that runs long (``pg_sleep``), which only the
server's own SQL can say.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import pytest_asyncio
from ommi import Ommi
from ommi.errors import OmmiError, TransactionError
from ommi_postgresql import PostgreSQLDriver


@pytest_asyncio.fixture
async def db(make_driver: Callable[..., PostgreSQLDriver]) -> AsyncIterator[Ommi]:
    async with Ommi(make_driver(pool_max_size=2), allow_implicit_model_setup=False) as database:
        yield database


async def _cancel_after(seconds: float, coroutine: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.ensure_future(coroutine)
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_raw_cancelled_outside_a_transaction_gives_its_connection_back(db: Ommi) -> None:
    """A cancelled long statement does not keep a pooled connection busy: the next raw statements run at once."""
    for _ in range(3):  # more than the pool's two connections
        await _cancel_after(0.2, db.raw("SELECT pg_sleep(30)").or_raise())
    assert await asyncio.wait_for(db.raw("SELECT %s::int + 1", [41]).or_raise(), 10) == [(42,)]


async def test_raw_cancelled_inside_a_transaction_spoils_only_that_transaction(db: Ommi) -> None:
    """Cancelled mid-statement inside ``t``: ``t`` refuses further statements and rolls back; the database goes on."""
    async with db.transaction() as t:
        await t.raw("CREATE TEMP TABLE raw_cancelled (x int)").or_raise()
        await _cancel_after(0.2, t.raw("SELECT pg_sleep(30)").or_raise())
        after = await t.raw("SELECT 1")
        assert isinstance(after.exception, TransactionError), after
        await t.rollback()
    assert await asyncio.wait_for(db.raw("SELECT 1").or_raise(), 10) == [(1,)]


async def test_raw_failed_statement_in_a_savepoint_leaves_the_transaction_usable(db: Ommi) -> None:
    """On PostgreSQL a failed statement aborts the transaction; rolling back its savepoint makes it usable again."""
    async with db.transaction() as t:
        await t.raw("CREATE TEMP TABLE raw_kept (x int)").or_raise()
        await t.raw("INSERT INTO raw_kept VALUES (%s), (%s)", [1, 2]).or_raise()
        with pytest.raises(OmmiError):
            async with t.transaction() as inner:
                await inner.raw("SELEC broken").or_raise()
        assert await t.raw("SELECT count(*) FROM raw_kept").or_raise() == [(2,)]
        await t.rollback()


async def test_raw_percent_signs_and_named_parameters(db: Ommi) -> None:
    """Without parameters the text goes as is; with them ``%%`` is a percent sign and ``%(name)s`` binds by name."""
    assert await db.raw("SELECT '100%'").or_raise() == [("100%",)]
    assert await db.raw("SELECT '100%%' || %(unit)s", {"unit": "!"}).or_raise() == [("100%!",)]
    wrong = await db.raw("SELECT %(missing)s", {"other": 1})
    assert isinstance(wrong.exception, OmmiError), wrong
