"""PostgreSQL: the server of ``OMMI_TEST_POSTGRESQL_URL``, in a schema of its own dropped at the end."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import psycopg

from ommibench.backends.base import Backend, BackendUnavailable
from ommibench.data import COLUMNS, Row
from ommibench.impls.base import Implementation, Target
from ommibench.impls.ommi_impl import OmmiImplementation, OmmiLazyImplementation
from ommibench.impls.raw_postgresql import RawPostgreSQL, RawPostgreSQLCopy
from ommibench.impls.sqlalchemy_impl import SQLAlchemyORM
from ommibench.impls.tortoise_impl import TortoiseORM

__all__ = ["SCHEMA", "PostgreSQLBackend"]

ENV = "OMMI_TEST_POSTGRESQL_URL"
SCHEMA = "ommi_bench"


class PostgreSQLBackend(Backend):
    """Tables in the ``ommi_bench`` schema; the admin connection guards against lock waits."""

    name: ClassVar[str] = "postgresql"
    implementations: ClassVar[tuple[type[Implementation], ...]] = (
        RawPostgreSQL,
        RawPostgreSQLCopy,
        OmmiImplementation,
        OmmiLazyImplementation,
        SQLAlchemyORM,
        TortoiseORM,
    )

    _conn: psycopg.AsyncConnection[Any] | None = None

    async def connect(self) -> Target:
        url = os.environ.get(ENV)
        if not url:
            raise BackendUnavailable(f"PostgreSQL: set {ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
        try:
            self._conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise BackendUnavailable(f"PostgreSQL at {ENV} does not answer: {exc}") from exc
        # A lock held by a leaked transaction must fail the run, not hang it.
        await self._conn.execute("SET lock_timeout = '30s'")
        self.target = Target("postgresql", url, SCHEMA)
        return self.target

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _admin(self) -> psycopg.AsyncConnection[Any]:
        assert self._conn is not None, "connect() first"
        return self._conn

    async def drop_everything(self) -> None:
        await self._admin().execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")

    async def server_version(self) -> str:
        cursor = await self._admin().execute("SHOW server_version")
        row = await cursor.fetchone()
        return str(row[0]) if row else "unknown"

    async def clear(self, table: str) -> None:
        await self._admin().execute(f"TRUNCATE {SCHEMA}.{table}")

    async def write(self, table: str, rows: Sequence[Row]) -> None:
        conn = self._admin()
        statement = f"COPY {SCHEMA}.{table} ({', '.join(COLUMNS)}) FROM STDIN"
        async with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                await copy.write_row(row)

    async def read(self, table: str) -> list[Row]:
        cursor = await self._admin().execute(f"SELECT {', '.join(COLUMNS)} FROM {SCHEMA}.{table} ORDER BY id")
        return [tuple(row) for row in await cursor.fetchall()]

    async def analyze(self) -> None:
        await self._admin().execute(f"VACUUM ANALYZE {SCHEMA}.bench_users, {SCHEMA}.bench_stream, {SCHEMA}.bench_big")
