"""Narrow columns: what an existing table's column holds when it is narrower than the one Ommi would create.

``use_models()`` accepts a stored column whose type can hold the field's
values only in part (``integer`` for an ``int`` field, ``varchar(40)`` for a
``str``, ``numeric(10,2)`` for a ``Decimal``). The driver then records a
:class:`ColumnLimit` per such field on its compiler
(:meth:`ommi.sql.SQLCompiler.set_limits`), and :class:`ommi.sql.SQLOperations`
checks the values against it before any statement is sent, so a value that
does not fit raises :class:`~ommi.errors.ValidationError` and nothing is
stored. A model whose columns are exactly Ommi's own records nothing and
pays nothing: the check is one dictionary look-up per operation.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ommi.errors import ValidationError
from ommi.models.schema import Field, ModelSchema

__all__ = ["MAX_NUMERIC_PRECISION", "ColumnLimit", "Limits", "check_rows", "check_values", "numeric_limit"]


@dataclass(frozen=True, slots=True)
class ColumnLimit:
    """The values one stored column can hold, beyond what its field's type allows.

    Attributes:
        column_type: the column's type as the database spells it (named in errors).
        min_int: the smallest integer it holds (``int`` fields), if limited.
        max_int: the largest integer it holds, if limited.
        max_chars: the most characters a string may have (``varchar(n)``/``char(n)``), if limited.
        precision: of ``numeric(p,s)``: total digits ``p`` (``Decimal`` fields), if limited.
        scale: of ``numeric(p,s)``: digits after the point ``s``.
    """

    column_type: str
    min_int: int | None = None
    max_int: int | None = None
    max_chars: int | None = None
    precision: int | None = None
    scale: int = 0
    _bound: decimal.Decimal | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.precision is not None:
            # numeric(p,s) rounds to s digits after the point, then holds only
            # p - s digits before it: a value overflows when rounding it (half
            # away from zero) reaches 10 ** (p - s). Exact arithmetic: the
            # context is wide enough for every digit of the bound.
            with decimal.localcontext() as context:
                context.prec = abs(self.precision) + abs(self.scale) + 10
                bound = decimal.Decimal(10) ** (self.precision - self.scale) - decimal.Decimal(5).scaleb(
                    -self.scale - 1
                )
            object.__setattr__(self, "_bound", bound)

    def describe(self) -> str:
        """The limit in words (``at most 40 characters``), for ``ommi inspect``'s comments."""
        if self.max_chars is not None:
            return f"at most {self.max_chars} characters"
        if self.min_int is not None or self.max_int is not None:
            return f"{self.min_int} to {self.max_int}"
        if self.precision is not None:
            return f"at most {self.precision - self.scale} digits before the point, rounded to {self.scale} after"
        return "no limit"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (canonical, not ``None``) does not fit the column, or ``None`` when it does."""
        if self.max_chars is not None:
            if isinstance(value, str) and len(value) > self.max_chars:
                return f"it has {len(value)} characters, more than the {self.max_chars} the column holds"
            return None
        if self.max_int is not None or self.min_int is not None:
            if isinstance(value, int):
                if self.max_int is not None and value > self.max_int:
                    return f"it is greater than {self.max_int}, the largest value the column holds"
                if self.min_int is not None and value < self.min_int:
                    return f"it is less than {self.min_int}, the smallest value the column holds"
            return None
        if self._bound is not None and isinstance(value, decimal.Decimal) and abs(value) >= self._bound:
            return (
                f"rounded to {self.scale} digits after the point it has more than "
                f"{self.precision - self.scale if self.precision is not None else 0} digits before it"
            )
        return None


Limits = tuple[tuple[Field, ColumnLimit], ...]
"""The limited fields of one model with their limits (only those: a model without any records nothing)."""


MAX_NUMERIC_PRECISION = 1000
"""The largest ``numeric(p,s)`` precision taken as a limit (PostgreSQL's own maximum).

A declared type is free text on SQLite: a larger ``p`` (or ``s``) is taken as
no limit rather than computed with, so a hostile schema cannot make Ommi
build a number of a billion digits.
"""


def numeric_limit(column_type: str, precision: int | None, scale: int | None) -> ColumnLimit | None:
    """The limit of ``numeric(precision, scale)``; ``None`` for an unconstrained (or absurdly wide) ``numeric``."""
    if precision is None or precision > MAX_NUMERIC_PRECISION or abs(scale or 0) > MAX_NUMERIC_PRECISION:
        return None
    return ColumnLimit(column_type, precision=precision, scale=scale or 0)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...{text[-12:]} ({len(text)} characters shown as repr)"


def _refuse(schema: ModelSchema, f: Field, limit: ColumnLimit, value: Any, problem: str) -> ValidationError:
    return ValidationError(
        f"{schema.cls.__qualname__}.{f.name}: {_shown(value)} does not fit the stored column {f.column!r} "
        f"({limit.column_type}): {problem}; nothing was written"
    )


def check_rows(schema: ModelSchema, rows: Sequence[Sequence[Any]], limits: Limits) -> None:
    """Refuse the first value of ``rows`` (canonical, in field order) that a narrow column cannot hold.

    Raises:
        ValidationError: naming the model, field, value and column type.
    """
    for f, limit in limits:
        index = f.index
        for row in rows:
            value = row[index]
            if value is not None:
                problem = limit.problem(value)
                if problem is not None:
                    raise _refuse(schema, f, limit, value, problem)


def check_values(schema: ModelSchema, values: Mapping[Field, Any], limits: Limits) -> None:
    """Refuse a value of an update's ``values`` that a narrow column cannot hold.

    Raises:
        ValidationError: naming the model, field, value and column type.
    """
    for f, limit in limits:
        if f in values:
            value = values[f]
            if value is not None:
                problem = limit.problem(value)
                if problem is not None:
                    raise _refuse(schema, f, limit, value, problem)
