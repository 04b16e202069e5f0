"""Lazy relations: ``LazyLoadTheRelated[User]``, ``LazyLoadEveryRelated[Post]``.

The two annotations are ``ClassVar`` aliases, so dataclasses, attrs and pydantic
leave them out of ``__init__``, comparison, ``asdict`` and ``model_dump``; the
decorator puts a descriptor behind each. ``post.author`` then gives a per-instance
handle: ``await post.author`` loads through the active database and caches the
result until ``await post.author.refresh()``.

How the related rows are found is derived from ``ReferenceTo`` fields:

* ``LazyLoadTheRelated[T]`` on ``M``: ``M`` has a field referencing ``T``
  (many-to-one), else ``T`` has a field referencing ``M`` (one-to-one).
* ``LazyLoadEveryRelated[T]``: ``T`` has a field referencing ``M`` (one-to-many),
  else ``M`` has a field referencing ``T``.
* ``LazyLoadEveryRelated[Annotated[T, AssociateUsing(A)]]``: ``A`` references both.
"""

from __future__ import annotations

import re
import typing
import weakref
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ommi._context import active_database
from ommi.errors import (
    DBStatusNoResultException,
    LazyLoadError,
    ModelDefinitionError,
    OmmiError,
    RemovedAttributeError,
)
from ommi.models.metadata import AssociateUsing, iter_metadata

if TYPE_CHECKING:
    from ommi.models.schema import Field, ModelSchema

__all__ = [
    "LazyLoadEveryRelated",
    "LazyLoadTheRelated",
    "LazyMany",
    "LazyOne",
    "Relation",
]

T = TypeVar("T")


_REMOVED_HANDLE_METHODS = {
    "or_use": "Ommi 0.2's `await relation.or_use(default)` was removed: `await relation` gives the related "
    "model (None when there is none) or the list, and raises LazyLoadError when loading fails",
    "get_result": "Ommi 0.2's `await relation.get_result()` was removed: `await relation` gives the value and "
    "raises LazyLoadError when loading fails",
    "refresh_if_needed": "Ommi 0.2's `await relation.refresh_if_needed()` is `await relation` (or "
    "`await relation.get()`) now: it loads on first use and caches",
    "value": "Ommi 0.2's `await relation.value` is `await relation` now",
}


class _LazyHandle:
    """Per-instance loader of one relation; awaiting it loads once and caches."""

    __slots__ = ("_instance", "_loaded", "_relation", "_value")

    def __init__(self, instance: Any, relation: Relation) -> None:
        self._instance = instance
        self._relation = relation
        self._loaded = False
        self._value: Any = None

    def __await__(self) -> Generator[Any, None, Any]:
        return self.get().__await__()

    async def get(self) -> Any:
        """The related value, loaded on first call and cached afterwards."""
        if not self._loaded:
            await self.refresh()
        return self._value

    async def refresh(self) -> Any:
        """Load the related value again, replacing the cache."""
        self._value = await self._relation.load(self._instance)
        self._loaded = True
        return self._value

    def __repr__(self) -> str:
        state = repr(self._value) if self._loaded else "not loaded"
        return f"<{type(self).__name__} {self._relation.owner.cls.__name__}.{self._relation.name}: {state}>"

    def __reduce__(self) -> Any:
        raise TypeError("lazy relation handles are not picklable; pickle the model instance instead")

    if not TYPE_CHECKING:  # hidden from type checkers, which keep reporting any misspelled attribute

        def __getattr__(self, name: str) -> Any:
            # Reached only when the usual lookup fails: the methods of Ommi 0.2's lazy query fields.
            if name in _REMOVED_HANDLE_METHODS:
                raise RemovedAttributeError(
                    f"{type(self).__name__}.{name}: {_REMOVED_HANDLE_METHODS[name]}", name=name, obj=self
                )
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self)


class LazyOne(_LazyHandle, Generic[T]):
    """Handle of a to-one relation: ``await handle`` gives the related model or ``None``."""

    __slots__ = ()

    if TYPE_CHECKING:

        def __await__(self) -> Generator[Any, None, T | None]: ...
        async def get(self) -> T | None: ...
        async def refresh(self) -> T | None: ...


class LazyMany(_LazyHandle, Generic[T]):
    """Handle of a to-many relation: ``await handle`` gives a list of related models."""

    __slots__ = ()

    if TYPE_CHECKING:

        def __await__(self) -> Generator[Any, None, list[T]]: ...
        async def get(self) -> list[T]: ...
        async def refresh(self) -> list[T]: ...


LazyLoadTheRelated = ClassVar[LazyOne[T]]
"""``author: LazyLoadTheRelated[User]``: the one related model, loaded on ``await``."""

LazyLoadEveryRelated = ClassVar[LazyMany[T]]
"""``posts: LazyLoadEveryRelated[Post]``: every related model, loaded on ``await``."""

_RELATION_NAMES = ("LazyLoadTheRelated", "LazyLoadEveryRelated", "LazyOne", "LazyMany")


