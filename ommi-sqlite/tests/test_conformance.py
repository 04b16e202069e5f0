"""The conformance suite on SQLite: a database file, and a private in-memory database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from ommi_sqlite import SQLiteDriver
from ommi_testkit import ConformanceSuite, CrudTests, QueryTests

_NO_DECIMAL_ARITHMETIC = {
    "test_update_expr_decimal_is_exact": (
        "SQLite stores a Decimal as text and computes with binary floats: the driver refuses Decimal "
        "arithmetic with UnsupportedFeature (test_update_expressions.py checks the refusal)"
    ),
}


class TestSQLiteFileConformance(ConformanceSuite):
    """Every conformance test on a WAL database file."""

    impossible = _NO_DECIMAL_ARITHMETIC

    @pytest.fixture
    def driver_factory(self, tmp_path: Path) -> Callable[[], SQLiteDriver]:
        path = str(tmp_path / "conformance.sqlite")
        return lambda: SQLiteDriver.connect(path)


class TestSQLiteSmallBatches(CrudTests, QueryTests):
    """CRUD and query tests with a batch size of 2, so every multi-row read spans several fetches."""

    @pytest.fixture
    def driver_factory(self, tmp_path: Path) -> Callable[[], SQLiteDriver]:
        path = str(tmp_path / "batches.sqlite")
        return lambda: SQLiteDriver.connect(path, batch_size=2)


class TestSQLiteMemoryConformance(ConformanceSuite):
    """Every conformance test on a private in-memory database.

    A memory database lives inside one connection, so the driver declares
    ``transaction_isolation`` absent (tests needing it skip, naming it). The
    database is named by a ``file:...?mode=memory`` URI, so that ``second_db``
    and the other drivers of a test share it, as the suite requires.
    """

    impossible = _NO_DECIMAL_ARITHMETIC

    @pytest.fixture
    def driver_factory(self) -> Callable[[], SQLiteDriver]:
        name = f"file:ommi-conformance-{uuid.uuid4().hex}?mode=memory"
        return lambda: SQLiteDriver.connect(name)
