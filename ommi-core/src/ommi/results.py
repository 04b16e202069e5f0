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

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

__all__ = ["DBAction", "DBQueryResult", "DBResult"]

T = TypeVar("T")
D = TypeVar("D")


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
class DBSuccess(DBResult[T]):
    """The operation succeeded with ``value``."""

    value: T

    def or_raise(self) -> T:
        return self.value

    def or_use(self, default: D) -> T | D:
        return self.value


@dataclass(frozen=True, slots=True)
class DBFailure(DBResult[T]):
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
class DBQuerySuccess(DBQueryResult[T]):
    """The query succeeded with ``value``."""

    value: T

    def or_raise(self) -> T:
        return self.value

    def or_use(self, default: D) -> T | D:
        return self.value


@dataclass(frozen=True, slots=True)
class DBQueryFailure(DBQueryResult[T]):
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

    Each await runs the operation again.
    """

    __slots__ = ("_query", "_run")

    def __init__(self, run: Callable[[], Awaitable[T]], *, query: bool = False) -> None:
        self._run = run
        self._query = query

    async def result(self) -> DBResult[T] | DBQueryResult[T]:
        """Run the operation and capture its outcome."""
        try:
            value = await self._run()
        except Exception as exc:  # noqa: BLE001 - captured on purpose, returned as a failure
            return DBQueryFailure(exc) if self._query else DBFailure(exc)
        return DBQuerySuccess(value) if self._query else DBSuccess(value)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    async def or_raise(self) -> T:
        """Run the operation and return its value, raising its exception on failure."""
        return await self._run()

    async def or_use(self, default: D) -> T | D:
        """Run the operation and return its value, or ``default`` on failure."""
        try:
            return await self._run()
        except Exception:  # noqa: BLE001 - the caller asked for a default instead
            return default

    def __call__(self) -> DBAction[T]:
        """``.one()`` and ``.one`` are the same action."""
        return self
