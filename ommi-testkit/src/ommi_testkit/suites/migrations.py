"""Conformance tests: ``ommi.migrations`` on a driver declaring the ``migrations`` capability.

Each test writes migration files with :func:`ommi.migrations.make` from
versions of the same tables (:mod:`ommi_testkit.suites.models_migrations`)
into a temporary directory, applies them, and checks the rows and the
schema: after each migration the models of that version pass ``use_models``
with no drift. The suite drops its tables and the ``ommi_migrations`` history
before and after each test.

What a driver may mark: ``test_migrations_failed_run_changes_nothing``,
``test_migrations_cancelled_apply_leaves_a_boundary`` and
``test_migrations_close_racing_apply_leaves_a_boundary`` need transactional
DDL; a driver that resumes instead (MongoDB) lists them in ``impossible`` and
has its resumption tested by its own tests.
``test_migrations_old_writers_get_the_default`` needs column defaults (the
rule of :mod:`ommi.sql.migrate`); a database without them lists it with what
reading such a row does instead.
"""

# Model classes double as query operands (``AuthorV2.name == "x"``): a type
# checker sees a comparison of plain values.
# mypy: disable-error-code="arg-type, union-attr"

from __future__ import annotations

import asyncio
import contextlib
import decimal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from ommi import IntegrityError, Ommi, migrations
from ommi.drivers import Driver
from ommi.errors import MigrationError, MigrationTimeoutError, OmmiError, SchemaMismatchError
from ommi.migrations.history import history_models

from ommi_testkit.suites._support import fetch
from ommi_testkit.suites.base import SuiteBase, requires
from ommi_testkit.suites.models_migrations import (
    MIGRATION_COLLECTIONS,
    AuthorRenamed,
    AuthorV1,
    AuthorV2,
    AuthorV3,
    BookV1,
    BookV2,
    BookV3,
    MeasureV1,
    MeasureV2,
    OwnerV1,
    PetV1,
    PetV2,
    ReadingV1,
    ReadingV2,
    ReviewV2,
    mig_hostile,
    mig_ref_v1,
    mig_ref_v2,
    mig_renamed,
    mig_types_v1,
    mig_types_v2,
    mig_v1,
    mig_v2,
    mig_v3,
)


async def _drop_everything(db: Ommi) -> None:
    for collection in reversed(MIGRATION_COLLECTIONS):
        await db.remove_models(collection)
    await db.remove_models(history_models)


def _write(directory: Path, name: str, text: str) -> Path:
    """A hand-written migration file (the tests' data steps and hostile files)."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _ids(results: list[migrations.MigrationResult]) -> list[str]:
    return [r.id for r in results]


_MARKER_STEP = """
from ommi.migrations import AddField, FieldSpec

id = "0002_marker"
parent = "0001_initial"

operations = [AddField("mig_author", FieldSpec("marked", "bool", default=False))]


async def run(db):
    Author = db.models["mig_author"]
    await db.add(Author(name="marker", marked=True)).or_raise()
