"""SQLite and ``Unique``/``Index``: ``CREATE UNIQUE INDEX`` / ``CREATE INDEX`` under their stored names, and drift.

The conformance suite checks what every driver shares; these tests read
``sqlite_master`` and ``pragma_index_list``: what ``use_models`` makes, that a
table rebuilt by a migration keeps the indexes, and which stored indexes count.
The models are the testkit's (``ommi_testkit.suites.models_constraints``),
plus a second version of its ``con_member`` for the rebuild.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest
from ommi import Index, IntegrityError, ModelCollection, Ommi, SchemaMismatchError, Unique, migrations, ommi_model
from ommi.models import get_schema
from ommi_testkit.suites.models_constraints import Member, con_bare, con_v1

con_v2 = ModelCollection("ommi_sqlite_tests_constraints_v2")


@ommi_model(collection=con_v2, name="con_member", constraints=[Unique("team", "number")])
@dataclass
class MemberV2:
    """The testkit's ``con_member`` with ``joined`` made optional: SQLite rebuilds the table for that."""

    team: str
    number: int
    joined: Annotated[datetime.date | None, Index] = None
    email: Annotated[str | None, Unique] = None
    id: int | None = None


def _indexes(raw: sqlite3.Connection) -> dict[str, str]:
    rows = raw.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'con_member'"
    ).fetchall()
    return {str(name): str(sql) for name, sql in rows if sql is not None}


async def test_use_models_makes_unique_and_plain_indexes(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """Each constraint is an index under its stored name: ``CREATE UNIQUE INDEX`` for ``Unique``."""
    async with connect_file() as db:
        await db.use_models(con_v1)
    stored = _indexes(raw)
    for constraint in get_schema(Member).constraints:
        assert stored[constraint.name].startswith("CREATE UNIQUE INDEX" if constraint.unique else "CREATE INDEX")


async def test_rebuilt_table_keeps_its_constraints(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, tmp_path: Path
) -> None:
    """A migration that rebuilds the table (a field made optional) makes every index again; uniqueness holds."""
    directory = tmp_path / "migrations"
    async with connect_file() as db:
        migrations.make(con_v1, directory)
        await migrations.apply(db, directory)
        await db.add(Member("o", 1, datetime.date(2024, 1, 1), "a@x")).or_raise()
        migrations.make(con_v2, directory)
        await migrations.apply(db, directory)
        assert set(_indexes(raw)) == {c.name for c in get_schema(MemberV2).constraints}
        await db.use_models(con_v2)
        with pytest.raises(IntegrityError):
            await db.add(MemberV2("o", 2, None, "a@x")).or_raise()
        assert [m.number for m in await db.find(MemberV2).all.to_list()] == [1]


async def test_partial_index_does_not_count_extra_ones_are_not_drift(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection
) -> None:
    """A partial unique index does not provide ``Unique``; an index no model declares is never drift."""
    async with connect_file() as db:
        await db.use_models(con_bare)
        raw.execute("CREATE UNIQUE INDEX con_partial ON con_member (email) WHERE team = 'x'")
        raw.execute("CREATE INDEX con_dba ON con_member (team, joined)")
        with pytest.raises(SchemaMismatchError, match="unique constraint uq_con_member_email_") as caught:
            await db.use_models(con_v1)
        assert "con_dba" not in str(caught.value)
        assert set(_indexes(raw)) == {"con_partial", "con_dba"}
