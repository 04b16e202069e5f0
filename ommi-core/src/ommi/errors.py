"""The exceptions Ommi raises.

Every exception raised on purpose by Ommi or one of its drivers derives from
:class:`OmmiError`. Drivers translate their client library's exceptions into this
hierarchy in one place and chain the original (``raise ... from exc``)::

    OmmiError
    ├── ConfigurationError          bad settings or set-up
    │   ├── DriverNotFound          no installed driver serves a URL scheme
    │   └── ModelDefinitionError    a model class Ommi cannot map
    ├── ValidationError             a value that does not fit its field
    ├── QueryError                  a query that cannot be built or run as written
    ├── UnsupportedFeature          the driver declares a capability absent
    ├── SchemaError
    │   └── SchemaMismatchError     stored schema or value differs from the model
    ├── TransactionError            misuse of a transaction (closed, nested commit)
    ├── LazyLoadError               a lazy relation could not be loaded
    ├── MigrationError              a migration cannot be written, applied or undone as asked
    │   └── MigrationTimeoutError   a lock a migration needs stayed held past lock_timeout (also TimeoutError)
    ├── DBStatusNoResultException   ``.one`` matched nothing
    ├── RemovedAPIError             an Ommi 0.2 name or form this version removed (the message says what replaced it)
    │   ├── RemovedImportError      imported from its 0.2 module (also an ImportError)
    │   └── RemovedAttributeError   read on an object (also an AttributeError, so hasattr() is False)
    └── DatabaseError               the database refused or failed an operation
        ├── IntegrityError          a constraint (unique key, foreign key) failed
        ├── ConnectionError         the database cannot be reached or the link broke (*)
        │   └── DatabaseClosedError an operation on a database after close()
        ├── TimeoutError            waiting for a connection or lock took too long (*)
        ├── OperationalError        any other failure reported by the database
        └── SerializationError      a transaction conflicted with another: rerun it whole
            ├── DeadlockError       two transactions waited for each other's locks
            └── BusyError           SQLite stayed locked by another connection (also TimeoutError)

(*) also a subclass of the builtin of the same name, so ``except TimeoutError``
catches Ommi's too.

:class:`OmmiDeprecationWarning` (a :class:`DeprecationWarning`, not an
exception of this tree) is the warning an Ommi 0.2 name used through its old
path gives; see the guide "Migrating from Ommi 0.2".

Exceptions keep to positional ``args`` so they pickle (pytest-xdist ships them
between processes).
"""

from __future__ import annotations

import builtins

__all__ = [
    "BusyError",
    "ConfigurationError",
    "ConnectionError",
    "DBStatusNoResultException",
    "DatabaseClosedError",
    "DatabaseError",
    "DeadlockError",
    "DriverNotFound",
    "IntegrityError",
    "LazyLoadError",
    "MigrationError",
    "MigrationTimeoutError",
    "ModelDefinitionError",
    "OmmiError",
    "OperationalError",
    "QueryError",
    "RemovedAPIError",
    "RemovedAttributeError",
    "RemovedImportError",
    "SchemaError",
    "SchemaMismatchError",
    "SerializationError",
    "TimeoutError",
    "TransactionError",
    "UnsupportedFeature",
    "ValidationError",
]


class OmmiError(Exception):
    """Base class of every exception Ommi raises on purpose."""


class ConfigurationError(OmmiError):
    """Ommi or a driver was set up with settings it cannot use."""


class DriverNotFound(ConfigurationError):
    """No installed driver serves the requested URL scheme or name."""


class ModelDefinitionError(ConfigurationError):
    """A model class cannot be mapped (unsupported field type, broken reference...)."""


class ValidationError(OmmiError, ValueError):
    """A value does not fit the field it is meant for; nothing was written."""


class QueryError(OmmiError):
    """A query cannot be built or run as written."""


class UnsupportedFeature(OmmiError):
    """The driver declares the capability an operation needs absent."""


class SchemaError(OmmiError):
    """Creating, checking or dropping the stored schema failed."""


class SchemaMismatchError(SchemaError):
    """A stored table, collection or value differs from its model; nothing was changed.

    Raised by ``use_models`` and implicit setup for tables, and by reads for a
    stored value the model cannot represent (an ``Enum`` member removed since,
    a document of another type): migrate the stored data or change the model.
    """


class TransactionError(OmmiError):
    """A transaction was used after it ended, or committed or rolled back twice."""


class LazyLoadError(OmmiError):
    """A lazy relation could not be loaded; the cause is chained."""


class MigrationError(OmmiError):
    """A migration cannot be written, applied or undone as asked; nothing was changed by the failing step.

    Raised by :mod:`ommi.migrations` (and ``ommi migrate``): a change that would
    drop or narrow stored data without ``allow_destructive``, a migration
    directory with two heads or a broken ``parent``, a file whose operations
    changed since it was applied (the message names the file), a step that
    cannot be undone. The message says what to do next.
    """


