"""insert / fetch / count / update / delete on MongoDB, shared by the driver and its transactions.

Outside a transaction each operation stands alone, and the writes of several
documents are all or nothing however they are interrupted:

* Inside a transaction the server guarantees it. On a replica set or a
  sharded cluster, an ``add`` of several documents and an ``update`` that
  changes a key run in a transaction of their own.
* On a standalone server, an ``add`` whose documents fit in one wire message
  (16 MiB, 100,000 documents) is sent as one ordered ``insert``: the server
  gets the whole message or none of it, and a write error part-way (a taken
  key) takes back the documents before it. A larger ``add``, and every
  ``update`` that changes a key (MongoDB never changes an ``_id`` in place, so
  the document is written again under the new one), run under the journal of
  :mod:`ommi_mongodb._journal`.
* A cancellation never cuts a write of several documents in the middle: it
  waits for the step in flight, undoes what was written (or finishes, past the
  commit point), then propagates.

Under a ``statement_timeout`` (the driver setting, or a transaction's) each
call into PyMongo that reads or writes for an operation runs inside
``pymongo.timeout(seconds)`` of its own (:meth:`MongoDBOperations._timed`):
PyMongo sends the time left as ``maxTimeMS`` and stops waiting at the
deadline. The context never spans a ``yield`` (a context variable set in an
async generator would leak into the caller's code) nor a whole operation (once
past the deadline, the clean-up that follows a failure would fail too): the
journal's bookkeeping, its recovery and the taking back of an interrupted add
run unbounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, aclosing, nullcontext
from typing import TYPE_CHECKING, Any

import bson
import pymongo
from ommi.drivers import ExceptionMap, get_logger, map_exceptions
from ommi.drivers.base import Operations, Row
from ommi.errors import IntegrityError, OperationalError, UnsupportedFeature, ValidationError
from ommi.expressions import Arithmetic, Query
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.query.aggregate import Aggregation, finish_groups
from ommi.query.evaluate import ordered
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from ommi_mongodb._aggregate import empty_row, group_pipeline, on_server
from ommi_mongodb._errors import exceptions, is_duplicate_key
from ommi_mongodb._expressions import ExpressionUpdate, plan_update
from ommi_mongodb._journal import (
    INSERT,
    MARKERS,
    NEW,
    OLD,
    REWRITE,
    SET,
    Entry,
    Journal,
    LeaseLost,
    Stop,
    Stopped,
    uninterrupted,
)
from ommi_mongodb._plan import Plan, plan, projection
from ommi_mongodb._upsert import upsert_rows
from ommi_mongodb._values import (
    ID,
    document_from_row,
    encode_value,
    field_path,
    id_filter,
    projected_reader,
    row_from_document,
    size_function,
    stored_name,
    value_at,
)

if TYPE_CHECKING:
    from ommi_mongodb.driver import Generation, MongoDBDriver

__all__ = ["MongoDBOperations"]

log = get_logger("ommi.mongodb.operations")

_GENERATED_KEY_ATTEMPTS = 5
"""Inserts tried with fresh generated keys before a taken one is reported."""

_MAX_BATCH_DOCUMENTS = 100_000
"""Documents MongoDB takes in one write command (``maxWriteBatchSize``)."""

_INT64_MAX = 2**63 - 1
_CURSOR_BATCH_MAX = 2**31 - 1

_IDS_PER_FILTER = 10_000
"""``_id`` values per ``$in`` filter."""

_FIND_CHUNK = 1000
"""Documents read per bounded call when the driver reads for itself (planning, ``bytes`` ordering)."""

_UNBOUNDED: AbstractContextManager[None] = nullcontext()
"""What :meth:`MongoDBOperations._timed` gives without a ``statement_timeout`` (reusable: it keeps no state)."""

_KEYS_PER_FILTER = 500
"""Composite keys per filter: each is a branch of an ``$or``.

