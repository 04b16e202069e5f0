"""The data operations: SQLite's connection layer under :class:`ommi.sql.SQLOperations`.

:class:`SQLiteOperations` runs statements on a :class:`~ommi_sqlite._pool.Link`
and streams through a :class:`~ommi_sqlite._pool.Channel`; where they come from
(:meth:`~ommi.sql.SQLOperations._connection`, ``_atomic`` and
:meth:`~SQLiteOperations._channel`) the driver answers from its pool and a
transaction with its own connection, one task at a time. Every operation,
``insert`` included, is the base's: the statements come from
:class:`~ommi_sqlite._dialect.SQLiteDialect`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from ommi.errors import UnsupportedFeature
from ommi.expressions import Arithmetic, Query
from ommi.models.schema import Field
from ommi.models.types import StorageType
from ommi.sql import Compiled, SQLCompiler, SQLOperations

from ommi_sqlite._dialect import DECIMAL_COLLATION, SQLiteDialect
from ommi_sqlite._pool import Channel, Link, Stream, variable_limit

__all__ = ["SQLCore", "SQLiteCompiler", "SQLiteOperations", "collated_by_value", "undo_savepoint"]

_MAX_INSERT_ROWS = 256
"""Most rows of one INSERT; larger adds are split (one atomic block: a savepoint)."""


def collated_by_value(field: Field) -> bool:
    """Whether ``field``'s column is declared with the exact ``Decimal`` collation.

    Keys, so that the primary key is unique by value (``1.0`` and ``1.00`` are
    one key) and key lookups use its index; and references, so that the
    index of a referencing column serves the foreign key's checks.
    """
    return field.storage is StorageType.DECIMAL and (field.key or field.reference is not None)


class SQLiteCompiler(SQLCompiler):
    """The SQL compiler, with ``Decimal`` key and reference columns collated by value."""

    def column_type(self, field: Field) -> str:
        kind = super().column_type(field)
        return f"{kind} COLLATE {DECIMAL_COLLATION}" if collated_by_value(field) else kind


class SQLCore:
    """What the driver and its transactions share: the dialect and the compiler (with its per-model caches)."""

    def __init__(self) -> None:
        self.dialect = SQLiteDialect()
        self.compiler = SQLiteCompiler(self.dialect)


async def undo_savepoint(link: Link, name: str) -> None:
    """Roll back to the savepoint ``name`` (quoted) and release it; never raises."""
    with contextlib.suppress(Exception):
        await link.execute(f"ROLLBACK TO {name}")
        await link.execute(f"RELEASE {name}")


class SQLiteOperations(SQLOperations[Link]):
    """SQLite's connection layer: statements on a :class:`Link`, streams through a :class:`Channel`."""

    _core: SQLCore

    @property
    def compiler(self) -> SQLCompiler:
        return self._core.compiler

    def _channel(self) -> contextlib.AbstractAsyncContextManager[Channel]:
        """Where a streaming read runs (a reader of its own, or a shared connection behind a gate)."""
        raise NotImplementedError

    async def _execute(self, conn: Link, sql: str, params: list[Any]) -> int:
        return await conn.execute(sql, params)

    async def _fetch_all(self, conn: Link, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return await conn.fetchall(sql, params)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        """Refuse Decimal arithmetic before any I/O, then update (see :meth:`SQLOperations.update`).

        SQLite stores a ``Decimal`` as text and computes with doubles, so it
        cannot add or multiply them exactly; a ``Decimal`` field copy is fine.
        """
        for f, value in values.items():
            if isinstance(value, Arithmetic) and f.storage is StorageType.DECIMAL:
                raise UnsupportedFeature(
                    f"update(): {f!r} = {value!r}: the sqlite driver cannot compute with Decimal fields exactly "
                    "(SQLite stores a Decimal as text and computes with binary floats); nothing was written. "
                    "Read, compute and write the values in Python inside a transaction, or use PostgreSQL"
                )
        return await super().update(query, values)

    def _max_insert_rows(self, width: int) -> int:
        # Within the SQLite library's parameter limit (read when the first connection opened).
        return max(1, min(_MAX_INSERT_ROWS, variable_limit() // max(1, width)))

    async def _stream(self, compiled: Compiled, batch_size: int, limit: int | None) -> AsyncGenerator[list[Any], None]:
        async with self._channel() as channel:
            batches = Stream(channel).batches(compiled.sql, compiled.params, batch_size, limit)
            async with contextlib.aclosing(batches):
                async for rows in batches:
                    yield rows
