"""Checks of row locks (``find(...).for_update()``) and transaction timeouts, before any I/O.

:class:`ommi.database.Executor` calls :func:`check_row_lock` for every query it
runs and ``Ommi.transaction`` calls :func:`check_timeouts`; both raise before
anything reaches the driver.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ommi.errors import ConfigurationError, TransactionError, UnsupportedFeature

if TYPE_CHECKING:
    from ommi.drivers.base import Driver
    from ommi.expressions import Query

__all__ = ["check_row_lock", "check_timeouts"]


def _absent(driver: Driver, capability: str, what: str) -> UnsupportedFeature:
    reason = driver.absent_reason(capability)
    return UnsupportedFeature(
        f"the {driver.name} driver cannot {what} (capability {capability!r} is absent for {driver.description})"
        + (f": {reason}" if reason else "")
    )


def check_row_lock(driver: Driver, query: Query, *, in_transaction: bool) -> None:
    """Refuse a ``for_update()`` query the driver cannot lock, or one run outside a transaction.

    Raises:
        UnsupportedFeature: the driver lacks ``row_locks`` (checked first: inside
            a transaction it would not lock either).
        TransactionError: the query runs on the database itself, where a lock
            would end with its own statement.
    """
    if query.lock is None:
        return
    if not driver.capabilities.row_locks:
        raise _absent(driver, "row_locks", f"lock the {query.model.cls.__name__} rows a query returns (for_update())")
    if not in_transaction:
        raise TransactionError(
            f"for_update() locks rows until the transaction ends, and this {query.model.cls.__name__} query runs "
            "outside any transaction (the lock would end with the statement): use it inside "
            "`async with db.transaction() as t:`, as `t.find(...).for_update()`"
        )


def _check_seconds(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"db.transaction(): {name} must be a number of seconds, not {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond any float: no number of seconds a database can wait
        finite = False
    if not (finite and value > 0):
        raise ConfigurationError(
            f"db.transaction(): {name} must be a finite number of seconds above 0, not {value!r} "
            "(None: the driver's setting)"
        )


def check_timeouts(driver: Driver, statement_timeout: float | None, lock_timeout: float | None) -> None:
    """Refuse transaction timeouts that are not seconds above 0, or that the driver cannot honour.

    Raises:
        ConfigurationError: a timeout is not a finite number above 0.
        UnsupportedFeature: a timeout is set and the driver lacks ``timeouts``, unless
            the driver's ``transaction_timeouts`` names that one (a driver honouring one kind).
    """
    _check_seconds("statement_timeout", statement_timeout)
    _check_seconds("lock_timeout", lock_timeout)
    if (statement_timeout is not None or lock_timeout is not None) and not driver.capabilities.timeouts:
        honoured = driver.transaction_timeouts
        given = {"statement_timeout": statement_timeout, "lock_timeout": lock_timeout}
        refused = [name for name, value in given.items() if value is not None and name not in honoured]
        if refused:
            raise _absent(driver, "timeouts", f"bound a transaction's statements or lock waits ({refused[0]}=...)")
