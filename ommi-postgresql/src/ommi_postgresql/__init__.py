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
    from ommi_postgresql._dialect import PostgreSQLCompiler, PostgreSQLDialect
    from ommi_postgresql._settings import DEFAULTS, PostgreSQLSettings
    from ommi_postgresql._settings import PostgreSQLSettings as Settings
    from ommi_postgresql.driver import PostgreSQLDriver, PostgreSQLTransaction

__all__ = [
    "DEFAULTS",
    "PostgreSQLCompiler",
    "PostgreSQLDialect",
    "PostgreSQLDriver",
    "PostgreSQLSettings",
    "PostgreSQLTransaction",
    "Settings",
]

_HOMES = {
    "DEFAULTS": "ommi_postgresql._settings",
    "PostgreSQLSettings": "ommi_postgresql._settings",
    "Settings": "ommi_postgresql._settings",
    "PostgreSQLCompiler": "ommi_postgresql._dialect",
    "PostgreSQLDialect": "ommi_postgresql._dialect",
    "PostgreSQLDriver": "ommi_postgresql.driver",
    "PostgreSQLTransaction": "ommi_postgresql.driver",
}

_RENAMED = {"Settings": "PostgreSQLSettings"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ommi_postgresql' has no attribute {name!r}")
    # ``Settings`` is the name this class had before the drivers shared one naming scheme.
    value = getattr(importlib.import_module(home), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
