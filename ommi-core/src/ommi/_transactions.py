"""Savepoints, isolation levels and retried transactions: the logic behind ``t.transaction()`` and ``with_transaction``.

:mod:`ommi.database` keeps the classes (``Transaction`` and its
``Savepoint``); what they do beyond a plain transaction is here:

* :func:`check_options`: ``db.transaction(isolation=...)`` checked against
  the driver's capabilities before any I/O;
* :func:`enter_savepoint` / :func:`exit_savepoint`: a savepoint's life. The
  savepoints of one transaction form a stack; only the innermost open level
  (the transaction itself when none is open) takes operations, so a task
  using the outer transaction while another task's savepoint is open gets a
  :class:`~ommi.errors.TransactionError` instead of writing into that
  savepoint. Each driver call runs to its end even when the task is
  cancelled (the cancellation propagates afterwards), so a savepoint is never
  left half made, half released or half rolled back;
* :func:`run_with_retries`: ``db.with_transaction(fn)``, rerunning ``fn`` in a
  new transaction after a :class:`~ommi.errors.SerializationError`, with
  jittered exponential backoff (:func:`retry_delay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ommi._logging import get_logger
from ommi.drivers.base import Driver, TransactionOptions
from ommi.errors import OmmiError, SerializationError, TransactionError, UnsupportedFeature, ValidationError

if TYPE_CHECKING:
    from ommi.database import Savepoint, Transaction
    from ommi.models.schema import ModelSchema

__all__ = [
    "ISOLATION_LEVELS",
    "MAX_BACKOFF",
    "check_options",
    "check_retry_arguments",
    "enter_savepoint",
    "exit_savepoint",
    "new_savepoint_name",
    "retry_delay",
    "run_with_retries",
]

T = TypeVar("T")
log = get_logger("ommi.core.transactions")

ISOLATION_LEVELS = ("read_committed", "repeatable_read", "serializable")
"""The levels ``db.transaction(isolation=...)`` accepts, weakest first."""

MAX_BACKOFF = 5.0
"""Seconds: the longest delay a number ``backoff`` grows to (unless ``backoff`` itself is longer)."""

Generated = list[tuple["ModelSchema", Sequence[Any], Sequence[tuple[Any, ...]]]]
"""Inserts whose keys the database generated: forgotten when what inserted them is rolled back."""


async def _settle(task: asyncio.Future[Any]) -> Any:
    """Wait for ``task`` to finish even if the caller is cancelled meanwhile, any number of times.

    Gives the task's result or raises its exception; when the caller was
    cancelled, raises that ``CancelledError`` once the task has finished.
    """
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError as exc:
        if task.cancelled():
            raise  # the task itself was cancelled, not the caller
        cancelled = exc
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved: the caller's cancellation is what propagates
    raise cancelled


def _forget_generated_keys(schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    """Reset the generated key of instances whose row held ``None`` (their insert was undone)."""
    auto = schema.auto_field
    if auto is not None:
        for instance, row in zip(items, rows, strict=True):
            if row[auto.index] is None:
                schema.set_value(instance, auto, None)


def forget_all(generated: Generated) -> None:
    """Reset the generated keys of every insert in ``generated``, and empty it."""
    for schema, items, rows in generated:
        _forget_generated_keys(schema, items, rows)
    generated.clear()


# -- isolation levels ---------------------------------------------------------------


def check_options(driver: Driver, options: TransactionOptions) -> None:
    """Refuse options the driver cannot honour, before any I/O.

    Raises:
        ValidationError: ``isolation`` is not one of :data:`ISOLATION_LEVELS` (the message lists them).
        UnsupportedFeature: the driver lacks the capability ``isolation_levels``,
            or does not offer this level (the message names both).
    """
    level = options.isolation
    if level is None:
        return
    if not isinstance(level, str) or level not in ISOLATION_LEVELS:
        raise ValidationError(
            f"unknown isolation level {level!r}; use one of {', '.join(repr(v) for v in ISOLATION_LEVELS)} "
            "(or None for the database's default)"
        )
    if driver.capabilities.isolation_levels and level in driver.supported_isolation_levels:
        return
    reason = driver.absent_reason("isolation_levels")
    if driver.capabilities.isolation_levels:
        offered = ", ".join(repr(v) for v in ISOLATION_LEVELS if v in driver.supported_isolation_levels)
        detail = f"it offers {offered}"
    else:
        detail = f"capability 'isolation_levels' is absent for {driver.description}"
    raise UnsupportedFeature(
        f"the {driver.name} driver cannot run a transaction at isolation level {level!r} ({detail})"
        + (f": {reason}" if reason else "")
    )


# -- savepoints -----------------------------------------------------------------------


def new_savepoint_name() -> str:
    """A savepoint name no application or driver uses: ``ommi_sp_`` and 16 random hex digits."""
    return f"ommi_sp_{secrets.token_hex(8)}"


def check_savepoints(driver: Driver) -> None:
    """Refuse ``t.transaction()`` before any I/O when the driver has no savepoints."""
    if not driver.capabilities.savepoints:
        reason = driver.absent_reason("savepoints")
        raise UnsupportedFeature(
            f"the {driver.name} driver cannot nest a transaction in a transaction (capability 'savepoints' "
            f"is absent for {driver.description})" + (f": {reason}" if reason else "")
        )


class _Level(Protocol):
    """A level that takes operations: the transaction, or one of its savepoints."""

    _state: str
    _generated: Generated


async def enter_savepoint(savepoint: Savepoint) -> None:
    """Make the savepoint (``SAVEPOINT``) on the transaction's connection.

    Its parent must be the innermost open level of the transaction. The slot
    on the stack is taken before the first await, so two tasks opening a
    savepoint in one transaction at once cannot both succeed.

    Raises:
        TransactionError: entered twice, or its parent is not the innermost
            open level (ended, or another savepoint is open inside it).
    """
    if savepoint._state != "new":
        raise TransactionError("a savepoint can be entered only once; open a new one with t.transaction()")
    root, parent = savepoint._root, savepoint._parent
    stack = root._savepoints
    if parent._state != "open":
        raise TransactionError(f"cannot open a savepoint: the transaction it belongs to is {parent._state}")
    innermost: _Level = stack[-1] if stack else root
    if innermost is not parent:
        raise TransactionError(
            "cannot open a savepoint here: a savepoint opened inside this transaction is still open; "
            "only the innermost open one takes operations (another task's, or one not exited yet)"
        )
    tx = root._driver_transaction()
    savepoint._state = "opening"
    stack.append(savepoint)
    task = asyncio.ensure_future(tx.savepoint(savepoint._name))
    try:
        await _settle(task)
    except BaseException:
        stack.remove(savepoint)
        savepoint._state = "rolled back"
        if task.done() and not task.cancelled() and task.exception() is None:
            # Cancelled once the savepoint existed: nothing ran in it; take it away again.
            undo = asyncio.ensure_future(tx.release_savepoint(savepoint._name))
            try:
                await _settle(undo)
            except OmmiError as exc:
                root._poison(f"a savepoint could not be released after its opening was cancelled ({exc})")
        raise
    savepoint._state = "open"


async def exit_savepoint(savepoint: Savepoint, *, failed: bool, error: BaseException | None) -> None:
    """Release the savepoint (block ended normally) or roll back to it (``failed``: ``error`` propagates).

    Raises:
        TransactionError: the savepoint was ended by its transaction, or it
            exits while a savepoint opened inside it is still open (everything
            since it began is rolled back), or its release failed (rolled back).
    """
    if savepoint._state == "ended":
        if not failed:
            raise TransactionError(
                "the savepoint was rolled back because its transaction ended (or a savepoint around it exited) "
                "while it was open"
            )
        return
    if savepoint._state != "open":
        return  # released or rolled back explicitly inside the block
    stack = savepoint._root._savepoints
    inner = stack[stack.index(savepoint) + 1 :]
    if inner:
        await finish_savepoint(savepoint, rollback=True)
        raise TransactionError(
            f"a savepoint exited while {len(inner)} savepoint(s) opened inside it were still open; everything "
            "since it began was rolled back (exit savepoints innermost first)"
        ) from error
    await finish_savepoint(savepoint, rollback=failed)


async def finish_savepoint(savepoint: Savepoint, *, rollback: bool) -> None:
    """Release the savepoint or roll back to it, shielded; savepoints opened inside it end with it.

    A rollback that fails poisons the transaction (it can then only roll
    back) and does not raise: the error that caused it is the one to see. A
    release that fails (PostgreSQL refuses it after a failed statement the
    block caught) is followed by a rollback to the savepoint, and raised.

    Raises:
        TransactionError: the savepoint is not open.
    """
    if savepoint._state != "open":
        raise TransactionError(f"the savepoint is already {savepoint._state}")
    root, parent = savepoint._root, savepoint._parent
    stack = root._savepoints
    position = stack.index(savepoint)
    try:
        tx = root._driver_transaction()
    except OmmiError:
        # The transaction cannot go on (the database was closed...): it rolls back as a whole.
        for ended in stack[position:]:
            ended._state = "ended"
            forget_all(ended._generated)
        del stack[position:]
        if rollback:
            return  # the block's own error is the one to see
        raise
    for inner in stack[position + 1 :]:
        inner._state = "ended"
        forget_all(inner._generated)
    del stack[position + 1 :]
    savepoint._state = "rolled back" if rollback else "released"
    try:
        if not rollback:
            release = asyncio.ensure_future(tx.release_savepoint(savepoint._name))
            try:
                await _settle(release)
            except OmmiError:
                savepoint._state = "rolled back"
                rollback = True
                await _rollback_to(savepoint)
                raise
        else:
            await _rollback_to(savepoint)
    finally:
        stack.remove(savepoint)
        if rollback:
            forget_all(savepoint._generated)
        else:
            parent._generated.extend(savepoint._generated)
            savepoint._generated.clear()


async def _rollback_to(savepoint: Savepoint) -> None:
    """``ROLLBACK TO`` the savepoint, settled; a failure poisons the transaction instead of raising."""
    root = savepoint._root
    undo = asyncio.ensure_future(root._driver_transaction().rollback_to_savepoint(savepoint._name))
    try:
        await _settle(undo)
    except OmmiError as exc:
        log.warning("savepoint.rollback.failed", driver=root._db.driver.name, exc_info=True)
        root._poison(f"rolling back to a savepoint failed ({exc})")


def end_savepoints(root: Transaction) -> int:
    """Mark every open savepoint of ``root`` ended (its transaction is ending); how many were open."""
    stack = root._savepoints
    count = len(stack)
    for savepoint in stack:
        savepoint._state = "ended"
        forget_all(savepoint._generated)
    stack.clear()
    return count


# -- retried transactions ------------------------------------------------------------


def check_retry_arguments(fn: object, retries: object, backoff: object) -> None:
    """Refuse bad ``with_transaction`` arguments before any I/O.

    Raises:
        ValidationError: ``fn`` is not callable, ``retries`` is not an int >= 0,
            or ``backoff`` is neither a finite number >= 0 nor a callable.
    """
    if not callable(fn):
        raise ValidationError(f"with_transaction() needs an async function taking the transaction, not {fn!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValidationError(
            f"with_transaction(retries=...) must be an int >= 0 (reruns after the first run), not {retries!r}"
        )
    if callable(backoff):
        return
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not math.isfinite(backoff) or backoff < 0:
        raise ValidationError(
            "with_transaction(backoff=...) must be seconds (a finite number >= 0) or a function of the retry "
            f"number giving seconds, not {backoff!r}"
        )


def retry_delay(backoff: float | Callable[[int], float], retry: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before rerun number ``retry`` (1 for the first rerun).

    A number ``backoff`` is the base of a jittered exponential backoff: a
    random delay between half and all of ``backoff * 2 ** (retry - 1)``,
    that ceiling never above ``max(backoff, MAX_BACKOFF)``. Jitter keeps
    transactions that conflicted once from meeting again at the same moment.
    A callable ``backoff`` gets ``retry`` and gives the delay itself.

    Raises:
        ValidationError: a callable ``backoff`` gave something other than a finite number >= 0.
    """
    if callable(backoff):
        delay = backoff(retry)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
            raise ValidationError(f"the backoff function gave {delay!r} for retry {retry}, not seconds >= 0")
        return float(delay)
    ceiling = min(backoff * 2.0 ** min(retry - 1, 64), max(backoff, MAX_BACKOFF))
    return ceiling * (0.5 + (rng or random).random() / 2)


