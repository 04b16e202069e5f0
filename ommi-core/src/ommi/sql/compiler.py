"""Compile the query tree into SQL text and bound parameters.

Pure functions of (AST, dialect): no I/O, no values spliced into SQL. The SQL
text of a query depends only on its *shape* (models, fields, operators, the
number of IN values, whether it is windowed), never on its values, so drivers
can cache prepared statements by text.

Conditions on related models follow :class:`ommi.query.ast.Join`'s semantics
(a LEFT JOIN, each target row at most once) through a correlated ``EXISTS``::

    SELECT t0.* FROM target AS t0
    WHERE EXISTS (SELECT 1 FROM target AS s0 LEFT JOIN other AS j1 ON j1.fk = s0.id
                  WHERE s0.id = t0.id AND <condition>)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from ommi._rowcode import row_converter
from ommi.expressions import (
    TEXT_OPS,
    And,
    Arithmetic,
    Comparison,
    Expr,
    FieldComparison,
    JsonComparison,
    JsonHas,
    Op,
    Or,
    Query,
)
from ommi.models.constraints import ModelConstraint
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.query.aggregate import Aggregate, Aggregation, average
from ommi.sql._statement import Compiled
from ommi.sql.dialect import ArithmeticStep, Dialect, json_kind
from ommi.sql.limits import Limits

__all__ = ["Compiled", "InsertLayout", "SQLCompiler"]

_STATEMENT_CACHE_SIZE = 256
"""Statements kept per model; the model's cache starts over when it is full."""

_Cached = tuple[str, tuple["weakref.ref[ModelSchema]", ...]]
"""A cached statement's SQL text, and the other models its shape names."""

