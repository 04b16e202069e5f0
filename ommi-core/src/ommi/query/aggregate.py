"""Aggregates (``Count``, ``Sum``, ``Avg``, ``Min``, ``Max``), grouping and ``having``: the tree and its semantics.

``db.find(...).aggregate(n=Count(), total=Sum(Post.views))`` gives one dict;
``db.find(...).group_by(Post.author).having(Aggregated("n") >= 2).aggregate(n=Count())``
gives one dict per group. Drivers receive an :class:`Aggregation` (through
:meth:`ommi.drivers.Operations.aggregate`) and return rows of canonical values:
the group fields' values, then each aggregate's value, in order.

The semantics every driver must match, written once here (the reference driver
and :meth:`Operations.aggregate`'s default compute with :func:`aggregate_rows`),
are SQL's:

* ``Count()`` counts rows; ``Count(field)`` counts the rows whose ``field`` is not NULL.
* ``Sum``/``Avg``/``Min``/``Max`` ignore NULL and give ``None`` when no value is
  left (``Count`` gives 0). Without ``group_by`` the rows form one group even
  when there are none: ``{"n": 0, "total": None}``.
* ``Sum`` of an ``INTEGER`` field is an exact ``int``; a sum outside the signed
  64-bit range is a :class:`~ommi.errors.ValidationError` (on every backend,
  whatever the database does with it). ``Sum`` of a ``FLOAT`` field is a float
  (a sum that is not finite is a ``ValidationError``); of a ``DECIMAL`` field an
  exact ``Decimal`` (a sum needing more than :data:`DECIMAL_SUM_DIGITS`
  significant digits is a ``ValidationError``, never a rounded value). ``Avg``
  of a ``FLOAT`` field whose sum is not finite is a ``ValidationError`` too.
* ``Avg`` of an ``INTEGER`` field is a float: the exact sum divided by the
  count, correctly rounded (so every backend gives the same float). ``Avg`` of a
  ``DECIMAL`` field is a ``Decimal``: the exact sum divided by the count to 28
  significant digits, rounding half to even (:data:`AVG_CONTEXT`). ``Avg`` of a
  ``FLOAT`` field is the database's own mean, which may differ between backends
  in the last bits (summation order).
* ``Min``/``Max`` keep the field's type (decoded through its codec) and order as
  Ommi sorts (text by code point, ``Decimal`` by value). They are refused
  (:class:`~ommi.errors.QueryError`) on ``BOOLEAN``, ``BYTES``, ``UUID`` and
  ``JSON`` fields, which not every database orders in an aggregate.
* ``Sum``/``Avg`` take ``INTEGER``, ``FLOAT`` and ``DECIMAL`` fields only.
* With ``group_by`` rows with equal values of every group field form one
  group; NULL is a value there (all NULLs form one group). Groups come back
  ordered by the group fields ascending, in ``group_by`` order, NULL first,
  as ``sort`` orders them.
* ``having`` keeps the groups whose aggregate values satisfy it, with the
  comparison rules of conditions (a comparison other than ``!=`` never holds
  for NULL; ``!=`` does). Core and drivers apply it to the finished values
  (:func:`keep_group`), so ``Avg`` compares the value the caller receives.
"""

from __future__ import annotations

import decimal
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from ommi.errors import QueryError, ValidationError
from ommi.expressions import And, Expr, Op, Or
from ommi.models.schema import Field
from ommi.models.types import CHECKERS, INT64_MAX, INT64_MIN, StorageType

if TYPE_CHECKING:
    from ommi.models.schema import ModelSchema

__all__ = [
    "AVG_CONTEXT",
    "DECIMAL_SUM_DIGITS",
    "NUMERIC",
    "UNORDERED",
    "Aggregate",
    "AggregateCondition",
    "Aggregated",
    "Aggregation",
    "Avg",
    "Count",
    "Max",
    "Min",
    "Sum",
    "aggregate_rows",
    "average",
    "check_sum",
    "exact_decimal_sum",
    "finish_groups",
    "having_positions",
    "keep_group",
    "resolve_having",
]

