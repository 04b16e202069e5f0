"""The backends the reliability tests run on, and their isolation per pytest-xdist worker.

``backend`` is parametrised indirectly with ``reference``, ``sqlite``,
``postgresql`` and ``mongodb``. The servers come from
``OMMI_TEST_POSTGRESQL_URL`` / ``OMMI_TEST_MONGODB_URL`` (else the loopback
defaults); an unreachable server skips its backend with one line, or fails
it under ``--ommi-require-servers``. Each worker gets a PostgreSQL schema and
a MongoDB database of its own, dropped at the end of the session; SQLite
databases are files in the test's temporary directory.

The sizes come from ``OMMI_RELIABILITY_PROFILE`` (``quick`` unless set).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ommi import Ommi
from ommi.drivers import Driver
from ommi_testkit.reference import ReferenceDriver, ReferenceStore
from ommi_testkit.reliability import Profile, current_profile
from ommi_testkit.reliability.faults import MongoPoolListener, postgresql_probe, reference_probe
from ommi_testkit.reliability.workloads import Probe
from ommi_testkit.servers import accepts_tcp, collect_abandoned_sockets, scratch_namespace, server_url

POSTGRESQL_ENV = "OMMI_TEST_POSTGRESQL_URL"
POSTGRESQL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
MONGODB_ENV = "OMMI_TEST_MONGODB_URL"
MONGODB_DEFAULT = "mongodb://127.0.0.1:27017/"


async def _probe_postgresql(url: str) -> None:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, connect_timeout=3)
    await conn.close()


async def _probe_mongodb(url: str) -> None:
    from pymongo import AsyncMongoClient

    await accepts_tcp(url, 27017)  # before PyMongo, which leaks a socket when the server is absent
    client: Any = AsyncMongoClient(url, serverSelectionTimeoutMS=2000)
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


@pytest.fixture(scope="session")
def profile() -> Profile:
    """The reliability profile of this run (``OMMI_RELIABILITY_PROFILE``)."""
    return current_profile()


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    return server_url(POSTGRESQL_ENV, POSTGRESQL_DEFAULT, probe=_probe_postgresql, what="PostgreSQL")


@pytest.fixture(scope="session")
def postgresql_schema(postgresql_url: str) -> Iterator[str]:
    """This worker's schema, created empty and dropped with its contents at the end."""
    with scratch_namespace(postgresql_url, "ommi_reliability") as name:
        yield name


@pytest.fixture(scope="session")
def mongodb_url() -> str:
    return server_url(MONGODB_ENV, MONGODB_DEFAULT, probe=_probe_mongodb, what="MongoDB")


@pytest.fixture(scope="session")
def mongodb_database(mongodb_url: str) -> Iterator[str]:
    """This worker's database, dropped at the end."""
    with scratch_namespace(mongodb_url, "ommi_reliability") as name:
        yield name


@dataclass
class Backend:
    """One backend under test.

    Attributes:
        name: ``reference``, ``sqlite``, ``postgresql`` or ``mongodb``.
        make: ``make(**settings)`` -> a new unopened driver on this test's database.
        url: the database's URL (what a child process connects to; SQLite).
        connections: how many connections the driver lends at once, less one
            for a transaction (the cancellation test's capacity check).
        probe: ``probe(make)`` -> ``(driver, probe)``: a driver built by ``make``
            with whatever instrumentation its probe needs, and the probe that
            counts the connections it holds beyond idle (``None``: the driver
            exposes nothing, and only the capacity check judges leaks).
    """

    name: str
    make: Callable[..., Driver]
    url: str | None = None
    connections: int = 1
    probe: Callable[[Callable[..., Driver]], tuple[Driver, Probe | None]] = lambda make: (make(), None)

    def instrumented(self, **settings: Any) -> tuple[Driver, Probe | None]:
        """A new unopened driver with ``settings``, and its resource probe."""
        return self.probe(lambda **extra: self.make(**{**settings, **extra}))

    @contextlib.asynccontextmanager
    async def contending(self, **settings: Any) -> AsyncIterator[list[Ommi]]:
        """Open databases for a workload of concurrent writers; closed on exit.

        PostgreSQL: one database with a pool of 10. SQLite: three on the one
        file (three writers), waiting up to 30 s for each other's locks. Others:
        one. ``settings`` are added to (and override) those.
        """
        defaults: dict[str, Any] = {}
        copies = 1
        if self.name == "postgresql":
            defaults["pool_max_size"] = 10
        elif self.name == "sqlite":
            defaults["busy_timeout"] = 30.0
            copies = 3
        databases = [Ommi(self.make(**{**defaults, **settings})) for _ in range(copies)]
        try:
            for db in databases:
                await db.open()
            yield databases
        finally:
            for db in databases:
                await db.close()


