"""The one place where psycopg's exceptions become :mod:`ommi.errors`.

The class is chosen by SQLSTATE (the "PostgreSQL Error Codes" appendix of its manual):

=======================================  ===================================
SQLSTATE                                 Ommi exception
=======================================  ===================================
``23xxx`` integrity constraint           :class:`~ommi.errors.IntegrityError`
``08xxx`` connection exception,          :class:`~ommi.errors.ConnectionError`
``57P01-57P05`` server shut down or
terminated the session, ``53300`` too
many connections, ``28xxx`` bad
credentials, no SQLSTATE (link broken)
``57014`` query canceled (statement      :class:`~ommi.errors.TimeoutError`
timeout), ``55P03`` lock not available   (naming ``statement_timeout`` /
(``lock_timeout``, ``NOWAIT``), pool     ``lock_timeout`` and its value; a
exhaustion                               57014 cancel request is an
                                         :class:`~ommi.errors.OperationalError`)
``22003`` numeric value out of range     :class:`~ommi.errors.ValidationError`
``25P02`` statement in a failed          :class:`~ommi.errors.TransactionError`
transaction
``40001`` serialization failure          :class:`~ommi.errors.SerializationError`
``40P01`` deadlock detected              :class:`~ommi.errors.DeadlockError`
anything else                            :class:`~ommi.errors.OperationalError`
=======================================  ===================================

Every translated exception is chained to psycopg's (``raise ... from exc``) and
names the database it happened on (never its password).
"""

from __future__ import annotations

import psycopg
from ommi import errors
from ommi.drivers import ExceptionMap
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

from ommi_postgresql._timeouts import timeout_error

__all__ = ["exception_map", "translate"]

_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "53300"})
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"


def translate(
    exc: psycopg.Error, where: str, *, lock_timeout: float | None = None, statement_timeout: float | None = None
) -> errors.OmmiError:
    """The Ommi exception for a psycopg error raised while talking to ``where``.

    ``lock_timeout`` / ``statement_timeout``: the bounds in force (the driver's
    settings, or a transaction's own), named when one of them expired.
    """
    state = exc.sqlstate or ""
    detail = str(exc).strip() or type(exc).__name__
    suffix = f" [SQLSTATE {state}]" if state else ""
    if state.startswith("23"):
        diag = exc.diag
        on = f" on table {diag.table_name}" if diag.table_name else ""
        constraint = f" (constraint {diag.constraint_name})" if diag.constraint_name else ""
        return errors.IntegrityError(f"PostgreSQL refused the write{on}{constraint}: {detail}{suffix} ({where})")
    if (
        state.startswith(("08", "28"))
        or state in _CONNECTION_STATES
        or (not state and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)))
    ):
        return errors.ConnectionError(
            f"the connection to PostgreSQL failed: {detail}{suffix} ({where}); "
            "check that the server is running and the URL / PG* environment variables are right"
        )
    if state in (_LOCK_NOT_AVAILABLE, _QUERY_CANCELED):
        error = timeout_error(exc, where, suffix, lock_timeout=lock_timeout, statement_timeout=statement_timeout)
        if error is not None:
            return error
    if state == "22003":
        return errors.ValidationError(
            f"a value is out of range for its PostgreSQL column type: {detail}{suffix} ({where}); nothing was "
            "written by this statement"
        )
    if state == "25P02":
        return errors.TransactionError(
            f"an earlier statement of this transaction failed, so PostgreSQL ignores the rest of it "
            f"until it rolls back (run statements that may fail in a savepoint, t.transaction(), to go on "
            f"after them){suffix} ({where})"
        )
    if state == "40001":
        return errors.SerializationError(
            f"PostgreSQL could not serialize this transaction with a concurrent one and rolled it back: "
            f"{detail}{suffix} ({where}); rerun the whole transaction (db.with_transaction does)"
        )
    if state == "40P01":
        return errors.DeadlockError(
            f"PostgreSQL detected a deadlock and rolled this transaction back: {detail}{suffix} ({where}); "
            "rerun the whole transaction (db.with_transaction does), and take locks in one order"
        )
    hint = ""
    if state == "42P01":
        hint = "; create the tables with `await db.use_models()` or allow implicit model setup"
    return errors.OperationalError(f"PostgreSQL error: {detail}{suffix} ({where}){hint}")


def exception_map(
    where: str,
    *,
    pool_max_size: int | None = None,
    pool_timeout: float | None = None,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
) -> ExceptionMap:
    """The map for :func:`ommi.drivers.map_exceptions` of one driver: psycopg's and the pool's exceptions.

    Args:
        where: the driver's description (``postgresql://user@host:5432/db``).
        pool_max_size: the pool size, named in pool-timeout messages.
        pool_timeout: the acquire timeout, named in pool-timeout messages.
        lock_timeout: the lock-wait bound, named in lock-timeout messages.
        statement_timeout: the statement bound, named in statement-timeout messages.
    """

    def pool_timed_out(exc: BaseException) -> errors.OmmiError:
        return errors.TimeoutError(
            f"no PostgreSQL connection became free within {pool_timeout} s: all {pool_max_size} connections "
            f"of the pool are in use ({where}); raise pool_max_size or pool_timeout, or end transactions "
            "and result iterators sooner"
        )

    def too_many_waiting(exc: BaseException) -> errors.OmmiError:
        return errors.TimeoutError(f"too many tasks are waiting for a PostgreSQL connection ({where}): {exc}")

    def pool_closed(exc: BaseException) -> errors.OmmiError:
        return errors.DatabaseClosedError(
            f"the PostgreSQL driver was closed ({where}); reopen it with `await db.open()` or `async with db:` "
            "before using it again"
        )

    def database_error(exc: BaseException) -> errors.OmmiError:
        assert isinstance(exc, psycopg.Error)
        return translate(exc, where, lock_timeout=lock_timeout, statement_timeout=statement_timeout)

    # Pool exceptions first: they are not psycopg.Error, and the order is the priority.
    return {
        PoolTimeout: pool_timed_out,
        TooManyRequests: too_many_waiting,
        PoolClosed: pool_closed,
        psycopg.Error: database_error,
    }
