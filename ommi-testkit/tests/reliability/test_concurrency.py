"""Concurrency: 200 tasks at once on one Ommi, mixed reads, writes and transactions, and no error at all."""

from __future__ import annotations

from typing import Any

import pytest
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.workloads import concurrency_workload


@pytest.mark.parametrize("backend", ["reference", "sqlite", "postgresql", "mongodb"], indirect=True)
async def test_concurrency_many_tasks_run_without_errors(backend: Any, profile: Profile) -> None:
    """``profile.concurrent_tasks`` tasks share the database; none fails and nothing is lost.

    PostgreSQL runs on a pool of 10 connections. SQLite runs on one WAL file
    through three ``Ommi`` (three writer connections), with a busy timeout of
    30 s so waiting for another connection's write lock is absorbed, never
    surfaced as "database is locked". Transactions run where the driver has them.
    """
    async with backend.contending() as databases:
        transactions = databases[0].driver.capabilities.transactions
        figures, problems = await concurrency_workload(
            databases,
            backend=backend.name,
            profile=profile.name,
            tasks=profile.concurrent_tasks,
            rounds=profile.concurrency_rounds,
            transactions=transactions,
        )
    if not transactions:
        figures.notes.append(f"capability 'transactions' is absent on {backend.name}: no transactions ran")
    record(figures)
    assert problems == [], problems[:20]
    assert figures.tasks == profile.concurrent_tasks
    assert figures.acknowledged > 0 and figures.lost == 0 and figures.duplicated == 0, figures
