"""Queries: the condition tree, the ``find`` builder and its results."""

from typing import Any

from ommi.query.ast import And, Comparison, Expr, FieldComparison, Join, Op, Or, Query, SortKey, when

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
    "when",
]


def __getattr__(name: str) -> Any:
    # The builder needs ommi.models, which needs ommi.query.ast: import it on demand.
    if name in ("FindQuery", "ResultIterator"):
        from ommi.query import find

        return getattr(find, name)
    raise AttributeError(name)
