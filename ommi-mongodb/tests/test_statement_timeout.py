"""``statement_timeout`` on MongoDB: the setting, what reaches the server, expiry, and ``lock_timeout`` refused.

The driver bounds each call it makes into PyMongo for an operation with
``pymongo.timeout(statement_timeout)``, so PyMongo sends the time left as
``maxTimeMS``. nx-27017 (the test server) ignores ``maxTimeMS`` (a ``$where``
sleep given ``maxTimeMS=1`` ran to completion), so:

* what reaches the server is checked with a ``pymongo.monitoring.CommandListener``
  registered on the driver's client (``event_listeners``, a client option);
* expiry is provoked on the client's side with a deadline already past when the
  command would be sent (1 µs): PyMongo itself then raises its code-50
  ``ExecutionTimeout`` ("operation would exceed time limit"), no slow query
  needed (none may run on the shared nx-27017);
* the server's own expiry (code 50 from a real MongoDB, and a reply arriving
  after the deadline) needs a real server with the ``failCommand`` fail point;
* the translation of code 50 as the server reports it is checked at the table
  level with a hand-built ``ExecutionTimeout``.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ommi
import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.drivers import TransactionOptions
from ommi.errors import (
    ConfigurationError,
    ConnectionError,
    OperationalError,
    TimeoutError,
    UnsupportedFeature,
)
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._errors import exceptions
from ommi_mongodb._journal import MARKERS
from ommi_mongodb._settings import JOURNAL_COLLECTION, MAX_STATEMENT_TIMEOUT, SCHEMA_COLLECTION
from pymongo import errors as pm
from pymongo import monitoring

models = ModelCollection("ommi_mongodb_test_statement_timeout")


@ommi_model(collection=models, name="mdb_timed")
@dataclass
class Timed:
    name: str
    id: int = ommi.generated_key()
    hits: int = 0


URL = "mongodb://127.0.0.1:1/app"

_DATA_COMMANDS = frozenset({"insert", "update", "delete", "find", "getMore", "aggregate", "findAndModify", "count"})
_UNBOUNDED_COLLECTIONS = frozenset({JOURNAL_COLLECTION, SCHEMA_COLLECTION})


def _journal_finish(command: Any) -> bool:
    """Whether a command finishes or undoes a journaled write: its filters select documents by a journal mark."""
    statements = command.get("updates") or command.get("deletes") or []
    return bool(statements) and all(any(m in repr(s.get("q")) for m in MARKERS) for s in statements)


class Commands(monitoring.CommandListener):
    """Every command the client sends: its name, its collection and its ``maxTimeMS``.

    The writes finishing (or undoing) a journaled write select the documents
    by their journal mark: those run unbounded by design (past the commit
    point a write must finish), and are left out.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, Any]] = []
        self.finishing: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if _journal_finish(command):
            self.finishing.append((event.command_name, command.get("maxTimeMS")))
            return
        self.sent.append((event.command_name, command.get(event.command_name), command.get("maxTimeMS")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def data(self) -> list[tuple[str, Any, Any]]:
        """The reads and writes of documents, apart from the journal's and the recorded model shapes'."""
        return [
            (name, collection, limit)
            for name, collection, limit in self.sent
            if name in _DATA_COMMANDS and collection not in _UNBOUNDED_COLLECTIONS
        ]


async def _operations(db: Ommi) -> None:
    """One of each operation: adds (one, several, generated keys), reads, count, updates (incl. a key and an
    expression), delete, upserts."""
    first = await db.add(Timed("a")).or_raise()
    await db.add(Timed("b"), Timed("c"), Timed("d", id=40)).or_raise()
    assert [t.name async for t in db.find(Timed).sort(Timed.name).all(batch_size=2)] == ["a", "b", "c", "d"]
    assert await db.find(Timed.name != "a").count.or_raise() == 3
    assert await db.find(Timed.name == "b").update(name="bb").or_raise() == 1
    assert await db.find(Timed.id == 40).update(id=99).or_raise() == 1  # a key: the document is written anew
    assert await db.find(Timed.name == "c").delete().or_raise() == 1
    assert await db.find(Timed.name == "a").update(hits=Timed.hits + 1).or_raise() == 1  # an update expression
    await db.upsert(Timed("e", id=50), Timed("aa", id=first.id)).or_raise()  # one new row, one replaced
    assert [t.name async for t in db.find(Timed).sort(Timed.name).all] == ["aa", "bb", "d", "e"]


# -- settings, no server ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "options", "expected"),
    [
        (URL, {"statement_timeout": 2}, 2.0),
        ({"url": URL, "statement_timeout": 0.5}, {}, 0.5),
        (f"{URL}?statement_timeout=2.5", {}, 2.5),
        (f"{URL}?Statement_Timeout=3&appName=shop", {}, 3.0),
        (f"{URL}?statement_timeout=3", {"statement_timeout": 1}, 1.0),  # keyword options first
        ({"url": f"{URL}?statement_timeout=3", "statement_timeout": 1}, {}, 3.0),  # then the URL, then the mapping
        (URL, {}, None),
    ],
)
def test_statement_timeout_comes_from_options_the_url_or_the_mapping(
    settings: Any, options: dict[str, Any], expected: float | None
) -> None:
    """As for client options: keyword options, then the URL, then the mapping; the URL keeps its other options."""
    driver = MongoDBDriver.connect(settings, **options)
    assert driver.settings.statement_timeout == expected
    assert "statement_timeout" not in driver.settings.url.lower(), "an Ommi setting, not a client option"
    assert "statement_timeout" not in {k.lower() for k in driver.settings.client_options}
    assert f"statement_timeout={expected!r}" in repr(driver.settings)
    if "appName=shop" in str(settings):
        assert driver.settings.url.endswith("/app?appName=shop")


@pytest.mark.parametrize(
    "bad",
    [0, -1, float("nan"), float("inf"), True, "2", MAX_STATEMENT_TIMEOUT * 2, 10**400, [1]],
)
def test_statement_timeout_must_be_seconds_above_zero_within_max_time_ms(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"statement_timeout \(setting\) must be a number of seconds"):
        MongoDBDriver.connect(URL, statement_timeout=bad)


@pytest.mark.parametrize("bad", ["0", "-2", "soon", "nan", "inf", "3e9", ""])
def test_statement_timeout_in_the_url_is_checked_too(bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"statement_timeout \(in the URL\) must be") as info:
        MongoDBDriver.connect(f"{URL}?statement_timeout={bad}")
    assert "2147483.647" in str(info.value)


def test_the_largest_statement_timeout_is_mongodbs_limit_on_max_time_ms() -> None:
    assert MAX_STATEMENT_TIMEOUT * 1000 == 2**31 - 1
    assert MongoDBDriver.connect(URL, statement_timeout=MAX_STATEMENT_TIMEOUT).settings.statement_timeout == (
        MAX_STATEMENT_TIMEOUT
    )


@pytest.mark.parametrize(
    ("settings", "options"),
    [
        (f"{URL}?timeoutMS=5000&statement_timeout=2", {}),
        (f"{URL}?timeoutMS=5000", {"statement_timeout": 2}),
        (URL, {"statement_timeout": 2, "timeoutMS": 5000}),
        ({"url": URL, "TimeoutMS": 5000}, {"statement_timeout": 2}),
    ],
)
def test_statement_timeout_and_pymongos_timeout_ms_are_not_combined(settings: Any, options: dict[str, Any]) -> None:
    """PyMongo's ``pymongo.timeout`` (statement_timeout) takes precedence over ``timeoutMS``: one or the other."""
    with pytest.raises(ConfigurationError, match=r"statement_timeout and PyMongo's timeoutMS cannot both be set"):
        MongoDBDriver.connect(settings, **options)


def test_timeout_ms_alone_still_goes_to_the_client() -> None:
    driver = MongoDBDriver.connect(URL, timeoutMS=5000)
    assert driver.settings.client_options["timeoutMS"] == 5000 and driver.settings.statement_timeout is None


@pytest.mark.parametrize(
    "given",
    [
        {"settings": f"{URL}?lock_timeout=2"},
        {"settings": f"{URL}?LOCK_TIMEOUT=2"},
        {"settings": {"url": URL, "lock_timeout": 2}},
        {"settings": URL, "lock_timeout": 2},
    ],
)
def test_lock_timeout_is_refused_saying_why_and_what_to_use(given: dict[str, Any]) -> None:
    settings = given.pop("settings")
    with pytest.raises(ConfigurationError, match=r"no lock_timeout setting: .*WriteConflict.*statement_timeout"):
        MongoDBDriver.connect(settings, **given)


# -- transactions, before any I/O -----------------------------------------------------------------


def test_transactions_take_statement_timeout_and_refuse_lock_timeout_in_core() -> None:
    """``timeouts`` (both kinds) stays absent; ``transaction_timeouts`` names the one MongoDB honours."""
    driver = MongoDBDriver.connect(URL)
    assert not driver.capabilities.timeouts
    assert driver.transaction_timeouts == frozenset({"statement_timeout"})
    db = Ommi(driver)
    assert db.transaction(statement_timeout=2)._options.statement_timeout == 2.0
    for given in ({"lock_timeout": 1}, {"statement_timeout": 1, "lock_timeout": 1}):
        with pytest.raises(UnsupportedFeature, match=r"lock_timeout=.*'timeouts'.*WriteConflict") as info:
            db.transaction(**given)  # type: ignore[arg-type]
        assert "db.transaction(statement_timeout=...)" in str(info.value)


async def test_begin_refuses_lock_timeout_and_a_too_large_statement_timeout_before_any_io() -> None:
    """The driver checks what core may not have (``begin`` called directly): the driver is not even open."""
    driver = MongoDBDriver.connect(URL)
    with pytest.raises(UnsupportedFeature, match=r"lock_timeout.*WriteConflict"):
        await driver.begin(TransactionOptions(lock_timeout=1.0))
    with pytest.raises(ConfigurationError, match=r"statement_timeout must be at most 2147483.647"):
        await driver.begin(TransactionOptions(statement_timeout=MAX_STATEMENT_TIMEOUT + 1))
    with pytest.raises(ConnectionError, match="not open"):  # a good one gets as far as the (closed) client
        await driver.begin(TransactionOptions(statement_timeout=1.0))


# -- the translation table (no server) ------------------------------------------------------------

WHERE = "mongodb mongodb://127.0.0.1:27017/app (database app)"


def _translated(exc: pm.PyMongoError, statement_timeout: float | None) -> Exception:
    return exceptions("read from 'x'", WHERE, statement_timeout)[pm.PyMongoError](exc)


def test_code_50_names_statement_timeout_and_its_value() -> None:
    # Built by hand, as the server reports it (MaxTimeMSExpired); nx-27017 never sends it, and the
    # end-to-end tests below cover PyMongo's own code-50 errors and the real server's.
    server = pm.ExecutionTimeout("operation exceeded time limit", 50, {"ok": 0, "code": 50})
    named = _translated(server, 2.0)
    assert isinstance(named, TimeoutError)
    assert str(named).startswith("statement_timeout=2s exceeded: read from 'x' on ")
    assert "operation exceeded time limit" in str(named)
    plain = _translated(server, None)  # no statement_timeout: the client's own timeouts are the suspects
    assert isinstance(plain, TimeoutError) and "statement_timeout" not in str(plain)
    assert "socketTimeoutMS" in str(plain)
    # A write error with code 50 (a command's writeErrors) too.
    write = pm.OperationFailure("w", 2, {"writeErrors": [{"code": 50, "errmsg": "exceeded time limit"}]})
    assert str(_translated(write, 0.25)).startswith("statement_timeout=0.25s exceeded")


def test_client_side_timeouts_name_statement_timeout_too() -> None:
    for exc in (pm.NetworkTimeout("timed out"), pm.WaitQueueTimeoutError("pool full")):
        named = _translated(exc, 1.5)
        assert isinstance(named, TimeoutError) and "statement_timeout=1.5s exceeded" in str(named)


def test_server_selection_under_statement_timeout_names_it_unless_refused() -> None:
    unreachable = pm.ServerSelectionTimeoutError(
        "10.0.0.1:27017: timed out (configured timeouts: timeoutMS: 500.0ms), Timeout: 0.5s, "
        "Topology Description: <...>"
    )
    named = _translated(unreachable, 0.5)
    assert isinstance(named, TimeoutError)
    assert "statement_timeout=0.5s exceeded" in str(named) and "may be unreachable" in str(named)
    assert "10.0.0.1:27017: timed out" in str(named)
    refused = pm.ServerSelectionTimeoutError(
        "127.0.0.1:1: [Errno 111] Connection refused, Timeout: 0.5s, Topology Description: <...>"
    )
    said = _translated(refused, 0.5)
    assert isinstance(said, ConnectionError) and "refused" in str(said) and "statement_timeout" not in str(said)


def test_other_errors_under_statement_timeout_keep_their_class() -> None:
    failure = pm.OperationFailure("bad query", 2, {"ok": 0, "code": 2, "errmsg": "bad query"})
    other = _translated(failure, 1.0)
    assert isinstance(other, OperationalError) and not isinstance(other, TimeoutError)
    assert "statement_timeout" not in str(other)


# -- on the server: what is sent ------------------------------------------------------------------


async def test_every_read_and_write_of_an_operation_carries_max_time_ms(
    open_db: Callable[..., Awaitable[Ommi]],
) -> None:
    """Each call gets its own deadline, sent as maxTimeMS; the journal's and schema records' commands get none."""
    commands = Commands()
    db = await open_db(models, statement_timeout=5, event_listeners=[commands])
    commands.sent.clear()
    await _operations(db)
    # getMore never carries maxTimeMS (PyMongo's client-side timeout does not send it on a getMore of a
    # non-tailable cursor: the server holds the cursor to its find's maxTimeMS, and the client stops
    # waiting for the reply at the batch's own deadline).
    more = [entry for entry in commands.data() if entry[0] == "getMore"]
    assert more and all(limit is None for _, _, limit in more), "batch_size=2 over 4 documents: getMore was sent"
    data = [entry for entry in commands.data() if entry[0] != "getMore"]
    assert {name for name, _, _ in data} >= {"insert", "update", "delete", "find", "aggregate", "findAndModify"}
    unbounded = [(name, collection) for name, collection, limit in data if limit is None]
    assert unbounded == []
    assert all(isinstance(limit, int) and 0 < limit <= 5000 for _, _, limit in data), data
    journal = [limit for name, collection, limit in commands.sent if collection == JOURNAL_COLLECTION]
    assert journal and all(limit is None for limit in journal), "the key update ran under the journal, unbounded"
    assert commands.finishing and all(limit is None for _, limit in commands.finishing)


async def test_without_the_setting_no_command_carries_max_time_ms(open_db: Callable[..., Awaitable[Ommi]]) -> None:
    commands = Commands()
    db = await open_db(models, event_listeners=[commands])
    await _operations(db)
    assert commands.data(), "the operations were sent"
    assert [entry for entry in commands.sent if entry[2] is not None] == []


async def test_the_url_setting_reaches_the_server_without_a_pymongo_warning(
    open_db: Callable[..., Awaitable[Ommi]], mongodb_url: str
) -> None:
    separator = "&" if "?" in mongodb_url else "?"
    commands = Commands()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        db = await open_db(models, url=f"{mongodb_url}{separator}statement_timeout=2", event_listeners=[commands])
    assert not [w for w in caught if "statement_timeout" in str(w.message)]
    assert db.driver.settings.statement_timeout == 2.0
    commands.sent.clear()
    await db.add(Timed("a")).or_raise()
    assert await db.find(Timed).count.or_raise() == 1
    limits = [limit for name, _, limit in commands.data() if name != "getMore"]
    assert limits and all(isinstance(limit, int) and 0 < limit <= 2000 for limit in limits)


async def test_the_largest_statement_timeout_is_sent_within_mongodbs_limit(
    open_db: Callable[..., Awaitable[Ommi]],
) -> None:
    commands = Commands()
    db = await open_db(models, statement_timeout=MAX_STATEMENT_TIMEOUT, event_listeners=[commands])
    commands.sent.clear()
    await db.add(Timed("a")).or_raise()
    limits = [limit for _, _, limit in commands.data()]
    assert limits and all(0 < limit <= 2**31 - 1 for limit in limits)


# -- on the server: expiry ------------------------------------------------------------------------


async def test_expiry_raises_timeout_error_naming_the_setting_and_changes_nothing(
    open_db: Callable[..., Awaitable[Ommi]], make_driver: Callable[..., MongoDBDriver]
) -> None:
    """A deadline past before the command leaves: PyMongo's own code-50 error, named; nothing stored changes."""
    plain = await open_db(models)
    await plain.add(Timed("a"), Timed("b")).or_raise()
    async with Ommi(make_driver(statement_timeout=1e-6)) as bounded:
        await _expire_each(bounded)
    assert sorted((t.id, t.name) for t in await plain.find(Timed).all.to_list()) == [(1, "a"), (2, "b")]
    # The failures broke nothing: the same database takes the next operation.
    await plain.add(Timed("c")).or_raise()
    assert await plain.find(Timed).count.or_raise() == 3


async def _expire_each(bounded: Ommi) -> None:
    attempts: list[Callable[[], Awaitable[Any]]] = [
        lambda: bounded.add(Timed("x")).or_raise(),
        lambda: bounded.add(Timed("x", id=70), Timed("y", id=71)).or_raise(),
        lambda: bounded.find(Timed).all.to_list(),
        lambda: bounded.find(Timed.name == "a").count.or_raise(),
        lambda: bounded.find(Timed.name == "a").update(name="z").or_raise(),
        lambda: bounded.find(Timed.name == "a").update(id=99).or_raise(),
        lambda: bounded.find(Timed.name == "b").delete().or_raise(),
    ]
    for attempt in attempts:
        with pytest.raises(TimeoutError, match=r"^statement_timeout=1e-06s exceeded: ") as info:
            await attempt()
        cause = info.value.__cause__
        # PyMongo's own "operation would exceed time limit": an ExecutionTimeout, code 50.
        assert isinstance(cause, pm.ExecutionTimeout) and cause.code == 50, repr(cause)


async def test_each_batch_of_a_stream_has_its_own_deadline_and_none_leaks_to_the_caller(
    open_db: Callable[..., Awaitable[Ommi]],
) -> None:
    """Slow caller code between batches neither uses up the reads' deadline nor runs under it."""
    from pymongo import _csot  # PyMongo's context of pymongo.timeout(): private, read only to prove nothing leaks

    db = await open_db(models, statement_timeout=0.2)
    await db.add(*(Timed(str(n)) for n in range(5))).or_raise()
    seen = []
    started = time.monotonic()
    async for item in db.find(Timed).sort(Timed.id).all(batch_size=2):
        assert _csot.get_timeout() is None, "pymongo.timeout() must not span the yield into caller code"
        seen.append(item.name)
        await asyncio.sleep(0.1)
    assert seen == ["0", "1", "2", "3", "4"]
    assert time.monotonic() - started > 0.4, "longer than statement_timeout in all, yet each read was in time"
    assert _csot.get_timeout() is None


async def test_a_cancelled_operation_leaves_no_deadline_behind(open_db: Callable[..., Awaitable[Ommi]]) -> None:
    db = await open_db(models, statement_timeout=0.2)
    await db.add(*(Timed(str(n)) for n in range(4))).or_raise()

    async def reader() -> None:
        async for _ in db.find(Timed).all(batch_size=1):
            await asyncio.sleep(10)

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # past the deadline a leaked context would still hold
    assert await db.find(Timed).count.or_raise() == 4
    await db.add(Timed("late")).or_raise()


# -- transactions (replica sets) and the real server ----------------------------------------------


async def test_a_transactions_statement_timeout_bounds_its_operations_and_commit(
    open_db: Callable[..., Awaitable[Ommi]],
) -> None:
    commands = Commands()
    db = await open_db(models, event_listeners=[commands])
    if not db.driver.capabilities.transactions:
        with pytest.raises(UnsupportedFeature, match="'transactions'"):
            db.transaction(statement_timeout=3)
        pytest.skip("needs a replica set or a sharded cluster: the test server is standalone (no transactions)")
    commands.sent.clear()
    async with db.transaction(statement_timeout=3) as t:
        await t.add(Timed("a"), Timed("b")).or_raise()
        assert await t.find(Timed).count.or_raise() == 2
    inside = [entry for entry in commands.sent if entry[0] in _DATA_COMMANDS or entry[0] == "commitTransaction"]
    assert "commitTransaction" in {name for name, _, _ in inside}
    assert all(isinstance(limit, int) and 0 < limit <= 3000 for _, _, limit in inside), inside
    commands.sent.clear()
    assert await db.find(Timed).count.or_raise() == 2  # the database's own operations: its setting (none)
    assert all(limit is None for _, _, limit in commands.sent)
    commands.sent.clear()
    with pytest.raises(UnsupportedFeature, match="lock_timeout"):
        async with db.transaction(lock_timeout=1):
            pass
    assert commands.sent == []


async def _fail_point(db: Ommi, data: dict[str, Any]) -> None:
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    client = driver._opening().client
    try:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": data})
    except pm.OperationFailure as exc:
        pytest.skip(f"the server has no failCommand fail point (started without enableTestCommands): {exc}")


@pytest.mark.needs_real_mongodb(reason="nx-27017 ignores maxTimeMS and has no failCommand fail point")
async def test_the_servers_own_expiry_is_named(open_db: Callable[..., Awaitable[Ommi]]) -> None:
    db = await open_db(models, statement_timeout=0.3)
    await db.add(Timed("a")).or_raise()
    await _fail_point(db, {"failCommands": ["find"], "errorCode": 50})
    with pytest.raises(TimeoutError, match=r"^statement_timeout=0.3s exceeded") as info:
        await db.find(Timed).all.to_list()
    assert isinstance(info.value.__cause__, pm.ExecutionTimeout) and info.value.__cause__.code == 50
    await _fail_point(db, {"failCommands": ["find"], "blockConnection": True, "blockTimeMS": 2000})
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^statement_timeout=0.3s exceeded"):
        await db.find(Timed).all.to_list()
    assert time.monotonic() - started < 1.5, "given up at the deadline, not when the reply came"
