"""How models map onto documents: field paths, and canonical values to BSON and back.

Layout of a document:

* A single ``Key`` field is stored as ``_id``.
* A composite key is stored as a sub-document ``_id: {<first key>: ..., <second key>: ...}``
  in the model's key order. Its uniqueness is that of ``_id``, and conditions
  address the parts by path (``_id.region``).
* Every other field is stored under its column name (``StoreAs``), escaped so
  that no stored name starts with ``$``, contains ``.`` or is ``_id``:
  ``%`` -> ``%25``, ``.`` -> ``%2E``, a leading ``$`` -> ``%24``, ``_id`` -> ``%5Fid``.
  ``None`` is stored as ``null`` (the field is always present).

Values, per storage type:

=============  ===============================================================
INTEGER        int32 when it fits, else int64 (what PyMongo writes for an ``int``)
FLOAT          double
DECIMAL        Decimal128 (34 significant digits; more is a ValidationError)
BOOLEAN        bool
TEXT           string
BYTES          binary, subtype 0
UUID           binary, subtype 4 (the standard representation)
DATE           date-time at midnight UTC of that day
DATETIME       date-time (BSON keeps milliseconds: microseconds are truncated)
DATETIME_TZ    date-time of the UTC instant; read back as an aware UTC datetime
JSON           embedded document or array of the same values (int32/int64,
               double, string, bool, null); read back as plain dict and list
=============  ===============================================================
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import bson
from bson import Binary, Decimal128
from ommi._codegen import generate
from ommi.errors import SchemaMismatchError, ValidationError
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType, check_json

__all__ = [
    "ID",
    "decode_value",
    "document_from_row",
    "encode_value",
    "field_path",
    "id_filter",
    "row_from_document",
    "size_function",
    "stored_name",
]

ID = "_id"


def stored_name(column: str) -> str:
    """The document field name of a column, escaped so MongoDB reads it literally."""
    name = column.replace("%", "%25").replace(".", "%2E")
    if name.startswith("$"):
        name = "%24" + name[1:]
    if name == ID:
        name = "%5Fid"
    return name


def field_path(field: Field) -> str:
    """Where a field lives in its model's documents (``_id``, ``_id.part`` or the escaped column)."""
    key = field.schema.key
    if field.key:
        return ID if len(key) == 1 else f"{ID}.{stored_name(field.column)}"
    return stored_name(field.column)


# -- values ----------------------------------------------------------------


def _encode_decimal(value: decimal.Decimal) -> Decimal128:
    try:
        # Decimal128 traps rounding, so a value it accepts is stored digit for digit.
        return Decimal128(value)
    except decimal.DecimalException as exc:
        raise ValidationError(
            f"{value!r} cannot be stored exactly as a MongoDB Decimal128 (at most 34 significant digits, "
            f"exponent -6176..6111)"
        ) from exc


def _midnight(value: _dt.date) -> _dt.datetime:
    return _dt.datetime(value.year, value.month, value.day)


def _naive_utc(value: _dt.datetime) -> _dt.datetime:
    # Canonical DATETIME_TZ values are aware UTC; BSON stores the instant.
    return value.astimezone(_dt.UTC).replace(tzinfo=None)


_ENCODERS: dict[StorageType, Callable[[Any], Any] | None] = {
    # PyMongo stores an int as int32 when it fits and int64 otherwise; the
    # server compares and sorts the two as numbers, so a query never sees the
    # difference, and int32 is what every other PyMongo program writes.
    StorageType.INTEGER: None,
    StorageType.FLOAT: float,
    StorageType.DECIMAL: _encode_decimal,
    StorageType.BOOLEAN: None,
    StorageType.TEXT: None,
    StorageType.BYTES: None,
    StorageType.UUID: None,
    StorageType.DATE: _midnight,
    StorageType.DATETIME: None,
    StorageType.DATETIME_TZ: _naive_utc,
    StorageType.JSON: None,
}


