"""Eager loading: ``db.find(Author).prefetch(Author.posts, Post.tags)``.

:func:`check_prefetch` validates the relations when the query is built (no
I/O); :func:`load_related` runs, for a list of results, one query per
relation (two through an association model: its rows, then the related
rows), each a batched ``IN`` on the connecting field, split into chunks of
:data:`PREFETCH_CHUNK_SIZE` values. It fills each instance's relation cache,
so ``await author.posts`` afterwards returns the loaded value without I/O.

The loaded values equal what lazy loading gives (:meth:`Relation.load`): the
related rows sorted by their key; for a to-one relation the first of them by
key, or ``None``; ``[]`` / ``None`` where nothing is related. Every cache is
filled only after every query succeeded, in one step without an ``await``, so
a failed or cancelled prefetch leaves no relation of any instance half
loaded: it loads lazily afterwards, as without ``prefetch``.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ommi.errors import QueryError
from ommi.expressions import Query, SortKey
from ommi.models.relations import Relation, RelationDescriptor
from ommi.query.evaluate import ordered

if TYPE_CHECKING:
    from ommi.models.schema import Field, ModelSchema
    from ommi.query.find import QueryExecutor

__all__ = ["PREFETCH_CHUNK_SIZE", "check_prefetch", "load_related"]

PREFETCH_CHUNK_SIZE = 900
"""The most values one ``IN`` of a prefetch query carries; more are split into several queries.

