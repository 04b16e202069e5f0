"""``Ommi``: a database opened through a driver, and its transactions.

Both are an :class:`Executor`: what runs ``add``, ``find``, ``save``, ``remove``
and ``reload`` against a target (the driver itself, or one driver
transaction). The active executor of the context lives in :mod:`ommi._context`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import decimal
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload

from ommi import _transactions
from ommi._context import _active, active_database
from ommi._locks import check_row_lock, check_timeouts
from ommi._logging import get_logger
from ommi._transactions import _forget_generated_keys, _settle
from ommi._upsert import check_upsert, upsert_groups
from ommi.drivers.base import Driver, DriverTransaction, IsolationLevel, Operations, TransactionOptions
from ommi.errors import (
    ConfigurationError,
    DatabaseClosedError,
    DatabaseError,
    DBStatusNoResultException,
    OmmiError,
    QueryError,
    TransactionError,
    UnsupportedFeature,
    ValidationError,
)
from ommi.expressions import FOLDED_TEXT_OPS, And, Comparison, Expr, JsonComparison, JsonHas, Op, Or, Query, when
from ommi.models.collections import ModelCollection, get_global_collection
from ommi.models.schema import Field, ModelSchema, get_schema
from ommi.models.types import StorageType, check_canonical
from ommi.observe import ObservedOperations
from ommi.query.find import FindQuery
from ommi.results import DBAction

__all__ = ["Executor", "Ommi", "Savepoint", "Session", "Transaction", "active_database"]

M = TypeVar("M")
T = TypeVar("T")
log = get_logger("ommi.core.database")


def _key_query(schema: ModelSchema, instance: Any) -> Query:
    conditions = [Comparison(f, Op.EQ, value) for f, value in zip(schema.key, schema.key_values(instance), strict=True)]
    return Query(schema, when(*conditions))


def _folds_text(expr: Expr | None) -> bool:
    """Whether ``expr`` holds a case-insensitive text match (``FOLDED_TEXT_OPS``)."""
    if isinstance(expr, (And, Or)):
        return any(_folds_text(item) for item in expr.items)
    return isinstance(expr, Comparison) and expr.op in FOLDED_TEXT_OPS


class Executor:
    """What ``Ommi`` and its transactions share: ``add``, ``find`` and the model methods.

    It runs each operation against a target: the driver for :class:`Ommi`,
    one driver transaction for :class:`Transaction`. It is the
    :class:`~ommi.query.find.QueryExecutor` a ``find`` query runs on.
    """

    def _database(self) -> Ommi:
        raise NotImplementedError

    def _target(self) -> Operations:
        raise NotImplementedError

    async def _operations(self, schemas: Iterable[ModelSchema]) -> Operations:
        """The operations target (reporting each operation), after implicit setup of the models involved."""
        database = self._database()
        await database._ensure_models(schemas)
        return ObservedOperations(self._target(), database.driver.name)

    @property
    def default_batch_size(self) -> int:
        """How many rows a query fetches per batch unless ``.all(batch_size=...)`` says otherwise."""
        return self._database().driver.default_batch_size

    def require_capability(self, capability: str, action: str) -> None:
        """Raise :class:`~ommi.errors.UnsupportedFeature` when the driver lacks ``capability`` (no I/O).

        ``action`` names what needed it (``"an update expression"``); the
        message names the capability and the driver's ``absent_reason``.
        """
        driver = self._database().driver
        if not getattr(driver.capabilities, capability):
            reason = driver.absent_reason(capability)
            raise UnsupportedFeature(
                f"the {driver.name} driver cannot run {action} (capability {capability!r} is absent for "
                f"{driver.description})" + (f": {reason}" if reason else "")
            )

    async def query_operations(self, query: Query) -> Operations:
        """The operations target for ``query``, after checking the driver can run it.

        Raises:
            UnsupportedFeature: the query filters by related models and the
                driver declares ``related_conditions`` absent, or it is marked
                ``for_update()`` and the driver declares ``row_locks`` absent, or it
                matches text with ``case_sensitive=False`` and the driver declares
                ``case_insensitive_text`` absent.
            TransactionError: the query is marked ``for_update()`` and runs
                outside a transaction.
        """
        if query.lock is not None:
            check_row_lock(self._database().driver, query, in_transaction=isinstance(self, Transaction))
        if query.where is not None:
            # The condition tree is walked only for a driver lacking a capability: queries stay cheap.
            driver = self._database().driver
            if not driver.capabilities.case_insensitive_text and _folds_text(query.where):
                self.require_capability("case_insensitive_text", "a case-insensitive text match (case_sensitive=False)")
            if not driver.capabilities.json_fields and _has_json_condition(query.where):
                raise UnsupportedFeature(
                    f"the {driver.name} driver cannot query JSON fields by path or with has() "
                    "(capability 'json_fields' is absent)"
                )
        if query.joins:
            driver = self._database().driver
            if not driver.capabilities.related_conditions:
                related = ", ".join(j.model.cls.__name__ for j in query.joins)
                raise UnsupportedFeature(
                    f"the {driver.name} driver cannot filter {query.model.cls.__name__} by conditions on "
                    f"{related} (capability 'related_conditions' is absent)"
                )
        return await self._operations((query.model, *(j.model for j in query.joins)))

    @overload
    def add(self, model: M, /) -> DBAction[M]: ...
    @overload
    def add(self, *models: M) -> DBAction[list[M]]: ...
    def add(self, *models: Any) -> DBAction[Any]:
        """Insert model instances; generated int keys are set on them.

        The action's value is the instance when one was given, else the list
        (typed ``list[M]``: a type checker infers the common type of the
        instances given).
        """
        return DBAction(lambda: self._add(models), what="add(...)")

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
            tx = self.transaction()
            try:
                async with tx:
                    for schema, items, rows in encoded:
                        await tx._insert(schema, items, rows)
            except BaseException:
                # Not committed: keys generated inside the transaction no longer exist.
                # Committed, and cancelled or failed afterwards: the keys are the stored rows'.
                if not tx.committed:
                    for schema, items, rows in encoded:
                        _forget_generated_keys(schema, items, rows)
                raise
        else:
            for schema, items, rows in encoded:
                await self._insert_rows(ops, schema, items, rows)
        return models[0] if len(models) == 1 else list(models)

    async def _insert_rows(
        self, ops: Operations, schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        await _insert(ops, schema, items, rows, self._database().driver.name)

    @overload
    def upsert(self, model: M, /, *, on: Iterable[Any] | None = None) -> DBAction[M]: ...
    @overload
    def upsert(self, *models: M, on: Iterable[Any] | None = None) -> DBAction[list[M]]: ...
    def upsert(self, *models: Any, on: Iterable[Any] | None = None) -> DBAction[Any]:
        """Insert each instance, or replace the stored row with the same key (``on``: unique fields instead).

        ``on=(Model.email,)`` matches on a unique constraint of the model (its
        fields exactly, in any order) instead of the key; a matched row keeps
        its key. Keys the instances lack (generated, or the matched row's) are
        set on them. All or none per model, like ``add``; the value is the
        instance when one was given, else the list. The rules, per driver, are
        in the guide (Upsert) and :meth:`ommi.drivers.Operations.upsert`.

        Raises:
            UnsupportedFeature: the driver lacks the ``upsert`` capability.
            QueryError: ``on`` is not the key or a unique constraint of the
                model, or two instances match on equal values (before any I/O).
            ValidationError: a value does not fit its field (before any I/O).
            IntegrityError: a row breaks another unique constraint, or matched
                a row whose key differs from its own; nothing of the model is stored.
        """
        return DBAction(lambda: self._upsert(models, on), what="upsert(...)")

    async def _upsert(self, models: tuple[Any, ...], on: Iterable[Any] | None) -> Any:
        database = self._database()
        database._check_open("upsert()")
        check_upsert(database.driver)
        groups = upsert_groups(models, on)
        ops = await self._operations(schema for schema, _, _, _ in groups)
        if len(groups) > 1 and isinstance(self, Ommi) and self.driver.capabilities.transactions:
            # Several models: all or nothing, as add does.
            tx = self.transaction()
            try:
                async with tx:
                    for schema, items, rows, fields in groups:
                        await tx._upsert_rows(tx._ops(), schema, items, rows, fields)
            except BaseException:
                if not tx.committed:
                    for schema, items, rows, _ in groups:
                        _forget_generated_keys(schema, items, rows)
                raise
        else:
            for schema, items, rows, fields in groups:
                await self._upsert_rows(ops, schema, items, rows, fields)
        return models[0] if len(models) == 1 else list(models)

    async def _upsert_rows(
        self,
        ops: Operations,
        schema: ModelSchema,
        items: Sequence[Any],
        rows: Sequence[tuple[Any, ...]],
        on: Sequence[Field],
    ) -> None:
        await _upsert(ops, schema, items, rows, on, self._database().driver.name)

    @overload
    def find(self, model: type[M], /, *conditions: Expr | bool) -> FindQuery[M]: ...
    @overload
    def find(self, *conditions: Expr | bool) -> FindQuery[Any]: ...
    def find(self, *predicates: Any) -> FindQuery[Any]:
        """Start a query: a model class and/or conditions (see :class:`~ommi.query.find.FindQuery`).

        ``find(User, ...)`` is a ``FindQuery[User]``, whose results are typed
        ``User``; a query given conditions only is a ``FindQuery[Any]`` (its
        model is known only at run time). Conditions are typed ``Expr | bool``:
        see :func:`ommi.when`.
        """
        return FindQuery(self, predicates)

    def raw(
        self, statement: str, params: Sequence[Any] | Mapping[str, Any] | None = None, /
    ) -> DBAction[list[tuple[Any, ...]]]:
        """Run one statement of the database's own SQL; the action's value is its rows, as tuples.

        The escape hatch for what the query API cannot say. ``params`` are
        bound by the client library in the driver's paramstyle (SQLite: ``?``
        with a sequence or ``:name`` with a mapping; PostgreSQL through
        psycopg: ``%s`` or ``%(name)s``), never spliced into the text. The rows
        hold what the client library returns, undecoded; a statement without
        rows gives ``[]``. On ``db`` the statement runs on its own (autocommit);
        on a transaction ``t.raw(...)`` it runs inside it (and inside its open
        savepoint, through that savepoint, as every other operation). Errors
        are translated into :mod:`ommi.errors` as for any statement; Ommi does
        not know what the statement touched (no implicit model setup).

        Raises:
            UnsupportedFeature: the driver lacks the capability ``raw_sql``
                (MongoDB: use its native handle, ``db.driver.database``).
            QueryError: ``statement`` is not a non-empty ``str``, or
                ``params`` is not a sequence, a mapping or ``None``.
        """
        return DBAction(lambda: self._raw(statement, params), what="raw(...)")

    async def _raw(self, statement: str, params: Sequence[Any] | Mapping[str, Any] | None) -> list[tuple[Any, ...]]:
        self.require_capability("raw_sql", "raw statements (db.raw)")
        if not isinstance(statement, str) or not statement.strip():
            raise QueryError(f"raw() takes the statement as a non-empty str, not {statement!r}")
        if params is not None and (
            isinstance(params, (str, bytes, bytearray)) or not isinstance(params, (Sequence, Mapping))
        ):
            raise QueryError(
                f"raw() takes the parameters as a sequence (positional placeholders) or a mapping (named ones), "
                f"not {type(params).__name__}"
            )
        ops = await self._operations(())
        return await ops.raw(statement, params)

    def save(self, instance: M) -> DBAction[M]:
        """Write every field of ``instance`` to its row by key; insert it when the row is missing."""
        return DBAction(lambda: self._save(instance), what="save(...)")

    async def _save(self, instance: Any) -> Any:
        schema = get_schema(instance)
        row = schema.encode_instance(instance)
        ops = await self._operations((schema,))
        if any(value is None for value in schema.key_values(instance)):
            await self._insert_rows(ops, schema, [instance], [row])
            return instance
        values = {f: row[f.index] for f in schema.fields if not f.key}
        query = _key_query(schema, instance)
        if values:
            if await ops.update(query, values):
                return instance
        elif await ops.count(query):
            return instance
        await self._insert_rows(ops, schema, [instance], [row])
        return instance

    def remove(self, instance: Any) -> DBAction[int]:
        """Delete the row of ``instance`` by key; gives the number deleted (0 or 1)."""
        return DBAction(lambda: self._remove(instance), what="remove(...)")

    async def _remove(self, instance: Any) -> int:
        schema = get_schema(instance)
        ops = await self._operations((schema,))
        return await ops.delete(_key_query(schema, instance))

    def reload(self, instance: M) -> DBAction[M]:
        """Refresh the fields of ``instance`` from its row by key."""
        return DBAction(lambda: self._reload(instance), what="reload(...)")

    async def _reload(self, instance: Any) -> Any:
        schema = get_schema(instance)
        ops = await self._operations((schema,))
        query = _key_query(schema, instance)
        batches = ops.fetch(query, 1)
        try:
            rows: list[tuple[Any, ...]] = await anext(batches, [])
        finally:
            await batches.aclose()
        if not rows:
            raise DBStatusNoResultException(f"{schema.cls.__name__} {schema.key_values(instance)} no longer exists")
        schema.set_row(instance, rows[0])
        return instance


async def _insert(
    ops: Operations, schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]], driver: str
) -> None:
    """Insert ``rows`` and set the keys the database generated on ``items``.

    When keys are generated the insert runs to its end even if the caller is
    cancelled meanwhile (the cancellation propagates afterwards): a cancelled
    insert may still have stored its rows, and the instances must then carry
    their keys, or a retry would store them twice.
    """
    auto = schema.auto_field
    if auto is None or all(row[auto.index] is not None for row in rows):
        await ops.insert(schema, rows)
        return
    task = asyncio.ensure_future(ops.insert(schema, rows))
    try:
        keys = await _settle(task)
    except asyncio.CancelledError:
        if task.done() and not task.cancelled() and task.exception() is None:
            _set_generated_keys(schema, auto, items, rows, task.result(), driver)
        raise
    _set_generated_keys(schema, auto, items, rows, keys, driver)


async def _upsert(
    ops: Operations,
    schema: ModelSchema,
    items: Sequence[Any],
    rows: Sequence[tuple[Any, ...]],
    on: Sequence[Field],
    driver: str,
) -> None:
    """Upsert ``rows`` and set on ``items`` the keys they are stored under where their generated key was ``None``.

    Such an upsert runs to its end even if the caller is cancelled meanwhile,
    as :func:`_insert` does.
    """
    auto = schema.auto_field
    if auto is None or all(row[auto.index] is not None for row in rows):
        await ops.upsert(schema, rows, on)
        return
    task = asyncio.ensure_future(ops.upsert(schema, rows, on))
    try:
        keys = await _settle(task)
    except asyncio.CancelledError:
        if task.done() and not task.cancelled() and task.exception() is None:
            _set_generated_keys(schema, auto, items, rows, task.result(), driver)
        raise
    _set_generated_keys(schema, auto, items, rows, keys, driver)


def _set_generated_keys(
    schema: ModelSchema, auto: Field, items: Sequence[Any], rows: Sequence[tuple[Any, ...]], keys: Any, driver: str
) -> None:
    """Set the generated keys on the instances whose row had none, decoded through the key's codec.

    Every key is decoded before any is set: a key the model cannot hold sets none.

    Raises:
        DatabaseError: the driver returned keys that do not fit the key field.
    """
    model = schema.cls.__name__
    count = len(keys) if isinstance(keys, Sequence) and not isinstance(keys, (str, bytes)) else None
    if count != len(rows):
        what = f"{count} key{'' if count == 1 else 's'}" if count is not None else repr(keys)
        raise DatabaseError(
            f"the {driver} driver returned {what} for {len(rows)} new {model} rows, "
            f"instead of one {auto!r} value per row; the keys were not set on the instances "
            "(a driver bug: report it to the driver's maintainers)"
        )
    values = []
    for instance, row, key in zip(items, rows, keys, strict=True):
        if row[auto.index] is None:
            values.append((instance, _decode_generated_key(auto, key, driver)))
    for instance, value in values:
        schema.adapter.set_value(instance, auto.name, value)


def _decode_generated_key(auto: Field, key: Any, driver: str) -> Any:
    canonical = key
    if isinstance(key, (float, decimal.Decimal)) and not isinstance(key, bool):
        # Some clients give the number a REAL column's affinity turned into a float.
        try:
            if key == int(key):
                canonical = int(key)
        except (ValueError, OverflowError, ArithmeticError):
            pass
    try:
        return auto.decode(check_canonical(auto.storage, canonical))
    except (ValidationError, TypeError, ValueError, OverflowError) as exc:
        raise DatabaseError(
            f"the {driver} driver returned the generated key {key!r} ({type(key).__name__}) for a new "
            f"{auto.schema.cls.__name__} row, which {auto!r} ({auto.storage.value}) cannot hold; the keys were "
            "not set on the instances (a driver bug: report it to the driver's maintainers)"
        ) from exc


Session = Executor
"""The former name of :class:`Executor` (it is not a session: nothing is tracked between operations)."""

_open_databases: weakref.WeakSet[Ommi] = weakref.WeakSet()
"""Every :class:`Ommi` whose driver is open: reported at exit when still open."""


@atexit.register
def _report_open_at_exit() -> None:
    """Warn (``ResourceWarning``) about every database still open when the interpreter exits."""
    for db in list(_open_databases):
        db._warn_unclosed("left open at exit")


def _check_json_supported(driver: Driver, schemas: Sequence[ModelSchema]) -> None:
    """Refuse models with JSON fields (``dict[...]`` / ``list[...]``) on a driver without ``json_fields``."""
    if driver.capabilities.json_fields:
        return
    declaring = [f"{s.cls.__qualname__}.{f.name}" for s in schemas for f in s.fields if f.storage is StorageType.JSON]
    if declaring:
        raise UnsupportedFeature(
            f"{', '.join(declaring)} store(s) JSON (dict[...] / list[...]), and the {driver.name} driver lacks the "
            "'json_fields' capability. Store the value another way, or use a driver that has it"
        )


def _has_json_condition(expr: Expr) -> bool:
    if isinstance(expr, (JsonComparison, JsonHas)):
        return True
    if isinstance(expr, (And, Or)):
        return any(_has_json_condition(item) for item in expr.items)
    return False


def _check_constraints_supported(driver: Driver, schemas: Sequence[ModelSchema]) -> None:
    """Refuse models with ``Unique``/``Index`` on a driver that would ignore them (and store duplicates).

    Also refuses JSON fields on a driver without ``json_fields`` (:func:`_check_json_supported`).
    """
    _check_json_supported(driver, schemas)
    if driver.capabilities.constraints:
        return
    declaring = [s.cls.__qualname__ for s in schemas if s.constraints]
    if declaring:
        raise UnsupportedFeature(
            f"{', '.join(declaring)} declare(s) Unique or Index, and the {driver.name} driver lacks the "
            "'constraints' capability: it would not enforce them. Remove the markers, or use a driver that has it"
        )


def _collection_schemas(collection: ModelCollection | None, action: str) -> list[ModelSchema]:
    """The schemas of ``collection`` (``None``: the global collection), for ``use_models`` / ``remove_models``.

    Raises:
        ConfigurationError: ``collection`` is a model class or no collection of models.
    """
    if collection is None:
        collection = get_global_collection()
    elif isinstance(collection, (type, str, bytes)) or not isinstance(collection, Iterable):
        what = f"the model class {collection.__qualname__}" if isinstance(collection, type) else repr(collection)
        raise ConfigurationError(
            f"{action}() takes a ModelCollection or a list of model classes (or nothing, for the global "
            f"collection), not {what}: write {action}([Model]), or {action}(models) for a collection"
        )
    return [get_schema(m) for m in collection]


class Ommi(Executor):
    """A database, opened through a driver.

    ``async with Ommi(driver) as db:`` opens the driver, makes ``db`` the active
    database of the context (for model methods and lazy relations) and closes
    the driver on exit.

    A database opened by its first operation stays open until
    ``await db.close()``. One still open when it is garbage collected, or when
    the interpreter exits, gets a ``ResourceWarning`` naming it (shown under
    ``python -X dev`` or ``-W always``, like an unclosed file). Leaving it open
    loses nothing that was committed: every operation outside a transaction
    commits before it returns. A transaction still open at that point never
    committed, and the database rolls it back. The interpreter never waits
    for an open database at exit (the SQLite driver closes its connections
    then, see its README).

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
        # Implicit-setup bookkeeping of the current open generation: a new set
        # on every open, so setup finishing for an older generation lands in
        # a set nobody reads any more.
        self._ready: set[int] = set()
        self._setup_lock: asyncio.Lock | None = None
        # Serialises driver.open() and driver.close(). asyncio.Lock binds to the
        # running loop at first contended use, not here.
        self._open_lock = asyncio.Lock()
        self._state = "new"
        """``new`` (opens on first use), ``open`` or ``closed`` (reopens only explicitly)."""
        self._driver_open = False
        self._generation = 0
        """Counts close() calls: a transaction remembers the generation it began in."""
        self._tokens: list[contextvars.Token[Executor | None]] = []
        self._shown = driver.description
        """How warnings name the database: the redacted URL when ``ommi.connect`` made it."""
        self._leak_reported = False

    def __repr__(self) -> str:
        return f"<Ommi {self.driver.description}>"

    def __del__(self) -> None:
        if getattr(self, "_driver_open", False):
            self._warn_unclosed("garbage collected while open")

    def _warn_unclosed(self, when: str) -> None:
        """Warn once that the database was not closed (``when``: at exit, or collected)."""
        if not self._driver_open or self._leak_reported:
            return
        self._leak_reported = True
        warnings.warn(
            f"unclosed Ommi database {self._shown} ({when}): close it with `await db.close()`, "
            "or open it with `async with db:`",
            ResourceWarning,
            stacklevel=2,
            source=self,
        )

    def _database(self) -> Ommi:
        return self

    def _target(self) -> Operations:
        return self.driver

    def _closed_error(self, what: str) -> DatabaseClosedError:
        return DatabaseClosedError(
            f"{what}: the database ({self.driver.description}) was closed; "
            "reopen it with `await db.open()` or `async with db:`"
        )

    async def open(self) -> Ommi:
        """Open the driver: done by ``async with``, or by the first operation of a new database.

        After :meth:`close` only this (or ``async with db:``) reopens it, with
        fresh implicit-setup bookkeeping. Concurrent calls open it once; open
        and close are serialised, so the driver is never left half-open.
        """
        if self._state == "open":
            return self
        async with self._open_lock:
            await self._open_driver()
        return self

    async def _open_driver(self) -> None:
        """Open the driver unless it is open already; the caller holds ``_open_lock``."""
        if self._driver_open:
            self._state = "open"
            return
        try:
            await self.driver.open()
        except BaseException:
            # A failed or cancelled open may have built part of the driver's state.
            await asyncio.shield(self._quiet_driver_close())
            raise
        self._ready = set()
        self._setup_lock = asyncio.Lock()
        self._driver_open = True
        self._leak_reported = False
        _open_databases.add(self)
        self._state = "open"
        log.debug("database.open", driver=self.driver.name)

    async def _quiet_driver_close(self) -> None:
        try:
            await self.driver.close()
        except Exception:  # the open's own error is the one to report
            log.warning("database.open.cleanup_failed", driver=self.driver.name, exc_info=True)

    async def _open_implicitly(self, what: str) -> None:
        """The first operation of a new database opens it; a closed one stays closed."""
        async with self._open_lock:
            if self._state == "closed":
                raise self._closed_error(what)
            await self._open_driver()

    async def close(self) -> None:
        """Close the driver; safe to call twice, and while operations run.

        From the moment it is called every new operation, ``transaction()``
        entry and ``use_models`` raises :class:`~ommi.errors.DatabaseClosedError`
        until the database is reopened with :meth:`open` or ``async with``.
        Operations already running on the driver finish or fail with its
        ``ConnectionError``. The driver is closed even when the caller is
        cancelled meanwhile.
        """
        self._state = "closed"
        self._generation += 1
        task = asyncio.ensure_future(self._close_driver())
        await _settle(task)

    async def _close_driver(self) -> None:
        async with self._open_lock:
            self._state = "closed"
            if self._driver_open:
                self._driver_open = False
                _open_databases.discard(self)
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
        await self.close()

    def _check_open(self, what: str) -> None:
        if self._state == "closed":
            raise self._closed_error(what)

    async def _ensure_models(self, schemas: Iterable[ModelSchema], what: str = "operation") -> None:
        if self._state != "open":
            if self._state == "closed":
                raise self._closed_error(what)
            await self._open_implicitly(what)
        ready = self._ready
        pending = [s for s in schemas if id(s) not in ready]
        if not pending or not self.allow_implicit_model_setup:
            return
        global_models = get_global_collection()
        if not any(s.cls in global_models for s in pending):
            return
        setup_lock = self._setup_lock
        assert setup_lock is not None
        async with setup_lock:
            self._check_open(what)
            todo = [get_schema(m) for m in global_models if id(get_schema(m)) not in ready]
            if todo:
                started = time.perf_counter()
                _check_constraints_supported(self.driver, todo)
                await self.driver.apply_schema(todo)
                ready.update(id(s) for s in todo)
                log.debug(
                    "schema.implicit_setup",
                    driver=self.driver.name,
                    models=[s.name for s in todo],
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )

    async def _open_for(self, what: str) -> set[int]:
        """Open a new database (never a closed one); the current generation's setup bookkeeping."""
        if self._state != "open":
            if self._state == "closed":
                raise self._closed_error(what)
            await self._open_implicitly(what)
        return self._ready

    async def use_models(self, collection: ModelCollection | None = None) -> None:
        """Create the missing tables and indexes of ``collection`` (default: global).

        Never drops or empties anything.

        Raises:
            SchemaMismatchError: a stored table differs from its model.
            UnsupportedFeature: a model declares ``Unique``/``Index`` and the
                driver lacks the ``constraints`` capability.
            DatabaseClosedError: the database was closed.
            ConfigurationError: ``collection`` is a model class, or not a collection of models.
        """
        ready = await self._open_for("use_models()")
        schemas = _collection_schemas(collection, "use_models")
        _check_constraints_supported(self.driver, schemas)
        await self.driver.apply_schema(schemas)
        ready.update(id(s) for s in schemas)

    async def remove_models(self, collection: ModelCollection | None = None) -> None:
        """Drop the tables of ``collection`` (default: global), with their data.

        Raises:
            DatabaseClosedError: the database was closed.
            ConfigurationError: ``collection`` is a model class, or not a collection of models.
        """
        ready = await self._open_for("remove_models()")
        schemas = _collection_schemas(collection, "remove_models")
        await self.driver.drop_schema(schemas)
        ready.difference_update(id(s) for s in schemas)

    def transaction(
        self,
        *,
        isolation: IsolationLevel | None = None,
        statement_timeout: float | None = None,
        lock_timeout: float | None = None,
    ) -> Transaction:
        """A transaction on a connection of its own: ``async with db.transaction() as t:``.

        ``isolation`` names the isolation level (``None``: the database's default).
        ``statement_timeout`` and ``lock_timeout`` (seconds) bound each statement of
        the transaction and each wait for a lock, overriding the driver's settings of
        those names (``None``: the setting); expiry raises :class:`~ommi.errors.TimeoutError`
        naming the one that expired.

        Commits when the block ends normally, rolls back when it raises or is cancelled.

        Raises:
            DatabaseClosedError: the database was closed (checked first: closed says more than absent).
            UnsupportedFeature: the driver declares transactions absent, or a timeout
                is given and it declares ``timeouts`` absent.
            ConfigurationError: a timeout is not a finite number of seconds above 0.
        """
        if self._state == "closed":
            raise self._closed_error("db.transaction()")
        if not self.driver.capabilities.transactions:
            reason = self.driver.absent_reason("transactions")
            raise UnsupportedFeature(
                f"the {self.driver.name} driver does not support transactions "
                f"(capability 'transactions' is absent for {self.driver.description})"
                + (f": {reason}" if reason else "")
            )
        check_timeouts(self.driver, statement_timeout, lock_timeout)
        options = TransactionOptions(
            isolation=isolation,
            statement_timeout=None if statement_timeout is None else float(statement_timeout),
            lock_timeout=None if lock_timeout is None else float(lock_timeout),
        )
        _transactions.check_options(self.driver, options)
        return Transaction(self, options)

    async def with_transaction(
        self,
        fn: Callable[[Transaction], Awaitable[T]],
        /,
        *,
        retries: int = 5,
        backoff: float | Callable[[int], float] = 0.05,
        isolation: IsolationLevel | None = None,
        statement_timeout: float | None = None,
        lock_timeout: float | None = None,
    ) -> T:
        """Run ``await fn(t)`` in a transaction and give its result; rerun it all on a serialization failure.

        ``fn`` runs in ``db.transaction(isolation=..., statement_timeout=...,
        lock_timeout=...)``, which commits when it
        returns. When the database reports that the transaction conflicted
        with another (:class:`~ommi.errors.SerializationError`: a
        serialization failure, a deadlock, SQLite's busy database), it rolled
        back, and ``fn`` runs again from the start in a new transaction, up to
        ``retries`` more times (``retries=5``: at most 6 runs). Before rerun
        ``n`` it waits a random time between half and all of
        ``backoff * 2 ** (n - 1)`` seconds (at most ``max(backoff, 5)``); a
        callable ``backoff`` gets ``n`` and gives the seconds itself.

        Every other error, and a cancellation, propagates at once, with the
        transaction rolled back; a commit that may have succeeded (the
        connection broke during it) is never rerun. When the reruns run out,
        the last error propagates.

        Raises:
            ValidationError: a bad ``fn``, ``retries``, ``backoff`` or
                ``isolation`` (before any I/O).
            UnsupportedFeature: the driver lacks transactions or the isolation level.
            SerializationError: still conflicting after ``retries`` reruns.
        """
        _transactions.check_retry_arguments(fn, retries, backoff)
        options: dict[str, Any] = {
            "isolation": isolation,
            "statement_timeout": statement_timeout,
            "lock_timeout": lock_timeout,
        }
        first: list[Transaction] = [self.transaction(**options)]  # checks the options before any I/O

        def begin() -> Transaction:
            return first.pop() if first else self.transaction(**options)

        return await _transactions.run_with_retries(begin, fn, retries=retries, backoff=backoff)


