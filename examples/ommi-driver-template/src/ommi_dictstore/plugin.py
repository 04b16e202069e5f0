"""Registers the dictstore driver with Ommi (the ``ommi`` entry point of ommi-dictstore).

Keep this module light: Ommi imports every installed driver's plugin module
to list the drivers, so it must not import the driver itself (or any client
library). The :class:`~ommi.drivers.DriverSpec` names the driver class as a
string; Ommi imports it only when a ``dictstore:`` URL is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ommi.drivers import DriverSpec
from ommi.hookspecs import hookimpl

__all__ = ["ommi_register_drivers"]


@hookimpl
def ommi_register_drivers(register: Callable[[DriverSpec], Any]) -> None:
    """Register :class:`ommi_dictstore.DictStoreDriver` for ``dictstore:`` URLs."""
    register(
        DriverSpec(
            name="dictstore",
            schemes=("dictstore",),
            driver="ommi_dictstore.driver:DictStoreDriver",
            distribution="ommi-dictstore",
            description="rows in Python dicts, in memory or saved to a JSON file (example driver)",
        )
    )
