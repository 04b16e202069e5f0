"""Update expressions on MongoDB: ``$inc``/``$mul`` where they mean the same, else an update pipeline.

``update(balance=Account.balance + 1)`` must give each matched document the
value :mod:`ommi.query.arithmetic` defines, in the server's own write, so
concurrent increments lose nothing:

=============================================  ================================================
value                                          sent as
=============================================  ================================================
``f + c``, ``c + f``, ``f - c`` (``f`` the     ``{"$inc": {f: c}}`` (``-c`` for ``f - c``)
target itself, required)
``f * c``, ``c * f`` (the same)                ``{"$mul": {f: c}}``
anything else: a copy, ``/``, other fields,    an update pipeline, ``[{"$set": {f: <aggregation
nesting, an optional target                    expression>}}]`` (``$add``, ``$subtract``,
                                               ``$multiply``, ``$divide``; NULL in, NULL out)
=============================================  ================================================

``$inc`` on a NULL fails on MongoDB, hence the pipeline for an optional target.
A server without update pipelines (nx-27017, the test server: see
``ommi_mongodb._testserver_compat``) gets :class:`~ommi.errors.UnsupportedFeature`
for the last row, before any I/O.

Ranges: before the write, one ``find_one`` looks for a matched document whose
result would leave the target's range (an int beyond 64 bits, a float that is
not finite or a product of nonzero floats that underflows to zero): for
``$inc``/``$mul`` a range of the field's value computed here exactly, for a
pipeline ``$expr`` over every step. If there is one the update
is refused (``ValidationError``) and nothing is written. Outside a transaction
the check and the write are two operations: a document changed in between by
another client is not checked again (MongoDB itself then still refuses an
``int64`` overflow of ``$inc``/``$mul`` for that document, after the documents
before it changed). ``Decimal`` arithmetic is Decimal128's: exact while a
result has at most 34 significant digits, rounded beyond (not checked).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ommi.errors import UnsupportedFeature
from ommi.expressions import Arithmetic, ArithOp
from ommi.models.schema import Field
from ommi.models.types import INT64_MAX, INT64_MIN, StorageType

from ommi_mongodb._values import encode_value, field_path

__all__ = ["ExpressionUpdate", "plan_update"]

_AGGREGATION = {ArithOp.ADD: "$add", ArithOp.SUB: "$subtract", ArithOp.MUL: "$multiply", ArithOp.DIV: "$divide"}
_DOUBLE_MAX = 1.7976931348623157e308


@dataclass
class ExpressionUpdate:
    """What one ``update()`` sends: an update document or a pipeline, and the range check to run first."""

    update: dict[str, Any] | list[dict[str, Any]]
    out_of_range: list[dict[str, Any]] = field(default_factory=list)
    """Filters (ANDed with the query's) matching a document whose result would be out of range: any is refused."""


def _literal_side(expression: Arithmetic, target: Field) -> Any | None:
    """The ``c`` of ``target + c``, ``c + target``, ``target - c`` (as ``-c``) or ``target * c``; else None."""
    if expression.op is ArithOp.DIV:
        return None
    left, right = expression.left, expression.right
    c = None
    if left is target and not isinstance(right, (Field, Arithmetic)):
        c = -right if expression.op is ArithOp.SUB else right
    elif right is target and not isinstance(left, (Field, Arithmetic)) and expression.op is not ArithOp.SUB:
        c = left
    if target.storage is StorageType.INTEGER and c is not None and not INT64_MIN <= c <= INT64_MAX:
        return None  # - INT64_MIN: no $inc can carry its negation
    return c


def _ordered(value: float) -> int:
    """A float as an int in the same order (for bisection over every double)."""
    bits: int = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _unordered(number: int) -> float:
    bits = number if number >= 0 else (-number) | -0x8000000000000000
    value: float = struct.unpack("<d", struct.pack("<q", bits))[0]
    return value


def _float_edge(op: ArithOp, c: float, sign: int) -> float:
    """The finite double ``x`` of sign ``sign`` farthest from 0 whose ``x op c`` is still finite."""
    low, high = 0, _ordered(_DOUBLE_MAX) * sign  # in the ordered space, from 0 towards the edge

    def finite(n: int) -> bool:
        x = _unordered(n)
        return math.isfinite(x + c if op is ArithOp.ADD else x * c)

    if finite(high):
        return _unordered(high)
    while abs(high - low) > 1:  # finite(low), not finite(high)
        middle = (low + high) // 2
        if finite(middle):
            low = middle
        else:
            high = middle
    return _unordered(low)


def _underflow_edge(c: float) -> float:
    """The largest double ``t`` with ``t * c == 0``: ``x * c`` underflows for every nonzero ``|x| <= t`` (0: never)."""
    if c == 0 or not math.isfinite(c):
        return 0.0
    low, high = 0, _ordered(_DOUBLE_MAX)  # x * c == 0 at low (0), not at high
    while high - low > 1:
        middle = (low + high) // 2
        if _unordered(middle) * c == 0:
            low = middle
        else:
            high = middle
    return _unordered(low)


def _allowed_range(storage: StorageType, op: ArithOp, c: Any) -> tuple[Any, Any] | None:
    """The values ``x`` of the target for which ``x + c`` / ``x * c`` stays in range; None: every value."""
    if storage is StorageType.INTEGER:
        if op is ArithOp.ADD:
            return max(INT64_MIN, INT64_MIN - c), min(INT64_MAX, INT64_MAX - c)
        if c == 0:
            return None
        # x * c within [MIN, MAX]: x from ceil(low / c) to floor(high / c), the bounds swapped for c < 0.
        low, high = (INT64_MIN, INT64_MAX) if c > 0 else (INT64_MAX, INT64_MIN)
        return max(INT64_MIN, -(-low // c)), min(INT64_MAX, high // c)
    if storage is StorageType.FLOAT:
        return _float_edge(op, float(c), -1), _float_edge(op, float(c), 1)
    return None


def _aggregation(node: Any, storage: StorageType) -> Any:
    if isinstance(node, Arithmetic):
        return {_AGGREGATION[node.op]: [_aggregation(node.left, storage), _aggregation(node.right, storage)]}
    if isinstance(node, Field):
        return "$" + field_path(node)
    return {"$literal": encode_value(storage, node)}


def _step_checks(node: Any, storage: StorageType) -> list[dict[str, Any]]:
    """``$expr`` conditions true where some step of ``node`` leaves the range (each step: the first overflow)."""
    if not isinstance(node, Arithmetic) or storage is StorageType.DECIMAL:
        return []
    low, high = (INT64_MIN, INT64_MAX) if storage is StorageType.INTEGER else (-_DOUBLE_MAX, _DOUBLE_MAX)
    value = _aggregation(node, storage)
    own: list[Any] = [{"$gt": [value, high]}, {"$and": [{"$lt": [value, low]}, {"$ne": [value, None]}]}]
    if storage is StorageType.FLOAT and node.op in (ArithOp.MUL, ArithOp.DIV):
        left, right = _aggregation(node.left, storage), _aggregation(node.right, storage)
        own.append({"$and": [{"$eq": [value, 0]}, {"$ne": [left, 0]}, {"$ne": [right, 0]}]})
    return [*_step_checks(node.left, storage), *_step_checks(node.right, storage), {"$expr": {"$or": own}}]


def plan_update(values: Mapping[Field, Any], pipelines: bool, server: str) -> ExpressionUpdate:
    """The update of ``values`` (plain canonical values, fields to copy, checked expressions).

    Raises:
        UnsupportedFeature: a value needs an update pipeline and the server
            has none (``pipelines`` false), before any I/O.
    """
    sets: dict[str, Any] = {}
    increments: dict[str, Any] = {}
    products: dict[str, Any] = {}
    computed: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    for target, value in values.items():
        path = field_path(target)
        if isinstance(value, Field):
            computed[path] = "$" + field_path(value)
            continue
        if not isinstance(value, Arithmetic):
            sets[path] = encode_value(target.storage, value)
            continue
        c = None if target.nullable else _literal_side(value, target)
        if c is None:
            computed[path] = _aggregation(value, target.storage)
            checks.extend(_step_checks(value, target.storage))
            continue
        op = ArithOp.MUL if value.op is ArithOp.MUL else ArithOp.ADD
        (products if op is ArithOp.MUL else increments)[path] = encode_value(target.storage, c)
        allowed = _allowed_range(target.storage, op, c)
        if allowed is not None:
            checks.append({"$or": [{path: {"$lt": allowed[0]}}, {path: {"$gt": allowed[1]}}]})
        if target.storage is StorageType.FLOAT and op is ArithOp.MUL:
            edge = _underflow_edge(float(c))
            if edge > 0:
                checks.append({"$and": [{path: {"$gte": -edge}}, {path: {"$lte": edge}}, {path: {"$ne": 0}}]})
    if not computed:
        update: dict[str, Any] = {}
        for operator, part in (("$set", sets), ("$inc", increments), ("$mul", products)):
            if part:
                update[operator] = part
        return ExpressionUpdate(update, checks)
    if not pipelines:
        raise UnsupportedFeature(
            f"update(): {', '.join(computed)}: this value needs an update pipeline ([{{'$set': ...}}]), which "
            f"{server} lacks (only field + value, field - value and field * value on a required field go "
            "through $inc/$mul there); nothing was written. MongoDB 4.2 and later runs it"
        )
    stage: dict[str, Any] = {path: {"$literal": v} for path, v in sets.items()}
    for path, c in increments.items():
        stage[path] = {"$add": ["$" + path, {"$literal": c}]}
    for path, c in products.items():
        stage[path] = {"$multiply": ["$" + path, {"$literal": c}]}
    stage.update(computed)
    return ExpressionUpdate([{"$set": stage}], checks)
