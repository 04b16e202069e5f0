"""How PostgreSQL spells SQL: the dialect and the statements only this driver needs.

Everything else comes from the shared compiler in :mod:`ommi.sql`.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ommi.errors import QueryError, SchemaError, ValidationError
from ommi.expressions import Op
from ommi.models.constraints import ModelConstraint
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import INT64_MAX, StorageType
from ommi.sql import Compiled, Dialect, SQLCompiler
from ommi.sql.dialect import json_kind
from psycopg.types.json import Jsonb

__all__ = ["MAX_IDENTIFIER_BYTES", "PostgreSQLCompiler", "PostgreSQLDialect", "numeric_problem"]

_SEQUENCE = "(SELECT pg_get_serial_sequence(%s, %s)::regclass AS seq) AS s"
"""A ``FROM`` item ``s`` whose ``s.seq`` is the identity sequence of a column (parameters: table, column)."""

MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1)."""

NUMERIC_MAX_INTEGER_DIGITS = 131072
NUMERIC_MAX_SCALE = 16383
"""PostgreSQL's ``numeric`` holds up to 131072 digits before the decimal point and 16383 after it."""


def numeric_problem(value: decimal.Decimal) -> str | None:
    """Why PostgreSQL's ``numeric`` cannot hold ``value`` (a finite Decimal), or ``None`` when it can.

    The scale (digits after the point, trailing zeros included) must be at most
    16383, and a non-zero value at most 131072 digits before the point.
    """
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: core refuses NaN and infinities
    if -exponent > NUMERIC_MAX_SCALE:
        return (
            f"it has {-exponent} digits after the decimal point (PostgreSQL's numeric keeps at most "
            f"{NUMERIC_MAX_SCALE})"
        )
    if value and value.adjusted() + 1 > NUMERIC_MAX_INTEGER_DIGITS:
        return (
            f"it has {value.adjusted() + 1} digits before the decimal point (PostgreSQL's numeric keeps at most "
            f"{NUMERIC_MAX_INTEGER_DIGITS})"
        )
    return None


def _checked_numeric(value: decimal.Decimal) -> decimal.Decimal:
    problem = numeric_problem(value)
    if problem is not None:
        shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:20]}...{str(value)[-12:]}"
        raise ValidationError(
            f"the Decimal {shown} cannot be sent to PostgreSQL: {problem}; no row can hold it, so the "
            "query was not run (postgresql driver)"
        )
    return value


def _as_utc(value: _dt.datetime) -> _dt.datetime:
    # psycopg returns timestamptz in the session's TimeZone (a ZoneInfo);
    # canonical aware datetimes are in datetime.UTC whatever the server says.
    return value.astimezone(_dt.UTC)


def _json_number(value: int | float) -> str:
    """A number as JSON text that ``jsonb`` keeps an int or a float.

    ``jsonb`` stores numbers as ``numeric`` and prints them without an
    exponent: ``1e+20`` would come back as the int ``100000000000000000000``.
    A float is written in positional notation with a fractional part
    (``100000000000000000000.0``), which reads back as the same float (its
    shortest ``repr`` digits, exactly).
    """
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(decimal.Decimal(text), "f")
            if "." not in text:
                text += ".0"
        return text
    return str(value)


def json_text(value: Any) -> str:
    """A canonical JSON value as the text PostgreSQL's ``jsonb`` reads back equal and typed (see :func:`_json_number`).

    Recursive: core refuses values nested deeper than ``MAX_JSON_DEPTH``.
    """
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _json_number(value)
    return json.dumps(value, ensure_ascii=False)


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=json_text)


