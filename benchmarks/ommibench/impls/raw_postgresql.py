"""The baseline on PostgreSQL: psycopg 3's async connection with hand-written SQL, rows as tuples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from ommibench.data import AUTHORS, COLUMNS, FILTER_AGE, FILTER_LIMIT, POSTS, UPDATE_MIN_AGE, USERS, AuthorWithPosts
from ommibench.impls.base import Implementation, Target, run_tasks

__all__ = ["RawPostgreSQL", "RawPostgreSQLCopy", "open_postgresql"]

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM {USERS}"
_INSERT = f"INSERT INTO {USERS} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
_UPSERT = f"{_INSERT} ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
_INCREMENT = f"UPDATE {USERS} SET age = age + 1 WHERE id = %s"
POOL_SIZE = 10
"""W10's pool: the size of Ommi's PostgreSQL pool (``pool_max_size``), so both run as many statements at once."""
BATCH = 1000
"""Rows per ``fetchmany`` of the server-side cursor when streaming: Ommi's default batch size."""


async def open_postgresql(target: Target) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection whose search_path is the benchmark schema."""
    return await psycopg.AsyncConnection.connect(
        target.location, autocommit=True, options=f"-c search_path={target.namespace}"
    )


class RawPostgreSQL(Implementation):
    """psycopg: ``executemany`` for W1 and W9, a server-side cursor for streaming.

    One connection, plus for W10 a ``psycopg_pool`` pool of autocommit
    connections as large as Ommi's, each increment one ``conn.execute``.
    """

    key: ClassVar[str] = "raw"
    title: ClassVar[str] = "psycopg (raw)"
    distributions: ClassVar[tuple[str, ...]] = ("psycopg", "psycopg-binary")
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None

    async def open(self) -> None:
        self.conn = await open_postgresql(self.target)
        self.pool = AsyncConnectionPool(
            self.target.location,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, "options": f"-c search_path={self.target.namespace}"},
            open=False,
        )
        await self.pool.open(wait=True)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
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

    async def upsert(self, prepared: Any) -> None:
        conn = self._conn()
        async with conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(_UPSERT, prepared)

    async def increments(self, plan: Sequence[Sequence[int]]) -> None:
        pool = self.pool
        assert pool is not None, "open() first"

        async def task(ids: Sequence[int]) -> None:
            for i in ids:
                async with pool.connection() as conn:
                    await conn.execute(_INCREMENT, (i,))

        await run_tasks(task, plan)

    async def grouped(self, table: str) -> Sequence[Any]:
        sql = f"SELECT age, count(*), sum(id), avg(score) FROM {table} GROUP BY age ORDER BY age"
        async with self._conn().cursor() as cursor:
            await cursor.execute(sql)
            return await cursor.fetchall()

    def as_row(self, item: Any) -> Any:
        return tuple(item)

    async def prefetch(self) -> Sequence[Any]:
        """W12: the authors, then their posts in one ``author_id = ANY(%s)`` query, grouped in a dict."""
        async with self._conn().cursor() as cursor:
            await cursor.execute(f"SELECT id, name FROM {AUTHORS}")
            authors = await cursor.fetchall()
            ids = [a[0] for a in authors]
            posts: dict[int, list[Any]] = {i: [] for i in ids}
            await cursor.execute(
                f"SELECT id, author_id, title FROM {POSTS} WHERE author_id = ANY(%s) ORDER BY id", (ids,)
            )
            for post in await cursor.fetchall():
                posts[post[1]].append(post)
        return [(a, posts[a[0]]) for a in authors]

    def as_author_with_posts(self, item: Any) -> AuthorWithPosts:
        author, posts = item
        return (author[0], author[1], [tuple(p) for p in posts])


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
