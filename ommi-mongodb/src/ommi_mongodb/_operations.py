"""insert / fetch / count / update / delete on MongoDB, shared by the driver and its transactions.

Outside a transaction each operation stands alone. An insert of several
documents that fails part-way removes the documents it had already written, so
that all or none are stored (readers may glimpse them meanwhile; inside a
transaction the server itself guarantees it). Changing a key field rewrites
the document, since MongoDB never changes an ``_id`` in place.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from ommi.drivers import get_logger
from ommi.drivers.base import Operations, Row
from ommi.errors import IntegrityError, ValidationError
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.query.ast import Query
from ommi.query.evaluate import ordered
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from ommi_mongodb._errors import is_duplicate_key, map_exceptions
from ommi_mongodb._plan import Plan, plan, projection
from ommi_mongodb._values import (
    ID,
    document_from_row,
    encode_value,
    field_path,
    id_filter,
    row_from_document,
    stored_name,
    value_at,
)

if TYPE_CHECKING:
    from ommi_mongodb.driver import MongoDBDriver

__all__ = ["MongoOperations"]

log = get_logger("ommi.mongodb.operations")

_GENERATED_KEY_ATTEMPTS = 5
"""Inserts tried with fresh generated keys before a taken one is reported."""

_INT64_MAX = 2**63 - 1
_CURSOR_BATCH_MAX = 2**31 - 1


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
    elif isinstance(getattr(exc, "details", None), dict):
        details = exc.details  # type: ignore[attr-defined]
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


def _window_count(total: int, query: Query) -> int:
    remaining = max(0, total - query.offset)
    return remaining if query.limit is None else min(remaining, query.limit)


class MongoOperations(Operations):
    """The data operations, run without a session or inside one transaction's session."""

    def __init__(self, driver: MongoDBDriver, session: AsyncClientSession | None = None) -> None:
        self._driver = driver
        self._session = session

    # -- helpers -----------------------------------------------------------

    def _collection(self, schema: ModelSchema) -> AsyncCollection[dict[str, Any]]:
        return self._driver._database()[self._driver.collection_name(schema)]

    def _where(self, action: str, schema: ModelSchema) -> tuple[str, str]:
        return f"{action} {self._driver.collection_name(schema)!r}", self._driver.description

    async def _find(
        self, schema: ModelSchema, flt: dict[str, Any], projection: dict[str, int] | None
    ) -> AsyncGenerator[Mapping[str, Any], None]:
        cursor = self._collection(schema).find(flt, projection=projection or None, session=self._session)
        try:
            with map_exceptions(*self._where("read from", schema)):
                async for document in cursor:
                    yield document
        finally:
            await cursor.close()

    async def _plan(self, query: Query) -> Plan:
        return await plan(query, self._find, id_filter)

    # -- insert ------------------------------------------------------------

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        rows = list(rows)
        auto = schema.auto_field
        if auto is None:
            with map_exceptions(*self._where("insert into", schema)):
                await self._insert_documents(schema, [document_from_row(schema, row) for row in rows])
            return None
        for attempt in range(_GENERATED_KEY_ATTEMPTS):
            filled, generated = await self._fill_keys(schema, auto, rows, catch_up=attempt > 0)
            documents = [document_from_row(schema, row) for row in filled]
            with map_exceptions(*self._where("insert into", schema)):
                try:
                    await self._insert_documents(schema, documents)
                    return [row[auto.index] for row in filled]
                except PyMongoError as exc:
                    taken = _duplicate_id(exc, documents)
                    # A generated key found taken: new keys, unless a transaction
                    # (aborted by the error) or the last attempt forbids it.
                    if taken not in generated or self._session is not None or attempt + 1 == _GENERATED_KEY_ATTEMPTS:
                        raise
                    log.debug("insert.generated_key_taken", driver="mongodb", model=schema.name, attempt=attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fill_keys(
        self, schema: ModelSchema, auto: Field, rows: list[Row], *, catch_up: bool
    ) -> tuple[list[Row], set[int]]:
        """The rows with every missing key generated, and the generated keys."""
        keys = self._driver._keys()
        chosen = [row[auto.index] for row in rows if row[auto.index] is not None]
        missing = len(rows) - len(chosen)
        with map_exceptions(*self._where("generate keys for", schema)):
            # Chosen keys first: a key generated from now on is larger than any of them.
            name = self._driver.collection_name(schema)
            await keys.observe(name, chosen)
            fresh = await keys.reserve(name, missing, catch_up=catch_up) if missing else []
        generated = iter(fresh)
        index = auto.index
        filled = [row if row[index] is not None else (*row[:index], next(generated), *row[index + 1 :]) for row in rows]
        return filled, set(fresh)

    async def _insert_documents(self, schema: ModelSchema, documents: list[dict[str, Any]]) -> None:
        """Insert in order; outside a transaction a failure takes back what was written."""
        collection = self._collection(schema)
        if len(documents) == 1:
            await collection.insert_one(documents[0], session=self._session)
            return
        try:
            await collection.insert_many(documents, ordered=True, session=self._session)
        except BulkWriteError as exc:
            inserted = int(exc.details.get("nInserted", 0) or 0)
            if self._session is None and inserted:
                # All or none: take back what the failed batch had written.
                done = [document[ID] for document in documents[:inserted]]
                await collection.delete_many(id_filter(schema, done))
            raise

    # -- reads -------------------------------------------------------------

    async def fetch(self, query: Query, batch_size: int) -> AsyncIterator[list[Row]]:
        schema = query.model
        if query.offset > _INT64_MAX:
            return  # more documents than any collection holds are skipped
        selection = await self._plan(query)
        if selection.matched == 0:
            return
        if any(key.field.storage is StorageType.BYTES for key in query.sort):
            async with aclosing(self._fetch_in_ommi_order(query, selection, batch_size)) as batches:
                async for rows in batches:
                    yield rows
            return
        batch_size = min(batch_size, _CURSOR_BATCH_MAX)
        # A limit beyond 64 bits limits nothing (MongoDB's limits are 64-bit integers).
        limit = query.limit if query.limit is not None and query.limit <= _INT64_MAX else 0
        cursor = self._collection(schema).find(
            selection.filter,
            sort=_sort_spec(query) or None,
            skip=query.offset,
            limit=limit,
            batch_size=batch_size,
            session=self._session,
        )
        try:
            while True:
                with map_exceptions(*self._where("read from", schema)):
                    documents = await cursor.to_list(batch_size)
                if not documents:
                    return
                yield [row_from_document(schema, document) for document in documents]
                if len(documents) < batch_size:
                    return
        finally:
            await cursor.close()

    async def _fetch_in_ommi_order(
        self, query: Query, selection: Plan, batch_size: int
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
            rows = [row_from_document(schema, found[key]) for key in map(_hashable, chunk) if key in found]
            if rows:
                yield rows

    async def count(self, query: Query) -> int:
        selection = await self._plan(query)
        if selection.matched is not None:
            return _window_count(selection.matched, query)
        with map_exceptions(*self._where("count in", query.model)):
            total = await self._collection(query.model).count_documents(selection.filter, session=self._session)
        return _window_count(total, query)

    # -- writes ------------------------------------------------------------

    async def delete(self, query: Query) -> int:
        selection = await self._plan(query)
        if selection.matched == 0:
            return 0
        with map_exceptions(*self._where("delete from", query.model)):
            result = await self._collection(query.model).delete_many(selection.filter, session=self._session)
        return int(result.deleted_count)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        schema = query.model
        for f, value in values.items():
            if f.key and value is None:
                raise ValidationError(
                    f"update of {schema.name}: key field {f.name} cannot be set to None (MongoDB driver); "
                    "a stored document needs its whole key, so nothing was changed"
                )
        selection = await self._plan(query)
        if selection.matched == 0:
            return 0
        if any(f.key for f in values):
            return await self._rewrite(schema, selection.filter, values)
        changes = {stored_name(f.column): encode_value(f.storage, v) for f, v in values.items()}
        with map_exceptions(*self._where("update", schema)):
            result = await self._collection(schema).update_many(
                selection.filter, {"$set": changes}, session=self._session
            )
        return int(result.matched_count)

    async def _rewrite(self, schema: ModelSchema, flt: dict[str, Any], values: Mapping[Field, Any]) -> int:
        """Update key fields: replace each matching document by one with the new ``_id``."""
        collection = self._collection(schema)
        with map_exceptions(*self._where("update", schema)):
            old = [document async for document in collection.find(flt, session=self._session)]
        if not old:
            return 0
        replacements = []
        for document in old:
            row = list(row_from_document(schema, document))
            for f, value in values.items():
                row[f.index] = value
            replacement = {**document, **document_from_row(schema, tuple(row))}
            replacements.append(replacement)
        new_ids = [repr(document[ID]) for document in replacements]
        if len(set(new_ids)) != len(new_ids):
            raise IntegrityError(
                f"update {self._driver.collection_name(schema)!r} on {self._driver.description} failed: "
                "several documents would get the same key"
            )
        auto = schema.auto_field
        if auto is not None and auto in values and values[auto] is not None:
            with map_exceptions(*self._where("generate keys for", schema)):
                await self._driver._keys().observe(self._driver.collection_name(schema), [values[auto]])
        old_ids = [document[ID] for document in old]
        with map_exceptions(*self._where("update", schema)):
            await collection.delete_many(id_filter(schema, old_ids), session=self._session)
            try:
                await collection.insert_many(replacements, ordered=True, session=self._session)
            except BulkWriteError as exc:
                if self._session is None:
                    # Put the original documents back before reporting the failure.
                    written = int(exc.details.get("nInserted", 0) or 0)
                    done = [document[ID] for document in replacements[:written]]
                    if done:
                        await collection.delete_many(id_filter(schema, done))
                    await collection.insert_many(old, ordered=False)
                raise
        return len(old)
