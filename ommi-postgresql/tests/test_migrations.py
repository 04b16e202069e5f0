"""Migrations on PostgreSQL beyond the conformance suite: processes, the advisory lock, transactional DDL, schemas.

The testkit's ``MigrationTests`` (in test_conformance.py) cover the
operations and their data. These tests need processes sharing a server,
look at PostgreSQL's catalog, or use a schema of their own with names that
need quoting.
"""

from __future__ import annotations

import asyncio
import decimal
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import ommi
import psycopg
import pytest
from ommi import IntegrityError, ModelCollection, Ommi, ReferenceTo, StoreAs, Unique, migrations, ommi_model
from ommi.errors import MigrationError, TimeoutError, ValidationError
from ommi_postgresql import PostgreSQLDriver
from ommi_testkit.migrating import apply_process, slow_step, wait_for_file

v1 = ModelCollection("postgresql migrations v1")
v2 = ModelCollection("postgresql migrations v2")
odd_v1 = ModelCollection("postgresql migrations odd v1")
odd_v2 = ModelCollection("postgresql migrations odd v2")
odd_v3 = ModelCollection("postgresql migrations odd v3")
odd_ref = ModelCollection("postgresql migrations odd ref")

OWNERS = 'Own"er %s'
PETS = "pe't %(x)s"


@ommi_model(collection=v1, name="pg_mig_items")
@dataclass
class Item:
    label: str
    price: decimal.Decimal | None = None
    id: int = ommi.generated_key()


@ommi_model(collection=v2, name="pg_mig_items")
@dataclass
class Item2:
    label: str
    price: decimal.Decimal | None = None
    count: int = 0
    id: int = ommi.generated_key()


@ommi_model(collection=odd_v1, name=OWNERS)
@dataclass
class Owner:
    name: str
    id: int = ommi.generated_key()


@ommi_model(collection=odd_v1, name=PETS)
@dataclass
class Pet:
    label: Annotated[str, StoreAs('la"bel %')]
    owner: int
    weight: int | None = None
    nick: str | None = None
    id: int = ommi.generated_key()


@ommi_model(collection=odd_v2, name=OWNERS)
@dataclass
class Owner2:
    name: str
    id: int = ommi.generated_key()


@ommi_model(collection=odd_v2, name=PETS)
@dataclass
class Pet2:
    title: Annotated[str, StoreAs('ti"tle %')]
    owner: Annotated[int, ReferenceTo(Owner2)]
    weight: decimal.Decimal | None = None
    nick: str = "-"
    note: str | None = None
    id: int = ommi.generated_key()


@ommi_model(collection=odd_v3, name=OWNERS)
@dataclass
class Owner3:
    name: str
    id: int = ommi.generated_key()


@ommi_model(collection=odd_v3, name=PETS)
@dataclass
class Pet3:
    title: Annotated[str, StoreAs('ti"tle %')]
    keeper: Annotated[int, ReferenceTo(Owner3), StoreAs("kee per%")]
    weight: decimal.Decimal | None = None
    nick: str = "-"
    note: str | None = None
    id: int = ommi.generated_key()


@ommi_model(collection=odd_ref, name=OWNERS)
@dataclass
class OwnerRef:
    name: str
    id: int = ommi.generated_key()


@ommi_model(collection=odd_ref, name=PETS)
@dataclass
class PetRef:
    label: Annotated[str, StoreAs('la"bel %')]
    owner: Annotated[int, ReferenceTo(OwnerRef)]
    weight: int | None = None
    nick: str | None = None
    id: int = ommi.generated_key()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
