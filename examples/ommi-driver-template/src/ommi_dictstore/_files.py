"""Where a database lives: in memory, or in a JSON file written after every change.

:class:`Database` holds the current tables of one database and serialises the
changes to it. Drivers of one process that name the same file share one
``Database`` (the way two connections share one server), so each sees what
the other wrote at once. The file is read when the first of them opens and
rewritten, atomically, after every change; it must not be written by two
processes at once (a documented limit of this example driver).

File I/O is blocking, so it runs on a worker thread (``asyncio.to_thread``):
the event loop keeps serving other tasks while a large file is written.

Canonical values are stored as JSON by storage type: decimals, UUIDs, dates
and datetimes as their exact text forms, bytes as base64.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ommi.models.types import StorageType

from ommi_dictstore._tables import Column, StoreError, Table, Tables

__all__ = ["CorruptFile", "Database", "acquire", "release"]

T = TypeVar("T")
FORMAT = 1
"""Version of the file layout, stored in the file."""


class CorruptFile(StoreError):
    """The file is not a dictstore database this version can read."""


def _identity(value: Any) -> Any:
    return value


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_TO_JSON: dict[str, Callable[[Any], Any]] = {
    StorageType.INTEGER.value: _identity,
    StorageType.FLOAT.value: _identity,  # json writes repr(float), which reads back exactly
    StorageType.BOOLEAN.value: _identity,
    StorageType.TEXT.value: _identity,
    StorageType.DECIMAL.value: str,  # str(Decimal) keeps every digit and the exponent
    StorageType.BYTES.value: _b64,
    StorageType.UUID.value: str,
    StorageType.DATE.value: dt.date.isoformat,
    StorageType.DATETIME.value: dt.datetime.isoformat,  # keeps microseconds
    StorageType.DATETIME_TZ.value: dt.datetime.isoformat,  # UTC, written with its +00:00 offset
}

_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    StorageType.INTEGER.value: int,
    StorageType.FLOAT.value: float,
    StorageType.BOOLEAN.value: bool,
    StorageType.TEXT.value: str,
    StorageType.DECIMAL.value: decimal.Decimal,
    StorageType.BYTES.value: base64.b64decode,
    StorageType.UUID.value: uuid.UUID,
    StorageType.DATE.value: dt.date.fromisoformat,
    StorageType.DATETIME.value: dt.datetime.fromisoformat,
    StorageType.DATETIME_TZ.value: dt.datetime.fromisoformat,
}


def _encode(tables: Tables) -> str:
    document: dict[str, Any] = {"format": FORMAT, "tables": {}}
    for name, table in tables.items():
        writers = [_TO_JSON[c.storage] for c in table.columns]
        document["tables"][name] = {
            "columns": [[c.name, c.storage, c.nullable] for c in table.columns],
            "key": list(table.key),
            "next_id": table.next_id,
            "rows": [
                [None if v is None else write(v) for write, v in zip(writers, row, strict=True)]
                for row in table.rows.values()
            ],
        }
    return json.dumps(document, separators=(",", ":"))


def _decode(text: str, path: str) -> dict[str, Table]:
    try:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise CorruptFile(f"{path} has file format {document.get('format')!r}; this driver reads {FORMAT}")
        tables = {}
        for name, stored in document["tables"].items():
            columns = tuple(Column(str(c[0]), str(c[1]), bool(c[2])) for c in stored["columns"])
            readers = [_FROM_JSON[c.storage] for c in columns]
            key = tuple(int(i) for i in stored["key"])
            rows = {}
            for cells in stored["rows"]:
                row = tuple(None if v is None else read(v) for read, v in zip(readers, cells, strict=True))
                rows[tuple(row[i] for i in key)] = row
            tables[name] = Table(columns, key, rows, int(stored["next_id"]))
    except CorruptFile:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise CorruptFile(f"{path} is not a readable dictstore database: {exc}") from exc
    return tables


def _read(path: str) -> dict[str, Table]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}  # a new database: the file appears with the first change
    return _decode(text, path)


def _write(path: str, tables: Tables) -> None:
    text = _encode(tables)
    folder = os.path.dirname(os.path.abspath(path))
    # Write a temporary file and rename it over the old one: a crash never leaves half a file.
    handle, temporary = tempfile.mkstemp(prefix=".dictstore-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class Database:
    """The tables of one database and the lock that orders changes to them.

    Readers take :attr:`tables` as it is: a change never mutates a table,
    it replaces the mapping once the new state is saved.
    """

    def __init__(self, path: str | None, tables: dict[str, Table]) -> None:
        self.path = path
        self.tables: Tables = tables
        self.users = 0
        # Created while opening, inside the running event loop.
        self._lock = asyncio.Lock()

    async def change(self, action: Callable[[Tables], tuple[Tables, T]]) -> T:
        """Apply ``action`` (current tables -> new tables and a result), save, then publish."""
        async with self._lock:
            tables, result = action(self.tables)
            if self.path is not None:
                await self._save(self.path, tables)
            self.tables = tables
            return result

    async def _save(self, path: str, tables: Tables) -> None:
        writing = asyncio.ensure_future(asyncio.to_thread(_write, path, tables))
        try:
            await asyncio.shield(writing)
        except asyncio.CancelledError:
            # The thread cannot be stopped: wait for it, so that memory matches
            # the file whatever happened to the caller, then give up.
            await asyncio.wait([writing])
            if not writing.cancelled() and writing.exception() is None:
                self.tables = tables
            raise


_open_files: dict[str, Database] = {}


def _registry_key(path: str) -> str:
    # A pure string operation (no file system access, nothing blocking on the event loop).
    return os.path.normcase(os.path.abspath(path))


async def acquire(path: str | None) -> Database:
    """The database at ``path`` (shared with this process's other drivers), or a new in-memory one."""
    if path is None:
        database = Database(None, {})
    else:
        key = _registry_key(path)
        shared = _open_files.get(key)
        if shared is None:
            tables = await asyncio.to_thread(_read, path)
            # Another driver may have opened the same file while this one was reading.
            shared = _open_files.setdefault(key, Database(path, tables))
        database = shared
    database.users += 1
    return database


def release(database: Database) -> None:
    """Forget a database once its last driver has closed (the file stays on disk)."""
    database.users -= 1
    if database.users == 0 and database.path is not None:
        key = _registry_key(database.path)
        if _open_files.get(key) is database:
            del _open_files[key]
