"""What every implementation under test provides, and where it connects.

An implementation is one way of doing the workloads on one backend: the raw
async driver (the baseline every ratio divides by), Ommi, or a peer ORM. The
harness times only the awaited calls below; building the input objects
(:meth:`Implementation.prepare_insert`) and checking results
(:meth:`Implementation.as_row`) happen outside the timed region.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar

from ommibench.data import AuthorWithPosts, Group, Row

__all__ = ["ALL_WORKLOADS", "Implementation", "Target", "run_tasks", "version_of"]

ALL_WORKLOADS = frozenset({"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W9", "W10", "W11", "W12"})


@dataclass(frozen=True)
class Target:
    """Where a backend's benchmark data lives; picklable to hand to W7's child processes.

    Attributes:
        backend: ``sqlite``, ``postgresql`` or ``mongodb``.
        location: the SQLite file, or the server URL (PostgreSQL: libpq URL
            without the schema; MongoDB: URL naming the benchmark database).
        namespace: the PostgreSQL schema or MongoDB database holding the tables.
    """

    backend: str
    location: str
    namespace: str = ""


def version_of(distribution: str) -> str:
    """The installed version of ``distribution``, or ``"not installed"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


async def run_tasks(task: Callable[[Sequence[int]], Awaitable[None]], plan: Sequence[Sequence[int]]) -> None:
    """W10: one task per list of ``plan``, all at once; the first failure cancels the others.

    A task group, not ``gather``: tasks left running after a failure would go on
    writing into the next implementation's measurement.
    """
    try:
        async with asyncio.TaskGroup() as group:
            for ids in plan:
                group.create_task(task(ids))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the report names the first failure itself


class Implementation(abc.ABC):
    """One library doing the workloads against one backend.

    Subclasses set :attr:`key` (``raw``, ``ommi``, ``sqlalchemy``, ``tortoise``...)
    and :attr:`title`, and list the workloads they take part in.
    """

    key: ClassVar[str]
    title: ClassVar[str]
    distributions: ClassVar[tuple[str, ...]] = ()
    """Distributions whose versions the report lists for this implementation."""
    workloads: ClassVar[frozenset[str]] = ALL_WORKLOADS
    is_baseline: ClassVar[bool] = False
    """The raw driver every ratio is taken against."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def versions(self) -> dict[str, str]:
        """Library versions, for the report."""
        return {name: version_of(name) for name in self.distributions}

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect (untimed)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect; called even when a workload failed."""

    # -- W1 ----------------------------------------------------------------
    def prepare_insert(self, rows: Sequence[Row]) -> Any:
        """The objects W1 inserts, built before the clock starts (default: the tuples)."""
        return list(rows)

    @abc.abstractmethod
    async def insert(self, prepared: Any) -> None:
        """W1: insert every prepared object into ``bench_users`` (an empty table), committed."""

    # -- W2-W5 -------------------------------------------------------------
    @abc.abstractmethod
    async def fetch_all(self) -> Sequence[Any]:
        """W2: every row of ``bench_users`` as model objects (raw: the driver's rows)."""

    @abc.abstractmethod
    async def lookups(self, ids: Sequence[int]) -> Sequence[Any]:
        """W3: one primary-key query per id, in order, awaited one after another."""

    @abc.abstractmethod
    async def filtered(self, times: int) -> Sequence[Any]:
        """W4: run the filtered query ``times`` times; return the last result."""

    @abc.abstractmethod
    async def update_and_count(self, score: float) -> tuple[int, int]:
        """W5: set ``score`` where ``age >= 60``, then count rows with that score.

        Returns:
            (rows the update reports, the count).
        """

    # -- W6/W7 -------------------------------------------------------------
    @abc.abstractmethod
    async def stream(self, table: str) -> tuple[int, int]:
        """W6/W7: iterate every row of ``table`` the library's streaming way.

        Returns:
            (rows seen, sum of their ids).
        """

    # -- W9, W10 -------------------------------------------------------------
    def prepare_upsert(self, rows: Sequence[Row]) -> Any:
        """The objects W9 upserts, built before the clock starts (default: as for W1)."""
        return self.prepare_insert(rows)

    @abc.abstractmethod
    async def upsert(self, prepared: Any) -> None:
        """W9: insert each prepared object, or replace the stored row with its id, in one committed call."""

    @abc.abstractmethod
    async def increments(self, plan: Sequence[Sequence[int]]) -> None:
        """W10: one task per list of ``plan``, all at once; each adds 1 to ``age`` of each id in turn.

        Every increment is its own atomic statement, committed on its own (the
        way a request handler counts a page view), never a read-modify-write.
        """

    # -- W12 -----------------------------------------------------------------
    async def prefetch(self) -> Sequence[Any]:
        """W12: every author of ``bench_authors`` with its posts loaded, the library's eager way.

        Returns one item per author that :meth:`as_author_with_posts` reads;
        reading it must send no further query.
        """
        raise NotImplementedError(f"{type(self).__name__} does not take part in W12")

    def as_author_with_posts(self, item: Any) -> AuthorWithPosts:
        """An item :meth:`prefetch` returned, ``(author, posts)``, as data-set tuples (for checks)."""
        author, posts = item
        return (author.id, author.name, [(p.id, p.author_id, p.title) for p in posts])

    # -- W11 -----------------------------------------------------------------
    @abc.abstractmethod
    async def grouped(self, table: str) -> Sequence[Group]:
        """W11: ``count(*)``, ``sum(id)`` and ``avg(score)`` of ``table`` grouped by ``age``, ordered by ``age``.

        Returns:
            ``(age, rows, sum of ids, mean score)`` per group (converted from the
            library's result inside the timed call: a caller needs plain values).
        """

    # -- checks ------------------------------------------------------------
    def as_row(self, item: Any) -> Row:
        """An object this implementation returned, as a data-set tuple (for checks)."""
        return (item.id, item.name, item.email, item.age, item.active, item.score)
