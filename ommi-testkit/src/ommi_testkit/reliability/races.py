"""Workloads on the edges of the API: interrupted key changes and adds, ``close()`` races, shared transactions.

Each workload takes an open ``Ommi`` (or a way to make one), records what the
database acknowledged, reads everything back, and returns its
:class:`~ommi_testkit.reliability.figures.Figures` and the problems found
(empty when all is well), like :mod:`~ommi_testkit.reliability.workloads`:

* :func:`key_update_workload`: ``find(...).update(region=...)`` changes a key
  field of many rows while being cancelled at a random moment, after a
  random number of event-loop turns, by a timeout, or while connections are
  killed (an :data:`~ommi_testkit.reliability.workloads.Injector`).
  Afterwards every row exists exactly once, in its old or its new form.
* :func:`multi_add_workload`: ``db.add`` of two model classes at once, and of
  more rows than one insert batch, interrupted the same ways. Each model's
  rows of one call are stored all or none (the driver contract); where the
  driver has transactions, the whole call is. Every instance's generated key
  equals the stored one, and is ``None`` only when nothing was stored.
* :func:`close_race_workload`: ``close()`` while adds, transactions and
  streams run. No acknowledged write is lost; an operation started after
  ``close()`` began raises :class:`ommi.errors.DatabaseClosedError`; one in
  flight finishes or raises a ``ConnectionError``/``TransactionError``;
  nothing succeeds wrongly and the database reopens explicitly.
* :func:`shared_transaction_workload`: tasks streaming ``.all`` and tasks
  writing through one transaction, some cancelled: no driver-internal error,
  and a committed transaction holds every write it acknowledged.
* :func:`mixed_key_workload`: explicit and generated keys added at once, and
  ``update(id=N)`` followed by generated adds: a generated key never collides
  with one the application chose.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ommi import Ommi
from ommi.errors import (
    ConnectionError,
    DatabaseClosedError,
    DatabaseError,
    IntegrityError,
    OmmiError,
    TransactionError,
)

from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.models import Part, Receipt, Stock, Ticket, workload_models
from ommi_testkit.reliability.specs import field_of
from ommi_testkit.reliability.workloads import Injector

__all__ = [
    "Outcome",
    "close_race_workload",
    "interrupt",
    "key_update_workload",
    "mixed_key_workload",
    "multi_add_workload",
    "shared_transaction_workload",
]

stock_region = field_of(Stock, "region")
stock_code = field_of(Stock, "code")
ticket_id = field_of(Ticket, "id")
ticket_batch = field_of(Ticket, "batch")
ticket_token = field_of(Ticket, "token")
part_group = field_of(Part, "group")
receipt_token = field_of(Receipt, "token")
receipt_worker = field_of(Receipt, "worker")

MODES = ("delay", "turns", "timeout", "none")
"""How :func:`interrupt` interrupts an operation (``fault`` joins them when an injector is given)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"


@dataclass
class Outcome:
    """How an interrupted operation ended: ``done`` (with its value), ``cancelled`` or ``failed`` (with the error)."""

    mode: str
    status: str
    value: Any = None
    error: BaseException | None = None


