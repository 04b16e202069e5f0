"""ommi-testkit: the conformance suite every Ommi driver runs, and the reference driver.

A driver's tests subclass :class:`ConformanceSuite` and provide a
``driver_factory`` fixture::

    import pytest
    from ommi_testkit import ConformanceSuite
    from ommi_mydb import MyDriver

    class TestMyDriver(ConformanceSuite):
        @pytest.fixture
        def driver_factory(self, tmp_path):
            return lambda: MyDriver.connect(str(tmp_path / "test.db"))
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ommi_testkit.reference import ReferenceDriver
    from ommi_testkit.suites.audit import AuditRegressionTests
    from ommi_testkit.suites.base import SuiteBase, requires
    from ommi_testkit.suites.conformance import ConformanceSuite
    from ommi_testkit.suites.constraints import ConstraintTests
    from ommi_testkit.suites.crud import CrudTests
    from ommi_testkit.suites.errors import ErrorTranslationTests
    from ommi_testkit.suites.libraries import ModelLibraryTests
    from ommi_testkit.suites.migrations import MigrationTests
    from ommi_testkit.suites.queries import QueryTests
    from ommi_testkit.suites.relations import RelationTests
    from ommi_testkit.suites.row_locks import RowLockTests
    from ommi_testkit.suites.schema import SchemaTests
    from ommi_testkit.suites.setup import ImplicitSetupTests
    from ommi_testkit.suites.transactions import TransactionTests
    from ommi_testkit.suites.types import FieldTypeTests
    from ommi_testkit.suites.update_expressions import UpdateExpressionTests

__all__ = [
    "AuditRegressionTests",
    "ConformanceSuite",
    "ConstraintTests",
    "CrudTests",
    "ErrorTranslationTests",
    "FieldTypeTests",
    "ImplicitSetupTests",
    "MigrationTests",
    "ModelLibraryTests",
    "QueryTests",
    "ReferenceDriver",
    "RelationTests",
    "RowLockTests",
    "SchemaTests",
    "SuiteBase",
    "TransactionTests",
    "UpdateExpressionTests",
    "requires",
]

# Imported on first access: the reference driver's plugin loads this package
# whenever Ommi lists its drivers, and that must not cost a pytest import.
_WHERE = {
    "ReferenceDriver": "ommi_testkit.reference",
    "AuditRegressionTests": "ommi_testkit.suites.audit",
    "SuiteBase": "ommi_testkit.suites.base",
    "requires": "ommi_testkit.suites.base",
    "ConformanceSuite": "ommi_testkit.suites.conformance",
    "ConstraintTests": "ommi_testkit.suites.constraints",
    "CrudTests": "ommi_testkit.suites.crud",
    "ErrorTranslationTests": "ommi_testkit.suites.errors",
    "ModelLibraryTests": "ommi_testkit.suites.libraries",
    "MigrationTests": "ommi_testkit.suites.migrations",
    "QueryTests": "ommi_testkit.suites.queries",
    "RelationTests": "ommi_testkit.suites.relations",
    "RowLockTests": "ommi_testkit.suites.row_locks",
    "SchemaTests": "ommi_testkit.suites.schema",
    "ImplicitSetupTests": "ommi_testkit.suites.setup",
    "TransactionTests": "ommi_testkit.suites.transactions",
    "FieldTypeTests": "ommi_testkit.suites.types",
    "UpdateExpressionTests": "ommi_testkit.suites.update_expressions",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ommi_testkit' has no attribute {name!r}")
    if module.startswith("ommi_testkit.suites"):
        import pytest

        # Detailed assert messages from the suites under editable installs too
        # (pytest rewrites an installed plugin's modules only from a wheel).
        pytest.register_assert_rewrite("ommi_testkit.suites")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
