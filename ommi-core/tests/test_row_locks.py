"""Core's side of row locks and transaction timeouts: the query flag, the generic SQL, the checks before I/O.

Drivers lacking a capability are the reference driver with the capability
turned off (a real driver; nothing is mocked): core must refuse before it
asks the driver for anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from ommi import Ommi, ommi_model
from ommi.drivers import Capabilities, TransactionOptions
from ommi.errors import ConfigurationError, QueryError, UnsupportedFeature
from ommi.expressions import RowLock
from ommi.models.collections import ModelCollection
from ommi.sql import Dialect, SQLCompiler
from ommi_testkit import ReferenceDriver

models = ModelCollection("core_row_lock_tests")


@ommi_model(collection=models)
@dataclass
class Ticket:
    title: str
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Stamp:
    ticket_id: int
    id: int | None = None


class _Counting(ReferenceDriver):
    """The reference driver, counting transactions begun (to prove a refusal came first)."""

    begun = 0

    async def begin(self, options: TransactionOptions | None = None):  # type: ignore[no-untyped-def]
        type(self).begun += 1
        return await super().begin(options)


def _without(capability: str) -> ReferenceDriver:
    driver = _Counting()
    driver.capabilities = dataclasses.replace(driver.capabilities, **{capability: False})
    return driver


def test_for_update_sets_the_query_lock_and_keeps_it_through_refinements() -> None:
    db = Ommi(ReferenceDriver())
    query = db.find(Ticket).for_update(skip_locked=True).sort(Ticket.title).limit(2).query()
    assert query.lock == RowLock(skip_locked=True)
    assert db.find(Ticket).query().lock is None
    assert db.find(Ticket).for_update(nowait=True).query().lock == RowLock(nowait=True)


def test_the_generic_dialect_writes_the_standard_clause() -> None:
    compiler = SQLCompiler(Dialect())
    db = Ommi(ReferenceDriver())
    assert compiler.select(db.find(Ticket).for_update().query()).sql.endswith(" FOR UPDATE")
    assert compiler.select(db.find(Ticket).limit(1).for_update(skip_locked=True).query()).sql.endswith(
        " LIMIT ? FOR UPDATE SKIP LOCKED"
    )
    assert compiler.select(db.find(Ticket).for_update(nowait=True).query()).sql.endswith(" FOR UPDATE NOWAIT")
    # Same shape otherwise: the statement cache must still tell them apart.
    assert "FOR UPDATE" not in compiler.select(db.find(Ticket).limit(1).query()).sql


async def test_a_driver_without_row_locks_refuses_for_update_before_any_io() -> None:
    driver = _without("row_locks")
    _Counting.begun = 0
    async with Ommi(driver) as db:
        await db.use_models(models)
        async with db.transaction() as t:
            with pytest.raises(UnsupportedFeature, match="row_locks"):
                await t.find(Ticket).for_update().all.or_raise()
        with pytest.raises(UnsupportedFeature, match="row_locks"):  # the capability is named first, outside too
            await db.find(Ticket).for_update().one.or_raise()


async def test_a_driver_without_timeouts_refuses_them_before_beginning() -> None:
    driver = _without("timeouts")
    _Counting.begun = 0
    async with Ommi(driver) as db:
        for name in ("lock_timeout", "statement_timeout"):
            with pytest.raises(UnsupportedFeature, match=rf"capability 'timeouts'.*|{name}") as info:
                db.transaction(**{name: 1.0})  # type: ignore[arg-type]
            assert "'timeouts'" in str(info.value) and name in str(info.value)
        assert _Counting.begun == 0
        async with db.transaction():  # no timeout: a plain transaction, as before
            pass
        assert _Counting.begun == 1


class _StatementOnly(_Counting):
    """A driver honouring one timeout kind: ``timeouts`` (both) absent, ``statement_timeout`` named as honoured."""

    @property
    def transaction_timeouts(self) -> frozenset[str]:
        return frozenset({"statement_timeout"})

    def absent_reason(self, capability: str) -> str | None:
        return "no lock waits here; use statement_timeout" if capability == "timeouts" else None


async def test_a_driver_honouring_one_timeout_kind_gets_it_and_refuses_the_other_before_beginning() -> None:
    driver = _StatementOnly()
    driver.capabilities = dataclasses.replace(driver.capabilities, timeouts=False)
    assert _without("timeouts").transaction_timeouts == frozenset()
    assert ReferenceDriver().transaction_timeouts == {"statement_timeout", "lock_timeout"}
    _StatementOnly.begun = 0
    async with Ommi(driver) as db:
        for given in ({"lock_timeout": 1.0}, {"lock_timeout": 1.0, "statement_timeout": 1.0}):
            with pytest.raises(UnsupportedFeature, match=r"lock_timeout=.*'timeouts'.*use statement_timeout"):
                db.transaction(**given)  # type: ignore[arg-type]
        assert _StatementOnly.begun == 0
        async with db.transaction(statement_timeout=2) as t:
            assert t._options.statement_timeout == 2.0
        assert _StatementOnly.begun == 1


def test_timeouts_reach_the_options_as_floats() -> None:
    db = Ommi(ReferenceDriver())
    assert db.transaction(lock_timeout=2, statement_timeout=1)._options == TransactionOptions(
        statement_timeout=1.0, lock_timeout=2.0
    )
    assert db.transaction()._options.is_default()
    with pytest.raises(ConfigurationError, match="lock_timeout"):
        db.transaction(lock_timeout=-0.5)
    with pytest.raises(ConfigurationError, match="statement_timeout must be a finite number"):
        db.transaction(statement_timeout=10**400)  # beyond any float: refused, not an OverflowError


def test_capabilities_are_absent_by_default() -> None:
    assert Capabilities().row_locks is False and Capabilities().timeouts is False
    assert "row_locks" in Capabilities().absent() and "timeouts" in Capabilities().absent()


def test_skip_locked_and_nowait_exclude_each_other() -> None:
    db = Ommi(ReferenceDriver())
    with pytest.raises(QueryError, match="exclude"):
        db.find(Ticket).for_update(skip_locked=True, nowait=True)