RowConverter = Callable[[Sequence[tuple[Any, ...]]], list[tuple[Any, ...]]]
GroupFinisher = Callable[[Sequence[Any]], tuple[Any, ...]]
"""Turns one row of an aggregate statement into the canonical result row (group values, then aggregates)."""
_SQL_OPS = {Op.EQ: "=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}


class _Scope:
    """Table aliases of one statement."""

    def __init__(self, compiler: SQLCompiler, aliases: dict[int, str]) -> None:
        self.compiler = compiler
        self.aliases = aliases

    def column(self, field: Field) -> str:
        return f"{self.aliases[id(field.schema)]}.{self.compiler.dialect.quote(field.column)}"


class SQLCompiler:
    """Builds statements for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._converters: dict[StorageType, Callable[[Any], Any] | None] = {
            storage: dialect.to_param(storage) for storage in StorageType
        }
        # Keyed by the schema object, weakly: a collected model's id() may be
        # reused by a later one, which must not be served the old converter.
        self._row_converters: weakref.WeakKeyDictionary[ModelSchema, RowConverter | None]
        self._param_converters: weakref.WeakKeyDictionary[ModelSchema, RowConverter | None]
        self._row_converters, self._param_converters = weakref.WeakKeyDictionary(), weakref.WeakKeyDictionary()
        self._statements: weakref.WeakKeyDictionary[ModelSchema, dict[tuple[Any, ...], _Cached]]
        self._statements = weakref.WeakKeyDictionary()
        self._values_converters: dict[tuple[StorageType, ...], RowConverter | None] = {}
        self._insert_layouts: weakref.WeakKeyDictionary[ModelSchema, InsertLayout] = weakref.WeakKeyDictionary()
        self.limits: weakref.WeakKeyDictionary[ModelSchema, Limits] = weakref.WeakKeyDictionary()
        """The narrow columns of each model whose stored table has some (see :mod:`ommi.sql.limits`).

        Read by :class:`ommi.sql.SQLOperations` before every write; set with
        :meth:`set_limits` by the driver's ``apply_schema``.
        """

    def set_limits(self, schema: ModelSchema, limits: Limits) -> None:
        """Record the narrow columns of ``schema``'s stored table (an empty tuple: none, nothing is checked)."""
        if limits:
            self.limits[schema] = limits
        else:
            self.limits.pop(schema, None)

    # -- values ------------------------------------------------------------

    def param(self, field: Field, value: Any) -> Any:
        """A canonical value as the client's parameter."""
        convert = self._converters[field.storage]
        return value if value is None or convert is None else convert(value)

    def row_params(self, fields: Sequence[Field], row: Sequence[Any]) -> list[Any]:
        """Canonical values of ``fields`` (indexed by ``field.index`` in ``row``) as parameters."""
        converters = self._converters
        params = []
        for f in fields:
            value = row[f.index]
            convert = converters[f.storage]
            params.append(value if value is None or convert is None else convert(value))
        return params

    def params_converter(self, schema: ModelSchema) -> RowConverter | None:
        """Turns canonical rows of ``schema`` into rows of client parameters (``dialect.to_param``).

        ``None`` when every field's canonical value is already the parameter,
        so the rows can be sent as they are.
        """
        return _per_model(self._param_converters, schema, self._converters.__getitem__)

    def row_converter(self, schema: ModelSchema) -> RowConverter | None:
        """Turns the client's rows of ``schema`` into canonical rows (``dialect.from_db``); ``None``: no need."""
        return _per_model(self._row_converters, schema, self.dialect.from_db)

    def values_converter(self, fields: Sequence[Field]) -> RowConverter | None:
        """Turns the client's rows of the columns of ``fields`` into canonical values (``dialect.from_db``)."""
        storages = tuple(f.storage for f in fields)
        try:
            return self._values_converters[storages]
        except KeyError:
            pass
        steps = {i: step for i, storage in enumerate(storages) if (step := self.dialect.from_db(storage)) is not None}
        if len(self._values_converters) >= _STATEMENT_CACHE_SIZE:
            self._values_converters.clear()
        converter = self._values_converters[storages] = row_converter(len(storages), steps)
        return converter

    # -- conditions --------------------------------------------------------

    def _walk(
        self,
        expr: Expr,
        scope: _Scope | None,
        target: ModelSchema,
        shape: list[Any],
        params: list[Any],
        others: list[ModelSchema],
    ) -> str:
        """One walk over a condition: its shape and parameters, and its SQL text when ``scope`` is given.

        The one place that knows which values a condition binds. Each node
        writes its text and appends its parameters together, in the order of
        its placeholders, so text and parameters cannot drift apart. The
        statement cache walks without a scope (shape and parameters only) and
        with one when it compiles the text of a new shape.
        """
        if isinstance(expr, Comparison):
            return self._comparison(expr, scope, target, shape, params, others)
        if isinstance(expr, FieldComparison):
            others.extend(f.schema for f in (expr.left, expr.right) if f.schema is not target)
            shape.append((id(expr.left), expr.op, id(expr.right)))
            return "" if scope is None else self._field_comparison(expr, scope)
        if isinstance(expr, (JsonComparison, JsonHas)):
            return self._json(expr, scope, target, shape, params, others)
        assert isinstance(expr, (And, Or)), f"cannot compile {expr!r}"
        conjunction = isinstance(expr, And)
        shape.append("(" if conjunction else "or(")
        parts = [self._walk(item, scope, target, shape, params, others) for item in expr.items]
        shape.append(")")
        if scope is None:
            return ""
        return "(" + (" AND " if conjunction else " OR ").join(parts) + ")"

    def _comparison(
        self,
        node: Comparison,
        scope: _Scope | None,
        target: ModelSchema,
        shape: list[Any],
        params: list[Any],
        others: list[ModelSchema],
    ) -> str:
        dialect = self.dialect
        field, op, value = node.field, node.op, node.value
        if field.schema is not target:
            others.append(field.schema)
        raw = "" if scope is None else scope.column(field)
        if op is Op.IS_NULL or op is Op.IS_NOT_NULL:
            shape.append((id(field), op))
            return f"{raw} IS NULL" if op is Op.IS_NULL else f"{raw} IS NOT NULL"
        if op in TEXT_OPS:
            shape.append((id(field), op))
            text, bound = dialect.text_match(raw, op, value)
            params.extend(bound)
            return text
        if op is Op.IN or op is Op.NOT_IN:
            shape.append((id(field), op, len(value)))
            if not value:
                return "1 = 0" if op is Op.IN else "1 = 1"
            params.extend(dialect.membership_params([self.param(field, v) for v in value], field.storage))
            if scope is None:
                return ""
            column = dialect.comparison_operand(raw, field.storage, op)
            return dialect.membership(column, raw, op, len(value), field.storage)
        shape.append((id(field), op))
        params.append(self.param(field, value))
        if scope is None:
            return ""
        column = dialect.comparison_operand(raw, field.storage, op)
        if op is Op.NE:
            return dialect.is_distinct_from(column, dialect.placeholder)
        return f"{column} {_SQL_OPS[op]} {dialect.placeholder}"

    def _json(
        self,
        node: JsonComparison | JsonHas,
        scope: _Scope | None,
        target: ModelSchema,
        shape: list[Any],
        params: list[Any],
        others: list[ModelSchema],
    ) -> str:
        """A path condition on a JSON field, through the dialect (whose text depends on its shape only)."""
        field = node.field
        if field.schema is not target:
            others.append(field.schema)
        raw = "" if scope is None else scope.column(field)
        steps = tuple(isinstance(step, int) for step in node.path)
        if isinstance(node, JsonHas):
            shape.append((id(field), "has", steps, json_kind(node.value)))
            text, bound = self.dialect.json_has(raw, node.path, node.value)
        else:
            shape.append((id(field), "json", node.op, steps, json_kind(node.value)))
            text, bound = self.dialect.json_comparison(raw, node.path, node.op, node.value)
        params.extend(bound)
        return text

    def _field_comparison(self, node: FieldComparison, scope: _Scope) -> str:
        storage = node.left.storage
        left = self.dialect.comparison_operand(scope.column(node.left), storage, node.op)
        right = self.dialect.comparison_operand(scope.column(node.right), storage, node.op)
        if node.op is Op.NE:
            return self.dialect.is_distinct_from(left, right)
        return f"{left} {_SQL_OPS[node.op]} {right}"

    def _where(self, query: Query, outer: str) -> tuple[str, list[Any]]:
        """The WHERE clause (with leading space) for ``query`` whose target is aliased ``outer``, and its parameters."""
        params: list[Any] = []
        if query.where is None:
            return "", params
        q = self.dialect.quote
        target = query.model
        if not query.joins:
            condition = self._walk(query.where, _Scope(self, {id(target): outer}), target, [], params, [])
            return f" WHERE {condition}", params
        aliases = {id(target): q("s0")}
        joins = []
        for number, join in enumerate(query.joins, start=1):
            alias = q(f"j{number}")
            aliases[id(join.model)] = alias
            on = " AND ".join(
                f"{alias}.{q(other.column)} = {aliases[id(target)]}.{q(mine.column)}" for mine, other in join.pairs
            )
            joins.append(f" LEFT JOIN {self.dialect.table(join.model)} AS {alias} ON {on}")
        condition = self._walk(query.where, _Scope(self, aliases), target, [], params, [])
        same_row = " AND ".join(f"{q('s0')}.{q(f.column)} = {outer}.{q(f.column)}" for f in target.key)
        return (
            f" WHERE EXISTS (SELECT 1 FROM {self.dialect.table(target)} AS {q('s0')}{''.join(joins)}"
            f" WHERE {same_row} AND {condition})"
        ), params

    def _order(self, query: Query, alias: str) -> str:
        if not query.sort:
            return ""
        parts = []
        for key in query.sort:
            column = f"{alias}.{self.dialect.quote(key.field.column)}"
            column = self.dialect.comparison_operand(column, key.field.storage, None)
            direction = "DESC" if key.descending else "ASC"
            if self.dialect.supports_nulls_order:
                direction += " NULLS LAST" if key.descending else " NULLS FIRST"
            parts.append(f"{column} {direction}")
        return " ORDER BY " + ", ".join(parts)

    # -- the statement cache -------------------------------------------------

    def _cached(self, kind: Hashable, query: Query, text_of: Callable[[Query], str]) -> Compiled:
        """The statement of ``query``: its text ``text_of(query)``, from the cache when a query of the same shape ran.

        One walk over the query gives its shape (fields by ``id``, operators,
        the number of IN values, joins, sort, whether it has a limit and an
        offset) and its parameters; the SQL text depends on nothing else.
        Statements are cached per target model, weakly, so a model that is
        no longer used takes its statements with it. An entry also holds weak
        references to the other models its shape names: while they are alive
        no other object can have their fields' ids; once one is gone the entry
        is compiled afresh.
        """
        target = query.model
        shape: list[Any] = [kind]
        params: list[Any] = []
        others: list[ModelSchema] = []
        if query.where is not None:
            self._walk(query.where, None, target, shape, params, others)
        for join in query.joins:
            shape.append(("join", id(join.model), tuple((id(mine), id(other)) for mine, other in join.pairs)))
            others.append(join.model)
        for sort_key in query.sort:
            shape.append((id(sort_key.field), sort_key.descending))
        shape.append(query.limit is None)
        shape.append(not query.offset)
        if query.lock is not None:
            shape.append(query.lock)
        key = tuple(shape)
        statements = self._statements.get(target)
        if statements is None:
            statements = self._statements[target] = {}
        cached = statements.get(key)
        if cached is None or any(ref() is None for ref in cached[1]):
            if len(statements) >= _STATEMENT_CACHE_SIZE:
                statements.clear()
            cached = statements[key] = (text_of(query), tuple(weakref.ref(schema) for schema in others))
        return Compiled(cached[0], params + self._window_params(query))

    # -- statements --------------------------------------------------------

    def columns(self, schema: ModelSchema, alias: str) -> str:
        q = self.dialect.quote
        return ", ".join(f"{alias}.{q(f.column)}" for f in schema.fields)

    def select(self, query: Query) -> Compiled:
        """``SELECT`` every field of the target, in ``schema.fields`` order (cached by shape)."""
        return self._cached("select", query, self._select_text)

    def count(self, query: Query) -> Compiled:
        """``SELECT COUNT(*)`` of the matches, honouring limit and offset (cached by shape)."""
        return self._cached("count", query, self._count_text)

    def compile_select(self, query: Query) -> Compiled:
        """:meth:`select` without the statement cache."""
        return self._select(query)

    def compile_count(self, query: Query) -> Compiled:
        """:meth:`count` without the statement cache."""
        return self._count(query)

    def _window_params(self, query: Query) -> list[Any]:
        return self.dialect.limit_offset(query.limit, query.offset)[1]

    def _select_text(self, query: Query) -> str:
        return self._select(query).sql

    def _select(self, query: Query) -> Compiled:
        q = self.dialect.quote
        alias = q("t0")
        where, params = self._where(query, alias)
        window, window_params = self.dialect.limit_offset(query.limit, query.offset)
        sql = (
            f"SELECT {self.columns(query.model, alias)} FROM {self.dialect.table(query.model)} AS {alias}"
            f"{where}{self._order(query, alias)}{window}"
        )
        if query.lock is not None:
            sql += self.dialect.row_lock(query.lock, alias, bool(query.joins))
        return Compiled(sql, params + window_params)

    def select_values(self, query: Query, fields: Sequence[Field], distinct: bool) -> Compiled:
        """``SELECT`` the columns of ``fields`` (in that order) of the matches (cached by shape).

        ``distinct``: one row per different tuple, as ``GROUP BY`` the
        columns compared for equality as conditions compare them
        (:meth:`Dialect.comparison_operand` with ``Op.EQ``; ``NULL`` equals
        ``NULL``, as in ``DISTINCT``; of equal values such as ``Decimal``
        ``1.0`` and ``1.00`` the database returns one), which unlike
        ``SELECT DISTINCT`` lets the dialect's sort expressions over the
        columns (collations, ``NULLS FIRST``) order the result; core sorts
        a distinct projection by projected fields only.
        """
        kind = ("values", tuple(f.index for f in fields), distinct)
        return self._cached(kind, query, lambda q: self._values_text(q, fields, distinct))

    def exists(self, query: Query) -> Compiled:
        """``SELECT 1`` of the first match (``query`` has ``limit=1``, its offset honoured; cached by shape)."""
        return self._cached("exists", query, self._exists_text)

    def _values_text(self, query: Query, fields: Sequence[Field], distinct: bool) -> str:
        q = self.dialect.quote
        alias = q("t0")
        where, _ = self._where(query, alias)
        window, _ = self.dialect.limit_offset(query.limit, query.offset)
        columns = ", ".join(f"{alias}.{q(f.column)}" for f in fields)
        group = ""
        if distinct:
            # Grouped by equality as conditions compare (SQLite's Decimal text through its collation):
            # Decimal("1.0") and Decimal("1.00") are one tuple, as they are in Python.
            keys = (self.dialect.comparison_operand(f"{alias}.{q(f.column)}", f.storage, Op.EQ) for f in fields)
            group = " GROUP BY " + ", ".join(dict.fromkeys(keys))
        return (
            f"SELECT {columns} FROM {self.dialect.table(query.model)} AS {alias}"
            f"{where}{group}{self._order(query, alias)}{window}"
        )

    def _exists_text(self, query: Query) -> str:
        q = self.dialect.quote
        alias = q("t0")
        where, _ = self._where(query, alias)
        window, _ = self.dialect.limit_offset(query.limit, query.offset)
        return f"SELECT 1 FROM {self.dialect.table(query.model)} AS {alias}{where}{window}"

    def _count_text(self, query: Query) -> str:
        return self._count(query).sql

    def _count(self, query: Query) -> Compiled:
        q = self.dialect.quote
        alias = q("t0")
        where, params = self._where(query, alias)
        if query.limit is None and not query.offset:
            return Compiled(f"SELECT COUNT(*) FROM {self.dialect.table(query.model)} AS {alias}{where}", params)
        window, window_params = self.dialect.limit_offset(query.limit, query.offset)
        inner = f"SELECT 1 FROM {self.dialect.table(query.model)} AS {alias}{where}{self._order(query, alias)}{window}"
        return Compiled(f"SELECT COUNT(*) FROM ({inner}) AS {q('counted')}", params + window_params)

    def aggregate(self, query: Query, aggregation: Aggregation) -> tuple[Compiled, GroupFinisher]:
        """One ``SELECT ... GROUP BY`` computing ``aggregation`` over the matches (cached by shape), and its finisher.

        Conditions on related models go through the ``EXISTS`` of :meth:`_where`,
        so each target row counts once. Groups are ordered by the group fields
        ascending, NULL first. ``Avg`` of ``INTEGER`` and ``DECIMAL`` fields is
        read as an exact sum and a count and divided by
        :func:`ommi.query.aggregate.average`; sums go through
        :meth:`Dialect.sum_columns` / :meth:`Dialect.sum_value`. ``having`` is
        not part of the statement: the caller applies
        :func:`ommi.query.aggregate.keep_group` to the finished rows.
        """
        shape = (
            "aggregate",
            tuple((a.kind, None if a.field is None else id(a.field)) for _, a in aggregation.aggregates),
            tuple(id(f) for f in aggregation.group_by),
        )
        compiled = self._cached(shape, query, lambda q: self._aggregate_text(q, aggregation))
        return compiled, self._group_finisher(aggregation)

    def _aggregate_parts(self, aggregate: Aggregate, alias: str) -> list[str]:
        q, dialect = self.dialect.quote, self.dialect
        field = aggregate.field
        if field is None:
            return ["COUNT(*)"]
        column = f"{alias}.{q(field.column)}"
        kind, storage = aggregate.kind, field.storage
        if kind == "count":
            return [f"COUNT({column})"]
        if kind in ("min", "max"):
            return [f"{kind.upper()}({dialect.comparison_operand(column, storage, None)})"]
        if kind == "avg" and storage is StorageType.FLOAT:
            return [f"AVG({column})"]
        sums = dialect.sum_columns(column, storage)
        return sums if kind == "sum" else [*sums, f"COUNT({column})"]

    def _aggregate_text(self, query: Query, aggregation: Aggregation) -> str:
        dialect = self.dialect
        q = dialect.quote
        alias = q("t0")
        where, _ = self._where(query, alias)
        groups = [f"{alias}.{q(f.column)}" for f in aggregation.group_by]
        selected = list(groups)
        for _, aggregate in aggregation.aggregates:
            selected.extend(self._aggregate_parts(aggregate, alias))
        sql = f"SELECT {', '.join(selected)} FROM {dialect.table(query.model)} AS {alias}{where}"
        if groups:
            keys = [dialect.group_operand(c, f.storage) for c, f in zip(groups, aggregation.group_by, strict=True)]
            sql += " GROUP BY " + ", ".join(keys)
            order = []
            for column, field in zip(groups, aggregation.group_by, strict=True):
                key = dialect.comparison_operand(column, field.storage, None)
                order.append(f"{key} ASC NULLS FIRST" if dialect.supports_nulls_order else f"{key} ASC")
            sql += " ORDER BY " + ", ".join(order)
        return sql

    def _group_finisher(self, aggregation: Aggregation) -> GroupFinisher:
        dialect = self.dialect
        steps: list[Callable[[Sequence[Any]], Any]] = []
        position = 0

        def take(width: int, make: Callable[[int], Callable[[Sequence[Any]], Any]]) -> None:
            nonlocal position
            steps.append(make(position))
            position += width

        for grouped in aggregation.group_by:
            convert = dialect.from_db(grouped.storage)
            take(1, lambda at, c=convert: lambda row: row[at] if c is None or row[at] is None else c(row[at]))  # type: ignore[misc]
        for _, aggregate in aggregation.aggregates:
            field = aggregate.field
            kind = aggregate.kind
            if field is None or kind == "count":
                take(1, lambda at: lambda row: int(row[at]))
                continue
            storage = field.storage
            if kind in ("min", "max"):
                convert = dialect.from_db(storage)
                take(1, lambda at, c=convert: lambda row: row[at] if c is None or row[at] is None else c(row[at]))  # type: ignore[misc]
            elif kind == "avg" and storage is StorageType.FLOAT:
                take(1, lambda at: lambda row: None if row[at] is None else float(row[at]))
            else:
                sums = len(dialect.sum_columns("", storage))
                if kind == "sum":
                    take(sums, lambda at, n=sums, s=storage: lambda row: dialect.sum_value(s, row[at : at + n]))  # type: ignore[misc]
                else:
                    take(
                        sums + 1,
                        lambda at, n=sums, s=storage: (
                            lambda row: average(  # type: ignore[misc]
                                dialect.sum_value(s, row[at : at + n]), int(row[at + n] or 0), s
                            )
                        ),
                    )

        def finish(row: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(step(row) for step in steps)

        return finish

    def delete(self, query: Query) -> Compiled:
        """``DELETE`` the matches (no window: core rejects limit on delete)."""
        table = self.dialect.table(query.model)
        where, params = self._where(query, table)
        return Compiled(f"DELETE FROM {table}{where}", params)

    def update(self, query: Query, values: Mapping[Field, Any]) -> Compiled:
        """``UPDATE`` the matches with ``values``: canonical values, fields to copy or :class:`Arithmetic` nodes.

        An expression becomes SQL over the row's own columns (``"balance" =
        "balance" + ?``), its literals parameters, passed through
        :meth:`Dialect.arithmetic_literal` and, whole, :meth:`Dialect.arithmetic_result`.
        """
        q = self.dialect.quote
        table = self.dialect.table(query.model)
        ph = self.dialect.placeholder
        assignments: list[str] = []
        params: list[Any] = []
        for f, value in values.items():
            if isinstance(value, Field):
                assignments.append(f"{q(f.column)} = {q(value.column)}")
            elif isinstance(value, Arithmetic):
                text, expression_params = self.arithmetic(f, value)
                assignments.append(f"{q(f.column)} = {text}")
                params.extend(expression_params)
            else:
                assignments.append(f"{q(f.column)} = {ph}")
                params.append(self.param(f, value))
        where, where_params = self._where(query, table)
        return Compiled(f"UPDATE {table} SET {', '.join(assignments)}{where}", params + where_params)

    def arithmetic(self, target: Field, expression: Arithmetic) -> tuple[str, list[Any]]:
        """The SQL of an update expression for ``target`` (checked by core), and its parameters in order."""
        q = self.dialect.quote
        literal = self.dialect.arithmetic_literal(target.storage)
        steps: list[ArithmeticStep] = []

        def visit(node: Any) -> tuple[str, list[Any]]:
            if isinstance(node, Arithmetic):
                left, right = visit(node.left), visit(node.right)
                step = ArithmeticStep(
                    node.op, f"({left[0]} {node.op.value} {right[0]})", left[1] + right[1], left, right
                )
                steps.append(step)
                return step.sql, step.params
            if isinstance(node, Field):
                return q(node.column), []
            return literal, [self.param(target, node)]

        text, params = visit(expression)
        sources = [q(f.column) for f in dict.fromkeys(expression.fields())]
        return self.dialect.arithmetic_result(q(target.column), target.storage, text, params, sources, steps)

    def insert(
        self, schema: ModelSchema, fields: Sequence[Field], *, rows: int = 1, returning: Sequence[Field] = ()
    ) -> str:
        """``INSERT`` of ``rows`` rows of ``fields`` (``Dialect.insert_sql``), optionally ``RETURNING`` some fields."""
        sql = self.dialect.insert_sql(schema, fields, rows)
        if returning:
            sql += " RETURNING " + ", ".join(self.dialect.quote(f.column) for f in returning)
        return sql

    def insert_layout(self, schema: ModelSchema) -> InsertLayout:
        """What :meth:`ommi.sql.SQLOperations.insert` keeps of ``schema``: its insert texts, built once (per model)."""
        try:
            return self._insert_layouts[schema]
        except KeyError:
            layout = InsertLayout(self.dialect, schema, self.params_converter(schema))
            self._insert_layouts[schema] = layout
            return layout

    # -- schema ------------------------------------------------------------

    def create_table(self, schema: ModelSchema, defaults: Mapping[str, str] | None = None) -> str:
        """``CREATE TABLE IF NOT EXISTS`` with keys and foreign keys.

        ``defaults`` (column -> SQL literal) gives columns a ``DEFAULT``: migrations
        keep a field's migration default there (see :mod:`ommi.sql.migrate`);
        ``use_models`` passes none.
        """
        q = self.dialect.quote
        lines = []
        for f in schema.fields:
            if f is schema.auto_field:
                lines.append(f"{q(f.column)} {self.dialect.auto_key_column(f)}")
                continue
            null = "" if f.nullable and not f.key else " NOT NULL"
            default = f" DEFAULT {defaults[f.column]}" if defaults and f.column in defaults else ""
            lines.append(f"{q(f.column)} {self.column_type(f)}{null}{default}")
        if schema.auto_field is None:
            lines.append(f"PRIMARY KEY ({', '.join(q(f.column) for f in schema.key)})")
        for f in schema.fields if self.dialect.foreign_keys else ():
            target = f.reference
            if target is not None and len(target.schema.key) == 1 and target.schema.key[0] is target:
                lines.append(
                    f"FOREIGN KEY ({q(f.column)}) REFERENCES {self.dialect.table(target.schema)} ({q(target.column)})"
                )
        return f"CREATE TABLE IF NOT EXISTS {self.dialect.table(schema)} (\n    " + ",\n    ".join(lines) + "\n)"

    def create_statements(self, schema: ModelSchema, defaults: Mapping[str, str] | None = None) -> list[str]:
        """Everything that creates ``schema``'s table, in order: the dialect's DDL around :meth:`create_table`.

        ``Dialect.before_create_table`` (e.g. ``CREATE SEQUENCE``), the
        ``CREATE TABLE`` (with the column ``defaults`` given, as literals),
        then ``Dialect.after_create_table``; indexes come from :meth:`create_indexes`.
        """
        dialect = self.dialect
        table = self.create_table(schema, defaults)
        return [*dialect.before_create_table(schema), table, *dialect.after_create_table(schema)]

    def drop_statements(self, schema: ModelSchema) -> list[str]:
        """Everything that drops ``schema``'s table: :meth:`drop_table`, then ``Dialect.after_drop_table``."""
        return [self.drop_table(schema), *self.dialect.after_drop_table(schema)]

    def column_type(self, field: Field) -> str:
        return self.dialect.column_type(field)

    def create_indexes(self, schema: ModelSchema) -> list[str]:
        """``CREATE INDEX IF NOT EXISTS`` for every referencing column."""
        q = self.dialect.quote
        table = self.dialect.table(schema)
        return [
            f"CREATE INDEX IF NOT EXISTS {q(self.index_name(schema, f))} ON {table} ({q(f.column)})"
            for f in schema.fields
            if f.reference is not None and not (f.key and len(schema.key) == 1)
        ]

    @staticmethod
    def index_name(schema: ModelSchema, field: Field) -> str:
        return f"ix_{schema.name}_{field.column}"

    def create_constraint(self, schema: ModelSchema, constraint: ModelConstraint) -> str:
        """The statement making one of the model's ``Unique``/``Index`` constraints: ``CREATE [UNIQUE] INDEX``.

        A unique index is NULL-tolerant in SQL: rows with NULL in any of its
        columns never collide, which is Ommi's rule on every driver.
        """
        q = self.dialect.quote
        columns = ", ".join(q(column) for column in constraint.columns)
        unique = "UNIQUE " if constraint.unique else ""
        # IF NOT EXISTS: a table adopted by a migration's CreateModel may have it already; the step's
        # drift check then makes sure the stored one covers the columns (and is unique where it must be).
        return f"CREATE {unique}INDEX IF NOT EXISTS {q(constraint.name)} ON {self.dialect.table(schema)} ({columns})"

    def drop_constraint(self, schema: ModelSchema, constraint: ModelConstraint) -> str:
        """The statement dropping one of the model's constraints (``DROP INDEX``)."""
        return f"DROP INDEX {self.dialect.quote(constraint.name)}"

    def constraint_statements(self, schema: ModelSchema) -> list[str]:
        """:meth:`create_constraint` for each constraint of ``schema``, for a table just created."""
        return [self.create_constraint(schema, constraint) for constraint in schema.constraints]

    def drop_table(self, schema: ModelSchema) -> str:
        return f"DROP TABLE IF EXISTS {self.dialect.table(schema)}"


class InsertLayout:
    """One model's inserts under one dialect, kept by the compiler (no reference to the model: it is the cache's key).

    A statement writes every field (``keyed``) or every field but the
    generated key, whose column default then generates it
    (``Dialect.null_generates_key`` false); :attr:`unkeyed_columns` are the
    positions of those fields in a row. :meth:`sql` keeps each text it built,
    by its arguments (up to 256 per model, then it starts over).
    """

    __slots__ = ("_dialect", "_texts", "convert", "decode_key", "reserve_stored", "unkeyed_columns")

    def __init__(self, dialect: Dialect, schema: ModelSchema, convert: RowConverter | None) -> None:
        self._dialect = dialect
        self.convert = convert
        """:meth:`SQLCompiler.params_converter` of the model: canonical rows to client parameters (``None``: as is)."""
        auto = schema.auto_field
        self.unkeyed_columns = tuple(f.index for f in schema.fields if f is not auto)
        self.reserve_stored = None if auto is None else dialect.reserve_stored_keys(schema, auto)
        """``Dialect.reserve_stored_keys`` of the generated key: not ``None`` when generated keys may collide."""
        self.decode_key = None if auto is None else dialect.from_db(auto.storage)
        """``Dialect.from_db`` of the generated key: the client's returned key to a canonical one (``None``: as is)."""
        self._texts: dict[tuple[bool, int, bool, bool], str] = {}

    def sql(self, schema: ModelSchema, keyed: bool, rows: int, returning: bool, skip_taken: bool) -> str:
        """The ``INSERT`` of ``rows`` rows (every field if ``keyed``), ``RETURNING`` the key if ``returning``."""
        shape = (keyed, rows, returning, skip_taken)
        text = self._texts.get(shape)
        if text is None:
            if len(self._texts) >= _STATEMENT_CACHE_SIZE:
                self._texts.clear()
            auto = schema.auto_field
            fields = schema.fields if keyed else tuple(f for f in schema.fields if f is not auto)
            text = self._texts[shape] = self._dialect.insert_sql(
                schema, fields, rows, returning=auto if returning else None, skip_taken=skip_taken
            )
        return text


def _per_model(
    cache: weakref.WeakKeyDictionary[ModelSchema, RowConverter | None],
    schema: ModelSchema,
    step_for: Callable[[StorageType], Callable[[Any], Any] | None],
) -> RowConverter | None:
    """The cached converter of ``schema``'s rows that applies ``step_for(field.storage)`` to each field."""
    try:
        return cache[schema]
    except KeyError:
        pass
    steps = {f.index: step for f in schema.fields if (step := step_for(f.storage)) is not None}
    converter = cache[schema] = row_converter(len(schema.fields), steps)
    return converter


def creation_order(schemas: Sequence[ModelSchema]) -> list[ModelSchema]:
    """Schemas ordered so that referenced tables come before referencing ones."""
    ordered: list[ModelSchema] = []
    seen: set[int] = set()
    members = {id(s) for s in schemas}

    def visit(schema: ModelSchema, path: set[int]) -> None:
        if id(schema) in seen or id(schema) in path:
            return
        path.add(id(schema))
        for f in schema.fields:
            if f.reference is not None and id(f.reference.schema) in members:
                visit(f.reference.schema, path)
        seen.add(id(schema))
        ordered.append(schema)

    for schema in schemas:
        visit(schema, set())
    return ordered
