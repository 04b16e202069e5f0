"""The baseline on PostgreSQL: psycopg 3's async connection with hand-written SQL, rows as tuples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import psycopg

from ommibench.data import COLUMNS, FILTER_AGE, FILTER_LIMIT, UPDATE_MIN_AGE, USERS
from ommibench.impls.base import Implementation, Target

__all__ = ["RawPostgreSQL", "RawPostgreSQLCopy", "open_postgresql"]

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM {USERS}"
_INSERT = f"INSERT INTO {USERS} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
BATCH = 1000
"""Rows per ``fetchmany`` of the server-side cursor when streaming: Ommi's default batch size."""


async def open_postgresql(target: Target) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection whose search_path is the benchmark schema."""
    return await psycopg.AsyncConnection.connect(
        target.location, autocommit=True, options=f"-c search_path={target.namespace}"
    )


class RawPostgreSQL(Implementation):
    """psycopg, one connection: ``executemany`` for W1, a server-side cursor for streaming."""

    key: ClassVar[str] = "raw"
    title: ClassVar[str] = "psycopg (raw)"
    distributions: ClassVar[tuple[str, ...]] = ("psycopg", "psycopg-binary")
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def open(self) -> None:
        self.conn = await open_postgresql(self.target)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    def _conn(self) -> psycopg.AsyncConnection[Any]:
        assert self.conn is not None, "open() first"
        return self.conn

    async def insert(self, prepared: Any) -> None:
        conn = self._conn()
        async with conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(_INSERT, prepared)

    async def fetch_all(self) -> Sequence[Any]:
        async with self._conn().cursor() as cursor:
            await cursor.execute(_SELECT)
            return await cursor.fetchall()

    async def lookups(self, ids: Sequence[int]) -> Sequence[Any]:
        sql = f"{_SELECT} WHERE id = %s"
        found = []
        async with self._conn().cursor() as cursor:
            for i in ids:
                await cursor.execute(sql, (i,))
                found.append(await cursor.fetchone())
        return found

    async def filtered(self, times: int) -> Sequence[Any]:
        sql = f"{_SELECT} WHERE age BETWEEN %s AND %s AND active ORDER BY name LIMIT %s"
        params = (*FILTER_AGE, FILTER_LIMIT)
        found: list[Any] = []
        async with self._conn().cursor() as cursor:
            for _ in range(times):
                await cursor.execute(sql, params)
                found = await cursor.fetchall()
        return found

    async def update_and_count(self, score: float) -> tuple[int, int]:
        async with self._conn().cursor() as cursor:
            await cursor.execute(f"UPDATE {USERS} SET score = %s WHERE age >= %s", (score, UPDATE_MIN_AGE))
            updated = cursor.rowcount
            await cursor.execute(f"SELECT count(*) FROM {USERS} WHERE score = %s", (score,))
            row = await cursor.fetchone()
        return updated, int(row[0]) if row else 0

    async def stream(self, table: str) -> tuple[int, int]:
        rows = total = 0
        conn = self._conn()
        # A named (server-side) cursor needs a transaction; it keeps at most BATCH rows in the client.
        async with conn.transaction(), conn.cursor(name="bench_stream") as cursor:
            await cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {table}")
            while batch := await cursor.fetchmany(BATCH):
                rows += len(batch)
                for row in batch:
                    total += row[0]
        return rows, total

    def as_row(self, item: Any) -> Any:
        return tuple(item)


class RawPostgreSQLCopy(RawPostgreSQL):
    """psycopg's ``COPY ... FROM STDIN``: the fastest raw way to insert, shown for W1 only (not the baseline)."""

    key: ClassVar[str] = "raw-copy"
    title: ClassVar[str] = "psycopg COPY (raw)"
    workloads: ClassVar[frozenset[str]] = frozenset({"W1"})
    is_baseline: ClassVar[bool] = False

    async def insert(self, prepared: Any) -> None:
        conn = self._conn()
        statement = f"COPY {USERS} ({', '.join(COLUMNS)}) FROM STDIN"
        async with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in prepared:
                await copy.write_row(row)
