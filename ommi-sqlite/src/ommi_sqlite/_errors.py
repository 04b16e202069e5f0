"""Translation of sqlite3 / aiosqlite exceptions into :mod:`ommi.errors`, in one place."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ommi.errors import (
    ConnectionError,
    IntegrityError,
    OmmiError,
    OperationalError,
    QueryError,
    TimeoutError,
)

__all__ = ["map_exceptions", "translate"]

# Primary result codes (the low byte of an extended code).
_BUSY = sqlite3.SQLITE_BUSY
_LOCKED = sqlite3.SQLITE_LOCKED
_CANNOT_OPEN = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH})


def translate(exc: BaseException, database: str, busy_timeout: float) -> OmmiError | None:
    """The :mod:`ommi.errors` exception for a client exception, or None if it is not one.

    Args:
        exc: what sqlite3 or aiosqlite raised.
        database: the database as the message should name it.
        busy_timeout: the configured wait, quoted when a lock outlasted it.
    """
    where = f"sqlite database {database}"
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(f"{where}: {exc}")
    if isinstance(exc, sqlite3.ProgrammingError) and ("closed database" in str(exc) or "closed cursor" in str(exc)):
        # A call queued just before the driver closed the connection (and its cursors).
        return ConnectionError(f"{where}: the connection is closed (was the driver closed?)")
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary in (_BUSY, _LOCKED) or "database is locked" in text or "table is locked" in text:
            return TimeoutError(
                f"{where} stayed locked by another connection for longer than busy_timeout={busy_timeout} s "
                f"({text}); raise busy_timeout or keep transactions shorter"
            )
        if primary in _CANNOT_OPEN or "unable to open database" in text or "not a database" in text:
            return ConnectionError(f"cannot use {where}: {text}; check the path, its directory and permissions")
        if "no such table" in text:
            return OperationalError(
                f"{where}: {text}; create the tables with `await db.use_models()` or allow implicit model setup"
            )
        return OperationalError(f"{where}: {text}")
    if isinstance(exc, ValueError) and str(exc) in ("Connection closed", "no active connection"):
        # aiosqlite's way of saying the connection was closed under us.
        return ConnectionError(f"{where}: the connection is closed (was the driver closed?)")
    if isinstance(exc, OverflowError):
        # sqlite3 binds ints of the signed 64-bit range only. Core validates
        # field values; this is the last guard for anything else.
        return QueryError(
            f"{where}: a parameter is outside SQLite's signed 64-bit integer range "
            f"(-2**63 to 2**63 - 1): {exc}; nothing was changed"
        )
    return None


@contextmanager
def map_exceptions(database: str, busy_timeout: float) -> Iterator[None]:
    """Re-raise client exceptions as :mod:`ommi.errors` ones, chained to the original."""
    try:
        yield
    except (sqlite3.Error, ValueError, OverflowError) as exc:
        translated = translate(exc, database, busy_timeout)
        if translated is None:
            raise
        raise translated from exc
