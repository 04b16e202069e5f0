"""The backend-neutral query tree, under its documented path.

The tree lives in :mod:`ommi.expressions` (outside this package, so that the
models, which are built on it, can import it without running
``ommi/query/__init__.py``); this module re-exports it for drivers and
applications, which may import from either.
"""

from ommi.expressions import (
    FOLDED_TEXT_OPS,
    ORDERING_OPS,
    TEXT_OPS,
    And,
    Arithmetic,
    ArithOp,
    Comparison,
    Expr,
    FieldComparison,
    Join,
    JsonComparison,
    JsonHas,
    Op,
    Operand,
    Or,
    Query,
    RowLock,
    SortKey,
    _conditions,
    when,
)
from ommi.query.aggregate import Aggregate, AggregateCondition, Aggregation

__all__ = [
    "FOLDED_TEXT_OPS",
    "ORDERING_OPS",
    "TEXT_OPS",
    "Aggregate",
    "AggregateCondition",
    "Aggregation",
    "And",
    "ArithOp",
    "Arithmetic",
    "Comparison",
    "Expr",
    "FieldComparison",
    "Join",
    "JsonComparison",
    "JsonHas",
    "Op",
    "Operand",
    "Or",
    "Query",
    "RowLock",
    "SortKey",
    "_conditions",
    "when",
]
