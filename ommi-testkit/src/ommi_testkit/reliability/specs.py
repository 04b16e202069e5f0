"""Generated cases as plain data: rows, conditions and operations, and how each becomes API calls.

The generators (:mod:`ommi_testkit.reliability.strategies`) produce these
immutable specs rather than query objects, so a failing case prints readably
(Hypothesis shows the spec) and the same spec runs on every backend through
the public API: ``db.find(Sample, Sample.number < 3).sort(...).limit(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ommi.expressions import Expr, when
from ommi.models.schema import Field, get_schema
from ommi.query.aggregate import Aggregate, Aggregated, Avg, Count, Max, Min, Sum

__all__ = [
    "AGGREGATES",
    "CASE_INSENSITIVE_MATCHES",
    "AddSpec",
    "AggregateSpec",
    "AllOf",
    "AnyOf",
    "Arith",
    "Compare",
    "CompareFields",
    "Cond",
    "DeleteSpec",
    "ExistsSpec",
    "FindSpec",
    "HavingCompare",
    "Operation",
    "Ref",
    "RowSpec",
    "Scenario",
    "UpdateSpec",
    "ValuesSpec",
    "field_of",
]

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
"""Operators between a field and a value (or two fields)."""
MEMBERSHIP = ("in", "not in")
TEXT_MATCHES = ("contains", "startswith", "endswith")
CASE_INSENSITIVE_MATCHES = ("icontains", "istartswith", "iendswith")
"""The text matches with ``case_sensitive=False``."""
NULL_TESTS = ("is null", "is not null")


def field_of(model: type, name: str) -> Field:
    """The query operand ``Model.name``."""
    return get_schema(model).by_name[name]


_BINARY: dict[str, Callable[[Field, Any], Expr]] = {
    "==": lambda f, v: f == v,
    "!=": lambda f, v: f != v,
    "<": lambda f, v: f < v,
    "<=": lambda f, v: f <= v,
    ">": lambda f, v: f > v,
    ">=": lambda f, v: f >= v,
    "in": lambda f, v: f.in_(v),
    "not in": lambda f, v: f.not_in(v),
    "contains": lambda f, v: f.contains(v),
    "startswith": lambda f, v: f.startswith(v),
    "endswith": lambda f, v: f.endswith(v),
    "icontains": lambda f, v: f.contains(v, case_sensitive=False),
    "istartswith": lambda f, v: f.startswith(v, case_sensitive=False),
    "iendswith": lambda f, v: f.endswith(v, case_sensitive=False),
    "is null": lambda f, v: f == None,  # noqa: E711 - the API's spelling of IS NULL
    "is not null": lambda f, v: f != None,  # noqa: E711
}


@dataclass(frozen=True, slots=True)
class Compare:
    """``Model.field <op> value`` (``value`` is a tuple for ``in`` / ``not in``, unused for null tests)."""

    model: type
    field: str
    op: str
    value: Any = None

    def build(self) -> Expr:
        return _BINARY[self.op](field_of(self.model, self.field), self.value)

    def __repr__(self) -> str:
        if self.op in NULL_TESTS:
            return f"{self.model.__name__}.{self.field} {self.op}"
        return f"{self.model.__name__}.{self.field} {self.op} {self.value!r}"


@dataclass(frozen=True, slots=True)
class CompareFields:
    """``Left.field <op> Right.field`` between fields of the same storage type."""

    left: tuple[type, str]
    op: str
    right: tuple[type, str]

    def build(self) -> Expr:
        return _BINARY[self.op](field_of(*self.left), field_of(*self.right))

    def __repr__(self) -> str:
        return f"{self.left[0].__name__}.{self.left[1]} {self.op} {self.right[0].__name__}.{self.right[1]}"


@dataclass(frozen=True, slots=True)
class AllOf:
    """All items hold; built as ``when(a, b, c)`` or, with ``chained``, ``when(a).And(b, c)``."""

    items: tuple[Cond, ...]
    chained: bool = False

    def build(self) -> Expr:
        built = [item.build() for item in self.items]
        if self.chained and len(built) > 1:
            return when(built[0]).And(*built[1:])
        return when(*built)

    def __repr__(self) -> str:
        return "(" + " AND ".join(map(repr, self.items)) + ")"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one item holds; built as ``when(a).Or(b).Or(c)``."""

    items: tuple[Cond, ...]

    def build(self) -> Expr:
        expr = when(self.items[0].build())
        for item in self.items[1:]:
            expr = expr.Or(item.build())
        return expr

    def __repr__(self) -> str:
        return "(" + " OR ".join(map(repr, self.items)) + ")"


Cond = Compare | CompareFields | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class RowSpec:
    """The field values of one model instance (a fresh instance is built for every backend)."""

    model: type
    values: tuple[tuple[str, Any], ...]

    def make(self) -> Any:
        return self.model(**dict(self.values))

    @property
    def key(self) -> Any:
        return dict(self.values)["id"]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.values if value is not None)
        return f"{self.model.__name__}({shown})"


