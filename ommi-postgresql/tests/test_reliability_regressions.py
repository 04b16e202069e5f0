"""Regressions of issue 11 ("Reliability II") on PostgreSQL, each written to fail on the code before its fix.

* item 8: one transaction shared by tasks that stream with ``.all`` and write;
* item 9: generated keys colliding with keys the application chose (by add,
  by update, concurrently, or written by someone else);
* item 10: models named like catalog tables (``pg_am``, ``pg_class``...);
* item 12: ``close()`` racing operations and transactions, and reopening;
* item 15: huge ``in_()`` lists, windows and decimals;
* item 16: a write through ``db`` waiting for a lock its own task's transaction holds.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.errors import (
    ConnectionError,
    IntegrityError,
    QueryError,
    TimeoutError,
    TransactionError,
    ValidationError,
)
from ommi.models.schema import get_schema
from ommi_postgresql import PostgreSQLDriver

models = ModelCollection("ommi_postgresql_reliability_regressions")


@ommi_model(collection=models)
@dataclass
class Member:
    """A plain model with a generated key."""

    name: str
    n: int = 0
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Tagged:
    """A model with an optional field, for the NULL semantics of ``in_``/``not_in``."""

    number: int
    tag: str | None = None
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Priced:
    """A model with a decimal field."""

    price: Decimal
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Bare:
    """Nothing but a generated key: inserted with DEFAULT VALUES."""

    id: int | None = None


OpenDB = Callable[..., AbstractAsyncContextManager[Ommi]]


@pytest.fixture
def open_db(make_driver: Callable[..., PostgreSQLDriver]) -> OpenDB:
    """``async with open_db(**settings) as db``: an open database with this module's models created empty."""

    @asynccontextmanager
    async def open_(**settings: Any) -> AsyncIterator[Ommi]:
        async with Ommi(make_driver(**settings)) as db:
            await db.remove_models(models)
            await db.use_models(models)
            try:
                yield db
            finally:
                await db.remove_models(models)

    return open_


def table(schema_name: str, model: type) -> str:
    """The quoted, schema-qualified name of ``model``'s table (for the admin connection)."""
    name = get_schema(model).name
    return '"' + schema_name.replace('"', '""') + '"."' + name.replace('"', '""') + '"'


async def names(db: Ommi) -> list[str]:
    return sorted(m.name for m in await (await db.find(Member).all.or_raise()).to_list())


# -- item 8: a transaction shared by tasks -------------------------------------------------


async def test_two_tasks_share_a_transaction_one_streams_one_writes(open_db: OpenDB) -> None:
    """One task streams ``.all`` in small batches while another writes through the same transaction."""
    async with open_db() as db:
        await db.add(*[Member(name=f"m{i:03}", n=i) for i in range(200)]).or_raise()
        for _ in range(3):
            async with db.transaction() as t:

                async def stream() -> list[int]:
                    return [m.n async for m in t.find(Member.n < 1000).sort(Member.n).all(batch_size=3)]

                async def write() -> None:
                    for i in range(40):
                        await t.add(Member(name=f"w{i}", n=1000 + i)).or_raise()
                        await t.find(Member.n == i).update(name=f"u{i:03}").or_raise()

                seen, _ = await asyncio.wait_for(asyncio.gather(stream(), write()), 30)
                assert seen == list(range(200))
                assert await t.find(Member.n >= 1000).count.or_raise() == 40
            assert await db.find(Member.n >= 1000).count.or_raise() == 40
            assert await db.find(Member.name.startswith("u")).count.or_raise() == 40
            await db.find(Member.n >= 1000).delete.or_raise()


async def test_two_tasks_share_a_transaction_both_streaming(open_db: OpenDB) -> None:
    """Two tasks stream through one transaction at once; each gets exactly its own rows."""
    async with open_db() as db:
        await db.add(*[Member(name="even" if i % 2 == 0 else "odd", n=i) for i in range(300)]).or_raise()
        async with db.transaction() as t:

            async def stream(name: str) -> list[int]:
                return [m.n async for m in t.find(Member.name == name).sort(Member.n).all(batch_size=4)]

            even, odd = await asyncio.wait_for(asyncio.gather(stream("even"), stream("odd")), 30)
        assert even == list(range(0, 300, 2))
        assert odd == list(range(1, 300, 2))


