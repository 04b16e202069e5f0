"""The ommi-testkit conformance suite on the MongoDB driver.

Tests that need real MongoDB behaviour which nx-27017 (the wire-protocol
server CI runs) gets wrong are listed in ``needs_real_mongodb`` with the
reason; they skip only on nx-27017 (see ``conftest.py``) and run on MongoDB.
A key is a test name (every parameter) or a test id (``name[param]``).
ommi-mongodb's README lists them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest
from ommi_mongodb import MongoDBDriver
from ommi_testkit import ConformanceSuite

_DECIMAL = "it cannot store Decimal128 values at all ('Object of type Decimal128 is not JSON serializable')"
_BYTES = "it never matches binary values in a filter (==, in_, not_in find nothing)"
_UUID = "it never matches UUID (binary subtype 4) values in a filter"
_QUOTE = "it cannot filter on a field whose name holds a double quote"
_SET_DATETIME = "an update ($set) of a date-time stores it as text, which then reads back as a string"
_MILLISECONDS = "it ignores milliseconds when it compares date-times"
_PIPELINE = (
    "it has no update pipelines, which this update expression needs: the driver refuses it there with "
    "UnsupportedFeature (test_update_expressions.py checks the refusal)"
)

NEEDS_REAL_MONGODB: dict[str, str] = {
    # Decimal128
    "test_types_round_trip[decimal]": _DECIMAL,
    "test_types_filter_equal[decimal]": _DECIMAL,
    "test_types_filter_in_and_not_in[decimal]": _DECIMAL,
    "test_types_update_round_trip[decimal]": _DECIMAL,
    "test_types_filter_ordering[decimal]": _DECIMAL,
    "test_types_sort[decimal]": _DECIMAL,
    "test_types_decimal_exact_round_trip": _DECIMAL,
    "test_types_decimal_binary_fractions_round_trip": _DECIMAL,
    "test_types_every_type_in_one_row": _DECIMAL,
    "test_values_decode_every_storage_type": _DECIMAL + " (the row projected holds a Decimal)",
    "test_values_distinct_equal_decimals_and_floats_are_one_tuple": _DECIMAL,
    "test_validation_rejects_bad_values[float_in_decimal]": _DECIMAL + "; the valid row of the test fails to insert",
    "test_validation_rejects_bad_values[decimal_nan]": _DECIMAL + "; the valid row of the test fails to insert",
    "test_validation_rejects_bad_values[decimal_infinity]": _DECIMAL + "; the valid row of the test fails to insert",
    # binary values
    "test_types_filter_equal[bytes]": _BYTES,
    "test_types_filter_in_and_not_in[bytes]": _BYTES,
    "test_types_filter_ordering[bytes]": _BYTES,
    "test_types_bytes_with_nul_and_every_octet": _BYTES,
    "test_types_falsy_values_are_not_null": _BYTES + " (b'' is one of the values)",
    "test_types_filter_equal[uuid]": _UUID,
    "test_types_filter_in_and_not_in[uuid]": _UUID,
    "test_types_filter_ordering[uuid]": _UUID,
    "test_keys_uuid_key_is_never_overwritten": _UUID,
    # date-times
    "test_types_filter_equal[datetime]": _MILLISECONDS,
    "test_types_filter_ordering[datetime]": _MILLISECONDS,
    "test_types_update_round_trip[date]": _SET_DATETIME,
    "test_types_update_round_trip[datetime]": _SET_DATETIME,
    "test_types_update_round_trip[aware_datetime]": _SET_DATETIME,
    # names and keys
    "test_names_keyword_table_and_columns_round_trip": _QUOTE,
    "test_names_keyword_columns_in_conditions_updates_and_deletes": _QUOTE,
    "test_limit_without_sort_is_ordered_by_key": "it sorts integer _id values as text (1, 10, 2)",
    # migrations
    "test_migrations_change_type_converts_values": _DECIMAL + " (the test converts int values to Decimal)",
    # update expressions beyond $inc/$mul
    "test_update_expr_literal_minus_field": _PIPELINE,
    "test_update_expr_multiply_and_nesting": _PIPELINE,
    "test_update_expr_field_with_field": _PIPELINE,
    "test_update_expr_null_operand_gives_null": _PIPELINE + " (an optional target: $inc fails on NULL)",
    "test_update_expr_values_read_the_row_before_the_update": _PIPELINE,
    "test_update_expr_float_division": _PIPELINE,
    "test_update_expr_field_copy": _PIPELINE,
    "test_json_update_copies_a_json_field_and_refuses_arithmetic": _PIPELINE + " (a JSON field copied into another)",
    "test_update_expr_intermediate_overflow_is_refused": _PIPELINE,
    "test_update_expr_decimal_is_exact": _DECIMAL,
    "test_aggregate_decimals_are_exact": _DECIMAL,
    "test_update_expr_float_arithmetic": (
        "its $inc and $mul keep 15 significant digits of a float result (-0.05 for -0.1 * 3 + 0.25, which is "
        "-0.050000000000000044)"
    ),
}


class TestMongoDBConformance(ConformanceSuite):
    """Every conformance test on :class:`MongoDBDriver`."""

    impossible: ClassVar[dict[str, str]] = {
        "test_setup_disabled_does_not_create_tables": (
            "MongoDB creates a collection on the first write into it, so a write without use_models() succeeds"
        ),
        "test_migrations_failed_run_changes_nothing": (
            "MongoDB has no transactional DDL (nor, on a standalone server, transactions): a failed migration is not "
            "rolled back but resumed by the next apply, each step idempotent and its progress recorded "
            "(test_migrations.py tests the resumption)"
        ),
        "test_migrations_cancelled_apply_leaves_a_boundary": (
            "MongoDB has no transactional DDL: a cancelled migration is not rolled back to a boundary but resumed "
            "by the next apply (test_migrations.py cancels at growing delays and reruns)"
        ),
        "test_migrations_close_racing_apply_leaves_a_boundary": (
            "MongoDB has no transactional DDL: a run cut off by close() is resumed by the next apply rather than "
            "rolled back to a boundary (test_migrations.py tests the resumption)"
        ),
        "test_aggregate_cancelled_leaves_the_database_usable": (
            "PyMongo's asyncio client abandons, unclosed, the socket of a command cancelled mid-flight (any read: "
            "a cancelled .count does the same), and -W error reports its ResourceWarning whenever the garbage "
            "collector meets it, often in a later test; the next aggregate works (checked by hand), and Ommi's own "
            "connection accounting is checked by the reliability workloads"
        ),
        "test_migrations_old_writers_get_the_default": (
            "MongoDB has no column defaults: a document written by the previous models lacks the added field, and "
            "reading it raises SchemaMismatchError naming it (test_migrations.py tests that)"
        ),
    }
    needs_real_mongodb: ClassVar[dict[str, str]] = NEEDS_REAL_MONGODB

    @pytest.fixture
    def driver_factory(self, make_driver: Callable[..., MongoDBDriver]) -> Callable[[], MongoDBDriver]:
        return make_driver


class TestMongoDBConformanceSmallBatches(ConformanceSuite):
    """The suite again with two documents per batch, so every multi-row read spans several batches."""

    impossible = TestMongoDBConformance.impossible
    needs_real_mongodb = NEEDS_REAL_MONGODB

    @pytest.fixture
    def driver_factory(self, make_driver: Callable[..., MongoDBDriver]) -> Callable[[], MongoDBDriver]:
        return lambda: make_driver(batch_size=2)
