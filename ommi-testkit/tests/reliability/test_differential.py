"""Differential testing: generated data and queries give identical results on every driver and the reference.

Each backend runs at least ``profile.min_cases`` generated operations (1,000
in the quick profile, 20,000 under ``nox -s stress``). What a backend may
legitimately do differently is its declared capabilities (and, on the
nx-27017 test server only, its listed defects): the generator stays inside
that domain and the figures note each narrowing.
"""

from __future__ import annotations

from typing import Any

import pytest
from ommi_testkit.reliability import Profile, record, run_differential
from ommi_testkit.reliability.quirks import narrow_for_test_servers


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mongodb"], indirect=True)
def test_differential_every_case_matches_the_reference_driver(backend: Any, profile: Profile) -> None:
    """Every generated find, count, one, update, delete and add gives the reference driver's outcome."""
    figures = run_differential(backend.make, backend=backend.name, profile=profile, narrow=narrow_for_test_servers)
    record(figures)
    assert figures.cases >= profile.min_cases, figures
    assert figures.examples == profile.examples, figures
    assert figures.rows_verified > 0, figures


def test_differential_reference_against_itself_counts_cases(profile: Profile) -> None:
    """The runner on the reference driver alone: the machinery counts cases and rows, and passes."""
    from dataclasses import replace

    from ommi_testkit.reference import ReferenceDriver

    small = replace(profile, examples=5, min_cases=5 * profile.operations[0])
    figures = run_differential(ReferenceDriver.connect, backend="reference", profile=small)
    assert figures.examples == 5
    assert figures.cases >= small.min_cases
