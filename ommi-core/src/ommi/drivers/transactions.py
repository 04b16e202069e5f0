"""Ommi 0.2's ``ommi.drivers.transactions``: a transaction is ``ommi.Transaction`` now.

A deprecation shim: a name that moved warns once (``OmmiDeprecationWarning``) and gives the
new object; a removed one raises ``ommi.errors.RemovedImportError`` saying what to write
instead. The table is :data:`ommi._legacy.OLD_NAMES`; the guide "Migrating from Ommi 0.2"
explains each name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ommi import _legacy

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        return _legacy.attribute(__name__, name)
