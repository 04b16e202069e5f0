"""W1-W7 and W9-W12, run interleaved: each round runs every implementation once, in a rotating order.

Only the awaited library call is timed. Before it, the round's input is
prepared (objects built, the table emptied); after it, the result is checked
against the data set. A wrong result or an exception fails the implementation
on that workload (the run then exits non-zero); slowness never does.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from ommibench import data
from ommibench.backends import Backend
from ommibench.impls.base import Implementation
from ommibench.memory import run_memory_child
from ommibench.stats import Measurement, WorkloadResult

__all__ = ["WORKLOADS", "WorkloadRunner", "WrongResult", "titles"]

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W9", "W10", "W11", "W12")
"""W8 is kept for the concurrent-throughput workload of the performance issue."""
CALL_TIMEOUT = 600.0
"""Seconds one timed call may take before it counts as failed (a hang must not stall CI)."""
HEARTBEAT = 0.001


def titles(profile: data.Profile) -> dict[str, tuple[str, str]]:
    """Workload id to (title with its size, unit)."""
    return {
        "W1": (f"insert {profile.users:,} objects", "s"),
        "W2": (f"fetch {profile.users:,} rows as objects", "s"),
        "W3": (f"{profile.lookups:,} primary-key lookups", "s"),
        "W4": (f"{profile.queries:,} filtered queries (limit {data.FILTER_LIMIT})", "s"),
        "W5": ("bulk update + count", "s"),
        "W6": (f"largest event-loop stall, {profile.stream_rows:,} rows streamed", "s-stall"),
        "W7": (f"peak memory growth, {profile.big_rows:,} rows iterated", "MB"),
        "W9": (f"upsert {profile.users:,} objects (half replace stored rows)", "s"),
        "W10": (
            f"{profile.increment_tasks * profile.increments_per_task:,} atomic increments "
            f"from {profile.increment_tasks} concurrent tasks",
            "s",
        ),
        "W12": (
            f"{profile.authors:,} authors with their {profile.authors * profile.posts_per_author:,} posts, "
            "eager loading",
            "s",
        ),
        "W11": (f"grouped aggregate over {profile.stream_rows:,} rows (count, sum, avg by age)", "s"),
    }


class WrongResult(Exception):
    """A workload returned something other than what the data set says it must."""


@dataclass
class _Round:
    """What one timed call needs: the prepared input and the expected answer."""

    payload: Any = None
    expected: Any = None


Prepare = Callable[[Implementation, int], Awaitable[_Round]]
Call = Callable[[Implementation, _Round], Awaitable[Any]]
Check = Callable[[Implementation, _Round, Any], Awaitable[None]]


class WorkloadRunner:
    """Runs the workloads of one backend over its open implementations.

    Args:
        backend: connected and set up.
        impls: opened implementations, the raw baseline first.
        profile: sizes and repeats.
        profiler: a factory of a context manager wrapped around one implementation's
            timed calls (pyinstrument), or ``None``.
    """

    def __init__(
        self,
        backend: Backend,
        impls: Sequence[Implementation],
        profile: data.Profile,
        profiler: Callable[[str, Implementation], AbstractContextManager[Any]] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.backend = backend
        self.impls = list(impls)
        self.profile = profile
        self.profiler = profiler
        self.log = log
        self.users = data.make_rows(profile.users)

    # -- the interleaving --------------------------------------------------

    def _participants(self, workload: str) -> list[Implementation]:
        return [impl for impl in self.impls if workload in impl.workloads]

    async def _interleave(self, workload: str, prepare: Prepare, call: Call, check: Check) -> WorkloadResult:
        title, unit = titles(self.profile)[workload]
        result = WorkloadResult(workload, title, unit)
        impls = self._participants(workload)
        for impl in impls:
            result.measurements[impl.key] = Measurement(impl.key, impl.title)
        rounds = self.profile.warmup + self.profile.repeats
        for number in range(rounds):
            shift = number % len(impls)
            for impl in impls[shift:] + impls[:shift]:
                measurement = result.measurements[impl.key]
                if measurement.error is not None:
                    continue
                try:
                    state = await prepare(impl, number)
                    gc.collect()
                    context = self.profiler(workload, impl) if self.profiler is not None else nullcontext()
                    with context:
                        started = time.perf_counter()
                        async with asyncio.timeout(CALL_TIMEOUT):
                            value = await call(impl, state)
                        elapsed = time.perf_counter() - started
                    await check(impl, state, value)
                except Exception as exc:
                    measurement.error = _describe(exc)
                    self.log(f"  {workload} {impl.title}: FAILED in round {number + 1}: {measurement.error}")
                    if not isinstance(exc, WrongResult):
                        self.log("".join(traceback.format_exception(exc)).rstrip())
                    continue
                if number >= self.profile.warmup:
                    if isinstance(value, _Sample):
                        measurement.samples.append(value.value)
                        for name, extra in value.extra.items():
                            measurement.extra.setdefault(name, []).append(extra)
                    else:
                        measurement.samples.append(elapsed)
        return result

    # -- W1-W5 ---------------------------------------------------------------

    async def w1(self) -> WorkloadResult:
        async def prepare(impl: Implementation, number: int) -> _Round:
            await self.backend.clear(data.USERS)
            return _Round(impl.prepare_insert(self.users))

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.insert(state.payload)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            stored = await self.backend.read(data.USERS)
            _same_rows("the table after the insert", stored, self.users)

        result = await self._interleave("W1", prepare, call, check)
        # Whatever W1 left behind, W2-W5 start from the data set.
        await self.backend.seed(data.USERS, self.profile.users)
        await self.backend.analyze()
        return result

    async def w2(self) -> WorkloadResult:
        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.fetch_all()

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            got = sorted((impl.as_row(item) for item in value), key=lambda row: row[0])
            _same_rows("the fetched rows", got, self.users)

        return await self._interleave("W2", _nothing, call, check)

    async def w3(self) -> WorkloadResult:
        ids = data.lookup_ids(self.profile.users, self.profile.lookups)

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.lookups(ids)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            _same_rows("the looked-up rows", [impl.as_row(item) for item in value], [self.users[i - 1] for i in ids])

        return await self._interleave("W3", _nothing, call, check)

    async def w4(self) -> WorkloadResult:
        expected = data.expected_filtered(self.users)

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.filtered(self.profile.queries)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            got = [impl.as_row(item) for item in value]
            _same_rows("the filtered rows", got, [self.users[i - 1] for i in expected])

        return await self._interleave("W4", _nothing, call, check)

    async def w5(self) -> WorkloadResult:
        expected = data.expected_updated(self.users)
        keys = [impl.key for impl in self.impls]

        async def prepare(impl: Implementation, number: int) -> _Round:
            # A score no earlier round wrote, so a skipped update cannot pass the count.
            return _Round(10_000.0 + number * len(keys) + keys.index(impl.key), expected)

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.update_and_count(state.payload)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            updated, counted = value
            if (updated, counted) != (expected, expected):
                raise WrongResult(f"update reported {updated} rows and count found {counted}; expected {expected}")

        return await self._interleave("W5", prepare, call, check)

    # -- W9, W10 (production writes) ---------------------------------------------

    async def w9(self) -> WorkloadResult:
        stored, written = data.upsert_rows(self.users)

        async def prepare(impl: Implementation, number: int) -> _Round:
            await self.backend.clear(data.USERS)
            await self.backend.write(data.USERS, stored)
            return _Round(impl.prepare_upsert(written))

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.upsert(state.payload)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            _same_rows("the table after the upsert", await self.backend.read(data.USERS), written)

        result = await self._interleave("W9", prepare, call, check)
        await self.backend.seed(data.USERS, self.profile.users)
        await self.backend.analyze()
        return result

    async def w10(self) -> WorkloadResult:
        plan = data.increment_plan(self.profile.increment_tasks, self.profile.increments_per_task)
        grown = data.expected_increments(plan)

        async def prepare(impl: Implementation, number: int) -> _Round:
            before = {row[0]: row[3] for row in (await self.backend.read(data.USERS))[: data.HOT_ROWS]}
            return _Round(plan, {i: before[i] + grown.get(i, 0) for i in before})

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.increments(state.payload)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            after = {row[0]: row[3] for row in (await self.backend.read(data.USERS))[: data.HOT_ROWS]}
            if after != state.expected:
                lost = sum(state.expected.values()) - sum(after.values())
                raise WrongResult(f"hot rows' ages are {after}, expected {state.expected} ({lost} increments lost)")

        result = await self._interleave("W10", prepare, call, check)
        await self.backend.seed(data.USERS, self.profile.users)
        await self.backend.analyze()
        return result

    # -- W12 (eager loading) ---------------------------------------------------------

    async def w12(self) -> WorkloadResult:
        authors, posts = data.relation_rows(self.profile.authors, self.profile.posts_per_author)
        await self.backend.seed_relations(authors, posts)
        await self.backend.analyze()
        expected = data.expected_prefetch(self.profile.authors, self.profile.posts_per_author)

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.prefetch()

        # nx-27017, the CI's MongoDB wire server, sorts integer _id values as text (1, 10, 2) for every
        # client: there the posts of an author are compared as a set (the conformance suite checks
        # Ommi's order on that server against lazy loading's).
        in_order = self.backend.name != "mongodb"

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            got = sorted((impl.as_author_with_posts(item) for item in value), key=lambda author: author[0])
            if len(got) != len(expected):
                raise WrongResult(f"{len(got)} authors, expected {len(expected)}")
            for author, want in zip(got, expected, strict=True):
                posts = [tuple(p) for p in author[2]]
                if (author[0], author[1], posts if in_order else sorted(posts)) != want:
                    raise WrongResult(f"author {author[0]}: got {author!r:.200}, expected {want!r:.200}")

        return await self._interleave("W12", _nothing, call, check)

    # -- W11 (production reads) ------------------------------------------------------

    async def w11(self) -> WorkloadResult:
        expected = data.expected_groups(self.profile.stream_rows)

        async def call(impl: Implementation, state: _Round) -> Any:
            return await impl.grouped(data.STREAM)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            got = [tuple(group) for group in value]
            if len(got) != len(expected):
                raise WrongResult(f"{len(got)} groups, expected {len(expected)}")
            for have, want in zip(got, expected, strict=True):
                # The mean may differ in the last bits (the database's summation order).
                if have[:3] != want[:3] or not math.isclose(have[3], want[3], rel_tol=1e-12):
                    raise WrongResult(f"group {have!r}, expected {want!r}")

        return await self._interleave("W11", _nothing, call, check)

    # -- W6, W7 ----------------------------------------------------------------

    async def w6(self) -> WorkloadResult:
        expected = data.stream_checksum(self.profile.stream_rows)

        async def call(impl: Implementation, state: _Round) -> Any:
            return await _stream_with_heartbeat(impl, data.STREAM)

        async def check(impl: Implementation, state: _Round, value: Any) -> None:
            if value.checksum != expected:
                raise WrongResult(f"streamed (rows, id sum) {value.checksum}, expected {expected}")

        return await self._interleave("W6", _nothing, call, check)

    async def w7(self) -> WorkloadResult:
        title, unit = titles(self.profile)["W7"]
        result = WorkloadResult("W7", title, unit)
        impls = self._participants("W7")
        expected = data.stream_checksum(self.profile.big_rows)
        for impl in impls:
            result.measurements[impl.key] = Measurement(impl.key, impl.title)
        assert self.backend.target is not None
        for number in range(self.profile.memory_repeats):
            shift = number % len(impls)
            for impl in impls[shift:] + impls[:shift]:
                measurement = result.measurements[impl.key]
                if measurement.error is not None:
                    continue
                try:
                    report = await run_memory_child(self.backend.target, type(impl), data.BIG, CALL_TIMEOUT)
                    checksum = (report["rows"], report["id_sum"])
                    if checksum != expected:
                        raise WrongResult(f"iterated (rows, id sum) {checksum}, expected {expected}")
                except Exception as exc:
                    measurement.error = _describe(exc)
                    self.log(f"  W7 {impl.title}: FAILED: {measurement.error}")
                    continue
                measurement.samples.append(report["growth_mb"])
                measurement.extra.setdefault("elapsed_s", []).append(report["elapsed_s"])
        return result

    async def run(self, workloads: Sequence[str]) -> list[WorkloadResult]:
        """Run ``workloads`` in order, logging each as it finishes."""
        steps = {
            "W1": self.w1,
            "W2": self.w2,
            "W3": self.w3,
            "W4": self.w4,
            "W5": self.w5,
            "W6": self.w6,
            "W7": self.w7,
            "W9": self.w9,
            "W10": self.w10,
            "W12": self.w12,
            "W11": self.w11,
        }
        results = []
        for workload in workloads:
            started = time.perf_counter()
            result = await steps[workload]()
            results.append(result)
            self.log(f"  {workload} {result.title}: done in {time.perf_counter() - started:.1f} s")
        return results


@dataclass
class _Sample:
    """A call whose measure is not its own duration (W6's stall), with secondary values."""

    value: float
    extra: dict[str, float]
    checksum: tuple[int, int]


async def _nothing(impl: Implementation, number: int) -> _Round:
    return _Round()


async def _stream_with_heartbeat(impl: Implementation, table: str) -> _Sample:
    """Stream ``table`` while a task that sleeps 1 ms records the longest gap between its wake-ups."""
    measuring = True
    worst = 0.0

    async def heartbeat() -> None:
        nonlocal worst
        last = time.perf_counter()
        while measuring:
            await asyncio.sleep(HEARTBEAT)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)  # the heartbeat is running before the stream starts
    started = time.perf_counter()
    try:
        checksum = await impl.stream(table)
    finally:
        elapsed = time.perf_counter() - started
        measuring = False
        await beat
    # The stall is how much longer than its 1 ms sleep the worst wake-up came.
    return _Sample(max(0.0, worst - HEARTBEAT), {"elapsed_s": elapsed}, checksum)


def _same_rows(what: str, got: Sequence[Sequence[Any]], expected: Sequence[Sequence[Any]]) -> None:
    if len(got) != len(expected):
        raise WrongResult(f"{what}: {len(got)} rows, expected {len(expected)}")
    for index, (row, want) in enumerate(zip(got, expected, strict=True)):
        if tuple(row) != tuple(want):
            raise WrongResult(f"{what}: row {index} is {tuple(row)!r}, expected {tuple(want)!r}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, WrongResult):
        return f"wrong result: {exc}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CALL_TIMEOUT:.0f} s"
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"
