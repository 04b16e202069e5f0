"""Regressions of issue 11 ("Reliability II") on the MongoDB driver.

* A key-changing ``update`` and an ``add`` of several documents are all or
  nothing however they are interrupted: cancelled (``wait_for`` timeouts, and a
  cancellation right after each reply the server sends), connection cut (before
  a command reaches the server, or after the server got it but before its reply
  came back), or the client gone for good (another client recovers).
* A key is never written as something it cannot be read back as, and a document
  whose key cannot be read gives a clear ``ommi.errors`` error.
* Huge windows never raise a raw ``OverflowError``.
* Models named like the driver's own collections are refused.

Interruptions go through :class:`WireProxy`, a small TCP proxy on the loopback
between the driver and the test server: it counts the commands of the driver
(the client's monitoring ``hello`` excepted) and cancels the operation or cuts
every connection at the n-th one. Each test runs n = 1, 2, ... until the
operation finishes before the n-th command, so every boundary between two
round trips is tried.

On a standalone server (nx-27017 is one) the driver protects these writes with
its journal; the tests of the transaction paths need a replica set and skip
elsewhere.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import struct
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import pytest
from bson import ObjectId
from ommi import (
    ConnectionError,
    IntegrityError,
    Key,
    ModelCollection,
    ModelDefinitionError,
    Ommi,
    SchemaMismatchError,
    ValidationError,
    ommi_model,
)
from ommi.errors import OmmiError
from ommi.models import get_schema
from ommi.query.ast import Comparison, Op, Query
from ommi_mongodb import MongoDBDriver
from ommi_testkit.servers import collect_abandoned_sockets
from pymongo import AsyncMongoClient

models = ModelCollection("ommi_mongodb_test_reliability")

OpenDb = Callable[..., Awaitable[Ommi]]

LEASE = 0.4
"""The journal lease the tests give the driver (seconds), so that recovery is quick to observe."""


@ommi_model(collection=models, name="mdb_rel_stock")
@dataclass
class Stock:
    """A composite key whose ``region`` part the update changes."""

    region: Annotated[str, Key]
    number: Annotated[int, Key]
    qty: int = 0


@ommi_model(collection=models, name="mdb_rel_blob")
@dataclass
class Blob:
    """Large documents, so that one ``add`` spans several wire messages."""

    data: bytes
    id: int | None = None


@ommi_model(collection=models, name="mdb_rel_counted")
@dataclass
class Counted:
    """A generated int key."""

    label: str
    when: date | None = None
    id: int | None = None


@ommi_model(collection=models, name="mdb_rel_tagged")
@dataclass
class Tagged:
    """A key the update changes, beside a UUID field (bson's default codec options refuse uuid.UUID)."""

    code: Annotated[str, Key]
    ident: uuid.UUID


# -- a TCP proxy that cancels or cuts at the n-th command --------------------

_MONITORING = frozenset({b"hello", b"ismaster", b"isMaster"})
_OP_MSG = 2013


def _command_name(message: bytes) -> bytes:
    """The command of an OP_MSG (the first key of its body), else ``b""``."""
    if len(message) < 27 or struct.unpack_from("<i", message, 12)[0] != _OP_MSG or message[20] != 0:
        return b""
    end = message.find(b"\x00", 26)
    return message[26:end] if end > 0 else b""


class WireProxy:
    """Forwards loopback connections to the test server, message by message.

    ``arm(n, action)`` makes the proxy act at the n-th driver command from then on:

    * ``"cancel"``: cancel :attr:`task` just before the reply to that command
      reaches the client (so after the server did it);
    * ``"cut-before"``: abort every connection instead of forwarding the command;
    * ``"cut-after"``: forward the command, then abort every connection before
      the reply comes back.

    ``refuse = True`` closes every new connection at once (the server is gone).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self.refuse = False
        self.task: asyncio.Task[Any] | None = None
        self.commands: list[bytes] = []
        self._armed: tuple[int, str] | None = None
        self._waiting: dict[int, str] = {}
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.fired = False
        self._for_good = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    def arm(self, n: int, action: str, task: asyncio.Task[Any] | None = None, *, for_good: bool = False) -> None:
        """Act at the n-th command; ``for_good``: refuse every connection after the cut."""
        self.commands.clear()
        self._armed, self.task, self.fired, self._for_good = (n, action), task, False, for_good

    def disarm(self) -> None:
        self._armed, self.task, self._for_good = None, None, False

    def cut(self) -> None:
        if self._for_good:
            self.refuse = True
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()
        self._links.clear()

    async def close(self) -> None:
        self.refuse = True
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pump(reader, up_writer, True), self._pump(up_reader, writer, False))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(link)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, to_server: bool) -> None:
        while True:
            head = await source.readexactly(4)
            (length,) = struct.unpack("<i", head)
            message = head + await source.readexactly(length - 4)
            request_id, response_to = struct.unpack_from("<ii", message, 4)
            if to_server:
                name = _command_name(message)
                armed = self._armed
                if name not in _MONITORING and armed is not None and not self.fired:
                    self.commands.append(name)
                    n, action = armed
                    if len(self.commands) == n:
                        self.fired = True
                        if action == "cut-before":
                            self.cut()
                            return
                        self._waiting[request_id] = action
            else:
                action = self._waiting.pop(response_to, "")
                if action == "cut-after":
                    self.cut()  # the server did the command; its reply never arrives
                    return
                if action == "cancel" and self.task is not None and not self.task.done():
                    self.task.cancel()
            sink.write(message)
            await sink.drain()


@pytest.fixture
async def proxy(mongodb_url: str) -> Any:
    parts = urllib.parse.urlsplit(mongodb_url)
    wire = WireProxy(parts.hostname or "127.0.0.1", parts.port or 27017)
    await wire.start()
    yield wire
    await wire.close()
    await collect_abandoned_sockets()  # of clients that were still reconnecting through it


def _proxied_url(mongodb_url: str, proxy: WireProxy) -> str:
    parts = urllib.parse.urlsplit(mongodb_url)
    return urllib.parse.urlunsplit(
        (parts.scheme, f"127.0.0.1:{proxy.listen_port}", parts.path, "directConnection=true", "")
    )


@pytest.fixture
def proxied_driver(
    mongodb_url: str, mongodb_database: str, mongodb_server: Any, proxy: WireProxy
) -> Callable[..., MongoDBDriver]:
    """``proxied_driver(**settings)``: an unopened driver talking to the server through ``proxy``."""
    prefix = "c_" if mongodb_server.is_nx_27017 else ""

    def make(**settings: Any) -> MongoDBDriver:
        settings.setdefault("collection_prefix", prefix)
        settings.setdefault("serverSelectionTimeoutMS", 1500)
        settings.setdefault("connectTimeoutMS", 1500)
        return MongoDBDriver.connect(_proxied_url(mongodb_url, proxy), database=mongodb_database, **settings)

    return make


@pytest.fixture
def standalone(mongodb_server: Any) -> None:
    if not mongodb_server.standalone:
        pytest.skip(
            "tests the journal, which the driver uses only on a standalone server; on a replica set these "
            "writes are transactions, and one cut off for good holds its documents until the server's "
            "transaction lifetime (60 s by default) ends"
        )


def _tune(db: Ommi, *, batch_bytes: int | None = None) -> MongoDBDriver:
    """A short journal lease (and smaller insert messages) on an open database's driver."""
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    tuned: dict[str, Any] = {"journal_lease": LEASE}
    if batch_bytes is not None:
        tuned["write_batch_bytes"] = batch_bytes
    driver.settings = dataclasses.replace(driver.settings, **tuned)
    return driver


async def _settled(db: Ommi) -> None:
    """Wait out the journal lease, so the next operation finishes any interrupted write first."""
    await asyncio.sleep(LEASE * 2.5)
    await db.find(Counted).count.or_raise()


# -- checks ---------------------------------------------------------------------


ROWS = 40


async def _reset_stock(db: Ommi, rows: int = ROWS) -> None:
    await db.find(Stock).delete.or_raise()
    await db.add(*(Stock("us", n, qty=n) for n in range(rows))).or_raise()


async def _stock_problems(db: Ommi, rows: int = ROWS) -> list[str]:
    """What is wrong with the stock after one ``update(region="eu")`` ran, whole or not at all."""
    stored = await (await db.find(Stock).all.or_raise()).to_list()
    per_number = collections.Counter(s.number for s in stored)
    problems = [f"number {n} stored {per_number[n]} times" for n in range(rows) if per_number[n] != 1]
    problems += [f"unexpected {s}" for s in stored if s.number not in range(rows) or s.qty != s.number]
    regions = {s.region for s in stored}
    if len(regions) > 1:
        problems.append(f"the update was half done: regions {sorted(regions)}")
    return problems


def _move() -> Callable[[Ommi], Coroutine[Any, Any, Any]]:
    async def move(db: Ommi) -> Any:
        return await db.find(Stock.region == "us").update(region="eu").or_raise()

    return move


# -- item 1: a key-changing update is all or nothing ----------------------------------


@pytest.mark.parametrize("timeout", [0.0, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.08, 0.12, 0.2, 0.4])
async def test_rewrite_cancelled_by_wait_for_keeps_every_row(open_db: OpenDb, timeout: float) -> None:
    """``wait_for(update(region=...), t)`` on 400 rows leaves the old rows or the new ones, never fewer."""
    db = await open_db(models)
    _tune(db)
    await _reset_stock(db, 400)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(db.find(Stock.region == "us").update(region="eu").or_raise(), timeout)
    assert await _stock_problems(db, 400) == []
    await _settled(db)
    assert await _stock_problems(db, 400) == []


async def _each_boundary(
    db: Ommi,
    proxy: WireProxy,
    action: str,
    operation: Callable[[Ommi], Coroutine[Any, Any, Any]],
    reset: Callable[[], Awaitable[None]],
    problems: Callable[[], Awaitable[list[str]]],
) -> dict[str, int]:
    """Run ``operation`` once per command it sends, interrupted (``action``) at that command."""
    outcomes: collections.Counter[str] = collections.Counter()
    for n in range(1, 200):
        await reset()
        task = asyncio.ensure_future(operation(db))
        proxy.arm(n, action, task)
        try:
            await task
            outcome = "finished"
        except asyncio.CancelledError:
            outcome = "cancelled"
        except ConnectionError:
            outcome = "connection error"
        finally:
            fired = proxy.fired
            proxy.disarm()
        if action != "cancel" and outcome != "finished":
            await _settled(db)  # the connection broke: recovery finishes the write first
        found = await problems()
        assert found == [], f"{action} at command {n} ({outcome}): {found[:5]}"
        outcomes[outcome] += 1
        if not fired:
            return dict(outcomes)
    raise AssertionError("the operation never finished")


@pytest.mark.parametrize("action", ["cancel", "cut-before", "cut-after"])
async def test_rewrite_interrupted_at_each_command_keeps_every_row(
    open_db: OpenDb, proxied_driver: Callable[..., MongoDBDriver], proxy: WireProxy, action: str
) -> None:
    """A key-changing update cancelled, or its connection cut, at each command leaves every row exactly once."""
    db = Ommi(proxied_driver())
    await db.open()
    try:
        _tune(db)
        await db.remove_models(models)
        await db.use_models(models)
        outcomes = await _each_boundary(
            db, proxy, action, _move(), lambda: _reset_stock(db), lambda: _stock_problems(db)
        )
        interrupted = outcomes.get("cancelled", 0) + outcomes.get("connection error", 0)
        assert interrupted >= 3, outcomes
    finally:
        await db.remove_models(models)
        await db.close()


@pytest.mark.usefixtures("standalone")
async def test_rewrite_left_by_a_vanished_client_is_recovered(
    open_db: OpenDb, proxied_driver: Callable[..., MongoDBDriver], proxy: WireProxy
) -> None:
    """A client cut off for good in the middle of a key update: another client puts things right."""
    other = await open_db(models)
    _tune(other)
    cuts = await _vanish_at_each_command(other, proxied_driver, proxy, _move(), _reset_stock, _stock_problems)
    assert cuts >= 3


async def _vanish_at_each_command(
    other: Ommi,
    proxied_driver: Callable[..., MongoDBDriver],
    proxy: WireProxy,
    operation: Callable[[Ommi], Coroutine[Any, Any, Any]],
    reset: Callable[[Ommi], Awaitable[None]],
    problems: Callable[[Ommi], Awaitable[list[str]]],
    **tuning: Any,
) -> int:
    """Cut the client running ``operation`` off for good at each command.

    Until the journal lease of the vanished client runs out its write may show
    half done; after it, ``other`` must see the write whole or not at all.
    """
    for n in range(1, 200):
        proxy.refuse = False
        db = Ommi(proxied_driver())
        await db.open()
        _tune(db, **tuning)
        await reset(db)
        task = asyncio.ensure_future(operation(db))
        proxy.arm(n, "cut-after", task, for_good=True)
        with contextlib.suppress(ConnectionError):
            await task
        fired = proxy.fired
        proxy.disarm()
        await db.close()
        await collect_abandoned_sockets()
        await _settled(other)
        assert await problems(other) == [], f"after a cut at command {n}"
        if not fired:
            return n - 1
    raise AssertionError("the operation never finished")


async def test_rewrite_to_a_taken_key_changes_nothing(open_db: OpenDb) -> None:
    """A key update colliding with a stored row fails with IntegrityError and leaves every row as it was."""
    db = await open_db(models)
    _tune(db)
    await _reset_stock(db)
    await db.add(Stock("eu", 7, qty=7)).or_raise()
    with pytest.raises(IntegrityError):
        await db.find(Stock.region == "us").update(region="eu").or_raise()
    stored = await (await db.find(Stock).all.or_raise()).to_list()
    assert sorted((s.region, s.number) for s in stored) == sorted([("us", n) for n in range(ROWS)] + [("eu", 7)])


async def test_many_composite_keys_are_updated_and_taken_back_in_pieces(open_db: OpenDb) -> None:
    """1,200 composite keys (an ``$or`` branch each) are marked, moved and taken back in filters the server takes.

    nx-27017 refuses an expression deeper than 1000, so one filter naming every
    key failed the update, and an add's take-back, with ``OperationalError``.
    """
    db = await open_db(models)
    _tune(db)
    await _reset_stock(db, 1200)
    assert await db.find(Stock.region == "us").update(region="eu").or_raise() == 1200
    assert await _stock_problems(db, 1200) == []
    assert await db.find(Stock.region == "eu").count.or_raise() == 1200
    with pytest.raises(IntegrityError):
        await db.add(*(Stock("us", n, qty=n) for n in range(1200)), Stock("eu", 5, qty=5)).or_raise()
    assert await db.find(Stock.region == "us").count.or_raise() == 0
    assert await db.find(Stock).count.or_raise() == 1200


async def test_rewrite_keeping_some_keys_updates_them_in_place(open_db: OpenDb) -> None:
    """Rows whose key the update does not change are updated too, with the others, all at once."""
    db = await open_db(models)
    _tune(db)
    await db.add(Stock("us", 1, qty=1), Stock("eu", 2, qty=2)).or_raise()
    assert await db.find(Stock.number >= 1).update(region="eu", qty=9).or_raise() == 2
    stored = await (await db.find(Stock).sort(Stock.number).all.or_raise()).to_list()
    assert [(s.region, s.number, s.qty) for s in stored] == [("eu", 1, 9), ("eu", 2, 9)]


# -- item 3: add() of one model is all or nothing ---------------------------------------


BLOBS = 24
BLOB_SIZE = 6_000


async def _reset_blobs(db: Ommi) -> None:
    await db.find(Blob).delete.or_raise()


async def _blob_problems(db: Ommi, expected: int = BLOBS) -> list[str]:
    count = await db.find(Blob).count.or_raise()
    return [] if count in (0, expected) else [f"{count} of {expected} documents stored"]


def _add_blobs(count: int = BLOBS, size: int = BLOB_SIZE) -> Callable[[Ommi], Coroutine[Any, Any, Any]]:
    async def add(db: Ommi) -> Any:
        return await db.add(*(Blob(bytes([n % 251]) * size) for n in range(count))).or_raise()

    return add


@pytest.mark.parametrize("timeout", [0.1, 0.4, 0.9])
async def test_add_of_sixty_megabytes_cancelled_is_all_or_nothing(open_db: OpenDb, timeout: float) -> None:
    """60 documents of 1 MB (several wire messages) cancelled part-way: none or all are stored."""
    db = await open_db(models)
    _tune(db)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_add_blobs(60, 1_000_000)(db), timeout)
    assert await _blob_problems(db, 60) == []
    await _settled(db)
    assert await _blob_problems(db, 60) == []


