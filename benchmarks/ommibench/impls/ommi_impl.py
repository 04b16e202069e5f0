"""Ommi, through its public API only (``ommi.connect``, ``db.add``, ``db.upsert``, ``db.find``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, cast

import ommi
from ommi import Key, LazyMany, ModelCollection, ReferenceTo, ommi_model

from ommibench.data import AUTHORS, BIG, FILTER_AGE, FILTER_LIMIT, POSTS, STREAM, UPDATE_MIN_AGE, USERS, Row
from ommibench.impls.base import Implementation, Target, run_tasks

__all__ = ["BENCH_MODELS", "BenchAuthor", "BenchPost", "OmmiImplementation", "OmmiLazyImplementation", "ommi_url"]

BENCH_MODELS = ModelCollection("ommi-bench")
"""The benchmark's models; set up explicitly, never through the global collection."""


@ommi_model(collection=BENCH_MODELS, name=USERS)
@dataclasses.dataclass
class BenchUser:
    """The W1-W5 table."""

    id: Annotated[int, Key]
    name: str
    email: str
    age: int
    active: bool
    score: float


@ommi_model(collection=BENCH_MODELS, name=STREAM)
@dataclasses.dataclass
class BenchStreamRow:
    """The W6 table (same shape)."""

    id: Annotated[int, Key]
    name: str
    email: str
    age: int
    active: bool
    score: float


@ommi_model(collection=BENCH_MODELS, name=BIG)
@dataclasses.dataclass
class BenchBigRow:
    """The W7 table (same shape)."""

    id: Annotated[int, Key]
    name: str
    email: str
    age: int
    active: bool
    score: float


@ommi_model(collection=BENCH_MODELS, name=AUTHORS)
@dataclasses.dataclass
class BenchAuthor:
    """W12's authors."""

    id: Annotated[int, Key]
    name: str

    posts: ClassVar[LazyMany[BenchPost]]


@ommi_model(collection=BENCH_MODELS, name=POSTS)
@dataclasses.dataclass
class BenchPost:
    """W12's posts, each referencing its author."""

    id: Annotated[int, Key]
    author_id: Annotated[int, ReferenceTo(BenchAuthor.id)]
    title: str


_MODELS: dict[str, type[Any]] = {USERS: BenchUser, STREAM: BenchStreamRow, BIG: BenchBigRow}
# Class attributes of a model are query operands, which type checkers cannot see.
User = cast(Any, BenchUser)
Author = cast(Any, BenchAuthor)


def ommi_url(target: Target) -> str:
    """The ``ommi.connect`` URL of a benchmark target."""
    if target.backend == "sqlite":
        return f"sqlite:///{target.location}"
    if target.backend == "postgresql":
        separator = "&" if "?" in target.location else "?"
        return f"{target.location}{separator}schema={target.namespace}"
    return target.location


class OmmiImplementation(Implementation):
    """Ommi with its default settings (the driver chosen by the URL's scheme)."""

    key: ClassVar[str] = "ommi"
    title: ClassVar[str] = "Ommi"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.db: ommi.Ommi | None = None

    def versions(self) -> dict[str, str]:
        from ommibench.impls.base import version_of

        driver = {"sqlite": "ommi-sqlite", "postgresql": "ommi-postgresql", "mongodb": "ommi-mongodb"}
        return {name: version_of(name) for name in ("ommi-core", driver[self.target.backend])}

    async def open(self) -> None:
        self.db = ommi.connect(ommi_url(self.target), allow_implicit_model_setup=False)
        await self.db.open()
        # The tables exist already (the backend created them through Ommi); this only checks them.
        await self.db.use_models(BENCH_MODELS)

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    def _db(self) -> ommi.Ommi:
        assert self.db is not None, "open() first"
        return self.db

    def prepare_insert(self, rows: Sequence[Row]) -> Any:
        return [BenchUser(*row) for row in rows]

    async def insert(self, prepared: Any) -> None:
        await self._db().add(*prepared).or_raise()

    async def fetch_all(self) -> Sequence[Any]:
        result = await self._db().find(BenchUser).all.or_raise()
        return await result.to_list()

    async def lookups(self, ids: Sequence[int]) -> Sequence[Any]:
        db = self._db()
        key = User.id
        return [await db.find(key == i).one.or_raise() for i in ids]

    async def filtered(self, times: int) -> Sequence[Any]:
        db = self._db()
        low, high = FILTER_AGE
        found: list[Any] = []
        for _ in range(times):
            query = (
                db.find(User.age >= low, User.age <= high, User.active == True)  # noqa: E712
                .sort(User.name)
                .limit(FILTER_LIMIT)
            )
            found = await (await query.all.or_raise()).to_list()
        return found

    async def update_and_count(self, score: float) -> tuple[int, int]:
        db = self._db()
        updated = await db.find(User.age >= UPDATE_MIN_AGE).update(score=score).or_raise()
        counted = await db.find(User.score == score).count.or_raise()
        return updated, counted

    async def upsert(self, prepared: Any) -> None:
        await self._db().upsert(*prepared).or_raise()

    async def increments(self, plan: Sequence[Sequence[int]]) -> None:
        db = self._db()
        key, age = User.id, User.age

        async def task(ids: Sequence[int]) -> None:
            for i in ids:
                await db.find(key == i).update(age=age + 1).or_raise()

        await run_tasks(task, plan)

    async def grouped(self, table: str) -> Sequence[Any]:
        model: Any = _MODELS[table]
        groups = (
            await self._db()
            .find(model)
            .group_by(model.age)
            .aggregate(n=ommi.Count(), total=ommi.Sum(model.id), mean=ommi.Avg(model.score))
            .or_raise()
        )
        return [(group["age"], group["n"], group["total"], group["mean"]) for group in groups]

    async def stream(self, table: str) -> tuple[int, int]:
        rows = total = 0
        async for item in self._db().find(_MODELS[table]).all:
            rows += 1
            total += item.id
        return rows, total

    async def prefetch(self) -> Sequence[Any]:
        authors = await self._db().find(BenchAuthor).prefetch(Author.posts).all.to_list()
        return [(author, await author.posts) for author in authors]


class OmmiLazyImplementation(OmmiImplementation):
    """Ommi without ``prefetch``: each author's posts load lazily on ``await`` (one query per author), W12 only."""

    key: ClassVar[str] = "ommi-lazy"
    title: ClassVar[str] = "Ommi, lazy (N+1)"
    workloads: ClassVar[frozenset[str]] = frozenset({"W12"})

    async def open(self) -> None:
        # Entered as `async with db:` would be, split over open() and close(): lazy relations load
        # through the active database, and the harness runs every call in the task that opened it.
        self.db = ommi.connect(ommi_url(self.target), allow_implicit_model_setup=False)
        await self.db.__aenter__()
        await self.db.use_models(BENCH_MODELS)

    async def close(self) -> None:
        if self.db is not None:
            await self.db.__aexit__(None, None, None)
            self.db = None

    async def prefetch(self) -> Sequence[Any]:
        authors = await self._db().find(BenchAuthor).all.to_list()
        return [(author, await author.posts) for author in authors]