class Transaction(Executor):
    """An open transaction: ``add``, ``find`` and model methods run inside it."""

    def __init__(self, database: Ommi, options: TransactionOptions | None = None) -> None:
        self._db = database
        self._options = options if options is not None else TransactionOptions()
        self._tx: DriverTransaction | None = None
        self._state = "new"
        self._generation = -1
        self._committed = False
        # Inserts whose keys the database generates: forgotten again unless the transaction commits.
        self._generated: list[tuple[ModelSchema, Sequence[Any], Sequence[tuple[Any, ...]]]] = []
        self._token: contextvars.Token[Executor | None] | None = None
        self._savepoints: list[Savepoint] = []
        """The open savepoints, outermost first: only the last one (or, with none, this) takes operations."""
        self._poisoned: str | None = None
        """Why the transaction can only roll back (a rollback to a savepoint failed)."""

    def _database(self) -> Ommi:
        return self._db

    def _target(self) -> Operations:
        if self._savepoints:
            raise TransactionError(
                "a savepoint (t.transaction()) is open inside this transaction: run the operation through it, "
                "or after it ends"
            )
        return self._driver_transaction()

    def _driver_transaction(self) -> DriverTransaction:
        """The driver's transaction, whichever level asks; raises once it ended or cannot go on."""
        if self._state != "open" or self._tx is None:
            raise TransactionError(f"the transaction is {self._state}; start a new one with db.transaction()")
        if self._db._generation != self._generation:
            raise self._db._closed_error("this transaction")
        if self._poisoned is not None:
            raise TransactionError(f"the transaction cannot go on: {self._poisoned}; it will be rolled back")
        return self._tx

    def _poison(self, reason: str) -> None:
        if self._poisoned is None:
            self._poisoned = reason

    def transaction(self) -> Savepoint:
        """A savepoint: ``async with t.transaction() as inner:`` rolls back only ``inner``'s work when it raises.

        ``inner`` runs ``add``, ``find`` and the rest in this transaction. Its
        block releases the savepoint when it ends normally, and rolls back to
        it when it raises (the exception propagates); savepoints nest to any
        depth. While it is open, operations on the levels around it raise
        :class:`~ommi.errors.TransactionError`.

        Raises:
            UnsupportedFeature: the driver lacks the capability ``savepoints`` (before any I/O).
        """
        _transactions.check_savepoints(self._db.driver)
        return Savepoint(self)

    async def with_transaction(self, fn: Callable[[Transaction], Awaitable[T]], /) -> T:
        """Run ``await fn(inner)`` in a savepoint of this transaction, once; give its result.

        Nested form of :meth:`Ommi.with_transaction`: a function written for
        it runs inside a transaction too. It does not retry: a
        serialization failure means the whole transaction must run again,
        so the error propagates (after the savepoint rolled back) to the
        outermost ``db.with_transaction``, which reruns everything.
        """
        async with self.transaction() as inner:
            return await fn(inner)

    @property
    def committed(self) -> bool:
        """Whether the transaction's commit finished successfully."""
        return self._committed

    async def _insert(self, schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> None:
        await self._insert_rows(ObservedOperations(self._target(), self._db.driver.name), schema, items, rows)

    def _ops(self) -> Operations:
        """The transaction's operations, each one reported."""
        return ObservedOperations(self._target(), self._db.driver.name)

    async def _upsert_rows(
        self,
        ops: Operations,
        schema: ModelSchema,
        items: Sequence[Any],
        rows: Sequence[tuple[Any, ...]],
        on: Sequence[Field],
    ) -> None:
        auto = schema.auto_field
        if auto is not None and any(row[auto.index] is None for row in rows):
            self._generated.append((schema, items, rows))
        await _upsert(ops, schema, items, rows, on, self._db.driver.name)

    async def _insert_rows(
        self, ops: Operations, schema: ModelSchema, items: Sequence[Any], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        auto = schema.auto_field
        if auto is not None and any(row[auto.index] is None for row in rows):
            self._generated.append((schema, items, rows))
        await _insert(ops, schema, items, rows, self._db.driver.name)

    async def __aenter__(self) -> Transaction:
        if self._state != "new":
            raise TransactionError("a transaction can be entered only once")
        db = self._db
        await db._ensure_models((get_schema(m) for m in get_global_collection()), "transaction()")
        generation = db._generation
        options = self._options
        self._tx = await (db.driver.begin() if options.is_default() else db.driver.begin(options))
        self._generation = generation
        self._state = "open"
        if db._generation != generation:
            # close() began while the driver was starting the transaction.
            await self._finish(rollback=True)
            raise db._closed_error("transaction()")
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
        """Commit now; the transaction cannot be used afterwards.

        Raises:
            DatabaseClosedError: the database was closed since the transaction
                began; it was rolled back instead.
            TransactionError: a savepoint is still open, or the transaction
                cannot go on (a rollback to a savepoint failed); it was rolled
                back instead.
        """
        if self._state == "open" and self._db._generation != self._generation:
            await self._finish(rollback=True)
            raise self._db._closed_error("commit()")
        if self._state == "open" and (self._savepoints or self._poisoned is not None):
            why = (
                f"{len(self._savepoints)} savepoint(s) opened inside it were still open"
                if self._savepoints
                else self._poisoned
            )
            await self._finish(rollback=True)
            raise TransactionError(f"the transaction was rolled back, not committed: {why}")
        await self._finish(rollback=False)

    async def rollback(self) -> None:
        """Roll back now, with any savepoint still open; the transaction cannot be used afterwards."""
        await self._finish(rollback=True)

    async def _finish(self, *, rollback: bool) -> None:
        """Commit or roll back, shielded: a cancelled caller still waits for the end of it.

        :attr:`committed` is set once the commit has finished successfully,
        before a cancellation of the caller propagates.
        """
        tx = self._tx
        if self._state != "open" or tx is None:
            raise TransactionError(f"the transaction is already {self._state}")
        _transactions.end_savepoints(self)
        self._state = "rolled back" if rollback else "committed"
        task = asyncio.ensure_future(tx.rollback() if rollback else tx.commit())
        try:
            await _settle(task)
        except OmmiError:
            if rollback:
                # A failed rollback must not mask the error that caused it.
                log.warning("transaction.rollback.failed", driver=self._db.driver.name, exc_info=True)
                return
            raise
        finally:
            if not rollback and task.done() and not task.cancelled() and task.exception() is None:
                self._committed = True
            else:
                # Rolled back (or the commit failed): the rows with generated keys are not stored.
                for schema, items, rows in self._generated:
                    _forget_generated_keys(schema, items, rows)
            self._generated = []


class Savepoint(Transaction):
    """A savepoint of a transaction (``async with t.transaction() as inner:``): a transaction inside one.

    It runs its operations in its transaction's connection. Its block
    releases it when it ends normally (its work becomes part of the
    transaction around it) and rolls back to it when it raises; the keys
    generated for instances added in it are reset then, those of the levels
    around it stay. ``inner.commit()`` and ``inner.rollback()`` end it early.
    See :mod:`ommi._transactions`.
    """

    _root: Transaction
    _parent: Transaction

    def __init__(self, parent: Transaction) -> None:
        root = parent._root if isinstance(parent, Savepoint) else parent
        super().__init__(root._db, root._options)
        self._root = root
        self._parent = parent
        self._name = _transactions.new_savepoint_name()

    def _target(self) -> Operations:
        if self._state != "open":
            raise TransactionError(f"the savepoint is {self._state}; open a new one with t.transaction()")
        stack = self._root._savepoints
        if stack[-1] is not self:
            raise TransactionError(
                "a savepoint opened inside this one is still open: run the operation through it, or after it ends"
            )
        return self._root._driver_transaction()

    def _driver_transaction(self) -> DriverTransaction:
        return self._root._driver_transaction()

    def _poison(self, reason: str) -> None:
        self._root._poison(reason)

    def transaction(self) -> Savepoint:
        _transactions.check_savepoints(self._db.driver)
        return Savepoint(self)

    async def __aenter__(self) -> Savepoint:
        await _transactions.enter_savepoint(self)
        self._token = _active.set(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _active.reset(self._token)
            self._token = None
        await _transactions.exit_savepoint(self, failed=exc_type is not None, error=exc)

    async def commit(self) -> None:
        """Release the savepoint now: its work joins the transaction around it (committed with that)."""
        await _transactions.finish_savepoint(self, rollback=False)

    async def rollback(self) -> None:
        """Roll back to the savepoint now: its work is undone; the transaction around it goes on."""
        await _transactions.finish_savepoint(self, rollback=True)

    @property
    def committed(self) -> bool:
        """Whether the savepoint was released (its work then commits or not with the transaction around it)."""
        return self._state == "released"


def _legacy_attribute(name: str) -> Any:
    """Ommi 0.2's names of ``ommi.database`` (``DBResult``...) and submodules (``ommi.database.results``...).

    ``ommi._legacy`` says what became of each; it is imported here, when an old name is used.
    """
    from ommi import _legacy

    return _legacy.attribute(__name__, name)


# The module's PEP 562 __getattr__, set through globals() so that type checkers do not see it
# (they would take every unknown name of ommi.database for Any).
globals()["__getattr__"] = _legacy_attribute
