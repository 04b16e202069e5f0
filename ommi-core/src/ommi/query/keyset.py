"""Keyset pagination: ``find(...).sort(...).after(row)`` / ``.before(row)`` as an ordinary condition.

A cursor remembers the canonical values of one row. For the query's sort keys
``k1..kn`` (core appends the key fields, so the last keys identify a row) and
the row's values ``v1..vn``, "strictly after" is

    (k1 after v1) OR (k1 == v1 AND ((k2 after v2) OR (k2 == v2 AND ...)))

where "after" follows Ommi's order: ascending, NULL comes first, so after
``NULL`` is ``k IS NOT NULL`` and after ``v`` is ``k > v``; descending, NULL
comes last, so after ``v`` is ``k < v OR k IS NULL`` and nothing comes after
``NULL``. "before" is the same with the directions swapped. Every driver runs
the condition as it runs any other (comparisons, ``IS NULL``, AND, OR), so no
driver needs to know about cursors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ommi.errors import QueryError
from ommi.expressions import And, Comparison, Expr, Op, Or, SortKey
from ommi.models.schema import ModelSchema, get_schema, is_model

__all__ = ["Cursor", "keyset_condition", "make_cursor", "reversed_sort"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a keyset page starts: the row's model and its canonical values (in field order).

    ``before``: the page ends just before the row instead of starting just after it.
    """

    schema: ModelSchema
    row: tuple[Any, ...]
    before: bool


def make_cursor(instance: Any, *, before: bool) -> Cursor:
    """A :class:`Cursor` at ``instance``, its values taken (and encoded) now.

    Later changes to ``instance`` do not move the cursor.

    Raises:
        QueryError: ``instance`` is not a model instance, or its key is unset
            (an instance never stored has no place in the order).
        ValidationError: a field of ``instance`` holds a value its field refuses.
    """
    method = "before" if before else "after"
    if isinstance(instance, type) or not is_model(type(instance)):
        raise QueryError(f".{method}() takes a model instance (the last row of the previous page), not {instance!r}")
    schema = get_schema(instance)
    missing = [f.name for f in schema.key if getattr(instance, f.name, None) is None]
    if missing:
        raise QueryError(
            f".{method}(): the {schema.cls.__name__} has no key ({', '.join(missing)} is None): pass a row "
            "read from the database (the last one of the previous page), not an instance never stored"
        )
    try:
        row = schema.encode_instance(instance)
    except AttributeError as exc:  # a field never set on the instance (a slot left empty)
        raise QueryError(
            f".{method}(): the {schema.cls.__name__} has no value for {exc.name or 'a field'}: pass a row read "
            "from the database"
        ) from exc
    return Cursor(schema, row, before)


def _past(key: SortKey, value: Any, forward: bool) -> Expr | None:
    """``key``'s field strictly past ``value`` in the walk's direction; None when nothing is."""
    field = key.field
    # Walking forward over an ascending key, or backward over a descending one, goes up
    # the values with NULL at the start; the other two walks go down with NULL at the end.
    upward = forward != key.descending
    if value is None:
        return Comparison(field, Op.IS_NOT_NULL) if upward else None
    if upward:
        return Comparison(field, Op.GT, value)
    below = Comparison(field, Op.LT, value)
    return Or((below, Comparison(field, Op.IS_NULL))) if field.nullable else below


def _equal(key: SortKey, value: Any) -> Expr:
    if value is None:
        return Comparison(key.field, Op.IS_NULL)
    return Comparison(key.field, Op.EQ, value)


def keyset_condition(target: ModelSchema, sort: Sequence[SortKey], cursor: Cursor) -> Expr:
    """The condition selecting the rows strictly after (``cursor.before``: before) the cursor's row in ``sort``.

    ``sort`` is the planned sort: it ends with the target's key fields, so no
    two rows tie on all of it and the cursor's own row is never selected.

    Raises:
        QueryError: the cursor's row is of another model than ``target``.
    """
    if cursor.schema is not target:
        way = "before" if cursor.before else "after"
        raise QueryError(
            f".{way}() got a {cursor.schema.cls.__name__} but the query finds {target.cls.__name__}: "
            f"pass a {target.cls.__name__} read by the previous page"
        )
    condition: Expr | None = None
    for key in reversed(sort):
        value = cursor.row[key.field.index]
        past = _past(key, value, forward=not cursor.before)
        if condition is None:
            condition = past
            continue
        tied = And((_equal(key, value), condition))
        condition = tied if past is None else Or((past, tied))
    if condition is None:  # pragma: no cover - the sort ends with the key, which is never NULL
        raise QueryError("keyset pagination needs a sorted query")
    return condition


def reversed_sort(sort: Sequence[SortKey]) -> tuple[SortKey, ...]:
    """``sort`` run backwards: every key the other way (NULL moves to the other end with it)."""
    return tuple(SortKey(key.field, not key.descending) for key in sort)
