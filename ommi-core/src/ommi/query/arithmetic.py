"""Update expressions: what ``update(balance=Account.balance + 1)`` may say, and what it means.

``Account.balance + 1`` builds an :class:`~ommi.expressions.Arithmetic` node
(``+ - *``, and ``/`` for float fields); ``update(a=Account.b)`` copies
another field. :func:`check_update_value` checks such a value against the
field it is assigned to before anything is sent, and returns what the driver
receives: the same node with its literals encoded into the target's canonical
values. :func:`compute` is the meaning, in Python (the reference driver runs
it; every driver must store the same values).

The rules (every driver follows them; the guide "Queries" says them to users):

* The target is a plain ``int``, ``float`` or ``Decimal`` field of the query's
  model, not (part of) its key nor of a unique constraint (databases check
  uniqueness row by row in an order of their own: ``position + 1`` over
  positions 1 and 2 fails on PostgreSQL and SQLite, and would not elsewhere).
  Every field of the expression is of the same model and has the target's
  storage type (no widening, ``int`` fields stay out of a ``float``
  expression); literals are ``int`` or the target's own
  type (a ``float`` literal in a ``Decimal`` expression is refused, as ``bool``
  is everywhere). Each literal is converted to the target's type first
  (``2`` is ``2.0`` in a float expression).
* ``/`` divides by a nonzero literal only (a field could be zero in some row),
  and only into a ``float`` field: an ``int`` field would need a rounding
  rule, and engines round a ``Decimal`` quotient to different digit counts
  (multiply by the exact reciprocal instead, ``* Decimal("0.25")``).
* NULL as in SQL: a NULL operand gives NULL. An expression reading a nullable
  field is refused for a target that is not nullable.
* ``int``: each step is exact and must stay within the signed 64-bit range;
  ``float``: IEEE 754 double arithmetic, each result must be finite, and a
  product or quotient of nonzero values must not underflow to zero (as
  PostgreSQL refuses it; a sum may be zero, and subnormal results are kept);
  ``Decimal``: exact (no rounding at any precision). A row whose result
  breaks a rule fails the whole update with :class:`~ommi.errors.ValidationError`
  and no row changes.
* A field copy needs the same storage and Python type (any type, not only
  numbers); a nullable source needs a nullable target; its target is not a key
  or unique field either.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from typing import Any

from ommi.errors import QueryError, ValidationError
from ommi.expressions import Arithmetic, ArithOp
from ommi.models.schema import Field
from ommi.models.types import INT64_MAX, INT64_MIN, StorageType, check_canonical

__all__ = [
    "MAX_DEPTH",
    "MAX_OPERATIONS",
    "NUMERIC_TYPES",
    "check_update_value",
    "compute",
    "is_numeric",
    "out_of_range",
]

NUMERIC_TYPES: dict[StorageType, type] = {
    StorageType.INTEGER: int,
    StorageType.FLOAT: float,
    StorageType.DECIMAL: decimal.Decimal,
}
"""The storage types update expressions compute in, with the Python type a plain field of each has."""

_SCALING = frozenset({ArithOp.MUL, ArithOp.DIV})
"""The float operations whose result underflows to zero from nonzero operands (PostgreSQL refuses that)."""

_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.Inexact, decimal.Rounded],
)
"""Exact ``Decimal`` addition, subtraction and multiplication (never a rounded digit)."""


def is_numeric(field: Field) -> bool:
    """Whether ``field`` is a plain ``int``, ``float`` or ``Decimal`` field (no codec: not an ``IntEnum``)."""
    return NUMERIC_TYPES.get(field.storage) is field.python_type


def _model(field: Field) -> str:
    return field.schema.cls.__name__


def _refuse_key(target: Field, what: str) -> None:
    if target.key:
        raise ValidationError(
            f"update(): {target!r} is {'part of ' if len(target.schema.key) > 1 else ''}the key of "
            f"{_model(target)}; {what} cannot set a key (set the new key value itself)"
        )
    if any(c.unique and any(f is target for f in c.fields) for c in target.schema.constraints):
        raise ValidationError(
            f"update(): {target!r} is in a unique constraint of {_model(target)}; {what} cannot set it: "
            "databases check uniqueness row by row, in an order of their own, so the same update (position + 1) "
            "could succeed on one and fail on another (set the new values themselves)"
        )


def _check_source(target: Field, source: Field, what: str) -> None:
    if source.schema is not target.schema:
        raise QueryError(
            f"update(): {target!r} = {what} reads {source!r}, a field of another model; an update expression "
            f"reads the matched {_model(target)} row's own fields only"
        )
    if source.nullable and not target.nullable:
        raise ValidationError(
            f"update(): {target!r} = {what}: {source!r} is optional, and a NULL in some row would make "
            f"{target!r}, which is not optional, NULL; make {target!r} optional, or {source!r} required"
        )


def check_update_value(target: Field, value: Any) -> Any:
    """``value`` checked for ``target`` and made canonical: a literal, a field to copy, or an expression.

    Raises:
        ValidationError: the value does not fit (a wrong type, an expression
            on a key or non-numeric field, division of an int field...).
        QueryError: the expression reads another model's field, or divides by a field.
    """
    if isinstance(value, Field):
        return _check_copy(target, value)
    if isinstance(value, Arithmetic):
        return _check_expression(target, value)
    return target.encode(value)


def _check_copy(target: Field, source: Field) -> Field:
    _refuse_key(target, "a field copy")
    _check_source(target, source, repr(source))
    if source.storage is not target.storage or source.python_type is not target.python_type:
        raise ValidationError(
            f"update(): {target!r} = {source!r}: a field copy needs the same type, and {source!r} is "
            f"{source.python_type.__name__} ({source.storage.value}) while {target!r} is "
            f"{target.python_type.__name__} ({target.storage.value})"
        )
    return source


MAX_DEPTH = 32
"""The deepest update expression accepted (``((f + 1) * 2 - 3)`` is 3 deep): a bound on the SQL it becomes."""

MAX_OPERATIONS = 256
"""The most operations one update expression may hold."""


def _check_size(target: Field, expression: Arithmetic) -> None:
    """Refuse an expression deeper than :data:`MAX_DEPTH` or larger than :data:`MAX_OPERATIONS` (never recursing)."""
    operations, pending = 0, [(expression, 1)]
    while pending:
        node, depth = pending.pop()
        operations += 1
        if depth > MAX_DEPTH or operations > MAX_OPERATIONS:
            raise QueryError(
                f"update(): the expression for {target!r} is too large (at most {MAX_DEPTH} operations deep and "
                f"{MAX_OPERATIONS} in all); compute such a value in Python and set it"
            )
        pending.extend((side, depth + 1) for side in (node.left, node.right) if isinstance(side, Arithmetic))


def _check_expression(target: Field, expression: Arithmetic) -> Arithmetic:
    _check_size(target, expression)
    _refuse_key(target, "an update expression")
    if not is_numeric(target):
        raise ValidationError(
            f"update(): {target!r} = {expression!r}: arithmetic needs an int, float or Decimal field, and "
            f"{target!r} is {target.python_type.__name__}"
        )
    storage = target.storage
    shown = repr(expression)

    def literal(value: Any) -> Any:
        try:
            return check_canonical(storage, value)
        except ValidationError as exc:
            kind = NUMERIC_TYPES[storage].__name__
            raise ValidationError(
                f"update(): {target!r} = {shown}: the value {exc}; a {kind} field computes with "
                f"{'int values only' if storage is StorageType.INTEGER else f'int and {kind} values'}"
            ) from None

    def visit(node: Any) -> Any:
        if isinstance(node, Arithmetic):
            if node.op is ArithOp.DIV:
                _check_division(target, shown, node)
            return Arithmetic(node.op, visit(node.left), visit(node.right))
        if isinstance(node, Field):
            _check_source(target, node, shown)
            if node.storage is not storage or not is_numeric(node):
                raise ValidationError(
                    f"update(): {target!r} = {shown}: {node!r} is {node.python_type.__name__}; every field of "
                    f"the expression must be {target.python_type.__name__}, as {target!r} is (no conversion)"
                )
            return node
        return literal(node)

    checked: Arithmetic = visit(expression)
    return checked


def _check_division(target: Field, shown: str, node: Arithmetic) -> None:
    if target.storage is StorageType.INTEGER:
        raise ValidationError(
            f"update(): {target!r} = {shown}: / is true division, which an int field cannot hold; "
            "store the value in a float field"
        )
    if target.storage is StorageType.DECIMAL:
        raise ValidationError(
            f"update(): {target!r} = {shown}: Decimal division rounds, and databases round it to different "
            'numbers of digits; multiply by the exact reciprocal instead (* Decimal("0.25"))'
        )
    if isinstance(node.right, (Field, Arithmetic)):
        raise QueryError(
            f"update(): {target!r} = {shown}: division by {node.right!r}, which could be zero in some row; "
            "divide by a nonzero value only"
        )
    if isinstance(node.right, (int, float, decimal.Decimal)) and node.right == 0:
        raise ValidationError(f"update(): {target!r} = {shown}: division by zero")


def out_of_range(target: Field, expression: Arithmetic, result: Any, *, underflow: bool = False) -> ValidationError:
    """The error for a matched row whose result breaks the target's range (no row was changed)."""
    if underflow:
        why = "underflows to zero (a product or quotient of nonzero floats too small for a double)"
    elif target.storage is StorageType.FLOAT:
        why = "is not a finite float (an overflow to infinity)"
    elif target.storage is StorageType.INTEGER:
        why = "is outside the signed 64-bit range"
    else:
        why = "cannot be stored"
    shown = "" if result is None else f" {result!r}"
    return ValidationError(
        f"update(): {target!r} = {expression!r}: the result{shown} for a matched row {why}; nothing was written"
    )


