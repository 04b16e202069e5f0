"""Workloads on one open ``Ommi``: writes under injected faults, many concurrent tasks, random cancellation.

Each workload starts from :func:`~ommi_testkit.reliability.ledger.prepare`,
records what the database acknowledged in a
:class:`~ommi_testkit.reliability.ledger.Ledger`, and ends with
:func:`~ommi_testkit.reliability.ledger.verify`. Each returns its
:class:`~ommi_testkit.reliability.figures.Figures` and an explanation of
everything that went wrong (empty when all is well), so a test asserts
``problems == []`` and the figures reach the report either way.

The workloads never look inside a driver: faults come from an injector the
caller passes (see :mod:`ommi_testkit.reliability.faults`), and connection
leaks are judged by a :data:`Probe` the caller passes plus a capacity check
that uses only the public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ommi import Ommi, Transaction
from ommi.errors import DatabaseError, OmmiError, TransactionError

from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.ledger import (
    Ledger,
    account_balance,
    account_id,
    part_group,
    part_size,
    prepare,
    transfer,
    verify,
)
from ommi_testkit.reliability.models import Account, Part, Receipt, Stock, Transfer

__all__ = [
    "Injector",
    "Probe",
    "cancellation_workload",
    "check_capacity",
    "concurrency_workload",
    "fault_workload",
    "hygiene",
    "retry_workload",
    "upsert_workload",
]

Injector = Callable[[], Awaitable[int]]
"""Inject one round of faults; return how many (connections terminated...)."""

Probe = Callable[[], Awaitable[dict[str, int]]]
"""Connections (or other resources) a driver holds beyond its idle state, by name; all 0 at rest."""

EXPECTED_UNDER_FAULTS = (DatabaseError, TransactionError)
"""What an operation may raise while its connection is being killed: a clear ommi.errors exception."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"


async def _add_group(db: Any, name: str, size: int) -> None:
    await db.add(*(Part(group=name, index=i, size=size) for i in range(size))).or_raise()


