"""``db.upsert`` on a driver without the ``upsert`` capability, and the core checks made before any I/O."""

# mypy: disable-error-code="arg-type"

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ommi import Ommi, QueryError, UnsupportedFeature
from ommi.drivers import Capabilities
from ommi.testing import record_queries
from ommi_testkit.reference import ReferenceDriver
from ommi_testkit.suites.models import Person, testkit_models
from ommi_testkit.suites.models_upsert import UpsAccount, ups_models


class _OlderDriver(ReferenceDriver):
    """A driver written before upsert: the capability keeps its default (absent)."""

    capabilities = dataclasses.replace(ReferenceDriver.capabilities, upsert=False)

    def absent_reason(self, capability: str) -> str | None:
        return "written before upserts existed" if capability == "upsert" else None


async def test_upsert_without_the_capability_is_refused_before_any_io() -> None:
    """``UnsupportedFeature`` names the capability and the driver's reason; nothing is sent or stored."""
    assert Capabilities().upsert is False
    async with Ommi(_OlderDriver()) as db:
        await db.use_models(ups_models)
        person = Person("a", 1)
        with record_queries() as queries, pytest.raises(UnsupportedFeature, match=r"'upsert'.*written before"):
            await db.upsert(person).or_raise()
        assert len(queries) == 0
        assert person.id is None
        await db.use_models(testkit_models)
        assert await db.find(Person).count.or_raise() == 0


async def test_operations_upsert_default_refuses() -> None:
    """A driver declaring the capability without implementing the method still fails clearly, not silently."""
    from ommi.drivers.base import Operations

    class Bare(Operations):  # only the abstract methods, no upsert
        async def insert(self, schema: Any, rows: Any) -> Any: ...
        def fetch(self, query: Any, batch_size: int) -> Any: ...
        async def count(self, query: Any) -> int:
            return 0

        async def delete(self, query: Any) -> int:
            return 0

        async def update(self, query: Any, values: Any) -> int:
            return 0

    with pytest.raises(UnsupportedFeature, match="upsert"):
        await Bare().upsert(None, [], [])  # type: ignore[arg-type]


async def test_upsert_checks_happen_before_any_query() -> None:
    """A bad ``on`` or duplicates in the call send nothing to the driver."""
    async with Ommi(ReferenceDriver()) as db:
        await db.use_models(ups_models)
        with record_queries() as queries:
            with pytest.raises(QueryError):
                await db.upsert(UpsAccount("a@x"), on=(UpsAccount.note,)).or_raise()
            with pytest.raises(QueryError):
                await db.upsert(UpsAccount("a@x"), UpsAccount("a@x"), on=(UpsAccount.email,)).or_raise()
        assert len(queries) == 0