def _reference() -> Backend:
    store = ReferenceStore()

    def probe(make: Callable[..., Driver]) -> tuple[Driver, Probe | None]:
        driver = make()
        return driver, reference_probe(driver)

    return Backend("reference", lambda **s: ReferenceDriver.connect(store=store, **s), probe=probe)


def _sqlite(tmp_path: Path) -> Backend:
    from ommi_sqlite import SQLiteDriver

    path = tmp_path / "reliability.sqlite"

    def probe(make: Callable[..., Driver]) -> tuple[Driver, Probe | None]:
        driver = make()

        async def held() -> dict[str, int]:
            stats = driver.pool.stats()  # type: ignore[attr-defined]
            return {"readers_lent": stats["readers_lent"], "writer_locked": stats["writer_locked"]}

        return driver, held

    # The default pool_size of 4 readers; the writer serves the capacity check's transaction.
    return Backend(
        "sqlite", lambda **s: SQLiteDriver.connect(str(path), **s), url=f"sqlite:///{path}", connections=4, probe=probe
    )


def _postgresql(request: pytest.FixtureRequest) -> Backend:
    from ommi_postgresql import PostgreSQLDriver

    url = request.getfixturevalue("postgresql_url")
    schema = request.getfixturevalue("postgresql_schema")

    def make(**settings: Any) -> Driver:
        settings.setdefault("schema", schema)
        settings.setdefault("application_name", f"ommi_reliability_{uuid.uuid4().hex[:12]}")
        return PostgreSQLDriver.connect(url, **settings)

    def probe(make: Callable[..., Driver]) -> tuple[Driver, Probe | None]:
        driver = make()
        return driver, postgresql_probe(driver)

    # The pool's default 10 connections: 9 streams and the transaction.
    return Backend("postgresql", make, url=url, connections=9, probe=probe)


def _mongodb(request: pytest.FixtureRequest) -> Backend:
    from ommi_mongodb import MongoDBDriver

    url = request.getfixturevalue("mongodb_url")
    database = request.getfixturevalue("mongodb_database")

    def make(**settings: Any) -> Driver:
        return MongoDBDriver.connect(url, database=database, **settings)

    def probe(make: Callable[..., Driver]) -> tuple[Driver, Probe | None]:
        listener = MongoPoolListener()
        driver = make(event_listeners=[listener.as_listener()])
        return driver, listener.probe

    return Backend("mongodb", make, url=url, connections=9, probe=probe)


@pytest.fixture
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The backend named by the test's indirect parameter."""
    name = request.param
    if name == "reference":
        yield _reference()
    elif name == "sqlite":
        yield _sqlite(tmp_path)
    elif name == "postgresql":
        yield _postgresql(request)
    elif name == "mongodb":
        yield _mongodb(request)
        # Cancelled and killed connections make PyMongo abandon sockets (see
        # collect_abandoned_sockets): collect them in this test, not a later one.
        await collect_abandoned_sockets()
    else:
        raise ValueError(f"unknown backend {name!r}")
