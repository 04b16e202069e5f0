"""Model collections: the set of models ``use_models`` creates together."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ommi.errors import ModelDefinitionError

__all__ = ["ModelCollection", "get_global_collection"]


class ModelCollection:
    """A named group of models, set up and dropped together.

    Models decorated without ``collection=`` join the global collection, which
    :class:`ommi.Ommi` sets up implicitly before its first operation.
    """

    def __init__(self, name: str = "collection") -> None:
        self.name = name
        # By stored name, case-folded: each stored name (table, collection) names one model.
        self._models: dict[str, type] = {}

    def __repr__(self) -> str:
        return f"<ModelCollection {self.name!r}: {', '.join(m.__qualname__ for m in self._models.values()) or 'empty'}>"

    def check_name(self, model: type, stored_name: str) -> None:
        """Refuse ``model`` when another model of the collection is stored under the same name.

        Names that differ only in case collide too: SQLite ignores the case of
        table names. The same class defined again in the same place (a module
        reloaded, a function run twice) is not a collision: it replaces the
        earlier definition.

        Raises:
            ModelDefinitionError: naming both models and how to tell them apart.
        """
        other = self._models.get(stored_name.casefold())
        if other is None or other is model or _same_place(other, model):
            return
        other_name = other.__dict__["__ommi__"].name
        same = f"the stored name {stored_name!r}" + (
            "" if other_name == stored_name else f", which differs from {other_name!r} only in case (SQLite ignores it)"
        )
        raise ModelDefinitionError(
            f"model {_where(model)}: {same} is already used by model {_where(other)} in the collection "
            f"{self.name!r}; two models of one collection need different stored names, or their tables "
            f"replace each other: give one of them another with @ommi_model(name=...), "
            f"or put them in different ModelCollections"
        )

    def add(self, model: type) -> None:
        """Add a model class (done by ``@ommi_model``, after :meth:`check_name`)."""
        stored_name: str = model.__dict__["__ommi__"].name
        self.check_name(model, stored_name)
        for key, known in list(self._models.items()):
            if known is model or _same_place(known, model):
                del self._models[key]
        self._models[stored_name.casefold()] = model

    def __iter__(self) -> Iterator[type]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model: object) -> bool:
        return any(model is m for m in self._models.values())

    @property
    def models(self) -> tuple[type, ...]:
        """The model classes, in decoration order."""
        return tuple(self._models.values())

    def find_model(self, name: str) -> type | None:
        """A model by qualified or plain class name (used to resolve string references).

        Raises:
            ModelDefinitionError: several models of the collection answer to ``name``.
        """
        for attribute in ("__qualname__", "__name__"):
            found = [m for m in self._models.values() if getattr(m, attribute) == name]
            if len(found) == 1:
                return found[0]
            if found:
                raise ModelDefinitionError(
                    f"{name!r} names several models of the collection {self.name!r} "
                    f"({', '.join(_where(m) for m in found)}); refer to the model class itself "
                    "(ReferenceTo(Model.field), LazyLoadTheRelated[Model]) instead of its name"
                )
        if self is not _global:
            return _global.find_model(name)
        return None

    def namespace(self) -> dict[str, Any]:
        """Class name to model, for evaluating forward references (names several models share are left out)."""
        names: dict[str, Any] = {} if self is _global else _global.namespace()
        mine: dict[str, Any] = {}
        for model in self._models.values():
            mine[model.__name__] = None if model.__name__ in mine else model
        names.update((name, model) for name, model in mine.items() if model is not None)
        return names


def _where(model: type) -> str:
    return f"{model.__module__}.{model.__qualname__}"


def _same_place(a: type, b: type) -> bool:
    """Whether two classes are one model defined twice (same module and qualified name)."""
    return a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


_global = ModelCollection("global")


def get_global_collection() -> ModelCollection:
    """The collection models join when ``@ommi_model`` is given no collection."""
    return _global