Below 999, the smallest number of parameters an SQLite library may accept in
one statement (``SQLITE_MAX_VARIABLE_NUMBER`` of builds before 3.32); each
value is one parameter there. PostgreSQL passes the values as one array and
MongoDB as one ``$in`` list, where the chunk only bounds a statement's size.
"""


_FETCH_BATCH = 10_000
"""Rows fetched per batch by a prefetch query (at least; more when the driver's default batch is larger)."""


def check_prefetch(model: ModelSchema, listed: Sequence[Relation], items: Iterable[object]) -> tuple[Relation, ...]:
    """``listed`` followed by the relations ``items`` name, each checked (no I/O).

    A relation must belong to ``model`` (the query's model) or to the model
    another relation listed before it loads (``Author.posts`` then ``Post.tags``).

    Raises:
        QueryError: an item is not a lazy relation of a model (``Author.posts``),
            a relation is listed twice, belongs to a model neither the query
            nor an earlier relation loads, or to a model whose instances
            cannot keep a loaded value (``__slots__`` without ``__weakref__``).
        ModelDefinitionError: no ``ReferenceTo`` field supports a relation.
    """
    chosen = list(listed)
    loaded = {id(model)} | {id(r.target) for r in chosen}
    for item in items:
        if not isinstance(item, RelationDescriptor):
            raise QueryError(
                f"prefetch() takes lazy relations of models (Author.posts, a LazyOne / LazyMany class "
                f"attribute), not {item!r}"
            )
        relation = item.relation
        owner = relation.owner.cls.__name__
        if any(r is relation for r in chosen):
            raise QueryError(f"prefetch(): {owner}.{relation.name} is listed twice")
        relation.resolve()
        assert relation.target is not None
        if id(relation.owner) not in loaded:
            raise QueryError(
                f"prefetch(): {owner}.{relation.name} is a relation of {owner}, which neither the query "
                f"(of {model.cls.__name__}) nor a relation listed before it loads; list the relation that "
                f"loads {owner} first, e.g. .prefetch({model.cls.__name__}.<relation to {owner}>, "
                f"{owner}.{relation.name})"
            )
        if relation.owner.cls.__weakrefoffset__ == 0:
            raise QueryError(
                f"prefetch(): instances of {owner} cannot be weakly referenced (__slots__ without "
                f"__weakref__), so Ommi caches none of their relations and {owner}.{relation.name} would "
                "load again on every await; give the class a __weakref__ slot "
                "(@dataclass(slots=True, weakref_slot=True)) or leave the relation out"
            )
        chosen.append(relation)
        loaded.add(id(relation.target))
    return tuple(chosen)


async def load_related(
    executor: QueryExecutor, model: ModelSchema, relations: Sequence[Relation], instances: Sequence[Any]
) -> None:
    """Load every relation of ``relations`` for ``instances`` (results of a query of ``model``) and cache it.

    Relations apply in order: one of ``model`` to ``instances``; one of
    another model to the instances of that model which the relations before
    it loaded. An empty ``instances`` (or nothing to relate) sends no query.

    Raises:
        OmmiError: a query failed; no relation cache was filled.
    """
    if not instances:
        return
    known: dict[int, tuple[list[Any], set[int]]] = {id(model): (list(instances), {id(i) for i in instances})}
    fills: list[tuple[Relation, list[Any], list[Any]]] = []
    for index, relation in enumerate(relations):
        owners = known.get(id(relation.owner), ([], set()))[0]
        if not owners:
            continue
        values = await _load(executor, relation, owners)
        fills.append((relation, list(owners), values))
        assert relation.target is not None
        if not any(later.owner is relation.target for later in relations[index + 1 :]):
            continue  # no relation listed later starts from these models
        into, seen = known.setdefault(id(relation.target), ([], set()))
        for value in values:
            for item in value if relation.many else () if value is None else (value,):
                if id(item) not in seen:
                    seen.add(id(item))
                    into.append(item)
    # No await from here on: a cancellation cannot leave some caches filled and others not.
    for relation, owners, values in fills:
        relation.store_loaded(owners, values)


async def _load(executor: QueryExecutor, relation: Relation, owners: list[Any]) -> list[Any]:
    """The value of ``relation`` for each of ``owners``, in order (a list, a model or ``None``)."""
    target, local, remote = relation.target, relation.local, relation.remote
    assert target is not None and local is not None and remote is not None
    keys = [getattr(owner, local.name) for owner in owners]
    wanted = list(dict.fromkeys(k for k in keys if k is not None))
    by_key = tuple(SortKey(f) for f in target.key)
    if relation.assoc_owner is not None:
        assoc_owner, assoc_target = relation.assoc_owner, relation.assoc_target
        assert assoc_target is not None
        # Two queries: the association rows, then the related rows; one joined query could not
        # tell which owner each related row belongs to.
        links = await _fetch_in(executor, assoc_owner.schema, assoc_owner, wanted, ())
        linked: dict[Any, list[Any]] = {}
        for link in links:
            linked.setdefault(getattr(link, assoc_owner.name), []).append(getattr(link, assoc_target.name))
        targets_of = list(dict.fromkeys(v for values in linked.values() for v in values if v is not None))
        found = await _fetch_in(executor, target, remote, targets_of, by_key)
        if len(targets_of) > PREFETCH_CHUNK_SIZE:
            # Each chunk came sorted; one owner's rows may come from several.
            found = ordered(found, by_key, _canonical)
        positions: dict[Any, list[int]] = {}
        for index, item in enumerate(found):
            positions.setdefault(getattr(item, remote.name), []).append(index)
        result: list[Any] = []
        for key in keys:
            indices = {i for v in linked.get(key, ()) for i in positions.get(v, ())} if key is not None else ()
            result.append([found[i] for i in sorted(indices)])
        return result
    found = await _fetch_in(executor, target, remote, wanted, by_key)
    # Every row matching one value comes from the same chunk, so each group keeps the key order.
    groups: dict[Any, list[Any]] = {}
    get = groups.get
    for value, item in zip(map(operator.attrgetter(remote.name), found), found, strict=True):
        group = get(value)
        if group is None:
            groups[value] = [item]
        else:
            group.append(item)
    if relation.many:
        # A fresh list per owner, as lazy loading gives (owners may share a key).
        return [list(groups.get(key, ())) for key in keys]
    return [group[0] if (group := groups.get(key)) else None for key in keys]


def _canonical(item: Any, field: Field) -> Any:
    return field.encode(getattr(item, field.name))


async def _fetch_in(
    executor: QueryExecutor, schema: ModelSchema, field: Field, values: list[Any], sort: tuple[SortKey, ...]
) -> list[Any]:
    """Every ``schema`` row whose ``field`` is one of ``values``: one query per chunk, each in ``sort`` order."""
    found: list[Any] = []
    # Every row is kept anyway: large batches only save round trips.
    size = max(executor.default_batch_size, _FETCH_BATCH)
    for start in range(0, len(values), PREFETCH_CHUNK_SIZE):
        query = Query(schema, field.in_(values[start : start + PREFETCH_CHUNK_SIZE]), (), sort)
        ops = await executor.query_operations(query)
        batches = ops.fetch(query, size)
        try:
            async for rows in batches:
                found.extend(schema.build_rows(rows))
        finally:
            await batches.aclose()
    return found
