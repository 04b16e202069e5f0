"""The shared SQL compiler: the SQL text of representative queries, and values only ever as parameters.

These tests pin the exact text for the generic dialect (what a new SQL driver
starts from) and check the dialect hooks a driver overrides.
"""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass
from typing import Annotated, Any

from ommi import Key, ModelCollection, ReferenceTo, StoreAs, ommi_model, when
from ommi.models import StorageType, get_schema
from ommi.query.ast import Op, Query
from ommi.query.find import plan_query
from ommi.sql import Compiled, Dialect, SQLCompiler, creation_order

compiler_models = ModelCollection("test_sql_compiler")

HOSTILE = 'x\'); DROP TABLE "User"; --'


@ommi_model(collection=compiler_models)
@dataclass
class User:
    name: str
    age: int | None = None
    id: int | None = None


@ommi_model(collection=compiler_models)
@dataclass
class Post:
    title: str
    author_id: Annotated[int, ReferenceTo(User)]
    id: int | None = None


@ommi_model(collection=compiler_models, name='we"ird table')
@dataclass
class Weird:
    code: Annotated[str, Key | StoreAs('co"de')]
    amount: Annotated[decimal.Decimal, StoreAs("select")]
    at: datetime.datetime | None = None


@ommi_model(collection=compiler_models)
@dataclass
class Pair:
    left: Annotated[str, Key]
    right: Annotated[int, Key]
    note: str | None = None


def compile_select(*predicates: Any, dialect: Dialect | None = None, **window: Any) -> Compiled:
    return SQLCompiler(dialect or Dialect()).select(plan_query(predicates, **window))


USER_COLUMNS = '"t0"."name", "t0"."age", "t0"."id"'


def test_select_everything_has_no_where_clause() -> None:
    """``find(User)`` selects every field in field order, with no WHERE and no parameters."""
    compiled = compile_select(User)
    assert compiled.sql == f'SELECT {USER_COLUMNS} FROM "User" AS "t0"'
    assert compiled.params == []


def test_select_comparison_binds_the_value() -> None:
    """``==`` compiles to ``=`` with a placeholder; the value is a parameter."""
    compiled = compile_select(User.name == "Alice")
    assert compiled.sql == f'SELECT {USER_COLUMNS} FROM "User" AS "t0" WHERE "t0"."name" = ?'
    assert compiled.params == ["Alice"]


def test_hostile_values_never_reach_the_sql_text() -> None:
    """Quotes and SQL in a value stay a parameter for every operator."""
    conditions = [
        User.name == HOSTILE,
        User.name != HOSTILE,
        User.name < HOSTILE,
        User.name.in_([HOSTILE, "b"]),
        User.name.not_in([HOSTILE]),
        User.name.contains(HOSTILE),
        User.name.startswith(HOSTILE),
        User.name.endswith(HOSTILE),
    ]
    for condition in conditions:
        compiled = compile_select(condition)
        assert "DROP" not in compiled.sql and "x'" not in compiled.sql, compiled.sql
        assert any(HOSTILE in str(p) for p in compiled.params), compiled.params


def test_sql_text_depends_on_the_shape_not_the_values() -> None:
    """Two queries differing only in values compile to the same text (so statements are reusable)."""
    first = compile_select(User.age > 3, User.name.in_(["a", "b"]))
    second = compile_select(User.age > 99, User.name.in_(["x", "y"]))
    assert first.sql == second.sql
    assert first.params != second.params


def test_not_equal_matches_null_through_is_distinct_from() -> None:
    """``!=`` is ``IS DISTINCT FROM`` so NULL rows match, as the semantics require."""
    compiled = compile_select(User.age != 3)
    assert compiled.sql.endswith('WHERE "t0"."age" IS DISTINCT FROM ?')
    assert compiled.params == [3]


def test_none_comparisons_are_is_null_without_parameters() -> None:
    """``== None`` / ``!= None`` are IS NULL / IS NOT NULL, never a bound NULL or the text NULL."""
    assert compile_select(User.age == None).sql.endswith('WHERE "t0"."age" IS NULL')  # noqa: E711
    not_null = compile_select(User.age != None)  # noqa: E711
    assert not_null.sql.endswith('WHERE "t0"."age" IS NOT NULL') and not_null.params == []


def test_in_and_not_in() -> None:
    """IN lists one placeholder per value; NOT IN also matches NULL; empty lists are constants."""
    assert compile_select(User.age.in_([1, 2, 3])).sql.endswith('WHERE "t0"."age" IN (?, ?, ?)')
    not_in = compile_select(User.age.not_in([1, 2]))
    assert not_in.sql.endswith('WHERE ("t0"."age" NOT IN (?, ?) OR "t0"."age" IS NULL)')
    assert not_in.params == [1, 2]
    assert compile_select(User.age.in_([])).sql.endswith("WHERE 1 = 0")
    assert compile_select(User.age.not_in([])).sql.endswith("WHERE 1 = 1")


