"""How Ommi's storage types and query operators are spelled in SQLite.

Values are stored so that SQLite's own comparisons and ``ORDER BY`` agree with
Ommi's semantics (those of the reference driver):

=============  =================  ==============================================
StorageType    column type        stored as
=============  =================  ==============================================
INTEGER        ``INTEGER``        integer (a generated key is the rowid)
FLOAT          ``REAL``           8-byte float
DECIMAL        ``DECIMAL_TEXT``   ``str(value)``, digit for digit (TEXT affinity)
BOOLEAN        ``BOOLEAN``        ``0`` / ``1``
TEXT           ``TEXT``           UTF-8 text; compares by code point
BYTES          ``BLOB``           blob
UUID           ``UUID_TEXT``      ``"xxxxxxxx-xxxx-..."`` (lower-case, sorts as the UUID's int)
DATE           ``DATE_TEXT``      ``"YYYY-MM-DD"``
DATETIME       ``DATETIME_TEXT``  ``"YYYY-MM-DD HH:MM:SS.ffffff"`` (always 26 characters)
DATETIME_TZ    ``DATETIME_TZ_TEXT``  the same in UTC, with a ``+00:00`` suffix
JSON           ``JSON_TEXT``      compact JSON text (``json.dumps``), read with JSON1
=============  =================  ==============================================

Every text form is fixed-width where it matters, so text order is value order.
The column type names all carry TEXT affinity where the value is text (SQLite
derives affinity from the name), and they differ per storage type so that
``use_models`` can tell a ``Decimal`` column from a ``str`` column.

``Decimal`` is stored exactly as text. Comparisons and sorting on it go through
the ``ommi_decimal`` collation, which every connection of the driver registers:
it compares the numbers exactly (``Decimal("1.0") == Decimal("1.00")``,
``Decimal("0.1000000000000000001") > Decimal("0.1")``), where SQLite's numeric
affinity would round to a double. ``Decimal`` key and reference columns are
declared with the collation too (see
:class:`ommi_sqlite._operations.SQLiteCompiler`), so a primary key is unique by
value; other columns stay plain ``TEXT`` and only Ommi's queries name it.

JSON values are queried with SQLite's JSON1 functions: ``json_type`` gives the
kind at a path (``NULL`` when the path is missing, ``'null'`` for JSON null),
so a comparison is type-strict by testing it before ``json_extract``'s value,
and ``has`` reads the array with ``json_each``. The path travels as one
parameter (``$."key"[0]``): the statement text depends on the operator and the
operand's kind only.

SQLite's ``LIKE`` ignores ASCII case, so ``contains`` / ``startswith`` /
``endswith`` use ``GLOB`` with the user's text escaped (``*``, ``?`` and ``[``
become one-character classes) and bound as a parameter.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ommi.errors import ModelDefinitionError, ValidationError
from ommi.expressions import FOLDED_TEXT_OPS, ArithOp, Op, RowLock
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.query.aggregate import exact_decimal_sum
from ommi.query.evaluate import fold_case
from ommi.sql import Dialect
from ommi.sql.dialect import ArithmeticStep, json_kind

__all__ = [
    "DECIMAL_COLLATION",
    "DECIMAL_SUM",
    "FOLD_FUNCTION",
    "DecimalSum",
    "SQLiteDialect",
    "compare_decimals",
    "fold_text",
]

DECIMAL_COLLATION = "ommi_decimal"

FOLD_FUNCTION = "ommi_fold"
"""The SQL function (registered on each connection) folding text as :func:`ommi.query.evaluate.fold_case`."""


def fold_text(value: str | None) -> str | None:
    """:data:`FOLD_FUNCTION`'s implementation: ``fold_case`` of text, anything else (NULL) unchanged."""
    return fold_case(value) if isinstance(value, str) else value


"""Name of the collation that orders ``Decimal`` text exactly."""

DECIMAL_SUM = "ommi_decimal_sum"
"""Name of the aggregate function that sums ``Decimal`` text exactly (:class:`DecimalSum`)."""