NUMERIC = frozenset({StorageType.INTEGER, StorageType.FLOAT, StorageType.DECIMAL})
UNORDERED = frozenset({StorageType.BOOLEAN, StorageType.BYTES, StorageType.UUID, StorageType.JSON})
"""Storage types ``Min``/``Max`` refuse: PostgreSQL has no ``min``/``max`` over them."""

DECIMAL_SUM_DIGITS = 10_000
"""The most significant digits an exact ``Decimal`` sum may need; more is a ``ValidationError``."""

AVG_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)
"""How ``Avg`` of a ``DECIMAL`` field divides the exact sum by the count."""

_SUM_CONTEXT = decimal.Context(
    prec=DECIMAL_SUM_DIGITS,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.Overflow, decimal.InvalidOperation],
)


class Aggregate:
    """One aggregate of a query's rows: ``Count()``, ``Count(field)``, ``Sum``, ``Avg``, ``Min`` or ``Max``.

    ``field`` is typed ``Any`` because to a type checker ``Post.views`` is an
    ``int``; it is checked when the aggregate is made.

    Attributes:
        field: the aggregated field (``None`` for ``Count()``).
        kind: ``"count"``, ``"sum"``, ``"avg"``, ``"min"`` or ``"max"``.
    """

    __slots__ = ("field",)
    kind: ClassVar[str] = ""
    _takes: ClassVar[frozenset[StorageType] | None] = None
    _why: ClassVar[str] = ""

    def __init__(self, field: Any) -> None:
        name = type(self).__name__
        if not isinstance(field, Field):
            raise QueryError(f"{name}() takes a model field (like {name}(Post.views)), not {field!r}")
        takes = self._takes
        if takes is not None and field.storage not in takes:
            raise QueryError(f"{name}({field!r}): {field!r} is stored as {field.storage.value}; {self._why}")
        self.field: Field | None = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'' if self.field is None else repr(self.field)})"

    @property
    def result_storage(self) -> StorageType:
        """The storage type of the aggregate's value (``INTEGER`` for a count)."""
        assert self.field is not None
        return self.field.storage

    def encode(self, value: Any) -> Any:
        """``value`` as a canonical value of the aggregate's result, for ``having``.

        Raises:
            ValidationError: the value cannot be such a result (``Count() >= 1.5``).
        """
        return CHECKERS[self.result_storage](value)

    def decode(self, value: Any) -> Any:
        """The application's value of a canonical result (``Min``/``Max`` go through the field's codec)."""
        return value

    def __bool__(self) -> NoReturn:
        raise QueryError(
            f"{self!r} is an aggregate, not a condition: name it in .aggregate(n={self!r}) and filter groups "
            "with .having(ommi.Aggregated('n') >= ...)"
        )


class Count(Aggregate):
    """``Count()``: the number of rows; ``Count(field)``: the number of rows whose ``field`` is not NULL."""

    __slots__ = ()
    kind = "count"

    def __init__(self, field: Any = None) -> None:
        if field is None:
            self.field = None
        else:
            super().__init__(field)

    @property
    def result_storage(self) -> StorageType:
        return StorageType.INTEGER


class Sum(Aggregate):
    """The sum of the field's non-NULL values (``None`` when there is none); numeric fields only."""

    __slots__ = ()
    kind = "sum"
    _takes = NUMERIC
    _why = "Sum takes int, float or Decimal fields"

    def decode(self, value: Any) -> Any:
        return check_sum(self, value)


class Avg(Aggregate):
    """The mean of the field's non-NULL values (``None`` when there is none); numeric fields only.

    A float for ``int`` and ``float`` fields, a ``Decimal`` for ``Decimal`` fields.
    """

    __slots__ = ()
    kind = "avg"
    _takes = NUMERIC
    _why = "Avg takes int, float or Decimal fields"

    def decode(self, value: Any) -> Any:
        return check_sum(self, value)

    @property
    def result_storage(self) -> StorageType:
        assert self.field is not None
        return StorageType.DECIMAL if self.field.storage is StorageType.DECIMAL else StorageType.FLOAT


