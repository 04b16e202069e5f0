"""The conformance suite on PostgreSQL: the whole suite, and again with tiny batches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ommi_postgresql import PostgreSQLDriver
from ommi_testkit import ConformanceSuite, CrudTests, QueryTests


class TestPostgreSQLConformance(ConformanceSuite):
    """Every conformance test, in this worker's schema."""

    @pytest.fixture
    def driver_factory(self, make_driver: Callable[..., PostgreSQLDriver]) -> Callable[[], PostgreSQLDriver]:
        return make_driver


class TestPostgreSQLSmallBatches(CrudTests, QueryTests):
    """CRUD and query tests with a batch size of 2, so every multi-row read spans several cursor fetches."""

    @pytest.fixture
    def driver_factory(self, make_driver: Callable[..., PostgreSQLDriver]) -> Callable[[], PostgreSQLDriver]:
        return lambda: make_driver(batch_size=2)
