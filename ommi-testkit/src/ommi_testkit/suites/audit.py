"""Conformance tests: one regression test per defect found by the audit of Ommi 0.2.2.

``test_audit_NN_*`` follow the numbered audit list of the foundation issue;
``test_audit_also_*`` cover the "also seen there" list. Items 8-10 concern
driver internals (event-loop blocking, pooling, cursor reuse): each gets the
most portable check the public API allows.
"""

# Model classes double as query operands (``RelUser.name == "x"``), carry lazy
# relations that are ClassVars at runtime, and gain ``save()`` & co. from the
# decorator: a type checker cannot see any of that without a plugin.
# mypy: disable-error-code="misc, attr-defined, arg-type, call-arg, valid-type, union-attr, operator, type-var"

from __future__ import annotations

import asyncio
import copy
import datetime
import inspect
import math
import uuid
from collections.abc import Callable
from typing import Any

import ommi
import pytest
from ommi import LazyLoadError, Ommi, QueryError, when
from ommi.drivers import Driver

from ommi_testkit.suites._support import fetch, implicit_models, in_empty_context, names, seed_blog
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models import testkit_models
from ommi_testkit.suites.models_extra import (
    AuditEvent,
    AuditNote,
    AuditTicket,
    RelPost,
    RelUser,
    TxCode,
    TxEntry,
)


async def _entries(db: Ommi, count: int) -> None:
    """Store ``count`` entries with amounts 0..count-1 (labels ``e00``...)."""
    await db.add(*(TxEntry(f"e{n:02}", n) for n in range(count))).or_raise()


async def _amounts(query: Any) -> list[int]:
    return [e.amount for e in await fetch(query)]


def _class_state(cls: type) -> dict[tuple[str, str], Any]:
    """A deep copy of the plain data attributes of ``cls`` and its bases (not methods)."""
    state: dict[tuple[str, str], Any] = {}
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if callable(value) or isinstance(value, (classmethod, staticmethod, property)) or name.startswith("__"):
                continue
            try:
                state[(klass.__qualname__, name)] = copy.deepcopy(value)
            except Exception:  # not copyable: compare identity instead
                state[(klass.__qualname__, name)] = id(value)
    return state


