"""Model-library adapters: how Ommi reads and builds dataclasses, attrs classes and pydantic models.

An adapter tells Ommi which attributes of a class are stored fields and how to
build an instance from stored values without running the library's validation
again (the values come from the database, already validated on the way in).
Third-party model libraries are supported by registering another adapter through
the ``ommi_register_model_adapters`` hook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["AttrsAdapter", "DataclassAdapter", "ModelAdapter", "PydanticAdapter"]


@runtime_checkable
class ModelAdapter(Protocol):
    """What Ommi needs from a model library."""

    name: str
    """Short name of the library, for messages (``"dataclasses"``)."""

    def handles(self, cls: type) -> bool:
        """Whether ``cls`` is a class of this library."""

    def field_names(self, cls: type) -> list[str]:
        """The stored fields of ``cls``, in declaration order."""

    def builder(self, cls: type, names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Any]:
        """A function building an instance from values given in ``names`` order."""

    def set_value(self, instance: Any, name: str, value: Any) -> None:
        """Set a field on an instance, also on frozen classes (used for generated keys and reloads)."""


def _has_dict(cls: type) -> bool:
    """Whether instances of ``cls`` have a ``__dict__`` (no base declares only slots)."""
    return all(
        "__slots__" not in vars(base) or "__dict__" in vars(base).get("__slots__", ()) for base in cls.__mro__[:-1]
    )


class DataclassAdapter:
    """Standard-library dataclasses."""

    name = "dataclasses"

    def handles(self, cls: type) -> bool:
        return dataclasses.is_dataclass(cls)

    def field_names(self, cls: type) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def builder(self, cls: type, names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Any]:
        new: Callable[[type], Any] = cls.__new__  # type: ignore[assignment]
        if _has_dict(cls):

            def build(values: tuple[Any, ...]) -> Any:
                instance = new(cls)
                instance.__dict__.update(zip(names, values, strict=True))
                return instance

            return build
        return _setattr_builder(cls, names)

    def set_value(self, instance: Any, name: str, value: Any) -> None:
        object.__setattr__(instance, name, value)


def _setattr_builder(cls: type, names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Any]:
    new: Callable[[type], Any] = cls.__new__  # type: ignore[assignment]
    setter = object.__setattr__

    def build(values: tuple[Any, ...]) -> Any:
        instance = new(cls)
        for name, value in zip(names, values, strict=True):
            setter(instance, name, value)
        return instance

    return build


class AttrsAdapter:
    """attrs classes (``@attrs.define``, ``@attr.s``), when attrs is installed."""

    name = "attrs"

    def handles(self, cls: type) -> bool:
        try:
            import attrs
        except ImportError:  # pragma: no cover - attrs is optional
            return False
        return attrs.has(cls)

    def field_names(self, cls: type) -> list[str]:
        import attrs

        return [a.name for a in attrs.fields(cls)]

    def builder(self, cls: type, names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Any]:
        return _setattr_builder(cls, names)

    def set_value(self, instance: Any, name: str, value: Any) -> None:
        object.__setattr__(instance, name, value)


class PydanticAdapter:
    """pydantic v2 models, when pydantic is installed."""

    name = "pydantic"

    def handles(self, cls: type) -> bool:
        try:
            import pydantic
        except ImportError:  # pragma: no cover - pydantic is optional
            return False
        return isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)

    def field_names(self, cls: type) -> list[str]:
        fields: Mapping[str, Any] = cls.model_fields  # type: ignore[attr-defined]
        return list(fields)

    def builder(self, cls: type, names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Any]:
        construct = cls.model_construct  # type: ignore[attr-defined]

        def build(values: tuple[Any, ...]) -> Any:
            return construct(**dict(zip(names, values, strict=True)))

        return build

    def set_value(self, instance: Any, name: str, value: Any) -> None:
        instance.__dict__[name] = value
