"""Conformance tests: driver errors translated into ``ommi.errors``, failures as results, atomic adds."""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import pickle

import pytest
from ommi import (
    DatabaseError,
    DBQueryResult,
    DBResult,
    DBStatusNoResultException,
    IntegrityError,
    Ommi,
    OmmiError,
    ValidationError,
    errors,
)

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_extra import RelUser, TxCode, TxEntry


async def _codes(db: Ommi) -> list[str]:
    return sorted(c.code for c in await fetch(db.find(TxCode)))


class ErrorTranslationTests(SuiteBase):
    """What a failure looks like: the right class, the driver's error chained, nothing half-written."""

    async def test_errors_duplicate_key_is_integrity_error_chained(self, db: Ommi) -> None:
        """A duplicate key raises IntegrityError whose ``__cause__`` is the driver's own exception."""
        await db.add(TxCode("dup", "first")).or_raise()
        with pytest.raises(IntegrityError) as info:
            await db.add(TxCode("dup", "second")).or_raise()
        cause = info.value.__cause__
        assert cause is not None
        assert not isinstance(cause, OmmiError), "the cause must be the driver's native exception"
        assert isinstance(info.value, DatabaseError)
        assert "TxCode" in str(info.value), "the message should say which table failed"
        assert (await db.find(TxCode.code == "dup").one.or_raise()).label == "first"

    async def test_errors_duplicate_generated_key_is_integrity_error(self, db: Ommi) -> None:
        """Adding a row with an explicit int key that already exists raises IntegrityError."""
        first = await db.add(TxEntry("first")).or_raise()
        with pytest.raises(IntegrityError) as info:
            await db.add(TxEntry("clash", id=first.id)).or_raise()
        assert info.value.__cause__ is not None
        assert await _labels(db) == ["first"]

    async def test_errors_failure_is_a_result_value(self, db: Ommi) -> None:
        """``await db.add(...)`` gives ``DBResult.DBFailure(exception)`` instead of raising."""
        await db.add(TxCode("same")).or_raise()
        result = await db.add(TxCode("same"))
        match result:
            case DBResult.DBFailure(exception):
                assert isinstance(exception, IntegrityError)
            case _:
                pytest.fail(f"expected a DBFailure, got {result!r}")
        assert await db.add(TxCode("same")).or_use("fallback") == "fallback"
        success = await db.add(TxCode("other"))
        assert isinstance(success, DBResult.DBSuccess)
        assert success.value.code == "other"

    async def test_errors_no_result_is_query_failure(self, db: Ommi) -> None:
        """``.one`` with no match gives ``DBQueryFailure(DBStatusNoResultException)``; ``or_use`` a default."""
        result = await db.find(TxEntry.label == "missing").one
        assert isinstance(result, DBQueryResult.DBQueryFailure)
        assert isinstance(result.exception, DBStatusNoResultException)
        with pytest.raises(DBStatusNoResultException):
            await db.find(TxEntry.label == "missing").one.or_raise()
        assert await db.find(TxEntry.label == "missing").one.or_use(None) is None

    async def test_errors_failed_multi_row_add_writes_nothing(self, db: Ommi) -> None:
        """Adding several rows of one model where one clashes stores none of them."""
        await db.add(TxCode("existing")).or_raise()
        result = await db.add(TxCode("new1"), TxCode("existing"), TxCode("new2"))
        assert isinstance(result.exception, IntegrityError)
        assert await _codes(db) == ["existing"]

    async def test_errors_duplicate_within_one_add_writes_nothing(self, db: Ommi) -> None:
        """Two rows with the same key in one ``add`` fail together; neither is stored."""
        with pytest.raises(IntegrityError):
            await db.add(TxCode("twin", "a"), TxCode("twin", "b")).or_raise()
        assert await db.find(TxCode).count.or_raise() == 0

    @requires("transactions")  # add() of several models is all-or-nothing only through a transaction
    async def test_errors_failed_add_leaves_generated_keys_unset(self, db: Ommi) -> None:
        """When an ``add`` fails, instances it was given keep ``None`` keys (nothing was stored for them)."""
        await db.add(TxCode("taken")).or_raise()
        entries = [TxEntry("a"), TxEntry("b")]
        result = await db.add(*entries, TxCode("taken"))
        assert isinstance(result.exception, IntegrityError)
        assert [e.id for e in entries] == [None, None]
        assert await db.find(TxEntry).count.or_raise() == 0
        await db.add(*entries).or_raise()
        assert await _labels(db) == ["a", "b"]

    async def test_errors_update_to_existing_key_is_integrity_error(self, db: Ommi) -> None:
        """Changing a key to one that exists raises IntegrityError and changes no row."""
        await db.add(TxCode("a", "A"), TxCode("b", "B")).or_raise()
        with pytest.raises(IntegrityError):
            await db.find(TxCode.code == "b").update(code="a").or_raise()
        assert sorted((c.code, c.label) for c in await fetch(db.find(TxCode))) == [("a", "A"), ("b", "B")]

    async def test_errors_database_usable_after_failure(self, db: Ommi) -> None:
        """After a refused statement the same ``Ommi`` keeps working (no broken connection state)."""
        await db.add(TxCode("k")).or_raise()
        for _ in range(3):
            assert isinstance((await db.add(TxCode("k"))).exception, IntegrityError)
        await db.add(TxCode("l")).or_raise()
        assert await db.find(TxCode).count.or_raise() == 2
        assert await db.find(TxCode.code == "l").update(label="ok").or_raise() == 1

    async def test_errors_invalid_value_is_validation_error_before_writing(self, db: Ommi) -> None:
        """A value of the wrong type fails with ValidationError (a ValueError) naming the field; nothing stored."""
        result = await db.add(TxEntry("x", amount="lots"))
        exception = result.exception
        assert isinstance(exception, ValidationError)
        assert isinstance(exception, ValueError)
        assert "amount" in str(exception)
        with pytest.raises(ValidationError):
            await db.add(TxEntry(None)).or_raise()
        assert await db.find(TxEntry).count.or_raise() == 0

    async def test_errors_model_method_failure_is_a_result(self, db: Ommi) -> None:
        """``await instance.save()`` with an invalid value gives a failure result, not an exception."""
        entry = await db.add(TxEntry("x")).or_raise()
        entry.amount = "many"  # type: ignore[assignment]  # the wrong type is the point of the test
        result = await entry.save()
        assert isinstance(result, DBResult.DBFailure)
        assert isinstance(result.exception, ValidationError)
        assert (await db.find(TxEntry.id == entry.id).one.or_raise()).amount == 0

    async def test_errors_every_exception_class_pickles(self, db: Ommi) -> None:
        """Every ``ommi.errors`` class survives a pickle round trip with its class and message."""
        for name in errors.__all__:
            cls = getattr(errors, name)
            assert issubclass(cls, OmmiError)
            original = cls(f"{name} happened: ünïcode 'quotes'")
            copy = pickle.loads(pickle.dumps(original))
            assert type(copy) is cls
            assert str(copy) == str(original)
            assert copy.args == original.args

    async def test_errors_raised_driver_errors_pickle(self, db: Ommi) -> None:
        """Exceptions raised by a real failing operation pickle too (pytest-xdist ships them)."""
        await db.add(TxCode("p")).or_raise()
        caught: list[Exception] = []
        for action in (db.add(TxCode("p")), db.find(RelUser.id == 424242).one):
            result = await action
            caught.append(result.exception)
        assert [type(e) for e in caught] == [IntegrityError, DBStatusNoResultException]
        for exception in caught:
            copy = pickle.loads(pickle.dumps(exception))
            assert type(copy) is type(exception)
            assert str(copy) == str(exception)


async def _labels(db: Ommi) -> list[str]:
    return sorted(e.label for e in await fetch(db.find(TxEntry)))
