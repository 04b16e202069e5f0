"""Tortoise ORM (aiosqlite / psycopg backends), used the way its documentation shows."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

from tortoise import Tortoise
from tortoise.expressions import F
from tortoise.functions import Avg, Count, Sum
from tortoise.query_utils import Prefetch

from ommibench.data import BIG, COLUMNS, FILTER_AGE, FILTER_LIMIT, STREAM, UPDATE_MIN_AGE, USERS, Row
from ommibench.impls.base import Implementation, Target, run_tasks

__all__ = ["TortoiseORM"]


def _models_module(target: Target) -> str:
    # One set of model classes per backend: Tortoise caches dialect-specific SQL on them.
    return f"ommibench.impls.tortoise_models_{target.backend}"


def _config(target: Target) -> dict[str, Any]:
    if target.backend == "sqlite":
        connection: dict[str, Any] = {
            "engine": "tortoise.backends.sqlite",
            # Extra credentials become pragmas: the same as Ommi's driver and the raw baseline.
            "credentials": {"file_path": target.location, "journal_mode": "WAL", "synchronous": "NORMAL"},
        }
    else:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(target.location)
        credentials = {
            "host": params.get("host", "127.0.0.1"),
            "port": int(params.get("port") or 5432),
            "user": params.get("user"),
            "password": params.get("password"),
            "database": params.get("dbname"),
            "schema": target.namespace,
        }
        connection = {
            "engine": "tortoise.backends.psycopg",
            "credentials": {k: v for k, v in credentials.items() if v is not None},
        }
    # The connection is named after the backend: Tortoise caches INSERT statements process-wide by
    # (connection name, table), and a statement compiled for SQLite fails on PostgreSQL.
    return {
        "connections": {target.backend: connection},
        "apps": {"bench": {"models": [_models_module(target)], "default_connection": target.backend}},
        "use_tz": False,
    }


class TortoiseORM(Implementation):
    """``bulk_create``, ``get``, ``filter().order_by().limit()``, ``update``/``count``, ``async for``.

    W9: ``bulk_create(..., on_conflict=["id"], update_fields=[...])``; W10:
    ``filter(id=...).update(age=F("age") + 1)`` per increment.
    """

    key: ClassVar[str] = "tortoise"
    title: ClassVar[str] = "Tortoise ORM"
    distributions: ClassVar[tuple[str, ...]] = ("tortoise-orm",)

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        module = importlib.import_module(_models_module(target))
        self.user: Any = module.TUser
        self.author: Any = module.TAuthor
        self.post: Any = module.TPost
        self.tables: dict[str, Any] = {USERS: module.TUser, STREAM: module.TStreamRow, BIG: module.TBigRow}

    async def open(self) -> None:
        await Tortoise.init(config=_config(self.target))

    async def close(self) -> None:
        await Tortoise.close_connections()

    def prepare_insert(self, rows: Sequence[Row]) -> Any:
        user = self.user
        return [user(id=r[0], name=r[1], email=r[2], age=r[3], active=r[4], score=r[5]) for r in rows]

    async def insert(self, prepared: Any) -> None:
        await self.user.bulk_create(prepared)

    async def fetch_all(self) -> Sequence[Any]:
        found: Sequence[Any] = await self.user.all()
        return found

    async def lookups(self, ids: Sequence[int]) -> Sequence[Any]:
        user = self.user
        return [await user.get(id=i) for i in ids]

    async def filtered(self, times: int) -> Sequence[Any]:
        low, high = FILTER_AGE
        found: Sequence[Any] = []
        user = self.user
        for _ in range(times):
            found = await user.filter(age__gte=low, age__lte=high, active=True).order_by("name").limit(FILTER_LIMIT)
        return found

    async def update_and_count(self, score: float) -> tuple[int, int]:
        updated = await self.user.filter(age__gte=UPDATE_MIN_AGE).update(score=score)
        counted = await self.user.filter(score=score).count()
        return int(updated), int(counted)

    async def upsert(self, prepared: Any) -> None:
        await self.user.bulk_create(prepared, on_conflict=["id"], update_fields=list(COLUMNS[1:]))

    async def increments(self, plan: Sequence[Sequence[int]]) -> None:
        user = self.user

        async def task(ids: Sequence[int]) -> None:
            for i in ids:
                await user.filter(id=i).update(age=F("age") + 1)

        await run_tasks(task, plan)

    async def grouped(self, table: str) -> Sequence[Any]:
        rows = (
            await self.tables[table]
            .all()
            .annotate(n=Count("id"), total=Sum("id"), mean=Avg("score"))
            .group_by("age")
            .order_by("age")
            .values("age", "n", "total", "mean")
        )
        return [(row["age"], row["n"], row["total"], row["mean"]) for row in rows]

    async def stream(self, table: str) -> tuple[int, int]:
        rows = total = 0
        # Tortoise has no streaming API: iterating a queryset fetches every row first.
        async for item in self.tables[table].all():
            rows += 1
            total += item.id
        return rows, total

    async def prefetch(self) -> Sequence[Any]:
        """W12: ``prefetch_related`` of the posts, ordered by id as the other implementations order them."""
        authors = await self.author.all().prefetch_related(Prefetch("posts", self.post.all().order_by("id")))
        return [(author, list(author.posts)) for author in authors]
