"""Queries: the condition tree, the ``find`` builder and its results.

Layering: the condition tree (:mod:`ommi.query.ast`) sits below the models
(``Field`` is built on its ``Operand``), while the builder
(:mod:`ommi.query.find`) sits above them. Importing anything in this package
runs this module first, so it imports the tree only; ``FindQuery`` and
``ResultIterator`` are re-exported here late, on first attribute access
(PEP 562 ``__getattr__``, importing ``ommi.query.find``). That is a documented
late-binding edge, listed in ommi-core's layering test; import them from
:mod:`ommi.query.find` in code of your own.
"""

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
    # Late-bound on purpose (see the module docstring): the builder is built on ommi.models.
    if name in ("FindQuery", "ResultIterator"):
        from ommi.query import find

        return getattr(find, name)
    raise AttributeError(f"module 'ommi.query' has no attribute {name!r}")
