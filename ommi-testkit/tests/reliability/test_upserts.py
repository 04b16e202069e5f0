"""Concurrent upserts of the same keys: one row per key, holding a written value, nothing lost, no error."""

from __future__ import annotations

from typing import Any

import pytest
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.workloads import upsert_workload


@pytest.mark.parametrize("backend", ["reference", "sqlite", "postgresql", "mongodb"], indirect=True)
async def test_upsert_concurrent_same_keys(backend: Any, profile: Profile) -> None:
    """``profile.upsert_tasks`` tasks upsert 8 shared keys (SQLite: through three ``Ommi``, three writers)."""
    async with backend.contending() as databases:
        transactions = databases[0].driver.capabilities.transactions
        figures, problems = await upsert_workload(
            databases,
            backend=backend.name,
            profile=profile.name,
            tasks=profile.upsert_tasks,
            rounds=profile.upsert_rounds,
            transactions=transactions,
        )
    if not transactions:
        figures.notes.append(f"capability 'transactions' is absent on {backend.name}: no transactions ran")
    record(figures)
    assert problems == [], problems[:20]
    assert figures.acknowledged == profile.upsert_tasks * profile.upsert_rounds * 2 or figures.acknowledged > 0
    assert figures.lost == 0 and figures.duplicated == 0 and figures.wrong_keys == 0, figures
    assert figures.rows_verified == 8, figures
