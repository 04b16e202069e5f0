"""Shared set-up of the MongoDB driver's tests: the server, its identity, and the nx-27017 marker.

The server comes from ``OMMI_TEST_MONGODB_URL`` (else a MongoDB on the loopback
default port is tried). When it cannot be reached every test here skips with
one line saying so; with ``--ommi-require-servers`` (CI) it fails instead.

Each pytest-xdist worker (and each run) works in a database of its own,
whatever database the URL names.

``nx-27017`` is the MongoDB wire-protocol server CI runs, since no MongoDB can
be installed there. It answers some queries wrongly. A test that needs real
MongoDB behaviour carries ``@pytest.mark.needs_real_mongodb(reason=...)`` (or is
listed in a test class's ``needs_real_mongodb`` table): it skips, with the
reason, only when the server identifies itself as nx-27017 in its ``buildInfo``
reply, and runs everywhere else. ommi-mongodb's README lists every such test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from ommi import ModelCollection, Ommi
from ommi_mongodb import MongoDBDriver
from ommi_testkit.servers import accepts_tcp, server_url, worker_namespace
from pymongo import AsyncMongoClient, MongoClient

ENV_VAR = "OMMI_TEST_MONGODB_URL"
DEFAULT_URL = "mongodb://127.0.0.1:27017/"
NX_27017 = "nx_27017"
"""What nx-27017 reports as ``process`` in its ``buildInfo`` reply."""

MARKER = "needs_real_mongodb"


@dataclass(frozen=True)
class ServerIdentity:
    """What the test server said about itself."""

    version: str
    process: str | None
    standalone: bool

    @property
    def is_nx_27017(self) -> bool:
        """Whether the server is nx-27017 rather than MongoDB."""
        return self.process is not None and self.process.replace("-", "_").lower() == NX_27017


async def _probe(url: str) -> None:
    # Before PyMongo, whose asyncio client leaks a socket when closed while
    # still trying to reach an absent server (the ResourceWarning would fail
    # an unrelated test).
    await accepts_tcp(url, 27017)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, serverSelectionTimeoutMS=2000)
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(reason): the test needs real MongoDB behaviour that nx-27017 gets wrong; "
        "it skips with the reason only when the server is nx-27017",
    )


def _check_table(cls: type) -> dict[str, str]:
    """A class's ``needs_real_mongodb`` table; unknown test names and missing reasons are errors."""
    table: dict[str, str] = getattr(cls, "needs_real_mongodb", {})
    unknown = sorted(
        n for n in table if not (n.startswith("test_") and callable(getattr(cls, n.partition("[")[0], None)))
    )
    if unknown:
        raise pytest.UsageError(f"{cls.__name__}.needs_real_mongodb names unknown tests: {unknown}")
    empty = sorted(n for n, reason in table.items() if not isinstance(reason, str) or not reason.strip())
    if empty:
        raise pytest.UsageError(f"{cls.__name__}.needs_real_mongodb needs a reason for {empty}")
    return table


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the (inherited) tests named in their class's ``needs_real_mongodb`` table.

    A key is a test's name (all its parameters) or its id (``test_x[param]``).
    """
    tables: dict[type, dict[str, str]] = {}
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is None:
            continue
        if cls not in tables:
            tables[cls] = _check_table(cls)
        table = tables[cls]
        name = getattr(item, "originalname", item.name)
        reason = table.get(item.name, table.get(name))
        if reason is not None:
            item.add_marker(getattr(pytest.mark, MARKER)(reason=reason))


@pytest.fixture(scope="session")
def mongodb_url() -> str:
    """The URL of a reachable MongoDB (or compatible) server; skips the test otherwise."""
    return server_url(ENV_VAR, DEFAULT_URL, probe=_probe, what="MongoDB")


@pytest.fixture(scope="session")
def mongodb_server(mongodb_url: str) -> ServerIdentity:
    """What the server says about itself in its ``hello`` and ``buildInfo`` replies."""
    with MongoClient(mongodb_url, serverSelectionTimeoutMS=5000) as client:
        hello = client.admin.command("hello")
        build = client.admin.command("buildInfo")
    process = build.get("process")
    return ServerIdentity(
        version=str(build.get("version", "unknown")),
        process=str(process) if process is not None else None,
        standalone="setName" not in hello and hello.get("msg") != "isdbgrid",
    )


@pytest.fixture(scope="session")
def mongodb_database() -> str:
    """The database of this test run and xdist worker."""
    return worker_namespace("ommi_test", unique=True)


@pytest.fixture(autouse=True)
def _skip_where_nx_27017_is_wrong(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return
    identity: ServerIdentity = request.getfixturevalue("mongodb_server")
    if identity.is_nx_27017:
        reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
        pytest.skip(f"nx-27017 {identity.version} gets this wrong: {reason}")


NX_27017_COLLECTION_PREFIX = "c_"
"""Put before collection names on nx-27017, which splices them unquoted into SQL.

nx-27017 fails every command on a collection named after an SQL keyword
(``near "order": syntax error``), and the testkit's ``Order`` model is stored as
``order``. On nx-27017 the tests therefore give the driver this
``collection_prefix`` (a driver setting, so nothing else changes); on MongoDB
they use the model names as they are, and ``test_keyword_collection_names``
checks such names directly there.
"""


@pytest.fixture
def make_driver(
    mongodb_url: str, mongodb_database: str, mongodb_server: ServerIdentity
) -> Callable[..., MongoDBDriver]:
    """``make_driver(**settings)``: a new unopened driver on the test database."""
    prefix = NX_27017_COLLECTION_PREFIX if mongodb_server.is_nx_27017 else ""

    def make(**settings: Any) -> MongoDBDriver:
        settings.setdefault("collection_prefix", prefix)
        return MongoDBDriver.connect(mongodb_url, database=mongodb_database, **settings)

    return make


@pytest_asyncio.fixture
async def open_db(make_driver: Callable[..., MongoDBDriver]) -> AsyncIterator[Callable[..., Awaitable[Ommi]]]:
    """``await open_db(collection, **settings)``: an open ``Ommi`` with ``collection``'s models set up afresh.

    Every database it opened has the collection's models dropped and is closed
    after the test.
    """
    opened: list[tuple[Ommi, ModelCollection]] = []

    async def open_(collection: ModelCollection, **settings: Any) -> Ommi:
        database = Ommi(make_driver(**settings))
        await database.open()
        opened.append((database, collection))
        await database.remove_models(collection)
        await database.use_models(collection)
        return database

    yield open_
    for database, collection in reversed(opened):
        try:
            await database.remove_models(collection)
        finally:
            await database.close()
