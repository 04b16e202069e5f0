"""Registers the sqlite driver with Ommi; imports no database client.

Loaded through the ``ommi`` entry point of ommi-sqlite. The driver module (and
with it aiosqlite and sqlite3) is imported only when a ``sqlite:`` URL or
``ommi drivers`` asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ommi.drivers.registry import DriverSpec
from ommi.hookspecs import hookimpl

__all__ = ["ommi_register_drivers"]


@hookimpl
def ommi_register_drivers(register: Callable[[DriverSpec], Any]) -> None:
    """Register :class:`ommi_sqlite.SQLiteDriver` for ``sqlite:`` URLs."""
    register(
        DriverSpec(
            name="sqlite",
            schemes=("sqlite",),
            driver="ommi_sqlite.driver:SQLiteDriver",
            distribution="ommi-sqlite",
            description="SQLite files and in-memory databases, through aiosqlite",
        )
    )
