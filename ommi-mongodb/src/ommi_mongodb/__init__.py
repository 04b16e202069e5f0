"""ommi-mongodb: Ommi's MongoDB driver, on PyMongo's native asyncio client.

::

    from ommi import Ommi
    from ommi_mongodb import MongoDBDriver

    async with Ommi(MongoDBDriver.connect("mongodb://127.0.0.1:27017/app")) as db:
        ...

or simply ``ommi.connect("mongodb://127.0.0.1:27017/app")``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ommi_mongodb._settings import MongoDBSettings
    from ommi_mongodb.driver import MongoDBDriver, MongoDBTransaction

__all__ = ["MongoDBDriver", "MongoDBSettings", "MongoDBTransaction"]

# Imported on first use, so that importing ommi_mongodb.plugin (which Ommi
# does to list its drivers) does not import PyMongo.
_WHERE = {
    "MongoDBDriver": "ommi_mongodb.driver",
    "MongoDBSettings": "ommi_mongodb._settings",
    "MongoDBTransaction": "ommi_mongodb.driver",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ommi_mongodb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
