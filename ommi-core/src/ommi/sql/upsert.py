"""``upsert`` of a SQL driver, written once over :class:`ommi.sql.SQLOperations`: ``INSERT ... ON CONFLICT``.

The rows are written in their order, in runs of consecutive rows written
alike, each run in statements of ``Dialect.insert_sizes`` rows (as ``insert``
chunks them), all in one atomic block (``SQLOperations._atomic``: one
transaction, or a savepoint inside a transaction) unless a single statement
does it all. Each statement comes from ``Dialect.upsert_sql``. A run is one of:

* ``key``: matched by key, every key given: ``ON CONFLICT (key) DO UPDATE``
  (``DO NOTHING`` for a model of key fields only); no ``RETURNING``.
* ``checked``: matched on a unique constraint, every key given:
  ``ON CONFLICT (fields) DO UPDATE ... WHERE`` the stored key is the row's,
  ``RETURNING`` the key; a row missing from what it returns matched a row
  stored under another key, and the block fails with ``IntegrityError``
  (in a block that undoes itself then too: ``SQLOperations._undoable``, a
  savepoint inside a transaction, as the database saw no failed statement).
* ``match``: matched on a unique constraint, the generated key ``None``:
  ``ON CONFLICT (fields) DO UPDATE`` ``RETURNING`` the key and the fields, by
  which each returned key is given to its row (the fields are unique within
  the call: core refuses two rows alike).
* ``insert``: a generated key ``None`` that cannot match (by key, or ``None``
  in a field of the constraint): the plain insert of generated keys
  (``SQLOperations._insert_returning``).

Explicit values of the generated key are reserved first (``Dialect.reserve_key``),
as ``insert`` does. A unique index is checked row by row while a statement
writes, so a row breaking another unique constraint fails its statement and
the block undoes the call. PostgreSQL and SQLite run ``ON CONFLICT ... DO
UPDATE`` atomically per row: concurrent upserts of one row never fail on it.
Concurrent upserts of several rows given in different orders can deadlock
(PostgreSQL aborts one of them): outside a transaction the aborted one, rolled
back entirely, is sent again (``SQLOperations._deadlocked`` tells the error),
up to :data:`_DEADLOCK_ATTEMPTS` times; inside one the error propagates, as
for any statement of the transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ommi._logging import get_logger
from ommi.errors import DatabaseError, IntegrityError
from ommi.models.schema import Field, ModelSchema

if TYPE_CHECKING:
    from ommi.drivers.base import Row
    from ommi.sql.operations import SQLOperations

__all__ = ["sql_upsert"]

_DEADLOCK_ATTEMPTS = 5
"""Times an upsert outside a transaction is sent when the database aborts it to break a deadlock."""


def _kind(schema: ModelSchema, row: Row, on: Sequence[Field], by_key: bool) -> str:
    auto = schema.auto_field
    generated = auto is not None and row[auto.index] is None
    if by_key:
        return "insert" if generated else "key"
    if not generated:
        return "checked"
    return "insert" if any(row[f.index] is None for f in on) else "match"


async def sql_upsert(ops: SQLOperations[Any], schema: ModelSchema, rows: Sequence[Row], on: Sequence[Field]) -> Any:
    """:meth:`ommi.drivers.Operations.upsert` on ``ops``'s connection layer (see the module's docstring)."""
    auto = schema.auto_field
    if not rows:
        return [] if auto is not None else None
    dialect = ops.compiler.dialect
    layout, values = ops._insert_values(schema, rows)  # the rows' size limits checked: all or none
    by_key = [id(f) for f in on] == [id(f) for f in schema.key]
    chosen = [row[auto.index] for row in rows if row[auto.index] is not None] if auto is not None else []
    reserve = None
    if auto is not None and chosen:
        reserve = dialect.reserve_key(schema, auto, max(chosen))
    runs = [
        (kind, list(group))
        for kind, group in itertools.groupby(range(len(rows)), lambda i: _kind(schema, rows[i], on, by_key))
    ]
    plan: list[tuple[str, list[int], bool, list[int]]] = []
    for kind, members in runs:
        keyed = kind in ("key", "checked") or dialect.null_generates_key
        width = len(schema.fields) if keyed else len(layout.unkeyed_columns)
        sizes = [1] * len(members) if len(members) == 1 or not width else None
        if sizes is None:
            sizes = dialect.insert_sizes(len(members), ops._max_insert_rows(width))
        plan.append((kind, members, keyed, sizes))
    single = reserve is None and len(plan) == 1 and plan[0][0] == "key" and len(plan[0][3]) == 1
    skip_taken = layout.reserve_stored is not None
    checked = any(kind == "checked" for kind, _, _, _ in plan)
    given = [row[auto.index] for row in rows] if auto is not None else []
    for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
        keys = list(given)  # a rolled-back attempt may have filled some
        block = ops._connection(write=True) if single else ops._undoable() if checked else ops._atomic()
        try:
            async with block as conn:
                if reserve is not None:
                    await ops._execute(conn, reserve.sql, reserve.params)
                for kind, members, keyed, sizes in plan:
                    await _run(ops, conn, schema, on, rows, values, keys, kind, members, keyed, sizes, skip_taken)
        except DatabaseError as exc:
            if ops._in_transaction or attempt == _DEADLOCK_ATTEMPTS or not ops._deadlocked(exc):
                raise
            get_logger(f"ommi.{dialect.name}.query").info(
                "upsert.deadlock_retried", driver=dialect.name, table=schema.name, attempt=attempt
            )
            continue
        break
    return keys if auto is not None else None


async def _run(
    ops: SQLOperations[Any],
    conn: Any,
    schema: ModelSchema,
    on: Sequence[Field],
    rows: Sequence[Row],
    values: Sequence[Row],
    keys: list[Any],
    kind: str,
    members: list[int],
    keyed: bool,
    sizes: list[int],
    skip_taken: bool,
) -> None:
    """The statements of one run, ``sizes`` rows each."""
    auto = schema.auto_field
    dialect = ops.compiler.dialect
    layout = ops.compiler.insert_layout(schema)
    columns = None if keyed else layout.unkeyed_columns
    fields = schema.fields if keyed else tuple(f for f in schema.fields if f is not auto)
    start = 0
    for size in sizes:
        slots = members[start : start + size]
        start += size
        params = dialect.insert_params([values[i] for i in slots], columns)
        if kind == "insert":
            sql = layout.sql(schema, keyed, size, True, skip_taken)
            await ops._insert_returning(conn, schema, layout, sql, params, slots, keys, keyed, skip_taken)
        elif kind == "key":
            await ops._execute(conn, dialect.upsert_sql(schema, fields, size, on=on), params)
        elif kind == "checked":
            sql = dialect.upsert_sql(schema, fields, size, on=on, guard=True, returning=schema.key[:1])
            returned = await ops._fetch_all(conn, sql, params)
            if len(returned) != size:
                raise IntegrityError(
                    f"upsert of {schema.cls.__qualname__} on ({', '.join(f.name for f in on)}): "
                    f"{size - len(returned)} row(s) matched a stored row whose key differs from the row's "
                    f"own key; nothing was stored ({ops._describe()})"
                )
        else:
            assert auto is not None
            await _match(ops, conn, schema, auto, fields, on, params, [rows[i] for i in slots], slots, keys)


async def _match(
    ops: SQLOperations[Any],
    conn: Any,
    schema: ModelSchema,
    auto: Field,
    fields: Sequence[Field],
    on: Sequence[Field],
    params: list[Any],
    chunk: Sequence[Row],
    slots: Sequence[int],
    keys: list[Any],
) -> None:
    """One statement of a ``match`` run: each row's stored key (generated or the matched row's) into ``keys``."""
    dialect = ops.compiler.dialect
    sql = dialect.upsert_sql(schema, fields, len(chunk), on=on, returning=(auto, *on))
    returned = await ops._fetch_all(conn, sql, params)
    decoders = [dialect.from_db(f.storage) for f in (auto, *on)]
    by_values: dict[tuple[Any, ...], Any] = {}
    for stored in returned:
        decoded = [
            value if decode is None or value is None else decode(value)
            for decode, value in zip(decoders, stored, strict=True)
        ]
        by_values[tuple(decoded[1:])] = decoded[0]
    for slot, row in zip(slots, chunk, strict=True):
        key = by_values.get(tuple(row[f.index] for f in on))
        if key is None:
            raise DatabaseError(
                f"upsert of {schema.cls.__qualname__}: the database returned no key for a row it wrote "
                f"({ops._describe()})"
            )
        keys[slot] = key