@dataclass(frozen=True, slots=True)
class FindSpec:
    """``db.find(target, *where).sort(...).after(row)/.before(row).limit(...)`` then ``.all`` / ``.count`` / ``.one``.

    ``cursor``: ``("after" or "before", row)``, a keyset page from ``row``'s
    values (a row of the starting data: it may have changed or gone since,
    its values still mark a place in the order).
    """

    target: type
    where: tuple[Cond, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()
    window: tuple[int, int] | None = None
    action: str = "all"
    batch_size: int | None = None
    cursor: tuple[str, RowSpec] | None = None

    @property
    def ordered(self) -> bool:
        """Whether the result order is defined (sorted, windowed or paged by a cursor: core then sorts by key too)."""
        return bool(self.sort) or self.window is not None or self.action == "one" or self.cursor is not None


@dataclass(frozen=True, slots=True)
class ValuesSpec:
    """``db.find(target, *where).sort(...).limit(...).values(*fields)``, then ``.distinct()`` when ``distinct``."""

    target: type
    fields: tuple[str, ...]
    where: tuple[Cond, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()
    window: tuple[int, int] | None = None
    distinct: bool = False
    batch_size: int | None = None

    @property
    def ordered(self) -> bool:
        """Whether the result order is defined: always with ``distinct``, else as for :class:`FindSpec`."""
        return self.distinct or bool(self.sort) or self.window is not None


@dataclass(frozen=True, slots=True)
class ExistsSpec:
    """``db.find(target, *where).limit(...).exists``."""

    target: type
    where: tuple[Cond, ...] = ()
    window: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Ref:
    """``Model.field`` as an update value: a copy, or an operand of :class:`Arith`."""

    model: type
    field: str

    def build(self) -> Field:
        return field_of(self.model, self.field)

    def __repr__(self) -> str:
        return f"{self.model.__name__}.{self.field}"


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


@dataclass(frozen=True, slots=True)
class Arith:
    """An update expression ``left <op> right``; each side a :class:`Ref`, an :class:`Arith` or a number."""

    op: str
    left: Any
    right: Any

    def build(self) -> Any:
        """The :class:`ommi.expressions.Arithmetic`, built with Python's operators as an application would."""
        built = [side.build() if isinstance(side, (Ref, Arith)) else side for side in (self.left, self.right)]
        return _ARITHMETIC[self.op](*built)

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"


@dataclass(frozen=True, slots=True)
class UpdateSpec:
    """``db.find(target, *where).update(**values)``; a value may be a :class:`Ref` or :class:`Arith`."""

    target: type
    where: tuple[Cond, ...]
    values: tuple[tuple[str, Any], ...]

    def built_values(self) -> dict[str | Field, Any]:
        """The values as ``update()`` takes them: copies and expressions built."""
        return {name: v.build() if isinstance(v, (Ref, Arith)) else v for name, v in self.values}


@dataclass(frozen=True, slots=True)
class DeleteSpec:
    """``db.find(target, *where).delete()``."""

    target: type
    where: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class AddSpec:
    """``db.add(*rows)``: all stored, or none (a duplicate or dangling key fails the whole call)."""

    rows: tuple[RowSpec, ...]


@dataclass(frozen=True, slots=True)
class UpsertSpec:
    """``db.upsert(*rows)`` by key: each row replaces the stored one with its key or is inserted, all or none."""

    rows: tuple[RowSpec, ...]


AGGREGATES: dict[str, Callable[[Field | None], Aggregate]] = {
    "count": lambda f: Count() if f is None else Count(f),
    "sum": lambda f: Sum(f),
    "avg": lambda f: Avg(f),
    "min": lambda f: Min(f),
    "max": lambda f: Max(f),
}
"""The aggregate of each kind's name (``Count()`` when the field is ``None``)."""


@dataclass(frozen=True, slots=True)
class HavingCompare:
    """``Aggregated(name) <op> value`` in ``having`` (``value`` unused for null tests)."""

    name: str
    op: str
    value: Any = None

    def build(self) -> Expr:
        reference = Aggregated(self.name)
        if self.op == "is null":
            return reference == None  # noqa: E711 - the API's spelling of IS NULL
        if self.op == "is not null":
            return reference != None  # noqa: E711
        return _HAVING[self.op](reference, self.value)

    def __repr__(self) -> str:
        if self.op in NULL_TESTS:
            return f"Aggregated({self.name!r}) {self.op}"
        return f"Aggregated({self.name!r}) {self.op} {self.value!r}"


_HAVING: dict[str, Callable[[Aggregated, Any], Expr]] = {
    "==": lambda a, v: a == v,
    "!=": lambda a, v: a != v,
    "<": lambda a, v: a < v,
    "<=": lambda a, v: a <= v,
    ">": lambda a, v: a > v,
    ">=": lambda a, v: a >= v,
}


@dataclass(frozen=True, slots=True)
class AggregateSpec:
    """``db.find(target, *where)[.group_by(...)[.having(...)]].aggregate(name=Kind(field), ...)``.

    ``aggregates``: ``(name, kind, field name or None)``; ``having``: an AND of
    ORs of :class:`HavingCompare` (built with ``&`` and ``|``).
    """

    target: type
    where: tuple[Cond, ...]
    group_by: tuple[str, ...]
    aggregates: tuple[tuple[str, str, str | None], ...]
    having: tuple[tuple[HavingCompare, ...], ...] = ()

    def built_aggregates(self) -> dict[str, Aggregate]:
        return {
            name: AGGREGATES[kind](None if field is None else field_of(self.target, field))
            for name, kind, field in self.aggregates
        }

    def built_having(self) -> Expr | None:
        clauses: list[Expr] = []
        for alternatives in self.having:
            clause = alternatives[0].build()
            for other in alternatives[1:]:
                clause = clause | other.build()
            clauses.append(clause)
        if not clauses:
            return None
        result = clauses[0]
        for clause in clauses[1:]:
            result = result & clause
        return result


Operation = FindSpec | ValuesSpec | ExistsSpec | AggregateSpec | UpdateSpec | DeleteSpec | AddSpec | UpsertSpec


@dataclass(frozen=True, slots=True)
class Scenario:
    """One generated example: the starting data and the operations run on it, in order."""

    owners: tuple[RowSpec, ...]
    samples: tuple[RowSpec, ...]
    operations: tuple[Operation, ...]