async def test_one_task_streams_and_writes_inside_its_loop(open_db: OpenDB) -> None:
    """``async for u in t.find(...).all: await t.save(u)`` in one task does not wait on itself."""
    async with open_db() as db:
        await db.add(*[Member(name=f"m{i}", n=i) for i in range(50)]).or_raise()
        async with db.transaction() as t:

            async def loop() -> None:
                async for member in t.find(Member).sort(Member.n).all(batch_size=4):
                    member.n += 100
                    await t.save(member).or_raise()
                    await t.add(Member(name=f"new{member.n}", n=-1)).or_raise()

            await asyncio.wait_for(loop(), 30)
        assert await db.find(Member.n >= 100).count.or_raise() == 50
        assert await db.find(Member.n == -1).count.or_raise() == 50


async def _share_and_cancel(db: Ommi, tag: str, wait_for_rows: bool, delay: float) -> str:
    """A writer and a streamer share a transaction; the streamer is cancelled after ``delay`` s."""
    started = asyncio.Event()

    async def stream(t: Any) -> None:
        async for _ in t.find(Member.n < 1000).all(batch_size=2):
            started.set()

    async def write(t: Any) -> None:
        for i in range(10):
            await t.add(Member(name=tag, n=2000 + i)).or_raise()

    try:
        async with db.transaction() as t:
            streamer = asyncio.create_task(stream(t))
            writer = asyncio.create_task(write(t))
            if wait_for_rows:
                await started.wait()
            await asyncio.sleep(delay)
            streamer.cancel()
            await asyncio.gather(streamer, return_exceptions=True)
            await writer
    except TransactionError:
        return "refused"
    return "committed"


async def test_cancelling_a_task_that_shares_a_transaction(open_db: OpenDB) -> None:
    """Cancel the streaming task at many points: the writer's transaction commits whole or fails as a TransactionError.

    Never another error, never a hang, never a connection left out of the pool, and
    nothing half-committed.
    """
    rng = random.Random(11)
    outcomes: dict[str, int] = {"committed": 0, "refused": 0}
    async with open_db(pool_min_size=1, pool_max_size=2, pool_timeout=5) as db:
        await db.add(*[Member(name=f"m{i}", n=i) for i in range(400)]).or_raise()
        for attempt in range(40):
            tag = f"a{attempt}"
            outcome = await asyncio.wait_for(_share_and_cancel(db, tag, attempt % 2 == 1, rng.random() * 0.02), 30)
            outcomes[outcome] += 1
            stored = await db.find(Member.name == tag).count.or_raise()
            assert stored == (10 if outcome == "committed" else 0), (attempt, outcome, stored)
            assert db.driver.pool.stats()["connections_lent"] == 0  # type: ignore[attr-defined]
        assert await db.find(Member.n < 1000).count.or_raise() == 400
    assert outcomes["committed"] > 0


async def test_cancelling_a_task_that_streams_and_writes_in_its_loop(open_db: OpenDB) -> None:
    """The single-task pattern cancelled at many points: rolled back whole, the pool intact."""
    rng = random.Random(8)
    async with open_db(pool_min_size=1, pool_max_size=1, pool_timeout=5) as db:
        await db.add(*[Member(name=f"m{i}", n=i) for i in range(100)]).or_raise()
        for attempt in range(30):

            async def loop(attempt: int = attempt) -> None:
                async with db.transaction() as t:
                    async for member in t.find(Member.n < 100).all(batch_size=3):
                        await t.add(Member(name=f"c{attempt}", n=1000 + member.n)).or_raise()

            task = asyncio.create_task(loop())
            await asyncio.sleep(rng.random() * 0.05)
            task.cancel()
            results = await asyncio.gather(task, return_exceptions=True)
            assert isinstance(results[0], (asyncio.CancelledError, type(None))), results
            # All or nothing (a cancellation that arrives during the commit lets it finish).
            assert await db.find(Member.name == f"c{attempt}").count.or_raise() in (0, 100)
        # A pool of one: a leaked connection would make this time out.
        assert await db.find(Member.n < 100).count.or_raise() == 100


# -- item 9: generated keys never collide with chosen ones ----------------------------------