class DBStatusNoResultException(OmmiError):
    """``.one`` found no row matching the query."""


class RemovedAPIError(OmmiError):
    """An Ommi 0.2 name or form that this version removed; the message names what to write instead."""


class RemovedImportError(RemovedAPIError, ImportError):
    """An Ommi 0.2 name imported from its old module, removed since (``from ommi import use_driver``).

    Also an :class:`ImportError`, which is what ``from module import name`` raises
    for a name that is not there, so ``try: ... except ImportError:`` fallbacks
    keep working.
    """


class RemovedAttributeError(RemovedAPIError, AttributeError):
    """An Ommi 0.2 attribute read on an object that no longer has it (``result.result``).

    Also an :class:`AttributeError`, so ``hasattr()`` and ``getattr(obj, name, default)``
    treat the attribute as absent, as it is.
    """


class OmmiDeprecationWarning(DeprecationWarning):
    """An Ommi 0.2 name used through its old path (``ommi.query_ast.when``); the message names the new one.

    A :class:`DeprecationWarning`, so Python shows it where such warnings are
    meant to be seen: in test runs (pytest shows them) and in ``__main__``;
    ``-W error::DeprecationWarning`` (or a ``filterwarnings`` entry naming this
    class) turns it into an error. Each old name warns once per process. It is
    not an :class:`OmmiError`, and not in ``__all__``, which lists the exceptions.
    """


class DatabaseError(OmmiError):
    """The database refused or failed an operation; the driver's error is chained."""


class IntegrityError(DatabaseError):
    """A constraint failed: a duplicate key, a missing referenced row, a NULL key."""


class ConnectionError(DatabaseError, builtins.ConnectionError):  # noqa: A001 - deliberate, namespaced by ommi.errors
    """The database cannot be reached, or the connection to it broke.

    Also a builtin :class:`ConnectionError`, so ``except ConnectionError``
    written against the builtin catches it too.
    """

    __str__ = BaseException.__str__  # the message, not OSError's "[Errno ...]" form


class DatabaseClosedError(ConnectionError):
    """An operation, ``transaction()`` or ``use_models`` ran after ``close()`` began.

    Closing is final for that ``Ommi`` until it is reopened explicitly with
    ``await db.open()`` or ``async with db:``.
    """


class TimeoutError(DatabaseError, builtins.TimeoutError):  # noqa: A001 - deliberate, namespaced by ommi.errors
    """Waiting for a connection, a lock or a reply took longer than allowed.

    Also a builtin :class:`TimeoutError` (which ``asyncio.TimeoutError`` is),
    so ``except TimeoutError`` catches it. Code that waits with
    ``asyncio.timeout()`` around Ommi calls and must tell the two apart
    catches :class:`OmmiError` first.
    """

    __str__ = BaseException.__str__


class OperationalError(DatabaseError):
    """Any other failure the database reported."""


class MigrationTimeoutError(MigrationError, TimeoutError):
    """A migration waited longer than its ``lock_timeout`` for a lock; nothing of that migration was applied.

    The lock is the migration lock (another ``apply`` or ``down`` is running)
    or, on PostgreSQL, a table lock the migration's DDL needs (a transaction
    on another connection uses the table). The message names the lock and,
    where the database tells, what holds it. It is both a
    :class:`MigrationError` and a :class:`TimeoutError` (Ommi's, so the
    builtin too): retry later, or with a longer ``lock_timeout``.
    """


class SerializationError(DatabaseError):
    """The transaction conflicted with a concurrent one and was rolled back: rerun the whole transaction.

    Raised for PostgreSQL's serialization failure (SQLSTATE ``40001``, e.g. a
    write skew under ``isolation="serializable"``), MongoDB's errors labelled
    ``TransientTransactionError`` (a write conflict), and, as its subclasses,
    deadlocks and SQLite's busy database. Nothing the transaction wrote is
    kept, and rerunning only its last statement would act on a stale view:
    rerun the transaction from its start, reading again what it read, as
    ``await db.with_transaction(fn)`` does.
    """


class DeadlockError(SerializationError):
    """Two transactions waited for each other's locks and the database chose this one to fail (``40P01``).

    A :class:`SerializationError`: rerun the whole transaction
    (``db.with_transaction`` does); taking locks in one order everywhere
    makes deadlocks rarer.
    """


class BusyError(SerializationError, TimeoutError):
    """SQLite stayed locked by another connection past ``busy_timeout`` (``SQLITE_BUSY``/``SQLITE_LOCKED``).

    The statement that met the lock did nothing. Both a :class:`TimeoutError`
    (what SQLite's busy database has always been in Ommi) and a
    :class:`SerializationError`: SQLite reports its deadlocks and lock
    conflicts this way, so ``db.with_transaction`` reruns the transaction.
    """

    __str__ = BaseException.__str__
