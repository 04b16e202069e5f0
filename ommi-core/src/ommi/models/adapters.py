"""Model-library adapters: how Ommi reads and builds dataclasses, attrs classes and pydantic models.

An adapter tells Ommi which attributes of a class are stored fields and how to
build an instance from stored values without running the library's validation
again (the values come from the database, already validated on the way in).
Third-party model libraries are supported by registering another adapter through
the ``ommi_register_model_adapters`` hook.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["AttrsAdapter", "DataclassAdapter", "ModelAdapter", "PydanticAdapter", "positional_constructor"]


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


def positional_constructor(adapter: ModelAdapter, cls: type, names: tuple[str, ...]) -> Callable[..., Any] | None:
    """``adapter.positional_constructor(cls, names)`` when the adapter has it, else ``None``.

    An optional adapter method: a callable that builds an instance from the
    values passed positionally in ``names`` order, doing nothing but storing
    them (for dataclasses with a generated ``__init__``: the class itself).
    Ommi then builds rows with one call each instead of through
    :meth:`ModelAdapter.builder`.
    """
    method = getattr(adapter, "positional_constructor", None)
    return method(cls, names) if method is not None else None


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

    def positional_constructor(self, cls: type, names: tuple[str, ...]) -> Callable[..., Any] | None:
        # The generated __init__ only assigns its arguments: the fastest
        # correct way to build (about 3x faster than filling __dict__).
        return cls if _generated_init_takes(cls, names) else None

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


@dataclasses.dataclass
class _Probe:
    value: int


_GENERATED_INIT_FILE = _Probe.__init__.__code__.co_filename
"""The file name ``@dataclass`` compiles its ``__init__`` under on this Python (``"<string>"`` up to 3.13).

Measured, not assumed: a hand-written ``__init__`` has the file it was written
in, so comparing against what ``@dataclass`` itself produced here tells the two
apart on every Python version.
"""


def _generated_init_takes(cls: type, names: tuple[str, ...]) -> bool:
    """Whether ``cls(*values)`` (values in ``names`` order) only stores the values.

    True for a dataclass whose ``__init__`` is the one ``@dataclass`` generated,
    taking exactly the stored fields positionally, with no ``__post_init__``,
    no ``InitVar`` and no ``__setattr__`` of its own that could run code. Only
    public signals are read: ``dataclasses.fields``, the ``__init__`` signature
    (an ``InitVar`` is a parameter that is not a field) and the code's file name.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.init or hasattr(cls, "__post_init__"):
        return False
    fields = dataclasses.fields(cls)
    if tuple(f.name for f in fields) != names or any(not f.init or f.kw_only for f in fields):
        return False
    owner = next(klass for klass in cls.__mro__ if "__init__" in vars(klass))
    init = vars(owner)["__init__"]
    code = getattr(init, "__code__", None)
    if "__dataclass_fields__" not in vars(owner) or code is None or code.co_filename != _GENERATED_INIT_FILE:
        return False  # an __init__ written by hand
    try:
        parameters = list(inspect.signature(init).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    if tuple(p.name for p in parameters) != names or any(p.kind is not positional for p in parameters):
        return False  # an InitVar (a parameter that is no field), or keyword-only fields
    setattr_of_class: object = cls.__setattr__
    return bool(params.frozen) or setattr_of_class is object.__setattr__


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
