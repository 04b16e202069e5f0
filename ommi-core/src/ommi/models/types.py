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
=============  ===========================  =====================================
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ommi.errors import ValidationError

__all__ = ["INT64_MAX", "INT64_MIN", "Codec", "StorageType", "check_canonical"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


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
        return (
            self.match_subclasses
            and isinstance(annotation, type)
            and issubclass(annotation, self.python_type)
        )


def _fail(storage: StorageType, value: object, why: str) -> ValidationError:
    return ValidationError(f"{value!r} ({type(value).__name__}) cannot be stored as {storage.value}: {why}")


def check_canonical(storage: StorageType, value: Any) -> Any:
    """Validate a canonical value for ``storage`` and return it normalised.

    Raises:
        ValidationError: the value has the wrong type or is out of range.
    """
    if storage is StorageType.INTEGER:
        if type(value) is not int and not (isinstance(value, int) and not isinstance(value, bool)):
            raise _fail(storage, value, "expected int")
        if not INT64_MIN <= value <= INT64_MAX:
            raise _fail(storage, value, "outside the signed 64-bit range")
        return int(value)
    if storage is StorageType.TEXT:
        if not isinstance(value, str):
            raise _fail(storage, value, "expected str")
        if "\x00" in value:
            raise _fail(storage, value, "text may not contain NUL characters")
        return value
    if storage is StorageType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(storage, value, "expected float")
        value = float(value)
        if not math.isfinite(value):
            raise _fail(storage, value, "NaN and infinities are not stored")
        return value
    if storage is StorageType.BOOLEAN:
        if not isinstance(value, bool):
            raise _fail(storage, value, "expected bool")
        return value
    if storage is StorageType.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, (decimal.Decimal, int)):
            raise _fail(storage, value, "expected Decimal")
        value = decimal.Decimal(value)
        if not value.is_finite():
            raise _fail(storage, value, "NaN and infinities are not stored")
        return value
    if storage is StorageType.BYTES:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise _fail(storage, value, "expected bytes")
        return bytes(value)
    if storage is StorageType.UUID:
        if not isinstance(value, uuid.UUID):
            raise _fail(storage, value, "expected uuid.UUID")
        return value
    if storage is StorageType.DATE:
        if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
            raise _fail(storage, value, "expected datetime.date")
        return value
    if storage is StorageType.DATETIME:
        if not isinstance(value, _dt.datetime):
            raise _fail(storage, value, "expected datetime.datetime")
        if value.utcoffset() is not None:
            raise _fail(
                storage,
                value,
                "the field stores naive datetimes; mark it TimezoneAware to store aware ones",
            )
        return value
    if storage is StorageType.DATETIME_TZ:
        if not isinstance(value, _dt.datetime):
            raise _fail(storage, value, "expected datetime.datetime")
        if value.utcoffset() is None:
            raise _fail(storage, value, "the field is TimezoneAware and needs an aware datetime")
        return value.astimezone(_dt.UTC)
    raise AssertionError(f"unknown storage type {storage!r}")  # pragma: no cover
