"""Migrations racing writers: a rolling deploy adds a field while the old models keep writing.

The workload lives in :mod:`ommi_testkit.reliability.migrating`; these tests
run it on the backends with column defaults (the reference driver, SQLite and
PostgreSQL; MongoDB has none, see the Migrations guide), at the size of
``OMMI_RELIABILITY_PROFILE`` (a couple of rounds in the normal run, many under
``nox -s stress``), and record the figures for the stress report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ommi import Ommi
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.migrating import migration_race_workload


@pytest.mark.parametrize(
    ("backend", "rebuild"),
    [("reference", False), ("sqlite", False), ("sqlite", True), ("postgresql", False)],
    ids=["reference", "sqlite-add-column", "sqlite-rebuild", "postgresql"],
    indirect=["backend"],
)
async def test_migrations_old_writers_lose_nothing(
    backend: Any, rebuild: bool, profile: Profile, tmp_path: Path
) -> None:
    """Writers on the old models add rows before, during and after ``apply`` adds ``count`` with a default.

    Every acknowledged row is stored exactly once and reads the default
    (backfilled or from the column DEFAULT); no old-model write is refused.
    ``sqlite-rebuild`` also makes a field optional, which SQLite does by
    rebuilding the table while the writers wait on its write lock.
    """
    figures, problems = await migration_race_workload(
        lambda: Ommi(backend.make(), allow_implicit_model_setup=False),
        tmp_path / "migrations",
        backend=backend.name + ("-rebuild" if rebuild else ""),
        profile=profile.name,
        rounds=profile.migration_rounds,
        writers=profile.migration_writers,
        rebuild=rebuild,
    )
    record(figures)
    assert problems == [], problems[:20]
    assert figures.lost == 0 and figures.duplicated == 0, figures
    assert figures.acknowledged > 0 and figures.rows_verified >= figures.acknowledged, figures