class _Extreme(Aggregate):
    __slots__ = ()
    _takes = frozenset(StorageType) - UNORDERED
    _why = (
        "Min and Max take fields of an ordered type (numbers, text, dates and times); "
        "bool, bytes, UUID and JSON fields are not ordered alike by every database"
    )

    def encode(self, value: Any) -> Any:
        assert self.field is not None
        if value is None:
            raise ValidationError(f"{self!r}: compare with None through == None or != None")
        return self.field.encode(value)

    def decode(self, value: Any) -> Any:
        assert self.field is not None
        return self.field.decode(value)


class Min(_Extreme):
    """The smallest non-NULL value of the field, in Ommi's order (``None`` when there is none)."""

    __slots__ = ()
    kind = "min"


class Max(_Extreme):
    """The largest non-NULL value of the field, in Ommi's order (``None`` when there is none)."""

    __slots__ = ()
    kind = "max"


@dataclass(frozen=True, slots=True, eq=False)
class AggregateCondition(Expr):
    """``Aggregated(name) <op> value``: a condition of ``having`` on a named aggregate.

    Built unresolved (``aggregate`` ``None``, ``value`` as given); core resolves
    it when ``.aggregate(...)`` names the aggregates (:func:`resolve_having`),
    setting ``aggregate`` and encoding ``value`` into the aggregate's canonical
    result. ``value`` is ``None`` for ``IS_NULL`` / ``IS_NOT_NULL``.
    """

    name: str
    op: Op
    value: Any = None
    aggregate: Aggregate | None = None

    def models(self) -> Iterable[ModelSchema]:
        return ()

    def __repr__(self) -> str:
        return f"(Aggregated({self.name!r}) {self.op.value} {self.value!r})"


class Aggregated:
    """A named aggregate's value in ``having``: ``.having(ommi.Aggregated("n") >= 2)``.

    The name is one given to ``.aggregate(...)``; it is looked up when
    ``.aggregate(...)`` runs (an unknown name is a
    :class:`~ommi.errors.QueryError`, before any I/O). Comparisons combine with
    ``&`` and ``|`` like the conditions of ``find``; ``== None`` and ``!= None``
    test for NULL.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise QueryError(f"Aggregated() takes the name of an aggregate given to .aggregate(...), not {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"Aggregated({self.name!r})"

    def _compare(self, op: Op, value: Any) -> AggregateCondition:
        if value is None:
            if op is Op.EQ:
                return AggregateCondition(self.name, Op.IS_NULL)
            if op is Op.NE:
                return AggregateCondition(self.name, Op.IS_NOT_NULL)
            raise QueryError(f"{self!r} {op.value} None is not a valid comparison; use == None or != None")
        return AggregateCondition(self.name, op, value)

    def __eq__(self, value: Any) -> AggregateCondition:  # type: ignore[override]
        return self._compare(Op.EQ, value)

    def __ne__(self, value: Any) -> AggregateCondition:  # type: ignore[override]
        return self._compare(Op.NE, value)

    def __lt__(self, value: Any) -> AggregateCondition:
        return self._compare(Op.LT, value)

    def __le__(self, value: Any) -> AggregateCondition:
        return self._compare(Op.LE, value)

    def __gt__(self, value: Any) -> AggregateCondition:
        return self._compare(Op.GT, value)

    def __ge__(self, value: Any) -> AggregateCondition:
        return self._compare(Op.GE, value)

    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True, eq=False)
class Aggregation:
    """What :meth:`ommi.drivers.Operations.aggregate` computes over a query's rows.

    Attributes:
        aggregates: ``(name, aggregate)`` pairs, in the order the values come back.
        group_by: fields of the query's target; empty for one group of every row.
        having: resolved :class:`AggregateCondition` nodes (in ``And``/``Or``), or ``None``.
    """

    aggregates: tuple[tuple[str, Aggregate], ...]
    group_by: tuple[Field, ...] = ()
    having: Expr | None = None


def resolve_having(having: Expr, aggregates: dict[str, Aggregate]) -> Expr:
    """``having`` with every :class:`AggregateCondition` bound to its named aggregate and its value encoded.

    Raises:
        QueryError: an unknown name, or a condition on fields (those belong in ``find``).
        ValidationError: a value the aggregate's result cannot be.
    """
    if isinstance(having, And):
        return And(tuple(resolve_having(item, aggregates) for item in having.items))
    if isinstance(having, Or):
        return Or(tuple(resolve_having(item, aggregates) for item in having.items))
    if not isinstance(having, AggregateCondition):
        raise QueryError(
            f"having() takes conditions on aggregate names (ommi.Aggregated('n') >= 2), not {having!r}; "
            "filter rows with the conditions of find()"
        )
    aggregate = aggregates.get(having.name)
    if aggregate is None:
        known = ", ".join(repr(name) for name in aggregates) or "none"
        raise QueryError(f"having(): no aggregate is named {having.name!r} in .aggregate(...) (named: {known})")
    if having.op is Op.IS_NULL or having.op is Op.IS_NOT_NULL:
        return AggregateCondition(having.name, having.op, None, aggregate)
    try:
        value = aggregate.encode(having.value)
    except ValidationError as exc:
        raise ValidationError(f"having(): {having!r}: {exc}") from None
    return AggregateCondition(having.name, having.op, value, aggregate)


def holds_on_aggregate(node: AggregateCondition, value: Any) -> bool:
    """Whether ``node`` holds for the aggregate value ``value``."""
    op = node.op
    if op is Op.IS_NULL:
        return value is None
    if op is Op.IS_NOT_NULL:
        return value is not None
    if op is Op.NE:
        return value is None or value != node.value
    if value is None:
        return False
    return bool(_COMPARE[op](value, node.value))


_COMPARE: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


def keep_group(having: Expr | None, names: dict[str, int], row: Sequence[Any]) -> bool:
    """Whether a finished group row satisfies ``having`` (``names``: aggregate name -> position in ``row``)."""
    if having is None:
        return True
    if isinstance(having, And):
        return all(keep_group(item, names, row) for item in having.items)
    if isinstance(having, Or):
        return any(keep_group(item, names, row) for item in having.items)
    assert isinstance(having, AggregateCondition)
    return holds_on_aggregate(having, row[names[having.name]])


def having_positions(aggregation: Aggregation) -> dict[str, int]:
    """Each aggregate name's position in a result row (after the group fields)."""
    offset = len(aggregation.group_by)
    return {name: offset + i for i, (name, _) in enumerate(aggregation.aggregates)}


