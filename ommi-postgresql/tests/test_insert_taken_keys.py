"""The backstop of the shared insert on PostgreSQL: generated keys that stored rows keep taking.

A ``BEFORE INSERT`` trigger plays the other client: it refuses a row as a
violation of the primary key (what an identity drawing a stored key gives
outside a transaction) or skips it (what ``ON CONFLICT DO NOTHING`` does
with a taken key inside one). A sequence counts the attempts: it is not
rolled back with the statements.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.errors import IntegrityError
from ommi.models.schema import get_schema
from ommi_postgresql import PostgreSQLDriver

models = ModelCollection("ommi_postgresql_insert_taken_keys")


@ommi_model(collection=models, name="taken_keys_slot")
@dataclass
class Slot:
    name: str
    id: int | None = None


OpenDB = Callable[[], AbstractAsyncContextManager[Ommi]]


@pytest.fixture
def open_db(make_driver: Callable[..., PostgreSQLDriver]) -> OpenDB:
    @asynccontextmanager
    async def open_() -> AsyncIterator[Ommi]:
        async with Ommi(make_driver()) as db:
            await db.remove_models(models)
            await db.use_models(models)
            try:
                yield db
            finally:
                await db.remove_models(models)

    return open_


class Sabotage:
    """The trigger on the slot table, installed through a plain connection."""

    def __init__(self, admin: psycopg.Connection[Any], namespace: str) -> None:
        self.admin = admin
        self.schema = '"' + namespace.replace('"', '""') + '"'
        self.table = f'{self.schema}."{get_schema(Slot).name}"'
        self.attempts = f"{self.schema}.taken_keys_attempts"

    def install(self, body: str) -> None:
        """Run ``body`` (PL/pgSQL, ``n`` holding the row's attempt number, from 1) before each row is inserted."""
        constraint = self.admin.execute(
            "SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            [self.table.replace('"', "")],
        ).fetchone()
        assert constraint is not None
        self.admin.execute(f"CREATE SEQUENCE {self.attempts}")
        self.admin.execute(
            f"CREATE FUNCTION {self.schema}.taken_keys_trigger() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"DECLARE n bigint := nextval('{self.attempts}');\n"
            f"BEGIN\n{body.replace('PKEY', constraint[0])}\nRETURN NEW;\nEND $$"
        )
        self.admin.execute(
            f"CREATE TRIGGER taken_keys BEFORE INSERT ON {self.table} "
            f"FOR EACH ROW EXECUTE FUNCTION {self.schema}.taken_keys_trigger()"
        )

    def remove(self) -> None:
        self.admin.execute(f"DROP TRIGGER IF EXISTS taken_keys ON {self.table}")
        self.admin.execute(f"DROP FUNCTION IF EXISTS {self.schema}.taken_keys_trigger()")
        self.admin.execute(f"DROP SEQUENCE IF EXISTS {self.attempts}")

    def count(self) -> int:
        row = self.admin.execute(f"SELECT last_value FROM {self.attempts}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def sabotage(admin: psycopg.Connection[Any], postgresql_schema: str) -> Iterator[Sabotage]:
    saboteur = Sabotage(admin, postgresql_schema)
    yield saboteur
    saboteur.remove()


REFUSE = "RAISE EXCEPTION 'key taken' USING ERRCODE = 'unique_violation', CONSTRAINT = 'PKEY';"


async def test_a_key_refused_ten_times_outside_a_transaction_raises(open_db: OpenDB, sabotage: Sabotage) -> None:
    """On its own the insert fails as a whole on the primary key, ten times, then IntegrityError; nothing stored."""
    async with open_db() as db:
        sabotage.install(REFUSE)
        with pytest.raises(IntegrityError, match=r"no free generated key for Slot after 10 attempts.*postgresql://"):
            await db.add(Slot("a")).or_raise()
        assert sabotage.count() == 10
        sabotage.remove()
        assert await db.find(Slot).count.or_raise() == 0
        assert (await db.add(Slot("b")).or_raise()).id is not None


async def test_a_key_skipped_ten_times_in_a_transaction_raises_and_the_transaction_goes_on(
    open_db: OpenDB, sabotage: Sabotage
) -> None:
    """Inside a transaction the rows are skipped (no failed statement): IntegrityError after ten, and it can commit."""
    async with open_db() as db:
        # Not removed inside the transaction: DROP TRIGGER would wait for the transaction's lock.
        sabotage.install("IF n <= 20 THEN RETURN NULL; END IF;")
        async with db.transaction() as t:
            with pytest.raises(IntegrityError, match="after 10 attempts"):
                await t.add(Slot("a"), Slot("b")).or_raise()
            assert sabotage.count() == 20  # two rows a statement
            await t.add(Slot("c")).or_raise()
        assert [s.name for s in await (await db.find(Slot).all.or_raise()).to_list()] == ["c"]


async def test_rows_skipped_once_in_a_bulk_insert_are_deleted_and_inserted_again(
    open_db: OpenDB, sabotage: Sabotage
) -> None:
    """Several statements run in one block, skipping taken keys: the first statement's rows go, then all come back."""
    async with open_db() as db:
        sabotage.install("IF n = 2 THEN RETURN NULL; END IF;")
        slots = [Slot(f"s{i}") for i in range(3)] + [Slot("given", id=100)]
        await db.add(*slots).or_raise()
        assert sabotage.count() == 7  # the given row, three rows, the same three again
        stored = {s.id: s.name for s in await (await db.find(Slot).all.or_raise()).to_list()}
        assert stored == {s.id: s.name for s in slots}
        keys = [s.id or 0 for s in slots[:3]]
        assert keys == sorted(keys) and keys[0] > 100
