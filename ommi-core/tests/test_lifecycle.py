"""``Ommi``'s lifecycle: new, open, closed (issue 11, item 12).

After ``close()`` has begun every new operation, ``transaction()`` entry and
``use_models`` raises :class:`ommi.errors.DatabaseClosedError`; only an explicit
``open()`` or ``async with db:`` reopens, with fresh implicit-setup bookkeeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.drivers import Driver
from ommi.errors import ConnectionError, DatabaseClosedError, TransactionError, UnsupportedFeature
from ommi.query.ast import Query
from ommi_testkit.reference import ReferenceDriver

BACKENDS = ["reference", "sqlite", "postgresql"]

models = ModelCollection("test_lifecycle")


@ommi_model(collection=models, name="lifecycle_item")
@dataclass
class Item:
    name: str
    id: int | None = None


def _forget_global(model: type) -> None:
    from ommi.models import get_global_collection

    registry = get_global_collection()._models
    for name, known in list(registry.items()):
        if known is model:
            del registry[name]


async def _fresh(db: Ommi) -> None:
    await db.remove_models(models)
    await db.use_models(models)


def _closed_message(exc: BaseException) -> None:
    text = str(exc)
    assert "closed" in text
    assert "await db.open()" in text
    assert "async with db" in text


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_every_entry_point_refuses_after_close(make_driver: Callable[..., Driver]) -> None:
    db = Ommi(make_driver())
    await db.open()
    await _fresh(db)
    item = await db.add(Item("kept")).or_raise()
    await db.close()

    attempts = {
        "add": lambda: db.add(Item("late")).or_raise(),
        "find.all": lambda: db.find(Item).all.or_raise(),
        "find.one": lambda: db.find(Item.id == item.id).one.or_raise(),
        "count": lambda: db.find(Item).count.or_raise(),
        "update": lambda: db.find(Item.id == item.id).update(name="x").or_raise(),
        "delete": lambda: db.find(Item).delete.or_raise(),
        "save": lambda: db.save(item).or_raise(),
        "remove": lambda: db.remove(item).or_raise(),
        "reload": lambda: db.reload(item).or_raise(),
        "use_models": lambda: db.use_models(models),
        "remove_models": lambda: db.remove_models(models),
    }
    for what, attempt in attempts.items():
        with pytest.raises(DatabaseClosedError) as caught:
            await attempt()
        _closed_message(caught.value)
        assert isinstance(caught.value, ConnectionError), what
    with pytest.raises(DatabaseClosedError):
        async with db.transaction():
            pytest.fail("a transaction was entered on a closed database")

    # The refusals changed nothing and did not reopen the driver behind our back.
    async with db:
        assert [i.name for i in await (await db.find(Item).all.or_raise()).to_list()] == ["kept"]
        await db.remove_models(models)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_reopen_is_explicit_and_works(make_driver: Callable[..., Driver]) -> None:
    db = Ommi(make_driver())
    async with db:
        await _fresh(db)
        await db.add(Item("a")).or_raise()
    with pytest.raises(DatabaseClosedError):
        await db.find(Item).count.or_raise()
    await db.open()
    assert await db.find(Item).count.or_raise() == 1
    await db.close()
    await db.close()  # idempotent
    async with db:
        assert await db.find(Item).count.or_raise() == 1
        await db.remove_models(models)


async def test_an_unopened_database_still_opens_on_first_use() -> None:
    db = Ommi(ReferenceDriver.connect())
    await db.use_models(models)
    await db.add(Item("first")).or_raise()
    assert await db.find(Item).count.or_raise() == 1
    await db.close()


async def test_reopened_in_memory_sqlite_gets_its_tables_again() -> None:
    """``sqlite://`` forgets everything on close: reopening must redo implicit setup."""
    from ommi_sqlite import SQLiteDriver

    collection_models = ModelCollection("test_lifecycle_memory")

    @ommi_model(collection=collection_models, name="lifecycle_memory")
    @dataclass
    class Note:
        text: str
        id: int | None = None

    db = Ommi(SQLiteDriver.connect("sqlite://"))
    async with db:
        await db.use_models(collection_models)
        await db.add(Note("x")).or_raise()
    db._ready.add(id(Note.__ommi__))  # what implicit setup would have recorded
    async with db:
        assert id(Note.__ommi__) not in db._ready
        await db.use_models(collection_models)
        assert await db.find(Note).count.or_raise() == 0  # a new, empty in-memory database


