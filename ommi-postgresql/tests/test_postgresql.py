"""PostgreSQL-specific behaviour: identifiers, generated keys, bulk inserts, streaming, errors, schema, logs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
import pytest
from ommi import ModelCollection, Ommi, ReferenceTo, StoreAs, ommi_model
from ommi.errors import IntegrityError, SchemaMismatchError, TransactionError
from ommi_postgresql import PostgreSQLDriver

models = ModelCollection("ommi_postgresql_tests")


@ommi_model(collection=models, name="select")
@dataclass
class Select:
    """Stored as ``select`` with reserved-word, mixed-case and ``%`` column names."""

    from_: Annotated[str, StoreAs("from")]
    user: Annotated[str, StoreAs("User")]
    mixed: Annotated[int, StoreAs("MixedCase Column")]
    percent: Annotated[str, StoreAs("100% sure")] = ""
    id: Annotated[int | None, StoreAs("ID")] = None


@ommi_model(collection=models, name="Group By")
@dataclass
class GroupBy:
    """Stored as ``Group By``; references ``select`` through a column named ``SELECT``."""

    select_id: Annotated[int, ReferenceTo(Select), StoreAs("SELECT")]
    label: Annotated[str, StoreAs('quote"d')]
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Note:
    """A plain model with a generated key."""

    text: str
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Numbered:
    """A model for streaming."""

    position: int
    id: int | None = None


OpenDB = Callable[..., AbstractAsyncContextManager[Ommi]]


@pytest.fixture
def open_db(make_driver: Callable[..., PostgreSQLDriver]) -> OpenDB:
    """``async with open_db(**settings) as db``: an open database with this module's models created."""

    @asynccontextmanager
    async def open_(**settings: Any) -> AsyncIterator[Ommi]:
        async with Ommi(make_driver(**settings)) as db:
            await db.remove_models(models)
            await db.use_models(models)
            try:
                yield db
            finally:
                await db.remove_models(models)

    return open_


# -- identifiers -----------------------------------------------------------------


async def test_reserved_and_mixed_case_identifiers_round_trip(
    open_db: OpenDB, admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """Tables and columns named after keywords, in mixed case, with spaces, quotes and ``%`` all work."""
    async with open_db() as db:
        first = await db.add(Select(from_="a", user="Ann", mixed=2, percent="100%")).or_raise()
        second = await db.add(Select(from_="b", user="bob", mixed=1)).or_raise()
        await db.add(GroupBy(select_id=first.id, label="x"), GroupBy(select_id=first.id, label="y")).or_raise()
        found = await (await db.find(Select.mixed >= 1).sort(Select.user.desc).all.or_raise()).to_list()
        assert [s.user for s in found] == ["bob", "Ann"]  # code-point order: "b" > "A"
        assert (await db.find(Select.percent.contains("0%")).one.or_raise()).id == first.id
        assert await db.find(Select, GroupBy.label == "y").count.or_raise() == 1
        assert await db.find(Select.id == second.id).update(user="Bob").or_raise() == 1
        assert await db.find(GroupBy.select_id == first.id).delete.or_raise() == 2
        # A second use_models reads the catalog back under the same exact names.
        await db.use_models(models)


async def test_identifiers_exist_as_written_in_the_catalog(
    open_db: OpenDB, admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """The catalog holds the names exactly as the models spell them (quoted, never folded)."""
    async with open_db():
        columns = admin.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name IN ('select', 'Group By')",
            [postgresql_schema],
        ).fetchall()
        foreign_keys = admin.execute(
            "SELECT child.relname, parent.relname FROM pg_constraint AS c "
            "JOIN pg_class AS child ON child.oid = c.conrelid JOIN pg_class AS parent ON parent.oid = c.confrelid "
            "WHERE c.contype = 'f' AND c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = %s)",
            [postgresql_schema],
        ).fetchall()
        indexes = admin.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'Group By'", [postgresql_schema]
        ).fetchall()
    assert set(columns) == {
        ("select", "from"),
        ("select", "User"),
        ("select", "MixedCase Column"),
        ("select", "100% sure"),
        ("select", "ID"),
        ("Group By", "SELECT"),
        ("Group By", 'quote"d'),
        ("Group By", "id"),
    }
    assert [fk for fk in foreign_keys if fk[0] in ("select", "Group By")] == [("Group By", "select")]
    assert ("ix_Group By_SELECT",) in indexes