@pytest.mark.parametrize("timeout", [0.0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15])
async def test_add_in_several_batches_cancelled_by_wait_for_is_all_or_nothing(open_db: OpenDb, timeout: float) -> None:
    """An add split into several batches, cancelled by ``wait_for`` at many points: none or all stored."""
    db = await open_db(models)
    _tune(db, batch_bytes=16_000)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_add_blobs()(db), timeout)
    assert await _blob_problems(db) == []
    await _settled(db)
    assert await _blob_problems(db) == []


@pytest.mark.parametrize("batch_bytes", [16_000, None], ids=["several-batches", "one-batch"])
@pytest.mark.parametrize("action", ["cancel", "cut-before", "cut-after"])
async def test_add_interrupted_at_each_command_is_all_or_nothing(
    proxied_driver: Callable[..., MongoDBDriver], proxy: WireProxy, action: str, batch_bytes: int | None
) -> None:
    """An add cancelled, or its connection cut, at each command it sends: none or all of it is stored."""
    db = Ommi(proxied_driver())
    await db.open()
    try:
        _tune(db, batch_bytes=batch_bytes)
        await db.remove_models(models)
        await db.use_models(models)
        outcomes = await _each_boundary(
            db, proxy, action, _add_blobs(), lambda: _reset_blobs(db), lambda: _blob_problems(db)
        )
        assert sum(outcomes.values()) >= 2, outcomes
    finally:
        await db.remove_models(models)
        await db.close()