# -- values ---------------------------------------------------------------------------------------


def check_sum(aggregate: Aggregate, value: Any) -> Any:
    """A driver's (or Python's) sum as the canonical result, refusing one outside the result type.

    Raises:
        ValidationError: an ``INTEGER`` sum outside the signed 64-bit range, a
            ``FLOAT`` sum that is not finite.
    """
    if value is None:
        return None
    field = aggregate.field
    storage = aggregate.result_storage
    if storage is StorageType.INTEGER:
        if isinstance(value, float) or not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(
                f"{aggregate!r} is {value!r}, outside the signed 64-bit range an int result holds; "
                f"sum fewer rows or store {field!r} as a Decimal"
            )
        return int(value)
    if storage is StorageType.FLOAT:
        value = float(value)
        if not math.isfinite(value):
            raise ValidationError(
                f"{aggregate!r}: the sum of the values overflows a double-precision float (no driver agrees on "
                "what to give then)"
            )
    return value


def exact_decimal_sum(values: Iterable[decimal.Decimal]) -> decimal.Decimal | None:
    """The exact sum of ``values`` (``None`` for none).

    Raises:
        ValidationError: the sum needs more than :data:`DECIMAL_SUM_DIGITS` significant digits.
    """
    total: decimal.Decimal | None = None
    try:
        for value in values:
            total = value if total is None else _SUM_CONTEXT.add(total, value)
    except (decimal.Inexact, decimal.Overflow, decimal.InvalidOperation):
        raise ValidationError(
            f"a Decimal sum needs more than {DECIMAL_SUM_DIGITS} significant digits; Ommi never rounds a sum"
        ) from None
    return None if total is None else _SUM_CONTEXT.plus(total)


