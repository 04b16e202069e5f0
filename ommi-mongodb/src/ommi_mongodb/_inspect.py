"""``ommi inspect`` on MongoDB: the database's collections read into models.

Every collection under the driver's ``collection_prefix`` except the
driver's own (counters, schema records, journal, migration lock, anything
starting with ``system.``) and the ``ommi_migrations`` history. The key is
``_id`` (a single key, or the parts of an ``_id`` document for a composite
one). Field types come from the driver's schema record of the collection
when it has one (written by ``use_models()``: exact, nullability included);
otherwise from a sample of at most :data:`SAMPLE_SIZE` documents, and the
printed module says so for that collection: a field missing or ``null`` in a
sampled document is optional, a field holding values of two types or of one
no storage type fits (an ObjectId, an array, a sub-document) skips the
collection, and a BSON date is an aware date-time (BSON stores instants).
MongoDB stores no references: no field is printed with ``ReferenceTo``.

Indexes come from ``listIndexes``, as the drift check reads them, and map
to fields through where each field is stored (``_id``, ``_id.<part>``, the
escaped name). Left out: ``_id_``, a composite key's own unique index, and
with a note, any index a ``Unique``/``Index`` cannot make
(:func:`ommi_mongodb._schema.undeclarable`: descending, partial other than
the ``null``-excluding filter Ommi gives unique indexes, sparse, TTL...), one
on a path no mapped field is stored at, and the ``ix_<collection>_<field>``
index the driver makes for a ``ReferenceTo`` field.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bson import Decimal128
from ommi.migrations.inspection import (
    InspectedColumn,
    InspectedIndex,
    InspectedTable,
    Inspection,
    build_inspection,
)
from ommi.migrations.state import HISTORY_TABLE
from ommi.models.types import StorageType
from pymongo.asynchronous.database import AsyncDatabase

from ommi_mongodb._schema import read_indexes, stored_keys, undeclarable
from ommi_mongodb._values import ID, stored_name

__all__ = ["SAMPLE_SIZE", "inspect"]

SAMPLE_SIZE = 100
"""Documents read from a collection without a schema record to guess its fields' types."""

_SAMPLED_TYPES: tuple[tuple[type, StorageType], ...] = (
    (bool, StorageType.BOOLEAN),  # before int: a bool is an int
    (int, StorageType.INTEGER),
    (float, StorageType.FLOAT),
    (str, StorageType.TEXT),
    (bytes, StorageType.BYTES),
    (Decimal128, StorageType.DECIMAL),
    (decimal.Decimal, StorageType.DECIMAL),
    (uuid.UUID, StorageType.UUID),
    (_dt.datetime, StorageType.DATETIME_TZ),
    (Mapping, StorageType.JSON),  # read back as dict[str, Any]
    (list, StorageType.JSON),
)


def _unescaped(name: str) -> str | None:
    """The column whose stored name is ``name`` (undoing :func:`stored_name`), or ``None`` if none is."""
    column = name
    if column == "%5Fid":
        column = ID
    if column.startswith("%24"):
        column = "$" + column[3:]
    column = column.replace("%2E", ".").replace("%25", "%")
    return column if stored_name(column) == name else None


def _type_of(value: Any) -> tuple[StorageType | None, str]:
    for kind, storage in _SAMPLED_TYPES:
        if isinstance(value, kind):
            return storage, storage.value
    return None, type(value).__name__


def _from_record(name: str, fields: Sequence[Mapping[str, Any]]) -> InspectedTable:
    keys = [entry for entry in fields if entry.get("key")]
    single_int = len(keys) == 1 and keys[0].get("storage") == StorageType.INTEGER.value
    columns = []
    position = 0
    for entry in fields:
        storage_name = str(entry.get("storage"))
        storage = next((s for s in StorageType if s.value == storage_name), None)
        key = 0
        if entry.get("key"):
            position += 1
            key = position
        columns.append(
            InspectedColumn(
                str(entry.get("column")),
                storage_name,
                storage,
                nullable=bool(entry.get("nullable")),
                key=key,
                generated=single_int and bool(key),
            )
        )
    return InspectedTable(name, columns, note="field types from the driver's schema record")


