"""MongoDB migrations: resumption instead of rollback, and the lock document.

MongoDB has no transactional DDL, so the conformance test "a failed run
changes nothing" is impossible here (``test_conformance.py`` says why); these
tests show what the driver does instead: a run that fails or is cancelled at
any awaited command leaves recorded progress, the next run resumes it, each
operation is applied once, and the documents end as one clean run leaves them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from ommi import Ommi, migrations
from ommi.errors import MigrationError, MigrationTimeoutError, SchemaMismatchError
from ommi.migrations import MigrationStep
from ommi.migrations.history import history_models
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._migrate import MIGRATE_COLLECTION, Command, Planner

_FIRST = """
from ommi.migrations import CreateModel, FieldSpec

id = "0001_people"
parent = None

operations = [
    CreateModel(
        "mm_person",
        [
            FieldSpec("id", "int", key=True, generated=True),
            FieldSpec("name", "str"),
            FieldSpec("age", "int"),
        ],
    ),
]
"""

_SECOND = """
from ommi.migrations import AddField, ChangeType, FieldSpec, RenameField

id = "0002_reshape"
parent = "0001_people"

operations = [
    AddField("mm_person", FieldSpec("country", "str", default="unknown")),
    ChangeType("mm_person", FieldSpec("age", "int"), FieldSpec("age", "str")),
    RenameField("mm_person", "name", "full_name"),
]
"""

PEOPLE = [("Ada", 36), ("Grace", 85), ("Alan", 41)]
EXPECTED = sorted([("Ada", "36", "unknown"), ("Grace", "85", "unknown"), ("Alan", "41", "unknown")])


def _write(directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "0001_people.py").write_text(_FIRST, encoding="utf-8")
    (directory / "0002_reshape.py").write_text(_SECOND, encoding="utf-8")


def _models(directory: Path, at: int) -> Any:
    return migrations.replay(migrations.load(directory))[at].model_classes()["mm_person"]


async def _drop(db: Ommi, directory: Path) -> None:
    for state in migrations.replay(migrations.load(directory)):
        await db.remove_models(list(state.model_classes().values()))
    await db.remove_models(history_models)
    assert isinstance(db.driver, MongoDBDriver)
    await db.driver._opening().database[MIGRATE_COLLECTION].delete_many({})


@pytest.fixture
def mig_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    _write(directory)
    return directory


@pytest_asyncio.fixture
async def db(make_driver: Callable[..., MongoDBDriver], mig_dir: Path) -> AsyncIterator[Ommi]:
    """A database with 0001 applied and three people stored, 0002 pending."""
    database = Ommi(make_driver(), allow_implicit_model_setup=False)
    await database.open()
    await _drop(database, mig_dir)
    try:
        assert [r.id for r in await migrations.apply(database, mig_dir, to="0001_people")] == ["0001_people"]
        Person = _models(mig_dir, 0)
        await database.add(*(Person(name=name, age=age) for name, age in PEOPLE)).or_raise()
        yield database
    finally:
        await _drop(database, mig_dir)
        await database.close()


async def _people(db: Ommi, directory: Path) -> list[tuple[str, str, str]]:
    Person = _models(directory, 1)
    return sorted((p.full_name, p.age, p.country) for p in await db.find(Person).all.to_list())


async def _lock(db: Ommi) -> Any:
    assert isinstance(db.driver, MongoDBDriver)
    return await db.driver._opening().database[MIGRATE_COLLECTION].find_one({"_id": "lock"})


class _Counted:
    """Counts the operations of migration 0002 that ran their commands (not skipped as done), by index."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> None:
        self.runs: dict[int, int] = {}
        self.fail_at = fail_at
        original = Planner.commands

        def commands(planner: Planner, step: MigrationStep) -> list[Command]:
            planned = original(planner, step)
            if step.migration != "0002_reshape":
                return planned
            first = planned[0]

            async def counted() -> None:
                if self.fail_at == step.index:
                    self.fail_at = None
                    raise ConnectionResetError("the connection dropped in operation 2")
                self.runs[step.index] = self.runs.get(step.index, 0) + 1
                await first.run()

            return [Command(first.text, counted), *planned[1:]]

        monkeypatch.setattr(Planner, "commands", commands)