def schema(postgresql_url: str, postgresql_schema: str) -> Iterator[str]:
    """A schema of this test alone, named after the worker's with characters that need quoting (dropped after)."""
    name = f'{postgresql_schema} mig "q" 5%'
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {_quoted(name)} CASCADE".replace("%", "%%"), [])
    try:
        yield name
    finally:
        with psycopg.connect(postgresql_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {_quoted(name)} CASCADE".replace("%", "%%"), [])


@pytest.fixture
def connect(postgresql_url: str, schema: str) -> Callable[..., Ommi]:
    """``connect(**settings)``: an unopened database on the test's schema."""

    def make(**settings: Any) -> Ommi:
        driver = PostgreSQLDriver.connect(postgresql_url, schema=schema, **settings)
        return Ommi(driver, allow_implicit_model_setup=False)

    return make


def _fetch(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _columns(url: str, schema: str, table: str) -> list[str]:
    sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
    return sorted(name for (name,) in _fetch(url, sql + " ORDER BY ordinal_position", schema, table))


def _prepare(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    (directory / "0002_slow.py").write_text(slow_step("pg_mig_items"), encoding="utf-8")
    return directory


def _apply_process(url: str, directory: Path, schema: str, **environment: str) -> subprocess.Popen[str]:
    return apply_process(url, directory, {"schema": schema}, **environment)


def _markers(url: str, schema: str) -> int:
    sql = f"SELECT count(*) FROM {_quoted(schema)}.pg_mig_items WHERE label = 'marker'".replace("%", "%%")
    return int(_fetch(url, sql)[0][0])


def test_two_processes_apply_each_migration_once(tmp_path: Path, postgresql_url: str, schema: str) -> None:
    """Two processes applying the same files at once: the advisory lock lets each migration run once, in one of them."""
    directory = _prepare(tmp_path)
    processes = [_apply_process(postgresql_url, directory, schema, OMMI_TEST_PAUSE="0.5") for _ in range(2)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs += out.split()
    assert sorted(outputs) == ["0001_initial", "0002_slow"]
    assert _markers(postgresql_url, schema) == 1


def test_killed_run_leaves_the_previous_boundary(tmp_path: Path, postgresql_url: str, schema: str) -> None:
    """A process killed inside a migration leaves the database at the previous migration; a new run completes it."""
    directory = _prepare(tmp_path)
    signal_file = tmp_path / "running"
    process = _apply_process(postgresql_url, directory, schema, OMMI_TEST_HANG=str(signal_file))
    wait_for_file(signal_file, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)

    async def check() -> None:
        driver = PostgreSQLDriver.connect(postgresql_url, schema=schema)
        async with Ommi(driver, allow_implicit_model_setup=False) as db:
            # The server rolls the killed session back and frees its lock; this run waits for that.
            assert [r.id for r in await migrations.apply(db, directory, to="0001_initial")] == []
            assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
            await db.use_models(v1)  # no column 'count': the killed migration left nothing
            assert await db.find(Item).count.or_raise() == 0
            assert [r.id for r in await migrations.apply(db, directory)] == ["0002_slow"]
            await db.use_models(v2)
            assert [(i.label, i.count) for i in await db.find(Item2).all.to_list()] == [("marker", 1)]

    asyncio.run(check())


async def test_lock_wait_is_bounded_by_lock_timeout(
    tmp_path: Path, postgresql_url: str, schema: str, connect: Callable[..., Ommi]
) -> None:
    """While another session holds the migration lock of the schema, apply waits at most ``lock_timeout``."""
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    async with connect(lock_timeout=0.3) as db:
        await db.use_models([])  # creates the schema
        holder = await psycopg.AsyncConnection.connect(postgresql_url)
        try:
            await holder.execute("BEGIN")
            await holder.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('ommi.migrations:' || %s, 0))", [schema]
            )
            with pytest.raises(TimeoutError, match="lock_timeout"):
                await migrations.apply(db, directory)
            await holder.execute("ROLLBACK")
        finally:
            await holder.close()
        assert [r.id for r in await migrations.apply(db, directory)] == ["0001_initial"]


_FAILING_RUN = """
from ommi.migrations import AddField, FieldSpec

id = "0002_fails"
parent = "0001_initial"

operations = [AddField("pg_mig_items", FieldSpec("count", "int", default=0))]


async def run(db):
    Items = db.models["pg_mig_items"]
    await db.add(Items(label="half-way", count=2)).or_raise()
    raise KeyError("the data step failed")
"""

_BAD_CONVERSION = """
from ommi.migrations import AddField, ChangeType, FieldSpec

id = "0002_overflows"
parent = "0001_initial"

operations = [
    AddField("pg_mig_items", FieldSpec("count", "int", default=0)),
    ChangeType(
        "pg_mig_items",
        FieldSpec("price", "decimal", nullable=True),
        FieldSpec("price", "float", nullable=True),
    ),
]
"""


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [(_FAILING_RUN, KeyError, "the data step failed"), (_BAD_CONVERSION, ValidationError, "out of range")],
    ids=["run", "conversion"],
)
async def test_failure_inside_a_migration_commits_nothing(
    tmp_path: Path,
    postgresql_url: str,
    schema: str,
    connect: Callable[..., Ommi],
    text: str,
    error: type[Exception],
    match: str,
) -> None:
    """A data step that raises, or a value ``ALTER COLUMN ... TYPE`` cannot convert: the DDL before it is undone too."""
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    (directory / "0002_next.py").write_text(text, encoding="utf-8")
    async with connect() as db:
        await migrations.apply(db, directory, to="0001_initial")
        await db.use_models(v1)
        huge = decimal.Decimal("1e400")  # numeric holds it, double precision does not
        await db.add(Item("kept", huge)).or_raise()
        with pytest.raises(error, match=match):
            await migrations.apply(db, directory)
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
        assert _columns(postgresql_url, schema, "pg_mig_items") == ["id", "label", "price"]
        assert [(i.label, i.price) for i in await db.find(Item).all.to_list()] == [("kept", huge)]
        await db.use_models(v1)  # no drift: the table is as the first migration left it


async def test_table_changed_by_hand_stops_the_migration(
    tmp_path: Path, postgresql_url: str, schema: str, connect: Callable[..., Ommi]
) -> None:
    """After each operation the table must match the model the migrations describe, else nothing is committed."""
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    migrations.make(v2, directory)
    async with connect() as db:
        await migrations.apply(db, directory, to="0001_initial")
        sql = f"ALTER TABLE {_quoted(schema)}.pg_mig_items ADD COLUMN extra text".replace("%", "%%")
        with psycopg.connect(postgresql_url, autocommit=True) as admin:
            admin.execute(sql, [])
        with pytest.raises(MigrationError, match="unexpected column 'extra'"):
            await migrations.apply(db, directory)
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
        assert _columns(postgresql_url, schema, "pg_mig_items") == ["extra", "id", "label", "price"]


async def test_schema_and_names_needing_quotes(
    tmp_path: Path, postgresql_url: str, schema: str, connect: Callable[..., Ommi]
) -> None:
    """Tables, columns and the schema with quotes, spaces and ``%``: every statement names the driver's schema.

    v1 -> v2 renames a column, adds a reference (a foreign key and its index),
    converts int -> Decimal, makes an optional field required (NULLs filled),
    adds an optional field; v3 renames
    the referencing column (its index follows); down goes back to v2.
    """
    directory = tmp_path / "migrations"
    migrations.make(odd_v1, directory)
    migrations.make(odd_v2, directory, renames=['Pet2.la"bel %=title'], allow_destructive=True)
    migrations.make(odd_v3, directory, renames=["Pet3.owner=keeper"])
    first, second, _ = (m.id for m in migrations.load(directory))
    async with connect() as db:
        await migrations.apply(db, directory, to=first)
        await db.use_models(odd_v1)
        owner = await db.add(Owner("ann")).or_raise()
        await db.add(Pet("rex", owner.id, 12, "r"), Pet("tom", owner.id)).or_raise()

        planned = await migrations.apply(db, directory, to=second, dry_run=True)
        statements = [s for result in planned for s in result.statements]
        assert all(s.startswith("CREATE INDEX") or s.count(_quoted(schema)) >= 1 for s in statements)
        pets = f"{_quoted(schema)}.{_quoted(PETS)}"
        assert f'ALTER TABLE {pets} ALTER COLUMN "weight" TYPE NUMERIC USING CAST("weight" AS NUMERIC)' in statements
        assert f'UPDATE {pets} SET "nick" = $1 WHERE "nick" IS NULL  -- parameters: [\'-\']' in statements
        assert any(s.startswith(f'ALTER TABLE {pets} ADD FOREIGN KEY ("owner") REFERENCES') for s in statements)

        await migrations.apply(db, directory)
        await db.use_models(odd_v3)
        pets = await db.find(Pet3).sort(Pet3.title).all.to_list()
        assert [(p.title, p.keeper, p.weight, p.nick, p.note) for p in pets] == [
            ("rex", owner.id, decimal.Decimal(12), "r", None),
            ("tom", owner.id, None, "-", None),
        ]
        with pytest.raises(IntegrityError):
            await db.add(Pet3("ghost", owner.id + 100)).or_raise()
        indexes = _fetch(postgresql_url, "SELECT indexname FROM pg_indexes WHERE schemaname = %s", schema)
        assert (f"ix_{PETS}_kee per%",) in indexes

        await migrations.down(db, directory, to=second)
        await db.use_models(odd_v2)
        assert sorted(p.owner for p in await db.find(Pet2).all.to_list()) == [owner.id, owner.id]
        with pytest.raises(IntegrityError):
            await db.add(Pet2("ghost", owner.id + 100)).or_raise()
        indexes = _fetch(postgresql_url, "SELECT indexname FROM pg_indexes WHERE schemaname = %s", schema)
        assert (f"ix_{PETS}_owner",) in indexes
    assert _fetch(postgresql_url, "SELECT count(*) FROM pg_tables WHERE tablename = %s", PETS) == [(1,)]


async def test_reference_removed_drops_its_foreign_key(
    tmp_path: Path, postgresql_url: str, schema: str, connect: Callable[..., Ommi]
) -> None:
    """Going back from a reference (``down``): its foreign key, whatever PostgreSQL named it, and its index go."""
    directory = tmp_path / "migrations"
    migrations.make(odd_v1, directory)
    migrations.make(odd_ref, directory)
    first, _ = (m.id for m in migrations.load(directory))
    foreign_keys = (
        "SELECT count(*) FROM pg_catalog.pg_constraint WHERE contype = 'f' "
        "AND conrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
    )
    async with connect() as db:
        await migrations.apply(db, directory)
        assert _fetch(postgresql_url, foreign_keys, schema, PETS) == [(1,)]
        await migrations.down(db, directory, to=first)
        assert _fetch(postgresql_url, foreign_keys, schema, PETS) == [(0,)]
        indexes = _fetch(postgresql_url, "SELECT indexname FROM pg_indexes WHERE schemaname = %s", schema)
        assert (f"ix_{PETS}_owner",) not in indexes
        await db.use_models(odd_v1)
        await db.add(Pet("stray", 12345)).or_raise()  # no owner 12345: nothing enforces it any more
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]


