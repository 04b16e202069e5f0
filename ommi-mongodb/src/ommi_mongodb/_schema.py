"""Collections, indexes and stored model shapes: created when missing, never dropped by ``use_models``.

Per model collection:

* ``_id`` (MongoDB's own unique index) backs the key, single or composite;
* a composite key also gets a unique index on its parts (``ux_<collection>_key``)
  so that conditions on a leading part of the key use an index;
* every ``ReferenceTo`` field outside the key gets an index
  (``ix_<collection>_<column>``), used by conditions on related models;
* every ``Unique``/``Index`` of the model gets an index under its stored
  name; a unique one has a ``partialFilterExpression`` keeping documents with
  ``null`` in any of its fields out (the driver stores ``None`` as ``null``,
  which a plain unique index would compare as a value), so ``None`` never
  collides, as in SQL.

A model's ``Unique``/``Index`` that no stored index provides (a unique index
on the same fields in any order, any index on the same fields in order,
whatever its name) is drift on a collection that has a record, like a changed
field; on a new collection, or one without a record, it is created.

An index the model wants conflicts with a stored one when both have the same
name or the same keys but differ otherwise; :func:`conflicts` reports every
such conflict before anything is created, and ``apply_schema`` then raises
``SchemaMismatchError`` naming them and changes nothing.

MongoDB collections declare no fields, so the shape of each model (column,
storage type, whether it may hold null, whether it is part of the key) is
recorded when its collection is set up, one document per collection in
``_ommi_schema``. A later ``use_models`` compares the model with that record:
a field added, removed, renamed, retyped or made optional is drift and raises
``SchemaMismatchError`` naming the collection and the fields, exactly as a SQL
table that differs from its model does. A collection without a record (made by
another tool) is adopted; dropping the collection drops its record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ommi.models.schema import ModelSchema
from ommi.models.types import StorageType
from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from ommi_mongodb._values import field_path

__all__ = [
    "IndexSpec",
    "conflicts",
    "constraint_drift",
    "declared_indexes",
    "declared_partial",
    "drift",
    "missing",
    "missing_declared",
    "own_indexes",
    "read_indexes",
    "shape",
    "stored_keys",
    "undeclarable",
    "wanted_indexes",
]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """An index a model needs."""

    name: str
    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    partial: tuple[tuple[str, str], ...] = ()
    """``(path, BSON type)`` pairs of a ``partialFilterExpression``: only documents with such values are indexed."""

    def model(self) -> IndexModel:
        """The PyMongo ``IndexModel`` that creates it."""
        options: dict[str, Any] = {"name": self.name, "unique": self.unique}
        if self.partial:
            options["partialFilterExpression"] = {path: {"$type": kind} for path, kind in self.partial}
        return IndexModel(list(self.keys), **options)

    def describe(self) -> str:
        keys = ", ".join(f"{path} {'asc' if direction == 1 else 'desc'}" for path, direction in self.keys)
        return f"{'unique ' if self.unique else ''}index {self.name} on ({keys})"


_BSON_TYPE: Mapping[StorageType, str] = {
    StorageType.INTEGER: "number",
    StorageType.FLOAT: "number",
    StorageType.DECIMAL: "number",
    StorageType.BOOLEAN: "bool",
    StorageType.TEXT: "string",
    StorageType.BYTES: "binData",
    StorageType.UUID: "binData",
    StorageType.DATE: "date",
    StorageType.DATETIME: "date",
    StorageType.DATETIME_TZ: "date",
    # Never indexed (core refuses Unique/Index on a JSON field); listed so every storage type has one.
    StorageType.JSON: "object",
}
"""The ``$type`` of each storage type's stored values (``number`` covers int32 and int64): never ``null``."""


def declared_indexes(schema: ModelSchema) -> list[IndexSpec]:
    """The indexes of the model's ``Unique``/``Index`` constraints, named as the model names them."""
    indexes = []
    for constraint in schema.constraints:
        keys = tuple((field_path(f), 1) for f in constraint.fields)
        partial = tuple((field_path(f), _BSON_TYPE[f.storage]) for f in constraint.fields) if constraint.unique else ()
        indexes.append(IndexSpec(constraint.name, keys, constraint.unique, partial))
    return indexes


def declared_partial(schema: ModelSchema, name: str) -> dict[str, Any]:
    """The ``partialFilterExpression`` of the model's unique constraint ``name`` (only documents it indexes)."""
    spec = next(spec for spec in declared_indexes(schema) if spec.name == name)
    return {path: {"$type": kind} for path, kind in spec.partial}


def _satisfied(spec: IndexSpec, stored: Sequence[Mapping[str, Any]]) -> bool:
    for info in stored:
        keys, unique = _stored(info)
        if spec.unique and unique and sorted(keys) == sorted(spec.keys):
            return True
        if not spec.unique and keys == spec.keys:
            return True
    return False


def missing_declared(schema: ModelSchema, stored: Sequence[Mapping[str, Any]]) -> list[IndexSpec]:
    """The model's ``Unique``/``Index`` indexes that no stored index provides (names do not count)."""
    return [spec for spec in declared_indexes(schema) if not _satisfied(spec, stored)]