async def test_update_of_a_key_then_plain_adds(open_db: OpenDB) -> None:
    """``update(id=N)`` moves the identity past N: later plain adds never take N."""
    async with open_db() as db:
        first = await db.add(Member(name="first")).or_raise()
        assert first.id == 1
        assert await db.find(Member.id == 1).update(id=3).or_raise() == 1
        added = [await db.add(Member(name=f"plain{i}")).or_raise() for i in range(5)]
        assert all(m.id is not None and m.id > 3 for m in added)
        # Inside a transaction, rolled back: the sequence stays moved (numbers skipped, never reused).
        async with db.transaction() as t:
            assert await t.find(Member.id == 3).update(id=100).or_raise() == 1
            await t.rollback()
        more = await db.add(*[Member(name=f"bulk{i}") for i in range(5)]).or_raise()
        assert all(m.id is not None and m.id > 100 for m in more)
        assert len(await names(db)) == 11


async def test_key_updated_in_an_open_transaction_is_not_drawn_by_others(open_db: OpenDB) -> None:
    """A key set by an uncommitted update is skipped by generated adds of other tasks (no wait, no collision)."""
    async with open_db() as db:
        await db.add(Member(name="row")).or_raise()
        async with db.transaction() as t:
            assert await t.find(Member.id == 1).update(id=2).or_raise() == 1
            # Before the fix this add drew 2, waited for the transaction's row lock and failed after the commit.
            other = asyncio.create_task(db.add(Member(name="other")).or_raise())
            await asyncio.sleep(0.3)
        added = await asyncio.wait_for(other, 10)
        assert added.id not in (None, 1, 2)
        assert await names(db) == ["other", "row"]


