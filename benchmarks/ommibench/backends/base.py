"""What the harness needs from a backend, besides the implementations that run on it."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

from ommibench.data import BIG, STREAM, USERS, Profile, Row, chunks
from ommibench.impls.base import Implementation, Target

__all__ = ["SEED_CHUNK", "Backend", "BackendUnavailable"]

SEED_CHUNK = 50_000
"""Rows generated and written at a time when seeding the large tables."""


class BackendUnavailable(Exception):
    """The backend's server is not configured or not reachable (the message says which and how to fix it)."""


class Backend(abc.ABC):
    """A database to benchmark on, administered through its raw driver (never through the code under test).

    The tables are created by Ommi (``use_models``) so that every implementation
    works on the very same tables; the raw driver seeds and checks them.
    """

    name: ClassVar[str]
    implementations: ClassVar[tuple[type[Implementation], ...]]

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.target: Target | None = None

    @abc.abstractmethod
    async def connect(self) -> Target:
        """Find the server (or file) and open the admin connection.

        Raises:
            BackendUnavailable: no server is configured or it does not answer.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the admin connection (idempotent)."""

    @abc.abstractmethod
    async def drop_everything(self) -> None:
        """Remove the benchmark's schema/database/file contents (start and end of a run)."""

    @abc.abstractmethod
    async def server_version(self) -> str:
        """The database engine's version, for the report."""

    @abc.abstractmethod
    async def clear(self, table: str) -> None:
        """Delete every row of ``table``."""

    @abc.abstractmethod
    async def write(self, table: str, rows: Sequence[Row]) -> None:
        """Insert ``rows`` into ``table`` (committed), the fastest raw way."""

    @abc.abstractmethod
    async def read(self, table: str) -> list[Row]:
        """Every row of ``table`` ordered by id, normalised to data-set tuples."""

    async def analyze(self) -> None:  # noqa: B027 - optional hook
        """Refresh planner statistics after seeding (where the engine has them)."""

    async def create_tables(self) -> None:
        """Create the three benchmark tables through Ommi, on an empty namespace."""
        import ommi

        from ommibench.impls.ommi_impl import BENCH_MODELS, ommi_url

        assert self.target is not None
        async with ommi.connect(ommi_url(self.target), allow_implicit_model_setup=False) as db:
            await db.use_models(BENCH_MODELS)

    async def seed_relations(self, authors: Sequence[tuple[int, str]], posts: Sequence[tuple[int, int, str]]) -> None:
        """W12: fill ``bench_authors`` and ``bench_posts`` (emptied first).

        Written through Ommi's ``db.add``, untimed: the tables are Ommi's and the
        raw driver's W12 answer, checked against the data set, proves the rows.
        """
        import ommi

        from ommibench.impls.ommi_impl import BENCH_MODELS, BenchAuthor, BenchPost, ommi_url

        assert self.target is not None
        async with ommi.connect(ommi_url(self.target), allow_implicit_model_setup=False) as db:
            await db.use_models(BENCH_MODELS)
            await db.find(BenchPost).delete.or_raise()
            await db.find(BenchAuthor).delete.or_raise()
            await db.add(*(BenchAuthor(*row) for row in authors)).or_raise()
            await db.add(*(BenchPost(*row) for row in posts)).or_raise()

    async def seed(self, table: str, count: int) -> None:
        """Fill ``table`` with the first ``count`` data-set rows (emptying it first)."""
        await self.clear(table)
        for rows in chunks(count, SEED_CHUNK):
            await self.write(table, rows)

    async def setup(self) -> None:
        """Fresh tables, each seeded with its part of the data set (W1 empties and refills its own)."""
        await self.drop_everything()
        await self.create_tables()
        await self.seed(USERS, self.profile.users)
        await self.seed(STREAM, self.profile.stream_rows)
        await self.seed(BIG, self.profile.big_rows)
        await self.analyze()
