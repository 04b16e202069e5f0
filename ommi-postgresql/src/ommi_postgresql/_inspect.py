"""``ommi inspect`` on PostgreSQL: the driver's schema read from the catalog into models.

Only ordinary and partitioned tables of the driver's schema (its ``schema``
setting, else the current schema when it opened), never views, partitions of
a table, or Ommi's own ``ommi_migrations``. Types map as the drift check
accepts them (:mod:`ommi_postgresql._types`); a column of any other type
skips its table. A foreign key is kept when it is a single column referencing
the key of a table of the same schema.

Indexes and ``UNIQUE`` constraints come from ``pg_index`` as the drift check
reads them (:func:`ommi_postgresql._schema.read_indexes`), the primary key's
left out; partial, expression, ``INCLUDE``, non-btree and ``NULLS NOT
DISTINCT`` ones are left out with a note (no ``Unique``/``Index`` makes them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ommi.errors import SchemaError
from ommi.migrations.inspection import (
    InspectedColumn,
    InspectedIndex,
    InspectedTable,
    Inspection,
    build_inspection,
)
from ommi.migrations.state import HISTORY_TABLE
from psycopg import AsyncConnection

from ommi_postgresql._operations import execute
from ommi_postgresql._schema import CatalogIndex, read_indexes
from ommi_postgresql._types import classify

if TYPE_CHECKING:
    from ommi_postgresql.driver import PostgreSQLDriver

__all__ = ["inspect"]

_COLUMNS = """
SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attidentity <> '' OR COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%', false),
       COALESCE((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, n) WHERE k.attnum = a.attnum), 0)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_index AS i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s)
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""

_FOREIGN_KEYS = """
SELECT c.relname, a.attname, t.relname, ta.attname
FROM pg_catalog.pg_constraint AS k
JOIN pg_catalog.pg_class AS c ON c.oid = k.conrelid
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
JOIN pg_catalog.pg_class AS t ON t.oid = k.confrelid
JOIN pg_catalog.pg_attribute AS ta ON ta.attrelid = k.confrelid AND ta.attnum = k.confkey[1]
WHERE k.contype = 'f' AND cardinality(k.conkey) = 1
  AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s)
  AND t.relnamespace = c.relnamespace
ORDER BY c.relname, a.attname, k.conname
"""


async def inspect(driver: PostgreSQLDriver, conn: AsyncConnection[Any]) -> Inspection:
    """Read the tables of the driver's schema (in one read-only snapshot) into an :class:`Inspection`."""
    namespace = driver.compiler.dialect.namespace
    if namespace is None:
        raise SchemaError(
            f"no PostgreSQL schema on the search_path exists to read tables from ({driver.description}); "
            "set the driver's schema setting or fix search_path"
        )
    async with conn.transaction():
        await execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        rows = await (await execute(conn, _COLUMNS, [namespace])).fetchall()
        foreign = await (await execute(conn, _FOREIGN_KEYS, [namespace])).fetchall()
        indexes = await read_indexes(conn, namespace, sorted({str(row[0]) for row in rows}))
    references: dict[tuple[str, str], tuple[str, str]] = {}
    for table, column, target, target_column in foreign:
        references.setdefault((table, column), (target, target_column))
    columns: dict[str, list[InspectedColumn]] = {}
    for table, column, type_name, not_null, generated, key in rows:
        if table.casefold() == HISTORY_TABLE:
            continue
        found = classify(type_name)
        reference = references.get((table, column))
        columns.setdefault(table, []).append(
            InspectedColumn(
                column,
                type_name,
                None if found is None else found[0],
                nullable=not not_null,
                key=int(key),
                generated=bool(generated),
                reference=None if reference is None else reference[0],
                reference_column=None if reference is None else reference[1],
                limit=None if found is None or found[1] is None else found[1].describe(),
            )
        )
    by_table: dict[str, list[InspectedIndex]] = {}
    for index in indexes:
        if not index.primary:
            by_table.setdefault(index.table, []).append(_index(index, references))
    tables = [InspectedTable(name, cols, indexes=by_table.get(name, ())) for name, cols in sorted(columns.items())]
    return build_inspection(f"PostgreSQL schema {namespace!r} of {driver.description}", tables)


def _unsupported(index: CatalogIndex) -> str | None:
    """Why no ``Unique``/``Index`` makes ``index`` (Ommi's are full btree indexes on columns), or ``None``."""
    if index.partial:
        return "it is partial (a WHERE clause), which Ommi cannot declare"
    if index.expression:
        return "it is on an expression, which Ommi cannot declare"
    if index.method != "btree":
        return f"it is a {index.method} index; Ommi declares btree ones"
    if index.include:
        return "it has INCLUDE columns, which Ommi cannot declare"
    if index.nulls_not_distinct:
        return "it is NULLS NOT DISTINCT, while Ommi's unique constraints never compare NULL"
    return None


def _index(index: CatalogIndex, references: dict[tuple[str, str], tuple[str, str]]) -> InspectedIndex:
    columns = index.columns if not index.expression else (*index.columns, "<expression>")
    single = columns[0] if len(columns) == 1 else None
    return InspectedIndex(
        index.name,
        columns,
        index.unique,
        unsupported=_unsupported(index),
        for_reference=(
            single is not None
            and (index.table, single) in references
            and not index.unique
            and index.name == f"ix_{index.table}_{single}"
        ),
    )
