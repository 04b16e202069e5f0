"""Faults: connections killed under a PostgreSQL workload, and a SQLite writer killed with SIGKILL.

Nothing acknowledged may be lost or doubled, no transfer may be half-applied,
and the database must work normally right afterwards.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from ommi import Ommi
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.crash import crash_rounds
from ommi_testkit.reliability.faults import postgresql_probe, postgresql_terminator
from ommi_testkit.reliability.workloads import fault_workload


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_faults_terminated_backends_lose_no_acknowledged_write(backend: Any, profile: Profile) -> None:
    """Writers and transfer transactions run while pg_terminate_backend kills the pool's connections.

    Afterwards every acknowledged insert and transfer is stored exactly once,
    the balances match the transfer journal (no transaction half-applied),
    the pool answers at once and lends nothing out.
    """
    name = f"ommi_reliability_faults_{uuid.uuid4().hex[:10]}"
    driver = backend.make(application_name=name, pool_max_size=10)
    inject, close_injector = postgresql_terminator(backend.url, name)
    try:
        async with Ommi(driver) as db:
            figures, problems = await fault_workload(
                db, inject, backend=backend.name, profile=profile.name, seconds=profile.fault_seconds
            )
            reading = await postgresql_probe(driver)()
            stats = driver.pool.stats()
            figures.notes.append(f"pool after the workload: {stats}")
    finally:
        await close_injector()
    record(figures)
    assert problems == [], problems
    assert reading == {"lent": 0, "waiting": 0}, (reading, stats)
    assert figures.faults > 0 and figures.expected_errors > 0, figures
    assert figures.lost == 0 and figures.duplicated == 0, figures


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_faults_sigkill_mid_transaction_keeps_every_committed_row(backend: Any, profile: Profile) -> None:
    """A child process writing groups (transactions and multi-row adds) is killed with SIGKILL, repeatedly.

    After each kill the file opens cleanly, every acknowledged group is there
    in full, and no group is there in part.
    """
    figures, problems = crash_rounds(
        backend.url, backend.make, backend=backend.name, profile=profile.name, rounds=profile.kill_rounds
    )
    record(figures)
    assert problems == [], problems
    assert figures.faults == profile.kill_rounds, figures
    assert figures.lost == 0 and figures.duplicated == 0, figures
    assert figures.rows_verified > 0, figures
