"""Atomic increments: many tasks doing ``balance + 1`` at once through update expressions, none lost."""

from __future__ import annotations

from typing import Any

import pytest
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.increments import increment_workload


@pytest.mark.parametrize("backend", ["reference", "sqlite", "postgresql", "mongodb"], indirect=True)
async def test_increments_concurrent_updates_lose_nothing(backend: Any, profile: Profile) -> None:
    """``profile.increment_tasks`` tasks update five accounts at once; every balance is start + acknowledged.

    PostgreSQL runs on a pool of 10 connections; SQLite on one WAL file through
    three ``Ommi`` (three writers) with a busy timeout of 30 s.
    """
    async with backend.contending() as databases:
        figures, problems = await increment_workload(
            databases,
            backend=backend.name,
            profile=profile.name,
            tasks=profile.increment_tasks,
            rounds=profile.increment_rounds,
        )
    record(figures)
    assert problems == [], problems[:20]
    assert figures.acknowledged == profile.increment_tasks * profile.increment_rounds, figures
    assert figures.lost == 0 and figures.duplicated == 0, figures
