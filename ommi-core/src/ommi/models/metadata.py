"""Field metadata given through ``Annotated``: ``Key``, ``Auto``, ``StoreAs``, ...

Markers combine with ``|``::

    id: Annotated[int, Key | Auto] = None
    owner: Annotated[int, ReferenceTo("User.id") | StoreAs("owner_id")]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ommi import _legacy

__all__ = [
    "AssociateUsing",
    "Auto",
    "FieldMetadata",
    "Key",
    "MetadataSet",
    "ReferenceTo",
    "StoreAs",
    "TimezoneAware",
    "generated_key",
    "iter_metadata",
]


def generated_key() -> Any:
    """The default of a key the database generates, typed as the key's own type.

    ``id: int = generated_key()`` is ``None`` until ``add()`` stores the
    instance and sets the generated key, exactly as ``id: int | None = None``;
    a type checker, though, sees an ``int``, so ``author.id`` can be passed
    where an ``int`` is expected without narrowing it first. The price is
    that the checker also calls it an ``int`` before the instance is added.
    It applies to the one int key that Ommi has the database generate (see
    ``Auto``); on any other field ``None`` fails validation as usual.
    """
    return None


class FieldMetadata:
    """Base of every field marker; ``a | b`` combines markers."""

    def __or__(self, other: FieldMetadata) -> MetadataSet:
        return MetadataSet((*iter_metadata(self), *iter_metadata(other)))

    def __ror__(self, other: FieldMetadata) -> MetadataSet:
        return MetadataSet((*iter_metadata(other), *iter_metadata(self)))


class MetadataSet(FieldMetadata):
    """Several markers combined with ``|``."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[FieldMetadata, ...]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.items))


def iter_metadata(value: Any) -> Iterator[FieldMetadata]:
    """Flatten a marker or a ``MetadataSet`` into single markers."""
    if isinstance(value, MetadataSet):
        for item in value.items:
            yield from iter_metadata(item)
    elif isinstance(value, FieldMetadata):
        yield value


class _Flag(FieldMetadata):
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


Key = _Flag("Key")
"""Marks a field as (part of) the model's key."""

Auto = _Flag("Auto")
"""Marks an int key whose value the database generates when left ``None``."""

TimezoneAware = _Flag("TimezoneAware")
"""Stores a ``datetime`` field as an instant: aware values in, aware (UTC) values out."""


class StoreAs(FieldMetadata):
    """Stores the field under another column or document-field name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StoreAs({self.name!r})"


class ReferenceTo(FieldMetadata):
    """Declares that the field holds the key of another model.

    ``target`` is ``Model.field``, ``"Model.field"`` (resolved in the model's
    collection at first use) or a model class (its single key field).
    """

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def __repr__(self) -> str:
        return f"ReferenceTo({self.target!r})"


class AssociateUsing(FieldMetadata):
    """Names the association model of a many-to-many lazy relation.

    ``LazyLoadEveryRelated[Annotated[Tag, AssociateUsing(PostTag)]]``
    """

    __slots__ = ("model",)

    def __init__(self, model: Any) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"AssociateUsing({self.model!r})"


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        # Ommi 0.2's name here (OmmiMetadata): ommi._legacy says what became of it.
        return _legacy.attribute(__name__, name)
