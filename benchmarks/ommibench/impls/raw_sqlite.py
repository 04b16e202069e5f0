"""The baseline on SQLite: aiosqlite with hand-written SQL, rows as tuples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import aiosqlite

from ommibench.data import AUTHORS, COLUMNS, FILTER_AGE, FILTER_LIMIT, POSTS, UPDATE_MIN_AGE, USERS, AuthorWithPosts
from ommibench.impls.base import Implementation, Target, run_tasks

__all__ = ["RawSQLite", "open_sqlite"]

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM {USERS}"
_INSERT = f"INSERT INTO {USERS} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPSERT = f"{_INSERT} ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
_INCREMENT = f"UPDATE {USERS} SET age = age + 1 WHERE id = ?"
BATCH = 1000
"""Rows per ``fetchmany`` when streaming: Ommi's default batch size."""


async def open_sqlite(path: str, *, autocommit: bool = False) -> aiosqlite.Connection:
    """A connection with the pragmas Ommi's SQLite driver uses on a file database (WAL, synchronous=NORMAL).

    ``autocommit``: every statement commits on its own (``isolation_level=None``).
    """
    conn = await aiosqlite.connect(path, isolation_level=None) if autocommit else await aiosqlite.connect(path)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA foreign_keys = ON")
    return conn


class RawSQLite(Implementation):
    """aiosqlite: ``executemany`` for W1 and W9, ``fetchmany`` batches for streaming.

    One connection, plus one in autocommit mode for W10's single-statement
    increments (one round trip to aiosqlite's thread each, ``execute_fetchall``).
    """

    key: ClassVar[str] = "raw"
    title: ClassVar[str] = "aiosqlite (raw)"
    distributions: ClassVar[tuple[str, ...]] = ("aiosqlite",)
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.conn: aiosqlite.Connection | None = None
        self.autocommit: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.conn = await open_sqlite(self.target.location)
        self.autocommit = await open_sqlite(self.target.location, autocommit=True)

    async def close(self) -> None:
        for conn in (self.conn, self.autocommit):
            if conn is not None:
                await conn.close()
        self.conn = self.autocommit = None

    def _conn(self) -> aiosqlite.Connection:
        assert self.conn is not None, "open() first"
        return self.conn

    async def insert(self, prepared: Any) -> None:
        conn = self._conn()
        await conn.executemany(_INSERT, prepared)
        await conn.commit()

    async def fetch_all(self) -> Sequence[Any]:
        async with self._conn().execute(_SELECT) as cursor:
            return list(await cursor.fetchall())

    async def lookups(self, ids: Sequence[int]) -> Sequence[Any]:
        conn = self._conn()
        sql = f"{_SELECT} WHERE id = ?"
        found = []
        for i in ids:
            async with conn.execute(sql, (i,)) as cursor:
                found.append(await cursor.fetchone())
        return found

    async def filtered(self, times: int) -> Sequence[Any]:
        conn = self._conn()
        sql = f"{_SELECT} WHERE age BETWEEN ? AND ? AND active ORDER BY name LIMIT ?"
        params = (*FILTER_AGE, FILTER_LIMIT)
        found: list[Any] = []
        for _ in range(times):
            async with conn.execute(sql, params) as cursor:
                found = list(await cursor.fetchall())
        return found

    async def update_and_count(self, score: float) -> tuple[int, int]:
        conn = self._conn()
        cursor = await conn.execute(f"UPDATE {USERS} SET score = ? WHERE age >= ?", (score, UPDATE_MIN_AGE))
        updated = cursor.rowcount
        await cursor.close()
        await conn.commit()
        async with conn.execute(f"SELECT count(*) FROM {USERS} WHERE score = ?", (score,)) as cursor:
            row = await cursor.fetchone()
        return updated, int(row[0]) if row else 0

    async def stream(self, table: str) -> tuple[int, int]:
        rows = total = 0
        async with self._conn().execute(f"SELECT {', '.join(COLUMNS)} FROM {table}") as cursor:
            while batch := list(await cursor.fetchmany(BATCH)):
                rows += len(batch)
                for row in batch:
                    total += row[0]
        return rows, total

    async def upsert(self, prepared: Any) -> None:
        conn = self._conn()
        await conn.executemany(_UPSERT, prepared)
        await conn.commit()

    async def increments(self, plan: Sequence[Sequence[int]]) -> None:
        conn = self.autocommit
        assert conn is not None, "open() first"

        async def task(ids: Sequence[int]) -> None:
            for i in ids:
                await conn.execute_fetchall(_INCREMENT, (i,))

        await run_tasks(task, plan)

    async def grouped(self, table: str) -> Sequence[Any]:
        sql = f"SELECT age, count(*), sum(id), avg(score) FROM {table} GROUP BY age ORDER BY age"
        async with self._conn().execute(sql) as cursor:
            return list(await cursor.fetchall())

    def as_row(self, item: Any) -> Any:
        return tuple(item)

    async def prefetch(self) -> Sequence[Any]:
        """W12: the authors, then their posts in one ``IN (?, ...)`` query, grouped in a dict."""
        conn = self._conn()
        async with conn.execute(f"SELECT id, name FROM {AUTHORS}") as cursor:
            authors = await cursor.fetchall()
        ids = [a[0] for a in authors]
        posts: dict[int, list[Any]] = {i: [] for i in ids}
        if ids:
            marks = ", ".join("?" * len(ids))
            sql = f"SELECT id, author_id, title FROM {POSTS} WHERE author_id IN ({marks}) ORDER BY id"
            async with conn.execute(sql, ids) as cursor:
                for post in await cursor.fetchall():
                    posts[post[1]].append(post)
        return [(a, posts[a[0]]) for a in authors]

    def as_author_with_posts(self, item: Any) -> AuthorWithPosts:
        author, posts = item
        return (author[0], author[1], [tuple(p) for p in posts])