async def test_keys_written_by_another_client_are_skipped(
    open_db: OpenDB, admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """Rows inserted with explicit keys outside Ommi (no sequence update) do not break generated adds."""
    members, bares = table(postgresql_schema, Member), table(postgresql_schema, Bare)

    def take(target: str, first: int, last: int) -> None:
        """Another client writes rows with keys first..last, leaving the identity sequence where it was."""
        columns = "(id, name, n) SELECT g, 'other', 0" if target == members else "(id) SELECT g"
        admin.execute(
            f"INSERT INTO {target} {columns} FROM generate_series(%s::bigint, %s::bigint) AS g", [first, last]
        )

    async with open_db() as db:
        await db.add(Member(name="one")).or_raise()
        take(members, 2, 2)
        take(members, 4, 5)
        single = await db.add(Member(name="single")).or_raise()
        assert single.id not in (None, 1, 2, 4, 5)
        take(members, single.id + 1, single.id + 2)
        many = await db.add(*[Member(name=f"many{i}", n=i) for i in range(6)]).or_raise()
        take(bares, 1, 2)
        bare = await db.add(*[Bare() for _ in range(3)]).or_raise()
        keys = [m.id for m in many]
        stored = {m.id: (m.name, m.n) for m in await (await db.find(Member).all.or_raise()).to_list()}
        assert len(stored) == 13
        assert all(stored[m.id] == (m.name, m.n) for m in [single, *many])
        assert keys == sorted(keys)  # keys increase along the input rows
        assert await db.find(Bare).count.or_raise() == 5 and all(b.id not in (None, 1, 2) for b in bare)
        # The same inside a transaction: one row, many rows, and DEFAULT VALUES.
        top = max(stored)
        take(members, top + 1, top + 3)
        async with db.transaction() as t:
            alone = await t.add(Member(name="tx alone")).or_raise()
            top = alone.id or 0
            take(members, top + 1, top + 3)  # committed: visible to the transaction's next statement
            inside = await t.add(*[Member(name=f"tx{i}") for i in range(4)]).or_raise()
            take(bares, 6, 8)
            bare_inside = await t.add(Bare()).or_raise()
        assert alone.id is not None and alone.id > max(stored) + 3
        assert await db.find(Member.name.startswith("tx")).count.or_raise() == 5
        assert all(m.id is not None and m.id > top + 3 for m in inside)
        assert [m.id for m in inside] == sorted(m.id for m in inside if m.id is not None)
        assert bare_inside.id not in (None, 1, 2, 6, 7, 8)
        assert await db.find(Bare).count.or_raise() == 9


async def test_concurrent_explicit_and_generated_adds_never_collide(open_db: OpenDB) -> None:
    """Many tasks add rows with chosen keys near the sequence while others add generated ones.

    Generated adds never fail. A chosen key may only fail when a generated add
    drew it before the chosen add began; every other row is stored.
    """
    rng = random.Random(9)
    async with open_db(pool_max_size=8) as db:
        counter = iter(range(1, 10**6))
        generated: list[Member] = []
        chosen: list[Member] = []
        refused: list[Member] = []
        claimed: set[int] = set()

        async def generated_add(bulk: bool, in_tx: bool) -> None:
            members = [Member(name=f"g{next(counter)}") for _ in range(3 if bulk else 1)]
            if in_tx:
                async with db.transaction() as t:
                    await t.add(*members).or_raise()
            else:
                await db.add(*members).or_raise()
            generated.extend(members)

        async def chosen_add(in_tx: bool, by_update: bool) -> None:
            # Just ahead of the keys handed out so far, where the next generated keys come from;
            # never a key another chosen add took (that would be a collision between chosen keys).
            ahead = max([m.id or 0 for m in generated + chosen] + [0]) + rng.randint(3, 12)
            while ahead in claimed:
                ahead += 1
            claimed.add(ahead)
            member = Member(name=f"c{next(counter)}", id=ahead)
            try:
                if by_update:
                    temporary = Member(name=member.name, id=-next(counter))
                    await db.add(temporary).or_raise()
                    if await db.find(Member.id == temporary.id).update(id=ahead).or_raise() != 1:
                        raise AssertionError("the update matched nothing")
                elif in_tx:
                    async with db.transaction() as t:
                        await t.add(member).or_raise()
                else:
                    await db.add(member).or_raise()
            except IntegrityError:
                refused.append(member)
                if by_update:
                    await db.find(Member.name == member.name).delete.or_raise()
                return
            chosen.append(member)

        async def worker() -> None:
            for _ in range(25):
                kind = rng.random()
                if kind < 0.5:
                    await generated_add(bulk=rng.random() < 0.3, in_tx=rng.random() < 0.3)
                else:
                    await chosen_add(in_tx=rng.random() < 0.3, by_update=rng.random() < 0.3)

        await asyncio.gather(*(worker() for _ in range(16)))
        stored = {m.id: m.name for m in await (await db.find(Member).all.or_raise()).to_list()}
        assert all(stored.get(m.id) == m.name for m in generated)
        assert all(stored.get(m.id) == m.name for m in chosen)
        # A refused chosen key is held by a row stored by another add.
        assert all(m.id in stored and stored[m.id] != m.name for m in refused)
        assert len(stored) == len(generated) + len(chosen)
        assert len(generated) > 100 and len(chosen) > 50, (len(generated), len(chosen), len(refused))


# -- item 10: models named like catalog tables ----------------------------------------------

catalog_models = ModelCollection("ommi_postgresql_catalog_names")


@ommi_model(collection=catalog_models, name="pg_am")
@dataclass
class PgAm:
    amname: str
    id: int | None = None


@ommi_model(collection=catalog_models, name="pg_class")
@dataclass
class PgClass:
    relname: str
    id: int | None = None


@ommi_model(collection=catalog_models, name="pg_stat_activity")
@dataclass
class PgStatActivity:
    state: str
    pid: int
    id: int | None = None


@ommi_model(collection=catalog_models, name="information_schema.tables")
@dataclass
class InfoTables:
    table_name: str
    id: int | None = None


@ommi_model(collection=catalog_models, name='pg_catalog"."pg_namespace')
@dataclass
class Sneaky:
    nspname: str
    id: int | None = None


@ommi_model(collection=catalog_models, name="pg_proc with space 100%")
@dataclass
class Spaced:
    proname: str
    pg_class_id: int | None = None
    id: int | None = None


CATALOG_MODELS = (PgAm, PgClass, PgStatActivity, InfoTables, Sneaky, Spaced)


def sample(model: type, i: int) -> Any:
    if model is PgStatActivity:
        return PgStatActivity(state=f"s{i}", pid=i)
    if model is Spaced:
        return Spaced(proname=f"p{i}", pg_class_id=i)
    field = get_schema(model).fields[0].name
    return model(**{field: f"v{i}"})


@pytest.mark.parametrize("qualified_by", ["schema_setting", "search_path", "odd_schema_setting"])
async def test_models_named_like_catalog_tables_use_their_own_tables(
    make_driver: Callable[..., PostgreSQLDriver],
    admin: psycopg.Connection[Any],
    postgresql_schema: str,
    qualified_by: str,
) -> None:
    """Every statement (DDL, DML, catalog checks) names the table in Ommi's schema, never pg_catalog's."""
    namespace = postgresql_schema
    if qualified_by == "schema_setting":
        driver = make_driver()
    elif qualified_by == "search_path":
        driver = make_driver(schema=None, options=f"-c search_path={postgresql_schema}")
    else:
        namespace = f'{postgresql_schema} 100% "odd"'  # created by use_models
        driver = make_driver(schema=namespace)
    catalog_before = admin.execute("SELECT count(*) FROM pg_catalog.pg_am").fetchone()
    try:
        await _catalog_names_scenario(driver, admin, namespace)
    finally:
        if namespace != postgresql_schema:
            admin.execute('DROP SCHEMA IF EXISTS "' + namespace.replace('"', '""') + '" CASCADE')
    assert admin.execute("SELECT count(*) FROM pg_catalog.pg_am").fetchone() == catalog_before


async def _catalog_names_scenario(driver: PostgreSQLDriver, admin: psycopg.Connection[Any], namespace: str) -> None:
    async with Ommi(driver) as db:
        await db.remove_models(catalog_models)
        await db.use_models(catalog_models)
        try:
            await db.use_models(catalog_models)  # the catalog check finds the tables it created
            for model in CATALOG_MODELS:
                schema = get_schema(model)
                first, key = schema.fields[0], schema.fields[-1]
                assert await db.find(model).count.or_raise() == 0, model
                items = [sample(model, i) for i in range(5)]
                await db.add(*items).or_raise()
                await db.add(sample(model, 5)).or_raise()
                rows = await (await db.find(model).sort(key).all.or_raise()).to_list()
                assert [getattr(r, first.name) for r in rows] == [
                    getattr(sample(model, i), first.name) for i in range(6)
                ]
                assert len(await (await db.find(model).all(batch_size=2).or_raise()).to_list()) == 6
                assert (
                    await db.find(key == rows[0].id)
                    .update({first.name: getattr(sample(model, 9), first.name)})
                    .or_raise()
                    == 1
                )
                assert await db.find(key == rows[1].id).delete.or_raise() == 1
                assert await db.find(model).count.or_raise() == 5
                async with db.transaction() as t:
                    await t.add(sample(model, 7)).or_raise()
                    assert await t.find(model).count.or_raise() == 6
                chosen = sample(model, 8)
                chosen.id = 100
                await db.add(chosen).or_raise()
                assert (await db.add(sample(model, 10)).or_raise()).id == 101  # the sequence moved past 100
                stored = admin.execute(f"SELECT count(*) FROM {table(namespace, model)}").fetchone()
                assert stored == (8,), model
        finally:
            await db.remove_models(catalog_models)
    # remove_models dropped them from Ommi's schema too (with their identity sequences).
    names = [get_schema(model).name for model in CATALOG_MODELS]
    left = admin.execute(
        "SELECT count(*) FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND (c.relname = ANY(%s) OR c.relname LIKE 'pg%%seq')",
        [namespace, names],
    ).fetchone()
    assert left == (0,)


# -- item 12: close() is final for its pool ---------------------------------------------------


def _pids(admin: psycopg.Connection[Any], name: str) -> set[int]:
    rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name]).fetchall()
    return {row[0] for row in rows}


