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

# ruff: noqa: E402 - the imports below must follow register_assert_rewrite()

import pytest

# Detailed assert messages from the suites under editable installs too (pytest
# rewrites an installed plugin's modules itself only when they come from a wheel).
pytest.register_assert_rewrite("ommi_testkit.suites")

from ommi_testkit.reference import ReferenceDriver
from ommi_testkit.suites.audit import AuditRegressionTests
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.crud import CrudTests
from ommi_testkit.suites.errors import ErrorTranslationTests
from ommi_testkit.suites.libraries import ModelLibraryTests
from ommi_testkit.suites.queries import QueryTests
from ommi_testkit.suites.relations import RelationTests
from ommi_testkit.suites.schema import SchemaTests
from ommi_testkit.suites.setup import ImplicitSetupTests
from ommi_testkit.suites.transactions import TransactionTests
from ommi_testkit.suites.types import FieldTypeTests

__all__ = [
    "AuditRegressionTests",
    "ConformanceSuite",
    "CrudTests",
    "ErrorTranslationTests",
    "FieldTypeTests",
    "ImplicitSetupTests",
    "ModelLibraryTests",
    "QueryTests",
    "ReferenceDriver",
    "RelationTests",
    "SchemaTests",
    "SuiteBase",
    "TransactionTests",
    "requires",
]


class ConformanceSuite(
    CrudTests,
    QueryTests,
    FieldTypeTests,
    RelationTests,
    TransactionTests,
    SchemaTests,
    ErrorTranslationTests,
    ImplicitSetupTests,
    AuditRegressionTests,
    ModelLibraryTests,
):
    """Every conformance test. Subclass it and provide a ``driver_factory`` fixture."""
