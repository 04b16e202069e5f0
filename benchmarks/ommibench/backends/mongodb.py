"""MongoDB: the server of ``OMMI_TEST_MONGODB_URL``, in a database of its own dropped at the end."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from ommibench.backends.base import Backend, BackendUnavailable
from ommibench.data import COLUMNS, Row
from ommibench.impls.base import Implementation, Target
from ommibench.impls.ommi_impl import OmmiImplementation, OmmiLazyImplementation
from ommibench.impls.raw_mongodb import RawMongoDB, document

__all__ = ["DATABASE", "MongoDBBackend"]

ENV = "OMMI_TEST_MONGODB_URL"
DATABASE = "ommi_bench"


def _with_database(url: str, database: str) -> str:
    """``url`` naming ``database`` in its path (the server's options kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


class MongoDBBackend(Backend):
    """Collections in the ``ommi_bench`` database; no peer ORM supports MongoDB."""

    name: ClassVar[str] = "mongodb"
    implementations: ClassVar[tuple[type[Implementation], ...]] = (
        RawMongoDB,
        OmmiImplementation,
        OmmiLazyImplementation,
    )

    _client: AsyncMongoClient[dict[str, Any]] | None = None

    async def connect(self) -> Target:
        url = os.environ.get(ENV)
        if not url:
            raise BackendUnavailable(
                f"MongoDB: set {ENV} (start the CI wire server with `.ci/mongo-wire-server start`, which prints it)"
            )
        self._client = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
        try:
            await self._client.admin.command("ping")
        except PyMongoError as exc:
            await self.close()
            raise BackendUnavailable(f"MongoDB at {ENV} does not answer: {exc}") from exc
        self.target = Target("mongodb", _with_database(url, DATABASE), DATABASE)
        return self.target

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _db(self) -> Any:
        assert self._client is not None, "connect() first"
        return self._client[DATABASE]

    async def drop_everything(self) -> None:
        assert self._client is not None, "connect() first"
        await self._client.drop_database(DATABASE)

    async def server_version(self) -> str:
        assert self._client is not None, "connect() first"
        info = await self._client.admin.command("buildInfo")
        return str(info.get("version", "unknown"))

    async def clear(self, table: str) -> None:
        await self._db()[table].delete_many({})

    async def write(self, table: str, rows: Sequence[Row]) -> None:
        collection = self._db()[table]
        for start in range(0, len(rows), 10_000):
            await collection.insert_many([document(row) for row in rows[start : start + 10_000]])

    async def read(self, table: str) -> list[Row]:
        # Sorted here: the CI wire server (nx-27017 0.8.1) orders integer _id values as text.
        found = await self._db()[table].find({}).to_list()
        rows = [(d["_id"], *(d[name] for name in COLUMNS[1:])) for d in found]
        return sorted(rows, key=lambda row: row[0])
