"""PostgreSQL and ``Unique``/``Index``: a real ``UNIQUE`` constraint (an ``ON CONFLICT`` target) and plain indexes.

The conformance suite checks what every driver shares; these tests look at the
catalog: ``Unique`` is a table constraint (``contype = 'u'``) under its stored
name, ``Index`` a plain index, a DBA's extra index is not drift, and an index
that only *looks* like the model's (partial) does not count. The models are
the testkit's (``ommi_testkit.suites.models_constraints``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from ommi import Ommi, SchemaMismatchError
from ommi.models import get_schema
from ommi_postgresql import PostgreSQLDriver
from ommi_testkit.suites.models_constraints import Member, con_bare, con_v1


@pytest_asyncio.fixture
async def db(make_driver: Callable[..., PostgreSQLDriver]) -> AsyncIterator[Ommi]:
    database = Ommi(make_driver())
    await database.open()
    await database.remove_models(con_v1)
    try:
        yield database
    finally:
        await database.remove_models(con_v1)
        await database.close()


def _constraints(admin: psycopg.Connection[Any], schema: str) -> dict[str, str]:
    rows = admin.execute(
        "SELECT con.conname, con.contype FROM pg_catalog.pg_constraint AS con "
        "JOIN pg_catalog.pg_class AS c ON c.oid = con.conrelid "
        "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'con_member'",
        [schema],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


async def test_unique_is_a_table_constraint_usable_by_on_conflict(
    db: Ommi, admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """``Unique`` makes ``UNIQUE`` constraints under their stored names; ``ON CONFLICT (email)`` finds one."""
    await db.use_models(con_v1)
    names = {c.name: c.unique for c in get_schema(Member).constraints}
    stored = _constraints(admin, postgresql_schema)
    for name, unique in names.items():
        assert (stored.get(name) == "u") is unique
    table = f'"{postgresql_schema}".con_member'
    insert = f"INSERT INTO {table} (team, number, joined, email) VALUES ('o', %s, '2024-01-01', 'a@x') "
    admin.execute(insert + "ON CONFLICT (email) DO NOTHING", [1])
    admin.execute(insert + "ON CONFLICT (email) DO NOTHING", [2])
    assert admin.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


async def test_a_partial_index_does_not_provide_a_unique_constraint(
    db: Ommi, admin: psycopg.Connection[Any], postgresql_schema: str
) -> None:
    """A table whose only unique index on the field is partial lacks the model's constraint: drift, nothing made."""
    await db.use_models(con_bare)
    table = f'"{postgresql_schema}".con_member'
    admin.execute(f"CREATE UNIQUE INDEX con_member_partial ON {table} (email) WHERE team = 'x'")
    admin.execute(f"CREATE INDEX con_member_dba ON {table} (team, joined)")  # a DBA's own: never drift
    with pytest.raises(SchemaMismatchError, match="unique constraint uq_con_member_email_") as caught:
        await db.use_models(con_v1)
    assert "con_member_dba" not in str(caught.value)
    assert _constraints(admin, postgresql_schema) == {"con_member_pkey": "p"}
