"""``@ommi_model``: register a dataclass, attrs class or pydantic model with Ommi.

The class is returned unchanged in behaviour: construction, comparison, pickling,
``dataclasses.asdict`` and ``model_dump`` work as before. Ommi adds

* ``__ommi__``: the :class:`~ommi.models.schema.ModelSchema`;
* a descriptor behind each stored field: ``User.name`` is a query operand,
  ``user.name`` the value;
* a descriptor behind each lazy relation;
* ``save()``, ``delete()`` and ``reload()`` instance methods that use the
  active database (unless the class defines those names itself).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ommi.errors import ModelDefinitionError
from ommi.models.collections import ModelCollection, get_global_collection
from ommi.models.relations import RelationDescriptor
from ommi.models.schema import Field, ModelSchema

if TYPE_CHECKING:
    from ommi.results import DBAction

__all__ = ["ommi_model"]

M = TypeVar("M", bound=type)


class _FieldAttribute:
    """Non-data descriptor: class access gives the Field, instances use their ``__dict__``."""

    __slots__ = ("field",)

    def __init__(self, field: Field) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self.field
        try:
            return instance.__dict__[self.field.name]
        except (KeyError, AttributeError):
            raise AttributeError(self.field.name) from None


class _SlotFieldAttribute:
    """Data descriptor wrapping a slot: class access gives the Field, instances the slot value."""

    __slots__ = ("field", "slot")

    def __init__(self, field: Field, slot: Any) -> None:
        self.field = field
        self.slot = slot

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self.field
        return self.slot.__get__(instance, owner)

    def __set__(self, instance: Any, value: Any) -> None:
        self.slot.__set__(instance, value)

    def __delete__(self, instance: Any) -> None:
        self.slot.__delete__(instance)


def install_field_descriptors(schema: ModelSchema) -> None:
    """Put the query descriptors on the class (called once the schema resolved)."""
    cls = schema.cls
    for f in schema.fields:
        current = cls.__dict__.get(f.name)
        if (
            current is not None
            and hasattr(type(current), "__set__")
            and not isinstance(current, (_FieldAttribute, _SlotFieldAttribute))
        ):
            setattr(cls, f.name, _SlotFieldAttribute(f, current))
        else:
            setattr(cls, f.name, _FieldAttribute(f))
    for name, relation in schema.relations.items():
        setattr(cls, name, RelationDescriptor(relation))


def _save(self: Any) -> DBAction[Any]:
    """Write this instance's fields to its row, by key (inserting it if the row is gone)."""
    from ommi.database import active_database

    return active_database("save()").save(self)


def _delete(self: Any) -> DBAction[Any]:
    """Delete this instance's row, by key."""
    from ommi.database import active_database

    return active_database("delete()").remove(self)


def _reload(self: Any) -> DBAction[Any]:
    """Refresh this instance's fields from its row, by key."""
    from ommi.database import active_database

    return active_database("reload()").reload(self)


_METHODS: dict[str, Callable[..., Any]] = {"save": _save, "delete": _delete, "reload": _reload}


def _adapter_for(cls: type) -> Any:
    from ommi.plugins import model_adapters

    for adapter in model_adapters():
        if adapter.handles(cls):
            return adapter
    raise ModelDefinitionError(
        f"model {cls.__qualname__}: @ommi_model needs a dataclass, an attrs class or a pydantic model "
        "(decorate the class with @dataclass first, or register an adapter for its library)"
    )


def _caller_locals() -> dict[str, Any]:
    """Names local to the function a model is defined in (none at module level).

    Postponed annotations (``from __future__ import annotations``) of a model
    defined inside a function may name that function's locals; like pydantic,
    keep a snapshot of them for resolving annotations later.
    """
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None or frame.f_code.co_name == "<module>" or frame.f_locals is frame.f_globals:
        return {}
    return dict(frame.f_locals)


def _decorate(cls: M, collection: ModelCollection | None, name: str | None) -> M:
    if not isinstance(cls, type):
        raise ModelDefinitionError(f"@ommi_model decorates classes, not {cls!r}")
    if "__ommi__" in cls.__dict__:
        raise ModelDefinitionError(f"model {cls.__qualname__} is already decorated with @ommi_model")
    stored_name = name if name is not None else cls.__name__
    if not isinstance(stored_name, str) or not stored_name or "\x00" in stored_name:
        raise ModelDefinitionError(f"model {cls.__qualname__}: invalid stored name {stored_name!r}")
    adapter = _adapter_for(cls)
    target = collection if collection is not None else get_global_collection()
    target.check_name(cls, stored_name)
    schema = ModelSchema(cls, stored_name, target, adapter)
    schema.local_namespace = _caller_locals()
    setattr(cls, "__ommi__", schema)  # noqa: B010 - a dunder set on purpose
    schema.resolve(strict=False)
    target.add(cls)
    for method_name, method in _METHODS.items():
        if not hasattr(cls, method_name):
            setattr(cls, method_name, method)
    return cls


@overload
def ommi_model(cls: M, /) -> M: ...
@overload
def ommi_model(*, collection: ModelCollection | None = None, name: str | None = None) -> Callable[[M], M]: ...
def ommi_model(
    cls: M | None = None,
    /,
    *,
    collection: ModelCollection | None = None,
    name: str | None = None,
) -> M | Callable[[M], M]:
    """Register a model class with Ommi.

    Args:
        cls: a dataclass, attrs class or pydantic model.
        collection: the :class:`ModelCollection` to join (default: the global one).
        name: the stored table or collection name (default: the class name).

    Raises:
        ModelDefinitionError: the class cannot be mapped; the message names the
            model and field.
    """
    if cls is None:
        return lambda c: _decorate(c, collection, name)
    return _decorate(cls, collection, name)
