"""PostgreSQL's connection layer under :class:`ommi.sql.SQLOperations`, and its inserts.

The driver (pooled, autocommit) and its transactions (one connection) say
where a statement runs (``_connection``), where several run atomically
(``_atomic``) and how a streaming cursor gets its connection (``_stream``);
fetch, count, delete and update come from :class:`ommi.sql.SQLOperations`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from ommi.drivers import Row, get_logger
from ommi.errors import IntegrityError, ValidationError
from ommi.expressions import Query
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.sql import SQLOperations
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import TransactionStatus

from ommi_postgresql._dialect import PostgreSQLCompiler, numeric_problem
from ommi_postgresql._pool import PooledConnection

if TYPE_CHECKING:
    from ommi_postgresql.driver import PostgreSQLDriver

__all__ = ["execute", "log_statement"]

log = get_logger("ommi.postgresql.query")


async def execute(
    conn: AsyncConnection[Any], sql: str, params: Sequence[Any] = (), *, alone: bool = False
) -> AsyncCursor[Any]:
    """Run one statement; logs its text (never its parameters) at debug level.

    Parameters are always passed, even none, so that psycopg turns the ``%%``
    of quoted identifiers back into ``%`` in every statement.

    ``alone``: the caller holds the connection by itself until it has read
    the results (a pooled connection lent for one operation). The statement
    then runs on the connection's reusable cursor (:class:`PooledConnection`)
    instead of a new one, which saves a tenth of a primary-key lookup. A
    transaction's connection may be shared by concurrent tasks, whose results
    must not land on one cursor, so it never passes ``alone``.
    """
    if alone and isinstance(conn, PooledConnection):
        cursor = conn.reusable_cursor
        if cursor is None or cursor.closed:
            cursor = conn.reusable_cursor = conn.cursor()
        run = cursor.execute(sql, params)
    else:
        run = conn.execute(sql, params)
    if not log.is_enabled_for(logging.DEBUG):
        return await run
    started = time.perf_counter()
    cursor = await run
    log_statement("query.execute", sql, started, cursor.rowcount)
    return cursor


def log_statement(event: str, sql: str, started: float, rows: int) -> None:
    """Log a statement's text, row count and duration at debug level (never its parameters)."""
    if log.is_enabled_for(logging.DEBUG):
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        log.debug(event, driver="postgresql", sql=sql, rows=rows, duration_ms=duration_ms)


class _Insert(NamedTuple):
    """One INSERT statement of a plan: these columns of these rows, returning that key."""

    fields: Sequence[Field]
    indexes: list[int]
    returning: Field | None = None


_ADVANCE_IDENTITY = None
"""The plan step that moves the identity sequence past the explicit keys."""

_Plan = list[_Insert | None]

_KEY_ATTEMPTS = 10
"""Statements a generated insert may send before giving up on keys taken by rows with explicit keys."""


def _chunks(indexes: list[int], size: int) -> list[list[int]]:
    return [indexes[start : start + size] for start in range(0, len(indexes), size)]


def _check_numeric(driver: PostgreSQLDriver, schema: ModelSchema, values: Iterable[tuple[Field, Any]]) -> None:
    """Refuse, before any I/O, a Decimal that PostgreSQL's ``numeric`` cannot hold (its error would be raw)."""
    for field, value in values:
        if value is None:
            continue
        problem = numeric_problem(value)
        if problem is not None:
            text = str(value)
            shown = text if len(text) <= 40 else f"{text[:20]}...{text[-12:]}"
            raise ValidationError(
                f"{schema.cls.__qualname__}.{field.name} = Decimal('{shown}') cannot be stored: {problem}; "
                f"nothing was written ({driver.description})"
            )


