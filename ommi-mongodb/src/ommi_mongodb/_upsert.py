"""``upsert`` on MongoDB: one atomic single-document write per row, in order, taken back on failure.

Each row is written by atomic single-document writes:

* ``find_one_and_update(filter, {"$set": every non-key field})``, the
  filter being the ``_id`` (by key) or the constraint's fields and, when the
  row has one, its own ``_id`` (on a unique constraint); the key of a matched
  document is read from the document it returns. Nothing matched: ``insert_one`` under the row's key (or a key from
  the driver's counters), which the unique index refuses when a document
  holds those values under another key (``IntegrityError``) or when a
  concurrent upsert inserted it meanwhile (then the write is sent again, and
  matches). ``upsert=True`` (with ``$setOnInsert`` of the ``_id``) would save
  a round trip for a new row, but not every server honours it: the
  wire-protocol test server generates an ObjectId instead of the ``_id`` set
  there, and reports success for an upsert whose insert a unique index
  refuses, storing nothing. The two steps behave the same on every server;
* a row that cannot match (a generated key ``None`` by key, ``None`` in a
  field of the constraint): ``insert_one`` under a key from the driver's
  counters (as ``insert``).

Each write returns the document as it was before (``None``: inserted), which
the call keeps: when a later row fails (a unique index refuses it) or the
caller is cancelled, the writes already made are taken back in reverse
order (the previous document put back, an inserted one deleted), so the call
stores all or nothing. Without a transaction this is the take-back
``insert`` does for one message, not a journal: a client dying in the middle
of it leaves the rows written so far. Inside a transaction the server's
rollback is the guarantee.

A concurrent upsert of the same document can make an upsert's insert fail on
the unique index (the other one inserted first); the write is sent again, then
matching the stored document, up to :data:`_ATTEMPTS` times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ommi.drivers import get_logger, map_exceptions
from ommi.models.schema import Field, ModelSchema
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from ommi_mongodb._errors import is_duplicate_key
from ommi_mongodb._journal import Stop
from ommi_mongodb._values import (
    ID,
    document_from_row,
    encode_value,
    field_path,
    id_filter,
    row_from_document,
    stored_name,
)

if TYPE_CHECKING:
    from ommi.drivers.base import Row
    from pymongo.asynchronous.collection import AsyncCollection

    from ommi_mongodb._operations import MongoDBOperations

__all__ = ["upsert_rows"]

log = get_logger("ommi.mongodb.operations")

_ATTEMPTS = 3
"""Times one row's write is sent when its insert loses a race on a unique index."""


async def upsert_rows(
    ops: MongoDBOperations, schema: ModelSchema, rows: list[Row], on: Sequence[Field], stop: Stop
) -> Sequence[Any] | None:
    """Write ``rows`` in order (see the module's docstring); the stored key of each when the model generates keys."""
    auto = schema.auto_field
    by_key = [id(f) for f in on] == [id(f) for f in schema.key]
    filled = rows
    if auto is not None:
        filled, _ = await ops._fill_keys(schema, auto, rows, catch_up=False)
    collection = ops._collection(schema)
    session = ops._session
    done: list[tuple[Any, dict[str, Any] | None]] = []  # (_id, the document before) of each write made
    keys: list[Any] = []
    try:
        with map_exceptions(ops._exceptions("upsert into", schema)):
            for row, given in zip(filled, rows, strict=True):
                stop.check()
                document = document_from_row(schema, row)
                generated = auto is not None and given[auto.index] is None
                if (by_key and generated) or (not by_key and any(row[f.index] is None for f in on)):
                    with ops._timed():
                        await collection.insert_one(document, session=session)
                    done.append((document[ID], None))
                    keys.append(None if auto is None else row[auto.index])
                    continue
                # One row's write under statement_timeout (the take-back below is never bounded).
                with ops._timed():
                    before, identity = await _write_one(
                        collection, schema, document, row, on, by_key, generated, session
                    )
                done.append((identity, before))
                if auto is not None:
                    keys.append(row[auto.index] if before is None else row_from_document(schema, before)[auto.index])
            stop.check()
    except BaseException:
        await asyncio.shield(_take_back(ops, schema, collection, done))
        raise
    return keys if auto is not None else None


async def _write_one(
    collection: AsyncCollection[dict[str, Any]],
    schema: ModelSchema,
    document: dict[str, Any],
    row: Row,
    on: Sequence[Field],
    by_key: bool,
    generated: bool,
    session: Any,
) -> tuple[dict[str, Any] | None, Any]:
    """One row's atomic write: the document before it (``None``: inserted) and the written document's ``_id``."""
    if by_key:
        flt = _identity_filter(schema, document[ID])
    else:
        flt = {field_path(f): encode_value(f.storage, row[f.index]) for f in on}
        if not generated:
            if len(schema.key) == 1:
                flt[ID] = document[ID]
            else:
                flt.update({f"{ID}.{part}": value for part, value in document[ID].items()})
    update = _setting(schema, document)
    for attempt in range(_ATTEMPTS):
        try:
            if update:
                before = await collection.find_one_and_update(
                    flt, update, return_document=ReturnDocument.BEFORE, session=session
                )
            else:
                before = await collection.find_one(flt, session=session)
            if before is not None:
                return before, before[ID]
            # No match: inserted under its own key; a document with these values inserted meanwhile
            # (or one under another key) makes the unique index refuse it.
            await collection.insert_one(document, session=session)
            return None, document[ID]
        except PyMongoError as exc:
            if session is not None or not is_duplicate_key(exc) or attempt + 1 == _ATTEMPTS:
                raise
            log.debug("upsert.insert_raced", driver="mongodb", model=schema.name, attempt=attempt + 1)
    raise AssertionError("unreachable")  # pragma: no cover


def _identity_filter(schema: ModelSchema, identity: Any) -> dict[str, Any]:
    return id_filter(schema, [identity]) if len(schema.key) > 1 else {ID: identity}


def _setting(schema: ModelSchema, document: dict[str, Any]) -> dict[str, Any]:
    """The update making a stored document's model fields those of ``document`` (``$set``, ``$unset`` the absent).

    Fields the model does not know (another version's) are left alone, as a SQL
    ``UPDATE`` leaves other columns. A whole-document replacement would be one
    step less, but the wire-protocol test server cannot replace a document
    holding binary data (it stores nothing and reports no match).
    """
    names = [stored_name(f.column) for f in schema.fields if not f.key]
    update: dict[str, Any] = {}
    given = {name: document[name] for name in names if name in document}
    absent = {name: "" for name in names if name not in document}
    if given:
        update["$set"] = given
    if absent:
        update["$unset"] = absent
    return update


async def _take_back(
    ops: MongoDBOperations,
    schema: ModelSchema,
    collection: AsyncCollection[dict[str, Any]],
    done: list[tuple[Any, dict[str, Any] | None]],
) -> None:
    """Undo the writes of a failed or cancelled call, last first; what fails to undo is logged, never raised."""
    session = ops._session
    for identity, before in reversed(done):
        flt = _identity_filter(schema, identity)
        try:
            if before is None:
                await collection.delete_one(flt, session=session)
            else:
                update = _setting(schema, before)
                if update:
                    await collection.update_one(flt, update, session=session)
        except PyMongoError:
            # Inside a transaction the server's rollback undoes it anyway (a failed write may have aborted it).
            if session is None:
                log.warning("upsert.take_back_failed", driver="mongodb", model=schema.name, exc_info=True)
