"""The whole conformance suite against the in-memory reference driver.

The reference driver declares every capability, so nothing may skip here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ommi_testkit import ConformanceSuite, CrudTests, QueryTests, ReferenceDriver
from ommi_testkit.reference import ReferenceStore


class TestReferenceConformance(ConformanceSuite):
    """Every conformance test on :class:`ReferenceDriver`."""

    @pytest.fixture
    def driver_factory(self) -> Callable[[], ReferenceDriver]:
        # One store per test: every driver the factory makes (db, second_db) sees the same data.
        store = ReferenceStore()
        return lambda: ReferenceDriver.connect(store=store)


class TestReferenceSmallBatches(CrudTests, QueryTests):
    """CRUD and query tests again with a batch size of 2: every multi-row read spans several batches."""

    @pytest.fixture
    def driver_factory(self) -> Callable[[], ReferenceDriver]:
        store = ReferenceStore()
        return lambda: ReferenceDriver.connect(store=store, batch_size=2)