MongoDB plans each branch of an ``$or`` apart, so a long one is slow to plan;
nx-27017 refuses an expression deeper than 1000 outright. 500 serves both.
"""


def _duplicate_id(exc: PyMongoError, documents: list[dict[str, Any]]) -> Any:
    """The ``_id`` of the document an insert failed on as a duplicate ``_id``, else ``None``."""
    if not is_duplicate_key(exc):
        return None
    details: dict[str, Any] = {}
    index: Any = 0 if len(documents) == 1 else None
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors") or []
        details = errors[0] if errors else {}
        index = details.get("index")
    elif isinstance(found := getattr(exc, "details", None), dict):
        details = found
    # MongoDB names the index that refused the document; another unique index is not about keys.
    pattern = details.get("keyPattern")
    if isinstance(pattern, dict) and list(pattern) != [ID]:
        return None
    return documents[index][ID] if isinstance(index, int) and 0 <= index < len(documents) else None


def _sort_spec(query: Query) -> list[tuple[str, int]]:
    spec: list[tuple[str, int]] = []
    seen: set[str] = set()
    for key in query.sort:
        path = field_path(key.field)
        if path not in seen:  # a repeated field adds nothing and MongoDB rejects it
            seen.add(path)
            spec.append((path, -1 if key.descending else 1))
    return spec


def _hashable(identity: Any) -> Any:
    """An ``_id`` as a dictionary key (a composite key's sub-document becomes a tuple of its items)."""
    return tuple(identity.items()) if isinstance(identity, Mapping) else identity


def _batches(schema: ModelSchema, rows: list[Row], documents: list[dict[str, Any]], limit: int) -> list[list[Any]]:
    """``documents`` in consecutive batches that each fit in one insert message."""
    sizes = list(map(size_function(schema), rows))
    if len(documents) <= _MAX_BATCH_DOCUMENTS and sum(sizes) <= limit:
        return [documents]
    return _split(documents, sizes, limit)


def _split(documents: list[Any], sizes: list[int], limit: int) -> list[list[Any]]:
    batches: list[list[Any]] = []
    current: list[Any] = []
    total = 0
    for document, size in zip(documents, sizes, strict=True):
        if current and (total + size > limit or len(current) >= _MAX_BATCH_DOCUMENTS):
            batches.append(current)
            current, total = [], 0
        current.append(document)
        total += size
    if current:
        batches.append(current)
    return batches


def _id_filters(schema: ModelSchema, ids: list[Any]) -> list[dict[str, Any]]:
    """Filters selecting the documents whose ``_id`` is one of ``ids``, each small enough for one command."""
    size = _IDS_PER_FILTER if len(schema.key) == 1 else _KEYS_PER_FILTER
    return [id_filter(schema, ids[start : start + size]) for start in range(0, len(ids), size)]


def _narrow(schema: ModelSchema, ids: list[Any]) -> dict[str, Any] | None:
    """One filter of ``ids`` to let a journaled write's clean-up use the ``_id`` index; ``None`` when too many.

    Without it the clean-up selects the documents by their mark alone (a collection scan).
    """
    if not ids:
        return id_filter(schema, [])  # matches nothing, through the index
    filters = _id_filters(schema, ids)
    return filters[0] if len(filters) == 1 else None


def _same_identity(a: Any, b: Any) -> bool:
    return repr(_hashable(a)) == repr(_hashable(b))


def _window_count(total: int, query: Query) -> int:
    remaining = max(0, total - query.offset)
    return remaining if query.limit is None else min(remaining, query.limit)


class MongoDBOperations(Operations):
    """The data operations, run without a session or inside one transaction's session.

    Each operation runs on one opening of the driver (its :class:`Generation`:
    client, database, key counters, journal), taken when it starts: an
    operation begun before ``close()`` fails with ``ConnectionError`` rather
    than go on through a client a later ``open()`` made. A transaction keeps
    the opening it began on.

    ``statement_timeout`` (seconds, or ``None``) bounds each call into PyMongo
    made for an operation (see the module's docstring).
    """

    def __init__(
        self,
        driver: MongoDBDriver,
        session: AsyncClientSession | None = None,
        generation: Generation | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        self._driver = driver
        self._session = session
        self._generation = generation
        self._statement_timeout = statement_timeout

    def _bound(self) -> MongoDBOperations:
        """These operations on the driver's current opening (a transaction is bound already)."""
        if self._generation is not None:
            return self
        return MongoDBOperations(self._driver, self._session, self._driver._opening(), self._statement_timeout)

    def _timed(self) -> AbstractContextManager[None]:
        """The deadline of one call into PyMongo: ``pymongo.timeout(statement_timeout)``, or none."""
        seconds = self._statement_timeout
        return _UNBOUNDED if seconds is None else pymongo.timeout(seconds)

    @property
    def _gen(self) -> Generation:
        assert self._generation is not None, "operations run on an opening (see _bound)"
        return self._generation

    # -- the operations ----------------------------------------------------

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        return await self._bound()._insert_rows(schema, rows)

    async def upsert(self, schema: ModelSchema, rows: Sequence[Row], on: Sequence[Field]) -> Sequence[Any] | None:
        """One atomic write per row, in order, taken back on failure (see :mod:`ommi_mongodb._upsert`)."""
        return await self._bound()._upsert_rows(schema, list(rows), on)

    async def _upsert_rows(self, schema: ModelSchema, rows: list[Row], on: Sequence[Field]) -> Sequence[Any] | None:
        await self._settle()
        if self._session is None:
            # A cancelled upsert keeps nothing: it waits for the write in flight and takes back what it wrote.
            return await uninterrupted(lambda stop: upsert_rows(self, schema, rows, on, stop))
        return await upsert_rows(self, schema, rows, on, Stop())

    async def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        async with aclosing(self._bound()._fetch_rows(query, batch_size)) as batches:
            async for rows in batches:
                yield rows

    async def fetch_values(
        self, query: Query, fields: Sequence[Field], distinct: bool, batch_size: int
    ) -> AsyncGenerator[list[Row], None]:
        """Only the projected fields' paths are read (a ``find`` projection), in the order of :meth:`fetch`.

        A distinct projection takes the contract's default (the matching
        documents' fields, deduplicated in Python, then windowed): one
        ``$group`` stage would do it on the server, but MongoDB groups and
        sorts values by BSON's order (numbers of every type together, binary
        shorter first), not Ommi's, and the nx-27017 test server has no
        pipeline to check it against.
        """
        if distinct:
            batches = super().fetch_values(query, fields, distinct, batch_size)
        else:
            batches = self._bound()._fetch_rows(query, batch_size, fields)
        async with aclosing(batches):
            async for rows in batches:
                yield rows

    async def exists(self, query: Query) -> bool:
        """At most one document of the window, projected to its ``_id``."""
        async with aclosing(self._bound()._fetch_rows(query, 1, query.model.key)) as batches:
            async for rows in batches:
                if rows:
                    return True
        return False

    async def count(self, query: Query) -> int:
        return await self._bound()._count(query)

    async def aggregate(self, query: Query, aggregation: Aggregation) -> list[Row]:
        return await self._bound()._aggregate(query, aggregation)

    async def delete(self, query: Query) -> int:
        return await self._bound()._delete(query)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        return await self._bound()._update(query, values)

    # -- helpers -----------------------------------------------------------

    def _collection(self, schema: ModelSchema) -> AsyncCollection[dict[str, Any]]:
        return self._gen.database[self._driver.collection_name(schema)]

    def _exceptions(self, action: str, schema: ModelSchema) -> ExceptionMap:
        """The exception map of ``action`` on ``schema``'s collection."""
        return exceptions(
            f"{action} {self._driver.collection_name(schema)!r}", self._driver.description, self._statement_timeout
        )

    async def _find(
        self, schema: ModelSchema, flt: dict[str, Any], projection: dict[str, int] | None
    ) -> AsyncGenerator[Mapping[str, Any], None]:
        cursor = self._collection(schema).find(flt, projection=projection or None, session=self._session)
        try:
            while True:
                # Bounded a chunk at a time, never across the yield below.
                with map_exceptions(self._exceptions("read from", schema)), self._timed():
                    documents = await cursor.to_list(_FIND_CHUNK)
                for document in documents:
                    yield document
                if len(documents) < _FIND_CHUNK:
                    return
        finally:
            await cursor.close()

    async def _plan(self, query: Query) -> Plan:
        return await plan(query, self._find, id_filter, self._gen.forms)

    async def _settle(self) -> None:
        """Finish interrupted writes first, when the journal says some may be waiting (outside transactions)."""
        if self._session is not None:
            return
        journal = self._gen.journal
        if journal.due():
            with map_exceptions(exceptions("finish interrupted writes in", self._driver.description)):
                await journal.recover()

    async def _in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[Any]], stop: Stop) -> None:
        """Run ``work`` in a transaction of its own (replica sets and sharded clusters only)."""
        session = self._gen.client.start_session()
        try:
            await session.start_transaction()
            await work(session)
            stop.check()
            with self._timed():
                await session.commit_transaction()
        finally:
            # Ending the session aborts the transaction when it did not commit.
            await asyncio.shield(session.end_session())

    async def _journaled(
        self,
        journal: Journal,
        schema: ModelSchema,
        kind: str,
        steps: Callable[[Entry], Awaitable[None]],
        stop: Stop,
        **options: Any,
    ) -> None:
        try:
            await journal.run(self._driver.collection_name(schema), kind, steps, stop, **options)
        except LeaseLost:
            what = "add to" if kind == INSERT else "update of"
            raise OperationalError(
                f"the {what} {self._driver.collection_name(schema)!r} on {self._driver.description} was undone: it "
                f"went longer than the journal lease ({self._driver.journal_lease:g} s) without a sign of life, "
                "and another client took it for dead; nothing was changed. Retry it, and raise "
                "the driver's journal_lease setting if single writes take that long"
            ) from None

    # -- insert ------------------------------------------------------------

    async def _insert_rows(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        rows = list(rows)
        await self._settle()
        if self._session is None:
            # A cancelled add stores nothing: it waits for the write in flight and takes it back.
            return await uninterrupted(lambda stop: self._insert(schema, rows, stop))
        return await self._insert(schema, rows, Stop())

    async def _insert(self, schema: ModelSchema, rows: list[Row], stop: Stop) -> Sequence[Any] | None:
        auto = schema.auto_field
        for attempt in range(_GENERATED_KEY_ATTEMPTS):
            stop.check()
            generated: set[int] = set()
            if auto is None:
                filled = rows
            else:
                filled, generated = await self._fill_keys(schema, auto, rows, catch_up=attempt > 0)
            documents = [document_from_row(schema, row) for row in filled]
            with map_exceptions(self._exceptions("insert into", schema)):
                try:
                    await self._write(schema, filled, documents, stop)
                    if stop.requested:
                        # Cancelled while the server stored it (the journal takes its own writes back).
                        await self._delete_or_defer(schema, [document[ID] for document in documents])
                        raise Stopped
                    return None if auto is None else [row[auto.index] for row in filled]
                except PyMongoError as exc:
                    taken = _duplicate_id(exc, documents)
                    # A generated key found taken: new keys, unless a transaction
                    # (aborted by the error) or the last attempt forbids it.
                    if (
                        auto is None
                        or taken not in generated
                        or self._session is not None
                        or attempt + 1 == _GENERATED_KEY_ATTEMPTS
                    ):
                        raise
                    log.debug("insert.generated_key_taken", driver="mongodb", model=schema.name, attempt=attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fill_keys(
        self, schema: ModelSchema, auto: Field, rows: list[Row], *, catch_up: bool
    ) -> tuple[list[Row], set[int]]:
        """The rows with every missing key generated, and the generated keys."""
        keys = self._gen.keys
        chosen = [row[auto.index] for row in rows if row[auto.index] is not None]
        missing = len(rows) - len(chosen)
        with map_exceptions(self._exceptions("generate keys for", schema)):
            # Chosen keys first: a key generated from now on is larger than any of them.
            name = self._driver.collection_name(schema)
            with self._timed():
                await keys.observe(name, chosen)
            with self._timed():  # one deadline for the reservation (and its catching up, if any)
                fresh = await keys.reserve(name, missing, catch_up=catch_up) if missing else []
        generated = iter(fresh)
        index = auto.index
        filled = [row if row[index] is not None else (*row[:index], next(generated), *row[index + 1 :]) for row in rows]
        return filled, set(fresh)

    async def _write(self, schema: ModelSchema, rows: list[Row], documents: list[dict[str, Any]], stop: Stop) -> None:
        """Store ``documents``, all or none."""
        collection = self._collection(schema)
        if len(documents) == 1:
            with self._timed():
                await collection.insert_one(documents[0], session=self._session)
        elif self._session is not None:
            with self._timed():
                await collection.insert_many(documents, ordered=True, session=self._session)
        elif self._driver.capabilities.transactions:
            await self._in_transaction(lambda session: self._insert_timed(collection, documents, session), stop)
        else:
            batches = _batches(schema, rows, documents, self._driver.write_batch_bytes)
            if len(batches) == 1:
                await self._insert_message(schema, collection, documents)
            else:
                await self._insert_journaled(schema, collection, batches, stop)

    async def _insert_timed(
        self, collection: AsyncCollection[dict[str, Any]], documents: list[Any], session: AsyncClientSession | None
    ) -> None:
        """One ordered ``insert_many`` under the statement timeout."""
        with self._timed():
            await collection.insert_many(documents, ordered=True, session=session)

    async def _insert_message(
        self, schema: ModelSchema, collection: AsyncCollection[dict[str, Any]], documents: list[dict[str, Any]]
    ) -> None:
        """One insert message: the server gets all of it or none; a write error takes back what it had written."""
        try:
            await self._insert_timed(collection, documents, None)
        except BulkWriteError as exc:
            inserted = int(exc.details.get("nInserted", 0) or 0)
            if inserted:
                await self._delete_or_defer(schema, [document[ID] for document in documents[:inserted]])
            raise

    async def _delete_or_defer(self, schema: ModelSchema, ids: list[Any]) -> None:
        """Take back documents an insert wrote; what cannot be deleted now, the driver's next operation deletes."""
        collection = self._collection(schema)
        filters = _id_filters(schema, ids)
        for number, done in enumerate(filters):
            try:
                await collection.delete_many(done)
            except PyMongoError:
                journal = self._gen.journal
                for rest in filters[number:]:
                    journal.defer_delete(collection.name, rest)
                log.warning("insert.take_back_deferred", driver="mongodb", model=schema.name, documents=len(ids))
                return

    async def _insert_journaled(
        self, schema: ModelSchema, collection: AsyncCollection[dict[str, Any]], batches: list[list[Any]], stop: Stop
    ) -> None:
        """Several insert messages under a journal entry (see :mod:`ommi_mongodb._journal`)."""
        journal = self._gen.journal
        ids = [document[ID] for batch in batches for document in batch]
        new = _narrow(schema, ids)
        narrow = {NEW: new} if new is not None else {}

        async def steps(entry: Entry) -> None:
            written = 0
            for batch in batches:
                stop.check()
                await journal.renew(entry)
                try:
                    await self._insert_timed(collection, [{**document, NEW: entry.op} for document in batch], None)
                except BulkWriteError as exc:
                    for error in exc.details.get("writeErrors") or ():
                        error["index"] = int(error.get("index", 0)) + written  # as in the whole list
                    raise
                written += len(batch)

        await self._journaled(journal, schema, INSERT, steps, stop, narrow=narrow)

    # -- reads -------------------------------------------------------------

    async def _fetch_rows(
        self, query: Query, batch_size: int, fields: Sequence[Field] | None = None
    ) -> AsyncGenerator[list[Row], None]:
        """The rows of ``query`` in batches; with ``fields``, tuples of those fields only (``fetch_values``)."""
        schema = query.model
        read: Callable[[Mapping[str, Any]], Row]
        if fields is None:
            read, wanted = (lambda document: row_from_document(schema, document)), None
        else:
            read, wanted = projected_reader(fields), projection({field_path(f) for f in fields})
        if query.offset > _INT64_MAX:
            return  # more documents than any collection holds are skipped
        await self._settle()
        selection = await self._plan(query)
        if selection.matched == 0:
            return
        if any(key.field.storage is StorageType.BYTES for key in query.sort):
            async with aclosing(self._fetch_in_ommi_order(query, selection, batch_size, read)) as batches:
                async for rows in batches:
                    yield rows
            return
        batch_size = min(batch_size, _CURSOR_BATCH_MAX)
        # A limit beyond 64 bits limits nothing (MongoDB's limits are 64-bit integers).
        limit = query.limit if query.limit is not None and query.limit <= _INT64_MAX else 0
        cursor = self._collection(schema).find(
            selection.filter,
            projection=wanted,
            sort=_sort_spec(query) or None,
            skip=query.offset,
            limit=limit,
            batch_size=batch_size,
            session=self._session,
        )
        try:
            while True:
                with map_exceptions(self._exceptions("read from", schema)), self._timed():
                    documents = await cursor.to_list(batch_size)
                if not documents:
                    return
                yield [read(document) for document in documents]
                if len(documents) < batch_size:
                    return
        finally:
            await cursor.close()

    async def _fetch_in_ommi_order(
        self, query: Query, selection: Plan, batch_size: int, read: Callable[[Mapping[str, Any]], Row]
    ) -> AsyncGenerator[list[Row], None]:
        """The documents of a query sorted by a ``bytes`` field, in Ommi's order.

        MongoDB orders binary values shorter first (then by subtype, then byte
        by byte); Ommi orders bytes octet by octet, as Python does. So the sort
        keys of every matching document are read first (``_id`` and the sort
        fields only), ordered and windowed in Python, and the documents of the
        window are then read by ``_id``, a batch at a time. Memory grows with
        the number of matches (their keys and sort values), not their size.
        """
        schema = query.model
        paths = {field_path(key.field) for key in query.sort}
        keys = [document async for document in self._find(schema, selection.filter, projection(paths))]
        window = ordered(keys, query.sort, value_at)
        end = None if query.limit is None else query.offset + query.limit
        identities = [document[ID] for document in window[query.offset : end]]
        for start in range(0, len(identities), batch_size):
            chunk = identities[start : start + batch_size]
            found = {
                _hashable(document[ID]): document
                async for document in self._find(schema, id_filter(schema, chunk), None)
            }
            # A document deleted since its key was read is left out, as a later read would.
            rows = [read(found[key]) for key in map(_hashable, chunk) if key in found]
            if rows:
                yield rows

    async def _count(self, query: Query) -> int:
        await self._settle()
        selection = await self._plan(query)
        if selection.matched is not None:
            return _window_count(selection.matched, query)
        with map_exceptions(self._exceptions("count in", query.model)), self._timed():
            total = await self._collection(query.model).count_documents(selection.filter, session=self._session)
        return _window_count(total, query)

    async def _aggregate(self, query: Query, aggregation: Aggregation) -> list[Row]:
        """A ``$group`` pipeline (``ommi_mongodb._aggregate``), or the default where the server cannot be exact."""
        forms = self._gen.forms
        if not on_server(aggregation, forms):
            return await super().aggregate(query, aggregation)
        await self._settle()
        selection = await self._plan(query)
        rows: list[Row] = []
        if selection.matched != 0:
            built = group_pipeline(selection.filter, aggregation, forms)
            if built is None:
                return await super().aggregate(query, aggregation)
            pipeline, finish = built
            collection = self._collection(query.model)
            with map_exceptions(self._exceptions("aggregate", query.model)), self._timed():
                cursor = await collection.aggregate(pipeline, session=self._session)
                try:
                    documents = await cursor.to_list(None)
                finally:
                    await cursor.close()  # also when cancelled: the cursor gives its connection back
            rows = [finish(document) for document in documents]
        if not aggregation.group_by and not rows:
            rows = [empty_row(aggregation)]
        return finish_groups(rows, aggregation)

    # -- writes ------------------------------------------------------------

    async def _delete(self, query: Query) -> int:
        await self._settle()
        selection = await self._plan(query)
        if selection.matched == 0:
            return 0
        with map_exceptions(self._exceptions("delete from", query.model)), self._timed():
            result = await self._collection(query.model).delete_many(selection.filter, session=self._session)
        return int(result.deleted_count)

    async def _update(self, query: Query, values: Mapping[Field, Any]) -> int:
        schema = query.model
        for f, value in values.items():
            if f.key and value is None:
                raise ValidationError(
                    f"update of {schema.name}: key field {f.name} cannot be set to None (MongoDB driver); "
                    "a stored document needs its whole key, so nothing was changed"
                )
        computed = any(isinstance(v, (Field, Arithmetic)) for v in values.values())
        if computed:
            if any(f.key for f in values):
                raise UnsupportedFeature(
                    f"update of {schema.name}: the MongoDB driver cannot change a key and compute a value in one "
                    "update (a key change rewrites each document); nothing was changed. Run two updates"
                )
            touched = {id(f) for f in values}
            unique = any(c.unique and any(id(f) in touched for f in c.fields) for c in schema.constraints)
            if unique and self._session is None:
                raise UnsupportedFeature(
                    f"update of {schema.name}: the MongoDB driver computes a unique field's new values on the "
                    "server and cannot check them all before it writes outside a transaction; nothing was changed"
                )
            # Refused before any I/O when the server lacks what the values need.
            expression = plan_update(values, self._gen.forms.update_pipelines, self._driver.description)
        await self._settle()
        selection = await self._plan(query)
        if selection.matched == 0:
            return 0
        if computed:
            return await self._update_computed(schema, selection.filter, values, expression)
        if any(f.key for f in values):
            return await self._rewrite(schema, selection.filter, values)
        changes = {stored_name(f.column): encode_value(f.storage, v) for f, v in values.items()}
        if selection.matched != 1 and self._session is None:  # None: not counted
            await self._refuse_collisions(schema, selection.filter, values)
        with map_exceptions(self._exceptions("update", schema)), self._timed():
            result = await self._collection(schema).update_many(
                selection.filter, {"$set": changes}, session=self._session
            )
        return int(result.matched_count)

    async def _update_computed(
        self, schema: ModelSchema, flt: dict[str, Any], values: Mapping[Field, Any], expression: ExpressionUpdate
    ) -> int:
        """An update with expressions or copies (``ommi_mongodb._expressions``): range check, then one write."""
        collection = self._collection(schema)
        if expression.out_of_range:
            out = {"$and": [flt, {"$or": expression.out_of_range}]}
            with map_exceptions(self._exceptions("update", schema)), self._timed():
                found = await collection.find_one(out, {ID: 1}, session=self._session)
            if found is not None:
                raise ValidationError(
                    f"update {self._driver.collection_name(schema)!r} on {self._driver.description}: the result "
                    f"for the document {found[ID]!r} is outside its field's range (an int beyond 64 bits, or a "
                    "float that is not finite); nothing was written"
                )
        with map_exceptions(self._exceptions("update", schema)), self._timed():
            result = await collection.update_many(flt, expression.update, session=self._session)
        return int(result.matched_count)

    async def _refuse_collisions(self, schema: ModelSchema, flt: dict[str, Any], values: Mapping[Field, Any]) -> None:
        """Before an ``update_many`` outside a transaction: refuse it when it would break a unique constraint.

        Outside a transaction MongoDB applies ``update_many`` document by
        document, so a unique index refusing the third document would leave
        the first two changed. The values each matched document would get are
        checked first, among themselves and against the other documents; the
        unique index still refuses what a concurrent writer slips in between.
        """
        changed = {id(f) for f in values}
        touched = [c for c in schema.constraints if c.unique and any(id(f) in changed for f in c.fields)]
        if not touched:
            return
        given = {id(f): encode_value(f.storage, v) for f, v in values.items()}
        collection = self._collection(schema)
        where = f"update {self._driver.collection_name(schema)!r} on {self._driver.description}"
        paths = {field_path(f) for c in touched for f in c.fields}
        with map_exceptions(self._exceptions("update", schema)), self._timed():
            documents = await collection.find(flt, {p: 1 for p in paths}).to_list()
        ids = [d[ID] for d in documents]
        for constraint in touched:
            tuples = []
            for document in documents:
                new = tuple(
                    given[id(f)] if id(f) in given else encode_value(f.storage, value_at(document, f))
                    for f in constraint.fields
                )
                if None not in new:
                    tuples.append(new)
            if not tuples:
                continue
            if len(set(map(repr, tuples))) != len(tuples):
                raise IntegrityError(
                    f"{where} failed: several documents would share values of the {constraint.describe()}; "
                    "nothing was changed"
                )
            paths_of = [field_path(f) for f in constraint.fields]
            for start in range(0, len(tuples), _KEYS_PER_FILTER):
                chunk = tuples[start : start + _KEYS_PER_FILTER]
                clash = {
                    "$and": [
                        {ID: {"$nin": ids}},
                        {"$or": [dict(zip(paths_of, values_, strict=True)) for values_ in chunk]},
                    ]
                }
                with map_exceptions(self._exceptions("update", schema)), self._timed():
                    taken = await collection.find_one(clash, {ID: 1})
                if taken is not None:
                    raise IntegrityError(
                        f"{where} failed: duplicate key: another document holds values of the "
                        f"{constraint.describe()} that the update would give; nothing was changed"
                    )

    async def _rewrite(self, schema: ModelSchema, flt: dict[str, Any], values: Mapping[Field, Any]) -> int:
        """Update key fields: replace each matching document by one with the new ``_id``, all or none."""
        collection = self._collection(schema)
        with map_exceptions(self._exceptions("update", schema)), self._timed():
            old = await collection.find(flt, session=self._session).to_list()
        if not old:
            return 0
        replacements: list[dict[str, Any]] = []
        renamed: list[dict[str, Any]] = []  # the replacements under a new _id
        moved: list[Any] = []  # the _id of each document that gets a new one
        kept: list[Any] = []  # the _id of each document whose key the update leaves as it is
        for document in old:
            row = list(row_from_document(schema, document))
            for f, value in values.items():
                row[f.index] = value
            replacement = {name: value for name, value in document.items() if name not in MARKERS}
            replacement.update(document_from_row(schema, tuple(row)))
            replacements.append(replacement)
            if _same_identity(replacement[ID], document[ID]):
                kept.append(document[ID])
            else:
                moved.append(document[ID])
                renamed.append(replacement)
        new_ids = [repr(_hashable(document[ID])) for document in replacements]
        if len(set(new_ids)) != len(new_ids):
            raise IntegrityError(
                f"update {self._driver.collection_name(schema)!r} on {self._driver.description} failed: "
                "several documents would get the same key; nothing was changed"
            )
        auto = schema.auto_field
        if auto is not None and auto in values and values[auto] is not None:
            with map_exceptions(self._exceptions("generate keys for", schema)), self._timed():
                await self._gen.keys.observe(self._driver.collection_name(schema), [values[auto]])
        old_ids = [document[ID] for document in old]
        changes = {stored_name(f.column): encode_value(f.storage, v) for f, v in values.items() if not f.key}
        with map_exceptions(self._exceptions("update", schema)):
            if self._session is not None:
                await self._replace(schema, collection, old_ids, replacements, self._session)
            elif self._driver.capabilities.transactions:
                await uninterrupted(
                    lambda stop: self._in_transaction(
                        lambda session: self._replace(schema, collection, old_ids, replacements, session), stop
                    )
                )
            elif not moved:
                if changes:  # no key changes after all: an update of the other fields
                    with self._timed():
                        await collection.update_many(flt, {"$set": changes})
            else:
                await uninterrupted(
                    lambda stop: self._rewrite_journaled(schema, collection, moved, renamed, kept, changes, stop)
                )
        return len(old)

    async def _replace(
        self,
        schema: ModelSchema,
        collection: AsyncCollection[dict[str, Any]],
        old_ids: list[Any],
        replacements: list[dict[str, Any]],
        session: AsyncClientSession,
    ) -> None:
        """Inside a transaction: delete the old documents, insert their replacements."""
        for old in _id_filters(schema, old_ids):
            with self._timed():
                await collection.delete_many(old, session=session)
        await self._insert_timed(collection, replacements, session)

    async def _rewrite_journaled(
        self,
        schema: ModelSchema,
        collection: AsyncCollection[dict[str, Any]],
        moved: list[Any],
        renamed: list[dict[str, Any]],
        kept: list[Any],
        changes: dict[str, Any],
        stop: Stop,
    ) -> None:
        """On a standalone server: the new documents are written before the old ones go (see ``_journal``)."""
        journal = self._gen.journal
        narrowed = {
            NEW: _narrow(schema, [document[ID] for document in renamed]),
            OLD: _narrow(schema, moved),
            SET: _narrow(schema, kept),
        }
        narrow = {marker: flt for marker, flt in narrowed.items() if flt is not None}
        limit = self._driver.write_batch_bytes

        async def steps(entry: Entry) -> None:
            for marker, ids in ((OLD, moved), (SET, kept)):
                for chosen in _id_filters(schema, ids):
                    stop.check()
                    await journal.renew(entry)
                    with self._timed():
                        await collection.update_many(chosen, {"$set": {marker: entry.op}})
            marked = [{**document, NEW: entry.op} for document in renamed]
            # Sized with the collection's codec options (standard UUIDs): bson's defaults refuse a uuid.UUID.
            options = collection.codec_options
            sizes = [len(bson.encode(document, codec_options=options)) for document in marked]
            for batch in _split(marked, sizes, limit):
                stop.check()
                await journal.renew(entry)
                await self._insert_timed(collection, batch, None)

        await self._journaled(journal, schema, REWRITE, steps, stop, changes=changes if kept else None, narrow=narrow)