class AuditRegressionTests(SuiteBase):
    """Regressions of the Ommi 0.2.2 audit, each named after its item."""

    @requires("transactions")
    async def test_audit_01_transaction_exit_commits(self, db: Ommi, second_db: Ommi) -> None:
        """A successful ``async with db.transaction()`` block persists its writes (commit awaited on exit)."""
        async with db.transaction() as t:
            await t.add(TxEntry("committed")).or_raise()
            await t.find(TxEntry.label == "committed").update(amount=3).or_raise()
        assert (await second_db.find(TxEntry).one.or_raise()).amount == 3
        assert await db.find(TxEntry).count.or_raise() == 1

    async def test_audit_02_connect_accepts_memory_string(self, db: Ommi, driver_factory: Callable[[], Driver]) -> None:
        """``connect`` accepts string settings and never mutates class-level defaults."""
        cls = type(db.driver)
        before = _class_state(cls)
        schemes = [s for info in ommi.drivers() if info.name == db.driver.name for s in info.schemes]
        built = [cls.connect(), cls.connect({}), driver_factory()]
        if schemes:
            # The bare URL of the driver's own scheme: "sqlite://" is the in-memory database.
            built.append(cls.connect(f"{schemes[0]}://"))
        assert all(type(driver) is cls for driver in built)
        assert len({id(driver) for driver in built}) == len(built)
        assert _class_state(cls) == before, "connect() changed class attributes"
        for driver in built:
            await driver.close()  # never opened: closing must still be harmless
        await db.add(TxEntry("still fine")).or_raise()
        assert await db.find(TxEntry).count.or_raise() == 1

    async def test_audit_03_limit_page_is_a_page_number(self, db: Ommi) -> None:
        """``limit(n, page)`` skips ``page`` pages of ``n`` rows (0-based), not ``page`` rows."""
        await _entries(db, 23)
        query = db.find(TxEntry).sort(TxEntry.amount)
        assert await _amounts(query.limit(5)) == [0, 1, 2, 3, 4]
        assert await _amounts(query.limit(5, 1)) == [5, 6, 7, 8, 9]
        assert await _amounts(query.limit(5, 2)) == [10, 11, 12, 13, 14]
        assert await _amounts(query.limit(5, 4)) == [20, 21, 22]
        assert await _amounts(query.limit(5, 5)) == []
        assert await _amounts(query.limit(1, 7)) == [7]
        assert await query.limit(5, 4).count.or_raise() == 3

    async def test_audit_04_implicit_setup_for_every_entry_point(self, fresh_db: Ommi, second_db: Ommi) -> None:
        """``.one``, ``.count``, ``.delete``, ``.update`` and ``.or_raise()`` each set up the models first."""
        db = fresh_db
        ImplicitOwner, _ = implicit_models()
        entry_points: dict[str, Callable[[], Any]] = {
            "one": lambda: db.find(ImplicitOwner.name == "x").one.or_use("missing"),
            "one()": lambda: db.find(ImplicitOwner.name == "x").one().or_use("missing"),
            "count": lambda: db.find(ImplicitOwner).count.or_raise(),
            "delete": lambda: db.find(ImplicitOwner.name == "x").delete.or_raise(),
            "delete()": lambda: db.find(ImplicitOwner).delete().or_raise(),
            "update": lambda: db.find(ImplicitOwner.name == "x").update(name="y").or_raise(),
            "find().or_raise()": lambda: db.find(ImplicitOwner).or_raise(),
            "all.or_raise()": lambda: db.find(ImplicitOwner).all.or_raise(),
        }
        for label, run in entry_points.items():
            await db.remove_models()  # back to an empty database: this is the first operation
            value = await run()
            if label.startswith("one"):
                assert value == "missing", label
            # second_db never sets anything up: this fails if the table was not created.
            assert await second_db.add(ImplicitOwner(label)).or_raise() is not None, label
            assert await second_db.find(ImplicitOwner).count.or_raise() == 1, label

    async def test_audit_05_implicit_setup_keyword_spelling(
        self, db: Ommi, driver_factory: Callable[[], Driver]
    ) -> None:
        """The keyword is ``allow_implicit_model_setup``; the old misspelling is rejected."""
        parameters = inspect.signature(Ommi).parameters
        assert "allow_implicit_model_setup" in parameters
        assert "allow_imlicit_model_setup" not in parameters
        assert "allow_implicit_model_setup" in inspect.signature(ommi.connect).parameters
        driver = driver_factory()
        try:
            assert Ommi(driver, allow_implicit_model_setup=False).allow_implicit_model_setup is False
            assert Ommi(driver).allow_implicit_model_setup is True
            with pytest.raises(TypeError):
                Ommi(driver, allow_imlicit_model_setup=False)
        finally:
            await driver.close()

    async def test_audit_06_use_models_keeps_data(
        self, db: Ommi, second_db: Ommi, driver_factory: Callable[[], Driver]
    ) -> None:
        """``use_models`` at every start-up (same or new ``Ommi``) never drops or empties a table."""
        await _entries(db, 4)
        await db.use_models(testkit_models)
        await db.use_models(testkit_models)
        await second_db.use_models(testkit_models)
        async with Ommi(driver_factory()) as restarted:
            await restarted.use_models(testkit_models)
            assert await restarted.find(TxEntry).count.or_raise() == 4
        assert await db.find(TxEntry).count.or_raise() == 4

    async def test_audit_07_model_save_delete_reload(self, db: Ommi) -> None:
        """``save``, ``reload`` and ``delete`` on a model instance work and return awaitable results."""
        entry = TxEntry("new")
        await entry.save().or_raise()
        assert entry.id is not None
        entry.amount = 12
        assert (await entry.save()).value is entry
        assert (await db.find(TxEntry.id == entry.id).one.or_raise()).amount == 12
        entry.amount = -1
        await entry.reload().or_raise()
        assert entry.amount == 12
        assert await entry.delete().or_raise() == 1
        assert await db.find(TxEntry).count.or_raise() == 0

    async def test_audit_08_event_loop_stays_responsive(self, db: Ommi) -> None:
        """While 20,000 rows stream, another task keeps running (the event loop never blocks for the whole read)."""
        total, batch = 20_000, 500
        await db.add(*(TxEntry("r", n) for n in range(total))).or_raise()
        ticks = 0
        done = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        start_ticks = ticks
        seen = 0
        async for _ in db.find(TxEntry).all(batch_size=batch):
            seen += 1
        streamed_ticks = ticks - start_ticks
        done.set()
        await beating
        assert seen == total
        # At least one tick per two batches: the read yields to the loop as it goes.
        assert streamed_ticks >= total // batch // 2, f"heartbeat ran {streamed_ticks} times during the read"

    async def test_audit_09_concurrent_tasks_share_one_ommi(self, db: Ommi) -> None:
        """Fifty tasks writing and reading through one ``Ommi`` at once all succeed."""

        async def task(number: int) -> int:
            entry = await db.add(TxEntry(f"t{number}", number)).or_raise()
            found = await db.find(TxEntry.id == entry.id).one.or_raise()
            assert found.amount == number
            await db.find(TxEntry.id == entry.id).update(amount=number * 10).or_raise()
            return await db.find(TxEntry).count.or_raise()

        counts = await asyncio.wait_for(asyncio.gather(*(task(n) for n in range(50))), timeout=120)
        assert all(1 <= c <= 50 for c in counts)
        assert sorted(await _amounts(db.find(TxEntry))) == [n * 10 for n in range(50)]

    async def test_audit_10_repeated_statements_and_early_closed_cursors(self, db: Ommi) -> None:
        """The same statements run hundreds of times stay correct; streams closed early free their cursors."""
        await _entries(db, 20)
        for n in range(200):
            found = await db.find(TxEntry.amount == n % 20).one.or_raise()
            assert found.label == f"e{n % 20:02}"
        # Forty pairs of streams, each read once then closed early: a cursor or
        # connection not released on close would exhaust any pool long before the end.
        for _ in range(40):
            pair = [await db.find(TxEntry).sort(TxEntry.amount).all(batch_size=1).or_raise() for _ in range(2)]
            assert [(await anext(iterator)).amount for iterator in pair] == [0, 0]
            for iterator in pair:
                await iterator.aclose()
        async with await db.find(TxEntry.amount >= 10).all(batch_size=2).or_raise() as partial:
            assert (await anext(partial)).amount >= 10
        await db.add(TxEntry("after", 100)).or_raise()
        assert await db.find(TxEntry).count.or_raise() == 21
        assert await db.find(TxEntry.amount < 5).delete.or_raise() == 5

    async def test_audit_11_batch_size_configurable(self, db: Ommi) -> None:
        """Batches follow the requested size (per query and per driver), not a hard-coded 100."""
        assert isinstance(db.driver.default_batch_size, int)
        assert db.driver.default_batch_size >= 1
        await _entries(db, 250)
        query = db.find(TxEntry).sort(TxEntry.amount).query()
        for size in (1, 7, 250):
            sizes = [len(rows) async for rows in db.driver.fetch(query, size)]
            assert sum(sizes) == 250
            assert max(sizes) <= size
            assert len([s for s in sizes if s]) == math.ceil(250 / size), (size, sizes)
        expected = list(range(250))
        for size in (1, 3, 101, 1000):
            assert await _amounts(db.find(TxEntry).sort(TxEntry.amount).all(batch_size=size)) == expected
        for invalid in (0, -1, True, "2"):
            with pytest.raises(QueryError):
                await db.find(TxEntry).all(batch_size=invalid).or_raise()

    # -- also seen in 0.2.2 ----------------------------------------------------------

    async def test_audit_also_and_or_precedence(self, db: Ommi) -> None:
        """``.And`` / ``.Or`` chain left to right; ``when(A, when(B).Or(C))`` nests."""
        await _entries(db, 10)
        a, b, c = TxEntry.amount < 3, TxEntry.amount > 7, TxEntry.label != "e00"
        zero, not_nine = TxEntry.amount == 0, TxEntry.amount != 9
        # (a or b) and c -- not a or (b and c), which would keep 0
        assert sorted(await _amounts(db.find(when(a).Or(b).And(c)))) == [1, 2, 8, 9]
        # (a and c) or b -- not a and (c or b), which would drop 8 and 9
        assert sorted(await _amounts(db.find(when(a).And(c).Or(b)))) == [1, 2, 8, 9]
        assert sorted(await _amounts(db.find(when(zero).Or(b).And(c)))) == [8, 9]
        # not_nine and (zero or b) -- not (not_nine and zero) or b, which would keep 9
        assert sorted(await _amounts(db.find(when(not_nine, when(zero).Or(b))))) == [0, 8]
        # b or (zero and c): Or's arguments are ANDed together
        assert sorted(await _amounts(db.find(when(b).Or(zero, c)))) == [8, 9]
        assert sorted(await _amounts(db.find(when(zero).Or(when(b).And(c))))) == [0, 8, 9]

    async def test_audit_also_or_is_not_and(self, db: Ommi) -> None:
        """``Or`` returns the union of rows matching either side, not their intersection."""
        await _entries(db, 10)
        assert sorted(await _amounts(db.find(when(TxEntry.amount == 1).Or(TxEntry.amount == 8)))) == [1, 8]
        assert await db.find(when(TxEntry.label == "e03").Or(TxEntry.amount == 5)).count.or_raise() == 2

    async def test_audit_also_sort_is_honoured(self, db: Ommi) -> None:
        """``sort`` orders results, by several keys and in both directions."""
        await db.add(TxEntry("b", 2), TxEntry("a", 2), TxEntry("c", 1), TxEntry("a", 3)).or_raise()
        desc = await fetch(db.find(TxEntry).sort(TxEntry.amount.desc))
        assert [e.amount for e in desc] == [3, 2, 2, 1]
        both = await fetch(db.find(TxEntry).sort(TxEntry.label.asc, TxEntry.amount.desc))
        assert [(e.label, e.amount) for e in both] == [("a", 3), ("a", 2), ("b", 2), ("c", 1)]
        mixed = await fetch(db.find(TxEntry).sort(TxEntry.amount, TxEntry.label.desc))
        assert [(e.label, e.amount) for e in mixed] == [("c", 1), ("b", 2), ("a", 2), ("a", 3)]

    async def test_audit_also_none_is_not_the_text_null(self, db: Ommi) -> None:
        """``None`` is stored as a missing value, distinct from the text ``"NULL"`` (and ``"None"``)."""
        await db.add(AuditNote(None), AuditNote("NULL"), AuditNote("None"), AuditNote("null")).or_raise()
        assert [n.text for n in await fetch(db.find(AuditNote.text == None))] == [None]  # noqa: E711
        assert [n.text for n in await fetch(db.find(AuditNote.text == "NULL"))] == ["NULL"]
        assert await db.find(AuditNote.text != None).count.or_raise() == 3  # noqa: E711
        assert sorted(n.text or "<none>" for n in await fetch(db.find(AuditNote))) == ["<none>", "NULL", "None", "null"]
        await db.find(AuditNote.text == "null").update(text=None).or_raise()
        assert await db.find(AuditNote.text == None).count.or_raise() == 2  # noqa: E711

    async def test_audit_also_find_model_delete_is_valid(self, db: Ommi) -> None:
        """``db.find(Model).delete()`` (no condition) deletes every row of that model only."""
        await _entries(db, 6)
        await db.add(TxCode("stays")).or_raise()
        assert await db.find(TxEntry).delete().or_raise() == 6
        assert await db.find(TxEntry).count.or_raise() == 0
        assert await db.find(TxEntry).delete.or_raise() == 0
        assert await db.find(TxCode).count.or_raise() == 1

    @requires("related_conditions")
    async def test_audit_also_joins_return_no_duplicates(self, db: Ommi) -> None:
        """A condition matching several related rows returns each target once (find, count, sort, limit)."""
        blog = await seed_blog(db)
        await db.add(*(RelPost(f"x{n}", blog.alice.id) for n in range(5))).or_raise()
        assert await names(db.find(RelUser, RelPost.title.startswith("x"))) == ["Alice", "Carol"]
        assert await db.find(RelUser, RelPost.title.startswith("x")).count.or_raise() == 2
        page = await fetch(db.find(RelUser, RelPost.title.startswith("x")).sort(RelUser.name).limit(2))
        assert [u.name for u in page] == ["Alice", "Carol"]

    async def test_audit_also_non_integer_keys_are_kept(self, db: Ommi) -> None:
        """Keys chosen by the application (str, UUID, explicit int) are stored as given, never replaced."""
        code = await db.add(TxCode("my-code", "x")).or_raise()
        assert code.code == "my-code"
        ticket_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
        ticket = await db.add(AuditTicket(ticket_id, "t")).or_raise()
        assert ticket.ticket == ticket_id
        explicit = await db.add(TxEntry("explicit", id=1000)).or_raise()
        assert explicit.id == 1000
        assert (await db.find(TxCode).one.or_raise()).code == "my-code"
        assert (await db.find(AuditTicket).one.or_raise()).ticket == ticket_id
        assert (await db.find(TxEntry.id == 1000).one.or_raise()).label == "explicit"

    async def test_audit_also_datetimes_come_back_as_datetimes(self, db: Ommi) -> None:
        """Datetimes and dates come back as ``datetime`` / ``date`` objects, equal to what was stored."""
        moment = datetime.datetime(2024, 2, 29, 23, 59, 58)
        day = datetime.date(1999, 12, 31)
        event = await db.add(AuditEvent(moment, day)).or_raise()
        loaded = await db.find(AuditEvent.id == event.id).one.or_raise()
        assert type(loaded.at) is datetime.datetime
        assert type(loaded.day) is datetime.date
        assert (loaded.at, loaded.day) == (moment, day)
        assert loaded.at.tzinfo is None
        assert await db.find(AuditEvent.at > datetime.datetime(2024, 1, 1)).count.or_raise() == 1
        event.at = datetime.datetime(1970, 1, 1)
        await event.reload().or_raise()
        assert type(event.at) is datetime.datetime
        assert event.at == moment

    async def test_audit_also_lazy_failures_are_not_silent(self, db: Ommi) -> None:
        """A lazy load that cannot run raises LazyLoadError with the cause chained."""
        blog = await seed_blog(db)

        async def load() -> Any:
            return await blog.alice_x.author

        with pytest.raises(LazyLoadError) as info:
            await in_empty_context(load)
        assert info.value.__cause__ is not None

    async def test_audit_also_one_does_not_mutate_the_query(self, db: Ommi) -> None:
        """Running ``.one`` (or ``limit``) on a query leaves the query itself unchanged."""
        await _entries(db, 5)
        query = db.find(TxEntry).sort(TxEntry.amount.desc)
        assert (await query.one.or_raise()).amount == 4
        assert await _amounts(query) == [4, 3, 2, 1, 0]
        assert await query.count.or_raise() == 5
        limited = query.limit(2)
        assert await _amounts(limited) == [4, 3]
        assert await _amounts(query) == [4, 3, 2, 1, 0]
        assert query.query().limit is None
        assert (await query.one()).value.amount == 4
        assert await query.count.or_raise() == 5
