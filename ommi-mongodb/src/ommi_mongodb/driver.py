"""``MongoDBDriver``: Ommi on MongoDB through PyMongo's native asyncio client.

::

    from ommi import Ommi
    from ommi_mongodb import MongoDBDriver

    async with Ommi(MongoDBDriver.connect("mongodb://127.0.0.1:27017/app")) as db:
        ...

One :class:`pymongo.AsyncMongoClient` per driver holds the connection pool
(``maxPoolSize`` and the other client options pass straight through). Models
are stored one collection per model, documents laid out as described in
``ommi_mongodb._values``. Transactions use client sessions and exist only where
the server has them (a replica set or a sharded cluster): on a standalone
server the driver declares the ``transactions`` capability absent once opened,
and ``db.transaction()`` raises ``UnsupportedFeature`` saying so.

``statement_timeout`` (the setting, or ``db.transaction(statement_timeout=...)``
on a server with transactions) bounds each call the driver makes into PyMongo
for an operation, with PyMongo's client-side timeout (``maxTimeMS`` on the
wire; see :mod:`ommi_mongodb._operations`). MongoDB has no lock wait to bound:
``lock_timeout`` is refused, as a setting and per transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ommi import errors
from ommi.drivers import Capabilities, Driver, DriverTransaction, TransactionOptions, get_logger, map_exceptions
from ommi.errors import (
    ConfigurationError,
    ModelDefinitionError,
    SchemaMismatchError,
    TransactionError,
    UnsupportedFeature,
)
from ommi.models.schema import ModelSchema
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from ommi_mongodb._errors import exceptions, refused, refused_addresses
from ommi_mongodb._filters import ServerForms
from ommi_mongodb._inspect import inspect
from ommi_mongodb._journal import Journal
from ommi_mongodb._keys import KeyGenerator
from ommi_mongodb._migrate import MIGRATE_COLLECTION, MongoDBMigration, begin_migration, migration_statements
from ommi_mongodb._operations import MongoDBOperations
from ommi_mongodb._schema import conflicts, constraint_drift, drift, missing, read_indexes, shape
from ommi_mongodb._settings import (
    JOURNAL_COLLECTION,
    LOCK_TIMEOUT_REASON,
    MAX_STATEMENT_TIMEOUT,
    MongoDBSettings,
    parse_settings,
)
from ommi_mongodb._testserver_compat import forms_for

if TYPE_CHECKING:
    from ommi.migrations import MigrationStep
    from ommi.migrations.inspection import Inspection

__all__ = ["Generation", "MongoDBDriver", "MongoDBTransaction"]

log = get_logger("ommi.mongodb.driver")


@dataclass(frozen=True, slots=True, eq=False)
class Generation:
    """What one ``open()`` made; an operation uses one whole, never parts of two."""

    client: AsyncMongoClient[dict[str, Any]]
    database: AsyncDatabase[dict[str, Any]]
    keys: KeyGenerator
    journal: Journal
    forms: ServerForms
    """How this server is asked (MongoDB's forms, or nx-27017's: ``_testserver_compat``)."""


_READ_CONCERNS = {"read_committed": "majority", "repeatable_read": "snapshot"}
"""The read concern of a transaction at each isolation level MongoDB offers (``serializable`` is refused).

