"""Ommi: an async object mapper for the model classes you already have.

::

    from dataclasses import dataclass
    import ommi

    @ommi.ommi_model
    @dataclass
    class User:
        name: str
        id: int | None = None

    async with ommi.connect("sqlite://") as db:
        await db.add(User("Alice")).or_raise()
        alice = await db.find(User.name == "Alice").one.or_raise()
"""

from typing import TYPE_CHECKING, Any

from ommi import _legacy, errors
from ommi.connect import DriverInfo, connect, drivers
from ommi.database import Ommi, Transaction, active_database
from ommi.errors import (
    ConfigurationError,
    ConnectionError,
    DatabaseClosedError,
    DatabaseError,
    DBStatusNoResultException,
    DeadlockError,
    DriverNotFound,
    IntegrityError,
    LazyLoadError,
    ModelDefinitionError,
    OmmiError,
    OperationalError,
    QueryError,
    SchemaError,
    SchemaMismatchError,
    SerializationError,
    TimeoutError,
    TransactionError,
    UnsupportedFeature,
    ValidationError,
)
from ommi.models import (
    AssociateUsing,
    Auto,
    Index,
    Key,
    LazyLoadEveryRelated,
    LazyLoadTheRelated,
    LazyMany,
    LazyOne,
    ModelCollection,
    ModelMethods,
    ReferenceTo,
    StoreAs,
    TimezoneAware,
    Unique,
    generated_key,
    get_global_collection,
    ommi_model,
)
from ommi.query import when
from ommi.query.aggregate import Aggregated, Avg, Count, Max, Min, Sum
from ommi.query.operands import asc, desc, field
from ommi.results import DBQueryResult, DBResult

__all__ = [
    "Aggregated",
    "AssociateUsing",
    "Auto",
    "Avg",
    "ConfigurationError",
    "ConnectionError",
    "Count",
    "DBQueryResult",
    "DBResult",
    "DBStatusNoResultException",
    "DatabaseClosedError",
    "DatabaseError",
    "DeadlockError",
    "DriverInfo",
    "DriverNotFound",
    "Index",
    "IntegrityError",
    "Key",
    "LazyLoadError",
    "LazyLoadEveryRelated",
    "LazyLoadTheRelated",
    "LazyMany",
    "LazyOne",
    "Max",
    "Min",
    "ModelCollection",
    "ModelDefinitionError",
    "ModelMethods",
    "Ommi",
    "OmmiError",
    "OperationalError",
    "QueryError",
    "ReferenceTo",
    "SchemaError",
    "SchemaMismatchError",
    "SerializationError",
    "StoreAs",
    "Sum",
    "TimeoutError",
    "TimezoneAware",
    "Transaction",
    "TransactionError",
    "Unique",
    "UnsupportedFeature",
    "ValidationError",
    "active_database",
    "asc",
    "connect",
    "desc",
    "drivers",
    "errors",
    "field",
    "generated_key",
    "get_global_collection",
    "ommi_model",
    "when",
]


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        # Ommi 0.2's names here (ommi.use_driver, ommi.BaseDriver...) and its 0.2 submodules
        # (ommi.query_ast...): ommi._legacy says what became of each.
        return _legacy.attribute(__name__, name)
