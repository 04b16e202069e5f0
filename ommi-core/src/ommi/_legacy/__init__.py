"""What became of every public name of Ommi 0.2.2: the one table behind the deprecation shims.

Ommi 1.0 is a rewrite, and most of 0.2.2's names moved or went. Each 0.2.2
module path that no longer exists is a small shim module at that path
(``ommi/query_ast.py``, ``ommi/ext/drivers/sqlite.py``...); it and each 1.0
module that still holds 0.2.2 names (``ommi``, ``ommi.models``...) has a
module-level ``__getattr__`` (PEP 562) that asks :func:`attribute` about a name
the module does not have:

* a :class:`Moved` name gives the new object, and warns once per process with
  an :class:`~ommi.errors.OmmiDeprecationWarning` that names the new spelling;
* a :class:`Removed` name raises :class:`~ommi.errors.RemovedImportError`
  naming what to write instead;
* any other name is the usual :class:`AttributeError`.

:data:`OLD_NAMES` lists every 0.2.2 name, :class:`Kept` ones included (still
at the same path; the guide says what changed around them), and
``ommi-core/tests/test_legacy_names.py`` imports each. The guide
"Migrating from Ommi 0.2" (``docs/content/guides/migrating-from-0.2.md``) is
this table in prose.

The ``__getattr__`` hooks sit under ``if not TYPE_CHECKING:``: type checkers
do not see them, so they keep reporting a misspelled name of the new API (and
report the old names, which is what a migration wants).

This module is a leaf. It names the new objects as ``"module:attribute"``
strings and imports them only when an old name is used, so a shim adds no
import edge to the rest of the package.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ommi.errors import OmmiDeprecationWarning, RemovedImportError

__all__ = ["OLD_MODULES", "OLD_NAMES", "Kept", "Moved", "Removed", "attribute", "resolve", "spelling"]

GUIDE = "see 'Migrating from Ommi 0.2' in the Ommi documentation"


@dataclass(frozen=True, slots=True)
class Kept:
    """Still importable from the same path, without a warning."""


@dataclass(frozen=True, slots=True)
class Moved:
    """Still exists as ``target`` (``"module:attribute"``); the old path gives it and warns once.

    ``note`` is added to the warning when using the new object differs in a
    way the old code will meet (a changed ``connect()``).
    """

    target: str
    note: str = ""

    @property
    def new(self) -> str:
        """The new spelling, as written in code (``ommi.drivers.Driver``)."""
        return spelling(self.target)


@dataclass(frozen=True, slots=True)
class Removed:
    """Gone: ``use`` is what to write instead, ``why`` why the name went."""

    use: str
    why: str


KEPT = Kept()

_CONNECT = "connect() is no longer awaited and takes a URL, a mapping or keyword settings"

OLD_NAMES: dict[str, Kept | Moved | Removed] = {
    # -- ommi -------------------------------------------------------------------
    "ommi.ommi_model": KEPT,
    "ommi.Auto": KEPT,
    "ommi.Key": KEPT,
    "ommi.StoreAs": KEPT,
    "ommi.Ommi": KEPT,
    "ommi.FieldType": Removed(
        "annotate the field with its type alone (`age: int`)",
        "a field's type is read from its annotation",
    ),
    "ommi.active_driver": Removed(
        "ommi.active_database() gives the database (or transaction) of the innermost `async with`",
        "the context holds the active database, not a driver",
    ),
    "ommi.use_driver": Removed(
        "`async with db:` (or `async with db.transaction() as t:`) makes it the active database of the context",
        "the database object is what model methods and lazy relations use",
    ),
    "ommi.BaseDriver": Moved("ommi.drivers:Driver", "a driver implements a different interface now"),
    "ommi.BaseDriverTransaction": Moved(
        "ommi.drivers:DriverTransaction", "a driver implements a different interface now"
    ),
    # -- ommi.contextual_method -------------------------------------------------------
    "ommi.contextual_method.ContextualMethod": Removed(
        "a classmethod or a plain method", "it was an internal helper of the 0.2 model base class"
    ),
    "ommi.contextual_method.contextual_method": Removed(
        "a classmethod or a plain method", "it was an internal helper of the 0.2 model base class"
    ),
    # -- ommi.database ----------------------------------------------------------------
    "ommi.database.Ommi": KEPT,
    "ommi.database.DBResult": Moved("ommi:DBResult"),
    "ommi.database.DBQueryResult": Moved("ommi:DBQueryResult"),
    "ommi.database.OmmiTransaction": Moved("ommi:Transaction", "get one from db.transaction()"),
    "ommi.database.ommi.Ommi": Moved("ommi:Ommi"),
    "ommi.database.results.DBResult": Moved("ommi:DBResult"),
    "ommi.database.results.DBSuccess": Moved("ommi:DBResult.DBSuccess", "its value is .value"),
    "ommi.database.results.DBFailure": Moved("ommi:DBResult.DBFailure"),
    "ommi.database.results.DBResultBuilder": Moved("ommi.results:DBAction"),
    "ommi.database.results.DBStatusNoResultException": Moved("ommi:DBStatusNoResultException"),
    "ommi.database.query_results.DBQueryResult": Moved("ommi:DBQueryResult"),
    "ommi.database.query_results.DBQuerySuccess": Moved("ommi:DBQueryResult.DBQuerySuccess", "its value is .value"),
    "ommi.database.query_results.DBQueryFailure": Moved("ommi:DBQueryResult.DBQueryFailure"),
    "ommi.database.query_results.DBQueryResultBuilder": Moved("ommi.query:FindQuery"),
    "ommi.database.query_results.WrapInResult": Removed(
        "the actions of a query (.all, .one, .count...) are ommi.results.DBAction objects",
        "it was the internal decorator that made those actions",
    ),
    "ommi.database.query_results.DBEmptyQueryException": Removed(
        "catch ommi.DBStatusNoResultException, which .one raises when nothing matches",
        "0.2 defined it but never raised it",
    ),
    "ommi.database.transaction.OmmiTransaction": Moved("ommi:Transaction", "get one from db.transaction()"),
    # -- ommi.database_actions ------------------------------------------------------------
    **{
        f"ommi.database_actions.{name}": Removed(
            "db.find(...).delete / .update(...) and db.add(...), which give ommi.results.DBAction objects",
            "0.2's Ommi class did not use it",
        )
        for name in ("Action", "ActionBuilder", "ActionCallable")
    },
    # -- ommi.database_statuses -----------------------------------------------------------
    **{
        f"ommi.database_statuses.{name}": Removed(
            "ommi.DBResult (DBResult.DBSuccess(value) / DBResult.DBFailure(exception), .or_raise(), .or_use(default))",
            "0.2's Ommi class did not use it; ommi.DBResult and ommi.DBQueryResult are the result types",
        )
        for name in (
            "DBStatusException",
            "DBStatusNoValueException",
            "DatabaseStatus",
            "DatabaseSuccess",
            "DatabaseFailure",
            "DatabaseResult",
            "database_status",
            "AsyncCallable",
            "DecoratorCallable",
        )
    },
    # -- ommi.driver_context --------------------------------------------------------------
    "ommi.driver_context.active_driver": Removed(
        "ommi.active_database() gives the database (or transaction) of the innermost `async with`",
        "the context holds the active database, not a driver",
    ),
    "ommi.driver_context.UseDriver": Removed(
        "`async with db:` (or `async with db.transaction() as t:`) makes it the active database of the context",
        "the database object is what model methods and lazy relations use",
    ),
    "ommi.driver_context.use_driver": Removed(
        "`async with db:` (or `async with db.transaction() as t:`) makes it the active database of the context",
        "the database object is what model methods and lazy relations use",
    ),
    # -- ommi.drivers: served once ommi/drivers/__init__.py has the __getattr__ hook and -----
    # -- drivers.py, exceptions.py and transactions.py shim modules sit beside it ---------
    "ommi.drivers.BaseDriver": Moved("ommi.drivers:Driver", "a driver implements a different interface now"),
    "ommi.drivers.BaseDriverTransaction": Moved(
        "ommi.drivers:DriverTransaction", "a driver implements a different interface now"
    ),
    "ommi.drivers.drivers.BaseDriver": Moved("ommi.drivers:Driver", "a driver implements a different interface now"),
    "ommi.drivers.transactions.BaseDriverTransaction": Moved(
        "ommi.drivers:DriverTransaction", "a driver implements a different interface now"
    ),
    "ommi.drivers.exceptions.BaseDriverException": Moved("ommi.errors:DatabaseError"),
    "ommi.drivers.exceptions.DriverConnectFailed": Moved("ommi.errors:ConnectionError"),
    "ommi.drivers.exceptions.DriverAddFailed": Moved("ommi.errors:DatabaseError"),
    "ommi.drivers.exceptions.DriverQueryFailed": Moved("ommi.errors:DatabaseError"),
    "ommi.drivers.exceptions.DriverModelNotFound": Moved("ommi.errors:DBStatusNoResultException"),
    "ommi.drivers.exceptions.DriverOperationError": Moved("ommi.errors:OperationalError"),
    "ommi.drivers.exceptions.ModelInsertError": Moved("ommi.errors:DatabaseError"),
    "ommi.drivers.exceptions.ModelUpdateError": Moved("ommi.errors:DatabaseError"),
    "ommi.drivers.exceptions.SchemaError": Moved("ommi.errors:SchemaError"),
    "ommi.drivers.exceptions.TransactionError": Moved("ommi.errors:TransactionError"),
    "ommi.drivers.exceptions.LockError": Moved("ommi.errors:DatabaseError"),
    "ommi.drivers.exceptions.UnsupportedError": Moved("ommi.errors:UnsupportedFeature"),
    # -- ommi.ext.drivers.* ---------------------------------------------------------------------
    "ommi.ext.drivers.sqlite.SQLiteDriver": Moved("ommi_sqlite:SQLiteDriver", _CONNECT),
    "ommi.ext.drivers.sqlite.SQLiteTransaction": Moved("ommi_sqlite:SQLiteTransaction"),
    "ommi.ext.drivers.sqlite.SQLiteSettings": Removed(
        "SQLiteDriver.connect('app.db') or ommi.connect('sqlite:///app.db'); settings as keywords or a mapping",
        "the settings are given to connect() directly",
    ),
    "ommi.ext.drivers.postgresql.PostgreSQLDriver": Moved("ommi_postgresql:PostgreSQLDriver", _CONNECT),
    "ommi.ext.drivers.postgresql.PostgreSQLTransaction": Moved("ommi_postgresql:PostgreSQLTransaction"),
    "ommi.ext.drivers.postgresql.PostgreSQLSettings": Removed(
        "PostgreSQLDriver.connect('postgresql://user@host/db') or ommi.connect('postgresql://user@host/db')",
        "the settings are given to connect() directly",
    ),
    "ommi.ext.drivers.mongodb.MongoDBDriver": Moved("ommi_mongodb:MongoDBDriver", _CONNECT),
    "ommi.ext.drivers.mongodb.MongoDBSettings": Removed(
        "MongoDBDriver.connect('mongodb://host:27017/db') or ommi.connect('mongodb://host:27017/db')",
        "the settings are given to connect() directly",
    ),
    # -- ommi.models ------------------------------------------------------------------------
    "ommi.models.ommi_model": KEPT,
    "ommi.models.OmmiModel": Removed(
        "ommi.models.is_model(cls) to test a class; inherit ommi.ModelMethods to declare save/delete/reload",
        "@ommi_model returns your class itself, with no base class added",
    ),
    "ommi.models.collections.ModelCollection": KEPT,
    "ommi.models.collections.get_global_collection": KEPT,
    "ommi.models.field_metadata.Key": Moved("ommi:Key"),
    "ommi.models.field_metadata.Auto": Moved("ommi:Auto"),
    "ommi.models.field_metadata.StoreAs": Moved("ommi:StoreAs"),
    "ommi.models.field_metadata.ReferenceTo": Moved("ommi:ReferenceTo"),
    "ommi.models.field_metadata.FieldMetadata": Moved("ommi.models.metadata:FieldMetadata"),
    "ommi.models.field_metadata.FieldType": Removed(
        "annotate the field with its type alone (`age: int`)",
        "a field's type is read from its annotation",
    ),
    "ommi.models.field_metadata.AggregateMetadata": Removed(
        "combine markers with | (`Key | Auto`), which gives an ommi.models.metadata.MetadataSet",
        "markers are combined with | only",
    ),
    "ommi.models.field_metadata.MetadataFlag": Removed(
        "the markers Ommi defines (ommi.Key, ommi.Auto, ommi.TimezoneAware)",
        "Ommi reads only its own markers",
    ),
    "ommi.models.field_metadata.create_metadata_type": Removed(
        "the markers Ommi defines (ommi.Key, ommi.Auto, ommi.StoreAs, ommi.ReferenceTo)",
        "Ommi reads only its own markers",
    ),
    "ommi.models.field_metadata.create_metadata_flag": Removed(
        "the markers Ommi defines (ommi.Key, ommi.Auto, ommi.TimezoneAware)",
        "Ommi reads only its own markers",
    ),
    "ommi.models.metadata.OmmiMetadata": Removed(
        "ommi.models.get_schema(Model), a ModelSchema (.name, .fields, .key, .collection)",
        "a model's metadata is its schema",
    ),
    "ommi.models.models.ommi_model": Moved("ommi:ommi_model"),
    "ommi.models.models.OmmiModel": Removed(
        "ommi.models.is_model(cls) to test a class; inherit ommi.ModelMethods to declare save/delete/reload",
        "@ommi_model returns your class itself, with no base class added",
    ),
    "ommi.models.models.QueryFieldMetadata": Removed(
        "ommi.models.get_schema(Model).relations", "lazy relations are part of the model's schema"
    ),
    "ommi.models.models.get_collection": Removed(
        "ommi.models.get_schema(Model).collection, or ommi.get_global_collection()",
        "a model's collection is part of its schema",
    ),
    "ommi.models.models.DRIVER_DUNDER_NAME": Removed(
        "ommi.active_database() (a model holds no driver)", "models run on the active database"
    ),
    "ommi.models.models.MODEL_NAME_DUNDER_NAME": Removed(
        "@ommi_model(name='table_name') instead of __ommi_model_name__", "the stored name is a decorator argument"
    ),
    "ommi.models.models.MODEL_NAME_CLASS_PARAM": Removed(
        "@ommi_model(name='table_name')", "the stored name is a decorator argument"
    ),
    "ommi.models.models.METADATA_DUNDER_NAME": Removed(
        "ommi.models.get_schema(Model) (the schema is kept in Model.__ommi__)", "a model's metadata is its schema"
    ),
    "ommi.models.query_fields.LazyLoadTheRelated": Moved("ommi:LazyLoadTheRelated", "typed: ClassVar[ommi.LazyOne[T]]"),
    "ommi.models.query_fields.LazyLoadEveryRelated": Moved(
        "ommi:LazyLoadEveryRelated", "typed: ClassVar[ommi.LazyMany[T]]"
    ),
    "ommi.models.query_fields.AssociateUsing": Moved("ommi:AssociateUsing", "the association model needs a Key"),
    "ommi.models.query_fields.LazyQueryField": Removed(
        "ommi.LazyOne / ommi.LazyMany, the handles `post.author` and `user.posts` give",
        "relations are declared with LazyLoadTheRelated / LazyLoadEveryRelated only",
    ),
    "ommi.models.query_fields.QueryStrategy": Removed(
        "ReferenceTo fields, or AssociateUsing(Model) for a many-to-many relation",
        "how related rows are found is derived from the ReferenceTo fields",
    ),
    "ommi.models.query_fields.AssociateOnReference": Removed(
        "nothing: a relation follows the ReferenceTo fields by default",
        "how related rows are found is derived from the ReferenceTo fields",
    ),
    "ommi.models.queryable_descriptors.QueryableFieldDescriptor": Removed(
        "ommi.models.Field, what `Model.field` read on the class is (ommi.field(Model.field) types it)",
        "it was an internal descriptor",
    ),
    **{
        f"ommi.models.references.{name}": Removed(
            "ommi.models.get_schema(Model).fields, each with its .reference",
            "references are resolved into the model's fields",
        )
        for name in ("LazyReferencesState", "FieldReference", "LazyReferenceBuilder")
    },
    # -- ommi.query_ast ---------------------------------------------------------------------
    "ommi.query_ast.when": Moved("ommi:when", "it takes conditions only: name the model in db.find(Model, ...)"),
    "ommi.query_ast.ASTGroupNode": Moved(
        "ommi.query:Expr", "it has no .sort/.limit: sort and limit the query, db.find(...).sort(...).limit(n)"
    ),
    "ommi.query_ast.ASTComparisonNode": Moved("ommi.query:Comparison"),
    "ommi.query_ast.ASTReferenceNode": Moved("ommi.models:Field"),
    "ommi.query_ast.ASTNode": Removed("ommi.query.Expr, the base class of every condition", "the tree was redesigned"),
    "ommi.query_ast.ASTComparableNode": Removed(
        "ommi.query.ast.Operand, the operators of a field", "the tree was redesigned"
    ),
    "ommi.query_ast.ASTLiteralNode": Removed(
        "ommi.query.Comparison.value, which holds the value itself", "the tree was redesigned"
    ),
    "ommi.query_ast.ASTLogicalOperatorNode": Removed(
        "the ommi.query.And and ommi.query.Or nodes", "the tree was redesigned"
    ),
    "ommi.query_ast.ASTOperatorNode": Removed(
        "ommi.query.Op (EQ, NE, LT, LE, GT, GE, IN, ...), the .op of an ommi.query.Comparison",
        "the tree was redesigned",
    ),
    "ommi.query_ast.ASTGroupFlagNode": Removed(
        "the ommi.query.And and ommi.query.Or nodes, which nest", "the tree was redesigned"
    ),
    "ommi.query_ast.ResultOrdering": Removed(
        "ommi.asc(Model.field) / ommi.desc(Model.field), giving an ommi.query.SortKey", "the tree was redesigned"
    ),
    # -- ommi.shared_types, ommi.utils.get_first -----------------------------------------------
    "ommi.shared_types.DBModel": Removed(
        "your model class, or typing.Any (ommi.models.is_model(obj) tests one)", "models have no common base class"
    ),
    "ommi.utils.get_first.first": Removed("next(iter(items), default)", "it was an internal helper"),
}
"""Every public name of Ommi 0.2.2, by its dotted 0.2.2 path."""

OLD_MODULES: tuple[str, ...] = (
    "ommi",
    "ommi.contextual_method",
    "ommi.database",
    "ommi.database.ommi",
    "ommi.database.query_results",
    "ommi.database.results",
    "ommi.database.transaction",
    "ommi.database_actions",
    "ommi.database_statuses",
    "ommi.driver_context",
    "ommi.drivers",
    "ommi.drivers.drivers",
    "ommi.drivers.exceptions",
    "ommi.drivers.transactions",
    "ommi.ext",
    "ommi.ext.drivers",
    "ommi.ext.drivers.mongodb",
    "ommi.ext.drivers.postgresql",
    "ommi.ext.drivers.sqlite",
    "ommi.models",
    "ommi.models.collections",
    "ommi.models.field_metadata",
    "ommi.models.metadata",
    "ommi.models.models",
    "ommi.models.query_fields",
    "ommi.models.queryable_descriptors",
    "ommi.models.references",
    "ommi.query_ast",
    "ommi.shared_types",
    "ommi.utils",
    "ommi.utils.get_first",
)
"""Every public module path of Ommi 0.2.2 that users import.