def test_text_matches_escape_wildcards_in_the_parameter() -> None:
    """The generic dialect uses LIKE with ``%`` and ``_`` of the user's text escaped."""
    compiled = compile_select(User.name.contains("50%_off\\"))
    assert compiled.sql.endswith('WHERE "t0"."name" LIKE ? ESCAPE \'\\\'')
    assert compiled.params == ["%50\\%\\_off\\\\%"]
    assert compile_select(User.name.startswith("a")).params == ["a%"]
    assert compile_select(User.name.endswith("a")).params == ["%a"]


def test_and_or_precedence_is_parenthesised() -> None:
    """``when(A).Or(B).And(C)`` is ``(A OR B) AND C``; ``when(A, when(B).Or(C))`` is ``A AND (B OR C)``."""
    chained = compile_select(when(User.name == "a").Or(User.name == "b").And(User.age > 1))
    assert chained.sql.endswith('WHERE (("t0"."name" = ? OR "t0"."name" = ?) AND "t0"."age" > ?)')
    assert chained.params == ["a", "b", 1]
    nested = compile_select(when(User.age > 1, when(User.name == "a").Or(User.name == "b")))
    assert nested.sql.endswith('WHERE ("t0"."age" > ? AND ("t0"."name" = ? OR "t0"."name" = ?))')
    assert nested.params == [1, "a", "b"]


def test_sort_limit_and_offset() -> None:
    """Sorting ends with the key; NULL ordering is explicit; page windows are bound parameters."""
    compiled = compile_select(User, sort=(User.age.desc,), limit=5, offset=10)
    assert compiled.sql == (
        f'SELECT {USER_COLUMNS} FROM "User" AS "t0" '
        'ORDER BY "t0"."age" DESC NULLS LAST, "t0"."id" ASC NULLS FIRST LIMIT ? OFFSET ?'
    )
    assert compiled.params == [5, 10]


def test_text_sorting_uses_the_dialect_collation() -> None:
    """A dialect's ``text_sort_collation`` applies to text ordering comparisons and sort keys only."""

    class Collated(Dialect):
        text_sort_collation = '"C"'

    compiled = compile_select(User.name > "m", User.age > 1, dialect=Collated(), sort=(User.name.asc,))
    assert '"t0"."name" COLLATE "C" > ?' in compiled.sql
    assert '"t0"."age" > ?' in compiled.sql
    assert 'ORDER BY "t0"."name" COLLATE "C" ASC' in compiled.sql
    assert '"t0"."name" COLLATE "C" = ?' not in compile_select(User.name == "m", dialect=Collated()).sql


def test_comparison_operand_hook_sees_every_compared_column() -> None:
    """``Dialect.comparison_operand`` wraps columns in comparisons, IN lists and ORDER BY, not IS NULL."""

    class Wrapping(Dialect):
        def comparison_operand(self, column: str, storage: StorageType, op: Op | None) -> str:
            return f"W({column})" if storage is StorageType.DECIMAL else column

    dialect = Wrapping()
    equal = compile_select(Weird.amount == decimal.Decimal("1.50"), dialect=dialect)
    assert equal.sql.endswith('WHERE W("t0"."select") = ?')
    assert equal.params == [decimal.Decimal("1.50")]
    not_in = compile_select(Weird.amount.not_in([decimal.Decimal(1)]), dialect=dialect)
    assert not_in.sql.endswith('WHERE (W("t0"."select") NOT IN (?) OR "t0"."select" IS NULL)')
    ordered = compile_select(Weird, dialect=dialect, sort=(Weird.amount.asc,))
    assert 'ORDER BY W("t0"."select") ASC' in ordered.sql
    assert compile_select(Weird.amount == None, dialect=dialect).sql.endswith('"t0"."select" IS NULL')  # noqa: E711


def test_identifiers_are_quoted_and_escaped() -> None:
    """Table and column names with quotes or keywords are quoted, doubling inner quotes."""
    compiled = compile_select(Weird.code == "a")
    assert compiled.sql == (
        'SELECT "t0"."co""de", "t0"."select", "t0"."at" FROM "we""ird table" AS "t0" WHERE "t0"."co""de" = ?'
    )


