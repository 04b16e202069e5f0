"""Core's own plugin: the model adapters and codecs Ommi ships with."""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import uuid
from collections.abc import Callable
from typing import Any

from ommi.errors import ModelDefinitionError, ValidationError
from ommi.hookspecs import hookimpl
from ommi.models.adapters import AttrsAdapter, DataclassAdapter, ModelAdapter, PydanticAdapter
from ommi.models.types import Codec, StorageType


def _enum_storage(enum_type: type) -> StorageType:
    values: list[Any] = [member.value for member in enum_type]  # type: ignore[attr-defined]
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return StorageType.INTEGER
    if values and all(isinstance(v, str) for v in values):
        return StorageType.TEXT
    raise ModelDefinitionError(f"enum {enum_type.__name__} cannot be stored: its values must all be str or all be int")


def _enum_encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _enum_decode(value: Any, enum_type: type[enum.Enum]) -> enum.Enum:
    return enum_type(value)


def _json_object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValidationError(f"{value!r} ({type(value).__name__}) is not a dict; the field holds a JSON object")
    return value


def _json_array(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValidationError(
            f"{value!r} ({type(value).__name__}) is not a list; the field holds a JSON array"
            + (" (a tuple or set would come back as a list)" if isinstance(value, (tuple, set, frozenset)) else "")
        )
    return value


BUILTIN_CODECS: tuple[Codec, ...] = (
    Codec(bool, StorageType.BOOLEAN),
    Codec(int, StorageType.INTEGER),
    Codec(float, StorageType.FLOAT),
    Codec(decimal.Decimal, StorageType.DECIMAL),
    Codec(str, StorageType.TEXT),
    Codec(bytes, StorageType.BYTES),
    Codec(uuid.UUID, StorageType.UUID),
    Codec(_dt.datetime, StorageType.DATETIME),
    Codec(_dt.date, StorageType.DATE),
    Codec(dict, StorageType.JSON, _json_object),
    Codec(list, StorageType.JSON, _json_array),
    Codec(enum.Enum, _enum_storage, _enum_encode, _enum_decode, match_subclasses=True, decode_with_type=True),
)


@hookimpl(trylast=True)
def ommi_register_model_adapters(register: Callable[[ModelAdapter], Any]) -> None:
    register(PydanticAdapter())
    register(AttrsAdapter())
    register(DataclassAdapter())


@hookimpl(trylast=True)
def ommi_register_codecs(register: Callable[[Codec], Any]) -> None:
    for codec in BUILTIN_CODECS:
        register(codec)
