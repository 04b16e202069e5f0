"""PostgreSQL's ``lock_timeout`` and ``statement_timeout``: per connection, per transaction, and their errors.

The driver's settings are set on every pooled connection when it connects
(``set_config(..., false)``, see :meth:`ommi_postgresql._pool.Pool._configure`),
so an ordinary operation pays nothing for them. A transaction given its own
(``db.transaction(statement_timeout=..., lock_timeout=...)``) sets them with
``set_config(..., true)``, PostgreSQL's ``SET LOCAL``: they end with the
transaction, whether it commits or rolls back, and never reach the next user
of the connection.

PostgreSQL reports an expired ``statement_timeout`` as SQLSTATE 57014 ("canceling
statement due to statement timeout"), the code a cancel request
(``pg_cancel_backend``) gives too, and a lock wait past ``lock_timeout`` (or a
``NOWAIT`` lock refused) as 55P03; :func:`timeout_error` tells them apart by
the server's message.
"""

from __future__ import annotations

from typing import Any

import psycopg
from ommi import errors

__all__ = ["local_settings", "milliseconds", "timeout_error"]


def milliseconds(seconds: float) -> str:
    """A timeout as PostgreSQL takes it: whole milliseconds (at least 1), with the unit."""
    return f"{max(1, round(seconds * 1000))}ms"


def local_settings(statement_timeout: float | None, lock_timeout: float | None) -> tuple[str, list[Any]] | None:
    """The statement setting a transaction's own timeouts (``SET LOCAL``), or ``None`` when it has none."""
    names = [
        (name, value)
        for name, value in (("statement_timeout", statement_timeout), ("lock_timeout", lock_timeout))
        if value is not None
    ]
    if not names:
        return None
    calls = ", ".join(f"set_config('{name}', %s, true)" for name, _ in names)
    return f"SELECT {calls}", [milliseconds(value) for _, value in names]


def _seconds(value: float | None) -> str:
    return "the server's setting" if value is None else f"{value:g}s"


def timeout_error(
    exc: psycopg.Error,
    where: str,
    suffix: str,
    *,
    lock_timeout: float | None,
    statement_timeout: float | None,
) -> errors.OmmiError | None:
    """The Ommi error for SQLSTATE 55P03 / 57014, naming the setting that expired and its value; else ``None``."""
    state = exc.sqlstate or ""
    message = (exc.diag.message_primary or str(exc)).lower()
    if state == "55P03":
        if "nowait" in message or "could not obtain lock" in message:
            return errors.TimeoutError(
                f"a row is locked by another transaction and the query does not wait for it "
                f"(for_update(nowait=True), which is lock_timeout=0): {exc.diag.message_primary or exc}{suffix} "
                f"({where})"
            )
        return errors.TimeoutError(
            f"lock_timeout={_seconds(lock_timeout)} exceeded: PostgreSQL gave up waiting for a lock another "
            "transaction holds, possibly one this very task has open (write through that transaction, not "
            "through db); end long transactions sooner, or raise lock_timeout (the driver's setting, or "
            f"db.transaction(lock_timeout=...)){suffix} ({where})"
        )
    if state == "57014":
        if "statement timeout" in message:
            return errors.TimeoutError(
                f"statement_timeout={_seconds(statement_timeout)} exceeded: PostgreSQL cancelled the statement "
                "(waiting for a lock counts too); raise statement_timeout (the driver's setting, or "
                f"db.transaction(statement_timeout=...)), or make the query cheaper{suffix} ({where})"
            )
        if "lock timeout" in message:  # not PostgreSQL's code for it (55P03), but its words
            return errors.TimeoutError(f"lock_timeout={_seconds(lock_timeout)} exceeded: {exc}{suffix} ({where})")
        return errors.OperationalError(
            f"PostgreSQL cancelled the statement on request (pg_cancel_backend, or a cancel sent by another "
            f"client): {str(exc).strip()}{suffix} ({where})"
        )
    return None
