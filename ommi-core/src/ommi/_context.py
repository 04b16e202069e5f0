"""The active database of the current context: a leaf module every layer may import.

``async with db:`` and ``async with db.transaction() as t:`` make ``db`` / ``t``
the active executor of the context (a :class:`contextvars.ContextVar`, so each
task sees its own). Model methods (``user.save()``) and lazy relations run
through it. It lives apart from :mod:`ommi.database` so that the models, which
the database is built on, can reach it without importing the database.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

from ommi.errors import OmmiError

if TYPE_CHECKING:
    from ommi.database import Executor

__all__ = ["active_database"]

_active: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("ommi_active_database", default=None)


def active_database(purpose: str = "this operation") -> Executor:
    """The database (or transaction) of the innermost ``async with`` in this context.

    Raises:
        OmmiError: no database is active.
    """
    executor = _active.get()
    if executor is None:
        raise OmmiError(
            f"{purpose} needs an active database: run it inside `async with ommi.connect(url) as db:` "
            "or `async with db.transaction():`"
        )
    return executor
