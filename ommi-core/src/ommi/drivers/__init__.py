"""The driver interface and registration."""

from ommi.drivers.base import Driver, DriverTransaction, Operations, Row
from ommi.drivers.capabilities import Capabilities
from ommi.drivers.registry import DriverSpec

__all__ = ["Capabilities", "Driver", "DriverSpec", "DriverTransaction", "Operations", "Row"]
