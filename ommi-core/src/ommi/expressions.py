"""The backend-neutral query tree (also importable as :mod:`ommi.query.ast`).

It sits low in ommi-core's layers: ``Field`` (in :mod:`ommi.models.schema`) is
built on its :class:`Operand`, and the ``find`` builder (:mod:`ommi.query.find`)
on the models. It lives outside the :mod:`ommi.query` package so that importing
it never runs that package's ``__init__``, which imports the builder.

``User.age >= 18`` builds a :class:`Comparison`; ``when(a, b)`` ANDs them;
``.And(...)`` / ``.Or(...)`` chain left to right, each applying to everything
before it, so ``when(A).Or(B).And(C)`` is ``(A or B) and C``. Drivers receive a
:class:`Query` whose values are already validated and encoded into the canonical
values of each field's storage type (see :mod:`ommi.models.types`).

Nodes are immutable; building a query never changes an earlier one.

Typing: a model field is annotated with its value's type (``age: int``), so to
a type checker ``User.age >= 18`` is a ``bool``; the functions that take
conditions (``when``, ``.And``, ``.Or``, ``find``) accept ``Expr | bool`` for
that reason (see the "Type checking" guide).
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from ommi.errors import QueryError, RemovedAttributeError, ValidationError

if TYPE_CHECKING:
    from ommi.models.schema import Field, ModelSchema

__all__ = [
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
    "when",
]


class Op(enum.Enum):
    """Comparison operators."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IS_NULL = "is null"
    IS_NOT_NULL = "is not null"
    IN = "in"
    NOT_IN = "not in"
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    ICONTAINS = "icontains"
    """``contains(text, case_sensitive=False)``: both sides folded by :func:`ommi.query.evaluate.fold_case`."""
    ISTARTSWITH = "istartswith"
    """``startswith(text, case_sensitive=False)``."""
    IENDSWITH = "iendswith"
    """``endswith(text, case_sensitive=False)``."""


class ArithOp(enum.Enum):
    """Arithmetic operators of an update expression (:class:`Arithmetic`)."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"


ORDERING_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
FOLDED_TEXT_OPS = frozenset({Op.ICONTAINS, Op.ISTARTSWITH, Op.IENDSWITH})
"""The case-insensitive text matches: a driver runs them only with the ``case_insensitive_text`` capability.

They are operators of their own rather than a flag on the case-sensitive ones,
so a driver written before them fails on an operator it does not know instead
of matching case-sensitively.
"""
TEXT_OPS = frozenset({Op.CONTAINS, Op.STARTSWITH, Op.ENDSWITH}) | FOLDED_TEXT_OPS
CASE_INSENSITIVE = {Op.CONTAINS: Op.ICONTAINS, Op.STARTSWITH: Op.ISTARTSWITH, Op.ENDSWITH: Op.IENDSWITH}
"""Each case-sensitive text match's case-insensitive counterpart."""


def _needs_parentheses(left: Any, right: Any) -> NoReturn:
    raise QueryError(
        f"{left!r} & / | {right!r}: & and | bind tighter than comparisons in Python, so a value met a "
        "field or condition before its comparison ran; put each comparison in parentheses: "
        "(Model.a >= 1) & (Model.b == 2)"
    )