class PostgreSQLOperations(SQLOperations[AsyncConnection[Any]]):
    """Statements through psycopg, compiled by the driver's compiler (a new one for each open)."""

    _driver: PostgreSQLDriver

    _alone: bool = False
    """Whether each :meth:`_connection` is held by one operation alone (see :func:`execute`)."""

    @property
    def compiler(self) -> PostgreSQLCompiler:
        return self._driver._statements

    def _map(self) -> contextlib.AbstractContextManager[None]:
        return self._driver._map()

    async def _execute(self, conn: AsyncConnection[Any], sql: str, params: list[Any]) -> int:
        with self._map():
            return (await execute(conn, sql, params, alone=self._alone)).rowcount

    async def _fetch_all(self, conn: AsyncConnection[Any], sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._map():
            rows: list[tuple[Any, ...]] = await (await execute(conn, sql, params, alone=self._alone)).fetchall()
            return rows

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        """Refuse a Decimal ``numeric`` cannot hold before any I/O, then update (see :meth:`SQLOperations.update`)."""
        decimals = ((f, v) for f, v in values.items() if f.storage is StorageType.DECIMAL)
        _check_numeric(self._driver, query.model, decimals)
        return await super().update(query, values)

    # -- insert --------------------------------------------------------------

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        """Insert ``rows``: one statement per chunk of up to ``insert_chunk_size`` rows.

        Rows whose generated key is ``None`` are inserted without it and the
        keys come back through ``RETURNING``; rows with an explicit key are
        inserted as given, after the identity sequence was moved past them, so
        generated keys do not collide with them, even before they are
        committed. A generated key that a row holds anyway (written with an
        explicit key by another client, or concurrently) is replaced by a new
        one: see :meth:`_insert_generated`.
        """
        auto = schema.auto_field
        if not rows:
            return [] if auto is not None else None
        decimals = [f for f in schema.fields if f.storage is StorageType.DECIMAL]
        if decimals:
            _check_numeric(self._driver, schema, ((f, row[f.index]) for row in rows for f in decimals))
        size = self._driver.settings.insert_chunk_size
        everything = list(range(len(rows)))
        if auto is None:
            plan: _Plan = [_Insert(schema.fields, chunk) for chunk in _chunks(everything, size)]
            await self._insert_plan(schema, rows, plan, None, [])
            return None
        keys: list[Any] = [row[auto.index] for row in rows]
        generated = [i for i in everything if keys[i] is None]
        given = [i for i in everything if keys[i] is not None]
        without_key = tuple(f for f in schema.fields if f is not auto)
        # Before the explicit keys are written: from then on no generated key
        # can take one of them, in this batch or any concurrent one.
        plan = [_ADVANCE_IDENTITY] if given else []
        plan += [_Insert(schema.fields, chunk) for chunk in _chunks(given, size)]
        if without_key:
            plan += [_Insert(without_key, chunk, auto) for chunk in _chunks(generated, size)]
        else:
            # Nothing but the key: DEFAULT VALUES, one row at a time.
            plan += [_Insert((), [i], auto) for i in generated]
        await self._insert_plan(schema, rows, plan, max((keys[i] for i in given), default=None), keys)
        return keys

    async def _insert_plan(
        self,
        schema: ModelSchema,
        rows: Sequence[Row],
        plan: _Plan,
        highest: int | None,
        keys: list[Any],
    ) -> None:
        compiler = self.compiler
        auto = schema.auto_field
        # setval takes effect at once even inside a transaction; one transaction
        # for it and the inserts saves a commit (a WAL flush) of its own.
        with self._map():
            async with self._atomic() if len(plan) > 1 else self._connection(write=True) as conn:
                for step in plan:
                    if step is _ADVANCE_IDENTITY:
                        if highest is not None and auto is not None:
                            advance = compiler.advance_identity(schema, auto, highest)
                            await execute(conn, advance.sql, advance.params, alone=self._alone)
                        continue
                    fields, indexes, returning = step
                    if returning is not None:
                        await self._insert_generated(conn, schema, rows, fields, indexes, keys)
                        continue
                    if len(indexes) == 1:
                        sql = compiler.insert(schema, fields)
                        params: list[Any] = compiler.row_params(fields, rows[indexes[0]])
                    else:
                        sql = compiler.insert_many(schema, fields)
                        params = [[compiler.param(f, rows[i][f.index]) for i in indexes] for f in fields]
                    await execute(conn, sql, params, alone=self._alone)

    async def _insert_generated(
        self,
        conn: AsyncConnection[Any],
        schema: ModelSchema,
        rows: Sequence[Row],
        fields: Sequence[Field],
        indexes: list[int],
        keys: list[Any],
    ) -> None:
        """Insert ``rows[indexes]`` with generated keys, written into ``keys``, all or none.

        The identity sequence hands out keys without looking at the table, so
        a generated key can already be held by a row written with an explicit
        key that did not move the sequence (another client, a restored dump) or
        that raced with it. Such an insert is tried again with new keys, after
        the sequence was moved past the highest stored key:

        * on its own (autocommit), the statement fails as a whole on the
          primary key, storing nothing, and is sent again;
        * inside a transaction, where a failed statement would abort it, rows
          whose key is taken are skipped (``ON CONFLICT (key) DO NOTHING``); as
          the skipped rows cannot be told apart, the rows it did insert are
          deleted again (by key, in the same transaction) and the statement is
          sent again.
        """
        compiler = self.compiler
        auto = schema.auto_field
        assert auto is not None
        in_transaction = conn.info.transaction_status != TransactionStatus.IDLE
        for _ in range(_KEY_ATTEMPTS):
            if len(indexes) == 1:
                sql = compiler.insert_generated(schema, fields, skip_taken=in_transaction)
                params: list[Any] = compiler.row_params(fields, rows[indexes[0]])
            else:
                sql = compiler.insert_many(schema, fields, returning=auto, skip_taken=in_transaction)
                params = [[compiler.param(f, rows[i][f.index]) for i in indexes] for f in fields]
            try:
                cursor = await execute(conn, sql, params, alone=self._alone)
            except psycopg.errors.UniqueViolation as exc:
                if in_transaction or not await self._key_taken(conn, schema, exc):
                    raise
            else:
                # Identity values are drawn in input order (ORDER BY the
                # ordinality), so ascending keys map onto the rows in order.
                new_keys = sorted(row[0] for row in await cursor.fetchall())
                if len(new_keys) == len(indexes):
                    for index, key in zip(indexes, new_keys, strict=True):
                        keys[index] = key
                    return
                if new_keys:
                    await execute(conn, compiler.delete_keys(schema, auto), [new_keys], alone=self._alone)
            log.info("insert.generated_key_taken", driver="postgresql", table=schema.name)
            advance = compiler.advance_past_stored(schema, auto)
            await execute(conn, advance.sql, advance.params, alone=self._alone)
        raise IntegrityError(
            f"no free generated key for {schema.cls.__qualname__} after {_KEY_ATTEMPTS} attempts: rows with "
            f"explicit keys keep taking the next values of its identity sequence; try the add again (inside a "
            f"transaction, roll it back first) ({self._driver.description})"
        )

    async def _key_taken(self, conn: AsyncConnection[Any], schema: ModelSchema, exc: psycopg.Error) -> bool:
        """Whether a unique violation of a generated insert is on the primary key (a taken generated key)."""
        query = self.compiler.primary_key_constraint(schema)
        row = await (await execute(conn, query.sql, query.params, alone=self._alone)).fetchone()
        return row is not None and row[0] == exc.diag.constraint_name