def encode_value(storage: StorageType, value: Any) -> Any:
    """A canonical value as the BSON value stored for it (``None`` stays ``None``)."""
    if value is None:
        return None
    encode = _ENCODERS[storage]
    return value if encode is None else encode(value)


def _decode_int(value: Any) -> int:
    return int(value)


def _decode_float(value: Any) -> float:
    return float(value)


def _decode_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return decimal.Decimal(str(value))


def _decode_bytes(value: Any) -> bytes:
    return bytes(value)


def _decode_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, Binary) and value.subtype == 4:
        return value.as_uuid()
    # Binary of another subtype (a document written by another tool): its 16 bytes.
    return uuid.UUID(bytes=bytes(value))


def _decode_date(value: Any) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    raise ValidationError(f"stored value {value!r} is not a date")


def _decode_datetime(value: Any) -> _dt.datetime:
    if not isinstance(value, _dt.datetime):
        raise ValidationError(f"stored value {value!r} is not a date-time")
    return value.replace(tzinfo=None) if value.tzinfo is not None else value


def _decode_datetime_tz(value: Any) -> _dt.datetime:
    if not isinstance(value, _dt.datetime):
        raise ValidationError(f"stored value {value!r} is not a date-time")
    # The client reads naive UTC (tz_aware=False): attach the zone.
    return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


_DECODERS: dict[StorageType, Callable[[Any], Any] | None] = {
    StorageType.INTEGER: _decode_int,
    StorageType.FLOAT: _decode_float,
    StorageType.DECIMAL: _decode_decimal,
    StorageType.BOOLEAN: bool,
    StorageType.TEXT: None,
    StorageType.BYTES: _decode_bytes,
    StorageType.UUID: _decode_uuid,
    StorageType.DATE: _decode_date,
    StorageType.DATETIME: _decode_datetime,
    StorageType.DATETIME_TZ: _decode_datetime_tz,
    # Int64 -> int, SON -> dict, a fresh copy; anything that is not JSON (a date written by another
    # program) is a ValidationError, reported as the document's SchemaMismatchError.
    StorageType.JSON: check_json,
}


def decode_value(storage: StorageType, value: Any) -> Any:
    """A stored BSON value as the canonical value of ``storage``."""
    if value is None:
        return None
    decode = _DECODERS[storage]
    return value if decode is None else decode(value)


# -- rows and documents ----------------------------------------------------


def document_from_row(schema: ModelSchema, row: tuple[Any, ...]) -> dict[str, Any]:
    """The document storing ``row`` (canonical values in ``schema.fields`` order).

    Raises:
        ValidationError: a key field holds ``None``; a document is never
            written with a key it could not be read back by.
    """
    return _converters(schema)[0](row)


def size_function(schema: ModelSchema) -> Callable[[tuple[Any, ...]], int]:
    """``size(row)``: at least the BSON size of the document storing ``row``.

    Cheap rather than exact: non-ASCII text counts 4 bytes a character, and
    every fixed-size value as much as the largest.
    """
    return _converters(schema)[2]


def _lookup(document: Mapping[str, Any], path: str) -> Any:
    head, dot, rest = path.partition(".")
    value = document.get(head)
    if not dot:
        return value
    return value.get(rest) if isinstance(value, Mapping) else None