async def test_rows_written_while_a_migration_runs_are_kept(
    tmp_path: Path, postgresql_url: str, schema: str, connect: Callable[..., Ommi]
) -> None:
    """Writers on other connections keep adding rows while ``apply`` adds a column: every acknowledged row survives.

    ``ALTER TABLE`` waits for the writers' row locks and holds the table while it
    runs; a write waits for it, then lands in the altered table. The writers run
    the old models throughout (a rolling deploy): the new column keeps its
    default as a column DEFAULT, so none of their writes is refused, and every
    row reads back with the default.
    """
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    async with connect() as db:
        await migrations.apply(db, directory)
    migrations.make(v2, directory)
    acknowledged: list[int] = []
    stop = asyncio.Event()

    async def writer(db: Ommi) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            acknowledged.append((await db.add(Item(f"w{n}")).or_raise()).id)  # never refused
            await asyncio.sleep(0)

    async with connect() as writing, connect() as migrating:
        await writing.use_models(v1)
        tasks = [asyncio.create_task(writer(writing)) for _ in range(3)]
        await asyncio.sleep(0.05)
        applied = await migrations.apply(migrating, directory)
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
    assert len(applied) == 1
    assert len(acknowledged) > 10
    stored = {
        row[0] for row in _fetch(postgresql_url, f"SELECT id FROM {_quoted(schema)}.pg_mig_items".replace("%", "%%"))
    }
    assert set(acknowledged) <= stored, f"lost: {sorted(set(acknowledged) - stored)[:10]}"
    assert _columns(postgresql_url, schema, "pg_mig_items") == ["count", "id", "label", "price"]
    counts = _fetch(postgresql_url, f"SELECT DISTINCT count FROM {_quoted(schema)}.pg_mig_items".replace("%", "%%"))
    assert counts == [(0,)]
    async with connect() as db:
        await db.use_models(v2)  # the column DEFAULT is no drift
        assert await db.find(Item2, Item2.count == 0).count.or_raise() == len(stored)


