"""SQLite: a database file in a temporary directory, removed at the end of the run."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import aiosqlite

from ommibench.backends.base import Backend
from ommibench.data import COLUMNS, Row
from ommibench.impls.base import Implementation, Target
from ommibench.impls.ommi_impl import OmmiImplementation, OmmiLazyImplementation
from ommibench.impls.raw_sqlite import RawSQLite, open_sqlite
from ommibench.impls.sqlalchemy_impl import SQLAlchemyORM
from ommibench.impls.tortoise_impl import TortoiseORM

__all__ = ["SQLiteBackend"]


class SQLiteBackend(Backend):
    """A WAL-mode file database (what Ommi's driver sets up for a file) shared by every implementation.

    ``close()`` removes the temporary directory with the file.
    """

    name: ClassVar[str] = "sqlite"
    implementations: ClassVar[tuple[type[Implementation], ...]] = (
        RawSQLite,
        OmmiImplementation,
        OmmiLazyImplementation,
        SQLAlchemyORM,
        TortoiseORM,
    )

    _directory: Path | None = None
    _conn: aiosqlite.Connection | None = None

    async def connect(self) -> Target:
        self._directory = Path(tempfile.mkdtemp(prefix="ommi-bench-"))
        self.target = Target("sqlite", str(self._directory / "bench.sqlite"))
        self._conn = await open_sqlite(self.target.location)
        return self.target

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def _admin(self) -> aiosqlite.Connection:
        assert self._conn is not None, "connect() first"
        return self._conn

    async def drop_everything(self) -> None:
        conn = self._admin()
        async with conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'bench_%' ORDER BY rowid DESC"
        ) as cur:
            tables = [row[0] for row in await cur.fetchall()]
        for table in tables:
            await conn.execute(f'DROP TABLE "{table}"')
        await conn.commit()

    async def server_version(self) -> str:
        return sqlite3.sqlite_version

    async def clear(self, table: str) -> None:
        conn = self._admin()
        await conn.execute(f"DELETE FROM {table}")
        await conn.commit()

    async def write(self, table: str, rows: Sequence[Row]) -> None:
        conn = self._admin()
        placeholders = ", ".join("?" * len(COLUMNS))
        await conn.executemany(f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows)
        await conn.commit()

    async def read(self, table: str) -> list[Row]:
        async with self._admin().execute(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id") as cursor:
            return [(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in await cursor.fetchall()]

    async def analyze(self) -> None:
        conn = self._admin()
        await conn.execute("ANALYZE")
        await conn.commit()