class Expr:
    """A boolean condition; chain with ``.And(...)`` and ``.Or(...)``."""

    __slots__ = ()

    def And(self, *conditions: Expr | bool) -> Expr:  # noqa: N802 - public API name
        """Everything so far AND all ``conditions``."""
        return And((self, *_conditions(conditions)))

    def Or(self, *conditions: Expr | bool) -> Expr:  # noqa: N802 - public API name
        """Everything so far OR (all ``conditions`` ANDed)."""
        return Or((self, _all_of(_conditions(conditions))))

    def __and__(self, other: Expr) -> Expr:
        """``a & b``: both hold (SQLAlchemy's and Django's spelling of ``when(a, b)``)."""
        if not isinstance(other, Expr):
            _needs_parentheses(self, other)
        return And((self, other))

    def __or__(self, other: Expr) -> Expr:
        """``a | b``: either holds (``when(a).Or(b)``)."""
        if not isinstance(other, Expr):
            _needs_parentheses(self, other)
        return Or((self, other))

    def __rand__(self, other: Any) -> NoReturn:
        _needs_parentheses(other, self)

    __ror__ = __rand__

    def __invert__(self) -> Expr:
        raise QueryError(
            "~condition: Ommi conditions have no negation; negate the comparison itself "
            "(== / !=, < / >=, .in_() / .not_in())"
        )

    def __bool__(self) -> bool:
        raise QueryError(
            "a query condition has no truth value: combine conditions with &, |, when(), .And() or .Or() "
            "instead of and/or/not; test membership with ommi.field(Model.field).in_([...]) (or Model.field.in_) "
            "instead of `in`; test for None with Model.field == None instead of `is None`"
        )

    def models(self) -> Iterable[ModelSchema]:
        """The models whose fields this condition mentions."""
        raise NotImplementedError

    if not TYPE_CHECKING:  # hidden from type checkers, which keep reporting any misspelled attribute

        def __getattr__(self, name: str) -> NoReturn:
            # Reached only when the usual lookup fails: Ommi 0.2's when(...).sort(...) / .limit(...).
            if name in ("sort", "limit"):
                raise RemovedAttributeError(
                    f"a condition has no .{name}() (Ommi 0.2's when(...).{name}(...)): sort and limit the query, "
                    "db.find(Model, condition).sort(ommi.desc(Model.field)).limit(n)",
                    name=name,
                    obj=self,
                )
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self)


@dataclass(frozen=True, slots=True, eq=False)
class Comparison(Expr):
    """``field <op> value``; ``value`` is canonical (a tuple for IN / NOT IN, None for IS NULL)."""

    field: Field
    op: Op
    value: Any = None

    def models(self) -> Iterable[ModelSchema]:
        yield self.field.schema

    def __repr__(self) -> str:
        return f"({self.field!r} {self.op.value} {self.value!r})"


@dataclass(frozen=True, slots=True, eq=False)
class FieldComparison(Expr):
    """``left <op> right`` between two fields of compatible storage types."""

    left: Field
    op: Op
    right: Field

    def models(self) -> Iterable[ModelSchema]:
        yield self.left.schema
        yield self.right.schema

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op.value} {self.right!r})"


@dataclass(frozen=True, slots=True, eq=False)
class JsonComparison(Expr):
    """``field[path...] <op> value``: a comparison of the value at a path inside a JSON field.

    ``path`` holds ``str`` steps (a key of an object) and ``int`` steps (an
    index, >= 0, of an array); a step that meets anything else (a key on an
    array, an index on an object, a missing key, an index past the end) makes
    the path *missing*. ``op`` is ``EQ``, ``NE``, ``LT``, ``LE``, ``GT``, ``GE``
    with a ``str``, ``int``, ``float`` or ``bool`` value (never ``bool`` for an
    ordering), or ``IS_NULL`` / ``IS_NOT_NULL`` (``value`` ``None``).

    Semantics (:func:`ommi.query.evaluate.holds`): type-strict. ``==`` and the
    orderings hold only where the value at the path is of the operand's JSON
    kind (a number for ``int``/``float``, which compare numerically; text,
    by code point; ``true``/``false``, never equal to 1 or 0) and compares so;
    ``!=`` holds wherever ``==`` does not (missing, null and other kinds
    included, as ``!=`` holds for NULL); ``IS_NULL`` holds where the field is
    NULL or the path is missing or JSON ``null``.
    """

    field: Field
    path: tuple[str | int, ...]
    op: Op
    value: Any = None

    def models(self) -> Iterable[ModelSchema]:
        yield self.field.schema

    def __repr__(self) -> str:
        steps = "".join(f"[{step!r}]" for step in self.path)
        return f"({self.field!r}{steps} {self.op.value} {self.value!r})"