async def interrupt(
    operation: Callable[[], Awaitable[Any]],
    rng: random.Random,
    *,
    max_delay: float = 0.05,
    max_turns: int = 60,
    inject: Injector | None = None,
    figures: Figures | None = None,
) -> Outcome:
    """Run ``operation`` in a task and interrupt it one of several ways, chosen by ``rng``.

    * ``delay``: cancelled after a random delay up to ``max_delay`` seconds;
    * ``turns``: cancelled after a random number of event-loop turns (0 up
      to ``max_turns``, mostly few), so over many rounds every ``await``
      inside the operation is hit;
    * ``timeout``: run under ``asyncio.wait_for`` with a random timeout;
    * ``fault`` (with ``inject``): connections are killed after a random delay
      while it runs;
    * ``none``: left to finish.
    """
    modes = MODES + (("fault", "fault") if inject is not None else ())
    mode = rng.choice(modes)
    if mode == "timeout":
        task = asyncio.ensure_future(asyncio.wait_for(operation(), rng.uniform(0, max_delay)))
    else:
        task = asyncio.ensure_future(operation())
    if mode == "delay":
        asyncio.get_running_loop().call_later(rng.uniform(0, max_delay), task.cancel)
    elif mode == "turns":
        for _ in range(min(max_turns, int(rng.expovariate(8 / max_turns)))):
            if task.done():
                break
            await asyncio.sleep(0)
        task.cancel()
    elif mode == "fault" and inject is not None:
        await asyncio.sleep(rng.uniform(0, max_delay))
        killed = await inject()
        if figures is not None:
            figures.faults += killed
    try:
        value = await task
    except OmmiError as exc:  # first: Ommi's TimeoutError is also the builtin one wait_for raises
        return Outcome(mode, "failed", error=exc)
    except (asyncio.CancelledError, TimeoutError):
        if figures is not None:
            figures.cancelled += 1
        return Outcome(mode, "cancelled")
    except Exception as exc:
        return Outcome(mode, "failed", error=exc)
    return Outcome(mode, "done", value)


async def _read(make: Callable[[], Awaitable[Any]], attempts: int = 10) -> Any:
    """A read, tried again while it fails with a ConnectionError (a connection killed by a fault injector)."""
    for attempt in range(attempts):
        try:
            return await make()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


async def _rows(query: Any) -> list[Any]:
    iterator = await query.all.or_raise()
    return await iterator.to_list()


async def _fresh_tables(db: Ommi) -> None:
    await db.remove_models(workload_models)
    await db.use_models(workload_models)


def _unexpected_failure(outcome: Outcome, faults: bool) -> str | None:
    """None when a failed outcome is acceptable.

    With faults injected, a ConnectionError is acceptable in any round (a
    connection killed in an earlier round may surface now), and any
    ``DatabaseError`` or ``TransactionError`` in a round that killed
    connections. Without faults nothing is.
    """
    if outcome.status != "failed" or outcome.error is None:
        return None
    if faults and isinstance(outcome.error, ConnectionError):
        return None
    if faults and outcome.mode == "fault" and isinstance(outcome.error, (DatabaseError, TransactionError)):
        return None
    return f"{outcome.mode}: {_describe(outcome.error)}"


async def _store_stock(db: Ommi, region: str, size: int) -> None:
    """Store the round's rows, again after a ConnectionError (a killed connection); never twice."""
    rows = [Stock(region=region, code=code, quantity=code * 3) for code in range(size)]
    for attempt in range(10):
        try:
            await db.add(*rows).or_raise()
            return
        except ConnectionError:
            await asyncio.sleep(0.05)
        except IntegrityError:
            if attempt and await _read(lambda: db.find(stock_region == region).count.or_raise()) == size:
                return  # the attempt that lost its connection had committed
            raise
    raise AssertionError(f"could not store the rows of {region} in 10 attempts")


# -- (a) key-changing updates ------------------------------------------------------


