"""Conformance tests: relations, lazy loading, conditions across models, references.

The models live in :mod:`ommi_testkit.suites.models_extra` (quoted forward
references) and :mod:`ommi_testkit.suites.models_future` (the same shapes
under ``from __future__ import annotations``). This module does not use the
future import, so the models some tests define inline have real annotations.
"""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

import dataclasses
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pytest
from ommi import (
    IntegrityError,
    Key,
    LazyLoadError,
    LazyLoadTheRelated,
    ModelCollection,
    ModelDefinitionError,
    Ommi,
    QueryError,
    ReferenceTo,
    TransactionError,
    ValidationError,
    ommi_model,
    when,
)

from ommi_testkit.suites._support import fetch, in_empty_context, names, seed_blog, titles
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_extra import RelNode, RelPost, RelPostTag, RelProfile, RelTag, RelUser
from ommi_testkit.suites.models_future import FutureAuthor, FutureBook, FutureBookGenre, FutureCategory, FutureGenre


async def _definition_error(db: Ommi, define: Callable[[], type]) -> ModelDefinitionError:
    """The ModelDefinitionError raised when ``define()`` decorates a model or when a query first uses it."""
    try:
        model = define()
        await db.find(model).count.or_raise()
    except ModelDefinitionError as exc:
        return exc
    pytest.fail("the broken model raised no ModelDefinitionError, neither at decoration nor at first use")