async def run_with_retries(
    begin: Callable[[], Transaction],
    fn: Callable[[Transaction], Awaitable[T]],
    *,
    retries: int,
    backoff: float | Callable[[int], float],
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``fn(t)`` in ``begin()``'s transaction; rerun it after a serialization failure, ``retries`` times at most.

    Only :class:`~ommi.errors.SerializationError` (``DeadlockError`` and
    ``BusyError`` too) reruns, and only when the transaction did not
    commit: such an error means the database rolled the transaction back,
    so nothing of the attempt stays. Every other exception, a cancellation
    included, propagates at once, after the transaction rolled back (the
    rollback resets keys generated in the attempt). A commit that may have
    succeeded (the connection broke during ``COMMIT``: ``ConnectionError``)
    is never rerun. When the reruns run out, the last error propagates.
    """
    retry = 0
    while True:
        transaction = begin()
        try:
            async with transaction:
                result = await fn(transaction)
        except SerializationError as exc:
            if transaction.committed or retry >= retries:
                raise
            retry += 1
            delay = retry_delay(backoff, retry, rng)
            log.info(
                "transaction.retry",
                driver=transaction._db.driver.name,
                retry=retry,
                retries=retries,
                delay_ms=round(delay * 1000, 3),
                error=type(exc).__name__,
            )
            del exc
            await sleep(delay)
            continue
        return result