async def _gone(admin: psycopg.Connection[Any], name: str, pids: set[int]) -> bool:
    """Whether none of ``pids`` serves ``name`` any more (a closed connection's backend exits soon after)."""
    for _ in range(100):
        if not _pids(admin, name) & pids:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_transaction_of_a_closed_pool_never_enters_the_reopened_one(
    make_driver: Callable[..., PostgreSQLDriver], admin: psycopg.Connection[Any]
) -> None:
    """A transaction and a stream begun before close() end on their own connections, which never join the new pool."""
    name = f"ommi_close_{uuid.uuid4().hex[:8]}"
    driver = make_driver(application_name=name, pool_min_size=1, pool_max_size=2)

    async def scenario(db: Ommi) -> None:
        await db.add(*[Member(name=f"before{i}") for i in range(3)]).or_raise()
        first_pool = driver.pool
        t = db.transaction()
        await t.__aenter__()
        await t.add(Member(name="in old transaction")).or_raise()
        old_pids = _pids(admin, name)
        iterator = await db.find(Member).sort(Member.id).all(batch_size=1).or_raise()
        assert (await anext(iterator)).name == "before0"
        await driver.close()
        await driver.close()  # idempotent
        await driver.open()
        assert driver.pool is not first_pool
        await t.__aexit__(None, None, None)  # commits on the old connection, which then closes
        # The stream holds a connection of the old pool: it finishes on it.
        assert [m.name for m in await iterator.to_list()] == ["before1", "before2"]
        for i in range(5):
            await db.add(Member(name=f"new{i}")).or_raise()
            assert await db.find(Member).count.or_raise() == 5 + i
        assert await _gone(admin, name, old_pids)

    async with Ommi(driver) as db:
        await db.remove_models(models)
        await db.use_models(models)
        try:
            await asyncio.wait_for(scenario(db), 60)
        finally:
            await db.remove_models(models)
    await driver.close()  # never "can't return connection to pool"
    assert await _gone(admin, name, _pids(admin, name))
    assert _pids(admin, name) == set()