# -- generated keys and bulk inserts -------------------------------------------------


async def test_explicit_keys_never_collide_with_generated_ones(open_db: OpenDB) -> None:
    """After explicit ids the sequence continues above the highest; a lower explicit id never moves it back."""
    async with open_db() as db:
        await db.add(Note(text="explicit", id=50)).or_raise()
        assert (await db.add(Note(text="next")).or_raise()).id == 51
        await db.add(Note(text="low", id=10)).or_raise()
        assert (await db.add(Note(text="after low")).or_raise()).id == 52
        mixed = await db.add(Note(text="g1"), Note(text="e", id=53), Note(text="g2")).or_raise()
        assert mixed[1].id == 53
        assert mixed[0].id is not None and mixed[2].id is not None
        assert mixed[0].id > 53 and mixed[2].id > mixed[0].id
        async with db.transaction() as tx:
            await tx.add(Note(text="in tx", id=1000)).or_raise()
            assert (await tx.add(Note(text="in tx next")).or_raise()).id == 1001
        ids = [n.id for n in await (await db.find(Note).all.or_raise()).to_list()]
        assert len(ids) == len(set(ids)) == 9


async def test_bulk_insert_maps_generated_keys_to_the_right_instances(open_db: OpenDB) -> None:
    """``add`` of 2500 models (two insert chunks) gives each instance the key of its own row."""
    async with open_db(insert_chunk_size=1000) as db:
        notes = [Note(text=f"note {i}") for i in range(2500)]
        await db.add(*notes).or_raise()
        stored = {n.id: n.text for n in await (await db.find(Note).all.or_raise()).to_list()}
        assert len(stored) == 2500
        assert all(stored[n.id] == n.text for n in notes)
        assert [n.id for n in notes] == sorted(n.id for n in notes if n.id is not None)


async def test_bulk_insert_is_all_or_nothing(open_db: OpenDB) -> None:
    """When one chunk of a bulk insert fails, no row of any chunk is stored."""
    async with open_db(insert_chunk_size=10) as db:
        await db.add(Note(text="taken", id=35)).or_raise()
        batch = [Note(text=f"n{i}", id=i + 1) for i in range(40)]
        with pytest.raises(IntegrityError):
            await db.add(*batch).or_raise()
        assert await db.find(Note).count.or_raise() == 1


# -- streaming -----------------------------------------------------------------------


async def test_streaming_uses_a_server_side_cursor_in_small_batches(
    open_db: OpenDB, admin: psycopg.Connection[Any]
) -> None:
    """``.all(batch_size=7)`` fetches 7 rows at a time from a cursor and frees the connection when done."""
    name = f"ommi_stream_{uuid.uuid4().hex[:8]}"
    async with open_db(application_name=name, pool_min_size=1, pool_max_size=2) as db:
        await db.add(*[Numbered(position=i) for i in range(1000)]).or_raise()
        iterator = await db.find(Numbered).sort(Numbered.position).all(batch_size=7).or_raise()
        seen = [(await anext(iterator)).position for _ in range(10)]
        activity = admin.execute(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'FETCH%%'",
            [name],
        ).fetchall()
        assert activity == [("idle in transaction", 'FETCH FORWARD 7 FROM "ommi_stream"')]
        seen += [n.position for n in await iterator.to_list()]
        assert seen == list(range(1000))
        states = admin.execute("SELECT state FROM pg_stat_activity WHERE application_name = %s", [name]).fetchall()
        assert {s for (s,) in states} == {"idle"}


async def test_closing_an_iterator_early_releases_its_connection(open_db: OpenDB) -> None:
    """An iterator closed after one batch gives its connection back (a pool of one keeps working)."""
    async with open_db(pool_min_size=1, pool_max_size=1, pool_timeout=2) as db:
        await db.add(*[Numbered(position=i) for i in range(50)]).or_raise()
        for _ in range(3):
            iterator = await db.find(Numbered).all(batch_size=5).or_raise()
            assert (await anext(iterator)).position in range(50)
            await iterator.aclose()
        assert await db.find(Numbered).count.or_raise() == 50


