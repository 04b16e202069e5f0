"""Cancellation: thousands of tasks cancelled at random points leak nothing and write nothing in part."""

from __future__ import annotations

from typing import Any

import pytest
from ommi import Ommi
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.workloads import cancellation_workload, hygiene


@pytest.mark.parametrize("backend", ["reference", "sqlite", "postgresql", "mongodb"], indirect=True)
async def test_cancellation_random_cancels_leak_nothing(backend: Any, profile: Profile) -> None:
    """Tasks writing groups, iterating ``.all`` and running transactions are cancelled at random moments.

    Afterwards: the driver's resource probe reads zero (no connection lent
    out), as many connections as the driver lends can be used at once, no
    group or transfer is stored in part, and no ``ResourceWarning``,
    "never awaited" warning or unretrieved task exception was reported.
    """
    driver, probe = backend.instrumented()
    async with hygiene() as reports:
        async with Ommi(driver) as db:
            figures, problems = await cancellation_workload(
                db,
                backend=backend.name,
                profile=profile.name,
                tasks=profile.cancelled_tasks,
                connections=backend.connections,
                probe=probe,
                transactions=driver.capabilities.transactions,
            )
        del db, driver
    if probe is None:
        figures.notes.append(f"{backend.name} exposes no connection statistics: the capacity check judged leaks")
    known = backend.name == "mongodb" and reports and all("unclosed <socket.socket" in r for r in reports)
    if known:
        figures.notes.append(f"known bug (xfail): {len(reports)} sockets of cancelled operations left unclosed")
    record(figures)
    assert problems == [], problems[:20]
    if known:
        # Known ommi-mongodb / PyMongo bug, guarded by a strict xfail in test_regressions.py.
        pytest.xfail(f"cancelled MongoDB operations leave {len(reports)} sockets unclosed (PyMongo 4.20)")
    assert reports == [], reports[:20]
    assert figures.cancelled >= profile.cancelled_tasks // 4, figures
    assert figures.lost == 0 and figures.duplicated == 0, figures