``majority`` reads only majority-committed data; ``snapshot`` reads every
document of the transaction from one majority-committed point in time.
Writes of concurrent transactions to one document conflict either way
(``WriteConflict``, labelled ``TransientTransactionError``: a
:class:`~ommi.errors.SerializationError`), but a write skew across documents
is not detected, so ``serializable`` is not offered.
"""

_COMMIT_ATTEMPTS = 3
"""How many times ``commit`` sends ``commitTransaction`` while the result stays unknown (PyMongo retries once more)."""


class MongoDBTransaction(MongoDBOperations, DriverTransaction):
    """Operations inside one MongoDB transaction (a client session of its own)."""

    def __init__(
        self,
        driver: MongoDBDriver,
        session: AsyncClientSession,
        generation: Generation,
        statement_timeout: float | None = None,
    ) -> None:
        super().__init__(driver, session, generation, statement_timeout)
        self._open = True

    def _live_session(self) -> AsyncClientSession:
        if not self._open or self._session is None:
            raise TransactionError("the MongoDB transaction has ended; start a new one with db.transaction()")
        return self._session

    async def commit(self) -> None:
        """Commit; a result left unknown (``UnknownTransactionCommitResult``) sends the commit again, not the work.

        ``commitTransaction`` is idempotent, so sending it again is what
        PyMongo's own ``with_transaction`` does. When the result stays unknown
        the error propagates as a ``ConnectionError`` or ``TimeoutError``
        (never a ``SerializationError``: the commit may have happened, and
        ``db.with_transaction`` must not run the work twice).
        """
        session = self._live_session()
        self._open = False
        try:
            with map_exceptions(
                exceptions("commit the transaction", self._driver.description, self._statement_timeout)
            ):
                for attempt in range(1, _COMMIT_ATTEMPTS + 1):
                    try:
                        # Bounded like the transaction's statements (PyMongo sends the time left as maxTimeMS).
                        with self._timed():
                            await session.commit_transaction()
                        break
                    except PyMongoError as exc:
                        if attempt == _COMMIT_ATTEMPTS or not exc.has_error_label("UnknownTransactionCommitResult"):
                            raise
                        log.info("transaction.commit.retry", driver="mongodb", attempt=attempt)
        finally:
            await asyncio.shield(session.end_session())

    async def rollback(self) -> None:
        if not self._open or self._session is None:
            return
        session = self._session
        self._open = False
        try:
            with map_exceptions(exceptions("roll back the transaction", self._driver.description)):
                await session.abort_transaction()
        finally:
            await asyncio.shield(session.end_session())


class MongoDBDriver(MongoDBOperations, Driver[MongoDBSettings]):
    """The MongoDB driver (``mongodb://`` and ``mongodb+srv://`` URLs).

    Build it with :meth:`connect`; nothing touches the network until
    :meth:`open`.
    """

    name: ClassVar[str] = "mongodb"
    capabilities = Capabilities(
        # MongoDB does not enforce references between collections.
        foreign_keys=False,
        # BSON date-times keep milliseconds.
        microsecond_datetimes=False,
        # Idempotent steps resumed after a failure, under a lock document (ommi_mongodb._migrate).
        migrations=True,
        # Unique indexes with a partial filter (NULL never collides), created and drift-checked.
        constraints=True,
        # Schema records, else a sample of documents (ommi_mongodb._inspect).
        inspection=True,
        # MongoDB transactions have no savepoints.
        savepoints=False,
        # On a replica set (narrowed with transactions in open()): read concern per level.
        isolation_levels=True,
        # $inc / $mul, else an update pipeline (ommi_mongodb._expressions).
        update_expressions=True,
        # One atomic write per row, taken back on failure (ommi_mongodb._upsert).
        upsert=True,
        # An escaped, anchored regular expression with option "i" (ommi_mongodb._filters).
        case_insensitive_text=True,
        # Embedded documents and arrays; path conditions evaluated exactly in Python (ommi_mongodb._filters).
        json_fields=True,
    )
    supported_isolation_levels = frozenset(_READ_CONCERNS)

    migration_lock_lease: float = 30.0
    """Seconds the migration lock outlives its last renewal (renewed while a migration runs)."""

    migration_lock_wait: float = 300.0
    """Seconds ``begin_migration`` waits for another run's migration lock before it fails, naming the holder."""

    def __init__(self, settings: MongoDBSettings) -> None:
        # The driver runs its operations itself, outside any session: it is their driver.
        super().__init__(driver=self, statement_timeout=settings.statement_timeout)
        self.settings = settings
        self.default_batch_size = settings.batch_size
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._db: AsyncDatabase[dict[str, Any]] | None = None
        self._key_generator: KeyGenerator | None = None
        self._current: Generation | None = None
        # What this driver could not clean up yet; kept across close() and open(),
        # since every opening may settle it (nothing of a closed client is reused).
        self._unsettled: set[str] = set()
        self._deferred_deletes: list[tuple[str, dict[str, Any]]] = []
        self._reserved = (
            settings.counters_collection,
            settings.schema_collection,
            JOURNAL_COLLECTION,
            MIGRATE_COLLECTION,
        )
        self.server_info: dict[str, Any] = {}
        """What the server said about itself when opened: its ``hello`` and ``buildInfo`` replies."""

    @classmethod
    def connect(cls, settings: str | Mapping[str, Any] | None = None, /, **options: Any) -> Self:
        """Build a driver from a URL or a mapping of settings, without I/O.

        Args:
            settings: ``"mongodb://user:pw@host:27017/app?maxPoolSize=20"``,
                ``"mongodb+srv://cluster.example/app"``, or a mapping with
                ``url``, ``database`` (overrides the URL path), ``batch_size``
                (documents per batch for ``.all``, default 1000),
                ``counters_collection`` (default ``_ommi_counters``),
                ``schema_collection`` (default ``_ommi_schema``),
                ``collection_prefix`` (put before every model's collection
                name, default none), ``journal_lease`` (seconds, default 30),
                ``write_batch_bytes`` (default 16 MiB), ``testserver_compat``
                (default ``None``: decided from the server's ``buildInfo``;
                all described in :class:`~ommi_mongodb.MongoDBSettings`) and any
                :class:`pymongo.AsyncMongoClient` option.
            options: the same keys as the mapping, overriding it.

        Raises:
            ConfigurationError: another scheme than mongodb / mongodb+srv, or
                an unusable setting. A missing database name is reported by
                :meth:`open`.
        """
        return cls(parse_settings(settings, options))

    @property
    def journal_lease(self) -> float:
        """The ``journal_lease`` setting (seconds; see :class:`~ommi_mongodb.MongoDBSettings`)."""
        return self.settings.journal_lease

    @property
    def write_batch_bytes(self) -> int:
        """The ``write_batch_bytes`` setting (bytes; see :class:`~ommi_mongodb.MongoDBSettings`)."""
        return self.settings.write_batch_bytes

    @property
    def description(self) -> str:
        database = self.settings.database
        return f"mongodb {self.settings.redacted_url} ({f'database {database}' if database else 'no database named'})"

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        """The native handle: the PyMongo ``AsyncDatabase`` the driver stores models in.

        For what Ommi's query API cannot say (``db.raw`` is SQL only): an
        aggregation pipeline, a command. A collection is named after its
        model (:meth:`collection_name`); documents are laid out as
        :mod:`ommi_mongodb._values` describes. It runs outside Ommi's
        transactions (pass a session of your own), and a ``close()`` of the
        database ends it; take it again after each ``open()``.

        Raises:
            ConnectionError: the driver is not open.
        """
        return self._database()

    # -- lifecycle ---------------------------------------------------------

    def _database(self) -> AsyncDatabase[dict[str, Any]]:
        if self._db is None:
            raise errors.ConnectionError(
                f"the MongoDB driver for {self.description} is not open; use `async with Ommi(...)`"
            )
        return self._db

    def _opening(self) -> Generation:
        if self._current is None:
            raise errors.ConnectionError(
                f"the MongoDB driver for {self.description} is not open; use `async with Ommi(...)`"
            )
        return self._current

    def _keys(self) -> KeyGenerator:
        if self._key_generator is None:
            raise errors.ConnectionError(f"the MongoDB driver for {self.description} is not open")
        return self._key_generator

    async def open(self) -> None:
        if self._client is not None:
            return
        database = self.settings.database
        if database is None:
            raise ConfigurationError(
                f"the MongoDB settings for {self.description} name no database: put it in the URL path "
                "(mongodb://host:27017/mydb) or pass database='mydb'"
            )
        with map_exceptions(exceptions("connect", self.description)):
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                self.settings.url, **self.settings.client_options
            )
        try:
            with map_exceptions(exceptions("connect", self.description)):
                hello, build = await _reach(client, self.description)
            # Decided once per client: a real MongoDB never takes the test server's forms.
            forms = forms_for(self.settings.testserver_compat, build)
            journal = Journal(
                client[database], lambda: self.journal_lease, self._unsettled, self._deferred_deletes, forms
            )
            with map_exceptions(exceptions("finish interrupted writes in", self.description)):
                await journal.recover(force=True)
        except BaseException:
            await asyncio.shield(client.close())
            raise
        self._client = client
        self._db = client[database]
        self._key_generator = KeyGenerator(self._db, self.settings.counters_collection, rounds=forms.largest_key_rounds)
        self._current = Generation(client, self._db, self._key_generator, journal, forms)
        self.server_info = {"hello": hello, "buildInfo": build}
        transactions = _supports_transactions(hello)
        self.capabilities = dataclasses.replace(
            type(self).capabilities,
            transactions=transactions,
            transaction_isolation=transactions,
            isolation_levels=transactions,
        )
        log.debug(
            "driver.open",
            driver=self.name,
            database=database,
            server_version=build.get("version"),
            transactions=transactions,
            forms=forms.name,
        )

    async def close(self) -> None:
        client, self._client, self._db, self._key_generator = self._client, None, None, None
        self._current = None
        if client is not None:
            await asyncio.shield(client.close())
            log.debug("driver.close", driver=self.name, database=self.settings.database)

    def __del__(self) -> None:
        if getattr(self, "_client", None) is not None:
            warnings.warn(
                f"MongoDB driver for {self.description} was never closed; use `async with Ommi(...)` "
                "or await driver.close()",
                ResourceWarning,
                stacklevel=1,
            )

    @property
    def transaction_timeouts(self) -> frozenset[str]:
        """``statement_timeout`` only: ``timeouts`` (both kinds) stays absent, MongoDB has no lock wait to bound."""
        return _STATEMENT_ONLY

    def absent_reason(self, capability: str) -> str | None:
        if capability in ("transactions", "isolation_levels") and not self.capabilities.transactions:
            return "the server is standalone, and MongoDB has transactions only on a replica set or a sharded cluster"
        if capability == "isolation_levels":
            return (
                "MongoDB transactions read with read concern 'majority' (read_committed) or 'snapshot' "
                "(repeatable_read); none is serializable (write skew is possible)"
            )
        if capability == "savepoints":
            return "MongoDB transactions have no savepoints"
        if capability == "row_locks":
            return (
                "MongoDB has no SELECT ... FOR UPDATE: inside a transaction, write a lock field on the documents to "
                "claim (find(...).update(locked_by=...)), which makes concurrent transactions touching them conflict"
            )
        if capability == "raw_sql":
            return (
                "MongoDB has no SQL; for a native command use the PyMongo AsyncDatabase the driver reads and writes, "
                "db.driver.database (e.g. await db.driver.database['post'].aggregate([...]))"
            )
        if capability == "timeouts":
            return (
                f"db.transaction(statement_timeout=...) is honoured, lock_timeout is not: {LOCK_TIMEOUT_REASON} "
                "(db.transaction(statement_timeout=...))"
            )
        return None

    async def begin(self, options: TransactionOptions | None = None) -> DriverTransaction:
        if not self.capabilities.transactions:
            raise UnsupportedFeature(
                f"the MongoDB server at {self.description} cannot run transactions: "
                f"{self.absent_reason('transactions')} (capability 'transactions' is absent)"
            )
        level = options.isolation if options is not None else None
        statement_timeout = self.settings.statement_timeout
        if options is not None:
            if options.lock_timeout is not None:
                raise UnsupportedFeature(
                    f"the MongoDB driver cannot bound a transaction's lock waits (lock_timeout=...): "
                    f"{LOCK_TIMEOUT_REASON} (db.transaction(statement_timeout=...))"
                )
            if options.statement_timeout is not None:
                if not 0 < options.statement_timeout <= MAX_STATEMENT_TIMEOUT:
                    raise ConfigurationError(
                        f"db.transaction(): statement_timeout must be at most {MAX_STATEMENT_TIMEOUT} seconds on "
                        f"MongoDB (its limit on maxTimeMS), not {options.statement_timeout!r}"
                    )
                statement_timeout = options.statement_timeout
        generation = self._opening()
        session = generation.client.start_session()
        try:
            with map_exceptions(exceptions("start a transaction", self.description)):
                if level is None:
                    await session.start_transaction()
                else:
                    await session.start_transaction(read_concern=ReadConcern(_READ_CONCERNS[level]))
        except BaseException:
            await asyncio.shield(session.end_session())
            raise
        return MongoDBTransaction(self, session, generation, statement_timeout)

    # -- migrations (ommi_mongodb._migrate) --------------------------------

    async def begin_migration(self, *, lock_timeout: float | None = None) -> MongoDBMigration:
        return await begin_migration(self, self._opening(), lock_timeout)

    def migration_statements(self, step: MigrationStep) -> list[str]:
        return migration_statements(self, step)

    # -- schema ------------------------------------------------------------

    def collection_name(self, schema: ModelSchema) -> str:
        """The collection storing ``schema``'s documents: the model's name after ``collection_prefix``.

        Raises:
            ModelDefinitionError: the name is one the driver keeps for itself.
        """
        name = self.settings.collection_prefix + schema.name
        if name in self._reserved or name.startswith("system."):
            reserved = ", ".join(self._reserved)
            raise ModelDefinitionError(
                f"model {schema.name} would be stored in collection {name!r} on {self.description}, a name "
                f"reserved by the MongoDB driver ({reserved}, and every name starting with 'system.'); "
                "name the model otherwise (@ommi_model(name=...)) or set collection_prefix"
            )
        return name

    async def inspect_schema(self) -> Inspection:
        """Read the collections into models (see :mod:`ommi_mongodb._inspect`)."""
        database = self._database()
        settings = self.settings
        with map_exceptions(exceptions("read the collections", self.description)):
            return await inspect(
                database, settings.collection_prefix, self._reserved, settings.schema_collection, self.description
            )

    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        database = self._database()
        where = self.description
        shapes = database[self.settings.schema_collection]
        named = [(schema, self.collection_name(schema)) for schema in schemas]
        with map_exceptions(exceptions("read the collections", where)):
            existing = set(await database.list_collection_names())
            records = {
                record["_id"]: record async for record in shapes.find({"_id": {"$in": [name for _, name in named]}})
            }
        stored: dict[str, list[Mapping[str, Any]]] = {}
        problems: list[str] = []
        for schema, name in named:
            if name not in existing:
                continue
            record = records.get(name)
            with map_exceptions(exceptions(f"read the indexes of {name!r}", where)):
                stored[name] = await read_indexes(database[name])
            if record is not None:
                problems.extend(drift(schema, name, record.get("fields", [])))
                problems.extend(constraint_drift(schema, name, stored[name]))
            problems.extend(conflicts(schema, name, stored[name]))
        if problems:
            raise SchemaMismatchError(
                f"stored collections differ from the models on {where}: "
                + " | ".join(problems)
                + " (nothing was changed). Write a migration for the change and apply it: `ommi migrate make "
                "--models MODULE` then `ommi migrate apply --url URL` (or drop the collections with db.remove_models() "
                "when their documents can go)."
            )
        for schema, name in named:
            if name not in existing:
                # CollectionInvalid: created meanwhile by another client, just as good.
                with map_exceptions(exceptions(f"create collection {name!r}", where)), suppress(CollectionInvalid):
                    await database.create_collection(name)
            todo = missing(schema, name, stored.get(name, []))
            with map_exceptions(exceptions(f"set up collection {name!r}", where)):
                if todo:
                    await database[name].create_indexes([spec.model() for spec in todo])
                if name not in existing or name not in records:
                    await shapes.update_one({"_id": name}, {"$set": {"fields": shape(schema)}}, upsert=True)

    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        database = self._database()
        names = [self.collection_name(schema) for schema in schemas]
        if not names:
            return
        with map_exceptions(exceptions("read the collections", self.description)):
            existing = set(await database.list_collection_names())
        for name in names:
            if name in existing:
                with map_exceptions(exceptions(f"drop collection {name!r}", self.description)):
                    await database.drop_collection(name)
        with map_exceptions(exceptions("forget the dropped collections", self.description)):
            await database[self.settings.schema_collection].delete_many({"_id": {"$in": names}})
            await self._keys().forget(names)
            await database[JOURNAL_COLLECTION].delete_many({"collection": {"$in": names}})