async def test_failure_in_second_operation_resumes(db: Ommi, mig_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Operation 2 of 3 fails: operation 1 stays applied and recorded, nothing is in the history; a rerun completes."""
    counted = _Counted(monkeypatch, fail_at=1)
    with pytest.raises(ConnectionResetError):
        await migrations.apply(db, mig_dir)
    assert counted.runs == {0: 1}
    assert [s.state for s in await migrations.status(db, mig_dir)] == ["applied", "pending"]
    assert await _lock(db) is None, "a failed run releases the lock"
    assert isinstance(db.driver, MongoDBDriver)
    progress = db.driver._opening().database[MIGRATE_COLLECTION]
    assert [d["_id"] async for d in progress.find({"migration": "0002_reshape"})] == ["0002_reshape:up:0"]

    assert [r.id for r in await migrations.apply(db, mig_dir)] == ["0002_reshape"]
    assert counted.runs == {0: 1, 1: 1, 2: 1}, "each operation applied once"
    assert await _people(db, mig_dir) == EXPECTED
    assert await progress.count_documents({}) == 0, "a completed migration forgets its progress"
    await db.use_models(list(migrations.replay(migrations.load(mig_dir))[1].model_classes().values()))
    assert await migrations.apply(db, mig_dir) == []


async def test_cancelled_at_each_command_then_rerun(db: Ommi, mig_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled at growing delays (so at one awaited command after another), then run again.

    The lock is never left behind, the history records each migration once, and
    the documents are those of one clean run.
    """
    counted = _Counted(monkeypatch)
    assert isinstance(db.driver, MongoDBDriver)
    db.driver.migration_lock_wait = 5.0  # a lock left behind by a cancellation would fail the next attempt
    cancelled = 0
    delay = 0.0005
    while True:
        try:
            result = await asyncio.wait_for(migrations.apply(db, mig_dir), timeout=delay)
        except TimeoutError:
            cancelled += 1
            assert await _lock(db) is None, f"a run cancelled after {delay} s left the lock behind"
            delay *= 1.5
            continue
        break
    assert cancelled > 3
    assert [r.id for r in result] in (["0002_reshape"], [])
    assert await migrations.apply(db, mig_dir) == []
    assert await _people(db, mig_dir) == EXPECTED
    # An operation cancelled half-way runs again on the next attempt (idempotently: the documents above are
    # converted and renamed once); one whose progress was recorded is skipped.
    assert sorted(counted.runs) == [0, 1, 2]
    assert counted.runs[0] <= cancelled + 1
    assert [s.state for s in await migrations.status(db, mig_dir)] == ["applied", "applied"]


async def test_concurrent_applies_apply_once(
    db: Ommi, mig_dir: Path, make_driver: Callable[..., MongoDBDriver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three databases applying at once: each operation runs its commands once, one of them reports the migration."""
    counted = _Counted(monkeypatch)
    others = [Ommi(make_driver(), allow_implicit_model_setup=False) for _ in range(3)]
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(migrations.apply(other, mig_dir) for other in others)), timeout=120
        )
    finally:
        for other in others:
            await other.close()
    assert sorted(r.id for result in results for r in result) == ["0002_reshape"]
    assert counted.runs == {0: 1, 1: 1, 2: 1}
    assert await _people(db, mig_dir) == EXPECTED


async def test_expired_lock_is_taken_over(db: Ommi, mig_dir: Path) -> None:
    """A lock whose holder stopped renewing it (a crashed run) is taken over once it has expired."""
    assert isinstance(db.driver, MongoDBDriver)
    locks = db.driver._opening().database[MIGRATE_COLLECTION]
    await locks.insert_one({"_id": "lock", "owner": "dead", "holder": "crashed", "expires_at": time.time() - 1})
    db.driver.migration_lock_wait = 5.0
    assert [r.id for r in await migrations.apply(db, mig_dir)] == ["0002_reshape"]
    assert await _lock(db) is None
    assert await _people(db, mig_dir) == EXPECTED


async def test_live_lock_waits_then_fails_naming_its_holder(db: Ommi, mig_dir: Path) -> None:
    """A lock renewed by a live run: apply waits ``migration_lock_wait``, then fails naming the holder; nothing runs."""
    assert isinstance(db.driver, MongoDBDriver)
    locks = db.driver._opening().database[MIGRATE_COLLECTION]
    await locks.insert_one({"_id": "lock", "owner": "other", "holder": "host-b pid 7", "expires_at": time.time() + 60})
    db.driver.migration_lock_wait = 0.5
    started = time.monotonic()
    with pytest.raises(MigrationError, match=r"holds the migration lock.*host-b pid 7"):
        await migrations.apply(db, mig_dir)
    assert time.monotonic() - started >= 0.5
    assert [s.state for s in await migrations.status(db, mig_dir)] == ["applied", "pending"]
    assert (await _lock(db))["owner"] == "other", "the live holder's lock is left alone"

    # Once the holder releases it, a waiting run goes on.
    db.driver.migration_lock_wait = 10.0

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        await locks.delete_one({"_id": "lock", "owner": "other"})

    applied, _ = await asyncio.gather(migrations.apply(db, mig_dir), release_soon())
    assert [r.id for r in applied] == ["0002_reshape"]
    assert await _people(db, mig_dir) == EXPECTED


async def test_lock_taken_over_stops_the_run(db: Ommi, mig_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose lock expired and was taken by another stops before its next command; the next run resumes."""
    assert isinstance(db.driver, MongoDBDriver)
    locks = db.driver._opening().database[MIGRATE_COLLECTION]
    original = Planner.commands

    def commands(planner: Planner, step: MigrationStep) -> list[Command]:
        planned = original(planner, step)
        if step.migration == "0002_reshape" and step.index == 1:

            async def steal() -> None:
                await locks.update_one({"_id": "lock"}, {"$set": {"owner": "thief", "expires_at": time.time() + 60}})

            return [Command("steal", steal), *planned]
        return planned

    monkeypatch.setattr(Planner, "commands", commands)
    with pytest.raises(MigrationError, match="another run took it over"):
        await migrations.apply(db, mig_dir)
    assert (await _lock(db))["owner"] == "thief", "the new holder's lock is not released by the stopped run"
    await locks.delete_one({"_id": "lock"})
    monkeypatch.setattr(Planner, "commands", original)
    assert [r.id for r in await migrations.apply(db, mig_dir)] == ["0002_reshape"]
    assert await _people(db, mig_dir) == EXPECTED


async def test_dry_run_describes_each_command(db: Ommi, mig_dir: Path) -> None:
    """``sql``/``dry_run`` prints readable commands: the backfill, the conversion, the rename and the record."""
    (planned,) = await migrations.apply(db, mig_dir, dry_run=True)
    text = "\n".join(planned.statements)
    assert '"country": {"$exists": false}' in text and '"$set": {"country": "unknown"}' in text
    assert '"$rename": {"name": "full_name"}' in text
    assert "age" in text and "_ommi_schema" in text
    assert [s.state for s in await migrations.status(db, mig_dir)] == ["applied", "pending"]


_THIRD = """
from ommi.migrations import AddField, CreateModel, FieldSpec

id = "0003_teams"
parent = "0002_reshape"

operations = [
    CreateModel("mm_team", [FieldSpec("id", "int", key=True, generated=True), FieldSpec("title", "str")]),
    AddField("mm_person", FieldSpec("team", "int", nullable=True, reference="mm_team")),
]
"""

_FOURTH = """
from ommi.migrations import FieldSpec, RemoveField

id = "0004_no_teams"
parent = "0003_teams"

operations = [RemoveField("mm_person", FieldSpec("team", "int", nullable=True, reference="mm_team"))]
"""


async def test_reference_index_follows_its_field(db: Ommi, mig_dir: Path) -> None:
    """A referencing field added gets its index, as use_models makes it; removed, the index goes with it."""
    assert isinstance(db.driver, MongoDBDriver)
    (mig_dir / "0003_teams.py").write_text(_THIRD, encoding="utf-8")
    await migrations.apply(db, mig_dir)
    collection = db.driver._opening().database[db.driver.settings.collection_prefix + "mm_person"]

    async def indexed() -> list[list[str]]:
        return sorted([list(dict(info["key"])) async for info in await collection.list_indexes()])

    assert await indexed() == [["_id"], ["team"]]
    await db.use_models(list(migrations.replay(migrations.load(mig_dir))[2].model_classes().values()))
    (mig_dir / "0004_no_teams.py").write_text(_FOURTH, encoding="utf-8")
    assert [r.id for r in await migrations.apply(db, mig_dir)] == ["0004_no_teams"]
    assert await indexed() == [["_id"]]
    assert await _people(db, mig_dir) == EXPECTED


_COUNTRY = """
from ommi.migrations import AddField, FieldSpec

id = "0002_country"
parent = "0001_people"

operations = [AddField("mm_person", FieldSpec("country", "str", default="unknown"))]
"""


async def test_document_of_old_models_lacks_the_added_field(
    db: Ommi, tmp_path: Path, make_driver: Callable[..., MongoDBDriver]
) -> None:
    """A writer on the previous models after ``country`` was added: its document lacks it, and reading it says so.

    MongoDB has no column defaults, so nothing fills the field; the new models
    refuse to read the document as a row with ``None`` in a required field
    (``SchemaMismatchError`` naming the document and the field, and why).
    Documents written before the migration were backfilled and still read.
    """
    directory = tmp_path / "country"
    directory.mkdir()
    (directory / "0001_people.py").write_text(_FIRST, encoding="utf-8")
    (directory / "0002_country.py").write_text(_COUNTRY, encoding="utf-8")
    try:
        async with Ommi(make_driver(), allow_implicit_model_setup=False) as old:
            Person = _models(directory, 0)
            await old.use_models([Person])
            assert [r.id for r in await migrations.apply(db, directory)] == ["0002_country"]
            await old.add(Person(name="Old writer", age=50)).or_raise()  # nothing refuses it
        New = _models(directory, 1)
        with pytest.raises(
            SchemaMismatchError, match=r"required field country .*has no value \(the document lacks it\)"
        ):
            await db.find(New).all.to_list()
        (ada,) = await db.find(New, New.name == "Ada").all.to_list()
        assert (ada.name, ada.country) == ("Ada", "unknown")
    finally:
        await _drop(db, directory)


async def test_lock_timeout_overrides_the_lock_wait(db: Ommi, make_driver: Callable[..., MongoDBDriver]) -> None:
    """``apply(lock_timeout=...)`` waits that long for a live lock, not ``migration_lock_wait``, then names it."""
    async with Ommi(make_driver(), allow_implicit_model_setup=False) as other:  # migration_lock_wait: 300 s
        holder = await other.driver.begin_migration()
        try:
            started = time.monotonic()
            with pytest.raises(MigrationTimeoutError, match=r"lock_timeout=0\.5"):
                await db.driver.begin_migration(lock_timeout=0.5)
            assert time.monotonic() - started < 30
        finally:
            await holder.rollback()