def row_from_document(schema: ModelSchema, document: Mapping[str, Any]) -> tuple[Any, ...]:
    """The canonical row of a stored document; absent optional fields read as ``None``.

    A required field that is absent (or ``null``) is an error, never a
    ``None`` the model does not allow: MongoDB has no column defaults, so a
    document written by code that does not know the field (the previous
    models, during a rolling deploy after a migration added it) lacks it.

    Raises:
        SchemaMismatchError: a stored value is not of its field's type, or a
            required field has no value (a document written by another
            program or for another version of the model).
    """
    try:
        return _converters(schema)[1](document)
    except Exception as exc:
        raise unreadable(schema, document) from exc


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def unreadable(schema: ModelSchema, document: Mapping[str, Any]) -> SchemaMismatchError:
    """The error for a document of ``schema`` that cannot be read, naming the first field at fault."""
    identity = _shown(document.get(ID))
    for f in schema.fields:
        path = field_path(f)
        value = _lookup(document, path)
        if value is None and not f.nullable and not f.key:
            state = "holds null" if "." not in path and path in document else "lacks it"
            return SchemaMismatchError(
                f"a stored document of model {schema.name} (_id {identity}) cannot be read: its required field "
                f"{f.name} (stored at {path!r}) has no value (the document {state}). MongoDB has no column "
                "defaults: the document was written by code that does not know the field (models older than the "
                "migration that added it, still running) or by another program. Give such documents the value, "
                f"e.g. update_many({{{path!r}: None}}, {{'$set': {{{path!r}: <default>}}}}) (a migration's run(db) "
                "or ChangeType to required does it), and deploy the new models everywhere before that migration"
            )
        try:
            decode_value(f.storage, value)
        except Exception:  # noqa: BLE001 - any failure to decode is what is reported
            return SchemaMismatchError(
                f"a stored document of model {schema.name} (_id {identity}) cannot be read: its field {f.name} "
                f"(stored at {path!r}) holds {_shown(value)} of type {type(value).__name__}, not a "
                f"{f.storage.value} value. It was written by another program or for another version of the "
                "model; correct or delete that document"
            )
    return SchemaMismatchError(  # pragma: no cover - decode_value fails for some field whenever the row fails
        f"a stored document of model {schema.name} (_id {identity}) cannot be read; correct or delete it"
    )


_Converters = tuple[
    Callable[[tuple[Any, ...]], dict[str, Any]],
    Callable[[Mapping[str, Any]], tuple[Any, ...]],
    Callable[[tuple[Any, ...]], int],
]
_converter_cache: weakref.WeakKeyDictionary[ModelSchema, _Converters] = weakref.WeakKeyDictionary()

_FIXED_VALUE_BOUND = 21
"""Bytes of the largest fixed-size value (a UUID: length, subtype and 16 bytes)."""


def _no_key(field: str) -> Any:
    raise ValidationError(
        f"key field {field} is None: a stored document needs every part of its key (MongoDB driver); "
        "give the key a value, or let an int key be generated on insert"
    )


def _json_size(value: Any) -> int:
    """The BSON size of a JSON value, with the few bytes of a wrapping document."""
    return len(bson.encode({"v": value}))


def _no_value() -> Any:
    raise ValueError("a required field has no value")


