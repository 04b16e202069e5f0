"""Structured query events and the recorders tests use to count queries.

Every operation core sends to a driver produces one event: logged through
structlog as ``query.execute.complete`` (or ``query.execute.failed``) with
``driver``, ``model``, ``operation``, ``rows`` and ``duration_ms`` at debug
level, and appended to every active :class:`QueryRecorder`
(see :func:`ommi.testing.record_queries`). Parameter values are never part of
an event.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ommi._logging import get_logger
from ommi.drivers.base import Operations

if TYPE_CHECKING:
    from ommi.drivers.base import Row
    from ommi.expressions import Query
    from ommi.models.schema import Field, ModelSchema
    from ommi.query.aggregate import Aggregation

__all__ = ["ObservedOperations", "QueryEvent", "QueryRecorder", "observe"]

T = TypeVar("T")
log = get_logger("ommi.core.query")


@dataclass(frozen=True, slots=True)
class QueryEvent:
    """One operation sent to a driver."""

    driver: str
    model: str
    operation: str
    """``insert``, ``select``, ``count``, ``exists``, ``aggregate``, ``update``, ``delete``, ``upsert`` or ``raw``.

    ``.values(...)`` reads are ``select`` events too; a ``raw`` statement has
    no model (``model`` is ``""``); an ``aggregate`` event's ``rows`` is the number of groups.
    """
    rows: int | None
    """Rows written, matched or returned (for ``select``: the first batch; for ``aggregate``: the groups), if known."""
    duration_ms: float
    error: str | None = None
    """The exception class name when the operation failed."""


class QueryRecorder:
    """Collects :class:`QueryEvent` objects while active."""

    def __init__(self) -> None:
        self.events: list[QueryEvent] = []

    def __len__(self) -> int:
        return len(self.events)

    @property
    def count(self) -> int:
        """Number of operations recorded."""
        return len(self.events)

    def of(self, operation: str | None = None, model: str | None = None) -> list[QueryEvent]:
        """Events filtered by operation and/or model name."""
        return [
            e
            for e in self.events
            if (operation is None or e.operation == operation) and (model is None or e.model == model)
        ]


_recorders: contextvars.ContextVar[tuple[QueryRecorder, ...]] = contextvars.ContextVar(
    "ommi_query_recorders", default=()
)


async def observe(
    driver: str, model: str, operation: str, run: Callable[[], Awaitable[T]], rows: Callable[[T], int | None]
) -> T:
    """Run one driver operation, timing it and reporting the event."""
    recorders = _recorders.get()
    logging_on = log.is_enabled_for(logging.DEBUG)
    if not recorders and not logging_on:
        return await run()
    started = time.perf_counter()
    try:
        result = await run()
    except Exception as exc:
        _report(recorders, logging_on, QueryEvent(driver, model, operation, None, _ms(started), type(exc).__name__))
        raise
    _report(recorders, logging_on, QueryEvent(driver, model, operation, rows(result), _ms(started)))
    return result


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _report(recorders: tuple[QueryRecorder, ...], logging_on: bool, event: QueryEvent) -> None:
    for recorder in recorders:
        recorder.events.append(event)
    if logging_on:
        name = "query.execute.failed" if event.error else "query.execute.complete"
        log.debug(
            name,
            driver=event.driver,
            model=event.model,
            operation=event.operation,
            rows=event.rows,
            duration_ms=event.duration_ms,
            error=event.error,
        )


class ObservedOperations(Operations):
    """Wraps a driver's (or transaction's) operations so each one is reported."""

    __slots__ = ("_driver", "_ops")

    def __init__(self, ops: Operations, driver: str) -> None:
        self._ops = ops
        self._driver = driver

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        return await observe(
            self._driver, schema.name, "insert", lambda: self._ops.insert(schema, rows), lambda _: len(rows)
        )

    async def upsert(self, schema: ModelSchema, rows: Sequence[Row], on: Sequence[Field]) -> Sequence[Any] | None:
        return await observe(
            self._driver, schema.name, "upsert", lambda: self._ops.upsert(schema, rows, on), lambda _: len(rows)
        )

    def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        return self._observed_stream(query, self._ops.fetch(query, batch_size))

    def fetch_values(
        self, query: Query, fields: Sequence[Field], distinct: bool, batch_size: int
    ) -> AsyncGenerator[list[Row], None]:
        return self._observed_stream(query, self._ops.fetch_values(query, fields, distinct, batch_size))

    async def _observed_stream(
        self, query: Query, batches: AsyncGenerator[list[Row], None]
    ) -> AsyncGenerator[list[Row], None]:
        """``batches`` passed through, its first batch observed as one ``select`` event."""
        try:
            first = await observe(
                self._driver,
                query.model.name,
                "select",
                lambda: anext(batches, None),
                lambda b: 0 if b is None else len(b),
            )
            if first is None:
                return
            yield first
            async for batch in batches:
                yield batch
        finally:
            await batches.aclose()

    async def exists(self, query: Query) -> bool:
        return await observe(
            self._driver, query.model.name, "exists", lambda: self._ops.exists(query), lambda found: int(found)
        )

    async def raw(
        self, statement: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return await observe(self._driver, "", "raw", lambda: self._ops.raw(statement, params), len)

    async def count(self, query: Query) -> int:
        return await observe(self._driver, query.model.name, "count", lambda: self._ops.count(query), lambda n: n)

    async def delete(self, query: Query) -> int:
        return await observe(self._driver, query.model.name, "delete", lambda: self._ops.delete(query), lambda n: n)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        return await observe(
            self._driver, query.model.name, "update", lambda: self._ops.update(query, values), lambda n: n
        )

    async def aggregate(self, query: Query, aggregation: Aggregation) -> list[Row]:
        return await observe(
            self._driver,
            query.model.name,
            "aggregate",
            lambda: self._ops.aggregate(query, aggregation),
            len,
        )