def own_indexes(schema: ModelSchema, collection: str) -> list[IndexSpec]:
    """The indexes the driver itself needs on ``schema``'s collection: a composite key's, and references'."""
    indexes = []
    if len(schema.key) > 1:
        indexes.append(IndexSpec(f"ux_{collection}_key", tuple((field_path(f), 1) for f in schema.key), unique=True))
    for f in schema.fields:
        if f.reference is not None and not f.key:
            indexes.append(IndexSpec(f"ix_{collection}_{f.column}", ((field_path(f), 1),)))
    return indexes


def wanted_indexes(schema: ModelSchema, collection: str) -> list[IndexSpec]:
    """Every index ``schema``'s collection (named ``collection``) must have besides ``_id``."""
    return own_indexes(schema, collection) + declared_indexes(schema)


async def read_indexes(collection: AsyncCollection[dict[str, Any]]) -> list[Mapping[str, Any]]:
    """The indexes of ``collection`` as ``listIndexes`` describes them (``_id_`` included)."""
    return [info async for info in await collection.list_indexes()]


def stored_keys(info: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], bool]:
    """The ``(path, direction)`` keys of a stored index, in order, and whether it is unique."""
    return _stored(info)


_OPTIONS = {
    "sparse": "it is sparse",
    "expireAfterSeconds": "it is a TTL index (it deletes documents)",
    "collation": "it has a collation",
    "hidden": "it is hidden",
}


def undeclarable(info: Mapping[str, Any]) -> str | None:
    """Why no model's ``Unique``/``Index`` makes the stored index ``info``, or ``None`` when one does.

    A model's index is ascending on every field, with no option; a unique
    one's ``partialFilterExpression`` is the one :func:`declared_indexes`
    gives it (a ``$type`` per field, keeping ``null`` out).
    """
    keys, unique = _stored(info)
    if any(direction != 1 for _, direction in keys):
        return "it is not ascending on every field (descending, text, hashed or geospatial)"
    partial = info.get("partialFilterExpression")
    if partial is not None:
        paths = {path for path, _ in keys}
        null_filter = (
            isinstance(partial, Mapping)
            and set(partial) == paths
            and all(isinstance(v, Mapping) and list(v) == ["$type"] for v in partial.values())
        )
        if not (unique and null_filter):
            return "it is partial (a partialFilterExpression), which Ommi cannot declare"
    for option, why in _OPTIONS.items():
        if info.get(option):
            return why
    return None


def _direction(value: Any) -> Any:
    # 1 / -1 may come back as floats; text, hashed and geo indexes name their kind.
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _stored(info: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], bool]:
    keys = tuple((str(path), _direction(direction)) for path, direction in dict(info.get("key", {})).items())
    return keys, bool(info.get("unique", False))


def conflicts(schema: ModelSchema, collection: str, stored: Sequence[Mapping[str, Any]]) -> list[str]:
    """How the stored indexes of ``schema``'s collection contradict the ones it wants."""
    problems = []
    for spec in own_indexes(schema, collection):
        for info in stored:
            keys, unique = _stored(info)
            same_name = info.get("name") == spec.name
            same_keys = keys == spec.keys
            if (same_name or same_keys) and (keys, unique) != (spec.keys, spec.unique):
                shown = ", ".join(f"{p} {d}" for p, d in keys)
                problems.append(
                    f"collection {collection}: the model needs a {spec.describe()}, but index {info.get('name')} "
                    f"is {'unique ' if unique else ''}on ({shown})"
                )
    return problems


def missing(schema: ModelSchema, collection: str, stored: Sequence[Mapping[str, Any]]) -> list[IndexSpec]:
    """The wanted indexes no stored index provides yet."""
    present = {_stored(info) for info in stored}
    own = [spec for spec in own_indexes(schema, collection) if (spec.keys, spec.unique) not in present]
    return own + missing_declared(schema, stored)


def constraint_drift(schema: ModelSchema, collection: str, stored: Sequence[Mapping[str, Any]]) -> list[str]:
    """The drift of a recorded collection's indexes: one line naming the model's constraints it lacks."""
    lacking = missing_declared(schema, stored)
    if not lacking:
        return []
    return [f"collection {collection}: " + "; ".join(f"the {spec.describe()} is missing" for spec in lacking)]


def shape(schema: ModelSchema) -> list[dict[str, Any]]:
    """The recorded shape of a model: one entry per stored field, in declaration order."""
    return [
        {"column": f.column, "storage": f.storage.value, "nullable": f.nullable and not f.key, "key": f.key}
        for f in schema.fields
    ]


def _describe(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('storage')}{' key' if entry.get('key') else ''}{' nullable' if entry.get('nullable') else ''}"


def drift(schema: ModelSchema, collection: str, recorded: Sequence[Mapping[str, Any]]) -> list[str]:
    """How the recorded shape of ``schema``'s collection differs from the model (empty: no drift)."""
    stored = {str(entry.get("column")): entry for entry in recorded}
    wanted = {str(entry["column"]): entry for entry in shape(schema)}
    differences = [f"field {column} is missing from the stored collection" for column in wanted if column not in stored]
    differences += [f"stored field {column} is not in the model" for column in stored if column not in wanted]
    for column, entry in wanted.items():
        if column in stored and any(stored[column].get(k) != entry[k] for k in ("storage", "nullable", "key")):
            differences.append(
                f"field {column} is stored as {_describe(stored[column])} but the model wants {_describe(entry)}"
            )
    if not differences:
        return []
    return [f"collection {collection}: " + "; ".join(differences)]
