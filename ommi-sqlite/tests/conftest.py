"""Fixtures of ommi-sqlite's own tests (the conformance suite brings its own).

Test modules define their own models (each in its own collection): with
``--import-mode=importlib`` they cannot import one another or this file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ommi import Ommi
from ommi_sqlite import SQLiteDriver


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's database file goes."""
    return tmp_path / "test.sqlite"


@pytest.fixture
def connect_file(db_path: Path) -> Callable[..., Ommi]:
    """Make an unopened ``Ommi`` on the test's database file, with optional driver settings."""

    def connect(**settings: Any) -> Ommi:
        return Ommi(SQLiteDriver.connect(str(db_path), **settings))

    return connect


@pytest.fixture
def raw(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the test's file, to look at what the driver stored."""
    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()
