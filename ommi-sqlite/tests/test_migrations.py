"""Migrations on SQLite beyond the conformance suite: processes, a killed run, the statements SQLite gets.

The testkit's ``MigrationTests`` (in test_conformance.py) cover the
operations and their data. These tests need a file shared by processes, or
look at SQLite itself (``PRAGMA``), or at the statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import signal
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import ommi
import pytest
from ommi import IntegrityError, Key, ModelCollection, Ommi, ReferenceTo, Unique, migrations, ommi_model
from ommi.errors import MigrationError
from ommi.models import get_schema
from ommi_sqlite import SQLiteDriver
from ommi_testkit.migrating import apply_process, slow_step, wait_for_file

v1 = ModelCollection("sqlite migrations v1")
v2 = ModelCollection("sqlite migrations v2")
keyed_v1 = ModelCollection("sqlite migrations keyed v1")
keyed_v2 = ModelCollection("sqlite migrations keyed v2")


@ommi_model(collection=v1, name="items")
@dataclass
class Item:
    label: str
    id: int = ommi.generated_key()


@ommi_model(collection=v2, name="items")
@dataclass
class Item2:
    label: str
    count: int = 0
    note: str | None = None
    id: int = ommi.generated_key()


@ommi_model(collection=keyed_v1, name="parents")
@dataclass
class Parent:
    name: str
    id: Annotated[int, Key] = ommi.generated_key()


@ommi_model(collection=keyed_v1, name="children")
@dataclass
class Child:
    parent: Annotated[int, ReferenceTo(Parent)]
    id: int = ommi.generated_key()


@ommi_model(collection=keyed_v2, name="parents")
@dataclass
class Parent2:
    name: str
    code: Annotated[int, Key] = ommi.generated_key()


@ommi_model(collection=keyed_v2, name="children")
@dataclass
class Child2:
    parent: Annotated[int, ReferenceTo(Parent2)]
    id: int = ommi.generated_key()


def _prepare(tmp_path: Path) -> tuple[str, Path]:
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    (directory / "0002_slow.py").write_text(slow_step("items"), encoding="utf-8")
    return f"sqlite:///{tmp_path / 'app.db'}", directory


def _apply_process(url: str, directory: Path, **environment: str) -> subprocess.Popen[str]:
    return apply_process(url, directory, {"busy_timeout": 60}, **environment)


def _markers(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        (count,) = connection.execute("SELECT count(*) FROM items WHERE label = 'marker'").fetchone()
    return int(count)


def test_two_processes_apply_each_migration_once(tmp_path: Path) -> None:
    """Two processes applying the same files at the same moment: each migration runs once, in one of them."""
    url, directory = _prepare(tmp_path)
    processes = [_apply_process(url, directory, OMMI_TEST_PAUSE="0.5") for _ in range(2)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs += out.split()
    assert sorted(outputs) == ["0001_initial", "0002_slow"]
    assert _markers(tmp_path / "app.db") == 1


def test_killed_run_leaves_a_recorded_boundary(tmp_path: Path) -> None:
    """A process killed inside a migration leaves the database at the previous migration, which a new run completes."""
    url, directory = _prepare(tmp_path)
    signal_file = tmp_path / "running"
    process = _apply_process(url, directory, OMMI_TEST_HANG=str(signal_file))
    wait_for_file(signal_file, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)

    async def check() -> None:
        async with Ommi(SQLiteDriver.connect(str(tmp_path / "app.db")), allow_implicit_model_setup=False) as db:
            assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
            await db.use_models(v1)  # no column 'count': the killed migration left nothing
            assert await db.find(Item).count.or_raise() == 0
            assert [r.id for r in await migrations.apply(db, directory)] == ["0002_slow"]
            items = migrations.replay(migrations.load(directory))[-1].model_classes()["items"]
            assert [(i.label, i.count) for i in await db.find(items).all.to_list()] == [("marker", 1)]

    asyncio.run(check())


async def test_simple_changes_alter_the_table_in_place(tmp_path: Path) -> None:
    """An optional field, or one with a default, is ``ALTER TABLE ... ADD COLUMN``: no copy of the rows."""
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    migrations.make(v2, directory)
    async with Ommi(SQLiteDriver.connect(str(tmp_path / "app.db"))) as db:
        await migrations.apply(db, directory, to="0001_initial")
        item = await db.add(Item("kept")).or_raise()
        (planned,) = await migrations.apply(db, directory, dry_run=True)
        assert planned.statements == (
            'ALTER TABLE "items" ADD COLUMN "count" INTEGER NOT NULL DEFAULT 0',
            'ALTER TABLE "items" ADD COLUMN "note" TEXT',
        )
        await migrations.apply(db, directory)
        await db.use_models(v2)
        assert await db.find(Item2, Item2.id == item.id).one.or_raise() == Item2("kept", 0, None, item.id)


async def test_renamed_key_column_keeps_foreign_keys(tmp_path: Path) -> None:
    """Renaming a key that other tables reference carries their foreign keys along; they are still enforced."""
    directory = tmp_path / "migrations"
    path = tmp_path / "app.db"
    migrations.make(keyed_v1, directory)
    migrations.make(keyed_v2, directory, renames=["Parent2.id=code"])
    async with Ommi(SQLiteDriver.connect(str(path))) as db:
        await migrations.apply(db, directory, to="0001_initial")
        parent = await db.add(Parent("p")).or_raise()
        await db.add(Child(parent.id)).or_raise()
        await migrations.apply(db, directory)
        await db.use_models(keyed_v2)
        with pytest.raises(IntegrityError):
            await db.add(Child2(parent.id + 1)).or_raise()
        with pytest.raises(IntegrityError):
            await db.find(Parent2, Parent2.code == parent.id).delete.or_raise()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        references = connection.execute('SELECT "table", "to" FROM pragma_foreign_key_list(\'children\')').fetchall()
    assert references == [("parents", "code")]


async def test_foreign_keys_are_on_again_after_a_failed_migration(tmp_path: Path) -> None:
    """The writer gets foreign keys back whether the migration commits or fails."""
    directory = tmp_path / "migrations"
    migrations.make(keyed_v1, directory)
    failing = 'id = "0002_fails"\nparent = "0001_initial"\noperations = []\n\nasync def run(db):\n    raise KeyError\n'
    (directory / "0002_fails.py").write_text(failing, encoding="utf-8")
    async with Ommi(SQLiteDriver.connect(str(tmp_path / "app.db"), pool_size=1)) as db:
        with pytest.raises(KeyError):
            await migrations.apply(db, directory)
        await db.use_models(keyed_v1)
        with pytest.raises(IntegrityError):
            await db.add(Child(12345)).or_raise()
        async with db.transaction() as t:
            with pytest.raises(IntegrityError):
                await t.add(Child(54321)).or_raise()


async def test_memory_database_migrates(tmp_path: Path) -> None:
    """A private in-memory database migrates on its one connection."""
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    migrations.make(v2, directory)
    async with Ommi(SQLiteDriver.connect(":memory:")) as db:
        await migrations.apply(db, directory, to="0001_initial")
        await db.add(Item("in memory")).or_raise()
        await migrations.apply(db, directory)
        await db.use_models(v2)
        assert [i.label for i in await db.find(Item2).all.to_list()] == ["in memory"]


retyped_v2 = ModelCollection("sqlite migrations retyped v2")


@ommi_model(collection=retyped_v2, name="items")
@dataclass
class ItemRetyped:
    label: str | None = None  # required -> optional: SQLite cannot ALTER a column, so the table is rebuilt
    count: int = 0
    id: int = ommi.generated_key()


@pytest.mark.parametrize("target", [v2, retyped_v2], ids=["add-columns", "rebuild"])
async def test_rows_written_while_a_migration_runs_are_kept(tmp_path: Path, target: ModelCollection) -> None:
    """Writers on another connection keep adding rows while ``apply`` runs: every acknowledged row survives.

    ``add-columns`` alters the table in place; ``rebuild`` makes a required field
    optional, which SQLite does through the table-rebuild procedure (copy, drop,
    rename). A row acknowledged before the migration's
    write lock is copied; one after it lands in the new table. A write the
    schema change makes impossible may fail, loudly, but never vanish.
    """
    directory = tmp_path / "migrations"
    url = f"sqlite:///{tmp_path / 'app.db'}"
    migrations.make(v1, directory)
    async with ommi.connect(url) as db:
        await migrations.apply(db, directory)
    migrations.make(target, directory, allow_destructive=True)

    acknowledged: list[int] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def writer(db: Ommi) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                item = await db.add(Item(f"w{n}")).or_raise()
            except IntegrityError as exc:  # refused by the new schema: loud, not lost
                failures.append(exc)
            else:
                acknowledged.append(item.id)
            await asyncio.sleep(0)

    async with ommi.connect(url) as writing, ommi.connect(url) as migrating:
        await writing.use_models(v1)
        tasks = [asyncio.create_task(writer(writing)) for _ in range(3)]
        await asyncio.sleep(0.05)
        applied = await migrations.apply(migrating, directory)
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
    assert len(applied) == 1, "the migration ran"
    rebuilt = any(statement.startswith("DROP TABLE") for statement in applied[0].statements)
    assert rebuilt == (target is retyped_v2), applied[0].statements
    assert len(acknowledged) > 10
    with contextlib.closing(sqlite3.connect(tmp_path / "app.db")) as check:
        stored = {row[0] for row in check.execute("SELECT id FROM items")}
    assert set(acknowledged) <= stored, f"lost: {sorted(set(acknowledged) - stored)[:10]}"
    assert not [exc for exc in failures if not isinstance(exc, IntegrityError)]


big_v1 = ModelCollection("sqlite migrations big v1")
big_v2 = ModelCollection("sqlite migrations big v2")


@ommi_model(collection=big_v1, name="big_parents")
@dataclass
class BigParent:
    score: int
    id: int = ommi.generated_key()


@ommi_model(collection=big_v1, name="big_children")
@dataclass
class BigChild:
    parent: Annotated[int, ReferenceTo(BigParent)]
    id: int = ommi.generated_key()


@ommi_model(collection=big_v2, name="big_parents")
@dataclass
class BigParent2:
    score: decimal.Decimal  # int -> Decimal: SQLite rebuilds the table
    id: int = ommi.generated_key()


@ommi_model(collection=big_v2, name="big_children")
@dataclass
class BigChild2:
    parent: Annotated[int, ReferenceTo(BigParent2)]
    id: int = ommi.generated_key()


async def test_large_table_rebuild_keeps_rows_keys_and_references(tmp_path: Path) -> None:
    """200,000 rows through a table rebuild: every row and key kept, references to it still valid and enforced.

    Keys are sparse (every third one deleted) so that a rebuild renumbering
    rows would show; the AUTOINCREMENT counter carries over, so a new row
    never reuses a key handed out before.
    """
    rows = 200_000
    directory = tmp_path / "migrations"
    path = tmp_path / "big.db"
    migrations.make(big_v1, directory)
    migrations.make(big_v2, directory)
    async with Ommi(SQLiteDriver.connect(str(path))) as db:
        await migrations.apply(db, directory, to="0001_initial")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executemany(
            "INSERT INTO big_parents (id, score) VALUES (?, ?)", ((i, i * 7) for i in range(1, rows + 1))
        )
        connection.execute("DELETE FROM big_parents WHERE id % 3 = 0")
        connection.executemany(
            "INSERT INTO big_children (parent) VALUES (?)", ((i,) for i in range(1, rows + 1) if i % 3 and i % 97 == 1)
        )
        connection.commit()
        before = connection.execute("SELECT count(*), sum(id), sum(score), max(id) FROM big_parents").fetchone()
        children = connection.execute("SELECT id, parent FROM big_children ORDER BY id").fetchall()
    async with Ommi(SQLiteDriver.connect(str(path))) as db:
        (result,) = await migrations.apply(db, directory)
        assert any(statement.startswith('DROP TABLE "big_parents"') for statement in result.statements)
        await db.use_models(big_v2)
        new = await db.add(BigParent2(decimal.Decimal("1.5"))).or_raise()
        assert new.id == before[3] + 1
        with pytest.raises(IntegrityError):
            await db.add(BigChild2(3)).or_raise()  # key 3 was deleted before the rebuild
        with pytest.raises(IntegrityError):
            await db.find(BigParent2, BigParent2.id == children[0][1]).delete.or_raise()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        after = connection.execute(
            "SELECT count(*), sum(id), sum(CAST(score AS INTEGER)), max(id) FROM big_parents WHERE id <= ?", [before[3]]
        ).fetchone()
        assert after == before
        assert connection.execute("SELECT id, parent FROM big_children ORDER BY id").fetchall() == children
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        references = connection.execute('SELECT "table", "to" FROM pragma_foreign_key_list(\'big_children\')')
        assert references.fetchall() == [("big_parents", "id")]


tags_v1 = ModelCollection("sqlite migrations tags v1")
tags_v2 = ModelCollection("sqlite migrations tags v2")


@ommi_model(collection=tags_v1, name="tags")
@dataclass
class Tag:
    label: Annotated[str, Unique]
    id: int = ommi.generated_key()


@ommi_model(collection=tags_v2, name="tags")
@dataclass
class Tag2:
    label: str
    id: int = ommi.generated_key()


async def test_remove_unique_written_inside_create_table_rebuilds(tmp_path: Path) -> None:
    """A ``UNIQUE`` written inside ``CREATE TABLE`` (another tool's table, read by ``ommi inspect``) is an
    automatic index ``DROP INDEX`` cannot remove: ``RemoveUnique`` rebuilds the table, keeping its rows, so
    that no unique index over the column is left to refuse equal values."""
    path = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)")
        conn.execute("INSERT INTO tags (id, label) VALUES (7, 'kept')")
        conn.commit()
    directory = tmp_path / "migrations"
    migrations.make(tags_v1, directory)
    migrations.make(tags_v2, directory)
    first = migrations.load(directory)[0].id

    def indexes() -> list[str]:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute("SELECT name FROM pragma_index_list('tags') WHERE \"unique\" ORDER BY name")
            return [name for (name,) in rows]

    async with Ommi(SQLiteDriver.connect(str(path))) as db:
        await migrations.apply(db, directory, to=first)  # adopted (and given the model's unique index too)
        assert indexes() == ["sqlite_autoindex_tags_1", get_schema(Tag).constraints[0].name]
        await migrations.apply(db, directory)
        assert indexes() == []
        await db.use_models(tags_v2)
        await db.add(Tag2("kept")).or_raise()
        assert sorted((t.label, t.id) for t in await db.find(Tag2).all.to_list())[0] == ("kept", 7)
        assert await db.find(Tag2).count.or_raise() == 2

        with pytest.raises(IntegrityError):  # AddUnique over two equal labels: refused, nothing undone
            await migrations.down(db, directory, to=first)
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "applied"]
        await db.find(Tag2.id != 7).delete().or_raise()
        await migrations.down(db, directory, to=first)
        assert indexes() == [get_schema(Tag).constraints[0].name]


async def test_rebuild_keeps_indexes_made_by_hand(tmp_path: Path) -> None:
    """A table rebuild drops the table's indexes; those a person added (not the model's) are made again."""
    path = tmp_path / "app.db"
    directory = tmp_path / "migrations"
    migrations.make(tags_v2, directory)
    first = migrations.load(directory)[0].id
    (directory / "0002_default.py").write_text(
        "from ommi.migrations import SetDefault\n\n"
        f"id = '0002_default'\nparent = {first!r}\n\n"
        "operations = [SetDefault('tags', 'label', None, 'none yet')]\n",
        encoding="utf-8",
    )

    def indexes() -> list[tuple[str, str]]:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tags'")
            return sorted(rows)

    async with Ommi(SQLiteDriver.connect(str(path))) as db:
        await migrations.apply(db, directory, to=first)
        await db.use_models(tags_v2)
        await db.add(Tag2("a"), Tag2("b")).or_raise()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE INDEX by_hand ON tags (label, id)")
            conn.execute("CREATE INDEX by_hand_expr ON tags (lower(label))")
            conn.commit()
        made_by_hand = indexes()
        assert [name for name, _ in made_by_hand] == ["by_hand", "by_hand_expr"]
        (planned,) = await migrations.apply(db, directory, dry_run=True)
        assert any(statement.startswith("DROP TABLE") for statement in planned.statements)  # a rebuild
        await migrations.apply(db, directory)
        assert indexes() == made_by_hand
        assert sorted(t.label for t in await db.find(Tag2).all.to_list()) == ["a", "b"]


async def test_rebuild_refuses_to_drop_what_another_tool_made(tmp_path: Path) -> None:
    """A rebuild would make the table as Ommi does: a trigger, a CHECK and a VARCHAR(20) of another tool would go.

    The migration is refused before anything runs, naming each; so is one whose rebuild a view refuses.
    """
    path = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            """
            CREATE TABLE tags (id INTEGER PRIMARY KEY, label VARCHAR(20) NOT NULL CHECK (length(label) > 0));
            CREATE TABLE audit (message TEXT);
            CREATE TRIGGER tags_added AFTER INSERT ON tags BEGIN INSERT INTO audit VALUES (NEW.label); END;
            INSERT INTO tags (id, label) VALUES (1, 'kept');
            """
        )
    directory = tmp_path / "migrations"
    migrations.make(tags_v2, directory)
    first = migrations.load(directory)[0].id
    (directory / "0002_default.py").write_text(
        "from ommi.migrations import SetDefault\n\n"
        f"id = '0002_default'\nparent = {first!r}\n\n"
        "operations = [SetDefault('tags', 'label', None, 'none yet')]\n",
        encoding="utf-8",
    )

    def table() -> list[tuple[str, str]]:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return sorted(conn.execute("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'tags'"))

    async with Ommi(SQLiteDriver.connect(str(path))) as db:
        await migrations.apply(db, directory, to=first)  # adopted as it is
        stored = table()
        with pytest.raises(MigrationError) as refused:
            await migrations.apply(db, directory)
        message = str(refused.value)
        assert "trigger 'tags_added'" in message
        assert "CHECK" in message
        assert "column 'id'" not in message  # Ommi's own key column is what Ommi makes
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
        assert table() == stored

    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            """
            DROP TRIGGER tags_added;
            CREATE TABLE plain (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
            INSERT INTO plain SELECT id, label FROM tags;
            DROP TABLE tags;
            ALTER TABLE plain RENAME TO tags;
            CREATE VIEW long_tags AS SELECT label FROM tags WHERE length(label) > 3;
            """
        )
    async with Ommi(SQLiteDriver.connect(str(path))) as db:
        with pytest.raises(MigrationError, match="drop the view or trigger, apply, then create it again"):
            await migrations.apply(db, directory)
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
        assert [t.label for t in await db.find(Tag2).all.to_list()] == ["kept"]
