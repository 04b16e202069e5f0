"""Turning a :class:`~ommi.query.ast.Query` into the filter that selects its documents.

A condition on the target model alone becomes a ``find`` filter directly
(:func:`ommi_mongodb._filters.to_filter`). Conditions on related models
(``Query.joins``) and comparisons between two fields go through two steps:

1. read the candidate target documents (narrowed by the conjuncts that concern
   the target alone), then, for each join, the related documents whose
   referencing field is ``$in`` the candidates' values, by chunks;
2. evaluate the condition in Python with LEFT JOIN semantics (some related
   document, or none at all, satisfies it) and keep the keys of the matches.

The result is then ``{"_id": {"$in": keys}}``, which a plain ``find``, count,
update or delete uses with the query's sort and window. Each target document
is counted once, however many related documents match.

Why not ``$lookup``: it is MongoDB's own way, but measured against nx-27017
(the wire-protocol server CI runs), ``$lookup`` returned related documents as
JSON text, turned integer keys into strings and dropped unmatched documents
after ``$unwind``, and ``$expr`` failed outright. The two-step plan uses only
``find`` with ``$in``, which every MongoDB-compatible server answers the same
way, so the same plan runs on every server (not a test-server workaround in
``_testserver_compat``: it is the one plan, and the one the tests check). On a
real MongoDB it costs one extra round trip per chunk of 5,000 candidates.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Any

from ommi.expressions import And, Expr, Join, Query
from ommi.models.schema import ModelSchema

from ommi_mongodb._filters import MONGODB, ServerForms, evaluate, fields_of, is_translatable, json_hint, to_filter
from ommi_mongodb._values import ID, encode_value, field_path, value_at

__all__ = ["CHUNK", "DocumentSource", "Plan", "plan", "projection"]

CHUNK = 5000
"""Candidates examined (and ``$in`` values sent) per round trip."""

DocumentSource = Callable[[ModelSchema, dict[str, Any], dict[str, int] | None], AsyncGenerator[Mapping[str, Any], None]]
"""``find(schema, filter, projection)``: the documents of ``schema`` matching ``filter``."""


class Plan:
    """The filter selecting a query's target documents.

    Attributes:
        filter: a ``find`` filter on the target collection.
        matched: when the two-step path ran, how many documents matched (the
            length of the ``_id`` list), else ``None``.
    """

    __slots__ = ("filter", "matched")

    def __init__(self, filter: dict[str, Any], matched: int | None = None) -> None:  # noqa: A002
        self.filter = filter
        self.matched = matched


def _split(where: Expr, target: ModelSchema) -> tuple[list[Expr], list[Expr]]:
    """Conjuncts the server can check on the target alone, and the rest."""
    items = list(where.items) if isinstance(where, And) else [where]
    pushed = [item for item in items if is_translatable(item, target)]
    rest = [item for item in items if not is_translatable(item, target)]
    return pushed, rest


def projection(paths: set[str]) -> dict[str, int]:
    """The ``find`` projection reading ``paths`` (and ``_id``, always returned)."""
    # "_id" is always returned; a composite key's parts live inside it.
    return {path: 1 for path in sorted(paths) if path != ID and not path.startswith(ID + ".")}


async def plan(
    query: Query,
    find: DocumentSource,
    id_filter: Callable[[ModelSchema, list[Any]], dict[str, Any]],
    forms: ServerForms = MONGODB,
) -> Plan:
    """The filter selecting the documents ``query`` matches (ignoring sort and window), in the server's ``forms``."""
    target = query.model
    where = query.where
    if where is None:
        return Plan({})
    if not query.joins and is_translatable(where, target):
        return Plan(to_filter(where, forms))
    pushed, rest = _split(where, target)
    prefilter = to_filter(And(tuple(pushed)) if len(pushed) > 1 else pushed[0], forms) if pushed else {}
    hints = [hint for item in rest if (hint := json_hint(item, target, forms)) is not None]
    if hints:
        # JSON path conditions stay in the residual; their hints only narrow the candidates.
        prefilter = forms.conjunction([prefilter, *hints] if prefilter else hints)
    residual: Expr = And(tuple(rest)) if len(rest) > 1 else rest[0]

    needed = fields_of(residual)
    target_paths = {field_path(f) for f in needed if f.schema is target}
    target_paths.update(field_path(mine) for join in query.joins for mine, _ in join.pairs)
    related_paths: dict[int, set[str]] = {id(join.model): set() for join in query.joins}
    for f in needed:
        if f.schema is not target:
            related_paths[id(f.schema)].add(field_path(f))
    for join in query.joins:
        related_paths[id(join.model)].update(field_path(theirs) for _, theirs in join.pairs)

    matched: list[Any] = []
    chunk: list[Mapping[str, Any]] = []

    async def flush() -> None:
        related = [await _related(join, chunk, find, projection(related_paths[id(join.model)])) for join in query.joins]
        for document in chunk:
            if _holds(query, residual, document, related):
                matched.append(document[ID])
        chunk.clear()

    async with aclosing(find(target, prefilter, projection(target_paths))) as candidates:
        async for document in candidates:
            chunk.append(document)
            if len(chunk) >= CHUNK:
                await flush()
    if chunk:
        await flush()
    return Plan(id_filter(target, matched), len(matched))


RelatedIndex = dict[tuple[Any, ...], list[Mapping[str, Any]]]


async def _related(
    join: Join, candidates: list[Mapping[str, Any]], find: DocumentSource, projection: dict[str, int]
) -> RelatedIndex:
    """The related documents of ``candidates``, by their values of the join's fields."""
    first_mine, first_theirs = join.pairs[0]
    wanted = {value_at(doc, first_mine) for doc in candidates}
    wanted.discard(None)
    index: RelatedIndex = {}
    if not wanted:
        return index
    values = [encode_value(first_theirs.storage, v) for v in wanted]
    flt = {field_path(first_theirs): {"$in": values}}
    async with aclosing(find(join.model, flt, projection)) as documents:
        async for other in documents:
            key = tuple(value_at(other, theirs) for _, theirs in join.pairs)
            if None not in key:
                index.setdefault(key, []).append(other)
    return index


def _holds(query: Query, residual: Expr, document: Mapping[str, Any], related: list[RelatedIndex]) -> bool:
    """Whether some combination of related documents (or none) makes ``residual`` true."""
    env: dict[int, Mapping[str, Any] | None] = {id(query.model): document}
    options: list[list[Mapping[str, Any] | None]] = []
    for join, index in zip(query.joins, related, strict=True):
        key = tuple(value_at(document, mine) for mine, _ in join.pairs)
        found: list[Mapping[str, Any] | None] = list(index.get(key, ())) if None not in key else []
        options.append(found or [None])
    for combination in itertools.product(*options):
        for join, other in zip(query.joins, combination, strict=True):
            env[id(join.model)] = other
        if evaluate(residual, env):
            return True
    return False
