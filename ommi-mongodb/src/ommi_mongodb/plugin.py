"""Registers the MongoDB driver with Ommi (entry point ``ommi: mongodb``).

This module is imported whenever Ommi lists its drivers, so it imports neither
PyMongo nor the driver: the spec names the driver class, which core imports
only when a ``mongodb://`` or ``mongodb+srv://`` URL asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ommi.drivers.registry import DriverSpec
from ommi.hookspecs import hookimpl

__all__ = ["ommi_register_drivers"]


@hookimpl
def ommi_register_drivers(register: Callable[[DriverSpec], Any]) -> None:
    """Register the ``mongodb`` driver for ``mongodb://`` and ``mongodb+srv://`` URLs."""
    register(
        DriverSpec(
            name="mongodb",
            schemes=("mongodb", "mongodb+srv"),
            driver="ommi_mongodb.driver:MongoDBDriver",
            distribution="ommi-mongodb",
            description="MongoDB through PyMongo's native asyncio client",
        )
    )