"""


class MigrationTests(SuiteBase):
    """Migration files written from model versions, applied in order, rows kept, each applied once."""

    @pytest_asyncio.fixture
    async def mig_db(self, fresh_db: Ommi) -> AsyncIterator[Ommi]:
        """``fresh_db`` without the suite's tables and history, before and after the test."""
        await _drop_everything(fresh_db)
        try:
            yield fresh_db
        finally:
            await _drop_everything(fresh_db)

    @pytest.fixture
    def mig_dir(self, tmp_path: Path) -> Path:
        """An empty migrations directory (``make`` creates it)."""
        return tmp_path / "migrations"

    # -- the loop ---------------------------------------------------------------------------

    @requires("migrations")
    async def test_migrations_versions_keep_rows(self, mig_db: Ommi, mig_dir: Path) -> None:
        """v1 -> v2 (a default, an optional field, a model) -> v3 (a field removed): rows stay, drift-free each time."""
        db = mig_db
        first = migrations.make(mig_v1, mig_dir)
        assert first is not None and first.name == "0001_initial.py"
        assert _ids(await migrations.apply(db, mig_dir)) == ["0001_initial"]
        ada = await db.add(AuthorV1("Ada", nick="countess")).or_raise()
        await db.add(BookV1("Notes", ada.id)).or_raise()
        await db.use_models(mig_v1)

        second = migrations.make(mig_v2, mig_dir)
        assert second is not None and second.name.startswith("0002_")
        assert _ids(await migrations.apply(db, mig_dir)) == [second.stem]
        await db.use_models(mig_v2)
        (author,) = await fetch(db.find(AuthorV2))
        assert (author.name, author.nick, author.country, author.bio) == ("Ada", "countess", "unknown", None)
        (book,) = await fetch(db.find(BookV2))
        await db.add(ReviewV2(book.id, 5)).or_raise()
        await db.add(AuthorV2("Grace", country="US")).or_raise()

        with pytest.raises(MigrationError) as refused:
            migrations.make(mig_v3, mig_dir)
        assert "mig_author.nick" in str(refused.value) and "allow_destructive" in str(refused.value)
        assert sorted(p.name for p in mig_dir.glob("*.py")) == [first.name, second.name]  # noqa: ASYNC240
        third = migrations.make(mig_v3, mig_dir, allow_destructive=True)
        assert third is not None
        assert _ids(await migrations.apply(db, mig_dir)) == [third.stem]
        await db.use_models(mig_v3)
        assert sorted((a.name, a.country) for a in await fetch(db.find(AuthorV3))) == [
            ("Ada", "unknown"),
            ("Grace", "US"),
        ]
        assert [b.title for b in await fetch(db.find(BookV3))] == ["Notes"]

        assert await migrations.apply(db, mig_dir) == []
        assert migrations.make(mig_v3, mig_dir) is None
        statuses = await migrations.status(db, mig_dir)
        assert [(s.id, s.state) for s in statuses] == [
            (first.stem, "applied"),
            (second.stem, "applied"),
            (third.stem, "applied"),
        ]

    @requires("migrations")
    async def test_migrations_status_lists_pending_then_applied(self, mig_db: Ommi, mig_dir: Path) -> None:
        """``status`` reads without writing: pending before ``apply`` (even without a history table), applied after."""
        migrations.make(mig_v1, mig_dir)
        migrations.make(mig_v2, mig_dir)
        before = await migrations.status(mig_db, mig_dir)
        assert [s.state for s in before] == ["pending", "pending"]
        assert all(s.applied_at is None for s in before)
        await migrations.apply(mig_db, mig_dir, to="0001_initial")
        middle = await migrations.status(mig_db, mig_dir)
        assert [s.state for s in middle] == ["applied", "pending"]
        assert middle[0].applied_at is not None

    @requires("migrations")
    async def test_migrations_dry_run_changes_nothing(self, mig_db: Ommi, mig_dir: Path) -> None:
        """``dry_run`` returns the statements of each pending migration and applies none of them."""
        migrations.make(mig_v1, mig_dir)
        planned = await migrations.apply(mig_db, mig_dir, dry_run=True)
        assert _ids(planned) == ["0001_initial"]
        assert planned[0].statements
        assert [s.state for s in await migrations.status(mig_db, mig_dir)] == ["pending"]
        assert _ids(await migrations.apply(mig_db, mig_dir)) == ["0001_initial"]

    @requires("migrations")
    async def test_migrations_concurrent_apply_applies_once(
        self, mig_db: Ommi, mig_dir: Path, driver_factory: Callable[[], Driver]
    ) -> None:
        """Two databases applying the same files at once apply each migration exactly once (the migration lock)."""
        migrations.make(mig_v1, mig_dir)
        _write(mig_dir, "0002_marker.py", _MARKER_STEP)
        others = [Ommi(driver_factory(), allow_implicit_model_setup=False) for _ in range(2)]
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(migrations.apply(other, mig_dir) for other in others)), timeout=120
            )
        finally:
            for other in others:
                await other.close()
        applied = sorted(id_ for result in results for id_ in _ids(result))
        assert applied == ["0001_initial", "0002_marker"]
        Author = migrations.replay(migrations.load(mig_dir))[-1].model_classes()["mig_author"]
        assert await mig_db.find(Author, Author.name == "marker").count.or_raise() == 1
        assert [s.state for s in await migrations.status(mig_db, mig_dir)] == ["applied", "applied"]

    @requires("migrations")
    async def test_migrations_old_writers_get_the_default(
        self, mig_db: Ommi, mig_dir: Path, driver_factory: Callable[[], Driver]
    ) -> None:
        """Code still on the previous models (a rolling deploy) keeps writing after a field with a default is added.

        The default is the column's DEFAULT: the old writer's rows get it, the
        new models read them with no drift; its updates and deletes work too. ``SetDefault`` changes what later
        old-model rows get; ``down`` removes the field and the old models fit again.
        """
        migrations.make(mig_v1, mig_dir)
        await migrations.apply(mig_db, mig_dir)
        second = migrations.make(mig_v2, mig_dir)
        assert second is not None
        async with Ommi(driver_factory(), allow_implicit_model_setup=False) as old:
            await old.use_models(mig_v1)  # deployed before the migration
            await migrations.apply(mig_db, mig_dir)
            written = await old.add(AuthorV1("Old writer")).or_raise()
            doomed = await old.add(AuthorV1("Deleted by the old models")).or_raise()
            await old.find(AuthorV1, AuthorV1.id == written.id).update(nick="still here").or_raise()
            await old.find(AuthorV1, AuthorV1.id == doomed.id).delete.or_raise()
            await mig_db.use_models(mig_v2)
            (author,) = await fetch(mig_db.find(AuthorV2, AuthorV2.id == written.id))
            assert (author.name, author.nick, author.country, author.bio) == (
                "Old writer",
                "still here",
                "unknown",
                None,
            )
            assert await mig_db.find(AuthorV2, AuthorV2.country == "unknown").count.or_raise() == 1
            _write(
                mig_dir,
                "0003_default.py",
                "from ommi.migrations import SetDefault\n"
                f'id = "0003_default"\nparent = "{second.stem}"\n'
                'operations = [SetDefault("mig_author", "country", "unknown", "n/a")]\n',
            )
            await migrations.apply(mig_db, mig_dir)
            later = await old.add(AuthorV1("Later writer")).or_raise()
            (author,) = await fetch(mig_db.find(AuthorV2, AuthorV2.id == later.id))
            assert author.country == "n/a"
            await migrations.down(mig_db, mig_dir, to="0001_initial")
            await old.use_models(mig_v1)
            assert sorted(a.name for a in await fetch(old.find(AuthorV1))) == ["Later writer", "Old writer"]

    @requires("migrations")
    async def test_migrations_lock_timeout_bounds_the_wait(
        self, mig_db: Ommi, mig_dir: Path, driver_factory: Callable[[], Driver]
    ) -> None:
        """While another run holds the migration lock, ``apply`` waits ``lock_timeout``, then fails having done nothing.

        A ``lock_timeout`` that is not a finite number above 0 is refused first.
        """
        migrations.make(mig_v1, mig_dir)
        await migrations.apply(mig_db, mig_dir)
        migrations.make(mig_v2, mig_dir)
        with pytest.raises(OmmiError, match="lock_timeout"):
            await migrations.apply(mig_db, mig_dir, lock_timeout=0)
        async with Ommi(driver_factory(), allow_implicit_model_setup=False) as other:
            holder = await other.driver.begin_migration()
            try:
                started = time.monotonic()
                with pytest.raises(MigrationTimeoutError, match=r"lock_timeout=0\.5 s") as timed_out:
                    await migrations.apply(mig_db, mig_dir, lock_timeout=0.5)
                assert isinstance(timed_out.value, TimeoutError) and isinstance(timed_out.value, MigrationError)
                assert time.monotonic() - started < 30
            finally:
                await holder.rollback()
        assert [s.state for s in await migrations.status(mig_db, mig_dir)] == ["applied", "pending"]
        assert len(await migrations.apply(mig_db, mig_dir, lock_timeout=30)) == 1
        await mig_db.use_models(mig_v2)

    async def _at_a_boundary(self, db: Ommi, directory: Path) -> bool:
        """Whether the history and the stored tables agree (v1 or v2 exactly); ``True`` when v2 is applied."""
        states = [s.state for s in await migrations.status(db, directory)]
        assert states in (["applied", "pending"], ["applied", "applied"]), states
        applied = states[-1] == "applied"
        await db.use_models(mig_v2 if applied else mig_v1)  # no drift: nothing half-applied
        if not applied:
            with pytest.raises(SchemaMismatchError):
                await db.use_models(mig_v2)
        return applied

    @requires("migrations")
    async def test_migrations_cancelled_apply_leaves_a_boundary(self, mig_db: Ommi, mig_dir: Path) -> None:
        """``apply`` cancelled at each moment in turn leaves the previous or the next migration, never half of one.

        The apply of v1 -> v2 (a field with a default, an optional field, a new
        model) is cancelled after 0 to 7 event-loop steps, then at seven delays
        spread over the time a whole apply takes (and a little beyond). After each cancellation the
        history matches the stored tables exactly (the models of that version
        pass ``use_models``); v2 is undone when it got applied, and the next
        cancellation starts from v1. A final ``apply`` completes.
        """
        migrations.make(mig_v1, mig_dir)
        await migrations.apply(mig_db, mig_dir)
        await mig_db.add(AuthorV1("Ada")).or_raise()
        migrations.make(mig_v2, mig_dir)
        started = time.perf_counter()
        await migrations.apply(mig_db, mig_dir)
        whole = time.perf_counter() - started
        await migrations.down(mig_db, mig_dir, to="0001_initial")
        moments: list[tuple[int, float]] = [(steps, 0.0) for steps in range(8)]
        moments += [(0, whole * k / 6) for k in range(1, 8)]
        cancelled = 0
        for steps, delay in moments:
            task = asyncio.ensure_future(migrations.apply(mig_db, mig_dir))
            for _ in range(steps):
                await asyncio.sleep(0)
            if delay:
                await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            cancelled += task.cancelled()
            if await self._at_a_boundary(mig_db, mig_dir):
                await migrations.down(mig_db, mig_dir, to="0001_initial")
        assert cancelled > 0, "no apply was cancelled before it ended"
        assert len(await migrations.apply(mig_db, mig_dir)) == 1
        await mig_db.use_models(mig_v2)
        (author,) = await fetch(mig_db.find(AuthorV2))
        assert (author.name, author.country) == ("Ada", "unknown")

    @requires("migrations")
    async def test_migrations_close_racing_apply_leaves_a_boundary(
        self, mig_db: Ommi, mig_dir: Path, driver_factory: Callable[[], Driver]
    ) -> None:
        """``close()`` while ``apply`` runs: the apply ends (an Ommi error, or done), never hangs, never half-applies.

        ``close()`` comes after 0, 1, 2... event-loop steps of the apply; a
        following ``apply`` on a new connection completes.
        """
        migrations.make(mig_v1, mig_dir)
        await migrations.apply(mig_db, mig_dir)
        migrations.make(mig_v2, mig_dir)
        errors: list[BaseException] = []
        for steps in range(0, 40, 3):
            racing = Ommi(driver_factory(), allow_implicit_model_setup=False)
            await racing.open()
            task = asyncio.ensure_future(migrations.apply(racing, mig_dir))
            for _ in range(steps):
                await asyncio.sleep(0)
            await asyncio.wait_for(racing.close(), timeout=60)
            try:
                await asyncio.wait_for(task, timeout=60)  # never hangs
            except OmmiError as exc:
                errors.append(exc)
            if await self._at_a_boundary(mig_db, mig_dir):
                await migrations.down(mig_db, mig_dir, to="0001_initial")
        assert errors, "close() never overtook an apply"
        assert len(await migrations.apply(mig_db, mig_dir)) == 1

    @requires("migrations")
    async def test_migrations_data_step_uses_models_of_its_version(self, mig_db: Ommi, mig_dir: Path) -> None:
        """``run(db)`` runs in the migration's transaction, on ``db.models`` as the migration leaves them."""
        migrations.make(mig_v1, mig_dir)
        await migrations.apply(mig_db, mig_dir)
        await mig_db.add(AuthorV1("Ada")).or_raise()
        _write(mig_dir, "0002_marker.py", _MARKER_STEP)
        await migrations.apply(mig_db, mig_dir)
        state = migrations.replay(migrations.load(mig_dir))[-1]
        Author = state.model_classes()["mig_author"]
        rows = sorted((a.name, a.marked) for a in await fetch(mig_db.find(Author)))
        assert rows == [("Ada", False), ("marker", True)]

    # -- operations keep data ---------------------------------------------------------------

    @requires("migrations")
    async def test_migrations_rename_keeps_values(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A rename given in ``renames=`` keeps the values; without it ``make`` refuses, hinting the rename."""
        db = mig_db
        migrations.make(mig_v1, mig_dir)
        await migrations.apply(db, mig_dir)
        ada = await db.add(AuthorV1("Ada")).or_raise()
        await db.add(BookV1("Notes", ada.id)).or_raise()
        with pytest.raises(MigrationError, match=r"mig_author\.name=full_name"):
            migrations.make(mig_renamed, mig_dir)
        path = migrations.make(mig_renamed, mig_dir, renames=["AuthorRenamed.name=full_name"])
        assert path is not None and "RenameField" in path.read_text(encoding="utf-8")
        await migrations.apply(db, mig_dir)
        await db.use_models(mig_renamed)
        assert [a.full_name for a in await fetch(db.find(AuthorRenamed))] == ["Ada"]

    @requires("migrations")
    async def test_migrations_change_type_converts_values(self, mig_db: Ommi, mig_dir: Path) -> None:
        """int -> Decimal converts stored values; optional -> required fills None with the default; references stay."""
        db = mig_db
        migrations.make(mig_types_v1, mig_dir)
        await migrations.apply(db, mig_dir)
        big = await db.add(MeasureV1(2**40 + 1, note="big")).or_raise()
        small = await db.add(MeasureV1(-3)).or_raise()
        await db.add(ReadingV1(big.id), ReadingV1(small.id)).or_raise()
        migrations.make(mig_types_v2, mig_dir, allow_destructive=True)
        await migrations.apply(db, mig_dir)
        await db.use_models(mig_types_v2)
        rows = sorted((m.id, m.amount, m.note) for m in await fetch(db.find(MeasureV2)))
        assert rows == sorted([(big.id, decimal.Decimal(2**40 + 1), "big"), (small.id, decimal.Decimal(-3), "none")])
        assert sorted(r.measure for r in await fetch(db.find(ReadingV2))) == sorted([big.id, small.id])
        newer = await db.add(MeasureV2(decimal.Decimal("1.5"))).or_raise()
        assert newer.id > max(big.id, small.id)

    @requires("migrations", "foreign_keys")
    async def test_migrations_rebuilt_table_keeps_references_enforced(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A table referenced by another, changed: dangling references are still refused, keys never reused."""
        db = mig_db
        migrations.make(mig_types_v1, mig_dir)
        await migrations.apply(db, mig_dir)
        kept = await db.add(MeasureV1(1)).or_raise()
        gone = await db.add(MeasureV1(2)).or_raise()
        await db.find(MeasureV1, MeasureV1.id == gone.id).delete.or_raise()
        migrations.make(mig_types_v2, mig_dir, allow_destructive=True)
        await migrations.apply(db, mig_dir)
        await db.use_models(mig_types_v2)
        with pytest.raises(IntegrityError):
            await db.add(ReadingV2(gone.id)).or_raise()
        await db.add(ReadingV2(kept.id)).or_raise()
        with pytest.raises(IntegrityError):
            await db.find(MeasureV2, MeasureV2.id == kept.id).delete.or_raise()
        fresh = await db.add(MeasureV2(decimal.Decimal(3))).or_raise()
        assert fresh.id > gone.id

    @requires("migrations", "foreign_keys")
    async def test_migrations_dangling_reference_commits_nothing(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A reference added over values that point nowhere fails with IntegrityError; nothing of it is applied."""
        db = mig_db
        migrations.make(mig_ref_v1, mig_dir)
        await migrations.apply(db, mig_dir)
        owner = await db.add(OwnerV1("Ann")).or_raise()
        await db.add(PetV1("Rex", owner.id), PetV1("Stray", owner.id + 100)).or_raise()
        migrations.make(mig_ref_v2, mig_dir)
        with pytest.raises(IntegrityError):
            await migrations.apply(db, mig_dir)
        assert [s.state for s in await migrations.status(db, mig_dir)] == ["applied", "pending"]
        await db.use_models(mig_ref_v1)
        await db.find(PetV1, PetV1.name == "Stray").delete.or_raise()
        await migrations.apply(db, mig_dir)
        await db.use_models(mig_ref_v2)
        assert [p.name for p in await fetch(db.find(PetV2))] == ["Rex"]

    @requires("migrations")
    async def test_migrations_failed_run_changes_nothing(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A migration whose ``run(db)`` raises leaves no trace: not its operations, not its record."""
        db = mig_db
        migrations.make(mig_v1, mig_dir)
        await migrations.apply(db, mig_dir)
        _write(
            mig_dir,
            "0002_fails.py",
            'from ommi.migrations import AddField, FieldSpec\n\nid = "0002_fails"\nparent = "0001_initial"\n'
            'operations = [AddField("mig_author", FieldSpec("marked", "bool", default=False))]\n\n\n'
            "async def run(db):\n"
            '    raise RuntimeError("data step failed")\n',
        )
        with pytest.raises(RuntimeError, match="data step failed"):
            await migrations.apply(db, mig_dir)
        await db.use_models(mig_v1)  # no column 'marked': no drift
        assert [s.state for s in await migrations.status(db, mig_dir)] == ["applied", "pending"]

    @requires("migrations")
    async def test_migrations_adopt_tables_made_by_use_models(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A database set up by ``use_models`` before it had migrations: matching tables are kept with their rows."""
        db = mig_db
        await db.use_models(mig_v1)
        ada = await db.add(AuthorV1("Ada")).or_raise()
        await db.add(BookV1("Notes", ada.id)).or_raise()
        migrations.make(mig_v1, mig_dir)
        migrations.make(mig_v2, mig_dir)
        assert len(await migrations.apply(db, mig_dir)) == 2
        await db.use_models(mig_v2)
        assert [(a.name, a.country) for a in await fetch(db.find(AuthorV2))] == [("Ada", "unknown")]
        assert [b.title for b in await fetch(db.find(BookV2))] == ["Notes"]

    @requires("migrations")
    async def test_migrations_refuse_a_table_unlike_its_model(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A table that exists with other fields than the migration creates stops it; nothing of it is committed."""
        db = mig_db
        await db.use_models(mig_renamed)
        await db.add(AuthorRenamed("Ada")).or_raise()
        migrations.make(mig_v1, mig_dir)
        with pytest.raises(MigrationError, match="mig_author"):
            await migrations.apply(db, mig_dir)
        assert [s.state for s in await migrations.status(db, mig_dir)] == ["pending"]
        await db.use_models(mig_renamed)
        assert [a.full_name for a in await fetch(db.find(AuthorRenamed))] == ["Ada"]

    # -- down -----------------------------------------------------------------------------------

    @requires("migrations")
    async def test_migrations_down_undoes_reversible_steps(self, mig_db: Ommi, mig_dir: Path) -> None:
        """``down`` undoes v2 (fields and a model added): v1's models fit again, v1's rows are kept."""
        db = mig_db
        migrations.make(mig_v1, mig_dir)
        second = migrations.make(mig_v2, mig_dir)
        assert second is not None
        await migrations.apply(db, mig_dir, to="0001_initial")
        await db.add(AuthorV1("Ada", nick="countess")).or_raise()
        await migrations.apply(db, mig_dir)
        assert _ids(await migrations.down(db, mig_dir, to="0001_initial")) == [second.stem]
        await db.use_models(mig_v1)
        assert [(a.name, a.nick) for a in await fetch(db.find(AuthorV1))] == [("Ada", "countess")]
        assert [s.state for s in await migrations.status(db, mig_dir)] == ["applied", "pending"]
        assert _ids(await migrations.apply(db, mig_dir)) == [second.stem]
        assert _ids(await migrations.down(db, mig_dir, to="zero")) == [second.stem, "0001_initial"]
        assert [s.state for s in await migrations.status(db, mig_dir)] == ["pending", "pending"]

    @requires("migrations")
    async def test_migrations_down_refuses_irreversible(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A migration with ``run(db)`` and no ``reverse(db)`` cannot go down; nothing is undone."""
        migrations.make(mig_v1, mig_dir)
        _write(mig_dir, "0002_marker.py", _MARKER_STEP)
        await migrations.apply(mig_db, mig_dir)
        with pytest.raises(MigrationError, match=r"0002_marker\.py.*reverse"):
            await migrations.down(mig_db, mig_dir, to="zero")
        assert [s.state for s in await migrations.status(mig_db, mig_dir)] == ["applied", "applied"]

    # -- hostile input ------------------------------------------------------------------------------

    @requires("migrations")
    async def test_migrations_changed_file_is_refused(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A file whose operations changed after it was applied stops ``apply``, naming the file."""
        path = migrations.make(mig_v1, mig_dir)
        assert path is not None
        await migrations.apply(mig_db, mig_dir)
        text = path.read_text(encoding="utf-8")
        assert 'FieldSpec("nick", "str", nullable=True),' in text
        path.write_text(
            text.replace('FieldSpec("nick", "str", nullable=True),', 'FieldSpec("nick", "bytes", nullable=True),')
        )
        with pytest.raises(MigrationError, match=r"0001_initial\.py.*changed since it was applied"):
            await migrations.apply(mig_db, mig_dir)
        assert [s.state for s in await migrations.status(mig_db, mig_dir)] == ["changed"]
        path.write_text(text, encoding="utf-8")  # reformatting alone changes nothing
        path.write_text(text.replace("\n        ", "\n            "), encoding="utf-8")
        assert [s.state for s in await migrations.status(mig_db, mig_dir)] == ["applied"]

    @requires("migrations")
    async def test_migrations_bad_parent_is_refused(self, mig_db: Ommi, mig_dir: Path) -> None:
        """A file whose parent names no migration is refused by name, before the database is touched."""
        migrations.make(mig_v1, mig_dir)
        _write(mig_dir, "0002_orphan.py", 'id = "0002_orphan"\nparent = "0001_nonesuch"\noperations = []\n')
        with pytest.raises(MigrationError, match=r"0002_orphan\.py.*0001_nonesuch"):
            await migrations.apply(mig_db, mig_dir)
        assert await migrations.status(mig_db, mig_dir.parent / "absent") == []

    @requires("migrations")
    async def test_migrations_two_heads_are_refused(self, mig_db: Ommi, mig_dir: Path) -> None:
        """Two files following the same parent (merged branches) are refused, naming both."""
        migrations.make(mig_v1, mig_dir)
        for name in ("0002_left", "0002_right"):
            _write(mig_dir, f"{name}.py", f'id = "{name}"\nparent = "0001_initial"\noperations = []\n')
        with pytest.raises(MigrationError, match=r"two heads: 0002_left\.py and 0002_right\.py"):
            await migrations.apply(mig_db, mig_dir)
        with pytest.raises(MigrationError, match="two heads"):
            migrations.make(mig_v2, mig_dir)

    @requires("migrations")
    async def test_migrations_history_name_is_refused(self, mig_db: Ommi, mig_dir: Path, tmp_path: Path) -> None:
        """A model stored as ``ommi_migrations``, or a migration file creating it, is refused."""
        with pytest.raises(MigrationError, match="ommi_migrations"):
            migrations.make(mig_hostile, mig_dir)
        assert not mig_dir.exists()  # noqa: ASYNC240 - a stat in a test
        hostile = tmp_path / "hostile"
        hostile.mkdir()
        _write(
            hostile,
            "0001_take_history.py",
            "from ommi.migrations import CreateModel, FieldSpec\n"
            'id = "0001_take_history"\nparent = None\n'
            'operations = [CreateModel("ommi_migrations", [FieldSpec("id", "str", key=True)])]\n',
        )
        with pytest.raises(MigrationError, match="ommi_migrations"):
            await migrations.apply(mig_db, hostile)