async def test_streaming_inside_a_transaction_interleaves_with_writes(open_db: OpenDB) -> None:
    """In a transaction a cursor streams while other statements run on the same connection."""
    async with open_db() as db:
        await db.add(*[Numbered(position=i) for i in range(20)]).or_raise()
        async with db.transaction() as tx:
            iterator = await tx.find(Numbered).sort(Numbered.position).all(batch_size=3).or_raise()
            positions = []
            async for row in iterator:
                positions.append(row.position)
                await tx.add(Numbered(position=1000 + row.position)).or_raise()
            assert positions == list(range(20))
            assert await tx.find(Numbered).count.or_raise() == 40


async def test_transaction_iterator_used_after_commit_fails_cleanly(open_db: OpenDB) -> None:
    """A transaction's unfinished iterator raises TransactionError after the commit, touching no other connection."""
    async with open_db(pool_min_size=1, pool_max_size=1, pool_timeout=2) as db:
        await db.add(*[Numbered(position=i) for i in range(10)]).or_raise()
        async with db.transaction() as tx:
            iterator = await tx.find(Numbered).all(batch_size=2).or_raise()
            assert (await anext(iterator)).position in range(10)
            await anext(iterator)
        with pytest.raises(TransactionError, match="ended"):
            await iterator.to_list()
        # The pool's only connection was not disturbed.
        assert await db.find(Numbered).count.or_raise() == 10


# -- errors and transactions ---------------------------------------------------------


async def test_integrity_errors_are_translated_and_chained(open_db: OpenDB) -> None:
    """Duplicate keys and dangling references raise IntegrityError chained to psycopg's error."""
    async with open_db() as db:
        await db.add(Note(text="one", id=1)).or_raise()
        with pytest.raises(IntegrityError, match="Note") as duplicate:
            await db.add(Note(text="again", id=1)).or_raise()
        assert isinstance(duplicate.value.__cause__, psycopg.errors.UniqueViolation)
        with pytest.raises(IntegrityError) as dangling:
            await db.add(GroupBy(select_id=999, label="orphan")).or_raise()
        assert isinstance(dangling.value.__cause__, psycopg.errors.ForeignKeyViolation)


async def test_failed_statement_aborts_the_transaction_and_commit_refuses(open_db: OpenDB) -> None:
    """After a failed statement PostgreSQL ignores the transaction: later statements and the commit raise."""
    async with open_db() as db:
        await db.add(Note(text="one", id=1)).or_raise()
        tx = await db.transaction().__aenter__()
        await tx.add(Note(text="kept?")).or_raise()
        failure = await tx.add(Note(text="dup", id=1))
        assert isinstance(failure.exception, IntegrityError)
        with pytest.raises(TransactionError, match="earlier statement"):
            await tx.find(Note).count.or_raise()
        # Leaving the block normally commits: PostgreSQL rolls back instead, and the driver says so.
        with pytest.raises(TransactionError, match="rolled back, not committed"):
            await tx.__aexit__(None, None, None)
        assert [n.text for n in await (await db.find(Note).all.or_raise()).to_list()] == ["one"]


# -- schema ------------------------------------------------------------------------------