@pytest.mark.parametrize("batch_bytes", [16_000, None], ids=["several-batches", "one-batch"])
async def test_add_cancelled_at_each_reply_keys_tell_the_truth(
    proxied_driver: Callable[..., MongoDBDriver], proxy: WireProxy, batch_bytes: int | None
) -> None:
    """An add cancelled at each reply stores all or nothing, and the instances' generated keys say which.

    The keys are the caller's only record of what was stored: ``None`` on every
    instance when nothing was, the stored key on every instance when all was
    (Ommi finishes an insert that generates keys before the cancellation
    propagates). A cancellation that reaches the driver itself takes the write
    back, even when the server already had it.
    """
    db = Ommi(proxied_driver())
    await db.open()
    try:
        _tune(db, batch_bytes=batch_bytes)
        await db.remove_models(models)
        await db.use_models(models)
        outcomes: collections.Counter[str] = collections.Counter()
        for n in range(1, 200):
            await _reset_blobs(db)
            blobs = [Blob(bytes([k % 251]) * BLOB_SIZE) for k in range(BLOBS)]
            task = asyncio.ensure_future(db.add(*blobs).or_raise())
            proxy.arm(n, "cancel", task)
            try:
                await task
                outcome = "finished"
            except asyncio.CancelledError:
                outcome = "cancelled"
            fired = proxy.fired
            proxy.disarm()
            stored = sorted(b.id for b in await (await db.find(Blob).all.or_raise()).to_list() if b.id is not None)
            keys = [b.id for b in blobs]
            assert None not in keys or set(keys) == {None}, f"{outcome} at reply {n}: keys {keys}"
            truth = [] if None in keys else sorted(keys)
            assert stored == truth, f"{outcome} at reply {n}: stored {stored[:3]}..., keys {keys[:3]}..."
            assert len(stored) in (0, BLOBS), f"{outcome} at reply {n}: {len(stored)} stored"
            if outcome == "finished":
                assert len(stored) == BLOBS
            outcomes[outcome] += 1
            if not fired:
                break
        assert outcomes["cancelled"] >= 2, outcomes
    finally:
        await db.remove_models(models)
        await db.close()


