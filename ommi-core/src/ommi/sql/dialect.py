"""SQL dialects: everything that differs between SQL databases, as data and small methods.

A SQL driver subclasses :class:`Dialect` and overrides what its database spells
differently. The compiler (:mod:`ommi.sql.compiler`) never looks at values to
build SQL text: values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, ClassVar

from ommi.expressions import FOLDED_TEXT_OPS, ORDERING_OPS, ArithOp, Op, RowLock
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.sql._statement import Compiled

__all__ = ["ArithmeticStep", "Dialect", "json_kind"]


@dataclass(frozen=True, slots=True)
class ArithmeticStep:
    """One operation of an update expression compiled to SQL (for :meth:`Dialect.arithmetic_result`).

    Attributes:
        op: the operator.
        sql: the operation's text, parenthesised (``("balance" * ?)``).
        params: the parameters of ``sql``, in order.
        left: the left operand's text and parameters.
        right: the right operand's text and parameters.
    """

    op: ArithOp
    sql: str
    params: list[Any]
    left: tuple[str, list[Any]]
    right: tuple[str, list[Any]]


def json_kind(value: Any) -> str:
    """The JSON kind of a path operand: ``"null"`` (``None``), ``"bool"``, ``"number"`` or ``"text"``.

    The SQL text of a path condition may depend on it (and on the operator and
    the kinds of the path's steps), never on the value itself.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "text"
    return "number"


class Dialect:
    """The generic (ANSI-leaning) dialect; SQL drivers subclass it."""

    name: ClassVar[str] = "generic"

    placeholder: ClassVar[str] = "?"
    """Parameter marker (``?`` for qmark, ``%s`` for format/pyformat)."""

    column_types: ClassVar[dict[StorageType, str]] = {
        StorageType.INTEGER: "BIGINT",
        StorageType.FLOAT: "DOUBLE PRECISION",
        StorageType.DECIMAL: "NUMERIC",
        StorageType.BOOLEAN: "BOOLEAN",
        StorageType.TEXT: "TEXT",
        StorageType.BYTES: "BLOB",
        StorageType.UUID: "UUID",
        StorageType.DATE: "DATE",
        StorageType.DATETIME: "TIMESTAMP",
        StorageType.DATETIME_TZ: "TIMESTAMP WITH TIME ZONE",
        StorageType.JSON: "JSON",
    }
    """Native column type of each storage type."""

    supports_nulls_order: ClassVar[bool] = True
    """``ORDER BY x ASC NULLS FIRST`` is available."""

    text_sort_collation: ClassVar[str | None] = None
    """Collation giving code-point order for text comparisons and sorting, if the default is not."""

    foreign_keys: ClassVar[bool] = True
    """Write ``FOREIGN KEY`` clauses in ``CREATE TABLE``; ``False`` leaves them out.

    For a database that rejects or ignores them (many analytical engines).
    Ommi never relies on the database to enforce references: relations are
    loaded by queries, so leaving the clauses out changes nothing else.
    """

    null_generates_key: ClassVar[bool] = False
    """Writing ``NULL`` to a generated key makes the database generate it (SQLite's rowid alias).

    ``True``: :meth:`ommi.sql.SQLOperations.insert` writes rows with and
    without a key in the same statements, ``NULL`` where the key is missing.
    ``False`` (an identity column, which refuses ``NULL``): rows without a key
    go into statements of their own that leave the key column out, so that
    its default generates the key.
    """

    failed_statement_aborts_transaction: ClassVar[bool] = False
    """A failed statement aborts the whole transaction (PostgreSQL): only a rollback works afterwards.

    ``False`` (most databases, SQLite): a failed statement undoes only
    itself and the transaction goes on, so an atomic block inside a
    transaction (several statements that succeed or fail together, such as
    an insert of several batches) runs in a savepoint, rolled back when the
    block fails. ``True``: no savepoint, the failure aborts the transaction
    (a savepoint would let it go on without the block's writes).
    """

    def quote(self, identifier: str) -> str:
        """Quote an identifier (table, column, alias) so any name is safe."""
        if "\x00" in identifier:
            raise ValueError(f"identifier {identifier!r} contains a NUL character")
        return '"' + identifier.replace('"', '""') + '"'

    def column_type(self, field: Field) -> str:
        """The native type of a field's column."""
        return self.column_types[field.storage]

    def table(self, schema: ModelSchema) -> str:
        """A model's table as every statement names it: the quoted name (a dialect may qualify it)."""
        return self.quote(schema.name)

    def auto_key_column(self, field: Field) -> str:
        """Column definition (after the quoted name) of a generated int key."""
        return "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def before_create_table(self, schema: ModelSchema) -> list[str]:
        """DDL to run before ``schema``'s ``CREATE TABLE`` (default: none).

        For what the table's definition refers to, e.g. the sequence of a
        generated key on a database without identity columns::

            def before_create_table(self, schema):
                if schema.auto_field is None:
                    return []
                return [f"CREATE SEQUENCE IF NOT EXISTS {self.quote(schema.name + '_seq')}"]

            def auto_key_column(self, field):
                return f"BIGINT DEFAULT nextval('{field.schema.name}_seq') PRIMARY KEY"

        Every statement must be idempotent (``IF NOT EXISTS``): ``apply_schema``
        runs them whenever the table is missing.
        """
        return []

    def after_create_table(self, schema: ModelSchema) -> list[str]:
        """DDL to run after ``schema``'s ``CREATE TABLE`` (default: none); idempotent like the one before."""
        return []

    def after_drop_table(self, schema: ModelSchema) -> list[str]:
        """DDL to run after ``schema``'s ``DROP TABLE`` (default: none), e.g. ``DROP SEQUENCE IF EXISTS``."""
        return []

    def reserve_key(self, schema: ModelSchema, field: Field, key: int) -> Compiled | None:
        """A statement after which the database never generates ``key`` for ``field``, or ``None`` if it never would.

        Sent before a row is written with an explicit value ``key`` of a
        generated key (by :meth:`ommi.sql.SQLOperations.update` setting it,
        and by its ``insert`` for the largest explicit key of the rows):
        generated keys must never collide with keys the application chose.
        ``None`` (the default) says the database takes care of it itself, as
        SQLite's ``AUTOINCREMENT`` does (it continues after the largest key
        ever stored). A sequence or identity that hands out
        numbers without looking at the table must be moved past ``key``,
        never backwards (PostgreSQL: ``setval``).
        """
        return None

    def reserve_stored_keys(self, schema: ModelSchema, field: Field) -> Compiled | None:
        """A statement after which the database never generates a key already stored, or ``None`` if it never would.

        ``None`` (the default): generated keys never collide with stored rows
        (SQLite's ``AUTOINCREMENT`` continues after the largest key). A
        generator that hands out numbers without looking at the table can
        still draw a key that a row written without :meth:`reserve_key` holds
        (another client, a restored dump): return the statement that moves
        it past the largest stored key, never backwards. Its insert then
        tries again with new keys when that happens (see
        :meth:`ommi.sql.SQLOperations.insert`). Called once per model and
        compiler; the statement is kept.
        """
        return None

    # -- INSERT ------------------------------------------------------------

    def insert_sql(
        self,
        schema: ModelSchema,
        fields: Sequence[Field],
        rows: int = 1,
        *,
        returning: Field | None = None,
        skip_taken: bool = False,
    ) -> str:
        """``INSERT`` of ``rows`` rows of ``fields``, bound by :meth:`insert_params`.

        ``returning``: the generated key, which the statement returns, one row
        per inserted row; the keys it generates must increase along its rows
        (the order of the returned rows does not matter). ``skip_taken``
        (asked only when :meth:`reserve_stored_keys` gives a statement): a row
        whose generated key is already taken is skipped instead of failing the
        statement, ``ON CONFLICT (key) DO NOTHING``. No ``fields``:
        ``DEFAULT VALUES``, one row (``rows`` is then 1). The text may depend
        only on the arguments: :meth:`ommi.sql.SQLCompiler.insert_text` keeps it.
        """
        q = self.quote
        if fields:
            values = "(" + ", ".join([self.placeholder] * len(fields)) + ")"
            columns = ", ".join(q(f.column) for f in fields)
            sql = f"INSERT INTO {self.table(schema)} ({columns}) VALUES " + ", ".join([values] * rows)
        else:
            sql = f"INSERT INTO {self.table(schema)} DEFAULT VALUES"
        if returning is not None:
            if skip_taken:
                sql += f" ON CONFLICT ({q(returning.column)}) DO NOTHING"
            sql += f" RETURNING {q(returning.column)}"
        return sql

    def upsert_sql(
        self,
        schema: ModelSchema,
        fields: Sequence[Field],
        rows: int,
        *,
        on: Sequence[Field],
        guard: bool = False,
        returning: Sequence[Field] = (),
    ) -> str:
        """:meth:`insert_sql` of ``rows`` rows of ``fields`` that updates the row it conflicts with on ``on`` instead.

        ``INSERT ... ON CONFLICT (on) DO UPDATE SET`` every non-key field of
        the model ``= excluded.`` field (``DO NOTHING`` when the model has
        only key fields and ``on`` is the key), bound by :meth:`insert_params`
        like the insert. ``guard``: the update happens only where the stored
        row's key equals the row's (``WHERE``), so a row matching a stored row
        under another key is neither inserted nor updated, and is missing from
        ``RETURNING`` (its caller counts them). ``returning``: fields the
        statement returns for every row it inserted or updated (through
        :meth:`returned`). PostgreSQL and SQLite (3.35 and later) spell it alike.
        """
        q = self.quote
        table = self.table(schema)
        insert = self.insert_sql(schema, fields, rows)
        head = f"INSERT INTO {table} "
        if not insert.startswith(head):
            raise NotImplementedError(
                f"{type(self).__name__}.insert_sql does not begin with {head!r}: override upsert_sql too"
            )
        # The stored row under an alias: a table named "excluded" would be ambiguous with the new row.
        stored = q("ommi_stored")
        sql = f"{head}AS {stored} {insert[len(head) :]}"
        update = [f for f in schema.fields if not f.key]
        target = ", ".join(q(f.column) for f in on)
        if not update and not guard and not returning:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
        else:
            # No field to update: the stored value of one of the conflict fields, set again, still returns the row.
            assignments = ", ".join(f"{q(f.column)} = excluded.{q(f.column)}" for f in update or on[:1])
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {assignments}"
            if guard:
                sql += " WHERE " + " AND ".join(f"{stored}.{q(f.column)} = excluded.{q(f.column)}" for f in schema.key)
        if returning:
            sql += " RETURNING " + ", ".join(self.returned(f) for f in returning)
        return sql

    def returned(self, field: Field) -> str:
        """How a ``RETURNING`` clause names ``field`` (default: its quoted column)."""
        return self.quote(field.column)

    def insert_params(self, rows: Sequence[Sequence[Any]], columns: Sequence[int] | None) -> list[Any]:
        """The parameters of :meth:`insert_sql`'s text for ``len(rows)`` rows.

        ``rows``: whole rows of client parameters (``Dialect.to_param``
        applied), in the order of ``schema.fields``; ``columns``: the
        positions, in each row, of the statement's ``fields``, or ``None`` for
        all of them in order. The default binds row after row, one parameter
        per placeholder.
        """
        if columns is None:
            return list(rows[0]) if len(rows) == 1 else list(chain.from_iterable(rows))
        return [row[i] for row in rows for i in columns]

    def insert_sizes(self, count: int, largest: int) -> list[int]:
        """How many rows each ``INSERT`` of ``count`` rows carries, at most ``largest`` each (>= 1).

        The default uses powers of two, so that the texts of a model's
        inserts (whose ``VALUES`` list grows with the rows) stay few and all
        in the statement caches: 300 rows with ``largest`` 256 are 256 + 32
        + 8 + 4. A dialect whose text does not depend on the number of rows
        (one array parameter per column) sends full statements and the rest.
        """
        largest = 1 << (max(1, largest).bit_length() - 1)
        sizes = [largest] * (count // largest)
        rest = count % largest
        size = largest
        while rest:
            while size > rest:
                size //= 2
            sizes.append(size)
            rest -= size
        return sizes

    def limit_offset(self, limit: int | None, offset: int) -> tuple[str, list[Any]]:
        """The LIMIT/OFFSET clause and its parameters.

        The text may depend only on whether ``limit`` and ``offset`` are set,
        never on their values: the compiler caches statements by that shape.
        """
        ph = self.placeholder
        if limit is None and not offset:
            return "", []
        if limit is None:
            return f" OFFSET {ph}", [offset]
        if not offset:
            return f" LIMIT {ph}", [limit]
        return f" LIMIT {ph} OFFSET {ph}", [limit, offset]

    def row_lock(self, lock: RowLock, alias: str, joined: bool) -> str:
        """The locking clause ending a ``SELECT`` marked ``for_update()`` (with leading space).

        ``alias`` is the target's alias in the statement; ``joined``: the query
        has conditions on related models (the compiler reads them in an
        ``EXISTS`` subquery), so the clause names the target, ``FOR UPDATE OF
        alias``, and only the target's rows are locked. The default is the SQL
        standard's with PostgreSQL's (and MySQL 8's) ``SKIP LOCKED`` / ``NOWAIT``.
        A database whose transactions already keep every other writer out
        (SQLite's ``BEGIN IMMEDIATE``) returns ``""``.
        """
        clause = " FOR UPDATE"
        if joined:
            clause += f" OF {alias}"
        if lock.skip_locked:
            clause += " SKIP LOCKED"
        elif lock.nowait:
            clause += " NOWAIT"
        return clause

    def membership(self, column: str, raw: str, op: Op, count: int, storage: StorageType) -> str:
        """``in_`` (``op`` IN) or ``not_in`` (NOT_IN) of ``count`` >= 1 values, bound by :meth:`membership_params`.

        ``column`` is the compared operand, ``raw`` the bare column. A NULL
        column never matches ``in_`` and always matches ``not_in``.
        """
        listed = ", ".join([self.placeholder] * count)
        if op is Op.IN:
            return f"{column} IN ({listed})"
        return f"({column} NOT IN ({listed}) OR {raw} IS NULL)"

    def membership_params(self, values: list[Any], storage: StorageType) -> list[Any]:
        """The parameters of :meth:`membership`'s text for ``values`` (client parameters already): one each."""
        return values

    def is_distinct_from(self, left: str, right: str) -> str:
        """``left`` differs from ``right``, where NULL differs from any value."""
        return f"{left} IS DISTINCT FROM {right}"

    def text_column(self, column: str, op: Op) -> str:
        """A text column as used by an ordering comparison (collation applied)."""
        if self.text_sort_collation is not None:
            return f"{column} COLLATE {self.text_sort_collation}"
        return column

    def comparison_operand(self, column: str, storage: StorageType, op: Op | None) -> str:
        """A column as an operand of a comparison with ``op`` (``None``: an ``ORDER BY`` key).

        The compiler passes every compared or sorted column through here, for
        all operators except ``IS NULL`` and the text matches, so a dialect can
        add a collation or a cast where its native comparison differs from
        Ommi's semantics. By default text columns get :meth:`text_column` for
        ordering comparisons and sorting, and everything else is unchanged.
        """
        if storage is StorageType.TEXT and (op is None or op in ORDERING_OPS):
            return self.text_column(column, Op.LT if op is None else op)
        return column

    def text_match(self, column: str, op: Op, text: str) -> tuple[str, list[Any]]:
        """``contains`` / ``startswith`` / ``endswith`` with ``text`` taken literally (``op`` in ``TEXT_OPS``).

        The case-insensitive operators (``FOLDED_TEXT_OPS``) compare both
        sides through :meth:`fold_text`.

        Returns the condition's SQL text and its parameters, in the order of
        its placeholders: the compiler takes both from this one call. ``text``
        must only ever reach the parameters, never the SQL text, and the SQL
        text may depend only on ``column`` and ``op`` (statements are cached by
        shape). The compiler passes ``column=""`` when it needs the parameters
        alone (a cached statement).
        """
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = {
            Op.CONTAINS: f"%{escaped}%",
            Op.STARTSWITH: f"{escaped}%",
            Op.ENDSWITH: f"%{escaped}",
            Op.ICONTAINS: f"%{escaped}%",
            Op.ISTARTSWITH: f"{escaped}%",
            Op.IENDSWITH: f"%{escaped}",
        }[op]
        if op in FOLDED_TEXT_OPS:
            folded = self.fold_text(column)
            return f"{folded} LIKE {self.fold_text(self.placeholder)} ESCAPE '\\'", [pattern]
        return f"{column} LIKE {self.placeholder} ESCAPE '\\'", [pattern]

    def fold_text(self, operand: str) -> str:
        """The SQL folding the case of a text operand for a case-insensitive match (``lower(operand)`` here).

        The default :meth:`text_match` of ``case_sensitive=False`` applies it to
        both the column and the ``LIKE`` pattern (whose escapes and wildcards
        no case mapping changes). ``lower()`` is what most databases offer; it
        folds as :func:`ommi.query.evaluate.fold_case` only where the
        database's lower-casing is the simple one: a dialect overrides this,
        or :meth:`text_match`, where it can do better, and documents the
        differences that remain.
        """
        return f"lower({operand})"

    def json_comparison(self, column: str, path: tuple[str | int, ...], op: Op, value: Any) -> tuple[str, list[Any]]:
        """A path condition on a JSON column (:class:`ommi.expressions.JsonComparison`): SQL text and parameters.

        ``path`` holds ``str`` keys and ``int`` indexes (>= 0); ``op`` is an
        ordering, ``EQ``/``NE`` with a scalar ``value``, or ``IS_NULL`` /
        ``IS_NOT_NULL``. The semantics are :func:`ommi.query.evaluate.json_compare`
        over :func:`~ommi.query.evaluate.json_at`: type-strict, a missing path
        is ``null``, ``NE`` is the negation of ``EQ`` (true for NULL). The text
        may depend on ``column``, ``op``, the kinds of the steps and
        :func:`json_kind` of ``value`` only; path steps and values travel as
        parameters (``column=""``: the compiler wants the parameters alone).
        The generic dialect has no JSON: a dialect whose driver declares
        ``json_fields`` overrides this and :meth:`json_has`.
        """
        raise NotImplementedError(f"the {self.name} dialect has no JSON path conditions")

    def json_has(self, column: str, path: tuple[str | int, ...], value: Any) -> tuple[str, list[Any]]:
        """``has(value)`` at ``path`` (:class:`ommi.expressions.JsonHas`), as :meth:`json_comparison` builds it."""
        raise NotImplementedError(f"the {self.name} dialect has no JSON path conditions")

    def arithmetic_literal(self, storage: StorageType) -> str:
        """A literal of an update expression computing a ``storage`` value: a placeholder, cast to the column type.

        The cast makes the literal's type the column's whatever type the
        client infers from the Python value (psycopg sends a small ``int`` as
        ``smallint``), so the arithmetic is the column type's.
        """
        return f"CAST({self.placeholder} AS {self.column_types[storage]})"

    def arithmetic_result(
        self,
        column: str,
        storage: StorageType,
        expression: str,
        params: list[Any],
        sources: list[str],
        steps: Sequence[ArithmeticStep],
    ) -> tuple[str, list[Any]]:
        """The SQL assigned to ``column`` (quoted) for an update expression, and its parameters.

        ``expression`` is the arithmetic over quoted columns (``sources``, the
        columns it reads) with ``params`` for its placeholders; ``steps`` are
        its operations, innermost first. By default it is used as it is: the
        database must fail the statement (changing no row) when a step leaves
        the range :mod:`ommi.query.arithmetic` defines, as PostgreSQL does
        (``22003``, which the driver reports as ``ValidationError``). A
        database that does not (SQLite turns an integer overflow into a
        float) wraps it in a check that raises (see ``ommi_sqlite``); the
        parameters may then repeat.
        """
        return expression, params

    def sum_columns(self, column: str, storage: StorageType) -> list[str]:
        """The SQL expressions a group's exact sum of ``column`` (a numeric ``storage``) is read from.

        By default one, ``SUM(column)``; :meth:`sum_value` turns what they
        return into the sum. A database whose ``SUM`` is not exact for the
        storage type (SQLite's integer sum fails on an intermediate overflow,
        its ``Decimal`` text would sum as floats) returns several expressions
        or calls a function of its own.
        """
        return [f"SUM({column})"]

    def sum_value(self, storage: StorageType, values: Sequence[Any]) -> Any:
        """The exact sum (canonical, not yet range-checked) from the values of :meth:`sum_columns`; NULL: ``None``."""
        value = values[0]
        if value is None:
            return None
        if storage is StorageType.INTEGER:
            return int(value)  # PostgreSQL's sum(bigint) is a numeric
        if storage is StorageType.FLOAT:
            return float(value)
        convert = self.from_db(storage)
        return value if convert is None else convert(value)

    def group_operand(self, column: str, storage: StorageType) -> str:
        """A column as a ``GROUP BY`` key: equal values (as Ommi compares them) must form one group.

        Default: the column itself; SQLite groups ``Decimal`` text by value through its collation.
        """
        return column

    def to_param(self, storage: StorageType) -> Callable[[Any], Any] | None:
        """Converter from a canonical value to the client's parameter, or None for identity."""
        return None

    def from_db(self, storage: StorageType) -> Callable[[Any], Any] | None:
        """Converter from the client's value to the canonical value, or None for identity."""
        return None
