"""The driver itself: settings, connection, plugin registration, transactions, errors, schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import ommi
import pytest
from ommi import (
    ConfigurationError,
    ConnectionError,
    ModelCollection,
    Ommi,
    ReferenceTo,
    SchemaMismatchError,
    UnsupportedFeature,
    ommi_model,
)
from ommi.models import get_schema
from ommi.query.ast import Query
from ommi_mongodb import MongoDBDriver
from ommi_testkit.servers import collect_abandoned_sockets
from pymongo import errors as pymongo_errors
from pymongo.asynchronous.database import AsyncDatabase

models = ModelCollection("ommi_mongodb_test_driver")

OpenDb = Callable[..., Awaitable[Ommi]]


@ommi_model(collection=models, name="mdb_author")
@dataclass
class Author:
    """The referenced side of a relation."""

    name: str
    id: int | None = None


@ommi_model(collection=models, name="mdb_book")
@dataclass
class Book:
    """The referencing side: ``author_id`` gets an index."""

    title: str
    author_id: Annotated[int | None, ReferenceTo(Author)] = None
    id: int | None = None


def _driver(db: Ommi) -> MongoDBDriver:
    assert isinstance(db.driver, MongoDBDriver)
    return db.driver


# -- settings (no I/O) -------------------------------------------------------


def test_settings_database_from_url_path() -> None:
    """The database comes from the URL path; ``database=`` overrides it."""
    assert MongoDBDriver.connect("mongodb://127.0.0.1:27017/app?maxPoolSize=5").settings.database == "app"
    assert MongoDBDriver.connect("mongodb://u:p@h1:1,h2:2/app", database="other").settings.database == "other"
    assert MongoDBDriver.connect({"url": "mongodb://127.0.0.1/x", "database": "y"}).settings.database == "y"


def test_settings_srv_scheme_is_accepted_without_io() -> None:
    """``mongodb+srv://`` URLs build a driver without any DNS lookup (that happens at open)."""
    driver = MongoDBDriver.connect("mongodb+srv://cluster.invalid/app")
    assert driver.settings.database == "app"
    assert driver.settings.url.startswith("mongodb+srv://")


def test_settings_client_options_pass_through() -> None:
    """Unknown keys (pool settings...) go to AsyncMongoClient; the value mapping's options are fixed."""
    driver = MongoDBDriver.connect("mongodb://127.0.0.1/app", maxPoolSize=7, minPoolSize=1)
    assert driver.settings.client_options["maxPoolSize"] == 7
    assert driver.settings.client_options["minPoolSize"] == 1
    assert driver.settings.client_options["uuidRepresentation"] == "standard"
    with pytest.raises(ConfigurationError, match="uuidRepresentation"):
        MongoDBDriver.connect("mongodb://127.0.0.1/app", uuidRepresentation="pythonLegacy")


def test_settings_password_never_shown() -> None:
    """The description of a driver hides the URL's password."""
    driver = MongoDBDriver.connect("mongodb://user:s3cret@127.0.0.1:27017/app")
    assert "s3cret" not in driver.description
    assert "user:***@" in driver.description


@pytest.mark.parametrize(
    ("settings", "options", "message"),
    [
        ("postgresql://127.0.0.1/app", {}, "mongodb://"),
        ("mongodb://127.0.0.1/app", {"batch_size": 0}, "batch_size"),
        ("mongodb://127.0.0.1/a.b", {}, "database name"),
        ("mongodb://127.0.0.1/app", {"counters_collection": "$bad"}, "counters_collection"),
        (42, {}, "URL or a mapping"),
    ],
)
def test_settings_rejected(settings: Any, options: dict[str, Any], message: str) -> None:
    """Unusable settings raise ConfigurationError naming the problem."""
    with pytest.raises(ConfigurationError, match=message):
        MongoDBDriver.connect(settings, **options)


