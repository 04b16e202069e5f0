"""Helpers shared by the relation, transaction, setup and audit suites."""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
import contextvars
import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from ommi.database import Session
from ommi.query.find import FindQuery, ResultIterator
from ommi.results import DBAction

from ommi_testkit.suites.models_extra import RelPost, RelPostTag, RelProfile, RelTag, RelUser

__all__ = ["Blog", "fetch", "global_models", "implicit_models", "in_empty_context", "names", "seed_blog", "titles"]

T = TypeVar("T")


async def fetch(query: FindQuery[Any] | DBAction[ResultIterator[Any]]) -> list[Any]:
    """Every model a query (or its ``.all(...)`` action) matches, as a list (raising on failure)."""
    action = query.all if isinstance(query, FindQuery) else query
    iterator = await action.or_raise()
    return await iterator.to_list()


async def names(query: FindQuery[Any]) -> list[str]:
    """The sorted ``name`` of every match."""
    return sorted(item.name for item in await fetch(query))


async def titles(query: FindQuery[Any]) -> list[str]:
    """The sorted ``title`` of every match."""
    return sorted(item.title for item in await fetch(query))


async def in_empty_context(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine in a task with an empty context: no database is active there."""
    task = asyncio.get_running_loop().create_task(make(), context=contextvars.Context())
    return await task


@dataclass
class Blog:
    """A small data set: three users, four posts, two tags, one profile.

    * Alice wrote ``x``, ``x-ray`` and ``hello``; Carol wrote ``x``; Bob wrote nothing.
    * ``x`` (Alice's) is tagged ``python`` and ``sql``; ``hello`` is tagged ``python``.
    * Alice has a profile; Bob and Carol have none.
    """

    alice: RelUser
    bob: RelUser
    carol: RelUser
    alice_x: RelPost
    alice_xray: RelPost
    alice_hello: RelPost
    carol_x: RelPost
    python: RelTag
    sql: RelTag
    profile: RelProfile


async def seed_blog(db: Session) -> Blog:
    """Store the :class:`Blog` data set through ``db`` (an ``Ommi`` or a transaction)."""
    alice, bob, carol = RelUser("Alice"), RelUser("Bob"), RelUser("Carol")
    await db.add(alice, bob, carol).or_raise()
    assert alice.id is not None and carol.id is not None
    posts = [RelPost("x", alice.id), RelPost("x-ray", alice.id), RelPost("hello", alice.id), RelPost("x", carol.id)]
    await db.add(*posts).or_raise()
    python, sql = RelTag("python"), RelTag("sql")
    await db.add(python, sql).or_raise()
    assert python.id is not None and sql.id is not None and posts[0].id is not None and posts[2].id is not None
    await db.add(
        RelPostTag(posts[0].id, python.id), RelPostTag(posts[0].id, sql.id), RelPostTag(posts[2].id, python.id)
    ).or_raise()
    profile = RelProfile("likes x", alice.id)
    await db.add(profile).or_raise()
    return Blog(alice, bob, carol, *posts, python, sql, profile)


def global_models() -> ModuleType:
    """Import :mod:`ommi_testkit.suites.models_global` (once), adding its models to the global collection.

    Call it, then drop the global collection's tables, before a test relies on them.
    """
    return importlib.import_module("ommi_testkit.suites.models_global")


def implicit_models() -> tuple[Any, Any]:
    """``(ImplicitOwner, ImplicitItem)``, registered in the global collection."""
    module = global_models()
    return module.ImplicitOwner, module.ImplicitItem