@pytest.mark.parametrize("batch_bytes", [16_000, None], ids=["several-batches", "one-batch"])
async def test_add_with_chosen_keys_cancelled_at_each_reply_stores_nothing(
    proxied_driver: Callable[..., MongoDBDriver], proxy: WireProxy, batch_bytes: int | None
) -> None:
    """An add of chosen keys cancelled at any reply stores nothing, even when the server already had all of it."""
    db = Ommi(proxied_driver())
    await db.open()
    try:
        _tune(db, batch_bytes=batch_bytes)
        await db.remove_models(models)
        await db.use_models(models)
        outcomes: collections.Counter[str] = collections.Counter()
        for n in range(1, 200):
            await _reset_blobs(db)
            task = asyncio.ensure_future(db.add(*(Blob(b"k" * BLOB_SIZE, id=k) for k in range(1, 25))).or_raise())
            proxy.arm(n, "cancel", task)
            try:
                await task
                outcome = "finished"
            except asyncio.CancelledError:
                outcome = "cancelled"
            fired = proxy.fired
            proxy.disarm()
            count = await db.find(Blob).count.or_raise()
            assert count == (24 if outcome == "finished" else 0), f"{outcome} at reply {n}: {count} stored"
            outcomes[outcome] += 1
            if not fired:
                break
        assert outcomes["cancelled"] >= 1 and outcomes["finished"] == 1, outcomes
    finally:
        await db.remove_models(models)
        await db.close()


