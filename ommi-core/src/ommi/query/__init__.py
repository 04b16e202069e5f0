"""Queries: the condition tree, the ``find`` builder and its results.

The condition tree itself lives in :mod:`ommi.expressions` (re-exported as
:mod:`ommi.query.ast`), below the models; the builder (:mod:`ommi.query.find`)
sits above them.
"""

from ommi.expressions import And, Comparison, Expr, FieldComparison, Join, Op, Or, Query, SortKey, when
from ommi.query.find import FindQuery, ResultIterator, ValuesQuery

__all__ = [
    "And",
    "Comparison",
    "Expr",
    "FieldComparison",
    "FindQuery",
    "Join",
    "Op",
    "Or",
    "Query",
    "ResultIterator",
    "SortKey",
    "ValuesQuery",
    "when",
]
