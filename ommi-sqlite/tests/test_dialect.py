"""SQLiteDialect: the SQL text SQLite gets, values only as parameters, and the value converters."""

from __future__ import annotations

import datetime
import decimal
import uuid
from dataclasses import dataclass
from typing import Annotated

import pytest
from ommi import ModelCollection, TimezoneAware, ommi_model
from ommi.models import StorageType, get_schema
from ommi.query.find import plan_query
from ommi.sql import SQLCompiler
from ommi_sqlite import SQLiteDialect
from ommi_sqlite._dialect import compare_decimals

models = ModelCollection("ommi_sqlite_test_dialect")


@ommi_model(collection=models)
@dataclass
class Money:
    label: str
    amount: decimal.Decimal | None = None
    at: Annotated[datetime.datetime | None, TimezoneAware] = None
    id: int | None = None


compiler = SQLCompiler(SQLiteDialect())


def test_text_matches_use_glob_with_escaped_user_text() -> None:
    """contains/startswith/endswith are case-sensitive GLOBs; ``* ? [`` in the text become classes."""
    compiled = compiler.select(plan_query((Money.label.contains("a*b?[c]"),)))
    assert compiled.sql.endswith('WHERE "t0"."label" GLOB ?')
    assert compiled.params == ["*a[*]b[?][[]c]*"]
    assert compiler.select(plan_query((Money.label.startswith("x"),))).params == ["x*"]
    assert compiler.select(plan_query((Money.label.endswith("x"),))).params == ["*x"]


def test_not_equal_and_window_spelling() -> None:
    """``!=`` is ``IS NOT``; an offset without a limit uses ``LIMIT -1``; NULL order is SQLite's own."""
    compiled = compiler.select(plan_query((Money.label != "x",), sort=(Money.label.desc,), offset=3))
    assert '"t0"."label" IS NOT ?' in compiled.sql
    assert compiled.sql.endswith('ORDER BY "t0"."label" DESC, "t0"."id" ASC LIMIT ? OFFSET ?')
    assert compiled.params == ["x", -1, 3]
    assert "NULLS" not in compiled.sql


def test_decimal_comparisons_and_sorting_use_the_exact_collation() -> None:
    """Decimal columns compare and sort through ``ommi_decimal``; the value is bound as exact text."""
    compiled = compiler.select(plan_query((Money.amount >= decimal.Decimal("1.50"),), sort=(Money.amount.asc,)))
    assert '"t0"."amount" COLLATE ommi_decimal >= ?' in compiled.sql
    assert 'ORDER BY "t0"."amount" COLLATE ommi_decimal ASC' in compiled.sql
    assert compiled.params[0] == "1.50"


def test_tables_use_autoincrement_keys_and_text_affinity_types() -> None:
    """The generated key aliases the rowid; text-stored types have TEXT affinity names."""
    sql = compiler.create_table(get_schema(Money))
    assert '"id" INTEGER PRIMARY KEY AUTOINCREMENT' in sql
    assert '"amount" DECIMAL_TEXT,' in sql and '"at" DATETIME_TZ_TEXT,' in sql
    for storage, name in SQLiteDialect.column_types.items():
        if storage in (StorageType.INTEGER, StorageType.FLOAT, StorageType.BOOLEAN, StorageType.BYTES):
            continue
        # SQLite gives TEXT affinity to type names containing TEXT and none containing INT.
        assert "TEXT" in name and "INT" not in name, (storage, name)


def test_value_converters_round_trip() -> None:
    """to_param and from_db are inverse for every storage type that needs them."""
    dialect = SQLiteDialect()
    aware = datetime.datetime(2024, 3, 4, 5, 6, 7, 8, tzinfo=datetime.UTC)
    values = {
        StorageType.DECIMAL: decimal.Decimal("-0.000100"),
        StorageType.UUID: uuid.UUID(int=255),
        StorageType.DATE: datetime.date(1, 1, 1),
        StorageType.DATETIME: datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
        StorageType.DATETIME_TZ: aware,
    }
    for storage, value in values.items():
        to_param, from_db = dialect.to_param(storage), dialect.from_db(storage)
        assert to_param is not None and from_db is not None
        assert from_db(to_param(value)) == value, storage
    assert dialect.to_param(StorageType.DATETIME)(datetime.datetime(2024, 1, 1)) == "2024-01-01 00:00:00.000000"  # type: ignore[misc]
    assert dialect.from_db(StorageType.BOOLEAN)(0) is False  # type: ignore[misc]
    assert dialect.to_param(StorageType.TEXT) is None and dialect.from_db(StorageType.TEXT) is None


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [("1.0", "1.00", 0), ("0.1", "0.1000000000000000001", -1), ("10", "9.99", 1), ("-1E+2", "-99", -1), ("x", "1", 1)],
)
def test_decimal_collation_orders_numbers_exactly(left: str, right: str, expected: int) -> None:
    """The collation compares exact numbers; text that is not a number falls back to text order."""
    assert compare_decimals(left, right) == expected
    assert compare_decimals(right, left) == -expected