async def test_work_in_flight_when_the_driver_closes_fails_with_connection_error(open_db: OpenDb) -> None:
    """Reads and writes running when ``close()`` is called finish or fail with ConnectionError, never another error."""
    db = await open_db(models)
    await db.add(*(Counted(f"r{n}") for n in range(200))).or_raise()
    driver = db.driver
    schema = get_schema(Counted)

    async def read() -> None:
        for _ in range(50):
            async for _batch in driver.fetch(Query(schema), 7):
                await asyncio.sleep(0)

    async def write(n: int) -> None:
        for k in range(50):
            await driver.insert(schema, [(f"w{n}.{k}.{i}", None, None) for i in range(3)])

    tasks = [asyncio.ensure_future(read()) for _ in range(4)] + [asyncio.ensure_future(write(n)) for n in range(4)]
    await asyncio.sleep(0.05)
    await driver.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await driver.open()  # reopened for the fixture's clean-up
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures, "close() came too late to interrupt anything"
    assert all(type(f) is ConnectionError for f in failures), [repr(f)[:200] for f in failures]


async def test_stream_begun_before_close_never_reads_through_the_reopened_driver(open_db: OpenDb) -> None:
    """A stream started before ``close()`` fails with ConnectionError after ``open()``; it never uses the new client.

    A query sorted by a bytes field reads its window in chunks, one ``find``
    each; those of a stream begun before ``close()`` must not go through the
    client ``open()`` made afterwards.
    """
    db = await open_db(models)
    await db.add(*(Blob(bytes([n])) for n in range(6))).or_raise()
    schema = get_schema(Blob)
    query = Query(schema, sort=(schema.by_name["data"].asc, schema.by_name["id"].asc))
    driver = db.driver
    batches = driver.fetch(query, 1)
    try:
        first = await anext(batches)
        assert len(first) == 1
        await driver.close()
        await driver.open()
        with pytest.raises(ConnectionError):
            await anext(batches)
    finally:
        await batches.aclose()


