"""The applied-migrations history: the ``ommi_migrations`` model, stored through Ommi's own API.

One row per applied migration, written in the same transaction as the
migration itself (where the driver has transactional DDL), so the history
never claims a migration the schema does not have. Being an ordinary model,
it works on every driver without driver code.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Annotated

from ommi.migrations.state import HISTORY_TABLE
from ommi.models.collections import ModelCollection
from ommi.models.decorator import ommi_model
from ommi.models.metadata import Key, TimezoneAware

__all__ = ["MigrationRecord", "history_models"]

history_models = ModelCollection("ommi.migrations history")
"""The collection of :class:`MigrationRecord` (never the global one: no implicit set-up creates it)."""


@ommi_model(collection=history_models, name=HISTORY_TABLE)
@dataclass
class MigrationRecord:
    """One applied migration."""

    id: Annotated[str, Key]
    """The migration's id."""
    name: str
    """Its file name when it was applied."""
    checksum: str
    """:attr:`ommi.migrations.files.Migration.checksum` of its operations."""
    applied_at: Annotated[_dt.datetime, TimezoneAware]
    """When it was applied (UTC)."""