async def test_close_racing_operations_and_transactions(
    make_driver: Callable[..., PostgreSQLDriver], admin: psycopg.Connection[Any]
) -> None:
    """Operations, streams and transactions run while the driver closes and reopens, again and again.

    Each fails cleanly (ConnectionError, TransactionError) or finishes; nothing
    else escapes, nothing hangs, the last close() succeeds and leaves no connection.
    """
    rng = random.Random(12)
    name = f"ommi_close_race_{uuid.uuid4().hex[:8]}"
    driver = make_driver(application_name=name, pool_min_size=1, pool_max_size=4, pool_timeout=3)
    db = Ommi(driver)
    await db.open()
    await db.remove_models(models)
    await db.use_models(models)
    failures: list[BaseException] = []
    done = {"ok": 0, "clean": 0}
    stop = asyncio.Event()

    async def worker(number: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                kind = i % 4
                if kind == 0:
                    await db.add(Member(name=f"w{number}", n=i)).or_raise()
                elif kind == 1:
                    await db.find(Member.name == f"w{number}").count.or_raise()
                elif kind == 2:
                    async for _ in db.find(Member).all(batch_size=2):
                        await asyncio.sleep(0)
                else:
                    async with db.transaction() as t:
                        await t.add(Member(name=f"t{number}", n=i)).or_raise()
                        await asyncio.sleep(rng.random() * 0.01)
                        await t.find(Member.name == f"t{number}").count.or_raise()
                done["ok"] += 1
            except (ConnectionError, TransactionError, TimeoutError):
                done["clean"] += 1
                await asyncio.sleep(0.005)
            except BaseException as exc:  # collected and reported below
                failures.append(exc)
                return

    try:
        tasks = [asyncio.create_task(worker(n)) for n in range(8)]
        for _ in range(12):
            await asyncio.sleep(rng.random() * 0.1)
            closing = [asyncio.create_task(driver.close()) for _ in range(2)]
            await asyncio.sleep(rng.random() * 0.01)
            await asyncio.gather(*closing)
            await asyncio.gather(driver.open(), driver.open())
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        assert failures == [], failures
        assert done["ok"] > 0 and done["clean"] > 0
        assert await db.find(Member).count.or_raise() >= 0
    finally:
        await db.remove_models(models)
        await db.close()  # closes the driver, and the Ommi that wraps it (else it warns: collected open)
    assert await _gone(admin, name, _pids(admin, name))


# -- item 15: huge lists, windows and decimals -------------------------------------------------


async def test_in_with_more_values_than_parameters_allowed(open_db: OpenDB) -> None:
    """``in_``/``not_in`` with 70 000 values work, with NULLs treated exactly as before."""
    async with open_db() as db:
        await db.add(*[Tagged(number=i, tag=None if i % 3 == 0 else f"t{i}") for i in range(30)]).or_raise()
        wanted = list(range(0, 140_000, 2))
        found = await (await db.find(Tagged.number.in_(wanted)).all.or_raise()).to_list()
        assert sorted(t.number for t in found) == list(range(0, 30, 2))
        assert await db.find(Tagged.number.not_in(wanted)).count.or_raise() == 15
        tags = [f"t{i}" for i in range(70_000)]
        assert await db.find(Tagged.tag.in_(tags)).count.or_raise() == 20  # NULL tags never match in_
        assert await db.find(Tagged.tag.not_in(tags)).count.or_raise() == 10  # ...and always match not_in
        assert await db.find(Tagged.tag.not_in(["t1", "t2"])).count.or_raise() == 28
        assert await db.find(Tagged.tag.in_(["t1", "nope"])).count.or_raise() == 1
        assert await db.find(Tagged.number.in_([])).count.or_raise() == 0
        assert await db.find(Tagged.number.not_in([])).count.or_raise() == 30
        assert await db.find(Tagged.number.in_(wanted)).delete.or_raise() == 15
        assert await db.find(Tagged.number.not_in(wanted)).update(tag="odd").or_raise() == 15


@pytest.mark.parametrize(
    "window",
    [
        lambda q: q.limit(2**63),
        lambda q: q.limit(2**63 - 1, page=2),
        lambda q: q.limit(10, page=2**62),
        lambda q: q.limit(2**64, page=2**64),
    ],
)
async def test_windows_beyond_bigint_are_query_errors(open_db: OpenDB, window: Callable[[Any], Any]) -> None:
    """A limit or page beyond PostgreSQL's bigint is a QueryError, never ``bigint out of range``."""
    async with open_db() as db:
        await db.add(Member(name="only")).or_raise()
        for action in (lambda q: q.all, lambda q: q.count):
            with pytest.raises(QueryError, match=r"limit|page|offset"):
                await action(window(db.find(Member))).or_raise()
        assert await db.find(Member).limit(2**63 - 1).count.or_raise() == 1


@pytest.mark.parametrize("value", ["1E+131072", "-9.9E+131072", "1E-16384", "0E-20000", "1.0000E-16381"])
async def test_decimals_beyond_numeric_are_validation_errors(open_db: OpenDB, value: str) -> None:
    """A Decimal PostgreSQL's numeric cannot hold is a ValidationError before anything is written."""
    async with open_db() as db:
        kept = await db.add(Priced(price=Decimal("1.5"))).or_raise()
        with pytest.raises(ValidationError, match=r"Priced\.price"):
            await db.add(Priced(price=Decimal(value))).or_raise()
        with pytest.raises(ValidationError, match=r"Priced\.price"):
            await db.add(Priced(price=Decimal(1)), Priced(price=Decimal(value))).or_raise()
        with pytest.raises(ValidationError, match=r"Priced\.price"):
            await db.find(Priced.id == kept.id).update(price=Decimal(value)).or_raise()
        with pytest.raises(ValidationError, match="numeric"):
            await db.find(Priced.price == Decimal(value)).count.or_raise()
        async with db.transaction() as t:
            with pytest.raises(ValidationError):
                await t.add(Priced(price=Decimal(value))).or_raise()
            await t.add(Priced(price=Decimal("2.5"))).or_raise()  # the transaction was not aborted
        stored = sorted(p.price for p in await (await db.find(Priced).all.or_raise()).to_list())
        assert stored == [Decimal("1.5"), Decimal("2.5")]


async def test_decimals_at_numeric_limits_round_trip(open_db: OpenDB) -> None:
    async with open_db() as db:
        values = [Decimal("9E+131071"), Decimal("1E-16383"), Decimal("0E+200000"), Decimal("-1.25")]
        for value in values:
            stored = await db.add(Priced(price=value)).or_raise()
            assert (await db.find(Priced.id == stored.id).one.or_raise()).price == value


# -- item 16: lock waits are bounded --------------------------------------------------------------


async def test_write_through_db_waiting_for_its_own_transaction_times_out(open_db: OpenDB) -> None:
    """A task's write through ``db`` to a row its open transaction locked ends with TimeoutError naming lock_timeout."""
    async with open_db(lock_timeout=1) as db:
        member = await db.add(Member(name="locked")).or_raise()
        async with db.transaction() as t:
            await t.find(Member.id == member.id).update(n=1).or_raise()
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"lock_timeout=1(\.0)? ?s") as caught:
                await asyncio.wait_for(db.find(Member.id == member.id).update(n=2).or_raise(), 20)
            assert time.monotonic() - started < 5
            assert isinstance(caught.value.__cause__, psycopg.errors.LockNotAvailable)
            await t.find(Member.id == member.id).update(n=3).or_raise()  # the transaction goes on
        assert (await db.find(Member.id == member.id).one.or_raise()).n == 3


async def test_lock_timeout_has_a_finite_default(make_driver: Callable[..., PostgreSQLDriver]) -> None:
    driver = make_driver()
    assert 0 < driver.settings.lock_timeout < float("inf")  # type: ignore[attr-defined]
    async with Ommi(driver):
        conn = await driver.pool.acquire()
        try:
            row = await (await conn.execute("SHOW lock_timeout")).fetchone()
        finally:
            await driver.pool.release(conn)
    assert row is not None and row[0] not in ("0", "0ms")