@pytest.mark.usefixtures("standalone")
async def test_add_left_by_a_vanished_client_is_removed(
    open_db: OpenDb, proxied_driver: Callable[..., MongoDBDriver], proxy: WireProxy
) -> None:
    """A client cut off for good in the middle of a large add: another client removes the part it wrote.

    Twelve blobs in messages of about two make six insert batches besides the journal's commands: enough
    for a cut before the first batch, between batches and after the last (each cut costs a lease to wait out).
    """
    other = await open_db(models)
    _tune(other)
    blobs = 12
    cuts = await _vanish_at_each_command(
        other,
        proxied_driver,
        proxy,
        _add_blobs(count=blobs),
        _reset_blobs,
        functools.partial(_blob_problems, expected=blobs),
        batch_bytes=16_000,
    )
    assert cuts >= 3


@pytest.mark.parametrize("batch_bytes", [16_000, None], ids=["several-batches", "one-batch"])
async def test_add_with_a_taken_key_in_the_middle_stores_nothing(open_db: OpenDb, batch_bytes: int | None) -> None:
    """An add whose 15th document has a key already stored fails with IntegrityError and stores none of it."""
    db = await open_db(models)
    _tune(db, batch_bytes=batch_bytes)
    await db.add(Blob(b"first", id=15)).or_raise()
    with pytest.raises(IntegrityError):
        await db.add(*(Blob(b"x" * BLOB_SIZE, id=n) for n in range(1, BLOBS + 1))).or_raise()
    stored = await (await db.find(Blob).all.or_raise()).to_list()
    assert [(b.id, b.data) for b in stored] == [(15, b"first")]
    await _settled(db)
    assert await db.find(Blob).count.or_raise() == 1


async def test_add_in_several_batches_leaves_no_marks(open_db: OpenDb, mongodb_url: str) -> None:
    """The documents of a completed add carry only the model's fields."""
    db = await open_db(models)
    driver = _tune(db, batch_bytes=16_000)
    await _add_blobs()(db)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        collection = client[driver.settings.database or ""][driver.collection_name(get_schema(Blob))]
        keys = {tuple(sorted(document)) async for document in collection.find({})}
    finally:
        await client.close()
    assert keys == {("_id", "data")}
    assert await db.find(Blob).count.or_raise() == BLOBS


# -- item 6: keys are written readable, and unreadable ones are reported ----------------


