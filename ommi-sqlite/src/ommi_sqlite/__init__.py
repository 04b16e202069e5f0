"""ommi-sqlite: Ommi's SQLite driver, on aiosqlite.

::

    from ommi import Ommi
    from ommi_sqlite import SQLiteDriver

    async with Ommi(SQLiteDriver.connect("app.db")) as db:
        ...

The names below are imported on first access, so that importing the plugin
module (``ommi_sqlite.plugin``, which imports this package first) stays free of
aiosqlite and sqlite3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ommi_sqlite._dialect import SQLiteDialect
    from ommi_sqlite._settings import SQLiteSettings
    from ommi_sqlite.driver import SQLiteDriver, SQLiteTransaction

__all__ = ["SQLiteDialect", "SQLiteDriver", "SQLiteSettings", "SQLiteTransaction"]

_WHERE = {
    "SQLiteDialect": "ommi_sqlite._dialect",
    "SQLiteDriver": "ommi_sqlite.driver",
    "SQLiteSettings": "ommi_sqlite._settings",
    "SQLiteTransaction": "ommi_sqlite.driver",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ommi_sqlite' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