async def test_settings_missing_database_fails_at_open() -> None:
    """A URL without a database builds a driver, which refuses to open and says how to name one."""
    driver = MongoDBDriver.connect("mongodb://127.0.0.1:1/")
    with pytest.raises(ConfigurationError, match="database"):
        await driver.open()
    await driver.close()


def test_plugin_serves_mongodb_urls(mongodb_url: str, mongodb_database: str) -> None:
    """``ommi.connect`` picks this driver for mongodb:// and mongodb+srv:// URLs."""
    db = ommi.connect(mongodb_url, database=mongodb_database)
    assert isinstance(db.driver, MongoDBDriver)
    assert isinstance(ommi.connect("mongodb+srv://cluster.invalid/app").driver, MongoDBDriver)
    assert any(info.name == "mongodb" and "mongodb+srv" in info.schemes for info in ommi.drivers())


def test_plugin_module_does_not_import_pymongo() -> None:
    """Importing the plugin module (as Ommi does to list drivers) leaves PyMongo unimported."""
    code = "import sys, ommi_mongodb.plugin; print('pymongo' in sys.modules or 'bson' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- connection --------------------------------------------------------------


async def _refused_open() -> tuple[type[BaseException] | None, type[BaseException] | None, str]:
    """Open a driver on a port where nothing listens; what was raised, and what it was chained to."""
    driver = MongoDBDriver.connect("mongodb://127.0.0.1:1/app", serverSelectionTimeoutMS=300)
    try:
        await driver.open()
    except Exception as exc:
        return type(exc), type(exc.__cause__) if exc.__cause__ is not None else None, str(exc)
    finally:
        await driver.close()
    return None, None, ""


async def test_connection_refused_is_connection_error() -> None:
    """A server that does not answer makes ``open`` raise ConnectionError chained to PyMongo's error."""
    raised, cause, message = await _refused_open()
    assert raised is ConnectionError
    assert cause is not None and issubclass(cause, pymongo_errors.ConnectionFailure)
    assert "127.0.0.1:1" in message
    # PyMongo's asyncio client leaks a socket when it is closed while its monitor
    # is still connecting to an absent server: collect it here, where it belongs.
    await collect_abandoned_sockets()


async def test_connection_pool_settings_reach_the_client(make_driver: Callable[..., MongoDBDriver]) -> None:
    """Pool settings given to ``connect`` configure the AsyncMongoClient's own pool."""
    driver = make_driver(maxPoolSize=7, minPoolSize=0, appname="pool-check")
    await driver.open()
    try:
        assert driver._client is not None
        assert driver._client.options.pool_options.max_pool_size == 7
        assert driver._client.options.pool_options.min_pool_size == 0
        assert driver.server_info["buildInfo"].get("version")
    finally:
        await driver.close()


async def test_connection_close_is_idempotent(make_driver: Callable[..., MongoDBDriver]) -> None:
    """``close`` twice, or on a driver never opened, is harmless; a closed driver refuses work."""
    driver = make_driver()
    await driver.close()
    await driver.open()
    await driver.close()
    await driver.close()
    with pytest.raises(ConnectionError, match="not open"):
        await driver.count(Query(get_schema(Author)))


# -- transactions -----------------------------------------------------------


async def test_transactions_unsupported_on_standalone_server(
    make_driver: Callable[..., MongoDBDriver], mongodb_server: Any
) -> None:
    """On a standalone server the capability is absent once opened and ``db.transaction()`` says why."""
    if not mongodb_server.standalone:
        pytest.skip("the test server is a replica set or sharded cluster: it has transactions")
    driver = make_driver()
    assert MongoDBDriver.capabilities.transactions, "the class declares what MongoDB can do"
    async with Ommi(driver) as db:
        assert driver.capabilities.transactions is False
        assert driver.capabilities.transaction_isolation is False
        with pytest.raises(UnsupportedFeature, match=r"'transactions' is absent.*server is standalone"):
            db.transaction()
        with pytest.raises(UnsupportedFeature, match="server is standalone"):
            await driver.begin()
    assert MongoDBDriver.capabilities.transactions, "opening never changes the class's capabilities"


