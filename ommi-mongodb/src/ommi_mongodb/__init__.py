"""ommi-mongodb: Ommi's MongoDB driver, on PyMongo's native asyncio client.

::

    from ommi import Ommi
    from ommi_mongodb import MongoDBDriver

    async with Ommi(MongoDBDriver.connect("mongodb://127.0.0.1:27017/app")) as db:
        ...

or simply ``ommi.connect("mongodb://127.0.0.1:27017/app")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ommi_mongodb.driver import MongoDBDriver, MongoDBTransaction

__all__ = ["MongoDBDriver", "MongoDBTransaction"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that importing ommi_mongodb.plugin (which Ommi
    # does to list its drivers) does not import PyMongo.
    if name in __all__:
        from ommi_mongodb import driver

        return getattr(driver, name)
    raise AttributeError(f"module 'ommi_mongodb' has no attribute {name!r}")
