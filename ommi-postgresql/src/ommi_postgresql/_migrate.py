"""Migrations on PostgreSQL: the driver's ``migrations`` capability.

Transaction (:class:`MigrationSteps`, mixed into ``PostgreSQLMigration``):
one migration is one transaction on one pooled connection. PostgreSQL's DDL
is transactional, so the operations, the migration's ``run(db)`` and its
history record commit together or not at all; a process killed half-way
leaves the database at the previous migration. The transaction first takes
``pg_advisory_xact_lock`` on a number derived from ``ommi.migrations:`` and
the driver's PostgreSQL schema (:data:`LOCK`): a second process applying
migrations to the same schema waits there (bounded by the driver's
``lock_timeout`` setting, as every lock wait of its connections), then reads
the history again and skips what the first applied. The lock is released by
the commit or the rollback.

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
from ommi.errors import MigrationError
from ommi.migrations import CONVERSIONS, ChangeType, FieldSpec, MigrationStep, RenameField
from ommi.models.schema import Field, ModelSchema
from ommi.sql import Compiled, SQLTransactionOperations
from ommi.sql.migrate import MigrationSQL, show
from psycopg import AsyncConnection

from ommi_postgresql import _schema
from ommi_postgresql._dialect import PostgreSQLCompiler
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


def _string(text: str) -> str:
    """``text`` as an SQL string literal inside a statement psycopg formats (``%`` doubled)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


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

    def index(self, schema: ModelSchema, field: Field) -> str:
        """The quoted, schema-qualified name of the index ``use_models`` makes on a referencing ``field``."""
        q = self.dialect.quote
        name = q(self.compiler.index_name(schema, field))
        namespace = self.compiler.dialect.namespace
        return name if namespace is None else f"{q(namespace)}.{name}"

    def drop_foreign_keys(self, schema: ModelSchema, field: Field) -> Compiled:
        """Drop the foreign keys on ``field``'s column, whatever PostgreSQL named them (found in the catalog)."""
        table = self.compiler.dialect.qualified_name(schema)  # as text: _string doubles its %
        sql = (
            "DO $ommi$ DECLARE c name; BEGIN "
            "FOR c IN SELECT con.conname FROM pg_catalog.pg_constraint AS con "
            "JOIN pg_catalog.pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey) "
            f"WHERE con.conrelid = {_string(table)}::regclass AND con.contype = 'f' "
            f"AND a.attname = {_string(field.column)} "
            f"LOOP EXECUTE {_string('ALTER TABLE ' + table + ' DROP CONSTRAINT ')} || quote_ident(c); "
            "END LOOP; END $ommi$"
        )
        return Compiled(sql, [])

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
        """``ALTER COLUMN ... TYPE ... USING``, ``NULL`` values filled, ``SET``/``DROP NOT NULL``, references moved."""
        operation = cast(ChangeType, step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        old, field = before.by_column[operation.old.name], after.by_column[operation.new.name]
        table, column = self.table(after), self.column(field)
        moved = operation.old.reference != operation.new.reference
        statements: list[Compiled] = []
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
        return statements


_FORMAT = re.compile(r"%(%|s)")


def as_sent(statement: Compiled) -> Compiled:
    """``statement`` as the server receives it: psycopg's ``%%`` as ``%``, its ``%s`` as ``$1``, ``$2``..."""
    numbers = itertools.count(1)
    sql = _FORMAT.sub(lambda m: "%" if m.group(1) == "%" else f"${next(numbers)}", statement.sql)
    return Compiled(sql, statement.params)


def migration_statements(compiler: PostgreSQLCompiler, step: MigrationStep) -> list[str]:
    """The statements of ``step`` as text, as PostgreSQL gets them (``PostgreSQLDriver.migration_statements``)."""
    return [show(as_sent(statement)) for statement in PostgreSQLMigrationSQL(compiler).statements(step)]


async def lock_for_migration(driver: PostgreSQLDriver, conn: AsyncConnection[Any]) -> None:
    """``BEGIN`` on ``conn``, then the migration lock of the driver's schema (waits for another migration)."""
    namespace = driver.compiler.dialect.namespace
    if namespace is None:
        raise MigrationError(
            f"no PostgreSQL schema on the search_path exists to migrate ({driver.description}); "
            "set the driver's schema setting or fix search_path"
        )
    await execute(conn, "BEGIN")
    await execute(conn, LOCK, [namespace])
    log.debug("migration.begin", driver="postgresql", schema=namespace, where=driver.description)


class MigrationSteps(SQLTransactionOperations[AsyncConnection[Any]], PostgreSQLOperations, MigrationTransaction):
    """What makes a PostgreSQL transaction a migration transaction; mixed in before ``PostgreSQLTransaction``."""

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
                for statement in statements:
                    await execute(conn, statement.sql, statement.params)
                if name not in step.after:
                    return
                stored = await _schema._read(conn, namespace, [name])
        schema = step.after.schema(name)
        differences = (
            _schema._differences(self._driver, schema, stored[name]) if name in stored else ["the table is missing"]
        )
        if differences:
            raise MigrationError(
                f"{self._driver.description}: after {step.operation.describe()} (migration {step.migration}), "
                f"the table {name!r} differs from the model the migrations describe: {'; '.join(differences)}. "
                "Was it changed by hand, or made by use_models() with other fields? Nothing of the migration is "
                "committed; make the table match (or drop it) and apply again"
            )
