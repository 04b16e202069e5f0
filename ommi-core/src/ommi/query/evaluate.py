"""Evaluate a condition in Python, with the semantics every driver must match.

The reference driver evaluates every query this way, and drivers use it for
whatever part of a condition their database cannot express (the MongoDB driver
evaluates conditions on related models with it). The rules:

* ``==``, ``<``, ``<=``, ``>``, ``>=``, ``in_`` and the text matches never hold for NULL;
* ``!=`` and ``not_in`` do hold for NULL (NULL differs from every value);
* text compares by code point; ``contains``/``startswith``/``endswith`` take
  the text literally and are case-sensitive, unless given ``case_sensitive=False``:
  then both the field's value and the text are first folded by :func:`fold_case`;
* between two fields, ``!=`` holds when exactly one is NULL, the others never hold for NULL;
* a JSON path (:class:`~ommi.expressions.JsonComparison`) is type-strict: ``==``
  and the orderings hold only where the value at the path has the operand's
  JSON kind (numbers, ints and floats alike, compare numerically; text by code
  point; ``true`` is never ``1``), ``!=`` holds wherever ``==`` does not, and
  ``== None`` holds where the field is NULL or the path is missing or ``null``;
  ``has(x)`` holds where the value at the path is a list with an element that
  is ``== x`` by the same rule;
* sorting puts NULL first ascending and last descending, bytes compare octet by
  octet, and rows that tie on every sort key keep their order (:func:`ordered`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ommi.expressions import And, Comparison, Expr, FieldComparison, JsonComparison, JsonHas, Op, Or, SortKey

if TYPE_CHECKING:
    from ommi.models.schema import Field

__all__ = ["fold_case", "holds", "json_at", "json_compare", "ordered"]

T = TypeVar("T")

_ORDERING: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


@functools.cache
def _fold_char(char: str) -> str:
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lowered = char.lower()
    return lowered if len(lowered) == 1 else char


def fold_case(text: str) -> str:
    """``text`` with each character case-folded one to one: Ommi's one definition of "case-insensitive".

    Each character is replaced by its Python ``casefold()`` when that is a
    single character, else by its ``lower()`` when that is a single
    character, else kept: Unicode's simple case folding, character by
    character. The length never changes and no context is looked at, so
    ``"ß"`` stays ``"ß"`` (full folding would give ``"ss"``), ``"ẞ"`` becomes
    ``"ß"``, ``"İ"`` stays ``"İ"``, and the Greek capital, small and final
    sigma (U+03A3, U+03C3, U+03C2) all become the small one wherever they stand. ``contains``, ``startswith`` and
    ``endswith`` with ``case_sensitive=False`` compare the folded value with
    the folded text; the queries guide lists where a backend folds differently.
    """
    if text.isascii():
        return text.lower()
    return "".join(map(_fold_char, text))


_FOLDED_MATCH: dict[Op, Callable[[str, str], bool]] = {
    Op.ICONTAINS: lambda value, text: text in value,
    Op.ISTARTSWITH: str.startswith,
    Op.IENDSWITH: str.endswith,
}


def _identity(field: Field, operand: Any) -> Any:
    return operand


def holds(
    expr: Expr,
    value_of: Callable[[Field], Any],
    operand_of: Callable[[Field, Any], Any] = _identity,
) -> bool:
    """Whether ``expr`` holds.

    Args:
        expr: the condition.
        value_of: a field's canonical value in the row(s) being tested; ``None``
            for NULL and for a field of a related row that is absent.
        operand_of: maps a comparison's canonical operand to the form stored
            values read back in (e.g. datetimes rounded as the database rounds
            them); identity by default.
    """
    if isinstance(expr, And):
        return all(holds(item, value_of, operand_of) for item in expr.items)
    if isinstance(expr, Or):
        return any(holds(item, value_of, operand_of) for item in expr.items)
    if isinstance(expr, Comparison):
        return _compare(expr, value_of(expr.field), operand_of)
    if isinstance(expr, FieldComparison):
        left, right = value_of(expr.left), value_of(expr.right)
        if expr.op is Op.NE:
            if left is None or right is None:
                return (left is None) != (right is None)
            return bool(left != right)
        if left is None or right is None:
            return False
        return _ORDERING[expr.op](left, right)
    if isinstance(expr, JsonComparison):
        return json_compare(expr.op, json_at(value_of(expr.field), expr.path), expr.value)
    if isinstance(expr, JsonHas):
        items = json_at(value_of(expr.field), expr.path)
        return isinstance(items, list) and any(json_compare(Op.EQ, item, expr.value) for item in items)
    raise TypeError(f"cannot evaluate {expr!r}")


_MISSING: Any = None
"""A missing path reads as JSON ``null``: every rule treats them alike."""


def json_at(value: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` inside the JSON value ``value``; ``None`` when the path is missing.

    A ``str`` step reads a key of a ``dict`` only, an ``int`` step an index of
    a ``list`` only (never a key ``"0"``, never from the end).
    """
    for step in path:
        if isinstance(step, str):
            if not isinstance(value, dict):
                return _MISSING
            value = value.get(step)
        else:
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
            value = value[step]
    return value


def _kind(value: Any) -> int:
    """0: null, 1: bool, 2: number, 3: text, 4: dict or list."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 2
    if isinstance(value, str):
        return 3
    return 4


def json_compare(op: Op, value: Any, operand: Any) -> bool:
    """Whether the JSON ``value`` (``None`` for null or missing) compares with the scalar ``operand`` by ``op``."""
    if op is Op.IS_NULL:
        return value is None
    if op is Op.IS_NOT_NULL:
        return value is not None
    if op is Op.NE:
        return not json_compare(Op.EQ, value, operand)
    if _kind(value) != _kind(operand):
        return False
    return bool(_ORDERING[op](value, operand))


def _compare(node: Comparison, value: Any, operand_of: Callable[[Field, Any], Any]) -> bool:
    op = node.op
    if op is Op.IS_NULL:
        return value is None
    if op is Op.IS_NOT_NULL:
        return value is not None
    if op is Op.NE:
        return value is None or value != operand_of(node.field, node.value)
    if op is Op.NOT_IN:
        return value is None or value not in {operand_of(node.field, v) for v in node.value}
    if value is None:
        return False
    if op is Op.IN:
        return value in {operand_of(node.field, v) for v in node.value}
    if op is Op.CONTAINS:
        return node.value in value
    if op is Op.STARTSWITH:
        return bool(value.startswith(node.value))
    if op is Op.ENDSWITH:
        return bool(value.endswith(node.value))
    if op in _FOLDED_MATCH:
        return _FOLDED_MATCH[op](fold_case(value), fold_case(node.value))
    return bool(_ORDERING[op](value, operand_of(node.field, node.value)))


def ordered(items: Iterable[T], sort: Sequence[SortKey], value_of: Callable[[T, Field], Any]) -> list[T]:
    """``items`` in the order of ``sort``: the order every driver must give.

    ``value_of(item, field)`` is the item's canonical value of ``field``.
    NULL sorts first ascending and last descending; items that tie on every
    key keep their relative order (core appends the key to every sort, so
    query results never tie).
    """
    result = list(items)
    for key in reversed(sort):
        field = key.field
        result.sort(key=lambda item: (0,) if (v := value_of(item, field)) is None else (1, v), reverse=key.descending)
    return result
