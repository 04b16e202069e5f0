"""Real databases for core's regression tests: the reference driver, a SQLite file and PostgreSQL.

``make_driver`` is parametrised indirectly through the ``backend`` fixture
(``reference``, ``sqlite``, ``postgresql``). PostgreSQL comes from
``OMMI_TEST_POSTGRESQL_URL`` (else the loopback default) and skips with one
line when unreachable (fails under ``--ommi-require-servers``); each run works
in a schema of its own, dropped at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ommi.drivers import Driver
from ommi_testkit.reference import ReferenceDriver, ReferenceStore
from ommi_testkit.servers import server_url, worker_namespace

POSTGRESQL_ENV = "OMMI_TEST_POSTGRESQL_URL"
POSTGRESQL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


async def _probe_postgresql(url: str) -> None:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, connect_timeout=3)
    await conn.close()


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    return server_url(POSTGRESQL_ENV, POSTGRESQL_DEFAULT, probe=_probe_postgresql, what="PostgreSQL")


@pytest.fixture(scope="session")
def postgresql_schema(postgresql_url: str) -> Iterator[str]:
    """A schema of this run, created empty and dropped with its contents at the end."""
    import psycopg
    from psycopg import sql

    name = worker_namespace("ommi_core_test", unique=True)
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(postgresql_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend named by the test's (indirect) parameter."""
    name: str = request.param
    return name


@pytest.fixture
def make_driver(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Driver]:
    """``make_driver(**settings)``: a new unopened driver on this test's database (shared by every call)."""
    if backend == "reference":
        store = ReferenceStore()
        return lambda **settings: ReferenceDriver.connect(store=store, **settings)
    if backend == "sqlite":
        from ommi_sqlite import SQLiteDriver

        path = tmp_path / "test.sqlite"
        return lambda **settings: SQLiteDriver.connect(str(path), **settings)
    if backend == "postgresql":
        from ommi_postgresql import PostgreSQLDriver

        url = request.getfixturevalue("postgresql_url")
        schema = request.getfixturevalue("postgresql_schema")

        def make(**settings: Any) -> Driver:
            settings.setdefault("schema", schema)
            return PostgreSQLDriver.connect(url, **settings)

        return make
    raise AssertionError(f"unknown backend {backend!r}")
