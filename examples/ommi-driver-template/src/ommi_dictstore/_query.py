"""Running Ommi's query tree over a table's rows.

The ``where`` tree is compiled once per query into a Python function of a
row, then applied to every row. The rules are Ommi's (every driver must match
them; the testkit's conformance suite checks them):

* ``==``, ``<``, ``in_``, ``contains``... never hold for NULL;
* ``!=`` and ``not_in`` *do* hold for NULL (NULL differs from any value);
* comparing two fields with ``!=`` means "is distinct from": NULL vs NULL is
  not distinct, NULL vs a value is;
* ascending sorts put NULL first, descending sorts put it last.

Conditions on *other* models (joins) are not supported: this driver declares
the ``related_conditions`` capability absent, and :func:`select` refuses them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from ommi.errors import UnsupportedFeature
from ommi.expressions import And, Comparison, Expr, FieldComparison, Op, Or, Query

from ommi_dictstore._tables import Row, Tables, table_of

__all__ = ["count", "select"]

Predicate = Callable[[Row], bool]

# Tests between two non-NULL values (NULL is handled before these run).
_VALUE_TESTS: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.IN: lambda value, members: value in members,
    Op.NOT_IN: lambda value, members: value not in members,
    Op.CONTAINS: lambda value, text: text in value,
    Op.STARTSWITH: lambda value, text: bool(value.startswith(text)),
    Op.ENDSWITH: lambda value, text: bool(value.endswith(text)),
}

# Operators that hold when the stored value is NULL.
_TRUE_FOR_NULL = frozenset({Op.NE, Op.NOT_IN, Op.IS_NULL})


def _compare(index: int, op: Op, operand: Any) -> Predicate:
    if op is Op.IS_NULL:
        return lambda row: row[index] is None
    if op is Op.IS_NOT_NULL:
        return lambda row: row[index] is not None
    if op in (Op.IN, Op.NOT_IN):
        operand = frozenset(operand)  # canonical values are hashable; a set makes each test O(1)
    test = _VALUE_TESTS[op]
    if_null = op in _TRUE_FOR_NULL

    def predicate(row: Row) -> bool:
        value = row[index]
        return if_null if value is None else test(value, operand)

    return predicate


def _compare_fields(left: int, op: Op, right: int) -> Predicate:
    test = _VALUE_TESTS[op]

    def predicate(row: Row) -> bool:
        a, b = row[left], row[right]
        if a is None or b is None:
            # Only "distinct from" can hold with a NULL side: when exactly one side is NULL.
            return op is Op.NE and (a is None) != (b is None)
        return test(a, b)

    return predicate


def _compile(expr: Expr, query: Query) -> Predicate:
    match expr:
        case And(items=items):
            parts = [_compile(item, query) for item in items]
            return lambda row: all(part(row) for part in parts)
        case Or(items=items):
            parts = [_compile(item, query) for item in items]
            return lambda row: any(part(row) for part in parts)
        case Comparison(field=target, op=op, value=value):
            _own_field(target.schema, query)
            return _compare(target.index, op, value)
        case FieldComparison(left=left, op=op, right=right):
            _own_field(left.schema, query)
            _own_field(right.schema, query)
            return _compare_fields(left.index, op, right.index)
    raise TypeError(f"the dictstore driver cannot evaluate {expr!r}")


def _own_field(schema: object, query: Query) -> None:
    if schema is not query.model:
        _no_joins(query)


def _no_joins(query: Query) -> None:
    raise UnsupportedFeature(
        f"the dictstore driver cannot filter {query.model.name} by conditions on other models "
        "(capability 'related_conditions' is absent); query each model on its own"
    )


def _matching(query: Query, tables: Tables) -> list[Row]:
    if query.joins:
        _no_joins(query)
    rows = list(table_of(tables, query.model).rows.values())
    if query.where is None:
        return rows
    keep = _compile(query.where, query)
    return [row for row in rows if keep(row)]


def _null_first(index: int) -> Callable[[Row], tuple[bool, Any]]:
    # (False, None) sorts before (True, value): NULL first; a reversed sort puts it last.
    return lambda row: (row[index] is not None, row[index])


def select(query: Query, tables: Tables) -> list[Row]:
    """The rows ``query`` returns: filtered, sorted, then windowed."""
    rows = _matching(query, tables)
    # Sort by the last key first: Python's sort is stable, so earlier keys win.
    for sort_key in reversed(query.sort):
        rows.sort(key=_null_first(sort_key.field.index), reverse=sort_key.descending)
    stop = None if query.limit is None else query.offset + query.limit
    return rows[query.offset : stop]


def count(query: Query, tables: Tables) -> int:
    """How many rows ``query`` returns (the order does not matter for a count)."""
    total = max(0, len(_matching(query, tables)) - query.offset)
    return total if query.limit is None else min(total, query.limit)