def average(total: Any, count: int, storage: StorageType) -> Any:
    """The mean from an exact sum and a count, as every backend computes ``Avg`` of ``INTEGER``/``DECIMAL``.

    ``storage`` is the averaged field's. ``None`` when ``count`` is 0.
    """
    if not count or total is None:
        return None
    if storage is StorageType.DECIMAL:
        return AVG_CONTEXT.divide(decimal.Decimal(total), decimal.Decimal(count))
    if storage is StorageType.INTEGER:
        return int(total) / count  # int / int: correctly rounded
    return float(total) / count


class _Accumulator:
    """One aggregate's running state over one group."""

    __slots__ = ("count", "extreme", "values")

    def __init__(self) -> None:
        self.count = 0
        self.values: list[Any] = []
        self.extreme: Any = None


def _finish(aggregate: Aggregate, state: _Accumulator) -> Any:
    kind = aggregate.kind
    if kind == "count":
        return state.count
    if kind in ("min", "max"):
        return state.extreme
    assert aggregate.field is not None
    storage = aggregate.field.storage
    values = state.values
    if not values:
        return None
    if storage is StorageType.DECIMAL:
        total: Any = exact_decimal_sum(values)
    elif storage is StorageType.INTEGER:
        total = sum(values)
    else:
        try:
            total = math.fsum(values)
        except OverflowError:
            total = math.inf
    if kind == "sum":
        return check_sum(aggregate, total)
    if storage is StorageType.FLOAT:
        return check_sum(aggregate, total / len(values))
    return average(total, len(values), storage)


def _order_key(value: Any) -> tuple[Any, ...]:
    return (0,) if value is None else (1, value)


def aggregate_rows(
    rows: Iterable[Sequence[Any]],
    aggregation: Aggregation,
    value_of: Callable[[Sequence[Any], Field], Any] | None = None,
) -> list[tuple[Any, ...]]:
    """The result rows of ``aggregation`` over ``rows``: the semantics every driver must match.

    Args:
        rows: the matching rows, each once (canonical values).
        aggregation: what to compute; its ``having`` resolved.
        value_of: a field's canonical value in a row; by default ``row[field.index]``.

    Returns:
        One row per group (group values, then aggregate values), ordered by the
        group fields ascending with NULL first; without ``group_by`` exactly one row.
    """
    get: Callable[[Sequence[Any], Field], Any] = value_of or (lambda row, f: row[f.index])
    group_by = aggregation.group_by
    aggregates = [aggregate for _, aggregate in aggregation.aggregates]
    groups: dict[tuple[Any, ...], list[_Accumulator]] = {}
    keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    if not group_by:
        groups[()] = [_Accumulator() for _ in aggregates]
        keys[()] = ()
    for row in rows:
        group = tuple(get(row, f) for f in group_by)
        # Equal values group together whatever their representation (Decimal 1.0 and 1.00).
        marker = tuple((v is None, v) for v in group)
        states = groups.get(marker)
        if states is None:
            states = groups[marker] = [_Accumulator() for _ in aggregates]
            keys[marker] = group
        for aggregate, state in zip(aggregates, states, strict=True):
            field = aggregate.field
            if field is None:
                state.count += 1
                continue
            value = get(row, field)
            if value is None:
                continue
            kind = aggregate.kind
            if kind == "count":
                state.count += 1
            elif kind == "min":
                if state.extreme is None or value < state.extreme:
                    state.extreme = value
            elif kind == "max":
                if state.extreme is None or value > state.extreme:
                    state.extreme = value
            else:
                state.values.append(value)
    result = [
        keys[marker] + tuple(_finish(a, s) for a, s in zip(aggregates, states, strict=True))
        for marker, states in groups.items()
    ]
    return finish_groups(result, aggregation)


def finish_groups(rows: list[tuple[Any, ...]], aggregation: Aggregation) -> list[tuple[Any, ...]]:
    """Finished group rows in the defined order (group fields ascending, NULL first), ``having`` applied.

    For a driver whose database groups but does not order (or filter) the
    groups as Ommi defines; ``rows`` hold canonical values.
    """
    for position in reversed(range(len(aggregation.group_by))):
        rows.sort(key=lambda row, p=position: _order_key(row[p]))  # type: ignore[misc]
    if aggregation.having is None:
        return rows
    names = having_positions(aggregation)
    return [row for row in rows if keep_group(aggregation.having, names, row)]
