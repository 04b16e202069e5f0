"""Storage types and codecs: how a field's Python values become storable values.

Every field maps to one :class:`StorageType`. A :class:`Codec` turns the
application's value into the *canonical* Python value of that storage type and
back (``Enum`` member -> its value, for example). Drivers only ever see canonical
values and map each storage type onto their database's native type:

=============  ===========================  =====================================
StorageType    canonical Python value       notes
=============  ===========================  =====================================
INTEGER        ``int`` (signed 64 bit)      ``bool`` is not an int here
FLOAT          ``float`` (finite)           ints are widened; NaN/inf rejected
DECIMAL        ``decimal.Decimal`` (finite)
BOOLEAN        ``bool``
TEXT           ``str`` (no NUL character)
BYTES          ``bytes``
UUID           ``uuid.UUID``
DATE           ``datetime.date``            never a ``datetime``
DATETIME       naive ``datetime.datetime``
DATETIME_TZ    aware ``datetime.datetime``  normalised to UTC
JSON           ``dict`` or ``list``         a canonical JSON value (:func:`check_json`)
=============  ===========================  =====================================
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import reprlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ommi.errors import ValidationError

__all__ = [
    "CHECKERS",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_JSON_DEPTH",
    "Codec",
    "StorageType",
    "check_canonical",
    "check_json",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

MAX_JSON_DEPTH = 64
"""Levels of nested dicts and lists a JSON value may have (``{}`` and ``[]`` are one level).