@contextlib.asynccontextmanager
async def hygiene() -> AsyncIterator[list[str]]:
    """Collect every warning and every event-loop error report raised inside the block.

    ``ResourceWarning`` (an unclosed connection or driver), ``RuntimeWarning``
    ("coroutine ... was never awaited") and the loop's "Task exception was
    never retrieved" / "Task was destroyed but it is pending" reports all end
    up in the yielded list; garbage is collected before the block ends so
    that finalisers report now, not in some later test.
    """
    loop = asyncio.get_running_loop()
    found: list[str] = []
    previous = loop.get_exception_handler()

    def report(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        found.append(f"event loop: {context.get('message')} {context.get('exception')!r}")

    loop.set_exception_handler(report)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield found
            finally:
                for _ in range(3):
                    gc.collect()
                    await asyncio.sleep(0.01)
        found.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        loop.set_exception_handler(previous)


# -- faults -----------------------------------------------------------------------


async def fault_workload(
    db: Ommi,
    inject: Injector,
    *,
    backend: str,
    profile: str,
    seconds: float,
    writers: int = 4,
    transferrers: int = 4,
    interval: tuple[float, float] = (0.02, 0.12),
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Acknowledged inserts and transfer transactions while ``inject`` breaks connections.

    Afterwards every acknowledged write must be stored once, no transfer may
    be half-applied, the balances must add up, and the database must answer
    at once again (the pool recovers): 20 sequential and 20 concurrent
    operations, none failing.
    """
    figures = Figures("faults", backend, profile)
    ledger = Ledger()
    await prepare(db, ledger)
    problems: list[str] = []
    stop = asyncio.Event()
    started = time.perf_counter()

    async def guarded(operation: Callable[[], Awaitable[None]]) -> None:
        try:
            await operation()
        except EXPECTED_UNDER_FAULTS:
            figures.expected_errors += 1
        except Exception as exc:
            problems.append(f"unexpected {_describe(exc)}")

    async def writer(number: int) -> None:
        count = 0
        while not stop.is_set():
            token = f"w{number}-{count}"
            count += 1

            async def write(token: str = token) -> None:
                await db.add(Receipt(token=token, worker=number)).or_raise()
                ledger.receipts.add(token)

            await guarded(write)

    async def transferrer(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        count = 0
        while not stop.is_set():
            token = f"t{number}-{count}"
            count += 1
            await guarded(lambda token=token: transfer(db, ledger, rng, token))  # type: ignore[misc]

    async def injector() -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(*interval))
            try:
                figures.faults += await inject()
            except Exception as exc:
                problems.append(f"the fault injector failed: {_describe(exc)}")
                return

    tasks = [asyncio.create_task(writer(n)) for n in range(writers)]
    tasks += [asyncio.create_task(transferrer(n)) for n in range(transferrers)]
    tasks.append(asyncio.create_task(injector()))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    figures.tasks = len(tasks)
    figures.acknowledged = len(ledger.receipts) + len(ledger.transfers)

    try:
        for _ in range(20):
            await db.find(Account).count.or_raise()
        await asyncio.gather(*(db.find(Receipt).count.or_raise() for _ in range(20)))
    except Exception as exc:
        problems.append(f"the database did not recover after the faults: {_describe(exc)}")
    verdict = await verify(db, ledger)
    verdict.into(figures)
    problems += verdict.problems
    if figures.faults == 0:
        problems.append("no fault was injected: the workload proved nothing")
    if not ledger.receipts or not ledger.transfers:
        acknowledged = f"{len(ledger.receipts)} writes, {len(ledger.transfers)} transfers"
        problems.append(f"too little was acknowledged ({acknowledged})")
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


# -- concurrency ------------------------------------------------------------------


async def concurrency_workload(
    databases: list[Ommi],
    *,
    backend: str,
    profile: str,
    tasks: int = 200,
    rounds: int = 3,
    transactions: bool = True,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """``tasks`` tasks at once doing mixed reads, writes and (where supported) transactions.

    The tasks share ``databases`` round-robin (several ``Ommi`` on one SQLite
    file give several writers). Any error at all is a problem: waiting for a
    lock or a connection must be absorbed by the driver.
    """
    figures = Figures("concurrency", backend, profile)
    ledger = Ledger(accounts=20)
    await prepare(databases[0], ledger)
    problems: list[str] = []
    started = time.perf_counter()
    kinds = ["add", "group", "count", "scan", "one"] + (["transfer", "transfer", "tx_group"] if transactions else [])

    async def step(db: Ommi, rng: random.Random, name: str) -> None:
        kind = rng.choice(kinds)
        if kind == "add":
            await db.add(Receipt(token=name, worker=0)).or_raise()
            ledger.receipts.add(name)
        elif kind == "group":
            size = rng.randint(1, 5)
            await _add_group(db, name, size)
            ledger.groups[name] = size
        elif kind == "count":
            await db.find(Receipt).count.or_raise()
        elif kind == "scan":
            async for _ in db.find(Account).sort(account_balance.desc).all(batch_size=3):
                pass
        elif kind == "one":
            await db.find(account_id == rng.randint(1, ledger.accounts)).one.or_raise()
        elif kind == "transfer":
            await transfer(db, ledger, rng, name)
        else:
            size = rng.randint(1, 4)
            async with db.transaction() as t:
                await _add_group(t, name, size)
            ledger.groups[name] = size

    async def worker(number: int) -> None:
        db = databases[number % len(databases)]
        rng = random.Random(seed * 100_000 + number)
        for round_ in range(rounds):
            try:
                await step(db, rng, f"c{number}-{round_}")
            except Exception as exc:
                problems.append(f"task {number}: {_describe(exc)}")

    await asyncio.gather(*(worker(n) for n in range(tasks)))
    figures.tasks = tasks
    figures.acknowledged = len(ledger.receipts) + len(ledger.groups) + len(ledger.transfers)
    verdict = await verify(databases[0], ledger)
    verdict.into(figures)
    problems += verdict.problems
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


# -- cancellation -----------------------------------------------------------------


async def check_capacity(db: Ommi, connections: int, *, transactions: bool, timeout: float = 15.0) -> list[str]:
    """Use ``connections`` connections at once (open streams, plus a transaction): nothing may be leaked.

    A connection leaked by an earlier task would leave one of these waiting
    until ``timeout``.
    """
    problems: list[str] = []
    opened: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            for _ in range(connections):
                iterator = await db.find(Part).all(batch_size=1).or_raise()
                opened.append(iterator)
            if transactions:
                async with db.transaction() as t:
                    await t.find(Part).count.or_raise()
    except TimeoutError:
        problems.append(
            f"only {len(opened)} of {connections} streams (and the transaction) got a connection within "
            f"{timeout}s: connections leaked"
        )
    except OmmiError as exc:
        problems.append(f"capacity check failed: {_describe(exc)}")
    finally:
        for iterator in opened:
            await iterator.aclose()
    return problems


async def _settled(probe: Probe, timeout: float = 10.0) -> dict[str, int]:
    """The probe's reading once every counter is back to 0 (or the last reading at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        reading = await probe()
        if not any(reading.values()) or time.monotonic() > deadline:
            return reading
        await asyncio.sleep(0.05)


async def cancellation_workload(
    db: Ommi,
    *,
    backend: str,
    profile: str,
    tasks: int,
    connections: int,
    probe: Probe | None = None,
    transactions: bool = True,
    wave: int = 100,
    max_delay: float = 0.03,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Start ``tasks`` tasks in waves and cancel each at a random moment.

    The tasks write groups (one ``add``, or two ``add`` calls in one
    transaction, so a half-written transaction shows), iterate ``.all`` in
    small batches (inside transactions too) and move money. Afterwards no
    group may be partial, the balances must add up, ``probe`` must read 0
    everywhere and ``connections`` connections must be usable at once.
    """
    figures = Figures("cancellation", backend, profile)
    ledger = Ledger()
    await prepare(db, ledger)
    await _add_group(db, "bulk", 40)
    ledger.groups["bulk"] = 40
    problems: list[str] = []
    started = time.perf_counter()
    rng = random.Random(seed)
    kinds = ["group", "scan", "count"] + (["tx_group", "tx_scan", "transfer"] if transactions else [])

    async def body(kind: str, name: str, task_rng: random.Random) -> None:
        if kind == "group":
            size = task_rng.randint(2, 6)
            await _add_group(db, name, size)
            ledger.groups[name] = size
        elif kind == "scan":
            async for _ in db.find(Part).all(batch_size=task_rng.choice([1, 3, 7])):
                await asyncio.sleep(0)
        elif kind == "count":
            await db.find(part_size > 1).count.or_raise()
        elif kind == "tx_group":
            size = task_rng.randint(2, 6)
            async with db.transaction() as t:
                await t.add(*(Part(group=name, index=i, size=size) for i in range(size // 2))).or_raise()
                await t.find(part_group == name).count.or_raise()
                await t.add(*(Part(group=name, index=i, size=size) for i in range(size // 2, size))).or_raise()
            ledger.groups[name] = size
        elif kind == "tx_scan":
            async with db.transaction() as t:
                async for _ in t.find(Part).all(batch_size=5):
                    await asyncio.sleep(0)
        else:
            await transfer(db, ledger, task_rng, name)

    done = 0
    for first in range(0, tasks, wave):
        batch = []
        for number in range(first, min(first + wave, tasks)):
            kind = rng.choice(kinds)
            batch.append(asyncio.create_task(body(kind, f"x{number}", random.Random(seed * 1_000_000 + number))))
        for task in batch:
            asyncio.get_running_loop().call_later(rng.uniform(0, max_delay), task.cancel)
        for task, outcome in zip(batch, await asyncio.gather(*batch, return_exceptions=True), strict=True):
            if task.cancelled():
                figures.cancelled += 1
            elif isinstance(outcome, BaseException):
                problems.append(f"task failed instead of being cancelled: {_describe(outcome)}")
            else:
                done += 1
    figures.tasks = tasks
    figures.acknowledged = len(ledger.groups) + len(ledger.transfers)
    if probe is not None:
        reading = await _settled(probe)
        if any(reading.values()):
            problems.append(f"resources still held after every task ended: {reading}")
    problems += await check_capacity(db, connections, transactions=transactions)
    verdict = await verify(db, ledger)
    verdict.into(figures)
    problems += verdict.problems
    if figures.cancelled < tasks // 4:
        problems.append(f"only {figures.cancelled} of {tasks} tasks were cancelled ({done} finished first)")
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


# -- retried transactions -------------------------------------------------------------


async def retry_workload(
    databases: list[Ommi],
    *,
    backend: str,
    profile: str,
    tasks: int,
    cancel: bool = False,
    max_delay: float = 0.05,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Concurrent withdrawals and deposits through ``db.with_transaction`` under ``serializable``, no app locks.

    Accounts come in pairs, and a withdrawal from one account of a pair
    goes through only when the pair's total covers it: two concurrent
    withdrawals from the two accounts of a pair are the classic write skew,
    which only a serializable transaction (rerun on its serialization
    failure) keeps from driving the pair's total below zero. Deposits move
    money from a bank account into the pairs. Each move writes its journal
    entry in a savepoint where the driver has them. With ``cancel``, every
    task is cancelled at a random moment.

    Afterwards the balances must match the journal of moves that were
    stored (nothing half-applied), every acknowledged move must be there
    once, and no pair may be below zero. The figures' ``expected_errors``
    count the reruns.
    """
    figures = Figures("retries", backend, profile)
    ledger = Ledger(accounts=9)  # four pairs (1-2, 3-4, 5-6, 7-8) and the bank (9)
    await prepare(databases[0], ledger)
    bank = ledger.accounts
    driver = databases[0].driver
    isolation: Any = "serializable" if "serializable" in driver.supported_isolation_levels else None
    savepoints = driver.capabilities.savepoints
    problems: list[str] = []
    started = time.perf_counter()
    runs = 0

    async def move(db: Ommi, rng: random.Random, token: str) -> None:
        nonlocal runs
        if rng.random() < 0.7:
            source = rng.randint(1, bank - 1)
            partner, target = source + 1 if source % 2 else source - 1, bank
            amount = rng.randint(100, 900)
        else:
            source, partner, target = bank, None, rng.randint(1, bank - 1)
            amount = rng.randint(1, 200)

        async def fn(t: Any) -> bool:
            nonlocal runs
            runs += 1
            ids = sorted({source, target} | ({partner} if partner is not None else set()))
            balances = {a.id: a.balance async for a in t.find(account_id.in_(ids)).all}
            if partner is not None and balances[source] + balances[partner] < amount:
                return False
            await t.find(account_id == source).update(balance=balances[source] - amount).or_raise()
            await t.find(account_id == target).update(balance=balances[target] + amount).or_raise()
            entry = Transfer(token=token, source=source, target=target, amount=amount)
            if savepoints:
                async with t.transaction() as inner:
                    await inner.add(entry).or_raise()
            else:
                await t.add(entry).or_raise()
            return True

        if await db.with_transaction(fn, retries=100, backoff=0.002, isolation=isolation):
            ledger.transfers.add(token)

    rng = random.Random(seed)
    batch = [
        asyncio.create_task(move(databases[n % len(databases)], random.Random(seed * 1_000_000 + n), f"r{n}"))
        for n in range(tasks)
    ]
    if cancel:
        for task in batch:
            asyncio.get_running_loop().call_later(rng.uniform(0, max_delay), task.cancel)
    for task, outcome in zip(batch, await asyncio.gather(*batch, return_exceptions=True), strict=True):
        if task.cancelled():
            figures.cancelled += 1
        elif isinstance(outcome, BaseException):
            problems.append(f"move failed: {_describe(outcome)}")
    figures.tasks = tasks
    figures.acknowledged = len(ledger.transfers)
    figures.expected_errors = max(0, runs - tasks)
    verdict = await verify(databases[0], ledger)
    verdict.into(figures)
    problems += verdict.problems
    balances = {a.id: a.balance async for a in databases[0].find(Account).all}
    for first in range(1, bank, 2):
        if balances[first] + balances[first + 1] < 0:
            problems.append(
                f"write skew: accounts {first} and {first + 1} hold {balances[first]} + {balances[first + 1]} < 0"
            )
    figures.notes.append(f"{runs} runs of {tasks} moves (isolation={isolation}, savepoints={savepoints})")
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


# -- upserts ----------------------------------------------------------------------


async def upsert_workload(
    databases: list[Ommi],
    *,
    backend: str,
    profile: str,
    tasks: int = 50,
    rounds: int = 4,
    keys: int = 8,
    transactions: bool = True,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """``tasks`` tasks at once upserting the same few :class:`Stock` keys (composite, chosen by the application).

    Each call upserts one to three distinct keys of ``keys`` in random order,
    now and then inside a transaction; every value written is unique (it
    names the task and round). No upsert outside a transaction may fail: a
    race on one key, or a deadlock between two calls, must be absorbed by the
    driver. Inside a transaction a deadlock reported by the database (the
    transaction rolled back) is the application's to retry: the workload runs
    those calls through ``db.with_transaction``, and counts each rerun in
    ``expected_errors``. At the
    end every key written is stored exactly once (``duplicated``: more rows
    than keys; ``lost``: a key acknowledged and missing), holding one of the
    values written to it (``wrong_keys`` counts the others), and no other row exists.
    """
    figures = Figures("upsert", backend, profile)
    db0 = databases[0]
    await prepare(db0, Ledger(accounts=1))
    written: dict[tuple[str, int], set[int]] = {}
    problems: list[str] = []
    started = time.perf_counter()

    async def worker(number: int) -> None:
        db = databases[number % len(databases)]
        rng = random.Random(seed * 100_000 + number)
        for round_ in range(rounds):
            codes = rng.sample(range(keys), rng.randint(1, min(3, keys)))
            rows = [Stock("up", code, number * 1_000 + round_) for code in codes]
            inside = transactions and rng.random() < 0.2
            attempts = 0

            async def upsert_in(t: Transaction, rows: list[Stock] = rows) -> None:
                nonlocal attempts
                attempts += 1
                await t.upsert(*rows).or_raise()

            try:
                if inside:
                    # Inside a transaction the database's deadlock victim is the application's to rerun:
                    # with_transaction does, and each rerun counts as an expected error.
                    await db.with_transaction(upsert_in)
                else:
                    await db.upsert(*rows).or_raise()
            except Exception as exc:
                problems.append(
                    f"task {number} round {round_}{' (in a transaction)' if inside else ''}: {_describe(exc)}"
                )
                continue
            figures.expected_errors += max(0, attempts - 1)
            for row in rows:
                written.setdefault((row.region, row.code), set()).add(row.quantity)

    await asyncio.gather(*(worker(n) for n in range(tasks)))
    stored = [(s.region, s.code, s.quantity) for s in await db0.find(Stock).all.to_list()]
    figures.tasks = tasks
    figures.acknowledged = sum(len(values) for values in written.values())
    figures.rows_verified = len(stored)
    by_key: dict[tuple[str, int], list[int]] = {}
    for region, code, quantity in stored:
        by_key.setdefault((region, code), []).append(quantity)
    figures.duplicated = sum(len(values) - 1 for values in by_key.values())
    figures.lost = sum(1 for key in written if key not in by_key)
    for key, values in by_key.items():
        if key not in written:
            problems.append(f"row {key} stored, but no acknowledged upsert wrote it")
        elif any(value not in written[key] for value in values):
            figures.wrong_keys += 1
            problems.append(f"row {key} holds {values}, none of them a value written to it")
    if figures.duplicated:
        problems.append(f"{figures.duplicated} keys stored more than once")
    if figures.lost:
        problems.append(f"{figures.lost} keys acknowledged but missing")
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems
