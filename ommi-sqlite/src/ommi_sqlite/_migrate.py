"""Migrations on SQLite: the driver's ``migrations`` capability.

Statements (:class:`SQLiteMigrationSQL`): ``ALTER TABLE ... ADD COLUMN``,
``DROP COLUMN`` and ``RENAME COLUMN`` where SQLite can; everything else
(a referencing column added or removed, a type or nullability change) goes
through the table rebuild of SQLite's documentation ("Making other kinds of
table schema changes"): the new table is created under a temporary name with
the compiler's own ``CREATE TABLE``, the rows are copied into it (converted
where the type changes), the ``AUTOINCREMENT`` counter moves over (a deleted
key is still never handed out again), the old table is dropped, the new one
renamed, and its indexes made. Keys, references and indexes are exactly what
``use_models`` makes for the model, so the table passes its drift check.
Column DEFAULTs follow the rule of :mod:`ommi.sql.migrate` (a field's
migration default is its column's DEFAULT): ``ADD COLUMN ... DEFAULT`` keeps
it, the rebuilt table is created with every field's, and ``SetDefault``, which
SQLite cannot do with ``ALTER TABLE``, rebuilds the table.

Transaction (:class:`MigrationSteps`): a table rebuild drops a table other
tables may reference, so foreign keys are switched off on the writer before
``BEGIN IMMEDIATE`` (SQLite ignores the pragma inside a transaction), and
``PRAGMA foreign_key_check`` runs before the commit: a migration leaving a
reference dangling fails with ``IntegrityError`` and commits nothing. The
write lock taken by ``BEGIN IMMEDIATE`` is the migration lock: another
process applying migrations waits for it (up to ``busy_timeout``, or the
``lock_timeout`` given to ``apply``, which is then the writer's busy timeout
for the whole migration transaction), then reads the history again; a wait
that runs out is a :class:`~ommi.errors.MigrationTimeoutError`. Foreign keys
(and the busy timeout) are set back before the writer is unlocked, whatever
happens.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from ommi import errors
from ommi.drivers import get_logger
from ommi.drivers.base import MigrationTransaction
from ommi.errors import MigrationError, MigrationTimeoutError
from ommi.migrations import (
    AddField,
    ChangeType,
    FieldSpec,
    MigrationStep,
    Operation,
    RemoveField,
    RemoveIndex,
    RemoveUnique,
    SetDefault,
)
from ommi.models.schema import Field, ModelSchema
from ommi.sql import Compiled, SQLTransactionOperations
from ommi.sql.migrate import MigrationSQL, show

from ommi_sqlite._operations import SQLCore, SQLiteOperations
from ommi_sqlite._pool import Link, Pool
from ommi_sqlite._schema import index_differences, read_indexes, stored_indexes, table_differences

if TYPE_CHECKING:
    from ommi.drivers import Driver

__all__ = ["KeptWriter", "MigrationSteps", "SQLiteMigrationSQL", "lock_for_migration", "migration_statements"]

log = get_logger("ommi.sqlite.migrations")

_TABLE_INFO = 'SELECT name, type, "notnull", pk FROM pragma_table_info(?)'

Source = tuple[str, list[Any]]
"""An expression of the old table's row giving a new column's value, and its parameters."""


class SQLiteMigrationSQL(MigrationSQL):
    """SQLite's statements for migration operations: ``ALTER TABLE`` where it can, the rebuild where not."""

    def conversion(self, column: str, old: FieldSpec, new: FieldSpec, field: Field) -> str:
        if old.type == new.type:
            return column
        if new.type == "float":
            return f"CAST({column} AS REAL)"
        if new.type in ("str", "decimal"):
            return f"CAST({column} AS TEXT)"
        if new.type == "int":
            return f"CAST({column} AS INTEGER)"
        return column

    def op_add_field(self, step: MigrationStep) -> list[Compiled]:
        """``ADD COLUMN ... DEFAULT``; a rebuild for a referencing field (SQLite adds no foreign key otherwise)."""
        operation = cast(AddField, step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        field = after.by_column[operation.field.name]
        default = operation.field.default
        if field.reference is None:
            try:
                definition = self.column_definition(field, default=default)
            except MigrationError:
                pass  # a default SQLite cannot take inline: the rebuild binds it
            else:
                return [Compiled(f"ALTER TABLE {self.table(after)} ADD COLUMN {definition}", [])]
        sources = self.kept_columns(before, after)
        sources[field.column] = (
            ("NULL", []) if default is None else (self.dialect.placeholder, self.params(field, default))
        )
        return self.rebuild(before, after, sources, self.column_defaults(step.after, operation.model))

    def op_remove_field(self, step: MigrationStep) -> list[Compiled]:
        """``DROP COLUMN``; a rebuild for a referencing field (SQLite refuses to drop an indexed column)."""
        operation = cast(RemoveField, step.operation)
        before = step.before.schema(operation.model)
        if before.by_column[operation.field.name].reference is None:
            return super().op_remove_field(step)
        after = step.after.schema(operation.model)
        defaults = self.column_defaults(step.after, operation.model)
        return self.rebuild(before, after, self.kept_columns(before, after), defaults)

    def op_change_type(self, step: MigrationStep) -> list[Compiled]:
        """A rebuild, the column converted (``CAST``) and its ``NULL`` values filled when it becomes required."""
        operation = cast(ChangeType, step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        field = after.by_column[operation.new.name]
        sources = self.kept_columns(before, after)
        expression = self.conversion(self.column(field), operation.old, operation.new, field)
        params: list[Any] = []
        if operation.old.nullable and not operation.new.nullable:
            expression = f"COALESCE({expression}, {self.dialect.placeholder})"
            params = self.params(field, operation.new.default)
        sources[field.column] = (expression, params)
        return self.rebuild(before, after, sources, self.column_defaults(step.after, operation.model))

    def op_set_default(self, step: MigrationStep) -> list[Compiled]:
        """A rebuild giving the column its new DEFAULT (SQLite cannot alter one); nothing if the DEFAULT stays."""
        operation = cast(SetDefault, step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        field = after.by_column[operation.field]
        if self.default_literal(field, operation.old) == self.default_literal(field, operation.new):
            return []
        defaults = self.column_defaults(step.after, operation.model)
        return self.rebuild(before, after, self.kept_columns(before, after), defaults)

    def rebuild_without_unique(self, step: MigrationStep) -> list[Compiled]:
        """A ``RemoveUnique`` of a constraint written inside ``CREATE TABLE`` (``UNIQUE (...)``), by rebuilding.

        SQLite keeps such a constraint as an automatic index (``sqlite_autoindex_*``)
        that ``DROP INDEX`` refuses; ``ommi inspect`` prints it under Ommi's default
        name, which no stored index has. The rebuilt table has the constraints of
        the model after the step, and so not this one.
        """
        operation = cast(RemoveUnique, step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        defaults = self.column_defaults(step.after, operation.model)
        return self.rebuild(before, after, self.kept_columns(before, after), defaults)

    def kept_columns(self, before: ModelSchema, after: ModelSchema) -> dict[str, Source]:
        """Each column of ``after`` that ``before`` has too, copied as it is."""
        return {f.column: (self.column(f), []) for f in after.fields if f.column in before.by_column}

    def rebuild(
        self, before: ModelSchema, after: ModelSchema, sources: Mapping[str, Source], defaults: Mapping[str, str]
    ) -> list[Compiled]:
        """SQLite's table rebuild: ``after``'s table filled from ``before``'s rows, under ``before``'s name.

        ``sources`` gives each column of ``after`` its value as an expression
        over the old row; ``defaults`` the column DEFAULTs of the new table.
        Foreign keys must be off (the migration transaction sees to it) and
        are checked before the commit.
        """
        q = self.dialect.quote
        old_table = self.table(before)
        temporary = f"ommi_rebuild_{after.name}"
        create = self.compiler.create_table(after, defaults)
        prefix = f"CREATE TABLE IF NOT EXISTS {self.table(after)} ("
        if not create.startswith(prefix):  # pragma: no cover - the compiler's own text
            raise MigrationError(f"cannot rebuild {after.name!r}: unexpected CREATE TABLE {create[:80]!r}")
        statements = [Compiled(f"CREATE TABLE {q(temporary)} (" + create[len(prefix) :], [])]
        params: list[Any] = []
        for f in after.fields:
            params += sources[f.column][1]
        columns = ", ".join(q(f.column) for f in after.fields)
        expressions = ", ".join(sources[f.column][0] for f in after.fields)
        statements.append(
            Compiled(f"INSERT INTO {q(temporary)} ({columns}) SELECT {expressions} FROM {old_table}", params)
        )
        if before.auto_field is not None and after.auto_field is not None:
            # The counter of AUTOINCREMENT, never below a key ever handed out, moves to the new table.
            statements.append(Compiled("DELETE FROM sqlite_sequence WHERE name = ?", [temporary]))
            statements.append(Compiled("UPDATE sqlite_sequence SET name = ? WHERE name = ?", [temporary, before.name]))
        statements.append(Compiled(f"DROP TABLE {old_table}", []))
        statements.append(Compiled(f"ALTER TABLE {q(temporary)} RENAME TO {self.table(after)}", []))
        # DROP TABLE took the old table's indexes with it: every one of the model's is made again.
        constraints = [Compiled(sql, []) for sql in self.compiler.constraint_statements(after)]
        return statements + self.index_statements(after) + constraints


async def _unique_removal(
    migration_sql: SQLiteMigrationSQL, link: Link, step: MigrationStep, operation: RemoveUnique
) -> list[Compiled]:
    """What removes every unique index over the constraint's columns, so that equal values are accepted after it.

    Besides the index of that name there may be others over the same columns: a
    ``UNIQUE`` written inside another tool's ``CREATE TABLE`` (an automatic
    index, which ``ommi inspect`` prints under Ommi's default name and which
    only a rebuild removes), or a unique index made by hand.
    """
    columns = sorted(operation.fields)
    same = [
        index
        for index in await read_indexes(link, operation.model)
        if index.unique and index.full and index.origin != "pk" and sorted(map(str, index.columns)) == columns
    ]
    if any(index.origin == "u" for index in same):
        return migration_sql.rebuild_without_unique(step)
    q = migration_sql.dialect.quote
    return [Compiled(f"DROP INDEX {q(index.name)}", []) for index in same]


_INDEX_SQL = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
_REBUILT_PREFIX = '"ommi_rebuild_'
_TABLE_SQL = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?"
_TRIGGERS = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? ORDER BY name"
_COLUMNS = "SELECT name, type, dflt_value FROM pragma_table_info(?)"
_CHECK = re.compile(r"\bCHECK\s*\(|\bCOLLATE\s+\w|\bGENERATED\s+ALWAYS\b|\bAS\s*\(", re.IGNORECASE)


def _columns_changed(operation: Operation) -> set[str]:
    """The stored columns the operation itself changes (their type or default may change on purpose)."""
    if isinstance(operation, (AddField, RemoveField)):
        return {operation.field.name}
    if isinstance(operation, ChangeType):
        return {operation.old.name, operation.new.name}
    if isinstance(operation, SetDefault):
        return {operation.field}
    return set()


async def _refuse_lossy_rebuild(
    core: SQLCore, link: Link, step: MigrationStep, migration_sql: SQLiteMigrationSQL
) -> None:
    """Refuse a table rebuild that would drop what the table has beyond what Ommi makes.

    A rebuild makes the table again exactly as ``use_models`` makes it. A table
    another tool made (adopted by a migration, read by ``ommi inspect``) may
    have triggers, ``CHECK`` constraints, collations, declared types such as
    ``VARCHAR(20)`` or ``NUMERIC(8,2)`` (which Ommi's limits follow) and column
    defaults that the new table would not have: other programs writing to it
    would break, silently. Refused before anything runs, naming each.
    """
    operation = step.operation
    name = operation.model
    before = step.before.schema(name)
    changed = _columns_changed(operation)
    lost = [f"trigger {str(trigger)!r}" for (trigger,) in await link.fetchall(_TRIGGERS, [name])]
    rows = await link.fetchall(_TABLE_SQL, [name])
    if rows and _CHECK.search(str(rows[0][0])):
        lost.append("a CHECK constraint, collation or generated column in its CREATE TABLE")
    defaults = migration_sql.column_defaults(step.before, name)
    for column, declared, default in await link.fetchall(_COLUMNS, [name]):
        field = before.by_column.get(str(column))
        if field is None or field.column in changed:
            continue
        wanted = core.dialect.auto_key_type if field is before.auto_field else core.dialect.column_type(field)
        if str(declared).upper() != wanted.upper():
            lost.append(f"column {str(column)!r} declared {declared} (it would become {wanted})")
        if default is not None and str(default) != defaults.get(field.column):
            lost.append(f"column {str(column)!r} DEFAULT {default}")
    if lost:
        raise MigrationError(
            f"sqlite database {link.database}: {operation.describe()} (migration {step.migration}) rebuilds the "
            f"table {name!r}, which SQLite's ALTER TABLE cannot change in place, and the rebuilt table would lose "
            f"what Ommi did not make: {'; '.join(lost)}. Nothing of the migration is committed. Make the table "
            "as Ommi makes it first (or drop these by hand, apply, and add them back), so that nothing another "
            "program relies on goes silently"
        )


async def _indexes_made_by_hand(link: Link, operation: Operation) -> dict[str, str]:
    """``CREATE INDEX`` text of each index on the operation's table that the step must not lose (by name).

    A table rebuild drops the table, and its indexes with it; the model's own
    are made again by the rebuild, but not those a person or another tool added
    (a DBA's index for a slow query). They are made again after the step from
    their stored text, except the ones the operation removes.
    """
    removed_columns = sorted(operation.fields) if isinstance(operation, RemoveUnique) else None
    texts = dict(await link.fetchall(_INDEX_SQL, [operation.model]))
    kept = {}
    for index in await read_indexes(link, operation.model):
        if index.name not in texts or (isinstance(operation, RemoveIndex) and index.name == operation.name):
            continue
        if index.unique and removed_columns is not None and sorted(map(str, index.columns)) == removed_columns:
            continue  # a unique index over the columns whose uniqueness the step removes
        kept[index.name] = str(texts[index.name])
    return kept


async def _restore_indexes(link: Link, step: MigrationStep, indexes: Mapping[str, str]) -> None:
    """Make again each of ``indexes`` the step dropped; one naming a column the step removed is logged and left."""
    if not indexes:
        return
    present = {str(name) for name, _ in await link.fetchall(_INDEX_SQL, [step.operation.model])}
    for name, text in indexes.items():
        if name in present:
            continue
        try:
            await link.execute(text)
        except errors.OperationalError as exc:
            log.warning(
                "migration.index.lost",
                table=step.operation.model,
                index=name,
                migration=step.migration,
                reason=str(exc),
            )


def migration_statements(core: SQLCore, step: MigrationStep) -> list[str]:
    """The statements of ``step`` as text (``SQLiteDriver.migration_statements``)."""
    return [show(statement) for statement in SQLiteMigrationSQL(core.compiler).statements(step)]


# -- the transaction ----------------------------------------------------------------------------


def _busy_timeout(seconds: float) -> str:
    return f"PRAGMA busy_timeout = {max(1, round(seconds * 1000))}"


async def _give_back(pool: Pool, link: Link, *, rollback: bool) -> None:
    """Roll back if asked, switch foreign keys on and the busy timeout back, then unlock the writer; never raises."""
    try:
        if not pool.closed:  # else closing the connection ended everything already
            if rollback:
                await link.rollback()
            await link.execute("PRAGMA foreign_keys = ON")
            await link.execute(_busy_timeout(pool.settings.busy_timeout))
    except Exception:  # the caller is already reporting what went wrong
        log.error("migration.foreign_keys.restore_failed", driver="sqlite", database=link.database, exc_info=True)
    finally:
        if link.statement_timeout != pool.settings.statement_timeout:
            link.rebound(pool.settings.statement_timeout)
        pool.unlock_writer()


def _lock_timed_out(pool: Pool, seconds: float, where: str) -> MigrationTimeoutError:
    """The error for a migration lock (SQLite's write lock) still held by ``where`` after ``seconds``."""
    return MigrationTimeoutError(
        f"sqlite database {pool.database}: waited lock_timeout={seconds} s for the migration lock (SQLite's write "
        f"lock), held by {where}: another ommi migrate apply, or a long write transaction. Nothing was applied; "
        "apply again later or with a longer lock timeout"
    )


async def lock_for_migration(pool: Pool, lock_timeout: float | None = None) -> Link:
    """The writer of ``pool``, locked, with foreign keys off and ``BEGIN IMMEDIATE`` run.

    Waits at most ``lock_timeout`` (default ``busy_timeout``) for the write
    lock, in this process and then in SQLite.

    Raises:
        MigrationTimeoutError: the write lock stayed held that long.
    """
    wait = pool.settings.busy_timeout if lock_timeout is None else lock_timeout
    try:
        link = await pool.lock_writer(wait)
    except errors.TimeoutError as exc:
        raise _lock_timed_out(pool, wait, "another task of this process") from exc
    if link.statement_timeout is not None:
        # The application's statement bound is not the migration's: a table rebuild takes what it takes.
        link.rebound(None)
    try:
        # Inside the try: cancelled while either runs, the writer must still come back whole.
        await link.execute("PRAGMA foreign_keys = OFF")
        if lock_timeout is not None:
            await link.execute(_busy_timeout(lock_timeout))
        await link.execute("BEGIN IMMEDIATE")
    except errors.TimeoutError as exc:
        await asyncio.shield(_give_back(pool, link, rollback=True))
        raise _lock_timed_out(pool, wait, "another connection or process") from exc
    except BaseException:
        await asyncio.shield(_give_back(pool, link, rollback=True))
        raise
    log.debug("migration.begin", driver="sqlite", database=link.database)
    return link


class KeptWriter:
    """The pool as a migration transaction's base class sees it: ending the transaction does not unlock the writer.

    :class:`~ommi_sqlite.driver.SQLiteTransaction` unlocks the writer as it
    ends; a migration transaction must first switch foreign keys on again
    (:meth:`MigrationSteps._finish`), so here ``unlock_writer`` does nothing
    and everything else is the pool's.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def unlock_writer(self) -> None:
        """Nothing: :meth:`MigrationSteps._finish` unlocks the writer once foreign keys are on."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class MigrationSteps(SQLTransactionOperations[Link], SQLiteOperations, MigrationTransaction):
    """What makes a SQLite transaction a migration transaction; mixed in before ``SQLiteTransaction``.

    ``ommi_sqlite.driver.SQLiteMigration`` is ``(MigrationSteps, SQLiteTransaction)``:
    this class adds :meth:`apply_operation`, checks foreign keys before the
    commit, and gives the writer back (foreign keys on, then unlocked) once
    the transaction has ended either way.
    """

    def __init__(self, driver: Driver, pool: Pool, link: Link) -> None:
        self._writer_pool = pool
        self._writer_link = link
        self._returned = False
        # SQLiteTransaction.__init__, next in the MRO of the class this is mixed into.
        super().__init__(driver, cast(Pool, KeptWriter(pool)), link)  # type: ignore[call-arg]

    async def apply_operation(self, step: MigrationStep) -> None:
        """Run the operation's statements, then check the table against the model the migrations describe.

        The check is ``use_models``' drift check: it catches a table changed by
        hand since the migrations were written, and a table that existed before
        its ``CreateModel`` (made by ``use_models``): kept as it is when it
        matches the model (a database adopting migrations), refused otherwise.
        """
        migration_sql = SQLiteMigrationSQL(self._core.compiler)
        statements = migration_sql.statements(step)
        name = step.operation.model
        async with self._turn() as link:
            operation = step.operation
            if isinstance(operation, RemoveUnique):
                statements = await _unique_removal(migration_sql, link, step, operation)
            others = await _indexes_made_by_hand(link, operation)
            if any(statement.sql.startswith(f"CREATE TABLE {_REBUILT_PREFIX}") for statement in statements):
                await _refuse_lossy_rebuild(self._core, link, step, migration_sql)
            try:
                for statement in statements:
                    await link.execute(statement.sql, statement.params)
            except errors.OperationalError as exc:
                if "error in view" in str(exc) or "error in trigger" in str(exc):
                    raise MigrationError(
                        f"sqlite database {link.database}: {step.operation.describe()} (migration "
                        f"{step.migration}) rebuilds the table {name!r}, and a view or trigger naming it "
                        f"refused the new table ({exc}). Nothing of the migration is committed: drop the view or "
                        "trigger, apply, then create it again"
                    ) from exc
                raise
            if name not in step.after:
                return
            await _restore_indexes(link, step, others)
            after = step.after.schema(name)
            differences = table_differences(self._core, after, await link.fetchall(_TABLE_INFO, [name]))
            differences += index_differences(after, await stored_indexes(link, name))
        if differences:
            raise MigrationError(
                f"sqlite database {link.database}: after {step.operation.describe()} (migration {step.migration}), "
                f"the table {name!r} differs from the model the migrations describe: {'; '.join(differences)}. "
                "Was it changed by hand, or made by use_models() with other fields? Nothing of the migration is "
                "committed; make the table match (or drop it) and apply again"
            )

    async def commit(self) -> None:
        async with self._turn() as link:
            dangling = await link.fetchall("PRAGMA foreign_key_check")
        if dangling:
            shown = ", ".join(f"{table!r} row {rowid} -> {parent!r}" for table, rowid, parent, _ in dangling[:5])
            raise errors.IntegrityError(
                f"sqlite database {link.database}: the migration leaves {len(dangling)} reference(s) to rows that do "
                f"not exist ({shown}{', ...' if len(dangling) > 5 else ''}); roll it back and fix the data first"
            )
        try:
            await super().commit()  # type: ignore[safe-super]  # SQLiteTransaction's, next in the MRO
        finally:
            await self._finish()

    async def rollback(self) -> None:
        try:
            await super().rollback()  # type: ignore[safe-super]
        finally:
            await self._finish()

    async def _finish(self) -> None:
        """Once the transaction has ended: foreign keys on again, then the writer unlocked (once)."""
        if self._owned() is not None or self._returned:
            return
        self._returned = True
        await asyncio.shield(_give_back(self._writer_pool, self._writer_link, rollback=False))
