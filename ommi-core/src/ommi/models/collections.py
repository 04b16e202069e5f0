"""Model collections: the set of models ``use_models`` creates together."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["ModelCollection", "get_global_collection"]


class ModelCollection:
    """A named group of models, set up and dropped together.

    Models decorated without ``collection=`` join the global collection, which
    :class:`ommi.Ommi` sets up implicitly before its first operation.
    """

    def __init__(self, name: str = "collection") -> None:
        self.name = name
        self._models: dict[str, type] = {}

    def __repr__(self) -> str:
        return f"<ModelCollection {self.name!r}: {', '.join(self._models) or 'empty'}>"

    def add(self, model: type) -> None:
        """Add a model class (done by ``@ommi_model``)."""
        self._models[model.__qualname__] = model

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
        """A model by class name (used to resolve string references)."""
        found = self._models.get(name)
        if found is None:
            found = next((m for m in self._models.values() if m.__name__ == name), None)
        if found is None and self is not _global:
            found = _global.find_model(name)
        return found

    def namespace(self) -> dict[str, Any]:
        """Class name to model, for evaluating forward references."""
        names: dict[str, Any] = {} if self is _global else _global.namespace()
        names.update((m.__name__, m) for m in self._models.values())
        return names


_global = ModelCollection("global")


def get_global_collection() -> ModelCollection:
    """The collection models join when ``@ommi_model`` is given no collection."""
    return _global
