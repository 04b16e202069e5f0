"""Conformance tests: eager loading with ``db.find(...).prefetch(...)``.

The loaded values must equal lazy loading's (the suite compares every
prefetched relation with the value ``await instance.relation`` gives on a
fresh instance), the number of queries is counted with
:func:`ommi.testing.record_queries`, and awaiting a prefetched relation must
send no query at all.
"""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import pytest
import pytest_asyncio
from ommi import LazyOne, ModelCollection, Ommi, QueryError, ReferenceTo, ommi_model
from ommi.models.schema import get_schema
from ommi.query.find import FindQuery
from ommi.testing import QueryRecorder, record_queries

from ommi_testkit.suites._support import seed_blog
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_extra import RelNode, RelPost, RelPostTag, RelProfile, RelTag, RelUser
from ommi_testkit.suites.models_prefetch import PreGroup, PreLine, PreMember, PreOrder, pre_models

CHUNK = 900
"""``ommi.query._prefetch.PREFETCH_CHUNK_SIZE``, restated: the tests count the queries it implies."""


def _shape(value: Any, key: Callable[[Any], Any]) -> Any:
    """A loaded relation value as comparable data (``key`` of each model, in order)."""
    if isinstance(value, list):
        return [key(item) for item in value]
    return None if value is None else key(value)


async def _lazily(db: Ommi, model: type, relation: str, key: Callable[[Any], Any]) -> dict[Any, Any]:
    """What lazy loading gives: for every stored ``model`` (fresh instances), its key -> the relation's value."""
    rows: list[Any] = await db.find(model).all.to_list()
    truth: dict[Any, Any] = {}
    for row in rows:
        truth[_key(row)] = _shape(await getattr(row, relation), key)
    return truth


def _key(instance: Any) -> Any:
    schema = get_schema(instance)
    return tuple(getattr(instance, f.name) for f in schema.key)


async def _awaited(instances: list[Any], relation: str, key: Callable[[Any], Any]) -> tuple[dict[Any, Any], int]:
    """Every instance's relation value (awaited) and the number of queries awaiting them sent."""
    with record_queries() as q:
        values = {_key(i): _shape(await getattr(i, relation), key) for i in instances}
    return values, q.count


def _ident(item: Any) -> Any:
    return _key(item)