def test_conditions_on_a_related_model_use_exists() -> None:
    """A condition on the referenced model filters through a correlated EXISTS with a LEFT JOIN."""
    compiled = compile_select(Post, User.name == "Ada")
    assert compiled.sql == (
        'SELECT "t0"."title", "t0"."author_id", "t0"."id" FROM "Post" AS "t0" '
        'WHERE EXISTS (SELECT 1 FROM "Post" AS "s0" LEFT JOIN "User" AS "j1" ON "j1"."id" = "s0"."author_id" '
        'WHERE "s0"."id" = "t0"."id" AND "j1"."name" = ?)'
    )
    assert compiled.params == ["Ada"]


def test_count_with_and_without_a_window() -> None:
    """COUNT(*) directly, or over the windowed subquery when limit/offset are set."""
    compiler = SQLCompiler(Dialect())
    plain = compiler.count(plan_query((User.age > 1,)))
    assert plain.sql == 'SELECT COUNT(*) FROM "User" AS "t0" WHERE "t0"."age" > ?'
    windowed = compiler.count(plan_query((User,), limit=2, offset=4))
    assert windowed.sql.startswith('SELECT COUNT(*) FROM (SELECT 1 FROM "User" AS "t0" ORDER BY')
    assert windowed.sql.endswith('LIMIT ? OFFSET ?) AS "counted"')
    assert windowed.params == [2, 4]


def test_delete_of_a_whole_model_is_valid_sql() -> None:
    """``find(Model).delete()`` is a plain DELETE (audit: it used to produce invalid SQL)."""
    compiler = SQLCompiler(Dialect())
    assert compiler.delete(Query(get_schema(User))) == Compiled('DELETE FROM "User"', [])
    filtered = compiler.delete(plan_query((User.age < 18,)))
    assert filtered == Compiled('DELETE FROM "User" WHERE "User"."age" < ?', [18])


def test_update_binds_assignments_before_conditions() -> None:
    """SET values come first in the parameters, then the WHERE values."""
    compiled = SQLCompiler(Dialect()).update(plan_query((User.name == "a",)), {User.age: 5, User.name: HOSTILE})
    assert compiled.sql == 'UPDATE "User" SET "age" = ?, "name" = ? WHERE "User"."name" = ?'
    assert compiled.params == [5, HOSTILE, "a"]


def test_insert_rows_and_returning() -> None:
    """Multi-row INSERT with one placeholder group per row, RETURNING the requested fields."""
    compiler = SQLCompiler(Dialect())
    schema = get_schema(User)
    sql = compiler.insert(schema, schema.fields, rows=2, returning=(User.id,))
    assert sql == 'INSERT INTO "User" ("name", "age", "id") VALUES (?, ?, ?), (?, ?, ?) RETURNING "id"'
    assert compiler.insert(schema, ()) == 'INSERT INTO "User" DEFAULT VALUES'


def test_row_params_apply_the_dialect_converters() -> None:
    """Canonical values become client parameters through ``Dialect.to_param``."""

    class Texty(Dialect):
        def to_param(self, storage: StorageType) -> Any:
            return str if storage is StorageType.DECIMAL else None

    compiler = SQLCompiler(Texty())
    row = ("k", decimal.Decimal("1.10"), None)
    assert compiler.row_params(get_schema(Weird).fields, row) == ["k", "1.10", None]


def test_create_table_keys_nullability_and_foreign_keys() -> None:
    """CREATE TABLE IF NOT EXISTS with the generated key, NOT NULL where required, and references."""
    compiler = SQLCompiler(Dialect())
    assert compiler.create_table(get_schema(Post)) == (
        'CREATE TABLE IF NOT EXISTS "Post" (\n'
        '    "title" TEXT NOT NULL,\n'
        '    "author_id" BIGINT NOT NULL,\n'
        '    "id" BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n'
        '    FOREIGN KEY ("author_id") REFERENCES "User" ("id")\n'
        ")"
    )
    pair = compiler.create_table(get_schema(Pair))
    assert '"note" TEXT,' in pair and 'PRIMARY KEY ("left", "right")' in pair
    assert compiler.create_indexes(get_schema(Post)) == [
        'CREATE INDEX IF NOT EXISTS "ix_Post_author_id" ON "Post" ("author_id")'
    ]
    assert compiler.drop_table(get_schema(Weird)) == 'DROP TABLE IF EXISTS "we""ird table"'


def test_creation_order_puts_referenced_tables_first() -> None:
    """Referenced models come before the models referencing them."""
    ordered = creation_order([get_schema(Post), get_schema(Pair), get_schema(User)])
    names = [s.name for s in ordered]
    assert names.index("User") < names.index("Post")
    assert sorted(names) == ["Pair", "Post", "User"]
