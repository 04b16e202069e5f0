"""Generated JSON documents and path conditions give the reference driver's answers and rows on every driver."""

from __future__ import annotations

from typing import Any

import pytest
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.json_differential import run_json_differential


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mongodb"], indirect=True)
def test_json_differential_matches_the_reference_driver(backend: Any, profile: Profile) -> None:
    """``profile.examples`` datasets of JSON rows, each with path conditions, ``has`` and updates."""
    figures = run_json_differential(backend.make, backend=backend.name, examples=profile.examples, profile=profile.name)
    record(figures)
    assert figures.examples == profile.examples, figures
    assert figures.cases >= profile.examples, figures
    assert figures.rows_verified > 0, figures
