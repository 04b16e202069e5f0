"""Registers the postgresql driver with Ommi; imports no database client.

psycopg is imported only when a ``postgresql://`` or ``postgres://`` URL (or
``ommi drivers``) loads :class:`ommi_postgresql.driver.PostgreSQLDriver`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ommi.drivers.registry import DriverSpec
from ommi.hookspecs import hookimpl

__all__ = ["SPEC", "ommi_register_drivers"]

SPEC = DriverSpec(
    name="postgresql",
    schemes=("postgresql", "postgres"),
    driver="ommi_postgresql.driver:PostgreSQLDriver",
    distribution="ommi-postgresql",
    description="PostgreSQL through psycopg 3 with a connection pool",
)


@hookimpl
def ommi_register_drivers(register: Callable[[DriverSpec], Any]) -> None:
    """Register the PostgreSQL driver for postgresql:// and postgres:// URLs."""
    register(SPEC)