def _converters(schema: ModelSchema) -> _Converters:
    """Generated row -> document, document -> row and size functions of a model (the hot loops of add and fetch).

    Stored names and paths are passed to the generated code as variables (``n1``, ``p1``),
    never written into its source.
    """
    found = _converter_cache.get(schema)
    if found is not None:
        return found
    namespace: dict[str, Any] = {
        "ID": ID,
        "lookup": _lookup,
        "nokey": _no_key,
        "novalue": _no_value,
        "jsize": _json_size,
    }
    fields, single_key = schema.fields, len(schema.key) == 1
    encoded, decoded, key_parts, sizes = {}, [], [], []
    bound = 5 + (0 if single_key else 2 + len(ID) + 5)
    for f in fields:
        i = f.index
        namespace[f"n{i}"] = stored_name(f.column)
        namespace[f"e{i}"], namespace[f"d{i}"] = _ENCODERS[f.storage], _DECODERS[f.storage]
        value = f"r[{i}]" if _ENCODERS[f.storage] is None else f"(None if r[{i}] is None else e{i}(r[{i}]))"
        if f.key:
            namespace[f"k{i}"] = f"{schema.name}.{f.name}"
            value = f"(nokey(k{i}) if r[{i}] is None else {value})"
        if f.key and not single_key:
            namespace[f"p{i}"] = field_path(f)
            key_parts.append(f"n{i}: {value}")
            stored = f"lookup(d, p{i})"
        else:
            encoded[i] = value
            stored = "g(ID)" if f.key else f"g(n{i})"
        if not f.nullable and not f.key:
            # A required field without a value: refused (row_from_document says which and why).
            read = "v" if _DECODERS[f.storage] is None else f"d{i}(v)"
            decoded.append(f"(novalue() if (v := {stored}) is None else {read})")
        else:
            decoded.append(
                stored if _DECODERS[f.storage] is None else f"(None if (v := {stored}) is None else d{i}(v))"
            )
        bound += 2 + len(stored_name(f.column).encode()) + _FIXED_VALUE_BOUND
        if f.storage is StorageType.TEXT:
            sizes.append(f"(0 if (v := r[{i}]) is None else len(v) if v.isascii() else 4 * len(v))")
        elif f.storage is StorageType.BYTES:
            sizes.append(f"(0 if (v := r[{i}]) is None else len(v))")
        elif f.storage is StorageType.JSON:
            sizes.append(f"(0 if (v := r[{i}]) is None else jsize(v))")
    identity = encoded.pop(schema.key[0].index) if single_key else "{" + ", ".join(key_parts) + "}"
    items = ", ".join([f"ID: {identity}", *(f"n{i}: {value}" for i, value in encoded.items())])
    source = (
        f"def to_document(r):\n    return {{{items}}}\n"
        f"def to_row(d):\n    g = d.get\n    return ({', '.join(decoded)},)\n"
        f"def size(r):\n    return {' + '.join([str(bound), *sizes])}\n"
    )
    to_document, to_row, size = generate(
        source, ("to_document", "to_row", "size"), namespace, label=f"document converters of {schema.name}"
    )
    found = _converter_cache[schema] = (to_document, to_row, size)
    return found


def value_at(document: Mapping[str, Any], field: Field) -> Any:
    """The canonical value of ``field`` in a document of its model.

    Raises:
        SchemaMismatchError: the stored value is not of the field's type.
    """
    try:
        return decode_value(field.storage, _lookup(document, field_path(field)))
    except Exception as exc:
        raise unreadable(field.schema, document) from exc


def projected_reader(fields: Sequence[Field]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """Reads the canonical values of ``fields`` (in that order) from a document, projected to them or whole.

    The rules of :func:`row_from_document` for each field: an absent optional
    field is ``None``; an absent required one, or a value not of the field's
    type, raises :class:`SchemaMismatchError` naming the field.
    """
    steps = [(f, field_path(f), f.nullable or f.key) for f in fields]

    def read(document: Mapping[str, Any]) -> tuple[Any, ...]:
        values: list[Any] = []
        for f, path, optional in steps:
            stored = _lookup(document, path)
            if stored is None:
                if not optional:
                    raise SchemaMismatchError(
                        f"{f!r} has no value in the stored document with _id {_shown(document.get(ID))}, but the "
                        "model requires one; the document was written by another program or for another version "
                        "of the model: migrate the stored documents, or make the field optional"
                    )
                values.append(None)
                continue
            try:
                values.append(decode_value(f.storage, stored))
            except Exception as exc:
                raise SchemaMismatchError(
                    f"{f!r}: the stored value {_shown(stored)} (document _id {_shown(document.get(ID))}) is not a "
                    f"valid {f.storage.value}: migrate the stored documents, or change the model"
                ) from exc
        return tuple(values)

    return read


def id_filter(schema: ModelSchema, ids: list[Any]) -> dict[str, Any]:
    """A filter matching the documents whose ``_id`` is one of ``ids``.

    Composite ``_id`` sub-documents are matched part by part, which does not
    depend on how the server compares whole embedded documents.
    """
    if len(schema.key) == 1:
        return {ID: {"$in": ids}}
    if not ids:
        return {ID: {"$in": []}}
    return {"$or": [{f"{ID}.{part}": value for part, value in identity.items()} for identity in ids]}