def looks_like_relation(annotation: Any) -> bool:
    """Cheap test used before evaluating annotations: could this be any spelling of a relation?"""
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        return any(name in annotation for name in _RELATION_NAMES)
    if typing.get_origin(annotation) is ClassVar:
        # ClassVar[LazyMany[Book]], or ClassVar["LazyMany[Book]"] whose inner string is a ForwardRef.
        return any(
            typing.get_origin(arg) in (LazyOne, LazyMany) or looks_like_relation(arg)
            for arg in typing.get_args(annotation)
        )
    return False


_CLASSVAR_TEXT = re.compile(r"\s*(?:typing\s*\.\s*)?ClassVar\s*\[(?P<inner>.*)\]\s*", re.DOTALL)


def read_relation(annotation: Any, evaluate: Callable[[str], Any]) -> Any:
    """Any spelling of a relation as ``ClassVar[LazyOne[T]]`` / ``ClassVar[LazyMany[T]]``; ``None`` if it is none.

    Strings (the whole annotation, or the argument of ``ClassVar``) are
    evaluated with ``evaluate``, and a ``ClassVar`` around an alias that is a
    ``ClassVar`` already (``ClassVar["LazyLoadEveryRelated[Book]"]``) counts once.

    Raises:
        SyntaxError, TypeError, NameError, ValueError: it names a relation that cannot be read;
            the caller turns that into a ``ModelDefinitionError``.
    """
    in_classvar = False
    for _ in range(16):
        if isinstance(annotation, typing.ForwardRef):
            annotation = annotation.__forward_arg__
        if isinstance(annotation, str):
            match = _CLASSVAR_TEXT.fullmatch(annotation)
            if match is not None:
                # Evaluating "ClassVar[LazyLoadEveryRelated[Book]]" whole would nest two ClassVars.
                in_classvar, annotation = True, match["inner"]
            else:
                annotation = evaluate(annotation)
            continue
        if typing.get_origin(annotation) is ClassVar:
            args = typing.get_args(annotation)
            if len(args) != 1:
                return None
            in_classvar, annotation = True, args[0]
            continue
        origin = typing.get_origin(annotation)
        if origin in (LazyOne, LazyMany):
            return ClassVar[annotation] if in_classvar else None
        if annotation in (LazyOne, LazyMany):
            raise TypeError(f"{annotation.__name__} needs the related model: {annotation.__name__}[Model]")
        return None
    raise ValueError("the annotation nests too many strings and ClassVars")


def _relation_parts(annotation: Any) -> tuple[type[_LazyHandle], Any] | None:
    if typing.get_origin(annotation) is not ClassVar:
        return None
    (inner,) = typing.get_args(annotation)
    origin = typing.get_origin(inner)
    if origin in (LazyOne, LazyMany):
        (target,) = typing.get_args(inner)
        return origin, target
    return None


def relation_from_annotation(owner: ModelSchema, name: str, annotation: Any) -> Relation | None:
    """A :class:`Relation` when ``annotation`` is a lazy relation, else ``None``."""
    parts = _relation_parts(annotation)
    if parts is None:
        return None
    handle_type, target = parts
    association = None
    if typing.get_origin(target) is typing.Annotated:
        for marker in (m for item in target.__metadata__ for m in iter_metadata(item)):
            if isinstance(marker, AssociateUsing):
                association = marker.model
        target = target.__origin__
    return Relation(owner, name, handle_type, target, association)


_handles: dict[int, dict[str, _LazyHandle]] = {}
"""id(instance) -> its handles by relation name, for as long as the instance lives."""
_watchers: dict[int, _Watcher] = {}
"""id(instance) -> the weak reference that drops its entries when it dies."""


class _Watcher(weakref.ref):  # type: ignore[type-arg]  # generic only to type checkers
    """A weak reference to an instance with handles; its callback forgets them (cheaper than ``finalize``).

    The callback runs when the instance is being destroyed, before its id can
    be reused by another object.
    """

    __slots__ = ("key",)
    key: int


def _forget(
    watcher: _Watcher,
    handles: dict[int, dict[str, _LazyHandle]] = _handles,
    watchers: dict[int, _Watcher] = _watchers,
) -> None:
    # The dicts are bound here: at interpreter exit the module's globals may be gone before the last callback.
    handles.pop(watcher.key, None)
    watchers.pop(watcher.key, None)


class RelationDescriptor:
    """Class attribute behind a lazy relation: gives each instance its handle."""

    def __init__(self, relation: Relation) -> None:
        self.relation = relation

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _handle(instance, self.relation)


def _handle(instance: Any, relation: Relation) -> _LazyHandle:
    """The cached handle of ``relation`` on ``instance``, created on first use."""
    key = id(instance)
    per_instance = _handles.get(key)
    if per_instance is None:
        per_instance = {}
        try:
            watcher = _Watcher(instance, _forget)
        except TypeError:
            # Not weak-referenceable (slots without __weakref__): no cache.
            return relation.handle_type(instance, relation)
        watcher.key = key
        _watchers[key] = watcher
        _handles[key] = per_instance
    handle = per_instance.get(relation.name)
    if handle is None:
        handle = per_instance[relation.name] = relation.handle_type(instance, relation)
    return handle