_STATEMENT_ONLY = frozenset({"statement_timeout"})

_REFUSAL_POLL = 0.05
"""Seconds between two looks at the servers' state while :func:`_reach` waits for the first answer."""


async def _greet(client: AsyncMongoClient[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    await client.aconnect()
    hello = await client.admin.command("hello")
    try:
        build = await client.admin.command("buildInfo")
    except OperationFailure:
        build = {}  # some MongoDB-compatible services do not answer it
    return hello, build


async def _reach(client: AsyncMongoClient[dict[str, Any]], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's ``hello`` and ``buildInfo`` replies; fails at once when every server refuses the connection.

    PyMongo keeps trying a refused server until ``serverSelectionTimeoutMS``
    (30 s by default) and then reports a timeout. A refused connection is an
    answer already: nothing listens there. So while the first answer is
    awaited, every server the client knows of is looked at; once each one's
    last error is a refused connection, opening fails with a
    ``ConnectionError`` saying so (as connecting to PostgreSQL or SQLite fails
    at once). A server that does not answer at all still fails after
    ``serverSelectionTimeoutMS``, as a timeout.

    Raises:
        ommi.errors.ConnectionError: every server refused the connection.
    """
    greeting = asyncio.ensure_future(_greet(client))
    try:
        while True:
            done, _ = await asyncio.wait([greeting], timeout=_REFUSAL_POLL)
            if done:
                return greeting.result()
            servers = client.topology_description.server_descriptions()
            addresses = refused_addresses(
                [(f"{host}:{port}", server.error) for (host, port), server in servers.items()]
            )
            if addresses:
                # Chained to PyMongo's report of the (first) refusal, as a mapped error would be.
                raise refused("connect", where, addresses) from next(iter(servers.values())).error
    finally:
        if not greeting.done():
            greeting.cancel()
            await asyncio.wait([greeting])
        if not greeting.cancelled():
            greeting.exception()  # retrieved: raised above, or superseded by the refusal


def _supports_transactions(hello: Mapping[str, Any]) -> bool:
    """Whether the server can run multi-document transactions (replica set member or mongos)."""
    if hello.get("logicalSessionTimeoutMinutes") is None:
        return False
    return "setName" in hello or hello.get("msg") == "isdbgrid"
