"""The driver interface and registration, and the library-safe logger drivers log through."""

from typing import TYPE_CHECKING, Any

from ommi import _legacy
from ommi._logging import get_logger
from ommi._rowcode import row_converter
from ommi.drivers.base import (
    Driver,
    DriverSettings,
    DriverTransaction,
    IsolationLevel,
    MigrationTransaction,
    Operations,
    Row,
    TransactionOptions,
)
from ommi.drivers.capabilities import Capabilities
from ommi.drivers.registry import DriverSpec
from ommi.drivers.translate import ExceptionMap, map_exceptions
from ommi.drivers.urls import redact_url, scrub_secrets, url_problem

__all__ = [
    "Capabilities",
    "Driver",
    "DriverSettings",
    "DriverSpec",
    "DriverTransaction",
    "ExceptionMap",
    "IsolationLevel",
    "MigrationTransaction",
    "Operations",
    "Row",
    "TransactionOptions",
    "get_logger",
    "map_exceptions",
    "redact_url",
    "row_converter",
    "scrub_secrets",
    "url_problem",
]

if not TYPE_CHECKING:
    # Ommi 0.2's names in this package: the moved ones warn once and give the new
    # object, the removed ones raise RemovedImportError (ommi._legacy.OLD_NAMES).

    def __getattr__(name: str) -> Any:
        return _legacy.attribute(__name__, name)