Left out: the modules inside each 0.2.2 driver package
(``ommi.ext.drivers.sqlite.add_query``...), which were the drivers' internals.
"""

_SUBMODULES = frozenset(m for m in OLD_MODULES if "." in m)

_warned: set[str] = set()
"""The old names that have warned in this process (each warns once)."""


def spelling(target: str) -> str:
    """``"ommi.drivers:Driver"`` as written in code: ``ommi.drivers.Driver``."""
    return target.replace(":", ".")


def resolve(target: str) -> Any:
    """The object ``target`` (``"module:attribute.path"``) names, importing its module.

    Raises:
        ImportError: the module is in a distribution that is not installed
            (``ommi_sqlite``); the message names the distribution.
    """
    module_name, _, path = target.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.partition(".")[0]
        if exc.name != top:
            raise
        distribution = top.replace("_", "-")
        raise ImportError(
            f"{spelling(target)} is in the {distribution} distribution, which is not installed: "
            f"pip install {distribution}",
            name=module_name,
        ) from exc
    for part in path.split("."):
        value = getattr(value, part)
    return value


def attribute(module: str, name: str) -> Any:
    """What ``module.name`` is when ``module`` lacks it: the ``__getattr__`` of every shim.

    Raises:
        RemovedImportError: ``name`` is an Ommi 0.2 name that was removed.
        AttributeError: ``name`` was never a name of ``module``.
    """
    old = f"{module}.{name}"
    entry = OLD_NAMES.get(old)
    if isinstance(entry, Moved):
        value = resolve(entry.target)
        if old not in _warned:
            _warned.add(old)
            note = f" ({entry.note})" if entry.note else ""
            warnings.warn(
                f"{old} is deprecated: use {entry.new}{note}. This Ommi 0.2 path keeps working, with this "
                f"warning, until a later release removes it; {GUIDE}.",
                OmmiDeprecationWarning,
                stacklevel=3,
            )
        return value
    if isinstance(entry, Removed):
        raise RemovedImportError(f"{old} was removed in Ommi 1.0 ({entry.why}). Instead: {entry.use}; {GUIDE}.")
    if old in _SUBMODULES:  # 0.2 reached its submodules as attributes (ommi.query_ast after `import ommi`)
        return importlib.import_module(old)
    if module == "ommi.database" and name == "__path__":
        # ommi.database is a module now; this makes `import ommi.database.results` find the shims in ./database.
        return [str(Path(__file__).with_name("database"))]
    raise AttributeError(f"module {module!r} has no attribute {name!r}", name=name, obj=sys.modules.get(module))
