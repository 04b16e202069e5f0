"""Schema migrations: migration files written from the models, applied to a database in order.

The loop::

    # after changing the models
    path = ommi.migrations.make(models, "migrations")   # writes migrations/NNNN_<name>.py: review, commit
    await ommi.migrations.apply(db, "migrations")       # on each database, at deploy time

``make`` compares the models with the state the existing migration files
replay into (:class:`SchemaState`, without importing the application) and
writes the operations between them (:func:`diff`); it refuses operations that
drop or narrow stored data unless given ``allow_destructive=True``. ``apply``
applies the pending files, each in one transaction with its record in the
``ommi_migrations`` history, under the driver's migration lock. ``status``
lists them; ``down`` undoes reversible ones. The ``ommi migrate`` command runs
the same functions.

A driver takes part by declaring the ``migrations`` capability and
implementing :meth:`ommi.drivers.Driver.begin_migration` and
:meth:`~ommi.drivers.Driver.migration_statements` (see the guide "Writing a
driver").
"""

from ommi.errors import MigrationError
from ommi.migrations.diff import Rename, diff, parse_rename
from ommi.migrations.files import DEFAULT_DIRECTORY, Migration, load, replay
from ommi.migrations.history import MigrationRecord
from ommi.migrations.operations import (
    CONVERSIONS,
    AddField,
    AddIndex,
    AddUnique,
    ChangeType,
    Conversion,
    CreateModel,
    DropModel,
    MigrationStep,
    Operation,
    RemoveField,
    RemoveIndex,
    RemoveUnique,
    RenameField,
    SetDefault,
)
from ommi.migrations.runner import MigrationDatabase, MigrationResult, MigrationStatus, apply, down, make, status
from ommi.migrations.state import (
    HISTORY_TABLE,
    TYPE_TAGS,
    FieldSpec,
    IndexSpec,
    ModelState,
    SchemaState,
    is_historical,
)

__all__ = [
    "CONVERSIONS",
    "DEFAULT_DIRECTORY",
    "HISTORY_TABLE",
    "TYPE_TAGS",
    "AddField",
    "AddIndex",
    "AddUnique",
    "ChangeType",
    "Conversion",
    "CreateModel",
    "DropModel",
    "FieldSpec",
    "IndexSpec",
    "Migration",
    "MigrationDatabase",
    "MigrationError",
    "MigrationRecord",
    "MigrationResult",
    "MigrationStatus",
    "MigrationStep",
    "ModelState",
    "Operation",
    "RemoveField",
    "RemoveIndex",
    "RemoveUnique",
    "Rename",
    "RenameField",
    "SchemaState",
    "SetDefault",
    "apply",
    "diff",
    "down",
    "is_historical",
    "load",
    "make",
    "parse_rename",
    "replay",
    "status",
]
