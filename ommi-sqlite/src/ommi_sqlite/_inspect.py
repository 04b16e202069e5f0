"""``ommi inspect`` on SQLite: the database's tables read into models.

Every ordinary table except SQLite's own (``sqlite_*``), virtual tables, and
Ommi's (``ommi_migrations``, the ``ommi_rebuild_*`` tables of an
interrupted rebuild). Declared types map by their affinity as the drift check
accepts them (:mod:`ommi_sqlite._types`); a column no storage type fits (no
declared type, ``JSON``...) skips its table. The generated key is a single
``INTEGER PRIMARY KEY`` of a rowid table (the rowid alias). A foreign key is
kept when it is a single column.

Indexes come from ``pragma_index_list`` as the drift check reads them
(:func:`ommi_sqlite._schema.read_indexes`), the primary key's left out. A
``UNIQUE`` written in ``CREATE TABLE`` has a name SQLite chose
(``sqlite_autoindex_*``) that no statement may create: its model takes
Ommi's default name.
"""

from __future__ import annotations

import asyncio

from ommi.migrations.inspection import (
    InspectedColumn,
    InspectedIndex,
    InspectedTable,
    Inspection,
    build_inspection,
)
from ommi.migrations.state import HISTORY_TABLE

from ommi_sqlite._pool import Link
from ommi_sqlite._schema import CatalogIndex, read_indexes
from ommi_sqlite._types import classify

__all__ = ["inspect"]

_TABLES = (
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
    "AND name NOT LIKE 'ommi\\_rebuild\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL %' ORDER BY name"
)
_COLUMNS = 'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid'
_KEY_INDEX = "SELECT count(*) FROM pragma_index_list(?) WHERE origin = 'pk'"
_FOREIGN_KEYS = 'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq'


async def inspect(link: Link, where: str) -> Inspection:
    """Read the tables of the database behind ``link`` (in one read transaction) into an :class:`Inspection`."""
    tables = []
    await link.execute("BEGIN")
    try:
        names = [str(row[0]) for row in await link.fetchall(_TABLES)]
        # A foreign key names its table as written, in any case: SQLite matches it case-insensitively.
        actual = {name.casefold(): name for name in names}
        for name in names:
            if name.casefold() == HISTORY_TABLE:
                continue
            rows = await link.fetchall(_COLUMNS, [name])
            # No index made for the primary key: a single INTEGER key is the rowid alias.
            rowid_key = (await link.fetchall(_KEY_INDEX, [name]))[0][0] == 0
            keys = [row for row in rows if row[3]]
            generated = rowid_key and len(keys) == 1 and str(keys[0][1]).upper() == "INTEGER"
            links: dict[int, list[tuple[str, str, str | None]]] = {}
            for key_id, target, source, target_column in await link.fetchall(_FOREIGN_KEYS, [name]):
                target = actual.get(str(target).casefold(), str(target))
                links.setdefault(int(key_id), []).append((str(source), target, target_column))
            references: dict[str, tuple[str, str | None]] = {}
            for parts in links.values():
                if len(parts) == 1:
                    source, target, target_column = parts[0]
                    references.setdefault(source, (target, None if target_column is None else str(target_column)))
            columns = []
            for column, declared, not_null, key in rows:
                found = classify(str(declared))
                reference = references.get(str(column))
                columns.append(
                    InspectedColumn(
                        str(column),
                        str(declared) or "no declared type",
                        None if found is None else found[0],
                        nullable=not not_null,
                        key=int(key),
                        generated=bool(key) and generated,
                        reference=None if reference is None else reference[0],
                        reference_column=None if reference is None else reference[1],
                        limit=None if found is None or found[1] is None else found[1].describe(),
                    )
                )
            indexes = [_index(name, i, references) for i in await read_indexes(link, name) if i.origin != "pk"]
            tables.append(InspectedTable(name, columns, indexes=indexes))
    finally:
        await asyncio.shield(link.rollback())
    return build_inspection(f"SQLite database {where}", tables)


def _index(table: str, index: CatalogIndex, references: dict[str, tuple[str, str | None]]) -> InspectedIndex:
    columns = [c if c is not None else "<expression>" for c in index.columns]
    unsupported = None
    if index.partial:
        unsupported = "it is partial (a WHERE clause), which Ommi cannot declare"
    elif None in index.columns:
        unsupported = "it is on an expression, which Ommi cannot declare"
    single = columns[0] if len(columns) == 1 else None
    return InspectedIndex(
        index.name,
        columns,
        index.unique,
        unsupported=unsupported,
        keep_name=index.origin != "u",
        for_reference=(
            single is not None and single in references and not index.unique and index.name == f"ix_{table}_{single}"
        ),
    )