async def key_update_workload(
    db: Ommi,
    *,
    backend: str,
    profile: str,
    rounds: int,
    rows: int,
    inject: Injector | None = None,
    max_delay: float = 0.05,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Key-changing updates (``update(region=...)`` on a composite key) interrupted at random points.

    Every round stores 1 to ``rows`` :class:`Stock` rows in a region of its
    own, then moves them all to a new region with one ``update`` that is
    cancelled, timed out, hit by ``inject`` or left alone. Afterwards each row
    exists exactly once, in the old or the new region, with its quantity; an
    acknowledged update moved every row. Rounds where an interrupted update
    left some rows old and some new are counted in the notes (each row still
    exists once, which is what the API promises).
    """
    figures = Figures("key_updates", backend, profile)
    problems: list[str] = []
    rng = random.Random(seed)
    started = time.perf_counter()
    mixed = 0
    await _fresh_tables(db)
    for number in range(rounds):
        old, new = f"k{number}-old", f"k{number}-new"
        size = rng.randint(1, rows)
        await _store_stock(db, old, size)

        def move(old: str = old, new: str = new) -> Awaitable[int]:
            return db.find(stock_region == old).update(region=new).or_raise()

        outcome = await interrupt(move, rng, max_delay=max_delay, inject=inject, figures=figures)
        figures.tasks += 1
        wrong = _unexpected_failure(outcome, inject is not None)
        if wrong is not None:
            problems.append(f"round {number}: the update failed: {wrong}")
        stored = await _read(lambda old=old, new=new: _rows(db.find(stock_region.in_([old, new]))))
        figures.rows_verified += len(stored)
        by_code = collections.Counter(s.code for s in stored)
        lost = [code for code in range(size) if by_code[code] == 0]
        doubled = sorted(code for code, n in by_code.items() if n > 1)
        foreign = sorted(s.code for s in stored if not 0 <= s.code < size or s.quantity != s.code * 3)
        figures.lost += len(lost)
        figures.duplicated += len(doubled)
        if lost or doubled or foreign:
            problems.append(
                f"round {number} ({outcome.mode}, {outcome.status}, {size} rows): lost codes {lost}, "
                f"doubled {doubled}, wrong rows {foreign}"
            )
        regions = {s.region for s in stored}
        if outcome.status == "done":
            figures.acknowledged += 1
            if regions != {new} or outcome.value != size:
                problems.append(
                    f"round {number}: the update reported {outcome.value} of {size} rows but left regions {regions}"
                )
        elif len(regions) > 1:
            mixed += 1
        # Keep the table small, so a long (stress) run stays fast on every backend.
        await _read(lambda old=old, new=new: db.find(stock_region.in_([old, new])).delete.or_raise())
    if mixed:
        figures.notes.append(f"{mixed} interrupted key-changing updates left some rows old and some new")
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


# -- (b) multi-model and multi-batch adds -----------------------------------------


async def multi_add_workload(
    db: Ommi,
    *,
    backend: str,
    profile: str,
    rounds: int,
    big_rounds: int,
    big_rows: int,
    heavy_rounds: int = 0,
    heavy_rows: int = 50,
    heavy_bytes: int = 2**20,
    max_delay: float = 0.05,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Adds of two model classes at once, and of more rows than one insert batch, interrupted at random points.

    ``rounds`` adds interleave :class:`Part` rows (key chosen by the
    application) and :class:`Ticket` rows (generated key); ``big_rounds`` add
    ``big_rows`` tickets and as many parts in one call (more than one insert
    statement or message); ``heavy_rounds`` add ``heavy_rows`` tickets of
    ``heavy_bytes`` each (several wire messages for a document store).

    Checked after each call: each model's rows are stored all or none; where
    the driver has transactions, the parts and tickets of one call are stored
    together or not at all; an acknowledged call stored everything; every
    ticket's ``id`` equals its stored key, and is ``None`` only when its row
    was not stored.
    """
    figures = Figures("multi_add", backend, profile)
    problems: list[str] = []
    rng = random.Random(seed)
    started = time.perf_counter()
    await _fresh_tables(db)
    atomic = db.driver.capabilities.transactions
    plan = ["mixed"] * rounds + ["big"] * big_rounds + ["heavy"] * heavy_rounds
    rng.shuffle(plan)
    for number, kind in enumerate(plan):
        batch = f"m{number}"
        if kind == "mixed":
            parts_n, tickets_n, note = rng.randint(1, 6), rng.randint(1, 6), ""
        elif kind == "big":
            parts_n, tickets_n, note = big_rows, big_rows, ""
        else:
            parts_n, tickets_n, note = 0, heavy_rows, "x" * heavy_bytes
        parts = [Part(group=batch, index=i, size=parts_n) for i in range(parts_n)]
        tickets = [Ticket(token=f"{batch}-{i}", batch=batch, note=note) for i in range(tickets_n)]
        mixed: list[Any] = []
        for i in range(max(parts_n, tickets_n)):
            mixed += parts[i : i + 1] + tickets[i : i + 1]

        def add(mixed: list[Any] = mixed) -> Awaitable[Any]:
            return db.add(*mixed).or_raise()

        delay = max_delay * (20 if kind != "mixed" else 1)
        outcome = await interrupt(add, rng, max_delay=delay, figures=figures)
        figures.tasks += 1
        wrong = _unexpected_failure(outcome, False)
        if wrong is not None:
            problems.append(f"round {number} ({kind}): the add failed: {wrong}")
        stored_parts = await db.find(part_group == batch).count.or_raise()
        stored_tickets = {t.token: t.id async for t in db.find(ticket_batch == batch).all(batch_size=1000)}
        figures.rows_verified += stored_parts + len(stored_tickets)
        label = f"round {number} ({kind}, {outcome.mode}, {outcome.status})"
        if stored_parts not in (0, parts_n):
            figures.partial += 1
            problems.append(f"{label}: {stored_parts} of {parts_n} parts stored")
        if len(stored_tickets) not in (0, tickets_n):
            figures.partial += 1
            problems.append(f"{label}: {len(stored_tickets)} of {tickets_n} tickets stored")
        if atomic and parts_n and bool(stored_parts) != bool(stored_tickets):
            figures.partial += 1
            problems.append(f"{label}: {stored_parts} parts but {len(stored_tickets)} tickets stored")
        if outcome.status == "done":
            figures.acknowledged += 1
            if stored_parts != parts_n or len(stored_tickets) != tickets_n:
                figures.lost += 1
                problems.append(f"{label}: acknowledged, but {stored_parts} parts, {len(stored_tickets)} tickets")
        wrong_keys = [
            (t.token, t.id, stored_tickets.get(t.token)) for t in tickets if t.id != stored_tickets.get(t.token)
        ]
        if wrong_keys:
            figures.wrong_keys += len(wrong_keys)
            problems.append(
                f"{label}: instance keys differ from the stored ones (token, key, stored): {wrong_keys[:3]}"
            )
        await db.find(ticket_batch == batch).delete.or_raise()  # keep the tables small
        await db.find(part_group == batch).delete.or_raise()
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


# -- (c) close() racing operations --------------------------------------------------


async def close_race_workload(
    make_database: Callable[[], Ommi],
    *,
    backend: str,
    profile: str,
    rounds: int,
    tasks: int,
    max_delay: float = 0.05,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """``close()`` called while adds, transactions and streams run, then the database reopened.

    Each round opens a database (every other round a new ``Ommi`` from
    ``make_database``, else the closed one again with ``await db.open()``),
    starts ``tasks`` tasks and closes the database after a random delay or
    number of event-loop turns. Then:

    * a task that finished acknowledged its write, and it is stored, whole;
    * a task in flight when ``close()`` began may fail only with an
      ``ommi.errors`` ConnectionError (``DatabaseClosedError`` among them) or
      TransactionError;
    * an operation started after ``close()`` began must raise
      ``DatabaseClosedError``; so must every kind of operation tried after
      ``close()`` returned (add, the find forms, ``transaction()``,
      ``use_models``); a success there is wrong;
    * nothing waits forever.
    """
    figures = Figures("close_race", backend, profile)
    problems: list[str] = []
    rng = random.Random(seed)
    started = time.perf_counter()
    acknowledged: set[str] = set()
    groups: dict[str, int] = {}
    first = make_database()
    await first.open()
    await _fresh_tables(first)
    transactions = first.driver.capabilities.transactions
    kinds = ["add", "group", "stream", "count"] + (["tx_group", "tx_stream"] if transactions else [])
    await first.add(*(Part(group="bulk", index=i, size=20) for i in range(20))).or_raise()
    groups["bulk"] = 20
    db = first
    for number in range(rounds):
        if number:
            if number % 2:
                db = make_database()
            await db.open()
        closing = asyncio.Event()

        async def work(kind: str, name: str, db: Ommi = db, closing: asyncio.Event = closing) -> str | None:
            late = closing.is_set()
            try:
                if kind == "add":
                    await db.add(Receipt(token=name, worker=0)).or_raise()
                    acknowledged.add(name)
                elif kind == "group":
                    size = rng.randint(2, 5)
                    await db.add(*(Part(group=name, index=i, size=size) for i in range(size))).or_raise()
                    groups[name] = size
                elif kind == "stream":
                    seen = [p async for p in db.find(part_group == "bulk").all(batch_size=3)]
                    if len(seen) != 20:
                        return f"{name}: a stream that ended normally gave {len(seen)} of 20 rows"
                elif kind == "count":
                    await db.find(Receipt).count.or_raise()
                elif kind == "tx_group":
                    size = rng.randint(2, 5)
                    async with db.transaction() as t:
                        await t.add(*(Part(group=name, index=i, size=size) for i in range(size // 2))).or_raise()
                        await asyncio.sleep(0)
                        await t.add(*(Part(group=name, index=i, size=size) for i in range(size // 2, size))).or_raise()
                    groups[name] = size
                else:
                    async with db.transaction() as t:
                        async for _ in t.find(part_group == "bulk").all(batch_size=4):
                            await asyncio.sleep(0)
            except DatabaseClosedError:
                figures.expected_errors += 1
                return None
            except (ConnectionError, TransactionError) as exc:
                figures.expected_errors += 1
                return f"{name} ({kind}), started after close() began: {_describe(exc)}" if late else None
            except Exception as exc:
                return f"{name} ({kind}): {_describe(exc)}, not a ConnectionError or TransactionError"
            if late:
                return f"{name} ({kind}) started after close() began, yet succeeded"
            return None

        running = [asyncio.create_task(work(rng.choice(kinds), f"c{number}-{n}")) for n in range(tasks)]
        if rng.random() < 0.5:
            await asyncio.sleep(rng.uniform(0, max_delay))
        else:
            for _ in range(rng.randint(0, 30)):
                await asyncio.sleep(0)

        async def close(db: Ommi = db, closing: asyncio.Event = closing) -> None:
            # The event and the start of close() in one step: a task that sees the event unset began before.
            closing.set()
            await db.close()

        closer = asyncio.create_task(close())
        await asyncio.sleep(0)  # close() has begun
        late = [asyncio.create_task(work(rng.choice(kinds), f"c{number}-late{n}")) for n in range(3)]
        try:
            await asyncio.wait_for(closer, timeout=30)
        except OmmiError as exc:
            problems.append(f"round {number}: close() raised {_describe(exc)}")
        except TimeoutError:
            problems.append(f"round {number}: close() did not return within 30 s")
        except Exception as exc:
            problems.append(f"round {number}: close() raised {_describe(exc)}")
        done, pending = await asyncio.wait([*running, *late], timeout=30)
        for task in pending:
            task.cancel()
            problems.append(f"round {number}: a task still ran 30 s after close()")
        problems += [task.result() for task in done if not task.cancelled() and task.result() is not None]
        figures.tasks += len(running) + len(late)
        problems += [f"round {number}: {p}" for p in await _after_close(db)]
    figures.acknowledged = len(acknowledged) + len(groups)
    final = make_database()
    async with final:
        receipts = collections.Counter([r.token async for r in final.find(Receipt).all(batch_size=500)])
        by_group: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
        async for part in final.find(Part).all(batch_size=500):
            by_group[part.group].append((part.index, part.size))
    figures.rows_verified += sum(receipts.values()) + sum(len(v) for v in by_group.values())
    lost = sorted(t for t in acknowledged if receipts[t] == 0) + sorted(g for g in groups if g not in by_group)
    doubled = sorted(t for t, n in receipts.items() if n > 1)
    partial = sorted(g for g, rows in by_group.items() if sorted(rows) != [(i, rows[0][1]) for i in range(rows[0][1])])
    figures.lost += len(lost)
    figures.duplicated += len(doubled)
    figures.partial += len(partial)
    problems += [f"lost: {x}" for x in lost] + [f"duplicated: {x}" for x in doubled]
    problems += [f"partial group: {g} {sorted(by_group[g])}" for g in partial]
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


async def _after_close(db: Ommi) -> list[str]:
    """Every kind of operation on a closed database must raise DatabaseClosedError, changing nothing."""
    problems: list[str] = []

    async def enter_transaction() -> None:
        async with db.transaction() as t:
            await t.add(Receipt("after-close-tx", -1)).or_raise()

    async def stream() -> None:
        async for _ in db.find(Part).all:
            pass

    attempts: dict[str, Callable[[], Awaitable[Any]]] = {
        "add": lambda: db.add(Receipt("after-close", -1)).or_raise(),
        "find().all": lambda: db.find(Part).all.or_raise(),
        "async for .all": stream,
        "count": lambda: db.find(Part).count.or_raise(),
        "one": lambda: db.find(part_group == "bulk").one.or_raise(),
        "update": lambda: db.find(receipt_worker == -5).update(worker=-6).or_raise(),
        "delete": lambda: db.find(receipt_worker == -5).delete.or_raise(),
        "use_models": lambda: db.use_models(workload_models),
    }
    if db.driver.capabilities.transactions:  # else transaction() raises UnsupportedFeature, closed or not
        attempts["transaction()"] = enter_transaction
    for label, attempt in attempts.items():
        try:
            await asyncio.wait_for(attempt(), timeout=30)
        except DatabaseClosedError:
            continue
        except Exception as exc:
            problems.append(f"{label} after close() raised {_describe(exc)}, not DatabaseClosedError")
        else:
            problems.append(f"{label} after close() succeeded (it must raise DatabaseClosedError)")
    return problems


# -- (d) one transaction shared by streaming and writing tasks ---------------------


class _RollBack(Exception):
    """Raised in a shared transaction's block to roll it back."""


async def shared_transaction_workload(
    db: Ommi,
    *,
    backend: str,
    profile: str,
    rounds: int,
    streamers: int = 3,
    writers: int = 3,
    round_timeout: float = 20.0,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Tasks streaming ``.all`` and tasks writing, all through one transaction, at once.

    Streamers iterate 30 rows in small batches (one of them writing inside
    its loop); writers add receipts and update one. Every streamer must see
    all 30 rows and no task may fail. In some rounds one more task is
    cancelled at a random moment: the others may then fail only with
    TransactionError, and the commit must store everything the transaction
    acknowledged, or raise (TransactionError or a DatabaseError) and store
    nothing. Some rounds roll back on purpose: then nothing is stored. A
    round may take ``round_timeout`` seconds; after two that did not end (or
    fifty problems) the workload stops early.
    """
    figures = Figures("shared_transaction", backend, profile)
    problems: list[str] = []
    rng = random.Random(seed)
    started = time.perf_counter()
    await _fresh_tables(db)
    await db.add(*(Part(group="bulk", index=i, size=30) for i in range(30))).or_raise()
    timeouts = 0
    for number in range(rounds):
        acknowledged: set[str] = set()
        errors: list[BaseException] = []
        cancel = rng.random() < 0.3
        roll_back = not cancel and rng.random() < 0.2

        async def streamer(
            t: Any, n: int, write: bool, number: int = number, acknowledged: set[str] = acknowledged
        ) -> None:
            count = 0
            async for _ in t.find(part_group == "bulk").all(batch_size=rng.choice([1, 2, 5, 7])):
                count += 1
                if write and count % 10 == 0:
                    token = f"s{number}-{n}-{count}"
                    await t.add(Receipt(token=token, worker=number)).or_raise()
                    acknowledged.add(token)
                await asyncio.sleep(0)
            if count != 30:
                raise AssertionError(f"a stream in the shared transaction saw {count} of 30 rows")

        async def writer(t: Any, n: int, number: int = number, acknowledged: set[str] = acknowledged) -> None:
            for k in range(3):
                token = f"w{number}-{n}-{k}"
                await t.add(Receipt(token=token, worker=number)).or_raise()
                acknowledged.add(token)
                await asyncio.sleep(0)
            await t.find(receipt_token == f"w{number}-{n}-0").update(worker=number).or_raise()
            await t.find(part_group == "bulk").count.or_raise()

        async def block(
            number: int = number,
            acknowledged: set[str] = acknowledged,
            errors: list[BaseException] = errors,
            cancel: bool = cancel,
            roll_back: bool = roll_back,
        ) -> None:
            async with db.transaction() as t:
                jobs = [asyncio.create_task(streamer(t, n, n == 0)) for n in range(streamers)]
                jobs += [asyncio.create_task(writer(t, n)) for n in range(writers)]
                if cancel:
                    victim = asyncio.create_task(
                        writer(t, writers) if rng.random() < 0.5 else streamer(t, streamers, True)
                    )
                    asyncio.get_running_loop().call_later(rng.uniform(0, 0.02), victim.cancel)
                    jobs.append(victim)
                results = await asyncio.gather(*jobs, return_exceptions=True)
                for job, result in zip(jobs, results, strict=True):
                    if isinstance(result, BaseException) and not job.cancelled():
                        errors.append(result)
                if roll_back:
                    raise _RollBack

        outcome: BaseException | None = None
        try:
            await asyncio.wait_for(block(), timeout=round_timeout)
        except _RollBack:
            pass
        except (TransactionError, DatabaseError) as exc:  # before TimeoutError: Ommi's is also the builtin
            outcome = exc
        except TimeoutError as exc:
            problems.append(f"round {number}: the shared transaction did not end within {round_timeout} s")
            outcome = exc
            timeouts += 1
        except Exception as exc:
            problems.append(f"round {number}: the transaction raised {_describe(exc)}")
            outcome = exc
        figures.tasks += streamers + writers + int(cancel)
        if cancel:
            figures.cancelled += 1
        for error in errors:
            if cancel and isinstance(error, TransactionError):
                figures.expected_errors += 1
                continue
            problems.append(f"round {number}: a task sharing the transaction failed: {_describe(error)}")
        stored = collections.Counter([r.token async for r in db.find(receipt_worker == number).all(batch_size=500)])
        figures.rows_verified += sum(stored.values())
        doubled = sorted(t for t, n in stored.items() if n > 1)
        figures.duplicated += len(doubled)
        if doubled:
            problems.append(f"round {number}: duplicated {doubled}")
        committed = outcome is None and not roll_back
        if committed:
            figures.acknowledged += len(acknowledged)
            lost = sorted(acknowledged - set(stored))
            figures.lost += len(lost)
            if lost:
                problems.append(f"round {number}: committed, but lost {lost[:10]} ({len(lost)})")
        elif stored:
            figures.partial += 1
            why = "rolled back" if roll_back else f"failed ({_describe(outcome)})" if outcome else "ended"
            problems.append(f"round {number}: the transaction {why}, yet {sorted(stored)[:10]} were stored")
        if timeouts >= 2 or len(problems) > 50:
            problems.append(f"stopped after round {number} of {rounds}: the driver is stuck or failing throughout")
            break
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems


# -- (e) explicit and generated keys mixed --------------------------------------------


async def mixed_key_workload(
    db: Ommi,
    *,
    backend: str,
    profile: str,
    tasks: int,
    rounds: int,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Tasks adding tickets with generated keys, with explicit keys, and moving keys with ``update(id=N)``, at once.

    Explicit keys are chosen above every key known so far, so a generated key
    may only collide with one if the driver's generator ignores explicit keys.
    A generated add must never fail (above all not with IntegrityError); an
    explicit add or key update may fail with IntegrityError only when
    another row really holds that key (a generated add of another task got
    there first). Which row held it is settled after the run, against every
    key a generated add was given: looking the holder up at refusal time
    raced the moves, which may carry that row to another key before the
    lookup ran. Afterwards every acknowledged ticket is stored once, with the
    key its instance holds.
    """
    figures = Figures("mixed_keys", backend, profile)
    problems: list[str] = []
    rng = random.Random(seed)
    started = time.perf_counter()
    await _fresh_tables(db)
    state = {"high": 0}
    expected: dict[str, int] = {}
    movable: list[str] = []
    generated_keys: set[int] = set()
    refused: list[tuple[str, int, str]] = []

    def choose() -> int:
        state["high"] += rng.randint(1, 25)
        return state["high"]

    def saw(key: int | None) -> None:
        if key is not None:
            state["high"] = max(state["high"], key)

    async def generated(name: str) -> None:
        ticket = Ticket(token=name, batch="generated")
        try:
            await db.add(ticket).or_raise()
        except Exception as exc:
            problems.append(f"{name}: a generated add failed: {_describe(exc)}")
            return
        if not isinstance(ticket.id, int):
            figures.wrong_keys += 1
            problems.append(f"{name}: a generated add left the key {ticket.id!r}")
            return
        saw(ticket.id)
        generated_keys.add(ticket.id)
        expected[name] = ticket.id
        movable.append(name)

    async def explicit(name: str) -> None:
        key = choose()
        ticket = Ticket(token=name, batch="explicit", id=key)
        try:
            await db.add(ticket).or_raise()
        except IntegrityError as exc:
            refused.append((f"{name}: explicit key", key, _describe(exc)))
            return
        except Exception as exc:
            problems.append(f"{name}: an explicit add failed: {_describe(exc)}")
            return
        if ticket.id != key:
            figures.wrong_keys += 1
            problems.append(f"{name}: explicit key {key} became {ticket.id}")
        expected[name] = key

    async def move(name: str) -> None:
        if not movable:
            await generated("g" + name)
            return
        token = movable.pop(rng.randrange(len(movable)))
        key = choose()
        try:
            changed = await db.find(ticket_token == token).update(id=key).or_raise()
        except IntegrityError as exc:
            refused.append((f"{name}: update(id=...) to key", key, _describe(exc)))
            return
        except Exception as exc:
            problems.append(f"{name}: update(id={key}) failed: {_describe(exc)}")
            return
        if changed != 1:
            problems.append(f"{name}: update(id={key}) of {token} changed {changed} rows")
        expected[token] = key
        for k in range(3):  # generated adds right after the key moved ahead of the generator
            await generated(f"g{name}-{k}")

    async def worker(number: int) -> None:
        for round_ in range(rounds):
            kind = rng.choice(["generated", "generated", "explicit", "move"])
            name = f"{kind[0]}{number}-{round_}"
            await {"generated": generated, "explicit": explicit, "move": move}[kind](name)

    await asyncio.gather(*(worker(n) for n in range(tasks)))
    for what, key, why in refused:
        if key in generated_keys:
            figures.expected_errors += 1
        else:
            problems.append(f"{what} {key} refused though no generated add was given it: {why}")
    figures.tasks = tasks
    figures.acknowledged = len(expected)
    stored = collections.defaultdict(list)
    async for ticket in db.find(Ticket).all(batch_size=1000):
        stored[ticket.token].append(ticket.id)
    figures.rows_verified = sum(len(v) for v in stored.values())
    lost = sorted(t for t in expected if t not in stored)
    doubled = sorted(t for t, keys in stored.items() if len(keys) > 1)
    moved = sorted((t, expected[t], stored[t]) for t in expected if t in stored and stored[t] != [expected[t]])
    figures.lost += len(lost)
    figures.duplicated += len(doubled)
    figures.wrong_keys += len(moved)
    problems += [f"lost: {t}" for t in lost] + [f"duplicated: {t}" for t in doubled]
    problems += [f"{t}: acknowledged key {k}, stored {s}" for t, k, s in moved]
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems
