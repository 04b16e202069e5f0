"""``Ommi``: a database opened through a driver, and its transactions."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from ommi._logging import get_logger
from ommi.drivers.base import Driver, DriverTransaction, Operations
from ommi.errors import (
    DBStatusNoResultException,
    OmmiError,
    QueryError,
    TransactionError,
    UnsupportedFeature,
)
from ommi.models.collections import ModelCollection, get_global_collection
from ommi.models.schema import ModelSchema, get_schema
from ommi.observe import ObservedOperations
from ommi.query.ast import Comparison, Op, Query, when
from ommi.query.find import FindQuery
from ommi.results import DBAction

__all__ = ["Ommi", "Session", "Transaction", "active_database"]

M = TypeVar("M")
log = get_logger("ommi.core.database")

_active: contextvars.ContextVar[Session | None] = contextvars.ContextVar("ommi_active_database", default=None)


def active_database(purpose: str = "this operation") -> Session:
    """The database (or transaction) of the innermost ``async with`` in this context.

    Raises:
        OmmiError: no database is active.
    """
    session = _active.get()
    if session is None:
        raise OmmiError(f"{purpose} needs an active database: run it inside `async with Ommi(driver) as db:`")
    return session


def _key_query(schema: ModelSchema, instance: Any) -> Query:
    conditions = [Comparison(f, Op.EQ, value) for f, value in zip(schema.key, schema.key_values(instance), strict=True)]
    return Query(schema, when(*conditions))


class Session:
    """What ``Ommi`` and its transactions share: ``add``, ``find`` and the model methods."""

    def _database(self) -> Ommi:
        raise NotImplementedError

    def _target(self) -> Operations:
        raise NotImplementedError

    async def _operations(self, schemas: Iterable[ModelSchema]) -> Operations:
        """The operations target (reporting each operation), after implicit setup of the models involved."""
        database = self._database()
        await database._ensure_models(schemas)
        return ObservedOperations(self._target(), database.driver.name)

    def _batch_size(self) -> int:
        return self._database().driver.default_batch_size

    def add(self, *models: Any) -> DBAction[Any]:
        """Insert model instances; generated int keys are set on them.

        The action's value is the instance when one was given, else the list.
        """
        return DBAction(lambda: self._add(models))

    async def _add(self, models: tuple[Any, ...]) -> Any:
        if not models:
            raise QueryError("add() needs at least one model instance")
        groups: dict[int, tuple[ModelSchema, list[Any]]] = {}
        for instance in models:
            schema = get_schema(instance)
            groups.setdefault(id(schema), (schema, []))[1].append(instance)
        encoded = [(schema, items, [schema.encode_instance(i) for i in items]) for schema, items in groups.values()]
        ops = await self._operations(schema for schema, _, _ in encoded)
        if len(encoded) > 1 and isinstance(self, Ommi) and self.driver.capabilities.transactions:
            # Several models: all or nothing, like a single insert (where the driver can).
            try:
                async with self.transaction() as tx:
                    for schema, items, rows in encoded:
                        await tx._insert(schema, items, rows)
            except BaseException:
                # Rolled back: keys generated for the earlier groups no longer exist.
                for schema, items, rows in encoded:
                    _forget_generated_keys(schema, items, rows)
                raise
        else:
            for schema, items, rows in encoded:
                await _insert(ops, schema, items, rows)
        return models[0] if len(models) == 1 else list(models)

    def find(self, *predicates: Any) -> FindQuery[Any]:
        """Start a query: a model class and/or conditions (see :class:`~ommi.query.find.FindQuery`)."""
        return FindQuery(self, predicates)

    def save(self, instance: Any) -> DBAction[Any]:
        """Write every field of ``instance`` to its row by key; insert it when the row is missing."""
        return DBAction(lambda: self._save(instance))

    async def _save(self, instance: Any) -> Any:
        schema = get_schema(instance)
        row = schema.encode_instance(instance)
        ops = await self._operations((schema,))
        if any(value is None for value in schema.key_values(instance)):
            await _insert(ops, schema, [instance], [row])
            return instance
        values = {f: row[f.index] for f in schema.fields if not f.key}
        query = _key_query(schema, instance)
        if values:
            if await ops.update(query, values):
                return instance
        elif await ops.count(query):
            return instance
        await _insert(ops, schema, [instance], [row])
        return instance

    def remove(self, instance: Any) -> DBAction[int]:
        """Delete the row of ``instance`` by key; gives the number deleted (0 or 1)."""
        return DBAction(lambda: self._remove(instance))

    async def _remove(self, instance: Any) -> int:
        schema = get_schema(instance)
        ops = await self._operations((schema,))
        return await ops.delete(_key_query(schema, instance))

    def reload(self, instance: Any) -> DBAction[Any]:
        """Refresh the fields of ``instance`` from its row by key."""
        return DBAction(lambda: self._reload(instance))

    async def _reload(self, instance: Any) -> Any:
        schema = get_schema(instance)
        ops = await self._operations((schema,))
        query = _key_query(schema, instance)
        batches = ops.fetch(query, 1)
        try:
            rows: list[tuple[Any, ...]] = await anext(batches, [])
        finally:
            await batches.aclose()  # type: ignore[attr-defined]
        if not rows:
            raise DBStatusNoResultException(f"{schema.cls.__name__} {schema.key_values(instance)} no longer exists")
        for f in schema.fields:
            schema.set_value(instance, f, rows[0][f.index])
        return instance


def _forget_generated_keys(schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    """Reset the generated key of instances whose row held ``None`` (their insert was undone)."""
    auto = schema.auto_field
    if auto is not None:
        for instance, row in zip(items, rows, strict=True):
            if row[auto.index] is None:
                schema.set_value(instance, auto, None)


async def _insert(ops: Operations, schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    keys = await ops.insert(schema, rows)
    auto = schema.auto_field
    if auto is not None and keys is not None:
        for instance, row, key in zip(items, rows, keys, strict=True):
            if row[auto.index] is None:
                schema.set_value(instance, auto, key)


class Ommi(Session):
    """A database, opened through a driver.

    ``async with Ommi(driver) as db:`` opens the driver, makes ``db`` the active
    database of the context (for model methods and lazy relations) and closes
    the driver on exit.

    Args:
        driver: a driver from ``SomeDriver.connect(...)``.
        allow_implicit_model_setup: create the global collection's missing
            tables before the first operation of any kind (never drops).
    """

    def __init__(self, driver: Driver, *, allow_implicit_model_setup: bool = True) -> None:
        if not isinstance(driver, Driver):
            raise TypeError(f"Ommi() needs a driver (e.g. SQLiteDriver.connect()), not {driver!r}")
        self.driver = driver
        self.allow_implicit_model_setup = allow_implicit_model_setup
        self._ready: set[int] = set()
        self._setup_lock: asyncio.Lock | None = None
        # asyncio.Lock binds to the running loop at first use, not here.
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._tokens: list[contextvars.Token[Session | None]] = []

    def __repr__(self) -> str:
        return f"<Ommi {self.driver.description}>"

    def _database(self) -> Ommi:
        return self

    def _target(self) -> Operations:
        return self.driver

    async def open(self) -> Ommi:
        """Open the driver (done by ``async with`` or the first operation); concurrent calls open it once."""
        if self._opened:
            return self
        async with self._open_lock:
            if not self._opened:
                self._setup_lock = asyncio.Lock()
                await self.driver.open()
                self._opened = True
                log.debug("database.open", driver=self.driver.name)
        return self

    async def close(self) -> None:
        """Close the driver; safe to call twice."""
        if self._opened:
            self._opened = False
            await self.driver.close()
            log.debug("database.close", driver=self.driver.name)

    async def __aenter__(self) -> Ommi:
        await self.open()
        self._tokens.append(_active.set(self))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tokens:
            _active.reset(self._tokens.pop())
        await asyncio.shield(self.close())

    async def _ensure_models(self, schemas: Iterable[ModelSchema]) -> None:
        if not self._opened:
            await self.open()
        pending = [s for s in schemas if id(s) not in self._ready]
        if not pending or not self.allow_implicit_model_setup:
            return
        global_models = get_global_collection()
        if not any(s.cls in global_models for s in pending):
            return
        assert self._setup_lock is not None
        async with self._setup_lock:
            todo = [get_schema(m) for m in global_models if id(get_schema(m)) not in self._ready]
            if todo:
                started = time.perf_counter()
                await self.driver.apply_schema(todo)
                self._ready.update(id(s) for s in todo)
                log.debug(
                    "schema.implicit_setup",
                    driver=self.driver.name,
                    models=[s.name for s in todo],
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )

    async def use_models(self, collection: ModelCollection | None = None) -> None:
        """Create the missing tables and indexes of ``collection`` (default: global).

        Never drops or empties anything.

        Raises:
            SchemaMismatchError: a stored table differs from its model.
        """
        await self.open()
        schemas = [get_schema(m) for m in (collection if collection is not None else get_global_collection())]
        await self.driver.apply_schema(schemas)
        self._ready.update(id(s) for s in schemas)

    async def remove_models(self, collection: ModelCollection | None = None) -> None:
        """Drop the tables of ``collection`` (default: global), with their data."""
        await self.open()
        schemas = [get_schema(m) for m in (collection if collection is not None else get_global_collection())]
        await self.driver.drop_schema(schemas)
        self._ready.difference_update(id(s) for s in schemas)

    def transaction(self) -> Transaction:
        """A transaction on a connection of its own: ``async with db.transaction() as t:``.

        Commits when the block ends normally, rolls back when it raises or is cancelled.
        """
        if not self.driver.capabilities.transactions:
            reason = self.driver.absent_reason("transactions")
            raise UnsupportedFeature(
                f"the {self.driver.name} driver does not support transactions "
                f"(capability 'transactions' is absent for {self.driver.description})"
                + (f": {reason}" if reason else "")
            )
        return Transaction(self)


class Transaction(Session):
    """An open transaction: ``add``, ``find`` and model methods run inside it."""

    def __init__(self, database: Ommi) -> None:
        self._db = database
        self._tx: DriverTransaction | None = None
        self._state = "new"
        self._token: contextvars.Token[Session | None] | None = None

    def _database(self) -> Ommi:
        return self._db

    def _target(self) -> Operations:
        if self._state != "open" or self._tx is None:
            raise TransactionError(f"the transaction is {self._state}; start a new one with db.transaction()")
        return self._tx

    async def _insert(self, schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> None:
        await _insert(ObservedOperations(self._target(), self._db.driver.name), schema, items, rows)

    async def __aenter__(self) -> Transaction:
        if self._state != "new":
            raise TransactionError("a transaction can be entered only once")
        await self._db._ensure_models(get_schema(m) for m in get_global_collection())
        self._tx = await self._db.driver.begin()
        self._state = "open"
        self._token = _active.set(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _active.reset(self._token)
            self._token = None
        if self._state != "open":
            return
        if exc_type is None:
            await self.commit()
        else:
            await self._finish(rollback=True)

    async def commit(self) -> None:
        """Commit now; the transaction cannot be used afterwards."""
        await self._finish(rollback=False)

    async def rollback(self) -> None:
        """Roll back now; the transaction cannot be used afterwards."""
        await self._finish(rollback=True)

    async def _finish(self, *, rollback: bool) -> None:
        """Commit or roll back, shielded: a cancelled caller still waits for the end of it."""
        tx = self._tx
        if self._state != "open" or tx is None:
            raise TransactionError(f"the transaction is already {self._state}")
        self._state = "rolled back" if rollback else "committed"
        task = asyncio.ensure_future(tx.rollback() if rollback else tx.commit())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait([task])
            raise
        except OmmiError:
            if rollback:
                # A failed rollback must not mask the error that caused it.
                log.warning("transaction.rollback.failed", driver=self._db.driver.name, exc_info=True)
                return
            raise
