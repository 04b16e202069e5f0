"""Translation of sqlite3 / aiosqlite exceptions into :mod:`ommi.errors`, in one place.

A database still locked after ``busy_timeout`` (``SQLITE_BUSY``,
``SQLITE_LOCKED``) is :class:`~ommi.errors.BusyError`: a ``TimeoutError`` and
a ``SerializationError``, since SQLite reports its deadlocks and write
conflicts this way, so ``db.with_transaction`` reruns the transaction.

Each connection builds its map once (:func:`exception_map`, with the database
and ``busy_timeout`` its messages name) and wraps every call into SQLite in
:func:`ommi.drivers.map_exceptions`. Exceptions raised by SQLite carry their
result code (``sqlite_errorcode``, Python 3.11+), and the class is chosen by
it. Message text is read only where no code exists: errors raised by the
``sqlite3`` module itself (a closed database or cursor), aiosqlite's
``ValueError`` for a closed connection, and exceptions built without one.
"""

from __future__ import annotations

import functools
import sqlite3

from ommi import errors
from ommi.drivers import ExceptionMap

__all__ = ["OVERFLOW_MESSAGE", "exception_map", "translate"]

# Primary result codes (the low byte of an extended code).
_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_CANNOT_OPEN = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH})
_CONSTRAINT = sqlite3.SQLITE_CONSTRAINT


OVERFLOW_MESSAGE = "integer overflow"
"""What SQLite says when ``abs()`` is given the smallest 64-bit integer: the update expression check's failure."""


def translate(
    exc: BaseException,
    database: str,
    busy_timeout: float,
    path_note: str = "",
    statement_timeout: float | None = None,
) -> errors.OmmiError | None:
    """The :mod:`ommi.errors` exception for a client exception, or None if it is not one.

    Args:
        exc: what sqlite3 or aiosqlite raised.
        database: the database as the message should name it.
        busy_timeout: the configured wait, quoted when a lock outlasted it.
        path_note: added to the message of a file that cannot be opened (where
            a relative path points: ``SQLiteSettings.relative_path_note``).
        statement_timeout: the statement bound in force on the connection,
            named when the driver's progress handler interrupted a statement.
    """
    where = f"sqlite database {database}"
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc)
        if isinstance(code, int):
            primary = code & 0xFF
            busy = primary in _BUSY
            cannot_open = primary in _CANNOT_OPEN
            constraint = primary == _CONSTRAINT or isinstance(exc, sqlite3.IntegrityError)
            interrupted = primary == sqlite3.SQLITE_INTERRUPT
        else:
            # No result code: raised by the sqlite3 module itself, or built by hand.
            if isinstance(exc, sqlite3.ProgrammingError) and ("closed database" in text or "closed cursor" in text):
                # A call queued just before the driver closed the connection (and its cursors).
                return errors.ConnectionError(f"{where}: the connection is closed (was the driver closed?)")
            busy = "database is locked" in text or "table is locked" in text
            cannot_open = "unable to open database" in text or "not a database" in text
            constraint = isinstance(exc, sqlite3.IntegrityError)
            interrupted = text == "interrupted"
        if interrupted and statement_timeout is not None:
            return errors.TimeoutError(
                f"statement_timeout={statement_timeout:g}s exceeded: {where} interrupted the statement; raise "
                "statement_timeout (the driver's setting, or db.transaction(statement_timeout=...)), or make the "
                "query cheaper. Inside a transaction an interrupted write rolls the whole transaction back"
            )
        if constraint:
            return errors.IntegrityError(f"{where}: {exc}")
        if busy:
            return errors.BusyError(
                f"{where} stayed locked by another connection for longer than busy_timeout={busy_timeout} s "
                f"(the driver's lock_timeout) ({text}); raise busy_timeout or keep transactions shorter"
            )
        if cannot_open:
            note = f" ({path_note})" if path_note else ""
            return errors.ConnectionError(
                f"cannot use {where}: {text}; check the path, its directory and permissions{note}"
            )
        if text == OVERFLOW_MESSAGE:
            # Only the range check of an update expression raises it (SQLiteDialect.arithmetic_result).
            return errors.ValidationError(
                f"{where}: an update expression's result for a matched row is outside the field's range "
                "(an int beyond 64 bits, or a float that is not finite); nothing was written"
            )
        # A missing table is the generic SQLITE_ERROR: only its text says what is missing (for the hint).
        if "no such table" in text:
            return errors.OperationalError(
                f"{where}: {text}; create the tables with `await db.use_models()` or allow implicit model setup"
            )
        return errors.OperationalError(f"{where}: {text}")
    if isinstance(exc, ValueError) and str(exc) in ("Connection closed", "no active connection"):
        # aiosqlite's way of saying the connection was closed under us: no code, only this text.
        return errors.ConnectionError(f"{where}: the connection is closed (was the driver closed?)")
    if isinstance(exc, OverflowError):
        # sqlite3 binds ints of the signed 64-bit range only. Core validates
        # field values; this is the last guard for anything else.
        return errors.QueryError(
            f"{where}: a parameter is outside SQLite's signed 64-bit integer range "
            f"(-2**63 to 2**63 - 1): {exc}; nothing was changed"
        )
    return None


def exception_map(
    database: str, busy_timeout: float, path_note: str = "", statement_timeout: float | None = None
) -> ExceptionMap:
    """The map for :func:`ommi.drivers.map_exceptions` of one database (see :func:`translate`)."""
    translation = functools.partial(
        translate,
        database=database,
        busy_timeout=busy_timeout,
        path_note=path_note,
        statement_timeout=statement_timeout,
    )
    return {sqlite3.Error: translation, ValueError: translation, OverflowError: translation}
