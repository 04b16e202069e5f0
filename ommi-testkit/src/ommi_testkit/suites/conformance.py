"""``ConformanceSuite``: every conformance test class in one."""

from __future__ import annotations

from ommi_testkit.suites.aggregates import AggregateTests
from ommi_testkit.suites.audit import AuditRegressionTests
from ommi_testkit.suites.constraints import ConstraintTests
from ommi_testkit.suites.crud import CrudTests
from ommi_testkit.suites.errors import ErrorTranslationTests
from ommi_testkit.suites.inspection import InspectionTests
from ommi_testkit.suites.json_fields import JsonFieldTests
from ommi_testkit.suites.keyset import KeysetTests
from ommi_testkit.suites.libraries import ModelLibraryTests
from ommi_testkit.suites.migrations import MigrationTests
from ommi_testkit.suites.prefetch import PrefetchTests
from ommi_testkit.suites.projections import ProjectionTests
from ommi_testkit.suites.queries import QueryTests
from ommi_testkit.suites.reads_combined import CombinedReadTests
from ommi_testkit.suites.relations import RelationTests
from ommi_testkit.suites.retries import RetryTests
from ommi_testkit.suites.row_locks import RowLockTests
from ommi_testkit.suites.savepoints import SavepointTests
from ommi_testkit.suites.schema import SchemaTests
from ommi_testkit.suites.setup import ImplicitSetupTests
from ommi_testkit.suites.text_case import CaseInsensitiveTextTests
from ommi_testkit.suites.transactions import TransactionTests
from ommi_testkit.suites.types import FieldTypeTests
from ommi_testkit.suites.update_expressions import UpdateExpressionTests
from ommi_testkit.suites.upserts import UpsertTests

__all__ = ["ConformanceSuite"]


class ConformanceSuite(
    CrudTests,
    QueryTests,
    FieldTypeTests,
    RelationTests,
    PrefetchTests,
    TransactionTests,
    SchemaTests,
    ErrorTranslationTests,
    ImplicitSetupTests,
    AuditRegressionTests,
    ModelLibraryTests,
    MigrationTests,
    InspectionTests,
    ConstraintTests,
    SavepointTests,
    RetryTests,
    RowLockTests,
    UpdateExpressionTests,
    UpsertTests,
    ProjectionTests,
    AggregateTests,
    KeysetTests,
    CaseInsensitiveTextTests,
    JsonFieldTests,
    CombinedReadTests,
):
    """Every conformance test. Subclass it and provide a ``driver_factory`` fixture."""