_SUM_TOO_LONG = "ommi:sum-too-long"
"""What :class:`DecimalSum` gives for a sum it cannot hold exactly (an aggregate must not raise inside SQLite)."""

_GLOB_SPECIAL = frozenset("*?[")
_INT64_MAX = 2**63 - 1


def compare_decimals(left: str, right: str) -> int:
    """The ``ommi_decimal`` collation: compare two decimal texts as exact numbers.

    Text that is not a number (written by another tool) falls back to plain
    text order, after every number, so the collation is total and never raises
    inside SQLite.
    """
    try:
        a, b = decimal.Decimal(left), decimal.Decimal(right)
    except decimal.InvalidOperation:
        return (left > right) - (left < right)
    if a.is_nan() or b.is_nan():
        return (left > right) - (left < right)
    return (a > b) - (a < b)


class DecimalSum:
    """The ``ommi_decimal_sum`` aggregate: the exact sum of ``Decimal`` text, as text (NULL over no value).

    SQLite's own ``SUM`` reads the text as floats (0.1 + 0.2 would not be
    0.3). Registered on every connection of the driver, with the collation.
    A sum needing more digits than :func:`ommi.query.aggregate.exact_decimal_sum`
    allows comes back as a marker that :meth:`SQLiteDialect.sum_value` turns
    into a ``ValidationError``: an exception raised inside SQLite would reach
    the application as a generic ``OperationalError``.
    """

    def __init__(self) -> None:
        self.values: list[decimal.Decimal] = []

    def step(self, value: Any) -> None:
        if value is not None:
            self.values.append(_decimal_value(value))

    def finalize(self) -> str | None:
        try:
            total = exact_decimal_sum(self.values)
        except ValidationError:
            return _SUM_TOO_LONG
        except Exception:  # noqa: BLE001 - text another tool wrote that is no number: never raise inside SQLite
            return _SUM_TOO_LONG
        return None if total is None else str(total)


def _glob_escape(text: str) -> str:
    # Inside GLOB a character class [x] matches exactly x, even for * ? and [.
    return "".join(f"[{ch}]" if ch in _GLOB_SPECIAL else ch for ch in text)


