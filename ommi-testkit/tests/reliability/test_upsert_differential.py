"""Generated upserts on unique constraints give the reference driver's outcome, keys and rows on every driver."""

from __future__ import annotations

from typing import Any

import pytest
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.upsert_differential import run_upsert_differential


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mongodb"], indirect=True)
def test_upsert_differential_matches_the_reference_driver(backend: Any, profile: Profile) -> None:
    """``profile.examples`` sequences of upserts (on the key, ``email``, ``handle`` or ``(team, number)``)."""
    figures = run_upsert_differential(
        backend.make, backend=backend.name, examples=profile.examples, profile=profile.name
    )
    record(figures)
    assert figures.examples == profile.examples, figures
    assert figures.cases >= profile.examples, figures
    assert figures.rows_verified > 0, figures
