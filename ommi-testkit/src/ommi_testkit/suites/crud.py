"""Conformance tests: adding, reading, counting, updating and deleting, and the result types."""

# Model classes double as query operands (``Person.age >= 18``, ``model.save()``),
# which a type checker cannot see without a plugin; those checks are off here.
# mypy: disable-error-code="misc, attr-defined, arg-type, operator, union-attr, comparison-overlap"

from __future__ import annotations

import uuid
from typing import Any

import pytest
from ommi import DBQueryResult, DBResult, DBStatusNoResultException, Ommi
from ommi.errors import IntegrityError, OmmiError, QueryError, ValidationError
from ommi.query.find import FindQuery

from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import Document, Item, Order, Person, Placement, Token


async def _rows(query: FindQuery[Any]) -> list[Any]:
    return await (await query.all.or_raise()).to_list()


def _people() -> list[Person]:
    return [
        Person("Alice", 30, id=1),
        Person("Bob", 25, id=2),
        Person("Carol", 35, id=3),
    ]


class CrudTests(SuiteBase):
    """``db.add``, ``.one``, ``.all``, ``.count``, ``.delete``, ``.update`` and model methods."""

    # -- add ---------------------------------------------------------------

    async def test_add_one_gives_success_with_the_instance(self, db: Ommi) -> None:
        """Awaiting ``db.add(model)`` gives ``DBResult.DBSuccess`` holding that same instance."""
        person = Person("Alice", 30)
        result = await db.add(person)
        assert isinstance(result, DBResult.DBSuccess)
        assert result.value is person

    async def test_add_one_or_raise_returns_the_model(self, db: Ommi) -> None:
        """``db.add(model).or_raise()`` returns the model itself."""
        token = Token("t1", "first")
        assert await db.add(token).or_raise() is token
        assert await db.find(Token).count.or_raise() == 1

    async def test_add_many_or_raise_returns_a_list(self, db: Ommi) -> None:
        """``db.add(a, b, c).or_raise()`` returns the instances as a list, in order."""
        people = _people()
        added = await db.add(*people).or_raise()
        assert isinstance(added, list)
        assert len(added) == 3
        assert all(a is b for a, b in zip(added, people, strict=True))
        assert await db.find(Person).count.or_raise() == 3

    async def test_add_many_success_value_is_a_list(self, db: Ommi) -> None:
        """The ``DBSuccess`` of a multi-model add holds the list of instances."""
        people = _people()
        result = await db.add(*people)
        assert isinstance(result, DBResult.DBSuccess)
        assert result.value == people

    async def test_add_result_supports_pattern_matching(self, db: Ommi) -> None:
        """``match`` works on add results: ``case DBResult.DBSuccess(value)`` / ``DBFailure(exception)``."""
        match await db.add(Token("m", "x")):
            case DBResult.DBSuccess(value):
                assert value.code == "m"
            case _:
                pytest.fail("the first add should succeed")
        match await db.add(Token("m", "again")):
            case DBResult.DBFailure(exception):
                assert isinstance(exception, IntegrityError)
            case _:
                pytest.fail("adding a duplicate key should fail")

    async def test_add_mixed_models_in_one_call(self, db: Ommi) -> None:
        """One ``add`` may mix models; every instance is stored."""
        person, token, item = Person("Alice", 30, id=1), Token("t", "x"), Item(7, id=1)
        assert await db.add(person, token, item).or_raise() == [person, token, item]
        assert await db.find(Person).count.or_raise() == 1
        assert await db.find(Token).count.or_raise() == 1
        assert (await db.find(Item.position == 7).one.or_raise()).id == 1

    async def test_add_duplicate_key_fails_with_integrity_error(self, db: Ommi) -> None:
        """Adding a second row with an existing key is a ``DBFailure(IntegrityError)``; the first row stays."""
        await db.add(Token("dup", "original")).or_raise()
        result = await db.add(Token("dup", "second"))
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, IntegrityError)
        with pytest.raises(IntegrityError):
            await db.add(Token("dup", "third")).or_raise()
        stored = await _rows(db.find(Token))
        assert [(t.code, t.label) for t in stored] == [("dup", "original")]

    async def test_add_duplicate_within_one_call_stores_nothing(self, db: Ommi) -> None:
        """An ``add`` of several instances is all or nothing: one duplicate key stores none of them."""
        result = await db.add(Token("a", "1"), Token("b", "2"), Token("a", "3"))
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, IntegrityError)
        assert await db.find(Token).count.or_raise() == 0

    async def test_add_or_use_gives_default_only_on_failure(self, db: Ommi) -> None:
        """``.or_use(default)`` returns the value on success and ``default`` on failure."""
        token = Token("u", "x")
        assert await db.add(token).or_use("fallback") is token
        assert await db.add(Token("u", "y")).or_use("fallback") == "fallback"

    async def test_add_without_models_fails(self, db: Ommi) -> None:
        """``db.add()`` with nothing to add is a failure, not a silent no-op."""
        result: Any = await db.add()
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, OmmiError)

    async def test_add_non_model_fails(self, db: Ommi) -> None:
        """Adding something that is not a model instance fails with an Ommi error."""
        result = await db.add("not a model")
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, OmmiError)

    async def test_add_visible_to_another_connection(self, db: Ommi, second_db: Ommi) -> None:
        """A committed ``add`` is visible through a second ``Ommi`` on the same database."""
        await db.add(*_people()).or_raise()
        assert await second_db.find(Person).count.or_raise() == 3
        bob = await second_db.find(Person.name == "Bob").one.or_raise()
        assert (bob.id, bob.age) == (2, 25)

    # -- keys --------------------------------------------------------------

    @requires("generated_keys")
    async def test_keys_generated_int_key_is_set_on_the_instance(self, db: Ommi) -> None:
        """An int key left ``None`` is generated by the database and set on the instance."""
        person = Person("Alice", 30)
        await db.add(person).or_raise()
        assert isinstance(person.id, int)
        assert not isinstance(person.id, bool)
        fetched = await db.find(Person.id == person.id).one.or_raise()
        assert fetched.name == "Alice"

    @requires("generated_keys")
    async def test_keys_generated_keys_are_distinct_per_row(self, db: Ommi) -> None:
        """Several instances added together each get their own generated key, matching their row."""
        people = [Person(f"p{i}", i) for i in range(5)]
        await db.add(*people).or_raise()
        ids = [p.id for p in people]
        assert len(set(ids)) == 5
        for person in people:
            assert (await db.find(Person.id == person.id).one.or_raise()).name == person.name

    @requires("generated_keys")
    async def test_keys_generated_after_given_int_keys_do_not_collide(self, db: Ommi) -> None:
        """Int keys given by the application are kept, and later generated keys never collide with them."""
        given = [Person("given", 1, id=1), Person("given", 2, id=2), Person("given", 3, id=50)]
        await db.add(*given).or_raise()
        generated = [Person("generated", i) for i in range(3)]
        await db.add(*generated).or_raise()
        ids = [p.id for p in given + generated]
        assert ids[:3] == [1, 2, 50]
        assert len(set(ids)) == 6
        assert await db.find(Person).count.or_raise() == 6

    async def test_keys_given_int_key_is_kept(self, db: Ommi) -> None:
        """An int key set by the application is stored as given."""
        person = Person("Alice", 30, id=42)
        await db.add(person).or_raise()
        assert person.id == 42
        assert (await db.find(Person.name == "Alice").one.or_raise()).id == 42

    async def test_keys_str_key_is_never_overwritten(self, db: Ommi) -> None:
        """A str key is stored and returned exactly as given (never replaced by a generated id)."""
        tokens = [Token("zeta", "z"), Token("alpha", "a")]
        await db.add(*tokens).or_raise()
        assert [t.code for t in tokens] == ["zeta", "alpha"]
        assert (await db.find(Token.code == "zeta").one.or_raise()).label == "z"
        assert sorted(t.code for t in await _rows(db.find(Token))) == ["alpha", "zeta"]

    async def test_keys_uuid_key_is_never_overwritten(self, db: Ommi) -> None:
        """A UUID key is stored and returned exactly as given."""
        uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
        document = Document(uid, "spec")
        await db.add(document).or_raise()
        assert document.uid == uid
        fetched = await db.find(Document.uid == uid).one.or_raise()
        assert fetched.uid == uid
        assert isinstance(fetched.uid, uuid.UUID)

    @requires("composite_keys")
    async def test_keys_composite_key_rows_differ_in_any_part(self, db: Ommi) -> None:
        """With a composite key, rows sharing one key part are distinct; the full key finds one."""
        await db.add(Placement("eu", 1, "a"), Placement("eu", 2, "b"), Placement("us", 1, "c")).or_raise()
        assert await db.find(Placement).count.or_raise() == 3
        found = await db.find(Placement.region == "eu", Placement.number == 2).one.or_raise()
        assert found.label == "b"

    @requires("composite_keys")
    async def test_keys_composite_key_duplicate_fails(self, db: Ommi) -> None:
        """Repeating a whole composite key fails with ``IntegrityError``."""
        await db.add(Placement("eu", 1, "a")).or_raise()
        with pytest.raises(IntegrityError):
            await db.add(Placement("eu", 1, "again")).or_raise()
        assert (await db.find(Placement).one.or_raise()).label == "a"

    # -- one ---------------------------------------------------------------

    async def test_one_bare_and_called_are_the_same(self, db: Ommi) -> None:
        """``.one`` and ``.one()`` both give a ``DBQuerySuccess`` with the matching model."""
        await db.add(*_people()).or_raise()
        bare = await db.find(Person.name == "Bob").one
        called = await db.find(Person.name == "Bob").one()
        for result in (bare, called):
            assert isinstance(result, DBQueryResult.DBQuerySuccess)
            assert result.value == Person("Bob", 25, id=2)

    async def test_one_no_match_is_a_query_failure(self, db: Ommi) -> None:
        """``.one`` with no match is ``DBQueryFailure(DBStatusNoResultException)``; ``or_raise`` raises it."""
        await db.add(*_people()).or_raise()
        result = await db.find(Person.name == "Nobody").one
        assert isinstance(result, DBQueryResult.DBQueryFailure)
        assert isinstance(result.exception, DBStatusNoResultException)
        with pytest.raises(DBStatusNoResultException):
            await db.find(Person.name == "Nobody").one.or_raise()
        assert await db.find(Person.name == "Nobody").one.or_use(None) is None

    async def test_one_does_not_change_the_query(self, db: Ommi) -> None:
        """Running ``.one()`` on a query leaves that query unchanged (no limit leaks into it)."""
        await db.add(*_people()).or_raise()
        query = db.find(Person.age > 20).sort(Person.age)
        assert (await query.one().or_raise()).name == "Bob"
        assert [p.name for p in await _rows(query)] == ["Bob", "Alice", "Carol"]
        assert await query.count.or_raise() == 3

    async def test_one_on_an_empty_table_fails(self, db: Ommi) -> None:
        """``find(Model).one`` on an empty table fails with ``DBStatusNoResultException``."""
        with pytest.raises(DBStatusNoResultException):
            await db.find(Person).one.or_raise()

    # -- all ---------------------------------------------------------------

    async def test_all_await_find_means_all(self, db: Ommi) -> None:
        """``await db.find(...)`` is ``.all``: a ``DBQuerySuccess`` holding an iterator of every match."""
        await db.add(*_people()).or_raise()
        result = await db.find(Person.age >= 30)
        assert isinstance(result, DBQueryResult.DBQuerySuccess)
        assert sorted(p.name for p in await result.value.to_list()) == ["Alice", "Carol"]

    async def test_all_find_or_raise_means_all(self, db: Ommi) -> None:
        """``await db.find(...).or_raise()`` returns the ``.all`` iterator."""
        await db.add(*_people()).or_raise()
        iterator = await db.find(Person).or_raise()
        assert sorted(p.id or 0 for p in await iterator.to_list()) == [1, 2, 3]

    async def test_all_async_iteration(self, db: Ommi) -> None:
        """``async for`` over ``.all`` and over ``.all()`` yields every match."""
        await db.add(*_people()).or_raise()
        bare = [p.name async for p in db.find(Person).all]
        called = [p.name async for p in db.find(Person).all()]
        assert sorted(bare) == sorted(called) == ["Alice", "Bob", "Carol"]

    async def test_all_to_list_returns_models(self, db: Ommi) -> None:
        """``to_list()`` returns model instances equal to what was added."""
        people = _people()
        await db.add(*people).or_raise()
        listed = await _rows(db.find(Person).sort(Person.id))
        assert listed == people
        assert all(type(p) is Person for p in listed)

    async def test_all_batch_size_yields_everything_in_order(self, db: Ommi) -> None:
        """``.all(batch_size=2)`` on a sorted query yields every row once, in order, across batches."""
        await db.add(*[Item(p, id=p + 1) for p in (6, 2, 4, 0, 5, 1, 3)]).or_raise()
        query = db.find(Item).sort(Item.position)
        positions = [i.position async for i in query.all(batch_size=2)]
        assert positions == list(range(7))
        for size in (1, 3, 7, 100):
            iterator = await query.all(batch_size=size).or_raise()
            assert [i.position for i in await iterator.to_list()] == list(range(7))

    async def test_all_invalid_batch_size_fails(self, db: Ommi) -> None:
        """A batch size below 1 is a query failure."""
        result = await db.find(Item).all(batch_size=0)
        assert isinstance(result, DBQueryResult.DBQueryFailure)
        assert isinstance(result.exception, QueryError)

    async def test_all_stopping_early_releases_the_cursor(self, db: Ommi) -> None:
        """Closing a half-read iterator ends it; the database keeps answering queries."""
        await db.add(*[Item(p, id=p + 1) for p in range(6)]).or_raise()
        iterator = await db.find(Item).sort(Item.position).all(batch_size=2).or_raise()
        first = [await anext(iterator), await anext(iterator), await anext(iterator)]
        assert [i.position for i in first] == [0, 1, 2]
        await iterator.aclose()
        assert await iterator.to_list() == []
        assert await db.find(Item).count.or_raise() == 6
        assert await db.find(Item.position >= 3).delete.or_raise() == 3

    async def test_all_empty_result(self, db: Ommi) -> None:
        """``.all`` with no match yields nothing."""
        await db.add(*_people()).or_raise()
        assert await _rows(db.find(Person.age > 100)) == []

    # -- count -------------------------------------------------------------

    async def test_count_bare_and_called(self, db: Ommi) -> None:
        """``.count`` and ``.count()`` both give the number of matches."""
        await db.add(*_people()).or_raise()
        for result in (await db.find(Person).count, await db.find(Person).count()):
            assert isinstance(result, DBQueryResult.DBQuerySuccess)
            assert result.value == 3
        assert await db.find(Person.age < 31).count.or_raise() == 2

    async def test_count_empty_table_is_zero(self, db: Ommi) -> None:
        """Counting an empty table gives 0 (and ``or_use`` is not needed for it)."""
        assert await db.find(Person).count.or_use(-1) == 0

    async def test_count_honours_limit_and_page(self, db: Ommi) -> None:
        """``.count`` of a limited query counts the rows of that page only."""
        await db.add(*[Item(p, id=p + 1) for p in range(7)]).or_raise()
        assert await db.find(Item).limit(3).count.or_raise() == 3
        assert await db.find(Item).sort(Item.position).limit(5, 1).count.or_raise() == 2
        assert await db.find(Item).limit(5, 2).count.or_raise() == 0
        assert await db.find(Item).sort(Item.position.desc).count.or_raise() == 7

    # -- delete ------------------------------------------------------------

    async def test_delete_returns_the_number_deleted(self, db: Ommi) -> None:
        """``.delete`` removes the matches and gives how many; other rows stay."""
        await db.add(*_people()).or_raise()
        result = await db.find(Person.age >= 30).delete
        assert isinstance(result, DBQueryResult.DBQuerySuccess)
        assert result.value == 2
        assert [p.name for p in await _rows(db.find(Person))] == ["Bob"]

    async def test_delete_called_form(self, db: Ommi) -> None:
        """``.delete()`` is the same action as ``.delete``."""
        await db.add(*_people()).or_raise()
        assert await db.find(Person.name == "Bob").delete().or_raise() == 1
        assert await db.find(Person).count.or_raise() == 2

    async def test_delete_find_model_deletes_everything(self, db: Ommi) -> None:
        """``find(Model).delete()`` (no condition) deletes every row of that model only."""
        await db.add(*_people(), Token("keep", "me")).or_raise()
        assert await db.find(Person).delete().or_raise() == 3
        assert await db.find(Person).count.or_raise() == 0
        assert await db.find(Token).count.or_raise() == 1

    async def test_delete_no_match_is_zero(self, db: Ommi) -> None:
        """Deleting with no match succeeds with 0."""
        await db.add(*_people()).or_raise()
        assert await db.find(Person.name == "Nobody").delete.or_raise() == 0
        assert await db.find(Person).delete.or_raise() == 3
        assert await db.find(Person).delete.or_raise() == 0

    # -- update ------------------------------------------------------------

    async def test_update_keywords_returns_the_number_updated(self, db: Ommi) -> None:
        """``.update(field=value)`` changes only the matches and gives how many."""
        await db.add(*_people()).or_raise()
        result = await db.find(Person.age >= 30).update(age=50, nickname="senior")
        assert isinstance(result, DBQueryResult.DBQuerySuccess)
        assert result.value == 2
        stored = {p.name: (p.age, p.nickname) for p in await _rows(db.find(Person))}
        assert stored == {"Alice": (50, "senior"), "Bob": (25, None), "Carol": (50, "senior")}

    async def test_update_with_a_dict(self, db: Ommi) -> None:
        """``.update({"field": value})`` works like keywords."""
        await db.add(*_people()).or_raise()
        assert await db.find(Person.name == "Bob").update({"score": 9.5, "active": False}).or_raise() == 1
        bob = await db.find(Person.id == 2).one.or_raise()
        assert (bob.score, bob.active) == (9.5, False)

    async def test_update_no_match_is_zero(self, db: Ommi) -> None:
        """Updating with no match succeeds with 0 and changes nothing."""
        await db.add(*_people()).or_raise()
        assert await db.find(Person.age > 100).update(age=1).or_raise() == 0
        assert sorted(p.age for p in await _rows(db.find(Person))) == [25, 30, 35]

    async def test_update_every_row(self, db: Ommi) -> None:
        """``find(Model).update(...)`` updates every row."""
        await db.add(*_people()).or_raise()
        assert await db.find(Person).update(active=False).or_raise() == 3
        assert await db.find(Person.active == False).count.or_raise() == 3  # noqa: E712 - a query

    async def test_update_to_none(self, db: Ommi) -> None:
        """An optional field can be set back to ``None``."""
        await db.add(Person("Alice", 30, nickname="Al", rank=1, id=1)).or_raise()
        assert await db.find(Person.id == 1).update(nickname=None, rank=None).or_raise() == 1
        alice = await db.find(Person.id == 1).one.or_raise()
        assert (alice.nickname, alice.rank) == (None, None)

    async def test_update_unknown_field_fails(self, db: Ommi) -> None:
        """Updating a field the model does not have is a ``QueryError``; nothing changes."""
        await db.add(*_people()).or_raise()
        result = await db.find(Person).update(height=2)
        assert isinstance(result, DBQueryResult.DBQueryFailure)
        assert isinstance(result.exception, QueryError)
        assert sorted(p.age for p in await _rows(db.find(Person))) == [25, 30, 35]

    async def test_update_invalid_value_fails(self, db: Ommi) -> None:
        """Updating with a value of the wrong type is a ``ValidationError``; nothing changes."""
        await db.add(*_people()).or_raise()
        with pytest.raises(ValidationError):
            await db.find(Person).update(age="old").or_raise()
        with pytest.raises(ValidationError):
            await db.find(Person).update(name=None).or_raise()
        assert sorted(p.age for p in await _rows(db.find(Person))) == [25, 30, 35]

    async def test_update_without_values_fails(self, db: Ommi) -> None:
        """``.update`` without values (bare, or called empty) fails instead of doing nothing silently."""
        await db.add(*_people()).or_raise()
        for action in (db.find(Person).update, db.find(Person).update(), db.find(Person).update({})):
            result = await action
            assert isinstance(result, DBQueryResult.DBQueryFailure)
            assert isinstance(result.exception, QueryError)

    # -- model methods -----------------------------------------------------

    async def test_model_save_writes_changed_fields(self, db: Ommi, second_db: Ommi) -> None:
        """``await model.save()`` writes the instance's fields to its row, by key."""
        people = _people()
        await db.add(*people).or_raise()
        bob = people[1]
        bob.age, bob.nickname = 26, "Bobby"
        result = await bob.save()
        assert isinstance(result, DBResult.DBSuccess)
        stored = await second_db.find(Person.id == 2).one.or_raise()
        assert (stored.age, stored.nickname) == (26, "Bobby")
        assert (await db.find(Person.id == 1).one.or_raise()).age == 30

    async def test_model_save_inserts_a_new_instance(self, db: Ommi) -> None:
        """``save()`` on an instance that was never added stores it."""
        token = Token("new", "fresh")
        assert await token.save().or_raise() is token
        assert (await db.find(Token.code == "new").one.or_raise()).label == "fresh"

    async def test_model_save_by_non_int_key(self, db: Ommi) -> None:
        """``save()`` finds the row by a str key and updates it in place."""
        token = Token("k", "before")
        await db.add(token, Token("other", "same")).or_raise()
        token.label = "after"
        await token.save().or_raise()
        stored = {t.code: t.label for t in await _rows(db.find(Token))}
        assert stored == {"k": "after", "other": "same"}

    @requires("composite_keys")
    async def test_model_save_by_composite_key(self, db: Ommi) -> None:
        """``save()`` on a composite-key model updates exactly that row."""
        target = Placement("eu", 1, "old")
        await db.add(target, Placement("eu", 2, "keep"), Placement("us", 1, "keep")).or_raise()
        target.label = "new"
        await target.save().or_raise()
        labels = {(p.region, p.number): p.label for p in await _rows(db.find(Placement))}
        assert labels == {("eu", 1): "new", ("eu", 2): "keep", ("us", 1): "keep"}

    async def test_model_save_invalid_value_changes_nothing(self, db: Ommi) -> None:
        """``save()`` with an invalid field value fails with ``ValidationError``; the row is unchanged."""
        people = _people()
        await db.add(*people).or_raise()
        people[0].age = "thirty"  # type: ignore[assignment]
        result = await people[0].save()
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, ValidationError)
        assert (await db.find(Person.id == 1).one.or_raise()).age == 30

    async def test_model_delete_removes_its_row(self, db: Ommi) -> None:
        """``await model.delete()`` deletes that instance's row only."""
        people = _people()
        await db.add(*people).or_raise()
        result = await people[0].delete()
        assert isinstance(result, DBResult.DBSuccess)
        assert sorted(p.name for p in await _rows(db.find(Person))) == ["Bob", "Carol"]
        await people[2].delete().or_raise()
        assert [p.name for p in await _rows(db.find(Person))] == ["Bob"]

    async def test_model_reload_reads_the_stored_row(self, db: Ommi) -> None:
        """``await model.reload()`` refreshes the instance from its row and returns it."""
        people = _people()
        await db.add(*people).or_raise()
        await db.find(Person.id == 2).update(age=99, nickname="changed").or_raise()
        bob = people[1]
        assert await bob.reload().or_raise() is bob
        assert (bob.age, bob.nickname, bob.name) == (99, "changed", "Bob")

    async def test_model_reload_of_a_deleted_row_fails(self, db: Ommi) -> None:
        """Reloading an instance whose row is gone fails with ``DBStatusNoResultException``."""
        token = Token("gone", "x")
        await db.add(token).or_raise()
        await db.find(Token).delete.or_raise()
        result = await token.reload()
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, DBStatusNoResultException)
        assert token.label == "x"

    # -- awkward names -----------------------------------------------------

    async def test_names_keyword_table_and_columns_round_trip(self, db: Ommi) -> None:
        """A table named ``order`` with columns ``select``, ``from``, ``group``, ``where`` stores and reads rows."""
        rows = [
            Order("a", from_="x", group_by=2, where=None, odd="q\"'", id=1),
            Order("b", from_="y", group_by=1, where="w", odd="", id=2),
        ]
        await db.add(*rows).or_raise()
        assert await _rows(db.find(Order).sort(Order.group_by)) == [rows[1], rows[0]]
        assert (await db.find(Order.where == None).one.or_raise()).select == "a"  # noqa: E711 - a query
        assert (await db.find(Order.odd == "q\"'").one.or_raise()).id == 1

    async def test_names_keyword_columns_in_conditions_updates_and_deletes(self, db: Ommi) -> None:
        """Conditions, sorting, updates and deletes work on keyword-named and ``StoreAs`` columns."""
        await db.add(*[Order(f"s{i}", from_=f"f{i}", group_by=i, id=i + 1) for i in range(4)]).or_raise()
        assert await db.find(Order.from_.in_(["f1", "f2"])).update(where="set", odd='a "b"').or_raise() == 2
        assert [o.select async for o in db.find(Order.where == "set").sort(Order.group_by.desc).all] == ["s2", "s1"]
        assert await db.find(Order.odd == 'a "b"').count.or_raise() == 2
        assert await db.find(Order.group_by >= 2).delete.or_raise() == 2
        assert [o.select for o in await _rows(db.find(Order).sort(Order.select))] == ["s0", "s1"]
