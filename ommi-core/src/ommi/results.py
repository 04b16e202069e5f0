"""Result values and the awaitable actions that produce them.

Every operation returns an action: awaiting it gives a result object that holds
either the value or the exception, and ``.or_raise()`` / ``.or_use(default)``
unwrap it directly::

    match await db.add(user):
        case DBResult.DBSuccess(value): ...
        case DBResult.DBFailure(exception): ...

    user = await db.add(user).or_raise()
    count = await db.find(User).count.or_use(0)

Only :class:`Exception` subclasses are captured; cancellation always propagates.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

from ommi.errors import RemovedAttributeError

__all__ = ["DBAction", "DBQueryResult", "DBResult"]

T = TypeVar("T")
D = TypeVar("D")


_REMOVED = {
    "result": "Ommi 0.2's .result is .value now (`case {success}(value):` in a match), or get the value "
    "directly with `await action.or_raise()`",
    "result_or": "Ommi 0.2's .result_or(default) is .or_use(default) now (on the action too: "
    "`await action.or_use(default)`)",
    "exception_or": "Ommi 0.2's .exception_or(default) was removed: a failure holds .exception "
    "(`case {failure}(exception):` in a match), and .or_raise() raises it",
    "exception": "a success holds no exception (Ommi 0.2 raised DBStatusNoResultException here); a failure "
    "does: `case {failure}(exception):` in a match",
}
"""Ommi 0.2's attributes of a result, with what replaced each (a failure does have ``exception``)."""


class _Unwrap:
    """What a result says when it is used as the value it wraps (``(await db.add(u)).id``)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # protocols probed by copy, pickle, inspect...: the usual error
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if name in _REMOVED:
            query = isinstance(self, (DBQuerySuccess, DBQueryFailure))
            hint = _REMOVED[name].format(
                success="DBQueryResult.DBQuerySuccess" if query else "DBResult.DBSuccess",
                failure="DBQueryResult.DBQueryFailure" if query else "DBResult.DBFailure",
            )
            if isinstance(self, (DBFailure, DBQueryFailure)):
                hint += f"; this operation failed ({self.exception!r})"
            raise RemovedAttributeError(f"{type(self).__name__}.{name}: {hint}", name=name, obj=self)
        if isinstance(self, (DBFailure, DBQueryFailure)):
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}: the operation failed "
                f"({self.exception!r}); use .or_raise() to raise that error or .or_use(default)"
            )
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}: it wraps the operation's value; "
            f"write result.value.{name}, or get the value directly with `await ....or_raise()`"
        )

    def __iter__(self) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__!r} object is not iterable: it wraps the operation's value; iterate "
            "the matches with `async for item in db.find(...).all:`, or get a list with "
            "`await db.find(...).all.to_list()`"
        )


class DBResult(Generic[T]):
    """The outcome of a write: :class:`DBResult.DBSuccess` or :class:`DBResult.DBFailure`."""

    __slots__ = ()

    def or_raise(self) -> T:
        """The value, or raise the captured exception."""
        raise NotImplementedError

    def or_use(self, default: D) -> T | D:
        """The value, or ``default`` on failure."""
        raise NotImplementedError

    DBSuccess: type[DBSuccess[Any]]
    DBFailure: type[DBFailure[Any]]


@dataclass(frozen=True, slots=True)
class DBSuccess(_Unwrap, DBResult[T]):
    """The operation succeeded with ``value``."""

    value: T

    def or_raise(self) -> T:
        return self.value

    def or_use(self, default: D) -> T | D:
        return self.value


@dataclass(frozen=True, slots=True)
class DBFailure(_Unwrap, DBResult[T]):
    """The operation failed with ``exception``."""

    exception: Exception

    def or_raise(self) -> NoReturn:
        raise self.exception

    def or_use(self, default: D) -> D:
        return default


DBResult.DBSuccess = DBSuccess
DBResult.DBFailure = DBFailure


class DBQueryResult(Generic[T]):
    """The outcome of a query: :class:`DBQueryResult.DBQuerySuccess` or ``.DBQueryFailure``."""

    __slots__ = ()

    def or_raise(self) -> T:
        """The value, or raise the captured exception."""
        raise NotImplementedError

    def or_use(self, default: D) -> T | D:
        """The value, or ``default`` on failure."""
        raise NotImplementedError

    DBQuerySuccess: type[DBQuerySuccess[Any]]
    DBQueryFailure: type[DBQueryFailure[Any]]


@dataclass(frozen=True, slots=True)
class DBQuerySuccess(_Unwrap, DBQueryResult[T]):
    """The query succeeded with ``value``."""

    value: T

    def or_raise(self) -> T:
        return self.value

    def or_use(self, default: D) -> T | D:
        return self.value


@dataclass(frozen=True, slots=True)
class DBQueryFailure(_Unwrap, DBQueryResult[T]):
    """The query failed with ``exception``."""

    exception: Exception

    def or_raise(self) -> NoReturn:
        raise self.exception

    def or_use(self, default: D) -> D:
        return default


DBQueryResult.DBQuerySuccess = DBQuerySuccess
DBQueryResult.DBQueryFailure = DBQueryFailure


class DBAction(Generic[T]):
    """A not-yet-run operation: await it for a result, or use ``or_raise`` / ``or_use``.

    Each await runs the operation again. An action collected without ever
    being run warns (``RuntimeWarning``), as a coroutine never awaited does:
    ``db.add(user)`` without ``await`` stores nothing.
    """

    __slots__ = ("_query", "_ran", "_run", "_what")

    def __init__(
        self, run: Callable[[], Coroutine[Any, Any, T]], *, query: bool = False, what: str = "operation"
    ) -> None:
        self._run = run
        self._query = query
        self._what = what
        self._ran = False

    def __del__(self) -> None:
        if not self._ran:
            warnings.warn(
                f"the Ommi action {self._what} was never awaited, so it did not run: write "
                f"`await ...{self._what}` (or `.or_raise()` / `.or_use(default)` after it)",
                RuntimeWarning,
                stacklevel=1,
            )

    def _consumed(self) -> None:
        """Mark the action as used: it ran, or was turned into another action that will."""
        self._ran = True

    # Each entry point marks the action used when it is called, not when its
    # coroutine starts: a task cancelled before its first step never runs the
    # body, and that is not a forgotten await.

    def result(self) -> Coroutine[Any, Any, DBResult[T] | DBQueryResult[T]]:
        """Run the operation and capture its outcome."""
        self._ran = True
        return self._result()

    async def _result(self) -> DBResult[T] | DBQueryResult[T]:
        try:
            value = await self._run()
        except Exception as exc:  # noqa: BLE001 - captured on purpose, returned as a failure
            return DBQueryFailure(exc) if self._query else DBFailure(exc)
        return DBQuerySuccess(value) if self._query else DBSuccess(value)

    def __await__(self) -> Generator[Any, None, DBResult[T] | DBQueryResult[T]]:
        return self.result().__await__()

    def or_raise(self) -> Coroutine[Any, Any, T]:
        """Run the operation and return its value, raising its exception on failure."""
        self._ran = True
        return self._run()

    def or_use(self, default: D) -> Coroutine[Any, Any, T | D]:
        """Run the operation and return its value, or ``default`` on failure."""
        self._ran = True
        return self._or_use(default)

    async def _or_use(self, default: D) -> T | D:
        try:
            return await self._run()
        except Exception:  # noqa: BLE001 - the caller asked for a default instead
            return default

    def __call__(self) -> DBAction[T]:
        """``.one()`` and ``.one`` are the same action."""
        return self