@dataclass(frozen=True, slots=True, eq=False)
class JsonHas(Expr):
    """``field[path...].has(value)``: the value at the path is an array with an element equal to ``value``.

    ``path`` may be empty (the field itself is the array); ``value`` is a
    ``str``, ``int``, ``float`` or ``bool``, compared type-strictly as by
    :class:`JsonComparison`'s ``==``. Never holds for NULL, a missing path or
    a value that is not an array (a ``str`` is not a list of characters).
    """

    field: Field
    path: tuple[str | int, ...]
    value: Any

    def models(self) -> Iterable[ModelSchema]:
        yield self.field.schema

    def __repr__(self) -> str:
        steps = "".join(f"[{step!r}]" for step in self.path)
        return f"{self.field!r}{steps}.has({self.value!r})"


@dataclass(frozen=True, slots=True, eq=False)
class And(Expr):
    """All items hold."""

    items: tuple[Expr, ...]

    def models(self) -> Iterable[ModelSchema]:
        for item in self.items:
            yield from item.models()


@dataclass(frozen=True, slots=True, eq=False)
class Or(Expr):
    """At least one item holds."""

    items: tuple[Expr, ...]

    def models(self) -> Iterable[ModelSchema]:
        for item in self.items:
            yield from item.models()


def _conditions(conditions: Iterable[Any]) -> tuple[Expr, ...]:
    result = []
    for condition in conditions:
        if not isinstance(condition, Expr):
            if isinstance(condition, type):  # Ommi 0.2's when(Model, ...)
                raise QueryError(
                    f"{condition.__qualname__} is a class, not a query condition: name the model first in find(), "
                    f"db.find({condition.__qualname__}, condition, ...); when(), .And() and .Or() take conditions "
                    "only (Ommi 0.2's when(Model, ...))"
                )
            raise QueryError(f"{condition!r} is not a query condition; write conditions like Model.field == value")
        result.append(condition)
    return tuple(result)


def _all_of(conditions: tuple[Expr, ...]) -> Expr:
    if not conditions:
        raise QueryError("when(), .And() and .Or() need at least one condition")
    return conditions[0] if len(conditions) == 1 else And(conditions)


def when(*conditions: Expr | bool) -> Expr:
    """AND ``conditions`` together into one condition that ``.And`` / ``.Or`` extend.

    Typed ``Expr | bool`` because to a type checker ``User.age >= 18`` is the
    ``bool`` of ``int.__ge__``; at run time it is an :class:`Expr`, and anything
    else is refused with a :class:`~ommi.errors.QueryError`.
    """
    return _all_of(_conditions(conditions))


@dataclass(frozen=True, slots=True, eq=False)
class SortKey:
    """Sort by ``field``; NULL sorts before every value ascending and after them descending.

    Equal when they sort by the same field object the same way (``Field == Field``
    builds a condition, so fields are compared by identity).
    """

    field: Field
    descending: bool = False

    def __repr__(self) -> str:
        return f"{self.field!r}.{'desc' if self.descending else 'asc'}"

    def __call__(self) -> NoReturn:
        way = "desc" if self.descending else "asc"
        raise QueryError(f"{self.field!r}.{way} is a property, not a method: write {self.field!r}.{way} without ()")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SortKey):
            return NotImplemented
        return self.field is other.field and self.descending == other.descending

    def __hash__(self) -> int:
        return hash((id(self.field), self.descending))


@dataclass(frozen=True, slots=True, eq=False)
class Join:
    """How a related model joins the query's target.

    Each pair ``(target_field, other_field)`` must be equal. Conditions on
    ``model`` hold for a target row when some row of ``model`` joined to it
    (or no row, as in a LEFT JOIN) makes the whole condition true; a target row
    is returned at most once. Equal when the model and every field are the
    same objects.
    """

    model: ModelSchema
    pairs: tuple[tuple[Field, Field], ...]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Join):
            return NotImplemented
        return (
            self.model is other.model
            and len(self.pairs) == len(other.pairs)
            and all(a is c and b is d for (a, b), (c, d) in zip(self.pairs, other.pairs, strict=True))
        )

    def __hash__(self) -> int:
        return hash((id(self.model), tuple((id(a), id(b)) for a, b in self.pairs)))