class Relation:
    """A lazy relation attribute of a model and how to load it."""

    def __init__(
        self,
        owner: ModelSchema,
        name: str,
        handle_type: type[_LazyHandle],
        target: Any,
        association: Any,
    ) -> None:
        self.owner = owner
        self.name = name
        self.handle_type = handle_type
        self.many = handle_type is LazyMany
        self._target = target
        self._association = association
        self.target: ModelSchema | None = None
        # (field on the owner, field on the loaded side) pairs; see resolve().
        self.local: Field | None = None
        self.remote: Field | None = None
        self.assoc_owner: Field | None = None
        self.assoc_target: Field | None = None

    def _error(self, message: str) -> ModelDefinitionError:
        return ModelDefinitionError(f"model {self.owner.cls.__qualname__}.{self.name}: {message}")

    def _schema_of(self, target: Any) -> ModelSchema:
        if isinstance(target, typing.ForwardRef):
            target = target.__forward_arg__
        if isinstance(target, str):
            found = self.owner.collection.find_model(target)
            if found is None and target == self.owner.cls.__name__:
                found = self.owner.cls
            if found is None:
                raise self._error(f"the related model {target!r} is unknown")
            target = found
        # What is_model() and get_schema() do; this module sits below ommi.models.schema,
        # whose ModelSchema (the owner's class) builds the relations.
        schema = target.__dict__.get("__ommi__") if isinstance(target, type) else None
        if not isinstance(schema, type(self.owner)):
            raise self._error(f"{target!r} is not an Ommi model")
        if not schema._references_resolved:
            schema.resolve_references()
        return schema

    def resolve(self) -> None:
        """Work out which fields connect the owner and the related model."""
        if self.target is not None:
            return
        target = self._schema_of(self._target)
        if self._association is not None:
            assoc = self._schema_of(self._association)
            to_owner = _referencing(assoc, self.owner)
            to_target = _referencing(assoc, target)
            if to_owner is None or to_target is None:
                raise self._error(
                    f"association model {assoc.cls.__name__} needs fields referencing both "
                    f"{self.owner.cls.__name__} and {target.cls.__name__}"
                )
            self.assoc_owner, self.local = to_owner, to_owner.reference
            self.assoc_target, self.remote = to_target, to_target.reference
        else:
            forward = _referencing(self.owner, target)
            backward = _referencing(target, self.owner)
            order = (backward, forward) if self.many else (forward, backward)
            if order[0] is not None:
                chosen, is_backward = order[0], self.many
            elif order[1] is not None:
                chosen, is_backward = order[1], not self.many
            else:
                raise self._error(f"no ReferenceTo field connects {self.owner.cls.__name__} and {target.cls.__name__}")
            assert chosen.reference is not None
            if is_backward:  # the target holds a reference to the owner
                self.local, self.remote = chosen.reference, chosen
            else:  # the owner holds a reference to the target
                self.local, self.remote = chosen, chosen.reference
        self.target = target

    def store_loaded(self, instances: Sequence[Any], values: Sequence[Any]) -> None:
        """Cache ``values[i]`` as this relation's loaded value on ``instances[i]`` (eager loading, no I/O).

        ``await instance.<relation>`` then returns the value until ``refresh()``.
        Each value must be what :meth:`load` would give: a list for a to-many
        relation, a model or ``None`` for a to-one relation. An instance that
        cannot be weakly referenced keeps no cache, so nothing is stored on it.
        """
        for instance, value in zip(instances, values, strict=True):
            handle = _handle(instance, self)
            handle._value = value
            handle._loaded = True

    async def load(self, instance: Any) -> Any:
        """Load the related value(s) of ``instance`` through the active database."""
        try:
            self.resolve()
            assert self.target is not None and self.local is not None and self.remote is not None
            db = active_database(f"loading {self.owner.cls.__name__}.{self.name}")
            value = getattr(instance, self.local.name)
            if value is None:
                return [] if self.many else None
            if self.assoc_owner is not None:
                assert self.assoc_target is not None
                links = await db.find(self.assoc_owner == value).all.or_raise()
                keys = [getattr(link, self.assoc_target.name) async for link in links]
                if not keys:
                    return []
                condition = self.remote.in_(keys)
            else:
                condition = self.remote == value
            target: Any = self.target.cls  # a model class known at run time only
            query = db.find(target, condition).sort(*(f.asc for f in self.target.key))
            if self.many:
                return await (await query.all.or_raise()).to_list()
            try:
                return await query.one.or_raise()
            except DBStatusNoResultException:
                # Nothing related is an answer; any other failure must surface.
                return None
        except OmmiError as exc:
            raise LazyLoadError(f"could not load {self.owner.cls.__name__}.{self.name}: {exc}") from exc


def _referencing(source: ModelSchema, target: ModelSchema) -> Field | None:
    """The first field of ``source`` whose ReferenceTo points into ``target``."""
    source.resolve_references()
    for f in source.fields:
        if f.reference is not None and f.reference.schema is target:
            return f
    return None
