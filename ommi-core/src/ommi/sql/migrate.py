"""The statements that apply migration operations on a SQL database, built with a driver's compiler.

:class:`MigrationSQL` turns one :class:`ommi.migrations.MigrationStep` into
:class:`~ommi.sql.Compiled` statements, one method per operation kind
(``create_model``, ``add_field``...). The tables it creates come from
:meth:`ommi.sql.SQLCompiler.create_statements` applied to the model *as the
migrations describe it* (``step.after.schema(name)``), so a migrated table is
exactly what ``use_models`` would have created and passes its drift check.

The base spells standard SQL, ``ALTER TABLE ... ADD/DROP/RENAME COLUMN`` and
``ALTER COLUMN ... TYPE ... USING``/``SET NOT NULL`` (PostgreSQL's dialect of
it); a driver subclasses it where its database differs (SQLite rebuilds a
table where ``ALTER TABLE`` cannot, see ``ommi_sqlite._migrate``). Values
(defaults filling stored rows) travel as parameters wherever the statement is
not DDL; :meth:`MigrationSQL.literal` spells the few that must be inlined.

**The column DEFAULT rule.** A field's migration default (``FieldSpec.default``)
is also its column's ``DEFAULT`` in every table migrations create, alter or
rebuild: :meth:`MigrationSQL.column_defaults`. Ommi writes every field on
insert, so its own writes never use it; it serves code that does not know the
field yet, above all the processes still running the previous models during a
rolling deploy, whose inserts then store the default instead of being refused
by ``NOT NULL``. ``SetDefault`` changes it, ``down`` puts the previous one back.
A default a dialect cannot spell in DDL (none of Ommi's types: every
default a ``FieldSpec`` accepts is spelled) would fill the stored rows through
a parameter and leave the column without one.

This module only reads the operations and states it is given: it imports
nothing of :mod:`ommi.migrations` at run time (the migrations sit above
``ommi.sql``), dispatching on :attr:`Operation.kind`.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ommi.errors import MigrationError
from ommi.models.constraints import ModelConstraint
from ommi.models.schema import Field, ModelSchema
from ommi.sql._statement import Compiled
from ommi.sql.compiler import SQLCompiler

if TYPE_CHECKING:
    from ommi.migrations.operations import (
        AddField,
        AddIndex,
        AddUnique,
        ChangeType,
        CreateModel,
        DropModel,
        MigrationStep,
        RemoveField,
        RemoveIndex,
        RemoveUnique,
        RenameField,
        SetDefault,
    )
    from ommi.migrations.state import FieldSpec, SchemaState

__all__ = ["MigrationSQL", "show"]


def show(statement: Compiled) -> str:
    """A statement as ``dry_run`` prints it: the SQL, then its parameters as a comment when there are any."""
    if not statement.params:
        return statement.sql
    return f"{statement.sql}  -- parameters: {statement.params!r}"


class MigrationSQL:
    """Standard SQL for each migration operation; SQL drivers subclass what their database spells otherwise.

    Args:
        compiler: the driver's compiler (with its dialect), the one its
            ``apply_schema`` uses.
    """

    def __init__(self, compiler: SQLCompiler) -> None:
        self.compiler = compiler
        self.dialect = compiler.dialect

    # -- dispatch -------------------------------------------------------------------

    def statements(self, step: MigrationStep) -> list[Compiled]:
        """The statements applying ``step.operation``, in order.

        Raises:
            MigrationError: the operation is of a kind this class does not know.
        """
        kind = step.operation.kind
        handler: Callable[[MigrationStep], list[Compiled]] | None = getattr(self, f"op_{kind}", None)
        if handler is None:
            raise MigrationError(
                f"{step.operation.describe()}: the {self.dialect.name} dialect's migrations have no "
                f"statements for {type(step.operation).__name__} operations"
            )
        return handler(step)

    # -- helpers ----------------------------------------------------------------------

    def table(self, schema: ModelSchema) -> str:
        """The quoted table of ``schema``."""
        return self.dialect.table(schema)

    def column(self, field: Field) -> str:
        """The quoted column of ``field``."""
        return self.dialect.quote(field.column)

    def column_definition(self, field: Field, *, default: Any = None) -> str:
        """``"name" TYPE [NOT NULL] [DEFAULT literal]`` for ``ADD COLUMN`` (never a key)."""
        definition = f"{self.column(field)} {self.compiler.column_type(field)}"
        if not field.nullable:
            definition += " NOT NULL"
        if default is not None:
            definition += f" DEFAULT {self.literal(field, default)}"
        return definition

    def literal(self, field: Field, value: Any) -> str:
        """``value`` (canonical, for ``field``) as an SQL literal, for DDL that takes no parameters.

        The value goes through the dialect's ``to_param`` first; numbers,
        booleans, text and bytes are spelled here, a finite ``Decimal`` as a
        numeric literal, a UUID, date or datetime as text the column's type
        reads.

        Raises:
            MigrationError: a value this dialect cannot inline.
        """
        convert = self.dialect.to_param(field.storage)
        value = convert(value) if convert is not None else value
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        if isinstance(value, str) and "\x00" not in value:
            return "'" + value.replace("'", "''") + "'"
        if isinstance(value, bytes):
            return f"X'{value.hex()}'"
        if isinstance(value, decimal.Decimal) and value.is_finite():
            return str(value)
        if isinstance(value, uuid.UUID):
            return f"'{value}'"
        if isinstance(value, _dt.date):  # a datetime too
            return f"'{value.isoformat()}'"
        raise MigrationError(f"{field!r}: the default {value!r} cannot be written into {self.dialect.name} DDL")

    def default_literal(self, field: Field, value: Any) -> str | None:
        """``value`` as the column DEFAULT of ``field``, or ``None`` when there is none (or it cannot be inlined)."""
        if value is None:
            return None
        try:
            return self.literal(field, value)
        except MigrationError:
            return None  # the rows are filled through a parameter; the column keeps no DEFAULT

    def column_defaults(self, state: SchemaState, name: str) -> dict[str, str]:
        """Column -> DEFAULT literal for each field of the model ``name`` in ``state`` that has a default."""
        schema = state.schema(name)
        defaults = {}
        for spec in state.model(name).fields:
            literal = self.default_literal(schema.by_column[spec.name], spec.default)
            if literal is not None:
                defaults[spec.name] = literal
        return defaults

    def default_change(self, table: str, column: str, field: Field, old: Any, new: Any) -> list[Compiled]:
        """``ALTER COLUMN ... SET DEFAULT`` (or ``DROP DEFAULT``) moving the column DEFAULT from ``old`` to ``new``."""
        literal = self.default_literal(field, new)
        if literal is not None:
            return [Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {literal}", [])]
        if self.default_literal(field, old) is not None:
            return [Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT", [])]
        return []

    def index_statements(self, schema: ModelSchema) -> list[Compiled]:
        """The indexes ``use_models`` creates for ``schema`` (``IF NOT EXISTS``)."""
        return [Compiled(sql, []) for sql in self.compiler.create_indexes(schema)]

    def conversion(self, column: str, old: FieldSpec, new: FieldSpec, field: Field) -> str:
        """An expression converting stored ``old`` values of ``column`` to ``new``'s type (``field`` is the new one)."""
        if old.type == new.type:
            return column
        return f"CAST({column} AS {self.compiler.column_type(field)})"

    # -- operations ---------------------------------------------------------------------

    def op_create_model(self, step: MigrationStep) -> list[Compiled]:
        """``CREATE TABLE`` and its indexes, as ``use_models`` writes them, plus the fields' column DEFAULTs."""
        operation = cast("CreateModel", step.operation)
        schema = step.after.schema(operation.model)
        defaults = self.column_defaults(step.after, operation.model)
        statements = self.compiler.create_statements(schema, defaults)
        return [Compiled(sql, []) for sql in statements] + self.index_statements(schema) + self.constraints(schema)

    def constraints(self, schema: ModelSchema) -> list[Compiled]:
        """The model's ``Unique``/``Index`` constraints, for a table just created (or rebuilt)."""
        return [Compiled(sql, []) for sql in self.compiler.constraint_statements(schema)]

    def _constraint(self, schema: ModelSchema, name: str) -> ModelConstraint:
        constraint = next((c for c in schema.constraints if c.name == name), None)
        if constraint is None:  # pragma: no cover - the states checked the operation
            raise MigrationError(f"the model {schema.name!r} has no index named {name!r} at this point")
        return constraint

    def op_add_index(self, step: MigrationStep) -> list[Compiled]:
        """``CREATE INDEX`` (as ``use_models`` makes it for ``Index``)."""
        operation = cast("AddIndex", step.operation)
        schema = step.after.schema(operation.model)
        return [Compiled(self.compiler.create_constraint(schema, self._constraint(schema, operation.name)), [])]

    def op_add_unique(self, step: MigrationStep) -> list[Compiled]:
        """The unique index or constraint; stored rows that collide fail it (``IntegrityError``), committing nothing."""
        operation = cast("AddUnique", step.operation)
        schema = step.after.schema(operation.model)
        return [Compiled(self.compiler.create_constraint(schema, self._constraint(schema, operation.name)), [])]

    def op_remove_index(self, step: MigrationStep) -> list[Compiled]:
        """``DROP INDEX``."""
        operation = cast("RemoveIndex", step.operation)
        schema = step.before.schema(operation.model)
        return [Compiled(self.compiler.drop_constraint(schema, self._constraint(schema, operation.name)), [])]

    def op_remove_unique(self, step: MigrationStep) -> list[Compiled]:
        """The unique index or constraint dropped."""
        operation = cast("RemoveUnique", step.operation)
        schema = step.before.schema(operation.model)
        return [Compiled(self.compiler.drop_constraint(schema, self._constraint(schema, operation.name)), [])]

    def op_drop_model(self, step: MigrationStep) -> list[Compiled]:
        """``DROP TABLE`` (and what the dialect drops with it)."""
        operation = cast("DropModel", step.operation)
        return [Compiled(sql, []) for sql in self.compiler.drop_statements(step.before.schema(operation.model))]

    def op_add_field(self, step: MigrationStep) -> list[Compiled]:
        """``ADD COLUMN ... DEFAULT`` (stored rows get the default); its index for a reference.

        The default stays the column's DEFAULT (the rule of this module). One
        that cannot be inlined is written by an ``UPDATE`` into a nullable
        column, which is then made ``NOT NULL``.
        """
        operation = cast("AddField", step.operation)
        schema = step.after.schema(operation.model)
        field = schema.by_column[operation.field.name]
        table = self.table(schema)
        column = self.column(field)
        definition = f"{column} {self.compiler.column_type(field)}"
        if field.reference is not None and self.dialect.foreign_keys:
            target = field.reference
            definition += f" REFERENCES {self.table(target.schema)} ({self.column(target)})"
        literal = self.default_literal(field, operation.field.default)
        if literal is not None or (operation.field.default is None and field.nullable):
            # One statement: the rows stored already read the DEFAULT (PostgreSQL rewrites nothing).
            if not field.nullable:
                definition += " NOT NULL"
            if literal is not None:
                definition += f" DEFAULT {literal}"
            return [Compiled(f"ALTER TABLE {table} ADD COLUMN {definition}", []), *self.index_statements(schema)]
        statements = [Compiled(f"ALTER TABLE {table} ADD COLUMN {definition}", [])]
        if operation.field.default is not None:
            statements.append(
                Compiled(
                    f"UPDATE {table} SET {column} = {self.dialect.placeholder}",
                    self.params(field, operation.field.default),
                )
            )
        if not field.nullable:
            statements.append(Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL", []))
        return statements + self.index_statements(schema)

    def op_remove_field(self, step: MigrationStep) -> list[Compiled]:
        """``DROP COLUMN`` (the database drops the column's index and foreign key with it)."""
        operation = cast("RemoveField", step.operation)
        schema = step.before.schema(operation.model)
        field = schema.by_column[operation.field.name]
        return [Compiled(f"ALTER TABLE {self.table(schema)} DROP COLUMN {self.column(field)}", [])]

    def op_rename_field(self, step: MigrationStep) -> list[Compiled]:
        """``RENAME COLUMN``; a referencing column's index is dropped and made again under its new name."""
        operation = cast("RenameField", step.operation)
        before = step.before.schema(operation.model)
        after = step.after.schema(operation.model)
        old, new = before.by_column[operation.old], after.by_column[operation.new]
        q = self.dialect.quote
        statements = [
            Compiled(f"ALTER TABLE {self.table(before)} RENAME COLUMN {self.column(old)} TO {self.column(new)}", [])
        ]
        if old.reference is not None:
            statements.append(Compiled(f"DROP INDEX IF EXISTS {q(self.compiler.index_name(before, old))}", []))
            statements += self.index_statements(after)
        return statements

    def op_change_type(self, step: MigrationStep) -> list[Compiled]:
        """``ALTER COLUMN ... TYPE ... USING``, ``NULL`` values filled, ``SET``/``DROP NOT NULL``, the DEFAULT moved."""
        operation = cast("ChangeType", step.operation)
        if operation.old.reference != operation.new.reference:
            raise MigrationError(
                f"{operation.describe()}: the {self.dialect.name} dialect's migrations do not change references yet"
            )
        schema = step.after.schema(operation.model)
        field = schema.by_column[operation.new.name]
        table, column = self.table(schema), self.column(field)
        statements = self.default_before_change(table, column, operation, field)
        if operation.old.type != operation.new.type:
            using = self.conversion(column, operation.old, operation.new, field)
            statements.append(
                Compiled(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {self.compiler.column_type(field)} USING {using}",
                    [],
                )
            )
        if operation.old.nullable and not operation.new.nullable:
            ph = self.dialect.placeholder
            statements.append(
                Compiled(
                    f"UPDATE {table} SET {column} = {ph} WHERE {column} IS NULL",
                    self.params(field, operation.new.default),
                )
            )
            statements.append(Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL", []))
        elif operation.new.nullable and not operation.old.nullable:
            statements.append(Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL", []))
        return statements + self.default_after_change(table, column, operation, field)

    def default_before_change(self, table: str, column: str, operation: ChangeType, field: Field) -> list[Compiled]:
        """``DROP DEFAULT`` before a change of type (the old DEFAULT is of the old type)."""
        old_default = operation.old.default
        if operation.old.type != operation.new.type and old_default is not None:
            return [Compiled(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT", [])]
        return []

    def default_after_change(self, table: str, column: str, operation: ChangeType, field: Field) -> list[Compiled]:
        """The column DEFAULT of ``operation.new`` once the column is changed (nothing when it stays as it was)."""
        old, new = operation.old.default, operation.new.default
        if operation.old.type != operation.new.type:
            old = None  # dropped by default_before_change
        if old == new:
            return []
        return self.default_change(table, column, field, old, new)

    def op_set_default(self, step: MigrationStep) -> list[Compiled]:
        """``ALTER COLUMN ... SET DEFAULT`` (or ``DROP DEFAULT``): the column DEFAULT follows the field's default.

        Stored rows are not touched.
        """
        operation = cast("SetDefault", step.operation)
        schema = step.after.schema(operation.model)
        field = schema.by_column[operation.field]
        return self.default_change(self.table(schema), self.column(field), field, operation.old, operation.new)

    def params(self, field: Field, value: Any) -> list[Any]:
        """``[value]`` as the client takes it (the dialect's ``to_param`` applied)."""
        convert = self.dialect.to_param(field.storage)
        return [convert(value) if convert is not None else value]