@dataclass(frozen=True, slots=True)
class RowLock:
    """``find(...).for_update()``: lock the rows the query returns until the transaction ends.

    ``skip_locked``: leave out the rows another transaction holds locked
    (instead of waiting for them); ``nowait``: fail at once with
    :class:`~ommi.errors.TimeoutError` when a row is locked. At most one of them.
    """

    skip_locked: bool = False
    nowait: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """What a driver runs: the target model, filter, joins, order and window.

    ``sort`` always ends with the target's key fields (ascending) whenever
    the query is sorted or windowed, so pages are deterministic on every driver.
    ``lock`` (``for_update()``) is set only on a read inside a transaction, on a
    driver that declares ``row_locks``: core refuses it everywhere else.
    """

    model: ModelSchema
    where: Expr | None = None
    joins: tuple[Join, ...] = ()
    sort: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    lock: RowLock | None = None


def _arithmetic_operand(value: Any, op: ArithOp) -> Any:
    """``value`` as an operand of :class:`Arithmetic`: a field, a nested node, or a number literal.

    Raises:
        ValidationError: a literal that is not a number (``bool``, ``str``, ``None``...).
    """
    if isinstance(value, (Operand, Arithmetic)):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        raise ValidationError(
            f"{op.value}: {value!r} ({type(value).__name__}) is not a number; an update expression combines "
            "numeric fields of the model with int, float or Decimal values"
        )
    return value


class _ArithmeticOperators:
    """``+ - * /`` building :class:`Arithmetic` nodes (fields and nodes both have them)."""

    __slots__ = ()

    def __add__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.ADD, self, _arithmetic_operand(other, ArithOp.ADD))

    def __radd__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.ADD, _arithmetic_operand(other, ArithOp.ADD), self)

    def __sub__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.SUB, self, _arithmetic_operand(other, ArithOp.SUB))

    def __rsub__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.SUB, _arithmetic_operand(other, ArithOp.SUB), self)

    def __mul__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.MUL, self, _arithmetic_operand(other, ArithOp.MUL))

    def __rmul__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.MUL, _arithmetic_operand(other, ArithOp.MUL), self)

    def __truediv__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.DIV, self, _arithmetic_operand(other, ArithOp.DIV))

    def __rtruediv__(self, other: Any) -> Arithmetic:
        return Arithmetic(ArithOp.DIV, _arithmetic_operand(other, ArithOp.DIV), self)


