"""ommi-postgresql: the PostgreSQL driver for Ommi, on psycopg 3 with a connection pool.

    from ommi import Ommi
    from ommi_postgresql import PostgreSQLDriver

    async with Ommi(PostgreSQLDriver.connect("postgresql://app@db.example/app")) as db:
        ...

or simply ``ommi.connect("postgresql://...")``.

The names below are imported on first access, so that importing the plugin
module (``ommi_postgresql.plugin``, which Ommi loads for every installed
driver) does not import psycopg.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ommi_postgresql.dialect import PostgreSQLCompiler, PostgreSQLDialect
    from ommi_postgresql.driver import PostgreSQLDriver, PostgreSQLTransaction
    from ommi_postgresql.settings import DEFAULTS, Settings

__all__ = [
    "DEFAULTS",
    "PostgreSQLCompiler",
    "PostgreSQLDialect",
    "PostgreSQLDriver",
    "PostgreSQLTransaction",
    "Settings",
]

_HOMES = {
    "DEFAULTS": "ommi_postgresql.settings",
    "Settings": "ommi_postgresql.settings",
    "PostgreSQLCompiler": "ommi_postgresql.dialect",
    "PostgreSQLDialect": "ommi_postgresql.dialect",
    "PostgreSQLDriver": "ommi_postgresql.driver",
    "PostgreSQLTransaction": "ommi_postgresql.driver",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ommi_postgresql' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