async def test_connection_terminated_mid_apply_applies_nothing(
    tmp_path: Path,
    postgresql_url: str,
    schema: str,
    connect: Callable[..., Ommi],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pg_terminate_backend`` of the migrating session while its data step runs: a ConnectionError, nothing applied.

    The server rolls the transaction back (its DDL included); the history and
    the table stay at 0001, and a new ``apply`` completes 0002.
    """
    directory = _prepare(tmp_path)
    signal_file = tmp_path / "running"
    monkeypatch.setenv("OMMI_TEST_HANG", str(signal_file))
    monkeypatch.setenv("OMMI_TEST_HANG_SECONDS", "1.5")
    async with connect(application_name="ommi-terminated") as db:
        assert [r.id for r in await migrations.apply(db, directory, to="0001_initial")] == ["0001_initial"]
        task = asyncio.ensure_future(migrations.apply(db, directory))
        while not signal_file.exists():
            assert not task.done(), task.result()
            await asyncio.sleep(0.02)
        holders = _fetch(
            postgresql_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ommi-terminated' "
            "AND state = 'idle in transaction'",
        )
        assert holders == [(True,)]
        with pytest.raises(ommi.errors.ConnectionError, match="connection"):
            await asyncio.wait_for(task, timeout=60)
    monkeypatch.delenv("OMMI_TEST_HANG")
    async with connect() as db:
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
        await db.use_models(v1)  # no column 'count': nothing of 0002 was left
        assert await db.find(Item).count.or_raise() == 0
        assert [r.id for r in await migrations.apply(db, directory)] == ["0002_slow"]
        await db.use_models(v2)
        assert [(i.label, i.count) for i in await db.find(Item2).all.to_list()] == [("marker", 1)]


@pytest.mark.parametrize("holding", ["SELECT label FROM {table} LIMIT 1", "SELECT id FROM {table} FOR UPDATE"])
async def test_table_lock_wait_is_bounded_by_lock_timeout(
    tmp_path: Path, postgresql_url: str, schema: str, connect: Callable[..., Ommi], holding: str
) -> None:
    """A transaction on another connection that read (ACCESS SHARE) or locked rows of the table holds ALTER TABLE off.

    ``apply(lock_timeout=0.3)`` gives up after 0.3 s instead of queueing behind
    it (and every later query on the table behind itself): a
    ``MigrationTimeoutError`` naming the table and the holding session, the
    history unchanged. Once the transaction ends, the same apply goes through.
    """
    directory = tmp_path / "migrations"
    migrations.make(v1, directory)
    async with connect() as db:
        await migrations.apply(db, directory)
        await db.add(Item("kept")).or_raise()
        migrations.make(v2, directory)
        table = f"{_quoted(schema)}.pg_mig_items"  # no parameters: psycopg leaves % alone
        holder = await psycopg.AsyncConnection.connect(postgresql_url, application_name="ommi-holder")
        try:
            await holder.execute("BEGIN")
            await holder.execute(holding.format(table=table))
            started = time.monotonic()
            with pytest.raises(MigrationError, match=r"lock_timeout=0\.3 s for a lock on table .*ommi-holder") as info:
                await migrations.apply(db, directory, lock_timeout=0.3)
            assert isinstance(info.value, TimeoutError), str(info.value)
            assert time.monotonic() - started < 10
            await holder.execute("ROLLBACK")
        finally:
            await holder.close()
        assert [s.state for s in await migrations.status(db, directory)] == ["applied", "pending"]
        assert _columns(postgresql_url, schema, "pg_mig_items") == ["id", "label", "price"]
        assert len(await migrations.apply(db, directory, lock_timeout=0.3)) == 1


tags_v1 = ModelCollection("postgresql migrations tags v1")
tags_v2 = ModelCollection("postgresql migrations tags v2")
TAG_UNIQUE = "uq $ommi$ la'bel %"
"""A stored name holding the dollar-quote tag of Ommi's DO blocks, a quote and ``%``."""


@ommi_model(collection=tags_v1, name="pg_mig_tags", constraints=[Unique("label", name=TAG_UNIQUE)])
@dataclass
class Tag:
    label: str
    id: int = ommi.generated_key()


@ommi_model(collection=tags_v2, name="pg_mig_tags")
@dataclass
class Tag2:
    label: str
    id: int = ommi.generated_key()


async def test_remove_unique_drops_a_unique_index_or_a_constraint(
    tmp_path: Path, postgresql_url: str, schema: str, connect: Callable[..., Ommi]
) -> None:
    """``RemoveUnique`` drops a ``CREATE UNIQUE INDEX`` (a table made by other tools, read by ``ommi inspect``)
    as well as the ``UNIQUE`` constraint Ommi makes, whatever the name holds (``$ommi$`` included)."""
    table = f"{_quoted(schema)}.pg_mig_tags"
    with psycopg.connect(postgresql_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {_quoted(schema)}".replace("%", "%%"), [])
        admin.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, label text NOT NULL)".replace("%", "%%"), [])
        admin.execute(f"CREATE UNIQUE INDEX {_quoted(TAG_UNIQUE)} ON {table} (label)".replace("%", "%%"), [])
    directory = tmp_path / "migrations"
    migrations.make(tags_v1, directory)
    migrations.make(tags_v2, directory)
    first = migrations.load(directory)[0].id

    def stored() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        constraints = "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'"
        indexes = "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'pg_mig_tags'"
        return _fetch(postgresql_url, constraints, table), _fetch(postgresql_url, indexes + " ORDER BY 1", schema)

    async with connect() as db:
        await migrations.apply(db, directory, to=first)  # the table is adopted: its unique index provides Unique
        assert stored() == ([], [("pg_mig_tags_pkey",), (TAG_UNIQUE,)])
        await migrations.apply(db, directory)  # the index is not a constraint: DROP INDEX
        assert stored() == ([], [("pg_mig_tags_pkey",)])
        await db.use_models(tags_v2)
        await db.add(Tag2("same"), Tag2("same")).or_raise()
        await db.find(Tag2).delete().or_raise()

        await migrations.down(db, directory, to=first)  # AddUnique: a constraint this time
        assert stored() == ([(TAG_UNIQUE,)], [("pg_mig_tags_pkey",), (TAG_UNIQUE,)])
        await db.use_models(tags_v1)
        with pytest.raises(IntegrityError):
            await db.add(Tag("same"), Tag("same")).or_raise()
        await migrations.apply(db, directory)  # DROP CONSTRAINT
        assert stored() == ([], [("pg_mig_tags_pkey",)])
