"""SQLAlchemy 2's async ORM (aiosqlite / psycopg), used the way its documentation shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import URL, ForeignKey, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from ommibench.data import AUTHORS, BIG, COLUMNS, FILTER_AGE, FILTER_LIMIT, POSTS, STREAM, UPDATE_MIN_AGE, USERS, Row
from ommibench.impls.base import Implementation, Target, run_tasks

__all__ = ["SQLAlchemyORM"]

BATCH = 1000
"""``yield_per`` when streaming: Ommi's default batch size."""


class _Base(DeclarativeBase):
    pass


class _Columns:
    """The shared columns; the key is given by the data set, never generated."""

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str]
    email: Mapped[str]
    age: Mapped[int]
    active: Mapped[bool]
    score: Mapped[float]


class SAUser(_Columns, _Base):
    __tablename__ = USERS


class SAStreamRow(_Columns, _Base):
    __tablename__ = STREAM


class SABigRow(_Columns, _Base):
    __tablename__ = BIG


class SAAuthor(_Base):
    __tablename__ = AUTHORS

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str]
    posts: Mapped[list[SAPost]] = relationship(order_by="SAPost.id")


class SAPost(_Base):
    __tablename__ = POSTS

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    author_id: Mapped[int] = mapped_column(ForeignKey(f"{AUTHORS}.id"))
    title: Mapped[str]


_MODELS: dict[str, type[_Columns]] = {USERS: SAUser, STREAM: SAStreamRow, BIG: SABigRow}


def _engine(target: Target) -> AsyncEngine:
    if target.backend == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{target.location}")

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The same pragmas as Ommi's driver and the raw baseline.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        return engine
    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(target.location).items()}
    url = URL.create(
        "postgresql+psycopg",
        username=params.get("user"),
        password=params.get("password"),
        host=params.get("host"),
        port=int(params["port"]) if params.get("port") else None,
        database=params.get("dbname"),
    )
    return create_async_engine(url, connect_args={"options": f"-c search_path={target.namespace}"})


class SQLAlchemyORM(Implementation):
    """``AsyncSession`` with ``add_all``/``commit``, ``select()``, ``update()`` and ``stream_scalars``.

    W9 is the documented ORM bulk upsert: the dialect's ``insert(SAUser)
    .on_conflict_do_update(...)`` executed with a list of parameter dicts. W10
    is one ``update(SAUser).values(age=SAUser.age + 1)`` per increment, each in
    its own ``session.begin()`` block, from the engine's default pool.
    """

    key: ClassVar[str] = "sqlalchemy"
    title: ClassVar[str] = "SQLAlchemy ORM"
    distributions: ClassVar[tuple[str, ...]] = ("sqlalchemy", "greenlet")
    workloads: ClassVar[frozenset[str]] = frozenset(
        {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W9", "W10", "W11", "W12"}
    )

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.engine: AsyncEngine | None = None
        self.sessions: async_sessionmaker[Any] | None = None

    async def open(self) -> None:
        self.engine = _engine(self.target)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = self.sessions = None

    def _session(self) -> Any:
        assert self.sessions is not None, "open() first"
        return self.sessions()

    def prepare_insert(self, rows: Sequence[Row]) -> Any:
        return [SAUser(id=r[0], name=r[1], email=r[2], age=r[3], active=r[4], score=r[5]) for r in rows]

    async def insert(self, prepared: Any) -> None:
        async with self._session() as session:
            session.add_all(prepared)
            await session.commit()

    async def fetch_all(self) -> Sequence[Any]:
        async with self._session() as session:
            found: Sequence[Any] = (await session.scalars(select(SAUser))).all()
        return found

    async def lookups(self, ids: Sequence[int]) -> Sequence[Any]:
        found = []
        async with self._session() as session:
            for i in ids:
                found.append((await session.scalars(select(SAUser).where(SAUser.id == i))).one())
        return found

    async def filtered(self, times: int) -> Sequence[Any]:
        low, high = FILTER_AGE
        found: Sequence[Any] = []
        async with self._session() as session:
            for _ in range(times):
                query = (
                    select(SAUser)
                    .where(SAUser.age.between(low, high), SAUser.active.is_(True))
                    .order_by(SAUser.name)
                    .limit(FILTER_LIMIT)
                )
                found = (await session.scalars(query)).all()
        return found

    async def update_and_count(self, score: float) -> tuple[int, int]:
        async with self._session() as session:
            result = await session.execute(
                update(SAUser).where(SAUser.age >= UPDATE_MIN_AGE).values(score=score),
                execution_options={"synchronize_session": False},
            )
            await session.commit()
            counted = await session.scalar(select(func.count()).select_from(SAUser).where(SAUser.score == score))
        return int(result.rowcount), int(counted or 0)

    def prepare_upsert(self, rows: Sequence[Row]) -> Any:
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    async def upsert(self, prepared: Any) -> None:
        insert = sqlite_insert if self.target.backend == "sqlite" else postgresql_insert
        statement = insert(SAUser)
        statement = statement.on_conflict_do_update(
            index_elements=[SAUser.id], set_={name: statement.excluded[name] for name in COLUMNS[1:]}
        )
        async with self._session() as session:
            await session.execute(statement, prepared)
            await session.commit()

    async def increments(self, plan: Sequence[Sequence[int]]) -> None:
        assert self.sessions is not None, "open() first"
        sessions = self.sessions

        async def task(ids: Sequence[int]) -> None:
            for i in ids:
                async with sessions.begin() as session:
                    await session.execute(
                        update(SAUser).where(SAUser.id == i).values(age=SAUser.age + 1),
                        execution_options={"synchronize_session": False},
                    )

        await run_tasks(task, plan)

    async def grouped(self, table: str) -> Sequence[Any]:
        model: Any = _MODELS[table]
        query = (
            select(model.age, func.count(), func.sum(model.id), func.avg(model.score))
            .group_by(model.age)
            .order_by(model.age)
        )
        async with self._session() as session:
            return (await session.execute(query)).all()

    async def stream(self, table: str) -> tuple[int, int]:
        model: Any = _MODELS[table]
        rows = total = 0
        async with self._session() as session:
            result = await session.stream_scalars(select(model).execution_options(yield_per=BATCH))
            async for item in result:
                rows += 1
                # The identity map holds objects weakly, so streamed ones are freed as we go.
                total += item.id
        return rows, total

    async def prefetch(self) -> Sequence[Any]:
        """W12: ``selectinload(SAAuthor.posts)``, the eager loading SQLAlchemy recommends for collections."""
        async with self._session() as session:
            authors = (await session.scalars(select(SAAuthor).options(selectinload(SAAuthor.posts)))).all()
        return [(author, author.posts) for author in authors]
