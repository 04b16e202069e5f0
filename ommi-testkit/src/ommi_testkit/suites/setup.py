"""Conformance tests: implicit model setup of the global collection, through every entry point.

Each ``test_setup_first_*`` test runs one kind of operation as the very first
thing an ``Ommi`` does on an empty database (the ``implicit_db`` fixture): it must
create the global collection's tables itself (audit item 4). The models are
:class:`~ommi_testkit.suites.models_global.ImplicitOwner` and ``ImplicitItem``,
the testkit's only models in the global collection.
"""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import ommi
import pytest
import pytest_asyncio
from ommi import DBQueryResult, DBResult, DBStatusNoResultException, Ommi
from ommi.drivers import Driver

from ommi_testkit.suites._support import fetch, global_models, implicit_models
from ommi_testkit.suites.base import SuiteBase, requires


async def _stored_names(db: Ommi) -> list[str]:
    owner, _ = implicit_models()
    return sorted(o.name for o in await fetch(db.find(owner)))


class ImplicitSetupTests(SuiteBase):
    """The global collection is set up before the first operation of any kind, and never destroyed."""

    @pytest_asyncio.fixture
    async def implicit_db(self, fresh_db: Ommi) -> Ommi:
        """``fresh_db`` with the testkit's global-collection models registered and no table of theirs left."""
        global_models()
        # fresh_db dropped the global collection before these models may have joined it.
        await fresh_db.remove_models()
        return fresh_db

    # -- writes --------------------------------------------------------------------

    async def test_setup_first_add(self, implicit_db: Ommi) -> None:
        """``add`` as the first operation creates the tables and stores the row."""
        ImplicitOwner = implicit_models()[0]
        owner = await implicit_db.add(ImplicitOwner("first")).or_raise()
        assert owner.id is not None
        assert await _stored_names(implicit_db) == ["first"]

    async def test_setup_first_add_awaited_result(self, implicit_db: Ommi) -> None:
        """``await db.add(...)`` (a result, not ``or_raise``) as the first operation succeeds."""
        ImplicitItem = implicit_models()[1]
        result = await implicit_db.add(ImplicitItem("loose"))
        assert isinstance(result, DBResult.DBSuccess), result
        assert await implicit_db.find(ImplicitItem).count.or_raise() == 1

    # -- find forms ----------------------------------------------------------------

    async def test_setup_first_find_all(self, implicit_db: Ommi) -> None:
        """``await db.find(M).all`` as the first operation gives an empty success."""
        ImplicitOwner = implicit_models()[0]
        result = await implicit_db.find(ImplicitOwner).all
        assert isinstance(result, DBQueryResult.DBQuerySuccess), result
        assert await result.value.to_list() == []

    async def test_setup_first_find_awaited(self, implicit_db: Ommi) -> None:
        """``await db.find(M)`` (meaning ``.all``) as the first operation succeeds."""
        ImplicitOwner = implicit_models()[0]
        result = await implicit_db.find(ImplicitOwner.name == "x")
        assert isinstance(result, DBQueryResult.DBQuerySuccess), result

    async def test_setup_first_find_or_raise(self, implicit_db: Ommi) -> None:
        """``await db.find(M).or_raise()`` as the first operation succeeds."""
        ImplicitOwner = implicit_models()[0]
        iterator = await implicit_db.find(ImplicitOwner).or_raise()
        assert await iterator.to_list() == []

    async def test_setup_first_all_iteration(self, implicit_db: Ommi) -> None:
        """``async for`` over ``db.find(M).all`` as the first operation succeeds."""
        ImplicitOwner = implicit_models()[0]
        seen = [owner async for owner in implicit_db.find(ImplicitOwner).all]
        assert seen == []
        await implicit_db.add(ImplicitOwner("later")).or_raise()
        assert [o.name async for o in implicit_db.find(ImplicitOwner).all(batch_size=1)] == ["later"]

    async def test_setup_first_one(self, implicit_db: Ommi) -> None:
        """``.one`` as the first operation fails only with "no result", not with a missing table."""
        ImplicitOwner = implicit_models()[0]
        result = await implicit_db.find(ImplicitOwner.name == "nobody").one
        assert isinstance(result, DBQueryResult.DBQueryFailure)
        assert isinstance(result.exception, DBStatusNoResultException), result.exception

    async def test_setup_first_one_called_or_raise(self, implicit_db: Ommi) -> None:
        """``.one().or_raise()`` as the first operation raises DBStatusNoResultException only."""
        ImplicitOwner = implicit_models()[0]
        with pytest.raises(DBStatusNoResultException):
            await implicit_db.find(ImplicitOwner.name == "nobody").one().or_raise()

    async def test_setup_first_one_or_use(self, implicit_db: Ommi, second_db: Ommi) -> None:
        """``.one.or_use(default)`` as the first operation creates the tables (then gives the default)."""
        ImplicitOwner = implicit_models()[0]
        assert await implicit_db.find(ImplicitOwner.name == "nobody").one.or_use("none") == "none"
        # second_db never sets anything up: the table it reads was created above.
        assert await second_db.find(ImplicitOwner).count.or_raise() == 0

    async def test_setup_first_count(self, implicit_db: Ommi) -> None:
        """``.count`` (bare and called) as the first operation gives 0."""
        ImplicitOwner = implicit_models()[0]
        ImplicitItem = implicit_models()[1]
        assert await implicit_db.find(ImplicitOwner).count.or_raise() == 0
        assert await implicit_db.find(ImplicitItem).count().or_raise() == 0

    async def test_setup_first_count_result(self, implicit_db: Ommi) -> None:
        """``await db.find(M).count`` as the first operation is a success holding 0."""
        ImplicitOwner = implicit_models()[0]
        assert await implicit_db.find(ImplicitOwner).count == DBQueryResult.DBQuerySuccess(0)

    async def test_setup_first_delete(self, implicit_db: Ommi) -> None:
        """``.delete`` as the first operation deletes nothing and succeeds."""
        ImplicitOwner = implicit_models()[0]
        assert await implicit_db.find(ImplicitOwner.name == "x").delete.or_raise() == 0

    async def test_setup_first_delete_called_whole_model(self, implicit_db: Ommi) -> None:
        """``db.find(M).delete()`` as the first operation succeeds."""
        ImplicitOwner = implicit_models()[0]
        assert await implicit_db.find(ImplicitOwner).delete().or_raise() == 0

    async def test_setup_first_update(self, implicit_db: Ommi) -> None:
        """``.update(...)`` as the first operation updates nothing and succeeds."""
        ImplicitOwner = implicit_models()[0]
        assert await implicit_db.find(ImplicitOwner.name == "x").update(name="y").or_raise() == 0
        assert await implicit_db.find(ImplicitOwner).update({"name": "z"}).or_raise() == 0

    # -- model methods and lazy fields -------------------------------------------

    async def test_setup_first_model_save(self, implicit_db: Ommi) -> None:
        """``await instance.save()`` as the first operation stores the instance."""
        ImplicitOwner = implicit_models()[0]
        owner = ImplicitOwner("saved")
        await owner.save().or_raise()
        assert owner.id is not None
        assert await _stored_names(implicit_db) == ["saved"]

    async def test_setup_first_model_save_with_key(self, implicit_db: Ommi) -> None:
        """``save()`` of an instance with a key but no row, as the first operation, inserts it."""
        ImplicitOwner = implicit_models()[0]
        owner = ImplicitOwner("keyed", id=41)
        await owner.save().or_raise()
        assert (await implicit_db.find(ImplicitOwner.id == 41).one.or_raise()).name == "keyed"

    async def test_setup_first_model_delete(self, implicit_db: Ommi) -> None:
        """``await instance.delete()`` as the first operation succeeds (deleting nothing)."""
        ImplicitOwner = implicit_models()[0]
        assert await ImplicitOwner("ghost", id=5).delete().or_raise() == 0

    async def test_setup_first_model_reload(self, implicit_db: Ommi) -> None:
        """``reload()`` as the first operation fails only because the row does not exist."""
        ImplicitOwner = implicit_models()[0]
        result = await ImplicitOwner("ghost", id=5).reload()
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, DBStatusNoResultException), result.exception

    async def test_setup_first_lazy_many(self, implicit_db: Ommi) -> None:
        """Loading a to-many lazy relation as the first operation gives ``[]``."""
        ImplicitOwner = implicit_models()[0]
        assert await ImplicitOwner("o", id=3).items == []

    async def test_setup_first_lazy_one(self, implicit_db: Ommi, second_db: Ommi) -> None:
        """Loading a to-one lazy relation as the first operation gives ``None`` (and creates the tables)."""
        ImplicitOwner = implicit_models()[0]
        ImplicitItem = implicit_models()[1]
        assert await ImplicitItem("i", owner_id=3).owner is None
        assert await second_db.find(ImplicitOwner).count.or_raise() == 0

    @requires("transactions")
    async def test_setup_first_transaction_add(self, implicit_db: Ommi) -> None:
        """A transaction as the first operation sets up the tables; its writes commit."""
        ImplicitOwner = implicit_models()[0]
        async with implicit_db.transaction() as t:
            await t.add(ImplicitOwner("tx")).or_raise()
        assert await _stored_names(implicit_db) == ["tx"]

    @requires("transactions")
    async def test_setup_first_transaction_find(self, implicit_db: Ommi) -> None:
        """A query inside a transaction opened as the first operation succeeds."""
        ImplicitOwner = implicit_models()[0]
        ImplicitItem = implicit_models()[1]
        async with implicit_db.transaction() as t:
            assert await t.find(ImplicitItem).count.or_raise() == 0
            assert await t.find(ImplicitOwner.name == "x").one.or_use(None) is None

    async def test_setup_concurrent_first_operations(self, implicit_db: Ommi) -> None:
        """Many different operations started together on an empty database all succeed."""
        ImplicitOwner = implicit_models()[0]
        ImplicitItem = implicit_models()[1]
        results = await asyncio.gather(
            implicit_db.add(ImplicitOwner("a")).or_raise(),
            implicit_db.add(ImplicitOwner("b")).or_raise(),
            implicit_db.find(ImplicitOwner).count.or_raise(),
            implicit_db.find(ImplicitItem.label == "x").delete.or_raise(),
            implicit_db.find(ImplicitItem).update(label="y").or_raise(),
            implicit_db.find(ImplicitOwner.name == "none").one.or_use(None),
        )
        assert list(results[3:]) == [0, 0, None]
        assert await _stored_names(implicit_db) == ["a", "b"]

    # -- never destructive, and switchable ---------------------------------------

    async def test_setup_implicit_never_drops_data(
        self, implicit_db: Ommi, driver_factory: Callable[[], Driver]
    ) -> None:
        """A new ``Ommi`` on the same database runs implicit setup without losing any row."""
        ImplicitOwner = implicit_models()[0]
        await implicit_db.add(ImplicitOwner("kept"), ImplicitOwner("also kept")).or_raise()
        restarted = Ommi(driver_factory())
        await restarted.open()
        try:
            assert await restarted.find(ImplicitOwner).count.or_raise() == 2
            await restarted.add(ImplicitOwner("third")).or_raise()
            await restarted.use_models()
            assert await restarted.find(ImplicitOwner).count.or_raise() == 3
        finally:
            await restarted.close()
        assert await _stored_names(implicit_db) == ["also kept", "kept", "third"]

    async def test_setup_runs_again_after_remove_models(self, implicit_db: Ommi) -> None:
        """After ``remove_models()`` of the global collection the next operation sets it up again."""
        ImplicitOwner = implicit_models()[0]
        await implicit_db.add(ImplicitOwner("old")).or_raise()
        await implicit_db.remove_models()
        await implicit_db.add(ImplicitOwner("new")).or_raise()
        assert await _stored_names(implicit_db) == ["new"]

    async def test_setup_covers_whole_global_collection(self, implicit_db: Ommi, second_db: Ommi) -> None:
        """The first operation on one global model sets up the others too (the collection at once)."""
        ImplicitOwner = implicit_models()[0]
        ImplicitItem = implicit_models()[1]
        assert await implicit_db.find(ImplicitItem).count.or_raise() == 0
        await second_db.add(ImplicitOwner("made by setup")).or_raise()
        assert await _stored_names(implicit_db) == ["made by setup"]

    async def test_setup_disabled_does_not_create_tables(
        self, implicit_db: Ommi, driver_factory: Callable[[], Driver]
    ) -> None:
        """With ``allow_implicit_model_setup=False`` nothing is created: the first write fails.

        An engine that creates tables by itself on first write (schemaless
        stores) marks this test ``impossible``.
        """
        ImplicitOwner = implicit_models()[0]
        manual = Ommi(driver_factory(), allow_implicit_model_setup=False)
        await manual.open()
        try:
            failed = await manual.add(ImplicitOwner("nowhere"))
            assert isinstance(failed, DBResult.DBFailure), "the table must not have been created"
            await manual.use_models()
            await manual.add(ImplicitOwner("after use_models")).or_raise()
        finally:
            await manual.close()
        assert await _stored_names(implicit_db) == ["after use_models"]

    async def test_setup_keyword_is_allow_implicit_model_setup(self, implicit_db: Ommi) -> None:
        """The keyword is spelled ``allow_implicit_model_setup`` (keyword-only, default True) everywhere."""
        parameter = inspect.signature(Ommi).parameters["allow_implicit_model_setup"]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default is True
        assert "allow_implicit_model_setup" in inspect.signature(ommi.connect).parameters
        assert Ommi(implicit_db.driver, allow_implicit_model_setup=False).allow_implicit_model_setup is False
        with pytest.raises(TypeError):
            Ommi(implicit_db.driver, allow_imlicit_model_setup=False)
