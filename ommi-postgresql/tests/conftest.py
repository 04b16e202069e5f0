"""Shared set-up of the PostgreSQL driver's tests: the server and a schema per xdist worker.

The server comes from ``OMMI_TEST_POSTGRESQL_URL`` (else the loopback server
``postgresql://postgres@127.0.0.1:5432/test`` that the project's machines run
is tried). When it cannot be reached every test here skips with one line
saying so; with ``--ommi-require-servers`` (CI) it fails instead.

Each pytest-xdist worker (and each run) works in a PostgreSQL schema of its
own, created before its first test and dropped with everything in it after
its last, so parallel workers and concurrent runs never share tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from ommi_postgresql import PostgreSQLDriver
from ommi_testkit.servers import server_url, worker_namespace

ENV_VAR = "OMMI_TEST_POSTGRESQL_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _probe(url: str) -> None:
    conn = await psycopg.AsyncConnection.connect(url, connect_timeout=3)
    await conn.close()


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    """The URL of the test server (skips, or fails under --ommi-require-servers, when unreachable)."""
    return server_url(ENV_VAR, DEFAULT_URL, probe=_probe, what="PostgreSQL")


@pytest.fixture(scope="session")
def postgresql_schema(postgresql_url: str) -> Iterator[str]:
    """This worker's schema, created empty for the session and dropped with its contents afterwards."""
    name = worker_namespace("ommi_test", unique=True)
    quoted = f'"{name}"'
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
        conn.execute(f"CREATE SCHEMA {quoted}")
    try:
        yield name
    finally:
        with psycopg.connect(postgresql_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")


@pytest.fixture
def make_driver(postgresql_url: str, postgresql_schema: str) -> Callable[..., PostgreSQLDriver]:
    """``make_driver(**settings)``: a new unopened driver on this worker's schema."""

    def make(**settings: Any) -> PostgreSQLDriver:
        settings.setdefault("schema", postgresql_schema)
        return PostgreSQLDriver.connect(postgresql_url, **settings)

    return make


@pytest.fixture
def admin(postgresql_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit psycopg connection, outside any pool (to inspect or sabotage the server)."""
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        yield conn
