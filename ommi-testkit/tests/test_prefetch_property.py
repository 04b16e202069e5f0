"""Generated data: ``prefetch`` gives exactly what lazy loading gives, with chunks of 1 to 4 keys.

Runs on the reference driver with ``PREFETCH_CHUNK_SIZE`` made tiny, so that
small generated data crosses chunk boundaries everywhere (several ``IN``
queries per relation, an association's related models merged across chunks).
The drivers run the same core code; the conformance suite covers them.
"""

# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, union-attr"

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ommi import Ommi
from ommi.models.schema import get_schema
from ommi.query import _prefetch
from ommi.testing import record_queries
from ommi_testkit import ReferenceDriver
from ommi_testkit.suites.models import testkit_models
from ommi_testkit.suites.models_extra import RelNode, RelPost, RelPostTag, RelProfile, RelTag, RelUser

PATHS: list[tuple[type, tuple[Any, ...]]] = [
    (RelUser, (RelUser.posts,)),
    (RelUser, (RelUser.profile,)),
    (RelUser, (RelUser.posts, RelPost.tags)),
    (RelUser, (RelUser.posts, RelPost.author, RelUser.profile)),
    (RelPost, (RelPost.author, RelPost.tags)),
    (RelTag, (RelTag.posts, RelPost.author)),
    (RelProfile, (RelProfile.user, RelUser.posts)),
    (RelNode, (RelNode.children, RelNode.parent)),
]


def _key(instance: Any) -> tuple[Any, ...]:
    return tuple(getattr(instance, f.name) for f in get_schema(instance).key)


def _shape(value: Any) -> Any:
    if isinstance(value, list):
        return [_key(v) for v in value]
    return None if value is None else _key(value)


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    users = draw(st.integers(0, 6))
    return {
        "users": users,
        "posts": draw(st.lists(st.integers(0, max(users - 1, 0)), min_size=1, max_size=12)) if users else [],
        "tags": draw(st.integers(1, 5)),
        "links": draw(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 4)), max_size=15)),
        "profiles": draw(st.lists(st.integers(0, 5), max_size=4)),
        "nodes": draw(st.lists(st.one_of(st.none(), st.integers(0, 7)), max_size=8)),
        "action": draw(st.sampled_from(["to_list", "stream", "one"])),
        "batch": draw(st.integers(1, 4)),
        "chunk": draw(st.integers(1, 4)),
    }


async def _seed(db: Ommi, g: dict[str, Any]) -> None:
    users = [RelUser(f"u{i}") for i in range(g["users"])]
    if users:
        await db.add(*users).or_raise()
    posts = [RelPost(f"p{i}", users[u].id) for i, u in enumerate(g["posts"])]
    if posts:
        await db.add(*posts).or_raise()
    tags = [RelTag(f"t{i}") for i in range(g["tags"])]
    if tags:
        await db.add(*tags).or_raise()
    links = (
        [RelPostTag(posts[p % len(posts)].id, tags[t % len(tags)].id) for p, t in g["links"]] if posts and tags else []
    )
    if links:
        await db.add(*links).or_raise()
    profiles = [RelProfile(f"b{i}", users[u % len(users)].id) for i, u in enumerate(g["profiles"])] if users else []
    if profiles:
        await db.add(*profiles).or_raise()
    nodes: list[RelNode] = []
    for parent in g["nodes"]:
        node = RelNode(f"n{len(nodes)}", nodes[parent].id if parent is not None and parent < len(nodes) else None)
        await db.add(node).or_raise()
        nodes.append(node)


async def _check(g: dict[str, Any]) -> None:
    async with Ommi(ReferenceDriver.connect(), allow_implicit_model_setup=False) as db:
        await db.use_models(testkit_models)
        await _seed(db, g)
        for model, path in PATHS:
            await _check_path(db, g, model, path)


async def _check_path(db: Ommi, g: dict[str, Any], model: type, path: tuple[Any, ...]) -> None:
    """Prefetch ``path`` on every ``model`` (or one, for ``.one``); walk it without I/O; compare with lazy loading."""
    query = db.find(model).prefetch(*path)
    if g["action"] == "to_list":
        found = await query.all(batch_size=g["batch"]).to_list()
    elif g["action"] == "stream":
        found = [item async for item in query.all(batch_size=g["batch"])]
    else:
        found = [await query.one.or_raise()] if await db.find(model).count.or_raise() else []
    # Walk the path on the prefetched models, with no query; then the same walk lazily on fresh ones.
    with record_queries() as q:
        eager = [await _walk(item, path) for item in found]
    assert q.count == 0, q.events
    fresh = await db.find(model).all.to_list()
    by_key = {_key(item): item for item in fresh}
    lazy = [await _walk(by_key[_key(item)], path) for item in found]
    assert eager == lazy


async def _walk(item: Any, path: tuple[Any, ...]) -> Any:
    """Every relation of ``path`` that applies to ``item`` and, recursively, to what it loaded."""
    result = []
    for descriptor in path:
        relation = descriptor.relation
        if relation.owner is not get_schema(item):
            continue
        value = await getattr(item, relation.name)
        nested = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
        later = path[path.index(descriptor) + 1 :]
        result.append((relation.name, _shape(value), [await _walk(v, later) for v in nested]))
    return result


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_prefetch_matches_lazy_loading(g: dict[str, Any]) -> None:
    """``find(M).prefetch(path)`` gives, for every model along every path, what awaiting it lazily gives."""
    patch = pytest.MonkeyPatch()
    patch.setattr(_prefetch, "PREFETCH_CHUNK_SIZE", g["chunk"])
    try:
        asyncio.run(_check(g))
    finally:
        patch.undo()
