"""Helpers for testing applications that use Ommi."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ommi.observe import QueryEvent, QueryRecorder, _recorders

__all__ = ["QueryEvent", "QueryRecorder", "record_queries"]


@contextmanager
def record_queries() -> Iterator[QueryRecorder]:
    """Record every operation sent to a driver inside the block (this task and tasks it starts).

    ::

        with record_queries() as q:
            for post in posts:
                await post.author
        assert q.count <= 2, q.events   # catches N+1 loading
    """
    recorder = QueryRecorder()
    token = _recorders.set((*_recorders.get(), recorder))
    try:
        yield recorder
    finally:
        _recorders.reset(token)
