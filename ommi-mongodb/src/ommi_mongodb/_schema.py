"""Collections, indexes and stored model shapes: created when missing, never dropped by ``use_models``.

Per model collection:

* ``_id`` (MongoDB's own unique index) backs the key, single or composite;
* a composite key also gets a unique index on its parts (``ux_<collection>_key``)
  so that conditions on a leading part of the key use an index;
* every ``ReferenceTo`` field outside the key gets an index
  (``ix_<collection>_<column>``), used by conditions on related models.

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

from ommi_mongodb._values import field_path

__all__ = ["IndexSpec", "conflicts", "drift", "missing", "shape", "wanted_indexes"]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """An index a model needs."""

    name: str
    keys: tuple[tuple[str, int], ...]
    unique: bool = False

    def describe(self) -> str:
        keys = ", ".join(f"{path} {'asc' if direction == 1 else 'desc'}" for path, direction in self.keys)
        return f"{'unique ' if self.unique else ''}index {self.name} on ({keys})"


def wanted_indexes(schema: ModelSchema, collection: str) -> list[IndexSpec]:
    """The indexes ``schema``'s collection (named ``collection``) must have besides ``_id``."""
    indexes = []
    if len(schema.key) > 1:
        indexes.append(IndexSpec(f"ux_{collection}_key", tuple((field_path(f), 1) for f in schema.key), unique=True))
    for f in schema.fields:
        if f.reference is not None and not f.key:
            indexes.append(IndexSpec(f"ix_{collection}_{f.column}", ((field_path(f), 1),)))
    return indexes


def _direction(value: Any) -> Any:
    # 1 / -1 may come back as floats; text, hashed and geo indexes name their kind.
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _stored(info: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], bool]:
    keys = tuple((str(path), _direction(direction)) for path, direction in dict(info.get("key", {})).items())
    return keys, bool(info.get("unique", False))


def conflicts(schema: ModelSchema, collection: str, stored: Sequence[Mapping[str, Any]]) -> list[str]:
    """How the stored indexes of ``schema``'s collection contradict the ones it wants."""
    problems = []
    for spec in wanted_indexes(schema, collection):
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
    return [spec for spec in wanted_indexes(schema, collection) if (spec.keys, spec.unique) not in present]


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
