"""Migrations on SQLite beyond the conformance suite: processes, a killed run, the statements SQLite gets.

The testkit's ``MigrationTests`` (in test_conformance.py) cover the
operations and their data. These tests need a file shared by processes, or
look at SQLite itself (``PRAGMA``), or at the statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import ommi
import pytest
from ommi import IntegrityError, Key, ModelCollection, Ommi, ReferenceTo, migrations, ommi_model
from ommi_sqlite import SQLiteDriver

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


# A data step that marks its run in the items table, then waits while $OMMI_TEST_HANG names a file to create.
_SLOW_STEP = """
import asyncio
import os
from pathlib import Path

from ommi.migrations import AddField, FieldSpec

id = "0002_slow"
parent = "0001_initial"

operations = [AddField("items", FieldSpec("count", "int", default=0))]


async def run(db):
    Items = db.models["items"]
    await db.add(Items(label="marker", count=1)).or_raise()
    signal = os.environ.get("OMMI_TEST_HANG")
    if signal:
        Path(signal).write_text("running")
        await asyncio.sleep(600)
    await asyncio.sleep(float(os.environ.get("OMMI_TEST_PAUSE", "0")))
"""

_APPLY = textwrap.dedent(
    """
    import asyncio, sys
    import ommi
    from ommi import migrations

    async def main():
        async with ommi.connect(sys.argv[1], allow_implicit_model_setup=False, busy_timeout=60) as db:
            for result in await migrations.apply(db, sys.argv[2]):
                print(result.id, flush=True)

    asyncio.run(main())
    """
)


def _prepare(tmp_path: Path) -> tuple[str, Path]:
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    (directory / "0002_slow.py").write_text(_SLOW_STEP, encoding="utf-8")
    return f"sqlite:///{tmp_path / 'app.db'}", directory


def _apply_process(url: str, directory: Path, **environment: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _APPLY, url, str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **environment},
    )


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
    deadline = time.monotonic() + 60
    while not signal_file.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the migration never reached its data step"
        time.sleep(0.05)
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