def _datetime_param(value: _dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


def _datetime_tz_param(value: _dt.datetime) -> str:
    # Canonical aware values are already UTC; astimezone keeps that promise
    # even for a value built by hand, so the text always sorts as the instant.
    return value.astimezone(_dt.UTC).isoformat(sep=" ", timespec="microseconds")


def _datetime_value(value: Any) -> _dt.datetime:
    return value if isinstance(value, _dt.datetime) else _dt.datetime.fromisoformat(value)


def _datetime_tz_value(value: Any) -> _dt.datetime:
    parsed = _datetime_value(value)
    if parsed.tzinfo is None:
        # Written naive by another tool: the column holds UTC by definition.
        return parsed.replace(tzinfo=_dt.UTC)
    return parsed.astimezone(_dt.UTC)


def _date_value(value: Any) -> _dt.date:
    return value if isinstance(value, _dt.date) else _dt.date.fromisoformat(value)


def _uuid_value(value: Any) -> uuid.UUID:
    return uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(value)


def _decimal_value(value: Any) -> decimal.Decimal:
    # A REAL written by another tool goes through str so 0.1 reads as 0.1.
    return decimal.Decimal(value if isinstance(value, (str, int)) else str(value))


def _json_param(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def json_path(path: tuple[str | int, ...]) -> str:
    """A JSON1 path: ``$``, then ``."key"`` per key and ``[n]`` per index (core refuses ``"`` in keys)."""
    return "$" + "".join(f'."{step}"' if isinstance(step, str) else f"[{step}]" for step in path)


_JSON_TYPES = {"number": "IN ('integer', 'real')", "text": "= 'text'"}
"""``json_type`` test of each kind of operand (a bool is tested by ``json_type`` alone)."""

_SQL_OPS = {Op.EQ: "=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}

_TO_PARAM: dict[StorageType, Callable[[Any], Any]] = {
    StorageType.DECIMAL: str,
    StorageType.UUID: str,
    StorageType.DATE: _dt.date.isoformat,
    StorageType.DATETIME: _datetime_param,
    StorageType.DATETIME_TZ: _datetime_tz_param,
    StorageType.JSON: _json_param,
}

_FROM_DB: dict[StorageType, Callable[[Any], Any]] = {
    StorageType.DECIMAL: _decimal_value,
    StorageType.BOOLEAN: bool,
    StorageType.UUID: _uuid_value,
    StorageType.DATE: _date_value,
    StorageType.DATETIME: _datetime_value,
    StorageType.DATETIME_TZ: _datetime_tz_value,
    StorageType.JSON: _json_value,
}


def refuse_reserved_name(schema: ModelSchema) -> None:
    """Refuse a model whose table name SQLite keeps for itself (``sqlite_`` in any case).

    Such a name would read or write SQLite's own tables (``sqlite_master``,
    ``sqlite_sequence``...) or fail with SQLite's "reserved for internal use".

    Raises:
        ModelDefinitionError: the model's stored name starts with ``sqlite_``.
    """
    if schema.name.lower().startswith("sqlite_"):
        raise ModelDefinitionError(
            f"model {schema.cls.__module__}.{schema.cls.__qualname__} would be stored in table {schema.name!r}, "
            "but SQLite reserves every table name starting with 'sqlite_' for itself; "
            "name the model otherwise with @ommi_model(name=...)"
        )


class SQLiteDialect(Dialect):
    """SQLite's spelling of Ommi's queries and types (SQLite 3.35 or newer)."""

    name: ClassVar[str] = "sqlite"
    placeholder: ClassVar[str] = "?"
    column_types: ClassVar[dict[StorageType, str]] = {
        StorageType.INTEGER: "INTEGER",
        StorageType.FLOAT: "REAL",
        StorageType.DECIMAL: "DECIMAL_TEXT",
        StorageType.BOOLEAN: "BOOLEAN",
        StorageType.TEXT: "TEXT",
        StorageType.BYTES: "BLOB",
        StorageType.UUID: "UUID_TEXT",
        StorageType.DATE: "DATE_TEXT",
        StorageType.DATETIME: "DATETIME_TEXT",
        StorageType.DATETIME_TZ: "DATETIME_TZ_TEXT",
        StorageType.JSON: "JSON_TEXT",
    }
    # SQLite already sorts NULL first ascending and last descending, which is
    # Ommi's rule; leaving NULLS FIRST/LAST out keeps indexes usable for ORDER BY.
    supports_nulls_order: ClassVar[bool] = False
    # The default BINARY collation compares UTF-8 bytes, which is code-point order.
    text_sort_collation: ClassVar[str | None] = None

    auto_key_type: ClassVar[str] = "INTEGER"
    """Declared type of a generated key (must be exactly INTEGER to alias the rowid)."""

    # A NULL rowid alias is generated: rows with and without a key share statements.
    null_generates_key: ClassVar[bool] = True

    def sum_columns(self, column: str, storage: StorageType) -> list[str]:
        """Exact sums: an integer column in two halves, ``Decimal`` text through ``ommi_decimal_sum``.

        SQLite's ``SUM`` of integers fails on an intermediate overflow ("integer
        overflow"), even when the total fits: the high 32 bits (``>>`` keeps the
        sign) and the low 32 bits are summed apart, which cannot overflow below
        2**31 rows, and :meth:`sum_value` adds them exactly.
        """
        if storage is StorageType.INTEGER:
            return [f"SUM({column} >> 32)", f"SUM({column} & 4294967295)"]
        if storage is StorageType.DECIMAL:
            return [f"{DECIMAL_SUM}({column})"]
        return super().sum_columns(column, storage)

    def sum_value(self, storage: StorageType, values: Sequence[Any]) -> Any:
        if storage is StorageType.INTEGER:
            high, low = values
            return None if high is None else (int(high) << 32) + int(low)
        if storage is StorageType.DECIMAL and values[0] == _SUM_TOO_LONG:
            raise ValidationError("a Decimal sum is too long to be exact (or a stored value is not a number)")
        return super().sum_value(storage, values)

    def group_operand(self, column: str, storage: StorageType) -> str:
        if storage is StorageType.DECIMAL:
            return f"{column} COLLATE {DECIMAL_COLLATION}"
        return column

    def row_lock(self, lock: RowLock, alias: str, joined: bool) -> str:
        """Nothing: SQLite has no ``FOR UPDATE``, and needs none.

        Every transaction of the driver begins ``BEGIN IMMEDIATE`` and holds the
        database's one write lock until it ends, so no other connection can
        change the rows it read meanwhile: they are locked already (the whole
        database is). ``skip_locked`` therefore never skips a row, and
        ``nowait`` never fails: no row is ever held by another writer.
        """
        return ""

    def table(self, schema: ModelSchema) -> str:
        refuse_reserved_name(schema)
        return super().table(schema)

    def arithmetic_literal(self, storage: StorageType) -> str:
        # The parameter's own type (an int is INTEGER, a float REAL) is the column's: no cast needed.
        return self.placeholder

    def arithmetic_result(
        self,
        column: str,
        storage: StorageType,
        expression: str,
        params: list[Any],
        sources: list[str],
        steps: Sequence[ArithmeticStep],
    ) -> tuple[str, list[Any]]:
        """The expression wrapped in a check that fails the statement where a row's result is out of range.

        SQLite turns an integer overflow into a REAL, a float overflow into an
        infinity, a NaN into NULL and an underflowing product into 0.0, and
        stores them. The check sees each (``typeof(...) = 'real'`` for an int
        column; for a float column beyond the largest double, NULL from
        non-NULL operands, or a ``*``/``/`` step giving 0 from nonzero
        operands) and then calls ``abs()`` on the smallest 64-bit integer,
        which SQLite refuses with "integer overflow"
        (``ommi_sqlite._errors.OVERFLOW_MESSAGE``, reported as
        ``ValidationError``): the statement fails, changing no row. The
        failing call reads the target column, so SQLite cannot evaluate it
        once up front as a constant.
        """
        fail = f"abs(-9223372036854775807 - 1 + 0 * ({column} IS NULL))"
        if storage is StorageType.INTEGER:
            return f"CASE WHEN typeof({expression}) = 'real' THEN {fail} ELSE {expression} END", params * 2
        if storage is not StorageType.FLOAT:
            return expression, params
        present = " AND ".join(f"{source} IS NOT NULL" for source in sources)
        checks = [f"({expression} IS NULL AND {present})", f"abs({expression}) > 1.7976931348623157e308"]
        check_params = params * 2
        for step in steps:
            if step.op in (ArithOp.MUL, ArithOp.DIV):
                (left, left_params), (right, right_params) = step.left, step.right
                checks.append(f"({step.sql} = 0 AND {left} <> 0 AND {right} <> 0)")
                check_params += step.params + left_params + right_params
        return f"CASE WHEN {' OR '.join(checks)} THEN {fail} ELSE {expression} END", check_params + params

    def auto_key_column(self, field: Field) -> str:
        # AUTOINCREMENT: a deleted key is never handed out again, as with the
        # reference driver and PostgreSQL identities.
        return "INTEGER PRIMARY KEY AUTOINCREMENT"

    def insert_sql(
        self,
        schema: ModelSchema,
        fields: Sequence[Field],
        rows: int = 1,
        *,
        returning: Field | None = None,
        skip_taken: bool = False,
    ) -> str:
        """The shared ``INSERT``, returning the key as ``CAST(key AS INTEGER)``.

        SQLite 3.40 hands back ``RETURNING`` of a rowid alias with the affinity
        of the table's first column (``1.0`` when that one is ``REAL``); the
        cast makes the generated key an exact int whatever the table.
        """
        sql = super().insert_sql(schema, fields, rows, returning=returning, skip_taken=skip_taken)
        if returning is None:
            return sql
        key = self.quote(returning.column)
        return sql.removesuffix(f" RETURNING {key}") + f" RETURNING CAST({key} AS INTEGER)"

    def returned(self, field: Field) -> str:
        """The generated key as ``CAST(key AS INTEGER)``, for the reason :meth:`insert_sql` gives."""
        if field is field.schema.auto_field:
            return f"CAST({self.quote(field.column)} AS INTEGER)"
        return super().returned(field)

    def limit_offset(self, limit: int | None, offset: int) -> tuple[str, list[Any]]:
        # SQLite accepts OFFSET only after a LIMIT; -1 means "no limit".
        # Values past SQLite's 64-bit range (which sqlite3 refuses to bind)
        # mean the same as the largest one: no table holds 2**63 rows, so a
        # larger limit is no limit and a larger offset leaves nothing.
        if limit is None and not offset:
            return "", []
        if limit is not None and limit > _INT64_MAX:
            limit = -1
        if not offset:
            return " LIMIT ?", [limit]
        return " LIMIT ? OFFSET ?", [-1 if limit is None else limit, min(offset, _INT64_MAX)]

    def is_distinct_from(self, left: str, right: str) -> str:
        return f"{left} IS NOT {right}"

    def comparison_operand(self, column: str, storage: StorageType, op: Op | None) -> str:
        if storage is StorageType.DECIMAL:
            return f"{column} COLLATE {DECIMAL_COLLATION}"
        return super().comparison_operand(column, storage, op)

    def text_match(self, column: str, op: Op, text: str) -> tuple[str, list[Any]]:
        # SQLite's lower() and LIKE fold ASCII letters only, so a case-insensitive
        # match folds the column with core's own fold_case (registered on every
        # connection as FOLD_FUNCTION) and the text here, then GLOBs
        # case-sensitively as the other matches do.
        folded = op in FOLDED_TEXT_OPS
        escaped = _glob_escape(fold_case(text) if folded else text)
        pattern = {
            Op.CONTAINS: f"*{escaped}*",
            Op.STARTSWITH: f"{escaped}*",
            Op.ENDSWITH: f"*{escaped}",
            Op.ICONTAINS: f"*{escaped}*",
            Op.ISTARTSWITH: f"{escaped}*",
            Op.IENDSWITH: f"*{escaped}",
        }[op]
        if folded:
            return f"{FOLD_FUNCTION}({column}) GLOB ?", [pattern]
        return f"{column} GLOB ?", [pattern]

    def json_comparison(self, column: str, path: tuple[str | int, ...], op: Op, value: Any) -> tuple[str, list[Any]]:
        where = json_path(path)
        if op is Op.IS_NULL:
            return f"COALESCE(json_type({column}, ?), 'null') = 'null'", [where]
        if op is Op.IS_NOT_NULL:
            return f"json_type({column}, ?) <> 'null'", [where]
        if op is Op.NE:
            equal, params = self.json_comparison(column, path, Op.EQ, value)
            return f"NOT COALESCE({equal}, 0)", params
        kind = json_kind(value)
        if kind == "bool":
            return f"json_type({column}, ?) = ?", [where, "true" if value else "false"]
        return (
            f"(json_type({column}, ?) {_JSON_TYPES[kind]} AND json_extract({column}, ?) {_SQL_OPS[op]} ?)",
            [where, where, value],
        )

    def json_has(self, column: str, path: tuple[str | int, ...], value: Any) -> tuple[str, list[Any]]:
        where = json_path(path)
        element = self.quote("ommi_element")
        kind = json_kind(value)
        if kind == "bool":
            test, params = f"{element}.type = ?", ["true" if value else "false"]
        else:
            test, params = f"{element}.type {_JSON_TYPES[kind]} AND {element}.atom = ?", [value]
        return (
            f"(json_type({column}, ?) = 'array' AND EXISTS (SELECT 1 FROM json_each({column}, ?) AS {element} "
            f"WHERE {test}))",
            [where, where, *params],
        )

    def to_param(self, storage: StorageType) -> Callable[[Any], Any] | None:
        return _TO_PARAM.get(storage)

    def from_db(self, storage: StorageType) -> Callable[[Any], Any] | None:
        return _FROM_DB.get(storage)
