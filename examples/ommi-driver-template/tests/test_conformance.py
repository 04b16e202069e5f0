"""The Ommi conformance suite, run on the dictstore driver.

``ConformanceSuite`` holds every test; this subclass says how to build a
driver for an isolated database. Tests needing a capability the driver
declares absent (transactions, related_conditions, foreign_keys) skip with
the capability's name; nothing else may skip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ommi_dictstore import DictStoreDriver
from ommi_testkit import ConformanceSuite


class TestDictStoreConformance(ConformanceSuite):
    """Every conformance test, on a JSON file in the test's temporary directory."""

    # Known gaps: a test that fails today, with the reason (run as a strict xfail,
    # so the run fails once it passes and the entry must go). None at the moment:
    #     known_failures = {"test_sort_null_last_descending": "issue 3: ..."}
    known_failures: dict[str, str] = {}

    # Behaviour this engine can never have, with the reason (skipped). None:
    #     impossible = {"test_types_datetime_microseconds_kept": "the engine keeps milliseconds"}
    impossible: dict[str, str] = {}

    @pytest.fixture
    def driver_factory(self, tmp_path: Path) -> Callable[[], DictStoreDriver]:
        """A new, unopened driver on this test's database file; every call reaches the same file."""
        path = tmp_path / "conformance.json"
        return lambda: DictStoreDriver.connect(path)