async def test_driver_refuses_to_set_a_key_to_none(open_db: OpenDb) -> None:
    """``update(id=None)`` reaching the driver is refused before anything is written."""
    db = await open_db(models)
    stored = await db.add(Counted("a")).or_raise()
    schema = get_schema(Counted)
    query = Query(schema, Comparison(schema.by_name["id"], Op.EQ, stored.id))
    with pytest.raises(ValidationError, match="key"):
        await db.driver.update(query, {schema.by_name["id"]: None})
    rows = await (await db.find(Counted).all.or_raise()).to_list()
    assert [(c.id, c.label) for c in rows] == [(stored.id, "a")]


async def test_update_of_a_key_to_none_changes_nothing(open_db: OpenDb) -> None:
    """Through Ommi, ``update(id=None)`` fails with an Ommi error and the row stays readable."""
    db = await open_db(models)
    stored = await db.add(Counted("a")).or_raise()
    with pytest.raises(OmmiError):
        await db.find(Counted.id == stored.id).update(id=None).or_raise()
    rows = await (await db.find(Counted).all.or_raise()).to_list()
    assert [(c.id, c.label) for c in rows] == [(stored.id, "a")]


async def test_driver_refuses_to_insert_a_key_part_of_none(open_db: OpenDb) -> None:
    """A row whose key part is None reaching the driver is refused, not stored."""
    db = await open_db(models)
    with pytest.raises(ValidationError, match="key"):
        await db.driver.insert(get_schema(Stock), [(None, 1, 0), ("eu", 2, 0)])
    assert await db.find(Stock).count.or_raise() == 0


async def _raw_insert(mongodb_url: str, db: Ommi, model: type, document: dict[str, Any]) -> None:
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        await client[driver.settings.database or ""][driver.collection_name(get_schema(model))].insert_one(document)
    finally:
        await client.close()


async def test_document_with_an_unreadable_key_is_a_clear_error(open_db: OpenDb, mongodb_url: str) -> None:
    """A document another program stored with an ObjectId ``_id`` makes reads fail with SchemaMismatchError."""
    db = await open_db(models)
    await db.add(Counted("fine")).or_raise()
    await _raw_insert(mongodb_url, db, Counted, {"_id": ObjectId(), "label": "foreign", "when": None})
    with pytest.raises(SchemaMismatchError, match=r"(?s)mdb_rel_counted.*\bid\b.*ObjectId"):
        await (await db.find(Counted).all.or_raise()).to_list()
    assert await db.find(Counted).count.or_raise() == 2


async def test_document_with_an_unreadable_field_is_a_clear_error(open_db: OpenDb, mongodb_url: str) -> None:
    """A stored value of the wrong type (a string where a date belongs) is reported, naming the field."""
    db = await open_db(models)
    await _raw_insert(mongodb_url, db, Counted, {"_id": 5, "label": "odd", "when": "yesterday"})
    with pytest.raises(SchemaMismatchError, match=r"(?s)mdb_rel_counted.*\bwhen\b.*yesterday"):
        await (await db.find(Counted).all.or_raise()).to_list()


# -- item 15: huge windows, reserved collection names --------------------------------------


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [(2**63, 0, 3), (2**64 + 5, 0, 3), (5, 2**63, 0), (2**62, 2**62, 0), (None, 2**70, 0)],
)
async def test_huge_windows_never_overflow(open_db: OpenDb, limit: int | None, offset: int, expected: int) -> None:
    """A limit or offset beyond 64 bits reads what it means (everything, or nothing), with no OverflowError."""
    db = await open_db(models)
    await db.add(*(Counted(f"r{n}") for n in range(3))).or_raise()
    query = Query(get_schema(Counted), limit=limit, offset=offset)
    rows = [row async for batch in db.driver.fetch(query, 2**64) for row in batch]
    assert len(rows) == expected
    assert await db.driver.count(query) == expected


@pytest.mark.parametrize("name", ["_ommi_counters", "_ommi_schema", "_ommi_journal", "system.views"])
async def test_models_named_like_the_drivers_collections_are_refused(
    make_driver: Callable[..., MongoDBDriver], name: str
) -> None:
    """A model stored in one of the driver's own collections is refused, naming the reserved names."""
    reserved = ModelCollection(f"ommi_mongodb_test_reserved_{name}")

    @ommi_model(collection=reserved, name=name)
    @dataclass
    class Intruder:
        label: str
        id: int | None = None

    db = Ommi(make_driver(collection_prefix=""))
    await db.open()
    try:
        with pytest.raises(ModelDefinitionError, match=r"(?s)_ommi_counters.*_ommi_schema.*_ommi_journal"):
            await db.use_models(reserved)
        with pytest.raises(ModelDefinitionError, match="reserved"):
            await db.driver.insert(get_schema(Intruder), [("x", None)])
        with pytest.raises(ModelDefinitionError, match="reserved"):
            await db.driver.drop_schema([get_schema(Intruder)])
    finally:
        await db.close()