def _from_sample(name: str, documents: Sequence[Mapping[str, Any]]) -> InspectedTable:
    """Guess the fields of ``documents`` (the key from ``_id``); an empty sample has only an int key."""
    seen: dict[str, dict[str, StorageType | None]] = {}  # column -> native type name -> storage
    present: dict[str, int] = {}
    key_columns: list[str] = []
    bad_names: list[str] = []

    def note(column: str, value: Any) -> None:
        if value is None:
            return
        storage, native = _type_of(value)
        seen.setdefault(column, {})[native] = storage
        present[column] = present.get(column, 0) + 1

    for document in documents:
        for field, value in document.items():
            if field == ID:
                if isinstance(value, Mapping):
                    for part, part_value in value.items():
                        column = _unescaped(str(part))
                        if column is None:
                            bad_names.append(str(part))
                            continue
                        if column not in key_columns:
                            key_columns.append(column)
                        note(column, part_value)
                else:
                    if ID not in key_columns:
                        key_columns.append(ID)
                    note(ID, value)
                continue
            column = _unescaped(str(field))
            if column is None:
                bad_names.append(str(field))
                continue
            note(column, value)
            seen.setdefault(column, {})
    if not documents:
        key_columns, seen[ID] = [ID], {"integer": StorageType.INTEGER}
    columns = []
    # The single key keeps the name "id" in the model when no other field has it.
    key_name = {ID: "id" if "id" not in seen and ID in key_columns else ID}
    for column, natives in seen.items():
        storages = set(natives.values())
        native = " or ".join(sorted(natives)) or "always null"
        storage = storages.pop() if len(storages) == 1 else None
        key = key_columns.index(column) + 1 if column in key_columns else 0
        columns.append(
            InspectedColumn(
                key_name.get(column, column),
                native,
                storage,
                nullable=present.get(column, 0) < len(documents),
                key=key,
                generated=key == 1 and len(key_columns) == 1 and storage is StorageType.INTEGER,
            )
        )
    columns.extend(InspectedColumn(f, "a field name Ommi cannot store", None) for f in sorted(set(bad_names)))
    return InspectedTable(name, columns, note=f"field types guessed from a sample of {len(documents)} documents")


async def inspect(
    database: AsyncDatabase[dict[str, Any]], prefix: str, reserved: Sequence[str], schema_collection: str, where: str
) -> Inspection:
    """Read the collections of ``database`` (under ``prefix``) into an :class:`Inspection`."""
    names = sorted(await database.list_collection_names())
    records = {str(record["_id"]): record async for record in database[schema_collection].find({})}
    tables = []
    for collection in names:
        if collection in reserved or collection.startswith("system.") or not collection.startswith(prefix):
            continue
        model = collection[len(prefix) :]
        if not model or model.casefold() == HISTORY_TABLE:
            continue
        record = records.get(collection)
        if record is not None and isinstance(record.get("fields"), list):
            table = _from_record(model, record["fields"])
        else:
            documents = [doc async for doc in database[collection].find({}).limit(SAMPLE_SIZE)]
            table = _from_sample(model, documents)
        stored = await read_indexes(database[collection])
        tables.append(replace(table, indexes=_indexes(collection, table.columns, stored)))
    return build_inspection(f"MongoDB {where}", tables)


def _indexes(
    collection: str, columns: Sequence[InspectedColumn], stored: Sequence[Mapping[str, Any]]
) -> list[InspectedIndex]:
    """The stored indexes of ``collection`` over the fields of ``columns``, ``_id_`` and a composite key's left out."""
    key = [c.name for c in columns if c.key]
    paths = {stored_name(c.name): c.name for c in columns if not c.key}
    if len(key) == 1:
        paths[ID] = key[0]
    else:
        paths.update({f"{ID}.{stored_name(name)}": name for name in key})
    indexes = []
    for info in stored:
        name = str(info.get("name"))
        keys, unique = stored_keys(info)
        if not keys or name == "_id_" or keys == ((ID, 1),):
            continue
        mapped = [paths.get(path) for path, _ in keys]
        if unique and len(key) > 1 and sorted(map(str, mapped)) == sorted(key):
            continue  # the driver's own index on a composite key's parts
        why = undeclarable(info)
        unmapped = [path for (path, _), column in zip(keys, mapped, strict=True) if column is None]
        if why is None and unmapped:
            why = f"it covers {', '.join(map(repr, unmapped))}, where no mapped field is stored"
        shown = [column if column is not None else path for (path, _), column in zip(keys, mapped, strict=True)]
        single = shown[0] if len(shown) == 1 and mapped[0] is not None else None
        for_reference = single is not None and not unique and name == f"ix_{collection}_{single}"
        indexes.append(InspectedIndex(name, shown, unique, unsupported=why, for_reference=for_reference))
    return indexes