async def test_transactions_available_on_replica_set(
    make_driver: Callable[..., MongoDBDriver], mongodb_server: Any
) -> None:
    """On a replica set (or mongos) the driver keeps the ``transactions`` capability."""
    if mongodb_server.standalone:
        pytest.skip("the test server is standalone: MongoDB has no transactions there")
    async with Ommi(make_driver()) as db:
        assert db.driver.capabilities.transactions is True


# -- schema -------------------------------------------------------------------


async def test_schema_reference_fields_are_indexed(open_db: OpenDb) -> None:
    """``use_models`` creates an index on each ReferenceTo field."""
    db = await open_db(models)
    driver = _driver(db)
    collection = driver._database()[driver.collection_name(get_schema(Book))]
    keys = [list(info["key"]) async for info in await collection.list_indexes()]
    assert ["author_id"] in keys


async def test_schema_conflicting_index_is_mismatch(open_db: OpenDb) -> None:
    """An existing index on the same field that is unique (the model wants a plain one) is a mismatch."""
    db = await open_db(models)
    driver = _driver(db)
    await db.remove_models(models)
    collection = driver._database()[driver.collection_name(get_schema(Book))]
    await collection.create_index([("author_id", 1)], unique=True, name="someone_elses")
    await collection.insert_one({"_id": 1, "title": "kept", "author_id": None})
    with pytest.raises(SchemaMismatchError, match="author_id") as info:
        await db.use_models(models)
    assert "mdb_book" in str(info.value)
    assert await collection.count_documents({}) == 1, "nothing was dropped"


async def test_schema_use_models_never_drops_documents(open_db: OpenDb) -> None:
    """``use_models`` again keeps every document."""
    db = await open_db(models)
    await db.add(Author("kept")).or_raise()
    await db.use_models(models)
    await db.use_models(models)
    assert await db.find(Author).count.or_raise() == 1


# -- the native handle (db.raw is SQL only) ---------------------------------------------


async def test_raw_is_unsupported_and_names_the_native_database(open_db: OpenDb) -> None:
    """``db.raw`` raises UnsupportedFeature naming ``db.driver.database``, which is the PyMongo AsyncDatabase in use."""
    db = await open_db(models)
    await db.add(Author("Ann")).or_raise()
    result = await db.raw("SELECT 1")
    assert isinstance(result.exception, UnsupportedFeature)
    assert "raw_sql" in str(result.exception) and "db.driver.database" in str(result.exception)
    database = _driver(db).database
    assert isinstance(database, AsyncDatabase)
    collection = database[_driver(db).collection_name(get_schema(Author))]
    assert [d["name"] async for d in collection.find({}, projection={"name": 1})] == ["Ann"]


async def test_database_handle_needs_an_open_driver(make_driver: Callable[..., MongoDBDriver]) -> None:
    """``driver.database`` before ``open()`` is a ConnectionError, not ``None``."""
    with pytest.raises(ConnectionError, match="not open"):
        _ = make_driver().database


async def test_values_reads_projected_fields_with_the_rules_of_whole_documents(open_db: OpenDb) -> None:
    """``.values`` reads only the projected paths; a required field absent there is SchemaMismatchError naming it."""
    db = await open_db(models)
    ann = await db.add(Author("Ann")).or_raise()
    await db.add(Book("one", ann.id), Book("two")).or_raise()
    assert await db.find(Book).sort(Book.title).values(Book.author_id, Book.title).to_list() == [
        (ann.id, "one"),
        (None, "two"),
    ]
    collection = _driver(db).database[_driver(db).collection_name(get_schema(Book))]
    await collection.insert_one({"_id": 99})  # written by another program: no title
    assert await db.find(Book, Book.id == 99).values(Book.id, Book.author_id).to_list() == [(99, None)]
    result = await db.find(Book, Book.id == 99).values(Book.title)
    assert isinstance(result.exception, SchemaMismatchError)
    assert "Book.title" in str(result.exception) and "99" in str(result.exception)
