"""Lazy relations: ``LazyLoadTheRelated[User]``, ``LazyLoadEveryRelated[Post]``.

The two annotations are ``ClassVar`` aliases, so dataclasses, attrs and pydantic
leave them out of ``__init__``, comparison, ``asdict`` and ``model_dump``; the
decorator puts a descriptor behind each. ``post.author`` then gives a per-instance
handle: ``await post.author`` loads through the active database and caches the
result until ``await post.author.refresh()``. The cache lives exactly as long as
the instance (in its ``__dict__``, see :class:`_RelationCache`).

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
    """Loader of one relation of one instance; awaiting it loads once and caches.

    A handle holds its instance, so ``await (await db.find(Post).one).author``
    works on a temporary; the loaded value lives in the instance's relation
    cache (see :func:`_cache_of`), never in the handle, so nothing the
    instance keeps points back at it through a handle. ``post.author`` makes a
    new handle each time: they all read and fill the same cache.
    """

    __slots__ = ("_instance", "_own", "_relation")

    def __init__(self, instance: Any, relation: Relation) -> None:
        self._instance = instance
        self._relation = relation
        # The value of an instance that cannot keep a cache (no __weakref__): cached by this handle only.
        self._own: Any = _NOT_LOADED

    def __await__(self) -> Generator[Any, None, Any]:
        return self.get().__await__()

    def _cached(self) -> Any:
        cache = _cache_of(self._instance, create=False)
        if cache is None:
            return self._own
        return cache.values.get(self._relation.name, _NOT_LOADED)

    async def get(self) -> Any:
        """The related value, loaded on first call and cached afterwards."""
        # _cached() inlined for instances with a __dict__: awaiting a loaded relation is a hot path.
        attributes = getattr(self._instance, "__dict__", None)
        cache = None if attributes is None else attributes.get(_CACHE_ATTRIBUTE)
        if type(cache) is _RelationCache and cache.owner() is self._instance:
            value = cache.values.get(self._relation.name, _NOT_LOADED)
        else:
            value = self._cached()
        if value is _NOT_LOADED:
            value = await self.refresh()
        return value

    async def refresh(self) -> Any:
        """Load the related value again, replacing the cache."""
        value = await self._relation.load(self._instance)
        cache = _cache_of(self._instance, create=True)
        if cache is None:
            self._own = value
        else:
            cache.values[self._relation.name] = value
        return value

    def __repr__(self) -> str:
        value = self._cached()
        state = "not loaded" if value is _NOT_LOADED else repr(value)
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


_NOT_LOADED: Any = object()
"""Marks a relation without a loaded value."""

_CACHE_ATTRIBUTE = "__ommi_relations__"
"""Key of an instance's :class:`_RelationCache` in its ``__dict__``."""


class _RelationCache:
    """The loaded relation values of one instance, by relation name.

    Kept in the instance's ``__dict__`` when it has one, so the cache dies
    with the instance and the garbage collector frees instances that refer to
    each other through loaded relations (``author.posts`` and each
    ``post.author``). ``owner()`` gives that instance (a weak reference to
    it): a copy of the ``__dict__`` (``copy.copy``, pydantic's
    ``model_copy``) shares the object, and the copy must not use the
    original's cache. Deep copies and pickles of a cache are empty and owned
    by no instance, so a copied or unpickled model loads its relations again,
    as a new instance does.
    """

    __slots__ = ("owner", "values")

    def __init__(self, owner: Callable[[], object] = lambda: None) -> None:
        self.owner = owner
        self.values: dict[str, Any] = {}

    def __reduce__(self) -> tuple[type[_RelationCache], tuple[()]]:
        return (_RelationCache, ())

    def __deepcopy__(self, memo: dict[int, Any]) -> _RelationCache:
        return _RelationCache()

    def __repr__(self) -> str:
        return f"<ommi relation cache: {', '.join(self.values) or 'empty'}>"


_caches: dict[int, _RelationCache] = {}
"""id(instance) -> its cache, for weakly referenceable instances without a ``__dict__`` (slotted classes)."""
_watchers: dict[int, _Watcher] = {}
"""id(instance) -> the weak reference that drops its ``_caches`` entry when it dies."""


class _Watcher(weakref.ref):  # type: ignore[type-arg]  # generic only to type checkers
    """A weak reference to a slotted instance with a cache; its callback forgets it (cheaper than ``finalize``).

    The callback runs when the instance is being destroyed, before its id can
    be reused by another object.
    """

    __slots__ = ("key",)
    key: int


def _forget(
    watcher: _Watcher,
    caches: dict[int, _RelationCache] = _caches,
    watchers: dict[int, _Watcher] = _watchers,
) -> None:
    # The dicts are bound here: at interpreter exit the module's globals may be gone before the last callback.
    # Only this watcher's entries: a newer object may hold the id already if this callback ran late.
    if watchers.get(watcher.key) is watcher:
        caches.pop(watcher.key, None)
        watchers.pop(watcher.key, None)


def _cache_of(instance: Any, *, create: bool) -> _RelationCache | None:
    """The relation cache of ``instance``; made when ``create`` and there is none yet.

    ``None`` when there is none, and always for an instance that cannot be
    weakly referenced (slots without ``__weakref__``): such instances keep
    no cache, as their handles cannot tell their instance still lives.

    An instance with a ``__dict__`` keeps its cache there (model libraries
    compare, dump and copy declared fields only). A slotted instance's cache
    lives in a module-level table keyed by ``id(instance)`` and removed by a
    weak reference callback when the instance dies; the table holds the
    loaded values strongly, which the garbage collector cannot see through:
    slotted instances that refer to each other through loaded relations
    (a cycle through the table) are never freed. Instances with a
    ``__dict__`` have no such limit.
    """
    attributes: dict[str, Any] | None = getattr(instance, "__dict__", None)
    if attributes is not None:
        found = attributes.get(_CACHE_ATTRIBUTE)
        if type(found) is _RelationCache and found.owner() is instance:
            return found
        if not create:
            return None
        try:
            owner = weakref.ref(instance)
        except TypeError:
            return None  # __dict__ without __weakref__: no cache, as for slots without it.
        cache = _RelationCache(owner)
        if found is None:
            # Another thread may have stored one since the get above: keep it and whatever it holds.
            found = attributes.setdefault(_CACHE_ATTRIBUTE, cache)
            if type(found) is _RelationCache and found.owner() is instance:
                return found
        attributes[_CACHE_ATTRIBUTE] = cache  # replaces a copy's view of another instance's cache
        return cache
    key = id(instance)
    watcher = _watchers.get(key)
    if watcher is not None and watcher() is instance:
        return _caches[key]
    if not create:
        return None
    try:
        watcher = _Watcher(instance, _forget)
    except TypeError:
        return None  # Not weak-referenceable (slots without __weakref__): no cache.
    watcher.key = key
    cache = _caches[key] = _RelationCache(watcher)
    _watchers[key] = watcher
    return cache


class RelationDescriptor:
    """Class attribute behind a lazy relation: gives each instance a handle."""

    def __init__(self, relation: Relation) -> None:
        self.relation = relation

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return self.relation.handle_type(instance, self.relation)


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
        name = self.name
        for instance, value in zip(instances, values, strict=True):
            cache = _cache_of(instance, create=True)
            if cache is not None:
                cache.values[name] = value

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