class _CancelAt(list[Any]):
    """A :class:`QueryRecorder` event list that cancels the current task when its ``n``-th event arrives."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def append(self, event: Any) -> None:
        super().append(event)
        if len(self) == self.n:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()


async def _seed_authors(db: Ommi, authors: int, posts_each: int) -> list[RelUser]:
    users = [RelUser(f"author {i:04}") for i in range(authors)]
    await db.add(*users).or_raise()
    posts = [RelPost(f"post {p} of {u.name}", u.id) for u in users for p in range(posts_each)]
    if posts:
        await db.add(*posts).or_raise()
    return users


class PrefetchTests(SuiteBase):
    """``find(...).prefetch(...)``: one query per relation, values equal to lazy loading, no I/O afterwards."""

    @pytest_asyncio.fixture
    async def pre_db(self, db: Ommi) -> AsyncIterator[Ommi]:
        """``db`` with the prefetch suite's tables (``pre_models``) created, dropped again afterwards."""
        await db.remove_models(pre_models)
        await db.use_models(pre_models)
        try:
            yield db
        finally:
            await db.remove_models(pre_models)

    # -- each relation kind ------------------------------------------------------

    async def test_prefetch_one_to_many_in_two_queries(self, db: Ommi) -> None:
        """N authors with posts load in 2 queries; awaiting their posts sends none; the values are lazy loading's."""
        await _seed_authors(db, 30, 3)
        bare = await db.add(RelUser("no posts")).or_raise()
        with record_queries() as q:
            authors = await db.find(RelUser).prefetch(RelUser.posts).all.to_list()
        assert [(e.model, e.operation) for e in q.events] == [("RelUser", "select"), ("RelPost", "select")]
        values, queries = await _awaited(authors, "posts", _ident)
        assert queries == 0
        assert values == await _lazily(db, RelUser, "posts", _ident)
        assert values[(bare.id,)] == []
        assert all(len(v) == 3 for k, v in values.items() if k != (bare.id,))

    async def test_prefetch_many_to_one(self, db: Ommi) -> None:
        """Posts prefetch their author (the referenced model); posts of one author share the instance."""
        blog = await seed_blog(db)
        with record_queries() as q:
            posts = await db.find(RelPost).prefetch(RelPost.author).all.to_list()
        assert q.count == 2
        values, queries = await _awaited(posts, "author", _ident)
        assert queries == 0
        assert values == await _lazily(db, RelPost, "author", _ident)
        by_id = {p.id: p for p in posts}
        assert await by_id[blog.alice_x.id].author is await by_id[blog.alice_hello.id].author
        assert await by_id[blog.carol_x.id].author == blog.carol

    async def test_prefetch_one_to_one(self, db: Ommi) -> None:
        """Users prefetch their profile (held by the profile); a user without one gets None without a query."""
        blog = await seed_blog(db)
        with record_queries() as q:
            users = await db.find(RelUser).prefetch(RelUser.profile).all.to_list()
        assert q.count == 2
        values, queries = await _awaited(users, "profile", _ident)
        assert queries == 0
        assert values == await _lazily(db, RelUser, "profile", _ident)
        assert values == {(blog.alice.id,): (blog.profile.id,), (blog.bob.id,): None, (blog.carol.id,): None}

    async def test_prefetch_many_to_many_through_association(self, db: Ommi) -> None:
        """Through AssociateUsing: two queries (association rows, then the related models), both directions."""
        blog = await seed_blog(db)
        with record_queries() as q:
            posts = await db.find(RelPost).prefetch(RelPost.tags).all.to_list()
        assert [e.model for e in q.events] == ["RelPost", "RelPostTag", "RelTag"]
        values, queries = await _awaited(posts, "tags", _ident)
        assert queries == 0
        assert values == await _lazily(db, RelPost, "tags", _ident)
        assert values[(blog.alice_x.id,)] == sorted([(blog.python.id,), (blog.sql.id,)])
        assert values[(blog.alice_xray.id,)] == []
        with record_queries() as q:
            tags = await db.find(RelTag).prefetch(RelTag.posts).all.to_list()
        assert q.count == 3
        values, queries = await _awaited(tags, "posts", _ident)
        assert queries == 0
        assert values == await _lazily(db, RelTag, "posts", _ident)

    async def test_prefetch_many_to_many_duplicate_links(self, db: Ommi) -> None:
        """Two association rows linking the same pair give the related model once, as lazy loading does."""
        blog = await seed_blog(db)
        await db.add(RelPostTag(blog.alice_x.id, blog.python.id)).or_raise()
        posts = await db.find(RelPost.id == blog.alice_x.id).prefetch(RelPost.tags).all.to_list()
        values, _ = await _awaited(posts, "tags", _ident)
        assert values[(blog.alice_x.id,)] == (await _lazily(db, RelPost, "tags", _ident))[(blog.alice_x.id,)]
        assert values[(blog.alice_x.id,)] == sorted([(blog.python.id,), (blog.sql.id,)])

    async def test_prefetch_self_reference(self, db: Ommi) -> None:
        """A tree's children and parent prefetch like any relation; a NULL reference gives None without a query."""
        root = await db.add(RelNode("root")).or_raise()
        a, _ = await db.add(RelNode("a", root.id), RelNode("b", root.id)).or_raise()
        await db.add(RelNode("a1", a.id), RelNode("a2", a.id)).or_raise()
        with record_queries() as q:
            nodes = await db.find(RelNode).prefetch(RelNode.children, RelNode.parent).all.to_list()
        # Parents load for the query's nodes and for the children loaded before.
        assert q.count == 3
        for relation in ("children", "parent"):
            values, queries = await _awaited(nodes, relation, _ident)
            assert queries == 0
            assert values == await _lazily(db, RelNode, relation, _ident)
        with record_queries() as q:
            roots = await db.find(RelNode.parent_id == None).prefetch(RelNode.parent).all.to_list()  # noqa: E711
        assert q.count == 1, "every reference is NULL: nothing to load"
        assert [await r.parent for r in roots] == [None]

    async def test_prefetch_composite_key_order(self, pre_db: Ommi) -> None:
        """Related models sort by their (composite) key, as lazy loading orders them, whatever the insert order."""
        db = pre_db
        await db.add(PreOrder("b"), PreOrder("a"), PreOrder("empty")).or_raise()
        await db.add(
            PreLine("b", 2, "x"), PreLine("a", 10, "y"), PreLine("b", 1, "z"), PreLine("a", 9, "w"), PreLine("a", 11)
        ).or_raise()
        with record_queries() as q:
            orders = await db.find(PreOrder).prefetch(PreOrder.lines).all.to_list()
        assert q.count == 2
        values, queries = await _awaited(orders, "lines", _ident)
        assert queries == 0
        assert values == await _lazily(db, PreOrder, "lines", _ident)
        assert values == {("a",): [("a", 9), ("a", 10), ("a", 11)], ("b",): [("b", 1), ("b", 2)], ("empty",): []}
        lines = await db.find(PreLine).prefetch(PreLine.order).all.to_list()
        values, queries = await _awaited(lines, "order", _ident)
        assert queries == 0
        assert values == await _lazily(db, PreLine, "order", _ident)

    async def test_prefetch_sql_keyword_names(self, pre_db: Ommi) -> None:
        """Tables ``group`` / ``excluded`` and fields ``select`` / ``count`` prefetch like any other."""
        db = pre_db
        await db.add(PreGroup("select"), PreGroup("from")).or_raise()
        await db.add(PreMember("select", 2), PreMember("select", 1), PreMember("from")).or_raise()
        groups = await db.find(PreGroup).prefetch(PreGroup.members).all.to_list()
        values, queries = await _awaited(groups, "members", _ident)
        assert queries == 0
        assert values == await _lazily(db, PreGroup, "members", _ident)
        assert len(values[("select",)]) == 2
        members = await db.find(PreMember).prefetch(PreMember.group).all.to_list()
        values, queries = await _awaited(members, "group", _ident)
        assert queries == 0
        assert values == await _lazily(db, PreMember, "group", _ident)

    # -- nested paths ------------------------------------------------------------

    async def test_prefetch_nested_path(self, db: Ommi) -> None:
        """``prefetch(RelUser.posts, RelPost.tags)`` also loads the tags of the loaded posts: 4 queries in all."""
        await seed_blog(db)
        with record_queries() as q:
            users = await db.find(RelUser).prefetch(RelUser.posts, RelPost.tags, RelUser.profile).all.to_list()
        assert [e.model for e in q.events] == ["RelUser", "RelPost", "RelPostTag", "RelTag", "RelProfile"]
        truth = await _lazily(db, RelPost, "tags", _ident)
        with record_queries() as q:
            for user in users:
                for post in await user.posts:
                    assert _shape(await post.tags, _ident) == truth[_key(post)]
                await user.profile
        assert q.count == 0

    # -- actions -----------------------------------------------------------------

    async def test_prefetch_one_action(self, db: Ommi) -> None:
        """``.one`` prefetches for its one result."""
        blog = await seed_blog(db)
        with record_queries() as q:
            post = await db.find(RelPost.id == blog.alice_x.id).prefetch(RelPost.tags, RelPost.author).one.or_raise()
        assert q.count == 4
        with record_queries() as q:
            assert [t.name for t in await post.tags] == ["python", "sql"]
            assert await post.author == blog.alice
        assert q.count == 0

    async def test_prefetch_streamed_per_batch(self, db: Ommi) -> None:
        """``async for`` over ``.all(batch_size=2)`` prefetches each batch when iteration reaches it."""
        await _seed_authors(db, 5, 2)
        truth = await _lazily(db, RelUser, "posts", _ident)
        seen: dict[Any, Any] = {}
        with record_queries() as q:
            async for user in db.find(RelUser).prefetch(RelUser.posts).all(batch_size=2):
                seen[_key(user)] = _shape(await user.posts, _ident)
        # One event for the streamed query (its first batch), one post query per batch of 2.
        assert q.count == 1 + 3
        assert seen == truth

    async def test_prefetch_to_list_loads_once(self, db: Ommi) -> None:
        """``.all(batch_size=2).to_list()`` gathers every batch, then prefetches once."""
        await _seed_authors(db, 5, 2)
        with record_queries() as q:
            users = await db.find(RelUser).prefetch(RelUser.posts).all(batch_size=2).to_list()
        assert q.count == 2
        values, queries = await _awaited(users, "posts", _ident)
        assert queries == 0
        assert values == await _lazily(db, RelUser, "posts", _ident)

    async def test_prefetch_sorted_and_limited(self, db: Ommi) -> None:
        """A sorted, limited query prefetches for the page it returns, and only for it."""
        blog = await seed_blog(db)
        with record_queries() as q:
            page = await db.find(RelUser).sort(RelUser.name.desc).limit(2).prefetch(RelUser.posts).all.to_list()
        assert [u.name for u in page] == ["Carol", "Bob"]
        assert q.count == 2
        values, queries = await _awaited(page, "posts", _ident)
        assert queries == 0
        assert values == {(blog.carol.id,): [(blog.carol_x.id,)], (blog.bob.id,): []}

    @requires("transactions", "row_locks")
    async def test_prefetch_with_for_update(self, db: Ommi) -> None:
        """``t.find(...).for_update().prefetch(...)`` locks the results and loads their relations in the transaction."""
        blog = await seed_blog(db)
        async with db.transaction() as t:
            users = await t.find(RelUser.id == blog.alice.id).for_update().prefetch(RelUser.posts).all.to_list()
            with record_queries() as q:
                assert sorted(p.title for p in await users[0].posts) == ["hello", "x", "x-ray"]
            assert q.count == 0

    async def test_prefetch_refresh_reloads(self, db: Ommi) -> None:
        """``refresh()`` on a prefetched relation loads it again (one query) and sees later writes."""
        blog = await seed_blog(db)
        user = await db.find(RelUser.id == blog.bob.id).prefetch(RelUser.posts).one.or_raise()
        assert await user.posts == []
        await db.add(RelPost("late", blog.bob.id)).or_raise()
        with record_queries() as q:
            assert [p.title for p in await user.posts.refresh()] == ["late"]
        assert q.count == 1

    # -- edges -------------------------------------------------------------------

    async def test_prefetch_empty_result_sends_no_more_queries(self, db: Ommi) -> None:
        """No result: only the query itself runs, for every relation listed."""
        await seed_blog(db)
        with record_queries() as q:
            users = await (
                db.find(RelUser.name == "nobody").prefetch(RelUser.posts, RelPost.tags, RelUser.profile).all.to_list()
            )
        assert users == []
        assert q.count == 1

    async def test_prefetch_chunks_past_the_chunk_size(self, db: Ommi) -> None:
        """2,500 authors: the post query is split into chunks of 900 keys; every author gets exactly its posts."""
        users = await _seed_authors(db, 2500, 0)
        posts = [RelPost(f"p{i}", u.id) for i, u in enumerate(users) if i % 3]
        posts += [RelPost("second", users[-1].id), RelPost("second", users[1].id)]
        await db.add(*posts).or_raise()
        with record_queries() as q:
            authors = await db.find(RelUser).prefetch(RelUser.posts).all.to_list()
        assert q.of(model="RelPost") and len(q.of(model="RelPost")) == -(-2500 // CHUNK)
        values, queries = await _awaited(authors, "posts", _ident)
        assert queries == 0
        expected: dict[Any, list[Any]] = {(u.id,): [] for u in users}
        for post in sorted(posts, key=lambda p: p.id or 0):
            expected[(post.author_id,)].append((post.id,))
        assert values == expected

    async def test_prefetch_many_to_many_past_the_chunk_size(self, db: Ommi) -> None:
        """A post linked to 1,000 tags (links stored in descending tag order) still lists them by key."""
        owner = await db.add(RelUser("owner")).or_raise()
        post = await db.add(RelPost("many", owner.id)).or_raise()
        tags = [RelTag(f"t{i:04}") for i in range(1000)]
        await db.add(*tags).or_raise()
        await db.add(*(RelPostTag(post.id, t.id) for t in reversed(tags))).or_raise()
        with record_queries() as q:
            found = await db.find(RelPost).prefetch(RelPost.tags).one.or_raise()
        assert len(q.of(model="RelTag")) == 2
        with record_queries() as q:
            loaded = await found.tags
        assert q.count == 0
        assert [t.id for t in loaded] == sorted(t.id for t in tags)

    @requires("transactions")
    async def test_prefetch_inside_transaction(self, db: Ommi) -> None:
        """``t.find(...).prefetch(...)`` runs its queries in the transaction: it sees the transaction's own writes."""
        blog = await seed_blog(db)
        async with db.transaction() as t:
            await t.add(RelPost("uncommitted", blog.bob.id)).or_raise()
            users = await t.find(RelUser.id == blog.bob.id).prefetch(RelUser.posts).all.to_list()
            with record_queries() as q:
                assert [p.title for p in await users[0].posts] == ["uncommitted"]
            assert q.count == 0
            await t.rollback()
        users = await db.find(RelUser.id == blog.bob.id).prefetch(RelUser.posts).all.to_list()
        assert await users[0].posts == []

    async def test_prefetch_cancelled_leaves_no_half_loaded_relation(self, db: Ommi) -> None:
        """Cancelled after each of its queries, a prefetch leaves nothing half loaded; fresh loads are right.

        Streamed in batches of 2, the models already yielded carry complete
        relations; lazy loading afterwards gives the right values.
        """
        await seed_blog(db)
        await _seed_authors(db, 3, 2)
        truth = await _lazily(db, RelUser, "posts", _ident)
        tag_truth = await _lazily(db, RelPost, "tags", _ident)
        query: FindQuery[RelUser] = db.find(RelUser).prefetch(RelUser.posts, RelPost.tags)
        completed = False
        n = 1
        while not completed:
            yielded: list[RelUser] = []

            async def stream(n: int = n, yielded: list[RelUser] = yielded) -> None:
                with record_queries() as q:
                    q.events = _CancelAt(n)
                    async for user in query.all(batch_size=2):
                        yielded.append(user)

            task = asyncio.get_running_loop().create_task(stream())
            try:
                await task
                completed = True
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
            with record_queries() as q:
                for user in yielded:
                    assert _shape(await user.posts, _ident) == truth[_key(user)]
                    for post in await user.posts:
                        assert _shape(await post.tags, _ident) == tag_truth[_key(post)]
            assert q.count == 0, f"cancelled after query {n}: a yielded model's relation was not loaded"
            fresh = await db.find(RelUser).all.to_list()
            assert {_key(u): _shape(await u.posts, _ident) for u in fresh} == truth
            n += 1
            assert n < 50, "the streamed prefetch never completed"

    async def test_prefetch_cancelled_to_list_then_lazy(self, db: Ommi) -> None:
        """``.to_list()`` cancelled after each query raises CancelledError; a complete prefetch then is right."""
        await seed_blog(db)
        truth = await _lazily(db, RelPost, "tags", _ident)
        n = 1
        while True:

            async def load(n: int = n) -> list[RelPost]:
                with record_queries() as q:
                    q.events = _CancelAt(n)
                    return await db.find(RelPost).prefetch(RelPost.tags, RelPost.author).all.to_list()

            task = asyncio.get_running_loop().create_task(load())
            try:
                posts = await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                n += 1
                assert n < 20
                continue
            break
        values, queries = await _awaited(posts, "tags", _ident)
        assert (values, queries) == (truth, 0)
        assert n == 5, "a query, two for the tags, one for the authors: cancelled after each, complete on the fifth"

    # -- refusals, before any I/O ------------------------------------------------

    async def test_prefetch_refusals_before_io(self, db: Ommi) -> None:
        """Not a relation, listed twice, of an unrelated model, a path without its parent: QueryError, no I/O."""
        blog = await seed_blog(db)
        user = await db.find(RelUser.id == blog.alice.id).one.or_raise()
        bad: list[Callable[[], object]] = [
            lambda: db.find(RelUser).prefetch(RelUser.name),
            lambda: db.find(RelUser).prefetch("posts"),
            lambda: db.find(RelUser).prefetch(user.posts),
            lambda: db.find(RelUser).prefetch(RelUser.posts, RelUser.posts),
            lambda: db.find(RelUser).prefetch(RelUser.posts).prefetch(RelUser.posts),
            lambda: db.find(RelUser).prefetch(RelPost.tags),
            lambda: db.find(RelUser).prefetch(RelPost.tags, RelUser.posts),
            lambda: db.find(RelUser).prefetch(RelTag.posts),
            lambda: db.find(RelPostTag).prefetch(RelProfile.user),
        ]
        recorder: QueryRecorder
        with record_queries() as recorder:
            for make in bad:
                with pytest.raises(QueryError, match=r"prefetch\(\)"):
                    make()
        assert recorder.count == 0

    async def test_prefetch_refuses_models_without_weakref(self, db: Ommi) -> None:
        """A model whose instances cannot be weakly referenced keeps no relation cache: prefetch refuses it."""
        collection = ModelCollection("ommi_testkit_pre_slots")

        @ommi_model(collection=collection, name="pre_slotted")
        @dataclass(slots=True)
        class Slotted:
            user_id: Annotated[int, ReferenceTo(RelUser.id)]
            id: int | None = None

            user: ClassVar[LazyOne[RelUser]]

        with record_queries() as q, pytest.raises(QueryError, match="weakly referenced"):
            db.find(Slotted).prefetch(Slotted.user)
        assert q.count == 0