async def test_drift_made_outside_is_reported_and_nothing_changes(
    open_db: OpenDB, admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """A column altered behind Ommi's back makes use_models raise, naming table and column; data stays."""
    async with open_db() as db:
        await db.add(Note(text="keep me")).or_raise()
        table = f'"{postgresql_schema}"."Note"'
        admin.execute(
            f"ALTER TABLE {table} ALTER COLUMN text TYPE bytea USING convert_to(text, 'UTF8'), "
            "ALTER COLUMN text DROP NOT NULL"
        )
        admin.execute(f"ALTER TABLE {table} ADD COLUMN extra integer")
        with pytest.raises(SchemaMismatchError) as caught:
            await db.use_models(models)
        message = str(caught.value)
        assert "'Note'" in message
        assert "column 'text' is bytea but the model wants text, varchar(n), char(n) or citext" in message
        assert "column 'text' is nullable but the model wants it NOT NULL" in message
        assert "unexpected column 'extra'" in message
        assert admin.execute(f"SELECT convert_from(text, 'UTF8') FROM {table}").fetchall() == [("keep me",)]


async def test_missing_schema_is_created_by_use_models(
    make_driver: Callable[..., PostgreSQLDriver], admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """A ``schema`` setting naming a schema that does not exist yet: use_models creates it, then the tables."""
    schema = f"{postgresql_schema}_New Schema"[:63]
    try:
        async with Ommi(make_driver(schema=schema)) as db:
            await db.use_models(models)
            await db.add(Note(text="there")).or_raise()
        rows = admin.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name = 'Note'",
            [schema],
        ).fetchall()
        assert rows == [("Note",)]
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- logging --------------------------------------------------------------------------------


async def test_statements_are_logged_at_debug_without_values(open_db: OpenDB, caplog: pytest.LogCaptureFixture) -> None:
    """Debug logs carry the SQL text of each statement but never a parameter value."""
    caplog.set_level(logging.DEBUG, logger="ommi.postgresql")
    async with open_db() as db:
        await db.add(Note(text="s3cret-value")).or_raise()
        await db.find(Note.text == "s3cret-value").count.or_raise()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("ommi.postgresql")]
    # Tables are named with their schema (a model may be called like a catalog table).
    assert any("query.execute" in m and '"."Note" ("text") VALUES' in m for m in messages)
    assert any("pool.open" in m for m in messages)
    assert not any("s3cret-value" in m for m in messages)


# -- case-insensitive text ----------------------------------------------------------


async def test_case_insensitive_matches_lower_case_under_icu(open_db: OpenDB) -> None:
    """``case_sensitive=False`` lower-cases both sides under ICU's root collation, whatever the database's locale.

    The differences from core's ``fold_case`` the queries guide lists hold here
    (ICU lower-cases fully and in context): these assertions keep the guide true.
    """
    async with open_db() as db:
        assert db.driver.capabilities.case_insensitive_text
        texts = ["İstanbul", "ΟΔΟΣ", "οδοσ", "\u00b5", "Straße", "STRAẞE", "ПРИВЕТ"]
        await db.add(*(Note(t) for t in texts)).or_raise()

        async def matching(**kwargs: str) -> list[str]:
            ((method, text),) = kwargs.items()
            condition = getattr(Note.text, method)(text, case_sensitive=False)
            return sorted(n.text for n in await (await db.find(Note, condition).all.or_raise()).to_list())

        assert await matching(contains="привет") == ["ПРИВЕТ"]
        assert await matching(endswith="STRASSE") == []
        assert await matching(contains="straße") == ["STRAẞE", "Straße"]
        # Where ICU differs from fold_case: İ lowers to i + COMBINING DOT ABOVE, so "i" finds it;
        assert await matching(startswith="i") == ["İstanbul"]
        # a capital sigma ending a word lowers to the final sigma, which the small sigma does not match;
        assert await matching(contains="οδο\u03c3") == ["οδοσ"]
        # the micro sign is no letter to lower: Greek mu does not match it.
        assert await matching(contains="\u03bc") == []
        sql = db.driver._statements.select(db.find(Note, Note.text.contains("x", case_sensitive=False)).query()).sql
        assert 'COLLATE "und-x-icu"' in sql


async def test_a_server_without_icu_refuses_case_insensitive_matches(
    open_db: OpenDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the ICU collation is missing, the capability is narrowed at open and the refusal names the collation.

    The real server has ICU; the probe is rewritten to answer as a server built
    without it would (the one thing this test changes).
    """
    from ommi.errors import UnsupportedFeature
    from ommi_postgresql import _pool

    monkeypatch.setattr(_pool, "_PROBE", "SELECT current_schema(), false")
    async with open_db() as db:
        assert not db.driver.capabilities.case_insensitive_text
        await db.add(Note("Hello")).or_raise()
        with pytest.raises(UnsupportedFeature, match=r'case_insensitive_text.*"und-x-icu"'):
            await db.find(Note, Note.text.contains("hello", case_sensitive=False)).all.or_raise()
        assert [n.text for n in await (await db.find(Note, Note.text.contains("Hell")).all.or_raise()).to_list()] == [
            "Hello"
        ]
    assert PostgreSQLDriver.capabilities.case_insensitive_text