_JSON_OPS = {Op.EQ: "=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}


def identifier_text(name: str) -> str:
    """``name`` as a quoted identifier, ``%`` not doubled: for SQL text built inside a string literal."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """``text`` as an SQL string literal inside a statement psycopg formats (``%`` doubled)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def do_block(body: str) -> str:
    """``DO`` with ``body`` dollar-quoted by a tag that occurs nowhere in it.

    The body holds table and constraint names, which may hold anything,
    ``$ommi$`` included: a fixed tag would let such a name end the body early.
    """
    tag = "$ommi$"
    for n in itertools.count(1):
        if tag not in body:
            break
        tag = f"$ommi{n}$"
    return f"DO {tag} {body} {tag}"


class PostgreSQLDialect(Dialect):
    """PostgreSQL: ``%s`` parameters (bound server-side by psycopg), native types, code-point text order."""

    name: ClassVar[str] = "postgresql"
    placeholder: ClassVar[str] = "%s"
    column_types: ClassVar[dict[StorageType, str]] = {
        StorageType.INTEGER: "BIGINT",
        StorageType.FLOAT: "DOUBLE PRECISION",
        StorageType.DECIMAL: "NUMERIC",
        StorageType.BOOLEAN: "BOOLEAN",
        StorageType.TEXT: "TEXT",
        StorageType.BYTES: "BYTEA",
        StorageType.UUID: "UUID",
        StorageType.DATE: "DATE",
        StorageType.DATETIME: "TIMESTAMP WITHOUT TIME ZONE",
        StorageType.DATETIME_TZ: "TIMESTAMP WITH TIME ZONE",
        StorageType.JSON: "JSONB",
    }
    catalog_types: ClassVar[dict[StorageType, str]] = {
        StorageType.INTEGER: "bigint",
        StorageType.FLOAT: "double precision",
        StorageType.DECIMAL: "numeric",
        StorageType.BOOLEAN: "boolean",
        StorageType.TEXT: "text",
        StorageType.BYTES: "bytea",
        StorageType.UUID: "uuid",
        StorageType.DATE: "date",
        StorageType.DATETIME: "timestamp without time zone",
        StorageType.DATETIME_TZ: "timestamp with time zone",
        StorageType.JSON: "jsonb",
    }
    """Each storage type as ``format_type()`` reports it in the catalog."""

    supports_nulls_order: ClassVar[bool] = True
    # A failed statement aborts the transaction: no savepoint around atomic blocks in one.
    failed_statement_aborts_transaction: ClassVar[bool] = True
    # The "C" collation orders UTF-8 text byte by byte, which is code-point
    # order: the same as Python's str comparison and the reference driver.
    text_sort_collation: ClassVar[str | None] = '"C"'

    fold_collation: ClassVar[str] = '"und-x-icu"'
    """The collation case-insensitive matches lower-case under: ICU's root locale, the same on every server.

    The database's own collation (``LC_CTYPE``) would make ``lower()`` depend on
    how the server was set up. ICU's lower-casing is Unicode's full one, which
    differs from :func:`ommi.query.evaluate.fold_case` for a few characters
    (the queries guide lists them). A server built without ICU lacks the
    collation: the driver then declares ``case_insensitive_text`` absent.
    """

    def fold_text(self, operand: str) -> str:
        # CAST: psycopg may send a str parameter untyped, and an untyped value takes no COLLATE.
        return f"lower(CAST({operand} AS text) COLLATE {self.fold_collation})"

    def __init__(self, namespace: str | None = None, *, required: bool = False) -> None:
        self.namespace = namespace
        """The PostgreSQL schema every statement names its tables in."""
        self.required = required
        """Refuse to name a table without :attr:`namespace` (the driver's compilers); a dialect
        built on its own (``PostgreSQLDialect()``) writes bare table names instead."""

    def quote(self, identifier: str) -> str:
        """Quote an identifier; a ``%`` is doubled because psycopg reads ``%`` as a placeholder."""
        return super().quote(identifier).replace("%", "%%")

    def qualified_name(self, schema: ModelSchema) -> str:
        """``"namespace"."table"`` as a value (a ``regclass`` text), not as SQL: ``%`` is not doubled."""
        if self.namespace is None:
            if self.required:
                raise SchemaError(
                    f"the PostgreSQL driver does not know which schema holds the table of "
                    f"{schema.cls.__qualname__}: open it first (`async with db:`); if it is open, no schema on "
                    "the connections' search_path existed when it opened: set the driver's schema setting or fix "
                    "search_path, then reopen it"
                )
            return super().quote(schema.name)
        return super().quote(self.namespace) + "." + super().quote(schema.name)

    def table(self, schema: ModelSchema) -> str:
        """Tables are always named with their schema: a model called ``pg_class`` must not reach ``pg_catalog``'s.

        The search_path puts ``pg_catalog`` (and temporary tables) before any
        schema, so an unqualified name could resolve to a system catalog.
        """
        return self.qualified_name(schema).replace("%", "%%")

    def limit_offset(self, limit: int | None, offset: int) -> tuple[str, list[Any]]:
        """The shared window clause, after checking it fits PostgreSQL's ``bigint`` (LIMIT and OFFSET are bigint)."""
        for what, value in (("limit", limit), ("offset (limit x page)", offset)):
            if value is not None and not 0 <= value <= INT64_MAX:
                raise QueryError(
                    f"limit(): the {what} {value} is beyond PostgreSQL's bigint range (0 to {INT64_MAX}); "
                    "use a smaller limit or page"
                )
        return super().limit_offset(limit, offset)

    def membership(self, column: str, raw: str, op: Op, count: int, storage: StorageType) -> str:
        """``= ANY(array)`` / ``<> ALL(array)``: the values travel as one array parameter, so any number fits.

        Same NULL semantics as ``IN``/``NOT IN``: a NULL column never matches
        ``in_`` and always matches ``not_in``.
        """
        array = f"{self.placeholder}::{self.column_types[storage]}[]"
        if op is Op.IN:
            return f"{column} = ANY({array})"
        return f"({column} <> ALL({array}) OR {raw} IS NULL)"

    def membership_params(self, values: list[Any], storage: StorageType) -> list[Any]:
        return [values]

    def to_param(self, storage: StorageType) -> Callable[[Any], Any] | None:
        """Decimals are checked against ``numeric``'s range before they are sent (a clear ValidationError).

        JSON values travel as ``jsonb`` in the text of :func:`json_text`.
        """
        if storage is StorageType.DECIMAL:
            return _checked_numeric
        if storage is StorageType.JSON:
            return _jsonb
        return None

    @staticmethod
    def _json_at(column: str, path: tuple[str | int, ...]) -> tuple[str, list[Any]]:
        """The ``jsonb`` at ``path``: a strict SQL/JSON path, one parameter, NULL where the path is missing.

        Not ``->``: PostgreSQL answers ``'5'::jsonb -> 0`` with ``5`` (a scalar
        reads as a one-element array), and ``#>`` reads an index as a key
        ``"0"`` too. In ``strict`` mode a key step on an array, an index on an
        object or a scalar, and an index past the end are errors, which the
        ``silent`` argument turns into no value (NULL).
        """
        if not path:
            return column, []
        steps = "".join(
            f"[{step}]" if isinstance(step, int) else "." + json.dumps(step, ensure_ascii=False) for step in path
        )
        return f"jsonb_path_query_first({column}, %s::jsonpath, '{{}}', true)", ["strict $" + steps]

    def json_comparison(self, column: str, path: tuple[str | int, ...], op: Op, value: Any) -> tuple[str, list[Any]]:
        """Type-strict: ``jsonb_typeof`` first, then ``numeric`` / ``"C"``-collated text / ``jsonb`` equality.

        An int and a float compare as ``numeric``: the float by its shortest
        decimal form, which differs from Python's exact comparison only for
        ints beyond 2**53 next to a float.
        """
        at, params = self._json_at(column, path)
        if op is Op.IS_NULL:
            return f"COALESCE(jsonb_typeof({at}), 'null') = 'null'", params
        if op is Op.IS_NOT_NULL:
            return f"jsonb_typeof({at}) <> 'null'", params
        if op is Op.NE:
            equal, bound = self.json_comparison(column, path, Op.EQ, value)
            return f"NOT COALESCE({equal}, FALSE)", bound
        kind = json_kind(value)
        if kind == "bool":
            return f"{at} = %s::jsonb", [*params, "true" if value else "false"]
        if kind == "number":
            # CASE: AND does not stop PostgreSQL from casting a non-number ("cannot cast jsonb array").
            # The operand as numeric text, exact: a float8 parameter cast to numeric keeps 15 digits only.
            return (
                f"CASE WHEN jsonb_typeof({at}) = 'number' THEN ({at})::numeric {_JSON_OPS[op]} %s::numeric "
                "ELSE FALSE END",
                [*params, *params, _json_number(value)],
            )
        text = self.text_column(f"({at} #>> '{{}}')", op)
        return f"(jsonb_typeof({at}) = 'string' AND {text} {_JSON_OPS[op]} %s)", [*params, *params, value]

    def json_has(self, column: str, path: tuple[str | int, ...], value: Any) -> tuple[str, list[Any]]:
        """``@>`` of a one-element array: top-level elements only, numbers equal by value, type-strict."""
        at, params = self._json_at(column, path)
        return (
            f"(jsonb_typeof({at}) = 'array' AND {at} @> %s::jsonb)",
            [*params, *params, json_text([value])],
        )

    def auto_key_column(self, field: Field) -> str:
        """An identity column: the sequence belongs to the table and is dropped with it."""
        return "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def reserve_key(self, schema: ModelSchema, field: Field, key: int) -> Compiled | None:
        """Move the identity sequence of ``field`` past ``key``, an explicit key about to be written.

        Sent before the write, so from then on no generated key can be
        ``key``, even while the write is not committed yet. Never moves it
        backwards: nothing happens when the sequence is already at or beyond
        ``key``. ``setval`` is not transactional, so a rollback keeps the
        sequence advanced (which only skips numbers).
        """
        sql = (
            f"SELECT setval(s.seq, %s) FROM {_SEQUENCE} "
            "WHERE %s >= 1 AND COALESCE(pg_sequence_last_value(s.seq), 0) < %s"
        )
        return Compiled(sql, [key, self.qualified_name(schema), field.column, key, key])

    def reserve_stored_keys(self, schema: ModelSchema, field: Field) -> Compiled:
        """Move the identity sequence of ``field`` past the highest key stored (and visible), never backwards.

        The identity hands out numbers without looking at the table, so rows
        written with explicit keys by another client (or a restored dump)
        can hold keys it would generate.
        """
        sql = (
            f"SELECT setval(s.seq, m.top) FROM {_SEQUENCE}, "
            f"(SELECT max({self.quote(field.column)}) AS top FROM {self.table(schema)}) AS m "
            "WHERE m.top >= 1 AND COALESCE(pg_sequence_last_value(s.seq), 0) < m.top"
        )
        return Compiled(sql, [self.qualified_name(schema), field.column])

    def insert_sql(
        self,
        schema: ModelSchema,
        fields: Sequence[Field],
        rows: int = 1,
        *,
        returning: Field | None = None,
        skip_taken: bool = False,
    ) -> str:
        """One row: the shared ``VALUES``; several: ``INSERT ... SELECT FROM unnest(arrays)``, one array per column.

        The text of the second is the same for any number of rows, so it is
        prepared once; ``WITH ORDINALITY ... ORDER BY`` makes the identity
        default run in input order, so generated keys increase along the rows.
        """
        if rows == 1:
            return super().insert_sql(schema, fields, returning=returning, skip_taken=skip_taken)
        q = self.quote
        arrays = ", ".join(f"%s::{self.column_types[f.storage]}[]" for f in fields)
        names = ", ".join(q(f"c{i}") for i in range(len(fields)))
        sql = (
            f"INSERT INTO {self.table(schema)} ({', '.join(q(f.column) for f in fields)}) "
            f"SELECT {names} FROM unnest({arrays}) WITH ORDINALITY AS {q('u')} ({names}, {q('n')}) ORDER BY {q('n')}"
        )
        if returning is not None:
            if skip_taken:
                sql += f" ON CONFLICT ({q(returning.column)}) DO NOTHING"
            sql += f" RETURNING {q(returning.column)}"
        return sql

    def insert_params(self, rows: Sequence[Sequence[Any]], columns: Sequence[int] | None) -> list[Any]:
        """Several rows: one list per column (the ``unnest`` arrays)."""
        if len(rows) == 1:
            return super().insert_params(rows, columns)
        if columns is None:
            return [list(column) for column in zip(*rows, strict=True)]
        return [[row[i] for row in rows] for i in columns]

    def insert_sizes(self, count: int, largest: int) -> list[int]:
        """Statements of ``largest`` rows (the ``insert_chunk_size`` setting) and the rest."""
        return [min(largest, count - start) for start in range(0, count, largest)]

    def from_db(self, storage: StorageType) -> Callable[[Any], Any] | None:
        """Aware datetimes come back in UTC; psycopg's other values are canonical already."""
        if storage is StorageType.DATETIME_TZ:
            return _as_utc
        return None


class PostgreSQLCompiler(SQLCompiler):
    """The shared compiler plus the statements only PostgreSQL has."""

    dialect: PostgreSQLDialect

    def __init__(self, dialect: PostgreSQLDialect | None = None) -> None:
        super().__init__(dialect or PostgreSQLDialect())

    def table(self, schema: ModelSchema) -> str:
        return self.dialect.table(schema)

    @staticmethod
    def index_name(schema: ModelSchema, field: Field) -> str:
        """``ix_<table>_<column>``, shortened with a hash when PostgreSQL would truncate it."""
        name = f"ix_{schema.name}_{field.column}"
        if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
            return name
        digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:10]
        head = name.encode()[: MAX_IDENTIFIER_BYTES - 11].decode(errors="ignore")
        return f"{head}_{digest}"

    def indexes(self, schema: ModelSchema) -> list[tuple[str, str]]:
        """``(name, CREATE INDEX statement)`` for each index :meth:`create_indexes` makes, in its order.

        The names let the driver skip indexes that exist already.
        """
        statements = self.create_indexes(schema)
        fields = [f for f in schema.fields if f.reference is not None and not (f.key and len(schema.key) == 1)]
        if len(fields) != len(statements):  # pragma: no cover - the shared compiler changed its rule
            raise AssertionError("create_indexes() no longer makes one index per referencing column")
        return [(self.index_name(schema, f), sql) for f, sql in zip(fields, statements, strict=True)]

    def create_constraint(self, schema: ModelSchema, constraint: ModelConstraint) -> str:
        """A ``UNIQUE`` table constraint (an ``ON CONFLICT`` target, NULLs distinct), or ``CREATE INDEX``."""
        if not constraint.unique:
            return super().create_constraint(schema, constraint)
        # Unless a relation of that name exists: a table adopted by a migration's CreateModel (made by
        # other tools, read by `ommi inspect`) may hold it as a unique index. The step's drift check
        # then makes sure a unique index covers the columns.
        dialect = self.dialect
        table = dialect.qualified_name(schema)
        name = identifier_text(constraint.name)
        index = name if dialect.namespace is None else f"{identifier_text(dialect.namespace)}.{name}"
        columns = ", ".join(identifier_text(column) for column in constraint.columns)
        add = f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({columns})"
        return do_block(
            f"BEGIN IF to_regclass({sql_string(index)}) IS NULL THEN EXECUTE {sql_string(add)}; END IF; END"
        )

    def drop_constraint(self, schema: ModelSchema, constraint: ModelConstraint) -> str:
        """``DROP CONSTRAINT`` for a unique one, ``DROP INDEX`` named in the table's schema for an index."""
        q = self.dialect.quote
        if constraint.unique:
            return f"ALTER TABLE {self.table(schema)} DROP CONSTRAINT {q(constraint.name)}"
        namespace = self.dialect.namespace
        prefix = "" if namespace is None else f"{q(namespace)}."
        return f"DROP INDEX {prefix}{q(constraint.name)}"

    def primary_key_constraint(self, schema: ModelSchema) -> Compiled:
        """The name of the table's primary key constraint (to tell a taken generated key from other violations)."""
        sql = "SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'"
        return Compiled(sql, [self.dialect.qualified_name(schema)])
