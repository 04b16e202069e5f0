"""Conformance tests: ``db.upsert(*models, on=...)`` inserts or replaces, atomically per row, all or none per model.

Without ``on`` a row matches the stored row with its key (a generated key
left ``None`` never matches: the row is inserted). With ``on=(Model.email,)``
it matches on a unique constraint, keeps the stored key and gets it set. A
bad ``on``, two rows of a call matching alike and invalid values are refused
before any write; a row breaking another unique constraint fails the call,
which then stores nothing of that model. Concurrent upserts of one key leave
one row; a cancelled upsert leaves every stored row's key on its instance.
"""

# Model classes double as query operands (``Person.age >= 18``): a type checker
# sees comparisons of plain values.
# mypy: disable-error-code="arg-type, union-attr, comparison-overlap, misc"

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from ommi import IntegrityError, Ommi
from ommi.errors import DatabaseClosedError, QueryError, ValidationError

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import Person
from ommi_testkit.suites.models_upsert import UpsAccount, UpsExcluded, UpsPlace, UpsTag, ups_models


def _people(rows: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((p.id, p.name, p.age, p.score, p.active, p.nickname, p.rank) for p in rows)


async def _accounts(db: Ommi) -> list[tuple[Any, ...]]:
    return sorted((a.id, a.email, a.team, a.number, a.note, a.handle) for a in await fetch(db.find(UpsAccount)))


class UpsertTests(SuiteBase):
    """``db.upsert``: insert or replace by key or by a unique constraint, all or none per model."""

    @pytest_asyncio.fixture
    async def ups_db(self, db: Ommi) -> AsyncIterator[Ommi]:
        """``db`` with the upsert suite's tables (``ups_models``) created, dropped again afterwards."""
        await db.remove_models(ups_models)
        await db.use_models(ups_models)
        try:
            yield db
        finally:
            await db.remove_models(ups_models)

    # -- by key -----------------------------------------------------------------------

    @requires("upsert")
    async def test_upsert_inserts_and_sets_generated_keys(self, db: Ommi) -> None:
        """New instances are inserted; their generated keys are set; one instance gives the instance, several a list."""
        alice = Person("Alice", 30)
        assert await db.upsert(alice).or_raise() is alice
        assert isinstance(alice.id, int)
        bob, carol = Person("Bob", 25), Person("Carol", 35)
        assert await db.upsert(bob, carol).or_raise() == [bob, carol]
        assert len({alice.id, bob.id, carol.id}) == 3
        assert _people(await fetch(db.find(Person))) == _people([alice, bob, carol])

    @requires("upsert")
    async def test_upsert_replaces_every_non_key_field(self, db: Ommi) -> None:
        """A row with a stored key replaces every other field of it, ``None`` included; no row is added."""
        await db.add(Person("Alice", 30, score=1.5, active=True, nickname="Al", rank=3, id=1)).or_raise()
        replaced = Person("Alicia", 31, score=2.5, active=False, nickname=None, rank=None, id=1)
        await db.upsert(replaced).or_raise()
        assert _people(await fetch(db.find(Person))) == _people([replaced])

    @requires("upsert")
    async def test_upsert_batch_mixes_new_and_existing_rows(self, db: Ommi) -> None:
        """One call replaces stored rows and inserts new ones (explicit and generated keys); keys stay unique after."""
        await db.add(Person("a", 1, id=1), Person("b", 2, id=2)).or_raise()
        batch = [Person("B", 20, id=2), Person("new", 5), Person("seven", 7, id=7), Person("A", 10, id=1)]
        await db.upsert(*batch).or_raise()
        assert batch[1].id is not None and batch[1].id not in (1, 2, 7)
        assert _people(await fetch(db.find(Person))) == _people(batch)
        later = await db.add(Person("later", 9)).or_raise()
        assert later.id not in (1, 2, 7, batch[1].id), "a generated key must move past the upserted explicit keys"

    @requires("upsert")
    async def test_upsert_many_rows(self, db: Ommi) -> None:
        """Hundreds of rows in one call (beyond one statement's parameters), new then replaced."""
        first = [Person(f"p{i}", i, id=i + 1) for i in range(700)]
        await db.upsert(*first).or_raise()
        again = [Person(f"q{i}", i * 2, id=i + 1) for i in range(700)] + [Person(f"n{i}", i) for i in range(300)]
        await db.upsert(*again).or_raise()
        assert len({p.id for p in again}) == 1000
        assert _people(await fetch(db.find(Person))) == _people(again)

    @requires("upsert", "constraints")
    async def test_upsert_composite_key(self, ups_db: Ommi) -> None:
        """A composite key matches on all its fields: an equal pair is replaced, a pair differing in one is new."""
        await ups_db.add(UpsPlace("eu", 1, "one"), UpsPlace("eu", 2, "two")).or_raise()
        await ups_db.upsert(UpsPlace("eu", 1, "uno", label="x"), UpsPlace("us", 1, "new")).or_raise()
        rows = sorted((p.region, p.number, p.name, p.label) for p in await fetch(ups_db.find(UpsPlace)))
        assert rows == [("eu", 1, "uno", "x"), ("eu", 2, "two", None), ("us", 1, "new", None)]

    @requires("upsert", "constraints")
    async def test_upsert_model_with_only_a_key(self, ups_db: Ommi) -> None:
        """A model whose fields are all key: an upsert of a stored key changes nothing and adds nothing."""
        await ups_db.upsert(UpsTag("a"), UpsTag("b")).or_raise()
        await ups_db.upsert(UpsTag("a"), UpsTag("c")).or_raise()
        assert sorted(t.code for t in await fetch(ups_db.find(UpsTag))) == ["a", "b", "c"]

    # -- by a unique constraint -----------------------------------------------------------

    @requires("upsert", "constraints")
    async def test_upsert_on_unique_replaces_and_keeps_the_stored_key(self, ups_db: Ommi) -> None:
        """``on=(email,)``: the matched row keeps its key, which is set on the instance; the rest is replaced."""
        stored = await ups_db.add(UpsAccount("a@x", "red", 1, note="old", handle="h")).or_raise()
        update = UpsAccount("a@x", "blue", 2, note=None, handle=None)
        assert await ups_db.upsert(update, on=(UpsAccount.email,)).or_raise() is update
        assert update.id == stored.id
        assert await _accounts(ups_db) == [(stored.id, "a@x", "blue", 2, None, None)]

    @requires("upsert", "constraints")
    async def test_upsert_on_unique_inserts_unmatched_and_none_never_matches(self, ups_db: Ommi) -> None:
        """Unmatched rows are inserted with new keys; ``None`` in an ``on`` field never matches (inserted too)."""
        await ups_db.add(UpsAccount("a@x", number=1)).or_raise()
        first, second = UpsAccount("b@x", number=2), UpsAccount("c@x", number=3)
        await ups_db.upsert(first, second, on=(UpsAccount.email,)).or_raise()
        none1, none2 = UpsAccount("d@x", number=4), UpsAccount("e@x", number=5)
        await ups_db.upsert(none1, none2, on=(UpsAccount.handle,)).or_raise()
        keys = [a.id for a in (first, second, none1, none2)]
        assert None not in keys and len(set(keys)) == 4
        assert [row[1] for row in await _accounts(ups_db)] == ["a@x", "b@x", "c@x", "d@x", "e@x"]

    @requires("upsert", "constraints")
    async def test_upsert_on_composite_unique_in_any_order(self, ups_db: Ommi) -> None:
        """``on`` names a composite unique constraint's fields in any order."""
        stored = await ups_db.add(UpsAccount("a@x", "red", 1)).or_raise()
        update = UpsAccount("new@x", "red", 1, note="n")
        await ups_db.upsert(update, on=(UpsAccount.number, UpsAccount.team)).or_raise()
        assert update.id == stored.id
        assert await _accounts(ups_db) == [(stored.id, "new@x", "red", 1, "n", None)]

    @requires("upsert", "constraints")
    async def test_upsert_on_unique_with_another_key_is_refused(self, ups_db: Ommi) -> None:
        """A row matching a stored row under another key: ``IntegrityError``, nothing of the call stored."""
        stored = await ups_db.add(UpsAccount("a@x", number=1)).or_raise()
        before = await _accounts(ups_db)
        wrong = UpsAccount("a@x", number=9, id=(stored.id or 0) + 100)
        with pytest.raises(IntegrityError):
            await ups_db.upsert(UpsAccount("z@x", number=7), wrong, on=(UpsAccount.email,)).or_raise()
        assert await _accounts(ups_db) == before
        same = UpsAccount("a@x", number=9, id=stored.id)
        await ups_db.upsert(same, on=(UpsAccount.email,)).or_raise()
        assert await _accounts(ups_db) == [(stored.id, "a@x", "red", 9, None, None)]

    @requires("upsert", "constraints")
    async def test_upsert_on_unique_with_a_composite_key(self, ups_db: Ommi) -> None:
        """``on=`` with a composite key: the row must carry the matched row's key; a new label is inserted."""
        await ups_db.add(UpsPlace("eu", 1, "one", label="L1")).or_raise()
        await ups_db.upsert(
            UpsPlace("eu", 1, "uno", label="L1"), UpsPlace("us", 2, "two", label="L2"), on=(UpsPlace.label,)
        ).or_raise()
        with pytest.raises(IntegrityError):
            await ups_db.upsert(UpsPlace("eu", 9, "nine", label="L1"), on=(UpsPlace.label,)).or_raise()
        rows = sorted((p.region, p.number, p.name, p.label) for p in await fetch(ups_db.find(UpsPlace)))
        assert rows == [("eu", 1, "uno", "L1"), ("us", 2, "two", "L2")]

    # -- refused before any write ------------------------------------------------------------

    @requires("upsert", "constraints")
    async def test_upsert_bad_on_is_refused_before_any_write(self, ups_db: Ommi) -> None:
        """``on`` must be the key or exactly a unique constraint of the one model given; the error names them."""
        account = UpsAccount("a@x")
        with pytest.raises(QueryError, match=r"\(email\)") as caught:
            await ups_db.upsert(account, on=(UpsAccount.note,)).or_raise()
        assert "(team, number)" in str(caught.value) or "(number, team)" in str(caught.value)
        with pytest.raises(QueryError):
            await ups_db.upsert(account, on=(UpsAccount.team,)).or_raise()  # part of a constraint only
        with pytest.raises(QueryError):
            await ups_db.upsert(account, on=(UpsPlace.label,)).or_raise()  # another model's field
        with pytest.raises(QueryError):
            await ups_db.upsert(account, UpsTag("t"), on=(UpsAccount.email,)).or_raise()
        with pytest.raises(QueryError):
            await ups_db.upsert(account, on=()).or_raise()
        with pytest.raises(QueryError):
            await ups_db.upsert(account, on=("email",)).or_raise()
        with pytest.raises(QueryError):
            await ups_db.upsert(account, on="email").or_raise()
        await ups_db.upsert(account, on=iter([UpsAccount.email])).or_raise()  # any iterable, read once
        await ups_db.find(UpsAccount).delete.or_raise()
        account.id = None
        with pytest.raises(QueryError):
            await ups_db.upsert().or_raise()
        assert await _accounts(ups_db) == []
        assert await ups_db.find(UpsTag).count.or_raise() == 0
        assert account.id is None

    @requires("upsert", "constraints")
    async def test_upsert_same_match_twice_in_one_call_is_refused(self, ups_db: Ommi) -> None:
        """Two rows of one call matching on equal values (key or ``on``) are refused before any write."""
        with pytest.raises(QueryError):
            await ups_db.upsert(UpsPlace("eu", 1, "a"), UpsPlace("eu", 1, "b")).or_raise()
        with pytest.raises(QueryError):
            await ups_db.upsert(
                UpsAccount("a@x", number=1), UpsAccount("a@x", number=2), on=(UpsAccount.email,)
            ).or_raise()
        assert await ups_db.find(UpsPlace).count.or_raise() == 0
        assert await _accounts(ups_db) == []
        # None never matches: two rows with handle None are no duplicates.
        await ups_db.upsert(
            UpsAccount("a@x", number=1), UpsAccount("b@x", number=2), on=(UpsAccount.handle,)
        ).or_raise()
        assert len(await _accounts(ups_db)) == 2

    @requires("upsert")
    async def test_upsert_validation_error_stores_nothing(self, db: Ommi) -> None:
        """A value that does not fit its field is a ``ValidationError`` before any write, as for ``add``."""
        await db.add(Person("a", 1, id=1)).or_raise()
        with pytest.raises(ValidationError):
            await db.upsert(Person("A", 2, id=1), Person("bad", "old")).or_raise()
        assert _people(await fetch(db.find(Person))) == _people([Person("a", 1, id=1)])

    @requires("upsert", "constraints")
    async def test_upsert_conflict_on_another_unique_constraint_stores_nothing(self, ups_db: Ommi) -> None:
        """A row breaking a unique constraint other than the matched one fails the call; nothing of it is kept."""
        await ups_db.add(UpsAccount("a@x", number=1, id=1), UpsAccount("b@x", number=2, id=2)).or_raise()
        before = await _accounts(ups_db)
        new = UpsAccount("c@x", number=3)
        with pytest.raises(IntegrityError):
            # By key: the first row is fine, the second takes a@x from row 1.
            await ups_db.upsert(UpsAccount("B@x", number=20, id=2), new, UpsAccount("a@x", number=30, id=3)).or_raise()
        assert await _accounts(ups_db) == before
        assert new.id is None
        with pytest.raises(IntegrityError):
            # By email: a new row taking (red, 1) from row 1.
            await ups_db.upsert(
                UpsAccount("b@x", number=5), UpsAccount("d@x", number=1), on=(UpsAccount.email,)
            ).or_raise()
        assert await _accounts(ups_db) == before
        with pytest.raises(IntegrityError):
            # By email, unmatched, but its explicit key is stored under another email.
            await ups_db.upsert(UpsAccount("e@x", number=6, id=1), on=(UpsAccount.email,)).or_raise()
        assert await _accounts(ups_db) == before

    @requires("upsert", "constraints", "transactions")
    async def test_upsert_several_models_all_or_none(self, ups_db: Ommi) -> None:
        """Several models in one call (by key): one failing stores nothing of any, as ``add`` does."""
        await ups_db.add(UpsAccount("a@x", number=1, id=1)).or_raise()
        tag = UpsTag("t")
        with pytest.raises(IntegrityError):
            await ups_db.upsert(tag, UpsAccount("a@x", number=2, id=2)).or_raise()
        assert await ups_db.find(UpsTag).count.or_raise() == 0
        await ups_db.upsert(tag, UpsAccount("A@x", number=2, id=1)).or_raise()
        assert await ups_db.find(UpsTag).count.or_raise() == 1
        assert await _accounts(ups_db) == [(1, "A@x", "red", 2, None, None)]

    # -- concurrency, cancellation, transactions ----------------------------------------------

    @requires("upsert")
    async def test_upsert_concurrent_same_key_leaves_one_row(self, db: Ommi) -> None:
        """50 tasks upserting one key (separate calls): one row, holding one of the written values."""
        written = [Person(f"n{i}", i, id=1) for i in range(50)]
        await asyncio.gather(*(db.upsert(p).or_raise() for p in written))  # none fails
        rows = await fetch(db.find(Person))
        assert len(rows) == 1
        assert (rows[0].name, rows[0].age) in {(p.name, p.age) for p in written}

    @requires("upsert", "constraints")
    async def test_upsert_concurrent_same_unique_value_leaves_one_row(self, ups_db: Ommi) -> None:
        """50 tasks upserting one email with ``on=``: one row, every instance told its key, a written note."""
        written = [UpsAccount("same@x", number=i, note=f"n{i}") for i in range(50)]
        await asyncio.gather(*(ups_db.upsert(a, on=(UpsAccount.email,)).or_raise() for a in written))  # none fails
        rows = await _accounts(ups_db)
        assert len(rows) == 1
        assert {a.id for a in written} == {rows[0][0]}
        assert (rows[0][3], rows[0][4]) in {(a.number, a.note) for a in written}

    @requires("upsert")
    async def test_upsert_cancelled_leaves_keys_consistent(self, db: Ommi) -> None:
        """Cancelled at any point, every stored row's key is on its instance (a retry would not store it twice)."""
        for delay in (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01):
            await db.find(Person).delete.or_raise()
            people = [Person(f"p{i}", i) for i in range(200)]
            task = asyncio.ensure_future(db.upsert(*people).or_raise())
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # it may have finished first
                await task
            stored = {(p.id, p.name) for p in await fetch(db.find(Person))}
            keys = {(p.id, p.name) for p in people if p.id is not None}
            assert stored <= keys, f"rows stored without their key on the instance (delay {delay})"
            assert stored in (set(), keys), f"part of the upsert was kept (delay {delay})"

    @requires("upsert")
    async def test_upsert_cancelled_is_all_or_none(self, db: Ommi) -> None:
        """Cancelled at any point, an upsert of explicit keys leaves the rows as before or as after it, never half."""
        for delay in (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01):
            await db.find(Person).delete.or_raise()
            before = [Person(f"old{i}", i, id=i + 1) for i in range(150)]
            await db.add(*before).or_raise()
            after = [Person(f"new{i}", i, id=i + 1) for i in range(300)]
            task = asyncio.ensure_future(db.upsert(*after).or_raise())
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            stored = _people(await fetch(db.find(Person)))
            assert stored in (_people(before), _people(after)), f"a part of the upsert was kept (delay {delay})"

    @requires("upsert", "transactions")
    async def test_upsert_tasks_sharing_a_transaction(self, db: Ommi) -> None:
        """Tasks upserting through one transaction take turns; all of it commits together."""
        await db.add(Person("a", 1, id=1)).or_raise()
        people = [Person(f"p{i}", i, id=i % 5 + 1) for i in range(20)] + [Person(f"n{i}", i) for i in range(10)]
        async with db.transaction() as tx:
            await asyncio.gather(*(tx.upsert(p).or_raise() for p in people))
        rows = await fetch(db.find(Person))
        assert len(rows) == 15
        assert all(p.id is not None for p in people)
        by_id = {p.id: p.name for p in rows}
        assert all(by_id[k] in {p.name for p in people if p.id == k} for k in range(1, 6))

    @requires("upsert", "constraints", "transactions")
    async def test_upsert_refused_inside_a_transaction_keeps_nothing(self, ups_db: Ommi) -> None:
        """Refused for a row under another key inside a transaction: none of the call's rows stay in it."""
        stored = await ups_db.add(UpsAccount("a@x", number=1)).or_raise()
        before = await _accounts(ups_db)
        async with ups_db.transaction() as tx:
            with pytest.raises(IntegrityError):
                await tx.upsert(
                    UpsAccount("b@x", number=2, id=(stored.id or 0) + 50),
                    UpsAccount("a@x", number=3, id=(stored.id or 0) + 100),
                    on=(UpsAccount.email,),
                ).or_raise()
            assert await tx.find(UpsAccount).count.or_raise() == 1
        assert await _accounts(ups_db) == before

    @requires("upsert", "transactions")
    async def test_upsert_in_a_transaction_rolled_back(self, db: Ommi) -> None:
        """Inside a transaction an upsert is seen there; rolled back, nothing is kept and generated keys are reset."""
        await db.add(Person("a", 1, id=1)).or_raise()
        new = Person("new", 2)
        async with db.transaction() as tx:
            await tx.upsert(Person("A", 10, id=1), new).or_raise()
            assert _people(await fetch(tx.find(Person))) == _people([Person("A", 10, id=1), new])
            await tx.rollback()
        assert new.id is None
        assert _people(await fetch(db.find(Person))) == _people([Person("a", 1, id=1)])
        async with db.transaction() as tx:
            await tx.upsert(Person("A", 10, id=1), new).or_raise()
        assert new.id is not None
        assert _people(await fetch(db.find(Person))) == _people([Person("A", 10, id=1), new])

    # -- hostile names, closed database ----------------------------------------------------------

    @requires("upsert", "constraints")
    async def test_upsert_names_colliding_with_sql(self, ups_db: Ommi) -> None:
        """A table and a column named ``excluded`` (what ``ON CONFLICT`` calls the new row) upsert like any other."""
        first = await ups_db.upsert(UpsExcluded("a", 1), UpsExcluded("b", 2)).or_raise()
        again = UpsExcluded("a", 10)
        await ups_db.upsert(again, UpsExcluded("c", 3), on=(UpsExcluded.excluded,)).or_raise()
        assert again.id == first[0].id
        await ups_db.upsert(UpsExcluded("b", 20, id=first[1].id)).or_raise()
        with pytest.raises(IntegrityError):
            await ups_db.upsert(
                UpsExcluded("b", 30, id=(first[1].id or 0) + 100), on=(UpsExcluded.excluded,)
            ).or_raise()
        rows = sorted((e.excluded, e.value) for e in await fetch(ups_db.find(UpsExcluded)))
        assert rows == [("a", 10), ("b", 20), ("c", 3)]

    @requires("upsert")
    async def test_upsert_on_a_closed_database_is_refused(self, db: Ommi) -> None:
        """After ``close()`` an upsert raises ``DatabaseClosedError`` and writes nothing."""
        await db.close()
        person = Person("late", 1)
        with pytest.raises(DatabaseClosedError):
            await db.upsert(person).or_raise()
        assert person.id is None
        await db.open()  # for the fixture's teardown
