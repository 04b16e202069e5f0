"""Migrations on PostgreSQL: the driver's ``migrations`` capability.

Transaction (:class:`MigrationSteps`, mixed into ``PostgreSQLMigration``):
one migration is one transaction on one pooled connection. PostgreSQL's DDL
is transactional, so the operations, the migration's ``run(db)`` and its
history record commit together or not at all; a process killed half-way
leaves the database at the previous migration. The transaction first takes
``pg_advisory_xact_lock`` on a number derived from ``ommi.migrations:`` and
the driver's PostgreSQL schema (:data:`LOCK`): a second process applying
migrations to the same schema waits there, then reads the history again and
skips what the first applied. The lock is released by the commit or the
rollback. Every lock wait of the transaction is bounded: by the driver's
``lock_timeout`` setting, or by the ``lock_timeout`` given to ``apply``
(``SET LOCAL lock_timeout``), so an ``ALTER TABLE`` waiting for a table that
a long transaction uses gives up instead of queueing every later query on the
table behind it. A wait that runs out is a
:class:`~ommi.errors.MigrationTimeoutError` naming the lock and the sessions
holding it (``pg_locks``: process id, application name, state, how long their
transaction has been open); each operation runs in a savepoint so that they
can still be read after the failed statement.

Statements (:class:`PostgreSQLMigrationSQL`): the standard ``ALTER TABLE``
of :class:`ommi.sql.migrate.MigrationSQL`, every table named with the
driver's schema, plus what PostgreSQL spells its own way: conversions for
``ALTER COLUMN ... TYPE ... USING`` (those of
:data:`ommi.migrations.CONVERSIONS` only), foreign keys dropped and added
when a field's reference changes, and a referencing column's index renamed
with it. Tables are created by the compiler ``use_models`` uses (generated
keys are identity columns), so after each operation the table touched passes
the driver's drift check, which :meth:`MigrationSteps.apply_operation` runs:
a table changed by hand stops the migration with a ``MigrationError`` and
nothing of it is committed.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any, cast

from ommi.drivers import get_logger
from ommi.drivers.base import MigrationTransaction
from ommi.errors import MigrationError, MigrationTimeoutError
from ommi.migrations import CONVERSIONS, ChangeType, FieldSpec, MigrationStep, RemoveUnique, RenameField
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.sql import Compiled, SQLTransactionOperations
from ommi.sql.migrate import MigrationSQL, show
from psycopg import AsyncConnection
from psycopg.errors import LockNotAvailable

from ommi_postgresql import _schema
from ommi_postgresql._dialect import PostgreSQLCompiler, do_block, identifier_text, json_text, sql_string
from ommi_postgresql._operations import PostgreSQLOperations, execute

if TYPE_CHECKING:
    from ommi_postgresql.driver import PostgreSQLDriver

__all__ = [
    "LOCK",
    "MigrationSteps",
    "PostgreSQLMigrationSQL",
    "as_sent",
    "lock_for_migration",
    "migration_statements",
]

log = get_logger("ommi.postgresql.migrations")

LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('ommi.migrations:' || %s, 0))"
"""The migration lock of one PostgreSQL schema (parameter: the schema's name), held until the transaction ends."""

_LOCK_HOLDERS = """
SELECT DISTINCT a.pid, a.application_name, a.state, l.mode,
       COALESCE(extract(epoch FROM now() - a.xact_start), 0)::float8
FROM pg_catalog.pg_locks AS l JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND {condition}
ORDER BY a.pid
"""
_ADVISORY = (
    "l.locktype = 'advisory' AND l.objsubid = 1 "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('ommi.migrations:' || %s, 0)"
)
_RELATION = "l.locktype = 'relation' AND l.relation = to_regclass(%s)"


async def _holders(conn: AsyncConnection[Any], condition: str, parameter: str) -> str:
    """Who holds a lock, as a phrase for messages (``"pid 123 (app, idle in transaction for 12 s, ...)"``).

    Never the sessions' statements: their text may carry values.
    """
    rows = await (await execute(conn, _LOCK_HOLDERS.format(condition=condition), [parameter])).fetchall()
    if not rows:
        return "a session that ended meanwhile"
    shown = [
        f"pid {pid} ({application or 'no application_name'}, {state or 'unknown state'}, {mode}, "
        f"transaction open {age:.0f} s)"
        for pid, application, state, mode, age in rows[:5]
    ]
    return ", ".join(shown) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _milliseconds(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


class PostgreSQLMigrationSQL(MigrationSQL):
    """PostgreSQL's statements for migration operations (tables named with the driver's schema)."""

    compiler: PostgreSQLCompiler

    def conversion(self, column: str, old: FieldSpec, new: FieldSpec, field: Field) -> str:
        """``USING`` expressions for the conversions of ``CONVERSIONS``; any other change of type is refused."""
        if old.type == new.type:
            return column
        if (old.type, new.type) not in CONVERSIONS:
            raise MigrationError(f"stored {old.type} values are not converted to {new.type} on PostgreSQL")
        column_type = self.compiler.column_type(field)
        if old.type == "bool":
            # PostgreSQL casts boolean to integer (0/1) only, not to bigint directly.
            return f"CAST(CAST({column} AS INTEGER) AS {column_type})"
        return f"CAST({column} AS {column_type})"

    def literal(self, field: Field, value: Any) -> str:
        """A JSON default as ``'...'::jsonb`` (:func:`json_text`'s form); other values as the shared code has them."""
        if field.storage is StorageType.JSON:
            return f"{sql_string(json_text(value))}::jsonb"
        return super().literal(field, value)

    def index(self, schema: ModelSchema, field: Field) -> str:
        """The quoted, schema-qualified name of the index ``use_models`` makes on a referencing ``field``."""
        q = self.dialect.quote
        name = q(self.compiler.index_name(schema, field))
        namespace = self.compiler.dialect.namespace
        return name if namespace is None else f"{q(namespace)}.{name}"

    def drop_foreign_keys(self, schema: ModelSchema, field: Field) -> Compiled:
        """Drop the foreign keys on ``field``'s column, whatever PostgreSQL named them (found in the catalog)."""
        table = self.compiler.dialect.qualified_name(schema)  # as text: _string doubles its %
        body = (
            "DECLARE c name; BEGIN "
            "FOR c IN SELECT con.conname FROM pg_catalog.pg_constraint AS con "
            "JOIN pg_catalog.pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey) "
            f"WHERE con.conrelid = {sql_string(table)}::regclass AND con.contype = 'f' "
            f"AND a.attname = {sql_string(field.column)} "
            f"LOOP EXECUTE {sql_string('ALTER TABLE ' + table + ' DROP CONSTRAINT ')} || quote_ident(c); "
            "END LOOP; END"
        )
        return Compiled(do_block(body), [])

    def op_remove_unique(self, step: MigrationStep) -> list[Compiled]:
        """The ``UNIQUE`` constraint dropped; or the unique index of that name, where the table has one instead.

        ``use_models`` and migrations make a constraint, but a table made by other
        tools (read by ``ommi inspect``) may hold a ``CREATE UNIQUE INDEX``, which
        ``DROP CONSTRAINT`` does not find. The catalog says which it is.
        """
        operation = cast(RemoveUnique, step.operation)
        schema = step.before.schema(operation.model)
        dialect = self.compiler.dialect
        table = dialect.qualified_name(schema)  # as text (sql_string doubles its %), as are the names below
        name = identifier_text(operation.name)
        index = name if dialect.namespace is None else f"{identifier_text(dialect.namespace)}.{name}"
        body = (
            "BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint "
            f"WHERE conrelid = {sql_string(table)}::regclass AND conname = {sql_string(operation.name)}) "
            f"THEN EXECUTE {sql_string('ALTER TABLE ' + table + ' DROP CONSTRAINT ' + name)}; "
            f"ELSE EXECUTE {sql_string('DROP INDEX ' + index)}; END IF; END"
        )
        return [Compiled(do_block(body), [])]

    def add_foreign_key(self, schema: ModelSchema, field: Field) -> list[Compiled]:
        """``ADD FOREIGN KEY`` as ``CREATE TABLE`` writes it for ``field`` (a reference to a single-field key)."""
        target = field.reference
        if target is None or not (len(target.schema.key) == 1 and target.schema.key[0] is target):
            return []
        return [
            Compiled(
                f"ALTER TABLE {self.table(schema)} ADD FOREIGN KEY ({self.column(field)}) "
                f"REFERENCES {self.table(target.schema)} ({self.column(target)})",
                [],
            )
        ]

    def op_rename_field(self, step: MigrationStep) -> list[Compiled]:
        """``RENAME COLUMN``; a referencing column's index is renamed with it (its foreign key follows the column)."""
        operation = cast(RenameField, step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        old, new = before.by_column[operation.old], after.by_column[operation.new]
        statements = [
            Compiled(f"ALTER TABLE {self.table(before)} RENAME COLUMN {self.column(old)} TO {self.column(new)}", [])
        ]
        if old.reference is not None:
            renamed = self.dialect.quote(self.compiler.index_name(after, new))
            statements.append(Compiled(f"ALTER INDEX IF EXISTS {self.index(before, old)} RENAME TO {renamed}", []))
            statements += self.index_statements(after)
        return statements

    def op_change_type(self, step: MigrationStep) -> list[Compiled]:
        """``ALTER COLUMN ... TYPE ... USING``, ``NULL`` filled, ``SET``/``DROP NOT NULL``, reference, DEFAULT moved."""
        operation = cast(ChangeType, step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        old, field = before.by_column[operation.old.name], after.by_column[operation.new.name]
        table, column = self.table(after), self.column(field)
        moved = operation.old.reference != operation.new.reference
        statements = self.default_before_change(table, column, operation, field)
        if moved and old.reference is not None:
            statements.append(self.drop_foreign_keys(before, old))
            statements.append(Compiled(f"DROP INDEX IF EXISTS {self.index(before, old)}", []))
        if operation.old.type != operation.new.type:
            using = self.conversion(column, operation.old, operation.new, field)
            statements.append(
                Compiled(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {self.compiler.column_type(field)} USING {using}",
                    [],
                )
            )
        if operation.old.nullable and not operation.new.nullable:
            statements.append(
                Compiled(
                    f"UPDATE {table} SET {column} = {self.dialect.placeholder} WHERE {column} IS NULL",
                    self.params(field, operation.new.default),
                )
            )
            statements.append(Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL", []))
        elif operation.new.nullable and not operation.old.nullable:
            statements.append(Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL", []))
        if moved and field.reference is not None:
            statements += self.add_foreign_key(after, field)
            statements += self.index_statements(after)
        return statements + self.default_after_change(table, column, operation, field)


_FORMAT = re.compile(r"%(%|s)")


def as_sent(statement: Compiled) -> Compiled:
    """``statement`` as the server receives it: psycopg's ``%%`` as ``%``, its ``%s`` as ``$1``, ``$2``..."""
    numbers = itertools.count(1)
    sql = _FORMAT.sub(lambda m: "%" if m.group(1) == "%" else f"${next(numbers)}", statement.sql)
    return Compiled(sql, statement.params)


def migration_statements(compiler: PostgreSQLCompiler, step: MigrationStep) -> list[str]:
    """The statements of ``step`` as text, as PostgreSQL gets them (``PostgreSQLDriver.migration_statements``)."""
    return [show(as_sent(statement)) for statement in PostgreSQLMigrationSQL(compiler).statements(step)]


async def lock_for_migration(
    driver: PostgreSQLDriver, conn: AsyncConnection[Any], lock_timeout: float | None = None
) -> None:
    """``BEGIN`` on ``conn``, then the migration lock of the driver's schema (waits for another migration).

    ``lock_timeout`` (seconds; default: the driver's setting) bounds every
    lock wait of the transaction, this one first.

    Raises:
        MigrationTimeoutError: another session held the migration lock that long (named).
    """
    namespace = driver.compiler.dialect.namespace
    if namespace is None:
        raise MigrationError(
            f"no PostgreSQL schema on the search_path exists to migrate ({driver.description}); "
            "set the driver's schema setting or fix search_path"
        )
    await execute(conn, "BEGIN")
    if lock_timeout is not None:
        await execute(conn, "SELECT set_config('lock_timeout', %s, true)", [_milliseconds(lock_timeout)])
    if driver.settings.statement_timeout is not None:
        # The application's statement bound is not the migration's: an ALTER TABLE or a data step
        # rewriting a large table takes what it takes (its lock waits stay bounded by lock_timeout).
        await execute(conn, "SELECT set_config('statement_timeout', '0', true)")
    await execute(conn, "SAVEPOINT ommi_lock")
    try:
        await execute(conn, LOCK, [namespace])
    except LockNotAvailable as exc:
        await execute(conn, "ROLLBACK TO SAVEPOINT ommi_lock")
        holders = await _holders(conn, _ADVISORY, namespace)
        wait = driver.settings.lock_timeout if lock_timeout is None else lock_timeout
        raise MigrationTimeoutError(
            f"{driver.description}: waited lock_timeout={wait} s for the migration lock of schema {namespace!r}, "
            f"held by {holders}: another ommi migrate apply (or down) is running. Nothing was applied; apply "
            "again once it ends, or with a longer lock timeout"
        ) from exc
    await execute(conn, "RELEASE SAVEPOINT ommi_lock")
    log.debug("migration.begin", driver="postgresql", schema=namespace, where=driver.description)


class MigrationSteps(SQLTransactionOperations[AsyncConnection[Any]], PostgreSQLOperations, MigrationTransaction):
    """What makes a PostgreSQL transaction a migration transaction; mixed in before ``PostgreSQLTransaction``."""

    _lock_timeout: float = 0.0
    """The bound of each lock wait of this transaction, in seconds (set by ``begin_migration``; for messages)."""

    async def apply_operation(self, step: MigrationStep) -> None:
        """Run the operation's statements, then check the table against the model the migrations describe.

        The check is ``use_models``' drift check: it catches a table changed by
        hand since the migrations were written, and a table that existed before
        its ``CreateModel`` (made by ``use_models``): kept when it matches the
        model (a database adopting migrations), refused otherwise.
        """
        compiler = self.compiler
        statements = PostgreSQLMigrationSQL(compiler).statements(step)
        name = step.operation.model
        namespace = compiler.dialect.namespace
        assert namespace is not None  # begin_migration refused to start without one
        with self._map():
            async with self._turn() as conn:
                await execute(conn, "SAVEPOINT ommi_step")
                try:
                    for statement in statements:
                        await execute(conn, statement.sql, statement.params)
                except LockNotAvailable as exc:
                    await execute(conn, "ROLLBACK TO SAVEPOINT ommi_step")
                    raise await self._table_lock_timed_out(conn, step, exc) from exc
                await execute(conn, "RELEASE SAVEPOINT ommi_step")
                if name not in step.after:
                    return
                stored = await _schema._read(conn, namespace, [name])
        schema = step.after.schema(name)
        differences = (
            _schema._differences(self._driver, schema, stored[name]) + _schema._index_differences(schema, stored[name])
            if name in stored
            else ["the table is missing"]
        )
        if differences:
            raise MigrationError(
                f"{self._driver.description}: after {step.operation.describe()} (migration {step.migration}), "
                f"the table {name!r} differs from the model the migrations describe: {'; '.join(differences)}. "
                "Was it changed by hand, or made by use_models() with other fields? Nothing of the migration is "
                "committed; make the table match (or drop it) and apply again"
            )

    async def _table_lock_timed_out(
        self, conn: AsyncConnection[Any], step: MigrationStep, exc: LockNotAvailable
    ) -> MigrationTimeoutError:
        """The error for a table lock the statements of ``step`` waited for in vain, naming who holds it."""
        name = step.operation.model
        schema = step.before.schema(name) if name in step.before else step.after.schema(name)
        table = self.compiler.dialect.qualified_name(schema)
        holders = await _holders(conn, _RELATION, table)
        wait = self._lock_timeout
        return MigrationTimeoutError(
            f"{self._driver.description}: {step.operation.describe()} (migration {step.migration}) waited "
            f"lock_timeout={wait} s for a lock on table {table}, which {holders} held: a transaction that reads or "
            f"writes the table blocks ALTER TABLE. Nothing of the migration was applied ({exc.diag.message_primary}); "
            "apply again when that transaction has ended, or with a longer lock timeout"
        )