async def test_configured_counters_collection_is_reserved(make_driver: Callable[..., MongoDBDriver]) -> None:
    """A ``counters_collection`` setting reserves that name instead of the default."""
    reserved = ModelCollection("ommi_mongodb_test_reserved_custom")

    @ommi_model(collection=reserved, name="my_counters")
    @dataclass
    class Intruder:
        label: str
        id: int | None = None

    db = Ommi(make_driver(collection_prefix="", counters_collection="my_counters"))
    await db.open()
    try:
        with pytest.raises(ModelDefinitionError, match="my_counters"):
            await db.use_models(reserved)
    finally:
        await db.close()


# -- the transaction paths (replica sets and sharded clusters) ------------------------------


class _Commands:
    """A PyMongo command listener keeping the writes a driver sends."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def started(self, event: Any) -> None:
        if event.command_name in ("insert", "delete", "update", "commitTransaction", "abortTransaction"):
            command = event.command
            self.seen.append(
                {
                    "name": event.command_name,
                    "collection": command.get(event.command_name),
                    "in_transaction": command.get("autocommit") is False,
                }
            )

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


@pytest.fixture
def replica_set(mongodb_server: Any) -> None:
    if mongodb_server.standalone:
        pytest.skip(
            "needs a replica set or a sharded cluster: this server is standalone (nx-27017 is), "
            "so it has no transactions and the driver uses its journal instead"
        )


@pytest.mark.usefixtures("replica_set")
async def test_key_update_and_large_add_run_in_a_transaction_of_their_own(open_db: OpenDb) -> None:
    """Where the server has transactions, a key update and an add of several batches use one, not the journal."""
    commands = _Commands()
    db = await open_db(models, event_listeners=[commands])
    _tune(db, batch_bytes=16_000)
    await _reset_stock(db)
    commands.seen.clear()
    await _add_blobs()(db)
    await db.find(Stock.region == "us").update(region="eu").or_raise()
    assert await db.find(Stock.region == "eu").count.or_raise() == ROWS
    assert await db.find(Blob).count.or_raise() == BLOBS
    writes = [c for c in commands.seen if c["name"] in ("insert", "delete", "update")]
    assert not any(c["collection"] == "_ommi_journal" for c in writes), writes
    mine = [c for c in writes if str(c["collection"]).endswith(("mdb_rel_blob", "mdb_rel_stock"))]
    assert mine, writes
    assert all(c["in_transaction"] for c in mine), mine
    assert sum(c["name"] == "commitTransaction" for c in commands.seen) == 2


@pytest.mark.usefixtures("replica_set")
async def test_add_in_a_transaction_of_its_own_is_undone_by_a_taken_key(open_db: OpenDb) -> None:
    """On a replica set an add failing on a taken key is aborted by the server: nothing of it is ever visible."""
    commands = _Commands()
    db = await open_db(models, event_listeners=[commands])
    await db.add(Blob(b"first", id=15)).or_raise()
    with pytest.raises(IntegrityError):
        await db.add(*(Blob(b"x", id=n) for n in range(1, 30))).or_raise()
    assert await db.find(Blob).count.or_raise() == 1
    # Nothing to take back by hand: the transaction never showed the documents before the taken key.
    assert not any(c["name"] == "delete" and str(c["collection"]).endswith("mdb_rel_blob") for c in commands.seen)


async def test_rewrite_of_documents_holding_uuids(open_db: OpenDb) -> None:
    """A key-changing update of documents with a UUID field goes through (the journal sized them with bson's
    default codec options, which refuse a uuid.UUID: found by the stress profile's differential test)."""
    db = await open_db(models)
    _tune(db)
    await db.find(Tagged).delete.or_raise()
    await db.add(*(Tagged(f"old-{n}", uuid.uuid4()) for n in range(3))).or_raise()
    assert await db.find(Tagged.code == "old-1").update(code="new-1").or_raise() == 1
    codes = sorted(t.code for t in await (await db.find(Tagged).all.or_raise()).to_list())
    assert codes == ["new-1", "old-0", "old-2"]
