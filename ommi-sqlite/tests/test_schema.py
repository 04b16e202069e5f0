"""``use_models`` on SQLite: creates what is missing, reports every drift, changes nothing when it does."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pytest
from ommi import Key, ModelCollection, Ommi, ReferenceTo, ommi_model
from ommi.errors import SchemaMismatchError

drift = ModelCollection("ommi_sqlite_test_schema_drift")
keyed = ModelCollection("ommi_sqlite_test_schema_keys")
linked = ModelCollection("ommi_sqlite_test_schema_links")


@ommi_model(collection=drift)
@dataclass
class Doc:
    title: str
    body: str | None
    size: int
    id: int | None = None


@ommi_model(collection=drift)
@dataclass
class Fresh:
    """Not stored yet: use_models must not create it when Doc drifted."""

    name: str
    id: int | None = None


@ommi_model(collection=keyed, name="Doc")
@dataclass
class KeyedDoc:
    title: Annotated[str, Key]
    body: str | None
    size: int
    id: int


@ommi_model(collection=linked)
@dataclass
class Parent:
    name: str
    id: int | None = None


@ommi_model(collection=linked)
@dataclass
class Kid:
    parent_id: Annotated[int, ReferenceTo(Parent)]
    id: int | None = None


def _store_drifted_doc(raw: sqlite3.Connection) -> None:
    raw.execute(
        'CREATE TABLE "Doc" (title INTEGER NOT NULL, body TEXT NOT NULL, extra TEXT, '
        "id INTEGER PRIMARY KEY AUTOINCREMENT)"
    )
    raw.execute("INSERT INTO Doc (title, body) VALUES (1, 'kept')")


async def test_drift_lists_every_difference_and_changes_nothing(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """Type, nullability, missing and extra columns are all named; no table is created or altered."""
    _store_drifted_doc(raw)
    before = raw.execute("SELECT sql FROM sqlite_schema").fetchall()
    async with connect_file() as db:
        with pytest.raises(SchemaMismatchError) as caught:
            await db.use_models(drift)
    message = str(caught.value)
    assert "'Doc'" in message
    assert "column 'title' has type INTEGER but Doc.title needs a type of TEXT affinity (TEXT, VARCHAR(n)" in message
    assert "column 'body' is NOT NULL but Doc.body is optional" in message
    assert "missing column 'size'" in message
    assert "extra column 'extra'" in message
    assert raw.execute("SELECT sql FROM sqlite_schema").fetchall() == before
    assert raw.execute("SELECT title, body FROM Doc").fetchall() == [(1, "kept")]


async def test_key_drift_is_reported(connect_file: Callable[..., Ommi], raw: sqlite3.Connection) -> None:
    """A different primary key is a mismatch, naming both sides."""
    raw.execute("CREATE TABLE Doc (title TEXT NOT NULL, body TEXT, size INTEGER NOT NULL, id INTEGER PRIMARY KEY)")
    async with connect_file() as db:
        with pytest.raises(SchemaMismatchError) as caught:
            await db.use_models(keyed)
    message = str(caught.value)
    assert "column 'title' is not part of the stored primary key but KeyedDoc.title is a key" in message
    assert "column 'id' is part of the stored primary key but KeyedDoc.id is not a key" in message


async def test_matching_tables_pass_and_missing_ones_are_created(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """A second ``use_models`` finds everything matching; indexes exist for references."""
    async with connect_file() as db:
        await db.use_models(linked)
        parent = await db.add(Parent("p")).or_raise()
        await db.add(Kid(parent_id=parent.id)).or_raise()
    async with connect_file() as db:
        await db.use_models(linked)
        assert await db.find(Kid).count.or_raise() == 1
    indexes = {name for (name,) in raw.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    assert "ix_Kid_parent_id" in indexes


async def test_remove_models_drops_referenced_tables_too(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """Dropping a collection removes referencing and referenced tables, rows and all."""
    async with connect_file() as db:
        await db.use_models(linked)
        parent = await db.add(Parent("p")).or_raise()
        await db.add(Kid(parent_id=parent.id)).or_raise()
        await db.remove_models(linked)
        tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        assert not tables & {"Parent", "Kid"}
        # Foreign keys are on again after the drop.
        await db.use_models(linked)
        from ommi.errors import IntegrityError

        with pytest.raises(IntegrityError):
            await db.add(Kid(parent_id=12345)).or_raise()