MongoDB refuses documents nested deeper than 100 levels, the JSON value
being one of them; 64 leaves room and is far beyond what data needs.
"""


class StorageType(enum.Enum):
    """The storable kinds of value every driver supports."""

    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    TEXT = "text"
    BYTES = "bytes"
    UUID = "uuid"
    DATE = "date"
    DATETIME = "datetime"
    DATETIME_TZ = "datetime_tz"
    JSON = "json"

    # Members are singletons (pickling returns the same member), so identity
    # hashing is correct, and much cheaper than Enum's name-based hash in the
    # per-value dictionary lookups of drivers.
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class Codec:
    """Maps one Python type onto a storage type.

    Args:
        python_type: the annotation type this codec serves (subclasses match too
            when ``match_subclasses`` is true, as for ``Enum``).
        storage: the storage type, or a callable computing it from the concrete
            annotation type (``Enum`` subclasses store their values' type).
        encode: application value -> canonical value; ``None`` means identity.
        decode: canonical value -> application value; ``None`` means identity.
            It may receive the concrete annotation type as second argument when
            ``decode_with_type`` is true.
    """

    python_type: type
    storage: StorageType | Callable[[type], StorageType]
    encode: Callable[[Any], Any] | None = None
    decode: Callable[..., Any] | None = None
    match_subclasses: bool = False
    decode_with_type: bool = False

    def storage_for(self, annotation: type) -> StorageType:
        """The storage type used for a field annotated with ``annotation``."""
        if isinstance(self.storage, StorageType):
            return self.storage
        return self.storage(annotation)

    def matches(self, annotation: type) -> bool:
        """Whether this codec serves fields annotated with ``annotation``."""
        if annotation is self.python_type:
            return True
        return self.match_subclasses and isinstance(annotation, type) and issubclass(annotation, self.python_type)


def _fail(storage: StorageType, value: object, why: str) -> ValidationError:
    return ValidationError(f"{value!r} ({type(value).__name__}) cannot be stored as {storage.value}: {why}")


def _check_integer(value: Any) -> int:
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        raise _fail(StorageType.INTEGER, value, "expected int")
    if not INT64_MIN <= value <= INT64_MAX:
        raise _fail(StorageType.INTEGER, value, "outside the signed 64-bit range")
    return int(value)


def _check_text(value: Any) -> str:
    if type(value) is not str and not isinstance(value, str):
        raise _fail(StorageType.TEXT, value, "expected str")
    if "\x00" in value:
        raise _fail(StorageType.TEXT, value, "text may not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates ("\ud800") are Python-only: no database stores them as text.
            raise _fail(StorageType.TEXT, value, "text may not contain lone surrogate code points") from None
    return str(value)


def _check_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(StorageType.FLOAT, value, "expected float")
    try:
        number = float(value)
    except OverflowError:
        raise _fail(StorageType.FLOAT, value, "too large for a double-precision float") from None
    if not math.isfinite(number):
        raise _fail(StorageType.FLOAT, value, "NaN and infinities are not stored")
    return number


def _check_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(StorageType.BOOLEAN, value, "expected bool")
    return value


def _check_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (decimal.Decimal, int)):
        raise _fail(StorageType.DECIMAL, value, "expected Decimal")
    number = decimal.Decimal(value)
    if not number.is_finite():
        raise _fail(StorageType.DECIMAL, value, "NaN and infinities are not stored")
    return number


def _check_bytes(value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise _fail(StorageType.BYTES, value, "expected bytes")
    return bytes(value)


def _check_uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, uuid.UUID):
        raise _fail(StorageType.UUID, value, "expected uuid.UUID")
    return value


def _check_date(value: Any) -> _dt.date:
    if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
        raise _fail(StorageType.DATE, value, "expected datetime.date")
    return value


def _check_datetime(value: Any) -> _dt.datetime:
    if not isinstance(value, _dt.datetime):
        raise _fail(StorageType.DATETIME, value, "expected datetime.datetime")
    if value.utcoffset() is not None:
        raise _fail(
            StorageType.DATETIME,
            value,
            "the field stores naive datetimes; mark it TimezoneAware to store aware ones",
        )
    return value


def _check_datetime_tz(value: Any) -> _dt.datetime:
    if not isinstance(value, _dt.datetime):
        raise _fail(StorageType.DATETIME_TZ, value, "expected datetime.datetime")
    if value.utcoffset() is None:
        raise _fail(StorageType.DATETIME_TZ, value, "the field is TimezoneAware and needs an aware datetime")
    try:
        return value.astimezone(_dt.UTC)
    except OverflowError:
        # 0001-01-01 00:00+05:00 is a valid datetime whose UTC instant is not.
        raise _fail(StorageType.DATETIME_TZ, value, "its UTC instant is outside the datetime range") from None


def _json_text(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValidationError(f"{what} {value!r} contains a NUL character (PostgreSQL's jsonb cannot store it)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{what} {value!r} contains a lone surrogate code point") from None
    # str.__str__, not str(): a str subclass (a str Enum) may override __str__ ("Color.RED").
    return str.__str__(value)


def _json_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValidationError(f"the key {key!r} ({type(key).__name__}) is not a str; JSON objects have str keys only")
    if key.startswith("$") or "." in key:
        raise ValidationError(
            f"the key {key!r} starts with '$' or contains '.', which MongoDB reserves for operators and paths"
        )
    return _json_text(key, "the key")


def _json_scalar(value: Any) -> Any:
    """A JSON scalar, normalised (``str``/``int``/``float`` subclasses become the base type), or raise."""
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is str or (isinstance(value, str) and not isinstance(value, bool)):
        return _json_text(value, "the text")
    if isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(f"the int {value} is outside the signed 64-bit range (MongoDB cannot store it)")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{value!r}: NaN and infinities are not JSON")
        # -0.0 becomes 0.0 (equal to it): jsonb's numeric has no negative zero, so no backend differs.
        return float(value) if value else 0.0
    raise ValidationError(
        f"{value!r} ({kind.__name__}) is not a JSON value; use dict (str keys), list, str, int, float, bool or None"
        + (" (a tuple or set would come back as a list)" if isinstance(value, (tuple, set, frozenset)) else "")
    )


def check_json(value: Any) -> Any:
    """A canonical JSON value: a fresh copy of ``value`` with every part checked.

    Canonical: ``dict`` with ``str`` keys (no key starting with ``$`` or
    holding ``.``), ``list``, ``str``, ``int`` (signed 64 bit), finite
    ``float`` (``-0.0`` becomes ``0.0``), ``bool`` and ``None``; text and keys without NUL characters or
    lone surrogates; at most :data:`MAX_JSON_DEPTH` levels of nesting. Walked
    with an explicit stack, so a deep value never hits Python's recursion
    limit. The copy means the stored value never shares a dict or list with
    the application's.

    Raises:
        ValidationError: some part breaks a rule; the message says which.
    """
    if not isinstance(value, (dict, list)):
        return _json_scalar(value)
    root: Any = {} if isinstance(value, dict) else []
    # (source container, its copy, depth)
    stack: list[tuple[Any, Any, int]] = [(value, root, 1)]
    while stack:
        source, copy, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValidationError(f"the value is nested deeper than {MAX_JSON_DEPTH} levels of dicts and lists")
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, (dict, list)):
                child: Any = {} if isinstance(item, dict) else []
                stack.append((item, child, depth + 1))
            else:
                child = _json_scalar(item)
            if isinstance(copy, dict):
                copy[_json_key(key)] = child
            else:
                copy.append(child)
    return root


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 3, 4, 4, 40, 40


def _check_json(value: Any) -> Any:
    if not isinstance(value, (dict, list)):
        raise _fail(StorageType.JSON, value, "a JSON field holds a dict or a list")
    try:
        return check_json(value)
    except ValidationError as exc:
        shown = _SHORT.repr(value)  # bounded depth and length: the value may be huge or deep
        raise ValidationError(f"{shown} cannot be stored as json: {exc}") from None


CHECKERS: dict[StorageType, Callable[[Any], Any]] = {
    StorageType.INTEGER: _check_integer,
    StorageType.TEXT: _check_text,
    StorageType.FLOAT: _check_float,
    StorageType.BOOLEAN: _check_boolean,
    StorageType.DECIMAL: _check_decimal,
    StorageType.BYTES: _check_bytes,
    StorageType.UUID: _check_uuid,
    StorageType.DATE: _check_date,
    StorageType.DATETIME: _check_datetime,
    StorageType.DATETIME_TZ: _check_datetime_tz,
    StorageType.JSON: _check_json,
}
"""Validator of canonical values for each storage type."""


FAST_CHECKS: dict[StorageType, str] = {
    StorageType.INTEGER: f"type({{v}}) is int and {INT64_MIN} <= {{v}} <= {INT64_MAX}",
    StorageType.TEXT: 'type({v}) is str and {v}.isascii() and "\\x00" not in {v}',
    StorageType.FLOAT: "type({v}) is float and {v} - {v} == 0.0",
    StorageType.BOOLEAN: "type({v}) is bool",
}
"""Python expression templates (over ``{v}``), true when ``CHECKERS[storage](v)`` would return ``v`` unchanged.

Generated encoders test these inline and call the checker only when one is
false (or missing), which then returns a normalised value or raises.
"""


def check_canonical(storage: StorageType, value: Any) -> Any:
    """Validate a canonical value for ``storage`` and return it normalised.

    Raises:
        ValidationError: the value has the wrong type or is out of range.
    """
    return CHECKERS[storage](value)