async def test_reopen_resets_implicit_setup_of_the_global_collection() -> None:
    from ommi_sqlite import SQLiteDriver

    @ommi_model(name="lifecycle_global_note")
    @dataclass
    class GlobalNote:
        text: str
        id: int | None = None

    try:
        db = Ommi(SQLiteDriver.connect("sqlite://"))
        async with db:
            await db.add(GlobalNote("one")).or_raise()
        async with db:
            # Implicit setup runs again on the new, empty in-memory database.
            await db.add(GlobalNote("two")).or_raise()
            assert [n.text for n in await (await db.find(GlobalNote).all.or_raise()).to_list()] == ["two"]
    finally:
        _forget_global(GlobalNote)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_transaction_begun_before_close_cannot_be_used_after_it(make_driver: Callable[..., Driver]) -> None:
    db = Ommi(make_driver())
    await db.open()
    await _fresh(db)

    async def close_inside_transaction() -> None:
        async with db.transaction() as tx:
            await tx.add(Item("inside")).or_raise()
            await db.close()
            await tx.add(Item("after close")).or_raise()

    with pytest.raises(DatabaseClosedError):
        await close_inside_transaction()
    async with db:
        assert await db.find(Item).count.or_raise() == 0
        await db.remove_models(models)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_transaction_of_an_earlier_generation_never_touches_the_reopened_database(
    make_driver: Callable[..., Driver],
) -> None:
    db = Ommi(make_driver())
    await db.open()
    await _fresh(db)
    tx = db.transaction()
    await tx.__aenter__()
    await tx.add(Item("old generation")).or_raise()
    await db.close()
    await db.open()
    with pytest.raises(DatabaseClosedError):
        await tx.add(Item("still old")).or_raise()
    with pytest.raises((DatabaseClosedError, TransactionError)):
        await tx.commit()
    await tx.__aexit__(None, None, None)
    # The new generation works, and saw nothing of the old transaction.
    await db.add(Item("new generation")).or_raise()
    names = [i.name for i in await (await db.find(Item).all.or_raise()).to_list()]
    assert names == ["new generation"]
    await db.remove_models(models)
    await db.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_close_racing_operations_open_and_transactions(make_driver: Callable[..., Driver]) -> None:
    """Concurrent open/close/operations: each operation succeeds or fails cleanly; nothing acknowledged is lost.

    The database ends open or closed, never half-open: after the race an
    explicit close()/open() pair works, and every acknowledged add is stored.
    """
    rng = random.Random(11)
    db = Ommi(make_driver())
    await db.open()
    await _fresh(db)
    acknowledged: list[str] = []
    clean = (DatabaseClosedError, ConnectionError, TransactionError)
    failures: list[BaseException] = []

    async def writer(number: int) -> None:
        for step in range(15):
            name = f"w{number}-{step}"
            try:
                if step % 3 == 0:
                    async with db.transaction() as tx:
                        await tx.add(Item(name)).or_raise()
                else:
                    await db.add(Item(name)).or_raise()
            except clean:
                pass
            except BaseException as exc:
                failures.append(exc)
            else:
                acknowledged.append(name)
            await asyncio.sleep(rng.random() / 500)

    async def reader() -> None:
        for _ in range(20):
            try:
                await (await db.find(Item).all.or_raise()).to_list()
            except clean:
                pass
            except BaseException as exc:
                failures.append(exc)
            await asyncio.sleep(rng.random() / 500)

    async def flipper() -> None:
        for _ in range(12):
            await asyncio.sleep(rng.random() / 200)
            await db.close()
            await asyncio.sleep(rng.random() / 500)
            await db.open()

    async def racing_opener() -> None:
        for _ in range(12):
            await asyncio.sleep(rng.random() / 200)
            await asyncio.gather(db.open(), db.close(), db.open(), return_exceptions=False)

    await asyncio.gather(*(writer(n) for n in range(4)), reader(), reader(), flipper(), racing_opener())
    assert not failures, failures

    await db.close()
    with pytest.raises(DatabaseClosedError):
        await db.find(Item).count.or_raise()
    async with db:
        stored = {i.name for i in await (await db.find(Item).all.or_raise()).to_list()}
        assert set(acknowledged) <= stored, sorted(set(acknowledged) - stored)
        await db.remove_models(models)


