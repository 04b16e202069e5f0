"""The baseline on MongoDB: PyMongo's async client, documents as dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pymongo import ASCENDING, AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from ommibench.data import (
    AUTHORS,
    COLUMNS,
    FILTER_AGE,
    FILTER_LIMIT,
    POSTS,
    UPDATE_MIN_AGE,
    USERS,
    AuthorWithPosts,
    Row,
)
from ommibench.impls.base import Implementation, Target, run_tasks

__all__ = ["RawMongoDB", "open_mongodb"]

BATCH = 1000
"""Documents per batch when streaming: Ommi's default batch size."""
_FIELDS = COLUMNS[1:]


def open_mongodb(target: Target) -> tuple[AsyncMongoClient[dict[str, Any]], AsyncDatabase[dict[str, Any]]]:
    """A client (connecting lazily) and the benchmark database."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(target.location, uuidRepresentation="standard")
    return client, client[target.namespace]


def document(row: Row) -> dict[str, Any]:
    """A data-set row as the document Ommi stores (the key in ``_id``)."""
    return {"_id": row[0], **dict(zip(_FIELDS, row[1:], strict=True))}


class RawMongoDB(Implementation):
    """PyMongo async: ``insert_many`` for W1, ``bulk_write`` of ``ReplaceOne(upsert=True)`` for W9,
    ``update_one`` with ``$inc`` for W10, a cursor with ``batch_size`` for streaming."""

    key: ClassVar[str] = "raw"
    title: ClassVar[str] = "pymongo async (raw)"
    distributions: ClassVar[tuple[str, ...]] = ("pymongo",)
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.client: AsyncMongoClient[dict[str, Any]] | None = None
        self.db: AsyncDatabase[dict[str, Any]] | None = None

    async def open(self) -> None:
        self.client, self.db = open_mongodb(self.target)
        await self.db.command("ping")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = self.db = None

    def _users(self) -> Any:
        assert self.db is not None, "open() first"
        return self.db[USERS]

    def prepare_insert(self, rows: Sequence[Row]) -> Any:
        return [document(row) for row in rows]

    async def insert(self, prepared: Any) -> None:
        await self._users().insert_many(prepared)

    async def fetch_all(self) -> Sequence[Any]:
        found: list[Any] = await self._users().find({}).to_list()
        return found

    async def lookups(self, ids: Sequence[int]) -> Sequence[Any]:
        users = self._users()
        return [await users.find_one({"_id": i}) for i in ids]

    async def filtered(self, times: int) -> Sequence[Any]:
        users = self._users()
        low, high = FILTER_AGE
        where = {"age": {"$gte": low, "$lte": high}, "active": True}
        found: list[Any] = []
        for _ in range(times):
            found = await users.find(where).sort("name", ASCENDING).limit(FILTER_LIMIT).to_list()
        return found

    async def update_and_count(self, score: float) -> tuple[int, int]:
        users = self._users()
        result = await users.update_many({"age": {"$gte": UPDATE_MIN_AGE}}, {"$set": {"score": score}})
        counted = await users.count_documents({"score": score})
        return result.matched_count, counted

    async def stream(self, table: str) -> tuple[int, int]:
        assert self.db is not None, "open() first"
        rows = total = 0
        async for doc in self.db[table].find({}, batch_size=BATCH):
            rows += 1
            total += doc["_id"]
        return rows, total

    async def upsert(self, prepared: Any) -> None:
        await self._users().bulk_write([ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in prepared])

    async def increments(self, plan: Sequence[Sequence[int]]) -> None:
        users = self._users()

        async def task(ids: Sequence[int]) -> None:
            for i in ids:
                await users.update_one({"_id": i}, {"$inc": {"age": 1}})

        await run_tasks(task, plan)

    async def grouped(self, table: str) -> Sequence[Any]:
        assert self.db is not None, "open() first"
        pipeline: list[dict[str, Any]] = [
            {"$group": {"_id": "$age", "n": {"$sum": 1}, "total": {"$sum": "$_id"}, "mean": {"$avg": "$score"}}},
            {"$sort": {"_id": 1}},
        ]
        cursor = await self.db[table].aggregate(pipeline)
        return [(doc["_id"], doc["n"], doc["total"], doc["mean"]) async for doc in cursor]

    def as_row(self, item: Any) -> Any:
        return (item["_id"], *(item[name] for name in _FIELDS))

    async def prefetch(self) -> Sequence[Any]:
        """W12: the authors, then their posts with one ``find`` and ``$in``, grouped in a dict."""
        assert self.db is not None, "open() first"
        authors = await self.db[AUTHORS].find({}).to_list(None)
        ids = [a["_id"] for a in authors]
        posts: dict[int, list[Any]] = {i: [] for i in ids}
        async for post in self.db[POSTS].find({"author_id": {"$in": ids}}).sort("_id", ASCENDING):
            posts[post["author_id"]].append(post)
        return [(a, posts[a["_id"]]) for a in authors]

    def as_author_with_posts(self, item: Any) -> AuthorWithPosts:
        author, posts = item
        return (author["_id"], author["name"], [(p["_id"], p["author_id"], p["title"]) for p in posts])
