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


async def test_cancellation_sqlite_pool_statistics_count_what_is_held(tmp_path: Any) -> None:
    """``SQLiteDriver.pool.stats()`` counts lent readers and the held writer, and reads 0 at rest."""
    from ommi_sqlite import SQLiteDriver
    from ommi_testkit.reliability.ledger import Ledger, prepare
    from ommi_testkit.reliability.models import Part

    driver = SQLiteDriver.connect(str(tmp_path / "stats.sqlite"))
    async with Ommi(driver) as db:
        await prepare(db, Ledger())
        await db.add(*(Part(group="g", index=i, size=3) for i in range(3))).or_raise()
        assert driver.pool.stats()["readers_lent"] == 0
        assert driver.pool.stats()["writer_locked"] == 0
        first = await db.find(Part).all(batch_size=1).or_raise()
        second = await db.find(Part).all(batch_size=1).or_raise()
        assert driver.pool.stats()["readers_lent"] == 2
        async with db.transaction():
            assert driver.pool.stats()["writer_locked"] == 1
        await first.aclose()
        await second.aclose()
        assert driver.pool.stats() == {"readers_lent": 0, "readers_open": 2, "writer_locked": 0}
