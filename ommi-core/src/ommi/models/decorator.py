"""``@ommi_model``: register a dataclass, attrs class or pydantic model with Ommi.

The class is returned unchanged in behaviour: construction, comparison, pickling,
``dataclasses.asdict`` and ``model_dump`` work as before. Ommi adds

* ``__ommi__``: the :class:`~ommi.models.schema.ModelSchema`;
* a descriptor behind each stored field: ``User.name`` is a query operand,
  ``user.name`` the value;
* a descriptor behind each lazy relation;
* ``save()``, ``delete()`` and ``reload()`` instance methods that use the
  active database (unless the class defines those names itself).

Late binding: the adapter for the class's model library comes from
``ommi.plugins.model_adapters()``, imported when a class is decorated (see
:func:`_adapter_for`). ``ommi.plugins`` loads core's own plugin, which is built
on this package, so it cannot be imported while this package is; it is the one
documented exception to "every import at the top" in ommi-core, with
``ommi.plugins.codecs()`` in :mod:`ommi.models.schema`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

from ommi._context import active_database
from ommi.errors import ModelDefinitionError
from ommi.models.collections import ModelCollection, get_global_collection
from ommi.models.constraints import Constraint, check_declared
from ommi.models.schema import ModelSchema

if TYPE_CHECKING:
    from ommi.models.adapters import ModelAdapter
    from ommi.results import DBAction

__all__ = ["ModelMethods", "ommi_model"]

M = TypeVar("M", bound=type)


def _save(self: Any) -> DBAction[Any]:
    """Write this instance's fields to its row, by key (inserting it if the row is gone)."""
    return active_database("save()").save(self)


def _delete(self: Any) -> DBAction[Any]:
    """Delete this instance's row, by key."""
    return active_database("delete()").remove(self)


def _reload(self: Any) -> DBAction[Any]:
    """Refresh this instance's fields from its row, by key."""
    return active_database("reload()").reload(self)


_METHODS: dict[str, Callable[..., Any]] = {"save": _save, "delete": _delete, "reload": _reload}


class ModelMethods:
    """An optional base class that declares the model methods, so type checkers know them.

    ``@ommi_model`` adds ``save()``, ``delete()`` and ``reload()`` to a class at
    run time, which no type checker can see (pyright has no plugins). A model
    that also inherits from this class has the same methods, declared and
    typed: ``await loan.save().or_raise()`` gives the ``Loan``. It adds no
    field, no state and no slot.
    """

    __slots__ = ()

    def save(self) -> DBAction[Self]:
        """Write this instance's fields to its row, by key (inserting it if the row is gone)."""
        return _save(self)

    def delete(self) -> DBAction[int]:
        """Delete this instance's row, by key; gives the number deleted (0 or 1)."""
        return _delete(self)

    def reload(self) -> DBAction[Self]:
        """Refresh this instance's fields from its row, by key."""
        return _reload(self)


def _adapter_for(cls: type) -> ModelAdapter:
    # Late-bound on purpose (see the module docstring): ommi.plugins is built on ommi.models.
    from ommi import plugins

    for adapter in plugins.model_adapters():
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


def _decorate(
    cls: M, collection: ModelCollection | None, name: str | None, constraints: Sequence[Constraint] | None
) -> M:
    if not isinstance(cls, type):
        raise ModelDefinitionError(f"@ommi_model decorates classes, not {cls!r}")
    if "__ommi__" in cls.__dict__:
        raise ModelDefinitionError(f"model {cls.__qualname__} is already decorated with @ommi_model")
    if "__ommi_model_name__" in cls.__dict__:
        # Ommi 0.2 read the stored name from this attribute; ignoring it would store the
        # model under its class name, next to the table that holds the application's rows.
        raise ModelDefinitionError(
            f"model {cls.__qualname__}: Ommi 0.2's __ommi_model_name__ is not read any more; "
            f"write @ommi_model(name={cls.__dict__['__ommi_model_name__']!r}) and remove the attribute"
        )
    stored_name = name if name is not None else cls.__name__
    if not isinstance(stored_name, str) or not stored_name or "\x00" in stored_name:
        raise ModelDefinitionError(f"model {cls.__qualname__}: invalid stored name {stored_name!r}")
    declared = () if constraints is None else check_declared(constraints, cls.__qualname__)
    adapter = _adapter_for(cls)
    target = collection if collection is not None else get_global_collection()
    target.check_name(cls, stored_name)
    schema = ModelSchema(cls, stored_name, target, adapter)
    schema.local_namespace = _caller_locals()
    schema.declared_constraints = declared
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
def ommi_model(
    *,
    collection: ModelCollection | None = None,
    name: str | None = None,
    constraints: Sequence[Constraint] | None = None,
) -> Callable[[M], M]: ...
def ommi_model(
    cls: M | None = None,
    /,
    *,
    collection: ModelCollection | None = None,
    name: str | None = None,
    constraints: Sequence[Constraint] | None = None,
) -> M | Callable[[M], M]:
    """Register a model class with Ommi.

    Args:
        cls: a dataclass, attrs class or pydantic model.
        collection: the :class:`ModelCollection` to join (default: the global one).
        name: the stored table or collection name (default: the class name).
        constraints: unique constraints and indexes over several fields,
            ``[Unique("first", "last"), Index("author", "created")]`` (attribute
            names); a single field is marked in its annotation instead
            (``Annotated[str, Unique]``).

    Raises:
        ModelDefinitionError: the class cannot be mapped; the message names the
            model and field.
    """
    if cls is None:
        return lambda c: _decorate(c, collection, name, constraints)
    return _decorate(cls, collection, name, constraints)