@dataclass(frozen=True, slots=True, eq=False)
class Arithmetic(_ArithmeticOperators):
    """``left <op> right``: a value computed from a row's own fields, for ``update()``.

    ``Account.balance + 1`` builds one; each side is a :class:`Field`, another
    :class:`Arithmetic` or a number. It is a value, not a condition: it has
    no comparisons and no truth value. ``update()`` checks it against the
    field it is assigned to (:mod:`ommi.query.arithmetic`), which also encodes
    its literals into that field's canonical values before a driver sees it.
    """

    op: ArithOp
    left: Any
    right: Any

    def fields(self) -> Iterable[Field]:
        """Every field the expression reads, left to right (repeats included)."""
        for side in (self.left, self.right):
            if isinstance(side, Arithmetic):
                yield from side.fields()
            elif isinstance(side, Operand):
                yield side  # type: ignore[misc]  # an Operand here is always a Field

    def literals(self) -> Iterable[Any]:
        """Every literal of the expression, left to right."""
        for side in (self.left, self.right):
            if isinstance(side, Arithmetic):
                yield from side.literals()
            elif not isinstance(side, Operand):
                yield side

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op.value} {self.right!r})"

    def _not_a_condition(self, *_: Any) -> NoReturn:
        raise QueryError(
            f"{self!r} is a value for update(), not a condition: arithmetic is not supported in find() conditions"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = _not_a_condition
    __hash__ = object.__hash__


def _text_op(op: Op, case_sensitive: bool) -> Op:
    """``op``, or its case-insensitive counterpart when ``case_sensitive`` is False.

    Raises:
        QueryError: ``case_sensitive`` is not a bool (``case_sensitive="no"`` would otherwise be truthy).
    """
    if not isinstance(case_sensitive, bool):
        raise QueryError(f"{op.value}(): case_sensitive must be True or False, not {case_sensitive!r}")
    return op if case_sensitive else CASE_INSENSITIVE[op]


class _ComparisonOperators:
    """``== != < <= > >=`` building conditions through ``_compare`` (fields and JSON paths share them)."""

    __slots__ = ()

    def _compare(self, op: Op, value: Any) -> Expr:
        """``self <op> value``: a value (validated and encoded), ``None`` or another field."""
        raise NotImplementedError

    def __eq__(self, value: Any) -> Expr:  # type: ignore[override]
        return self._compare(Op.EQ, value)

    def __ne__(self, value: Any) -> Expr:  # type: ignore[override]
        return self._compare(Op.NE, value)

    def __lt__(self, value: Any) -> Expr:
        return self._compare(Op.LT, value)

    def __le__(self, value: Any) -> Expr:
        return self._compare(Op.LE, value)

    def __gt__(self, value: Any) -> Expr:
        return self._compare(Op.GT, value)

    def __ge__(self, value: Any) -> Expr:
        return self._compare(Op.GE, value)

    __hash__ = object.__hash__


class Operand(_ArithmeticOperators, _ComparisonOperators):
    """The operators that turn a model field into query conditions (``Field`` builds on it).

    ``+ - * /`` build :class:`Arithmetic` values for ``update()`` instead.

    Like SQLAlchemy's ``ColumnOperators``, each operator is one line naming
    what it asks for; the work is done by the subclass that knows the field's
    storage type (:class:`ommi.models.schema.Field`), so this module needs no
    model class.
    """

    __slots__ = ()

    def _compare_many(self, op: Op, values: Iterable[Any]) -> Expr:
        """``self in values`` / ``self not in values``."""
        raise NotImplementedError

    def _compare_text(self, op: Op, text: Any) -> Expr:
        """A text match (``contains``, ``startswith``, ``endswith``)."""
        raise NotImplementedError

    def _sort_key(self, descending: bool) -> SortKey:
        raise NotImplementedError

    def __and__(self, other: Any) -> NoReturn:
        _needs_parentheses(self, other)

    __rand__ = __and__
    __or__ = __and__
    __ror__ = __and__

    def __neg__(self) -> NoReturn:
        raise QueryError(
            f"-{self!r}: to sort descending write ommi.desc({self!r}) (or {self!r}.desc), "
            f"and ommi.asc({self!r}) for ascending"
        )

    def in_(self, values: Iterable[Any]) -> Expr:
        """The field equals one of ``values`` (an empty collection matches nothing)."""
        return self._compare_many(Op.IN, values)

    def not_in(self, values: Iterable[Any]) -> Expr:
        """The field differs from every one of ``values``; NULL differs too, and an empty collection matches all."""
        return self._compare_many(Op.NOT_IN, values)

    def contains(self, text: str, *, case_sensitive: bool = True) -> Expr:
        """The text field contains ``text`` (no wildcards).

        With ``case_sensitive=False`` both sides are compared after Ommi's case
        folding (:func:`ommi.query.evaluate.fold_case`); the driver needs the
        ``case_insensitive_text`` capability.
        """
        return self._compare_text(_text_op(Op.CONTAINS, case_sensitive), text)

    def startswith(self, text: str, *, case_sensitive: bool = True) -> Expr:
        """The text field starts with ``text`` (no wildcards); ``case_sensitive`` as in :meth:`contains`."""
        return self._compare_text(_text_op(Op.STARTSWITH, case_sensitive), text)

    def endswith(self, text: str, *, case_sensitive: bool = True) -> Expr:
        """The text field ends with ``text`` (no wildcards); ``case_sensitive`` as in :meth:`contains`."""
        return self._compare_text(_text_op(Op.ENDSWITH, case_sensitive), text)

    @property
    def asc(self) -> SortKey:
        """Sort ascending by this field."""
        return self._sort_key(False)

    @property
    def desc(self) -> SortKey:
        """Sort descending by this field."""
        return self._sort_key(True)
