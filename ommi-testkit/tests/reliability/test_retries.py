"""Retried transactions: concurrent moves under ``serializable`` through ``with_transaction``, cancelled or not.

MongoDB is left out: the wire-protocol test server is standalone, so it has
no transactions at all (``with_transaction`` raises UnsupportedFeature there,
which the conformance suite checks).
"""

from __future__ import annotations

from typing import Any

import pytest
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.workloads import hygiene, retry_workload


async def _run(backend: Any, profile: Profile, *, cancel: bool) -> tuple[Any, list[str], list[str]]:
    settings: dict[str, Any] = {}
    if backend.name == "postgresql":
        settings["lock_timeout"] = 30
    elif backend.name == "sqlite":
        # Three writers on one file, a short busy timeout: lock conflicts surface as BusyError and are rerun.
        settings["busy_timeout"] = 0.05
    async with hygiene() as reports:
        async with backend.contending(**settings) as databases:
            figures, problems = await retry_workload(
                databases,
                backend=backend.name,
                profile=profile.name,
                tasks=profile.retry_moves,
                cancel=cancel,
                # Spread the cancellations over the time the moves take (PostgreSQL's reruns take longest).
                max_delay=2.0 if backend.name == "postgresql" else 0.3,
            )
        del databases
    record(figures)
    return figures, problems, reports


@pytest.mark.parametrize("backend", ["reference", "sqlite", "postgresql"], indirect=True)
async def test_retries_keep_concurrent_moves_consistent(backend: Any, profile: Profile) -> None:
    """Every move is applied exactly once, balances match the journal, and no pair of accounts goes below zero."""
    figures, problems, reports = await _run(backend, profile, cancel=False)
    assert problems == [], problems[:20]
    assert reports == [], reports[:20]
    assert figures.acknowledged > 0 and figures.lost == 0 and figures.duplicated == 0, figures


@pytest.mark.parametrize("backend", ["reference", "sqlite", "postgresql"], indirect=True)
async def test_retries_cancelled_at_random_moments_leave_no_partial_move(backend: Any, profile: Profile) -> None:
    """Moves cancelled anywhere (inside ``fn``, a savepoint, the backoff, the commit): stored whole or not at all."""
    figures, problems, reports = await _run(backend, profile, cancel=True)
    assert problems == [], problems[:20]
    assert reports == [], reports[:20]
    assert figures.cancelled > 0, figures
    assert figures.lost == 0 and figures.duplicated == 0 and figures.partial == 0, figures