async def test_close_waits_for_a_concurrent_open() -> None:
    """close() begun while open() runs: the database ends closed, and the driver too."""
    opened = asyncio.Event()
    release = asyncio.Event()
    closes = 0

    class SlowOpen(ReferenceDriver):
        async def open(self) -> None:
            opened.set()
            await release.wait()
            await super().open()

        async def close(self) -> None:
            nonlocal closes
            closes += 1
            await super().close()

    db = Ommi(SlowOpen())
    opening = asyncio.ensure_future(db.open())
    await opened.wait()
    closing = asyncio.ensure_future(db.close())
    await asyncio.sleep(0)
    with pytest.raises(DatabaseClosedError):
        await db.find(Item).count.or_raise()
    release.set()
    await asyncio.gather(opening, closing)
    assert closes == 1
    with pytest.raises(DatabaseClosedError):
        await db.find(Item).count.or_raise()


async def test_cancelled_close_still_closes_the_driver() -> None:
    closed = asyncio.Event()
    release = asyncio.Event()

    class SlowClose(ReferenceDriver):
        async def close(self) -> None:
            await release.wait()
            closed.set()

    db = Ommi(SlowClose())
    await db.open()
    closing = asyncio.ensure_future(db.close())
    await asyncio.sleep(0)
    closing.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert closed.is_set()
    with pytest.raises(DatabaseClosedError):
        await db.find(Item).count.or_raise()


async def test_failed_open_leaves_the_database_as_it_was() -> None:
    class Unreachable(ReferenceDriver):
        async def open(self) -> None:
            raise ConnectionError("the database cannot be reached")

    db = Ommi(Unreachable())
    with pytest.raises(ConnectionError) as caught:
        await db.find(Item).count.or_raise()
    assert not isinstance(caught.value, DatabaseClosedError)
    await db.close()
    with pytest.raises(DatabaseClosedError):
        await db.find(Item).count.or_raise()


async def test_reference_driver_close_rolls_back_its_transactions_and_reopens_fresh() -> None:
    """The reference driver follows the close() decision at the driver level too."""
    from ommi.models import get_schema

    schema = get_schema(Item)
    driver = ReferenceDriver.connect()
    await driver.open()
    await driver.apply_schema([schema])
    old = await driver.begin()
    await old.insert(schema, [("in old transaction", None)])
    await driver.close()
    with pytest.raises(ConnectionError):
        await driver.count(Query(schema))
    await driver.open()
    # The old transaction released the write lock when the driver closed: new writes do not wait for it.
    await asyncio.wait_for(driver.insert(schema, [("new generation", None)]), 1)
    with pytest.raises(ConnectionError):
        await old.commit()
    await old.rollback()  # already rolled back: nothing to do
    assert await driver.count(Query(schema)) == 1
    fresh = await asyncio.wait_for(driver.begin(), 1)
    await fresh.commit()
    await driver.close()


async def test_transaction_on_a_closed_database_without_transactions_says_closed() -> None:
    """On a closed database, ``transaction()`` names the closure even where transactions are absent.

    MongoDB on a standalone server declares transactions absent; after close()
    it answered UnsupportedFeature, hiding that nothing works any more.
    """

    class NoTransactions(ReferenceDriver):
        capabilities = dataclasses.replace(ReferenceDriver.capabilities, transactions=False)

    db = Ommi(NoTransactions.connect())
    await db.open()
    with pytest.raises(UnsupportedFeature):
        db.transaction()
    await db.close()
    with pytest.raises(DatabaseClosedError) as raised:
        db.transaction()
    _closed_message(raised.value)
