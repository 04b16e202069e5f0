"""Named in-memory databases shared by the drivers of one process.

SQLite keeps a memory database inside one connection. Drivers connecting with
the same ``file:...?mode=memory`` URI share one :class:`~ommi_sqlite._pool.Pool`
(so one connection), counted: the last driver to close it closes the pool,
and the data is gone.
"""

from __future__ import annotations

import asyncio

from ommi_sqlite._pool import Pool
from ommi_sqlite._settings import SQLiteSettings

__all__ = ["acquire_shared", "release_shared"]


class _Shared:
    """A named in-memory database and the drivers using it."""

    __slots__ = ("loop", "opening", "pool", "users")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.users = 0
        self.loop = asyncio.get_running_loop()
        self.opening: asyncio.Future[None] = asyncio.ensure_future(pool.open())


_SHARED: dict[str, _Shared] = {}


async def acquire_shared(settings: SQLiteSettings, database: str) -> Pool:
    """The open pool of a named in-memory database, shared by every driver naming it.

    The first driver's settings (timeouts, batch size) apply to the pool.
    """
    name = settings.shared_memory_name
    assert name is not None
    entry = _SHARED.get(name)
    if entry is None or entry.loop is not asyncio.get_running_loop():
        # A pool left behind by another event loop cannot be used from this one.
        entry = _SHARED[name] = _Shared(Pool(settings, database))
    entry.users += 1
    try:
        await asyncio.shield(entry.opening)
    except BaseException:
        entry.users -= 1
        if entry.opening.done() and entry.opening.exception() is not None and _SHARED.get(name) is entry:
            del _SHARED[name]
        raise
    return entry.pool


async def release_shared(settings: SQLiteSettings, pool: Pool) -> None:
    """Give back a pool from :func:`acquire_shared`; the last user closes it (the data is gone)."""
    name = settings.shared_memory_name
    entry = _SHARED.get(name) if name is not None else None
    if entry is None or entry.pool is not pool:
        await pool.close()
        return
    entry.users -= 1
    if entry.users <= 0 and name is not None:
        del _SHARED[name]
        await pool.close()