class RelationTests(SuiteBase):
    """Lazy relations of the three kinds, related conditions (joins) and ``ReferenceTo``."""

    # -- lazy fields stay out of the model's own behaviour ----------------------

    async def test_relation_lazy_fields_are_not_constructor_arguments(self, db: Ommi) -> None:
        """``RelPost(title=..., author_id=...)`` works; passing a lazy field to the constructor is a TypeError."""
        post = RelPost(title="t", author_id=1)
        assert (post.title, post.author_id, post.id) == ("t", 1, None)
        with pytest.raises(TypeError):
            RelPost(title="t", author_id=1, author=RelUser("a"))
        assert [f.name for f in dataclasses.fields(RelPost)] == ["title", "author_id", "id"]

    async def test_relation_lazy_fields_not_in_asdict(self, db: Ommi) -> None:
        """``dataclasses.asdict`` gives the stored fields only, also after the relations were loaded."""
        blog = await seed_blog(db)
        post = await db.find(RelPost.id == blog.alice_x.id).one.or_raise()
        await post.author
        await post.tags
        assert dataclasses.asdict(post) == {"title": "x", "author_id": blog.alice.id, "id": blog.alice_x.id}

    async def test_relation_lazy_fields_not_in_equality(self, db: Ommi) -> None:
        """Two instances of the same row compare equal whether or not a relation was loaded on one."""
        blog = await seed_blog(db)
        loaded = await db.find(RelPost.id == blog.alice_x.id).one.or_raise()
        plain = await db.find(RelPost.id == blog.alice_x.id).one.or_raise()
        assert await loaded.author == blog.alice
        assert loaded == plain == blog.alice_x
        assert loaded != blog.carol_x

    async def test_relation_instances_pickle_after_loading(self, db: Ommi) -> None:
        """A model whose relation was loaded still pickles; the copy loads its relation afresh."""
        blog = await seed_blog(db)
        user = await db.find(RelUser.id == blog.alice.id).one.or_raise()
        assert len(await user.posts) == 3
        copy = pickle.loads(pickle.dumps(user))
        assert copy == user
        assert copy is not user
        assert await titles(db.find(RelPost.author_id == copy.id)) == ["hello", "x", "x-ray"]
        assert sorted(p.title for p in await copy.posts) == ["hello", "x", "x-ray"]

    # -- loading -----------------------------------------------------------------

    async def test_relation_lazy_one_loads_referenced_model(self, db: Ommi) -> None:
        """``await post.author`` gives the referenced user (many-to-one)."""
        blog = await seed_blog(db)
        post = await db.find(RelPost.id == blog.carol_x.id).one.or_raise()
        author = await post.author
        assert isinstance(author, RelUser)
        assert author == blog.carol

    async def test_relation_lazy_many_loads_referencing_models(self, db: Ommi) -> None:
        """``await user.posts`` gives every post referencing the user, in key order."""
        blog = await seed_blog(db)
        posts = await blog.alice.posts
        assert posts == [blog.alice_x, blog.alice_xray, blog.alice_hello]
        assert all(isinstance(p, RelPost) for p in posts)

    async def test_relation_lazy_many_empty_is_empty_list(self, db: Ommi) -> None:
        """A to-many relation with nothing related loads as ``[]``, never ``None``."""
        blog = await seed_blog(db)
        assert await blog.bob.posts == []

    async def test_relation_lazy_one_backward_one_to_one(self, db: Ommi) -> None:
        """``LazyLoadTheRelated`` held by the other side (the profile references the user) loads it, or None."""
        blog = await seed_blog(db)
        assert await blog.alice.profile == blog.profile
        assert await blog.bob.profile is None
        assert await blog.profile.user == blog.alice

    async def test_relation_lazy_one_none_reference_is_none(self, db: Ommi) -> None:
        """A to-one relation whose reference field holds None loads as ``None``."""
        root = RelNode("root")
        await db.add(root).or_raise()
        assert await root.parent is None

    async def test_relation_many_to_many_through_association(self, db: Ommi) -> None:
        """``LazyLoadEveryRelated[Annotated[Tag, AssociateUsing(PostTag)]]`` loads through the association."""
        blog = await seed_blog(db)
        assert sorted(t.name for t in await blog.alice_x.tags) == ["python", "sql"]
        assert [t.name for t in await blog.alice_hello.tags] == ["python"]
        assert await blog.alice_xray.tags == []

    async def test_relation_many_to_many_reverse_side(self, db: Ommi) -> None:
        """The association works from the other model too (a tag's posts)."""
        blog = await seed_blog(db)
        assert sorted(p.title for p in await blog.python.posts) == ["hello", "x"]
        assert await blog.sql.posts == [blog.alice_x]

    async def test_relation_self_reference_parent_and_children(self, db: Ommi) -> None:
        """A self-referencing model loads its parent and its children."""
        root = RelNode("root")
        await db.add(root).or_raise()
        kids = [RelNode("a", root.id), RelNode("b", root.id)]
        await db.add(*kids).or_raise()
        grandchild = RelNode("a1", kids[0].id)
        await db.add(grandchild).or_raise()
        assert [n.label for n in await root.children] == ["a", "b"]
        assert await grandchild.parent == kids[0]
        assert await (await grandchild.parent).parent == root
        assert await grandchild.children == []
        assert await db.find(RelNode.parent_id == None).count.or_raise() == 1  # noqa: E711

    async def test_relation_future_annotations_models(self, db: Ommi) -> None:
        """Models written under ``from __future__ import annotations`` load all three relation kinds."""
        author = FutureAuthor("Ann")
        await db.add(author).or_raise()
        assert author.id is not None
        book, other = FutureBook("B1", author.id), FutureBook("B2", author.id)
        fantasy, crime = FutureGenre("fantasy"), FutureGenre("crime")
        await db.add(book, other, fantasy, crime).or_raise()
        assert book.id is not None and fantasy.id is not None and crime.id is not None
        await db.add(FutureBookGenre(book.id, fantasy.id), FutureBookGenre(book.id, crime.id)).or_raise()
        assert await book.author == author
        assert [b.title for b in await author.books] == ["B1", "B2"]
        assert sorted(g.name for g in await book.genres) == ["crime", "fantasy"]
        assert await fantasy.books == [book]
        assert await other.genres == []
        assert FutureBook(title="t", author_id=1).id is None

    async def test_relation_future_annotations_self_reference(self, db: Ommi) -> None:
        """A self-reference under the future import loads parents and children."""
        top = FutureCategory("top")
        await db.add(top).or_raise()
        sub = FutureCategory("sub", top.id)
        await db.add(sub).or_raise()
        assert await sub.parent == top
        assert await top.children == [sub]
        assert await top.parent is None

    async def test_relation_results_cached_until_refresh(self, db: Ommi) -> None:
        """A loaded relation is cached per instance; ``refresh()`` loads it again."""
        blog = await seed_blog(db)
        user = await db.find(RelUser.id == blog.bob.id).one.or_raise()
        assert await user.posts == []
        await db.add(RelPost("new", user.id)).or_raise()
        assert await user.posts == []  # cached
        refreshed = await user.posts.refresh()
        assert [p.title for p in refreshed] == ["new"]
        assert [p.title for p in await user.posts] == ["new"]

    async def test_relation_to_one_refresh_sees_new_reference(self, db: Ommi) -> None:
        """Changing the reference field and refreshing loads the newly referenced model."""
        blog = await seed_blog(db)
        post = await db.find(RelPost.id == blog.carol_x.id).one.or_raise()
        assert await post.author == blog.carol
        post.author_id = blog.bob.id
        assert await post.author == blog.carol  # still the cached value
        assert await post.author.refresh() == blog.bob

    async def test_relation_cache_is_per_instance(self, db: Ommi) -> None:
        """Two instances of the same row cache independently."""
        blog = await seed_blog(db)
        first = await db.find(RelUser.id == blog.bob.id).one.or_raise()
        assert await first.posts == []
        await db.add(RelPost("later", blog.bob.id)).or_raise()
        second = await db.find(RelUser.id == blog.bob.id).one.or_raise()
        assert [p.title for p in await second.posts] == ["later"]
        assert await first.posts == []

    # -- failures are loud --------------------------------------------------------

    async def test_relation_lazy_load_without_database_raises_lazy_load_error(self, db: Ommi) -> None:
        """Loading with no active database raises LazyLoadError with the cause chained, never returns None."""
        blog = await seed_blog(db)
        post = await db.find(RelPost.id == blog.alice_x.id).one.or_raise()

        async def load() -> object:
            return await post.author

        with pytest.raises(LazyLoadError) as info:
            await in_empty_context(load)
        assert info.value.__cause__ is not None
        assert "author" in str(info.value)
        assert await post.author == blog.alice  # the failure was not cached

    async def test_relation_lazy_load_bad_reference_value_raises_lazy_load_error(self, db: Ommi) -> None:
        """A reference field holding a value of the wrong type fails the load with the cause chained."""
        blog = await seed_blog(db)
        post = await db.find(RelPost.id == blog.alice_x.id).one.or_raise()
        post.author_id = "not a number"
        with pytest.raises(LazyLoadError) as info:
            await post.author
        assert isinstance(info.value.__cause__, ValidationError)
        assert "not a number" in str(info.value.__cause__)

    @requires("transactions")
    async def test_relation_lazy_load_in_ended_transaction_raises(self, db: Ommi) -> None:
        """Loading through a transaction that already ended raises LazyLoadError (to-one too, never None)."""
        blog = await seed_blog(db)
        async with db.transaction() as t:
            await t.commit()
            with pytest.raises(LazyLoadError) as one:
                await blog.alice_x.author
            with pytest.raises(LazyLoadError) as many:
                await blog.alice.posts
        assert isinstance(one.value.__cause__, TransactionError)
        assert isinstance(many.value.__cause__, TransactionError)
        assert await blog.alice_x.author == blog.alice

    async def test_relation_lazy_load_unknown_target_names_model_and_field(self, db: Ommi) -> None:
        """A relation naming an unknown model fails on load: LazyLoadError caused by ModelDefinitionError."""
        broken = ModelCollection("ommi_testkit_broken_relation")

        @ommi_model(collection=broken, name="tk_broken_relation")
        @dataclass
        class Stray:
            name: str
            id: int | None = None
            ghost: LazyLoadTheRelated["NoSuchModelAnywhere"]  # type: ignore[name-defined]  # noqa: F821

        with pytest.raises(LazyLoadError) as info:
            await Stray("s", 1).ghost
        cause = info.value.__cause__
        assert isinstance(cause, ModelDefinitionError)
        assert "Stray" in str(cause)
        assert "ghost" in str(cause)

    async def test_relation_without_connecting_reference_fails_loudly(self, db: Ommi) -> None:
        """A relation between models no ReferenceTo connects raises LazyLoadError caused by ModelDefinitionError."""
        broken = ModelCollection("ommi_testkit_unconnected")

        @ommi_model(collection=broken, name="tk_unconnected")
        @dataclass
        class Loner:
            name: str
            id: int | None = None
            friend: LazyLoadTheRelated[RelUser]

        with pytest.raises(LazyLoadError) as info:
            await Loner("l", 1).friend
        assert isinstance(info.value.__cause__, ModelDefinitionError)
        assert "friend" in str(info.value.__cause__)

    # -- conditions on related models (joins) -------------------------------------

    @requires("related_conditions")
    async def test_relation_condition_on_referenced_model(self, db: Ommi) -> None:
        """``db.find(Post, User.name == "Alice")`` gives Alice's posts."""
        await seed_blog(db)
        assert await titles(db.find(RelPost, RelUser.name == "Alice")) == ["hello", "x", "x-ray"]
        assert await titles(db.find(RelPost, RelUser.name == "Bob")) == []

    @requires("related_conditions")
    async def test_relation_condition_on_referencing_model_no_duplicates(self, db: Ommi) -> None:
        """``db.find(User, Post.title ...)`` filters users by their posts, each user at most once."""
        await seed_blog(db)
        assert await names(db.find(RelUser, RelPost.title == "x")) == ["Alice", "Carol"]
        # Alice has two posts starting with "x": she still appears once.
        assert await names(db.find(RelUser, RelPost.title.startswith("x"))) == ["Alice", "Carol"]
        assert await db.find(RelUser, RelPost.title.startswith("x")).count.or_raise() == 2

    @requires("related_conditions")
    async def test_relation_target_is_first_condition_model(self, db: Ommi) -> None:
        """Without a model class, the target is the model of the first condition."""
        await seed_blog(db)
        found = await fetch(db.find(RelUser.name != "Bob", RelPost.title == "hello"))
        assert [type(u) for u in found] == [RelUser]
        assert found[0].name == "Alice"
        posts = await fetch(db.find(RelPost.title == "x", RelUser.name == "Carol"))
        assert [(type(p), p.title) for p in posts] == [(RelPost, "x")]

    @requires("related_conditions")
    async def test_relation_or_mixing_target_and_related_conditions(self, db: Ommi) -> None:
        """OR across models keeps LEFT JOIN semantics: Bob (no posts) matches ``name == "Bob" OR title == "x"``."""
        await seed_blog(db)
        query = when(RelUser.name == "Bob").Or(RelPost.title == "x")
        assert await names(db.find(RelUser, query)) == ["Alice", "Bob", "Carol"]
        assert await names(db.find(query)) == ["Alice", "Bob", "Carol"]
        assert await names(db.find(RelUser, when(RelUser.name == "Bob").Or(RelPost.title == "hello"))) == [
            "Alice",
            "Bob",
        ]

    @requires("related_conditions")
    async def test_relation_missing_related_row_matches_is_null(self, db: Ommi) -> None:
        """A user without posts matches ``Post.id == None`` (no related row, as in a LEFT JOIN)."""
        await seed_blog(db)
        assert await names(db.find(RelUser, RelPost.id == None)) == ["Bob"]  # noqa: E711
        assert await names(db.find(RelUser, RelPost.id != None)) == ["Alice", "Carol"]  # noqa: E711

    @requires("related_conditions")
    async def test_relation_and_of_related_conditions_holds_on_one_row(self, db: Ommi) -> None:
        """ANDed conditions on a related model must hold on the same related row."""
        await seed_blog(db)
        both = when(RelPost.title == "x", RelPost.title == "hello")
        assert await names(db.find(RelUser, both)) == []
        either = when(RelPost.title == "x").Or(RelPost.title == "hello")
        assert await names(db.find(RelUser, either)) == ["Alice", "Carol"]

    @requires("related_conditions")
    async def test_relation_count_with_related_condition(self, db: Ommi) -> None:
        """``.count`` with a related condition counts targets, not joined rows."""
        await seed_blog(db)
        assert await db.find(RelPost, RelUser.name == "Alice").count.or_raise() == 3
        assert await db.find(RelUser, RelPost.title.contains("x")).count.or_raise() == 2
        assert await db.find(RelUser, RelPost.title == "nothing").count.or_raise() == 0

    @requires("related_conditions")
    async def test_relation_delete_with_related_condition(self, db: Ommi) -> None:
        """``.delete`` with a related condition deletes exactly the matching targets."""
        blog = await seed_blog(db)
        await db.find(RelPostTag).delete.or_raise()
        await db.find(RelProfile).delete.or_raise()
        deleted = await db.find(RelPost, RelUser.name == "Alice").delete.or_raise()
        assert deleted == 3
        assert await fetch(db.find(RelPost)) == [blog.carol_x]
        assert await db.find(RelUser, RelPost.id == None).delete.or_raise() == 2  # noqa: E711
        assert await names(db.find(RelUser)) == ["Carol"]

    @requires("related_conditions")
    async def test_relation_update_with_related_condition(self, db: Ommi) -> None:
        """``.update`` with a related condition updates exactly the matching targets, once each."""
        await seed_blog(db)
        assert await db.find(RelPost, RelUser.name == "Carol").update(title="carol's").or_raise() == 1
        assert await db.find(RelUser, RelPost.title.startswith("x")).update(name="X").or_raise() == 1
        assert await names(db.find(RelUser)) == ["Bob", "Carol", "X"]
        assert await titles(db.find(RelPost)) == ["carol's", "hello", "x", "x-ray"]

    @requires("related_conditions")
    async def test_relation_join_does_not_skew_pagination(self, db: Ommi) -> None:
        """Sorting and paging a joined query counts each target once."""
        await seed_blog(db)
        query = db.find(RelUser, RelPost.title.startswith("x")).sort(RelUser.name.asc)
        assert [u.name for u in await fetch(query.limit(1))] == ["Alice"]
        assert [u.name for u in await fetch(query.limit(1, 1))] == ["Carol"]
        assert await fetch(query.limit(1, 2)) == []

    @requires("related_conditions")
    async def test_relation_conditions_on_two_related_models(self, db: Ommi) -> None:
        """Conditions on two different related models both apply (two joins)."""
        blog = await seed_blog(db)
        query = db.find(RelPost, RelUser.name == "Alice", RelPostTag.tag_id == blog.sql.id)
        assert await fetch(query) == [blog.alice_x]
        by_tag = db.find(RelPost, RelPostTag.tag_id == blog.python.id)
        assert await titles(by_tag) == ["hello", "x"]

    @requires("related_conditions")
    async def test_relation_self_reference_condition(self, db: Ommi) -> None:
        """Conditions on the fields of the target itself still work on a self-referencing model."""
        root = RelNode("root")
        await db.add(root).or_raise()
        await db.add(RelNode("a", root.id), RelNode("b", root.id)).or_raise()
        assert sorted(n.label for n in await fetch(db.find(RelNode.parent_id == root.id))) == ["a", "b"]

    async def test_relation_condition_on_unrelated_model_is_query_error(self, db: Ommi) -> None:
        """A condition on a model that no reference connects to the target fails with QueryError."""
        await seed_blog(db)
        result = await db.find(RelTag, RelUser.name == "Alice").all
        assert isinstance(result.exception, QueryError)

    # -- ReferenceTo ------------------------------------------------------------

    async def test_relation_reference_forms_resolve_to_key_fields(self, db: Ommi) -> None:
        """``ReferenceTo(Model.field)``, ``("Model.field")``, ``(Model)`` and ``("Model")`` all work end to end."""
        blog = await seed_blog(db)
        # ReferenceTo(RelUser.id): RelPost.author; ReferenceTo("RelUser.id"): RelProfile.user;
        # ReferenceTo(RelPost) and ReferenceTo("RelTag"): RelPostTag, used by the tags relation.
        assert await blog.alice_hello.author == blog.alice
        assert await blog.profile.user == blog.alice
        assert [p.title for p in await blog.sql.posts] == ["x"]
        links = await fetch(db.find(RelPostTag.post_id == blog.alice_x.id))
        assert sorted(link.tag_id for link in links) == sorted([blog.python.id, blog.sql.id])

    async def test_relation_broken_reference_unknown_model(self, db: Ommi) -> None:
        """``ReferenceTo("Ghost.id")`` raises ModelDefinitionError naming the model and field."""

        def define() -> type:
            @ommi_model(collection=ModelCollection("ommi_testkit_broken_1"), name="tk_broken_1")
            @dataclass
            class DanglingRef:
                owner: Annotated[int, ReferenceTo("GhostModelNowhere.id")]
                id: int | None = None

            return DanglingRef

        message = str(await _definition_error(db, define))
        assert "DanglingRef" in message
        assert "owner" in message

    async def test_relation_broken_reference_unknown_field(self, db: Ommi) -> None:
        """``ReferenceTo("RelUser.nope")`` raises ModelDefinitionError naming the model and field."""

        def define() -> type:
            @ommi_model(collection=ModelCollection("ommi_testkit_broken_2"), name="tk_broken_2")
            @dataclass
            class BadFieldRef:
                user: Annotated[int, ReferenceTo("RelUser.nope")]
                id: int | None = None

            return BadFieldRef

        message = str(await _definition_error(db, define))
        assert "BadFieldRef" in message
        assert "user" in message
        assert "nope" in message

    async def test_relation_broken_reference_type_mismatch(self, db: Ommi) -> None:
        """A str field referencing an int key raises ModelDefinitionError naming the model and field."""

        def define() -> type:
            @ommi_model(collection=ModelCollection("ommi_testkit_broken_3"), name="tk_broken_3")
            @dataclass
            class WrongTypeRef:
                user_code: Annotated[str, ReferenceTo(RelUser.id)]
                id: int | None = None

            return WrongTypeRef

        message = str(await _definition_error(db, define))
        assert "WrongTypeRef" in message
        assert "user_code" in message

    async def test_relation_broken_reference_not_a_model(self, db: Ommi) -> None:
        """``ReferenceTo`` of something that is not a model raises ModelDefinitionError naming the field."""

        def define() -> type:
            @ommi_model(collection=ModelCollection("ommi_testkit_broken_4"), name="tk_broken_4")
            @dataclass
            class NotModelRef:
                thing: Annotated[int, ReferenceTo(int)]
                id: int | None = None

            return NotModelRef

        message = str(await _definition_error(db, define))
        assert "NotModelRef" in message
        assert "thing" in message

    async def test_relation_broken_reference_to_composite_key_model(self, db: Ommi) -> None:
        """``ReferenceTo(Model)`` of a model with a composite key raises ModelDefinitionError naming the field."""
        broken = ModelCollection("ommi_testkit_broken_5")

        @ommi_model(collection=broken, name="tk_broken_5_pair")
        @dataclass
        class Pair:
            left: Annotated[int, Key]
            right: Annotated[int, Key]

        def define() -> type:
            @ommi_model(collection=broken, name="tk_broken_5")
            @dataclass
            class PairRef:
                pair: Annotated[int, ReferenceTo(Pair)]
                id: int | None = None

            return PairRef

        message = str(await _definition_error(db, define))
        assert "PairRef" in message
        assert "pair" in message

    # -- foreign keys -------------------------------------------------------------

    @requires("foreign_keys")
    async def test_relation_foreign_key_dangling_insert_is_integrity_error(self, db: Ommi) -> None:
        """Adding a row that references a missing row raises IntegrityError; nothing is stored."""
        await seed_blog(db)
        result = await db.add(RelPost("orphan", 987654))
        assert isinstance(result.exception, IntegrityError)
        assert await db.find(RelPost.title == "orphan").count.or_raise() == 0

    @requires("foreign_keys")
    async def test_relation_foreign_key_update_to_dangling_is_integrity_error(self, db: Ommi) -> None:
        """Updating a reference to a missing row raises IntegrityError; the row keeps its value."""
        blog = await seed_blog(db)
        with pytest.raises(IntegrityError):
            await db.find(RelPost.id == blog.carol_x.id).update(author_id=987654).or_raise()
        assert (await db.find(RelPost.id == blog.carol_x.id).one.or_raise()).author_id == blog.carol.id

    @requires("foreign_keys")
    async def test_relation_foreign_key_delete_referenced_is_integrity_error(self, db: Ommi) -> None:
        """Deleting a row that others still reference raises IntegrityError; nothing is deleted."""
        blog = await seed_blog(db)
        with pytest.raises(IntegrityError):
            await db.find(RelUser.id == blog.carol.id).delete.or_raise()
        with pytest.raises(IntegrityError):
            await blog.carol.delete().or_raise()
        assert await db.find(RelUser).count.or_raise() == 3
        assert await db.find(RelPost).count.or_raise() == 4

    @requires("foreign_keys")
    async def test_relation_foreign_key_dangling_self_reference_is_integrity_error(self, db: Ommi) -> None:
        """A self-reference to a missing row raises IntegrityError; one to a stored row works."""
        root = RelNode("root")
        await db.add(root).or_raise()
        with pytest.raises(IntegrityError):
            await db.add(RelNode("lost", 987654)).or_raise()
        await db.add(RelNode("child", root.id)).or_raise()
        assert sorted(n.label for n in await fetch(db.find(RelNode))) == ["child", "root"]

    @requires("transactions")
    async def test_relation_foreign_key_delete_children_then_parent_in_transaction(
        self, db: Ommi, second_db: Ommi
    ) -> None:
        """Deleting the referencing rows, then the rows they referenced, in one transaction commits.

        References are checked against the transaction's own view: once the
        children are gone inside the transaction, deleting their parents is
        valid there, although the children are still stored outside it until
        the commit. Three levels deep: tags of posts, posts and profile, users.
        """
        blog = await seed_blog(db)
        async with db.transaction() as t:
            assert await t.find(RelPostTag).delete.or_raise() == 3
            assert await t.find(RelPost.author_id == blog.alice.id).delete.or_raise() == 3
            assert await t.find(RelProfile).delete.or_raise() == 1
            assert await t.find(RelUser.id == blog.alice.id).delete.or_raise() == 1
            assert await t.find(RelTag.name == "sql").delete.or_raise() == 1
        assert await names(second_db.find(RelUser)) == ["Bob", "Carol"]
        assert await titles(second_db.find(RelPost)) == ["x"]
        assert [tag.name for tag in await fetch(second_db.find(RelTag))] == ["python"]
        assert await second_db.find(RelPostTag).count.or_raise() == 0
        assert await second_db.find(RelProfile).count.or_raise() == 0

    @requires("transactions", "foreign_keys")
    async def test_relation_foreign_key_delete_parent_before_children_in_transaction_fails(self, db: Ommi) -> None:
        """Deleting a referenced row before its referencing rows, in one transaction, raises IntegrityError.

        The error comes from the delete or at the latest from the commit; either
        way the transaction is rolled back and every row is still stored.
        """
        blog = await seed_blog(db)

        async def parent_first() -> None:
            async with db.transaction() as t:
                await t.find(RelUser.id == blog.carol.id).delete.or_raise()
                await t.find(RelPost.author_id == blog.carol.id).delete.or_raise()

        with pytest.raises(IntegrityError):
            await parent_first()
        assert await names(db.find(RelUser)) == ["Alice", "Bob", "Carol"]
        assert await db.find(RelPost.author_id == blog.carol.id).count.or_raise() == 1