def compute(target: Field, expression: Arithmetic, value_of: Callable[[Field], Any]) -> Any:
    """The value ``expression`` gives ``target`` in one row; ``value_of`` reads a field's canonical value there.

    Raises:
        ValidationError: a step leaves the target's range (an int beyond 64
            bits, a float that is not finite); made by :func:`out_of_range`.
    """
    storage = target.storage

    def step(op: ArithOp, left: Any, right: Any) -> Any:
        if op is ArithOp.ADD:
            return left + right
        if op is ArithOp.SUB:
            return left - right
        if op is ArithOp.MUL:
            return left * right
        return left / right

    def visit(node: Any) -> Any:
        if isinstance(node, Field):
            return value_of(node)
        if not isinstance(node, Arithmetic):
            return node
        left, right = visit(node.left), visit(node.right)
        if left is None or right is None:
            return None
        if storage is StorageType.DECIMAL:
            try:
                with decimal.localcontext(_EXACT):
                    return step(node.op, left, right)
            except decimal.DecimalException:
                raise out_of_range(target, expression, None) from None
        result = step(node.op, left, right)
        if storage is StorageType.INTEGER and not INT64_MIN <= result <= INT64_MAX:
            raise out_of_range(target, expression, result)
        if storage is StorageType.FLOAT and not math.isfinite(result):
            raise out_of_range(target, expression, result)
        if storage is StorageType.FLOAT and result == 0 and node.op in _SCALING and left != 0 and right != 0:
            raise out_of_range(target, expression, result, underflow=True)
        return result

    return visit(expression)
