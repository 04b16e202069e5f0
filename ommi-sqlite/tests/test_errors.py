"""Error translation: each sqlite3 failure becomes the right ``ommi.errors`` class, chained, naming the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.drivers import map_exceptions
from ommi.errors import ConnectionError as OmmiConnectionError
from ommi.errors import IntegrityError, OperationalError
from ommi.errors import TimeoutError as OmmiTimeoutError
from ommi_sqlite import SQLiteDriver
from ommi_sqlite._errors import exception_map, translate

models = ModelCollection("ommi_sqlite_test_errors")


@ommi_model(collection=models)
@dataclass
class Thing:
    name: str
    id: int | None = None


async def test_duplicate_key_is_an_integrity_error(connect_file: Callable[..., Ommi], db_path: Path) -> None:
    """A duplicate key raises IntegrityError chained to sqlite3's, naming the database file."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(Thing("a", id=1)).or_raise()
        with pytest.raises(IntegrityError) as caught:
            await db.add(Thing("b", id=1)).or_raise()
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert str(db_path) in str(caught.value) and "UNIQUE" in str(caught.value)


async def test_missing_table_is_an_operational_error(connect_file: Callable[..., Ommi]) -> None:
    """A query on a table that does not exist says so and how to create it."""
    async with connect_file() as db:
        with pytest.raises(OperationalError, match=r"no such table: Thing.*use_models") as caught:
            await db.find(Thing).count.or_raise()
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


async def test_lock_held_by_another_process_times_out(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """A write lock held elsewhere is waited for up to busy_timeout, then raises TimeoutError."""
    async with connect_file(busy_timeout=0.2) as db:
        await db.use_models(models)
        raw.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(OmmiTimeoutError, match=r"busy_timeout=0\.2 s") as caught:
                await db.add(Thing("blocked")).or_raise()
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            assert "database is locked" in str(caught.value.__cause__)
        finally:
            raw.execute("ROLLBACK")
        await db.add(Thing("free")).or_raise()  # nothing stays broken afterwards
        assert await db.find(Thing).count.or_raise() == 1


async def test_lock_released_within_the_timeout_is_waited_for(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """A lock released before busy_timeout never surfaces as an error."""
    import asyncio

    async with connect_file(busy_timeout=5) as db:
        await db.use_models(models)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO Thing (name) VALUES ('raw')")
        adding = asyncio.create_task(db.add(Thing("waited")).or_raise())
        await asyncio.sleep(0.2)
        assert not adding.done()
        raw.execute("COMMIT")
        await adding
        assert await db.find(Thing).count.or_raise() == 2


async def test_unopenable_path_is_a_connection_error(tmp_path: Path) -> None:
    """A file in a missing directory cannot be opened: ConnectionError at open, naming the path."""
    path = tmp_path / "missing" / "dir" / "app.db"
    driver = SQLiteDriver.connect(str(path))
    with pytest.raises(OmmiConnectionError, match="missing") as caught:
        await driver.open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    await driver.close()


async def test_file_that_is_not_a_database_is_a_connection_error(tmp_path: Path) -> None:
    """A file that is not SQLite fails at open with ConnectionError."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database, just some text that is long enough " * 20)
    driver = SQLiteDriver.connect(str(path))
    with pytest.raises(OmmiConnectionError, match="not a database") as caught:
        await driver.open()
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    await driver.close()
    assert path.read_bytes().startswith(b"this is not a database")


def test_translate_covers_the_client_exception_kinds() -> None:
    """The mapping itself: class by class, with the database named and unrelated errors left alone."""
    locked = sqlite3.OperationalError("database is locked")
    assert isinstance(translate(locked, "'a.db'", 1.5), OmmiTimeoutError)
    assert "busy_timeout=1.5" in str(translate(locked, "'a.db'", 1.5))
    assert isinstance(translate(sqlite3.IntegrityError("NOT NULL constraint failed"), "'a.db'", 1), IntegrityError)
    other = translate(sqlite3.OperationalError("near 'x': syntax error"), "'a.db'", 1)
    assert isinstance(other, OperationalError) and "'a.db'" in str(other)
    assert isinstance(translate(ValueError("Connection closed"), "'a.db'", 1), OmmiConnectionError)
    assert translate(ValueError("unrelated"), "'a.db'", 1) is None
    assert translate(KeyError("x"), "'a.db'", 1) is None
    with pytest.raises(IntegrityError) as caught, map_exceptions(exception_map("'a.db'", 1)):
        raise sqlite3.IntegrityError("UNIQUE constraint failed")
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)


def test_translation_goes_by_result_code_when_sqlite_gives_one() -> None:
    """An exception carrying SQLite's result code is classed by the code, whatever its text says."""
    busy = sqlite3.OperationalError("some text that names no lock")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY | (1 << 8)  # SQLITE_BUSY_RECOVERY, an extended code
    assert isinstance(translate(busy, "'a.db'", 1), OmmiTimeoutError)
    misleading = sqlite3.OperationalError("database is locked")
    misleading.sqlite_errorcode = sqlite3.SQLITE_IOERR
    assert type(translate(misleading, "'a.db'", 1)) is OperationalError
    cannot_open = sqlite3.OperationalError("whatever")
    cannot_open.sqlite_errorcode = sqlite3.SQLITE_CANTOPEN
    assert isinstance(translate(cannot_open, "'a.db'", 1), OmmiConnectionError)


async def test_a_real_lock_error_carries_its_code(connect_file: Callable[..., Ommi], raw: sqlite3.Connection) -> None:
    """What SQLite raises for a held lock has a code, so the code path is the one that runs."""
    async with connect_file(busy_timeout=0.1) as db:
        await db.use_models(models)
        raw.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(OmmiTimeoutError) as caught:
                await db.add(Thing("blocked")).or_raise()
        finally:
            raw.execute("ROLLBACK")
    assert caught.value.__cause__.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # type: ignore[union-attr]
