"""Migration operations: each one change of the stored schema, as a frozen dataclass.

A migration file lists them in ``operations = [...]``. Every operation

* moves a :class:`~ommi.migrations.state.SchemaState` forward
  (:meth:`Operation.state_forwards`), which is how migration files replay
  into a state without the application's classes;
* says whether it is **destructive** (it drops stored data or narrows it:
  ``make`` refuses it unless told ``allow_destructive``);
* gives its **inverse** (what ``down`` applies), or ``None`` when the
  change cannot be undone;
* writes itself as Python for a migration file (:meth:`Operation.source`).

A driver applies an operation with the states before and after it (a
:class:`MigrationStep`), dispatching on :attr:`Operation.kind`. The
operations name models and fields by their stored names.

``AddIndex``/``RemoveIndex`` and ``AddUnique``/``RemoveUnique`` follow the
``Index`` and ``Unique`` markers of the models, by stored name. A new
operation is a new class with its own ``kind``; drivers that do not know a
kind refuse it with a ``MigrationError``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from ommi.errors import MigrationError
from ommi.migrations.state import FieldSpec, IndexSpec, ModelState, SchemaState

__all__ = [
    "CONVERSIONS",
    "AddField",
    "AddIndex",
    "AddUnique",
    "ChangeType",
    "Conversion",
    "CreateModel",
    "DropModel",
    "MigrationStep",
    "Operation",
    "RemoveField",
    "RemoveIndex",
    "RemoveUnique",
    "RenameField",
    "SetDefault",
    "python_literal",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Conversion:
    """How stored values of one type tag become values of another.

    Attributes:
        lossless: every stored value converts exactly (``False``: some lose
            precision, so the change is destructive).
        convert: canonical value of the old type -> canonical value of the new
            one (for drivers that convert in Python; SQL drivers cast).
    """

    lossless: bool
    convert: Callable[[Any], Any]


CONVERSIONS: Mapping[tuple[str, str], Conversion] = MappingProxyType(
    {
        ("bool", "int"): Conversion(True, int),
        ("int", "decimal"): Conversion(True, decimal.Decimal),
        ("int", "str"): Conversion(True, str),
        ("decimal", "str"): Conversion(True, str),
        ("uuid", "str"): Conversion(True, str),
        ("int", "float"): Conversion(False, float),
        ("decimal", "float"): Conversion(False, float),
    }
)
"""The type changes migrations convert stored values for: ``(old tag, new tag)`` -> :class:`Conversion`.

Any other change of type is refused; write it as a new field filled by the
migration's ``run(db)``, then remove the old one.
"""


def _text(value: str) -> str:
    """A string literal in double quotes where that needs no escaping, as formatters write it."""
    shown = repr(value)
    if '"' in value or not shown.startswith("'"):
        return shown
    return '"' + shown[1:-1].replace("\\'", "'") + '"'


def python_literal(value: Any) -> str:
    """``value`` (a canonical value) as Python source, for migration files.

    A JSON value (``dict`` / ``list``) is written as a literal of its items.
    ``Decimal``, ``UUID``, ``date`` and ``datetime`` values are written through
    the modules ``decimal``, ``uuid`` and ``datetime``, which the file imports.
    """
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, int, float, bytes)):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return f"decimal.Decimal({_text(str(value))})"
    if isinstance(value, uuid.UUID):
        return f"uuid.UUID({_text(str(value))})"
    if isinstance(value, _dt.datetime):
        return f"datetime.datetime.fromisoformat({_text(value.isoformat())})"
    if isinstance(value, _dt.date):
        return f"datetime.date.fromisoformat({_text(value.isoformat())})"
    if isinstance(value, list):  # a JSON default: canonical, so at most MAX_JSON_DEPTH levels deep
        return "[" + ", ".join(python_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(key)}: {python_literal(item)}" for key, item in value.items()) + "}"
    raise MigrationError(f"{value!r} ({type(value).__name__}) cannot be written in a migration file")


def _spec_source(spec: FieldSpec) -> str:
    parts = [_text(spec.name), _text(spec.type)]
    for name in ("nullable", "key", "generated"):
        if getattr(spec, name):
            parts.append(f"{name}=True")
    if spec.default is not None:
        parts.append(f"default={python_literal(spec.default)}")
    if spec.reference is not None:
        parts.append(f"reference={_text(spec.reference)}")
    return f"FieldSpec({', '.join(parts)})"


def _call(name: str, arguments: Iterable[str]) -> str:
    inner = "".join(f"    {argument},\n" for argument in arguments)
    return f"{name}(\n{inner})"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _fields_source(fields: Sequence[FieldSpec]) -> str:
    return "[\n" + "".join(f"    {_spec_source(f)},\n" for f in fields) + "]"


def _names_source(names: Sequence[str]) -> str:
    return "[" + ", ".join(_text(name) for name in names) + "]"


def _index_source(index: IndexSpec) -> str:
    unique = ", unique=True" if index.unique else ""
    return f"IndexSpec({_text(index.name)}, {_names_source(index.fields)}{unique})"


def _model_arguments(model: str, fields: Sequence[FieldSpec], indexes: Sequence[IndexSpec]) -> list[str]:
    """``CreateModel``/``DropModel`` arguments; ``indexes=`` only when there are some (older files read the same)."""
    arguments = [_text(model), _indent(_fields_source(fields)).lstrip()]
    if indexes:
        listed = "[\n" + "".join(f"    {_index_source(i)},\n" for i in indexes) + "]"
        arguments.append("indexes=" + _indent(listed).lstrip())
    return arguments


class Operation:
    """Base of every operation (each is a frozen dataclass naming its ``model`` first).

    Subclasses set :attr:`kind`, the name drivers dispatch on, and implement
    the methods below.
    """

    __slots__ = ()

    kind: ClassVar[str] = ""
    """Stable name of the operation for drivers (``"add_field"``...)."""

    model: str
    """The stored name of the model the operation changes."""

    def state_forwards(self, state: SchemaState) -> SchemaState:
        """The state after this operation.

        Raises:
            MigrationError: the operation does not fit ``state``.
        """
        raise NotImplementedError

    @property
    def destructive(self) -> bool:
        """Whether applying it drops stored data or narrows it (``make`` then needs ``allow_destructive``)."""
        return False

    def inverse(self) -> Operation | None:
        """The operation that undoes this one (schema-wise), or ``None`` when it cannot be undone."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for people: ``add field users.age (int, default 0)``."""
        raise NotImplementedError

    def source(self) -> str:
        """This operation as Python source, as a migration file lists it."""
        raise NotImplementedError

    def problem(self) -> str | None:
        """Why this operation cannot be applied whatever the data, or ``None`` (checked by ``make`` and replay)."""
        return None

    def _check(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise MigrationError(f"{self.describe()}: {problem}")


@dataclasses.dataclass(frozen=True, slots=True)
class CreateModel(Operation):
    """Create a model's table (or collection) with its key, references and indexes."""

    kind: ClassVar[str] = "create_model"
    model: str
    fields: Sequence[FieldSpec]
    """The fields (a list in migration files; kept as a tuple)."""
    indexes: Sequence[IndexSpec] = ()
    """Its unique constraints and indexes, made with the table (kept as a tuple)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "indexes", tuple(self.indexes))

    def state_forwards(self, state: SchemaState) -> SchemaState:
        if self.model in state:
            raise MigrationError(f"{self.describe()}: the model {self.model!r} exists already")
        return state.with_model(ModelState(self.model, self.fields, self.indexes))

    def inverse(self) -> Operation:
        return DropModel(self.model, self.fields, self.indexes)

    def describe(self) -> str:
        return f"create model {self.model}"

    def source(self) -> str:
        return _call("CreateModel", _model_arguments(self.model, self.fields, self.indexes))


@dataclasses.dataclass(frozen=True, slots=True)
class DropModel(Operation):
    """Drop a model's table (or collection) and every row of it. Destructive.

    It carries the dropped fields so that ``down`` can create the table again
    (empty: the rows are gone).
    """

    kind: ClassVar[str] = "drop_model"
    model: str
    fields: Sequence[FieldSpec]
    """The fields (a list in migration files; kept as a tuple)."""
    indexes: Sequence[IndexSpec] = ()
    """Its unique constraints and indexes, for ``down`` (kept as a tuple)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "indexes", tuple(self.indexes))

    def state_forwards(self, state: SchemaState) -> SchemaState:
        current = state.model(self.model)
        listed = ModelState(self.model, self.fields, self.indexes)
        if not current.same_fields(listed):
            raise MigrationError(f"{self.describe()}: the fields listed are not those of the model at this point")
        if not current.same_indexes(listed):
            raise MigrationError(f"{self.describe()}: the indexes listed are not those of the model at this point")
        referencing = [f"{m.name}.{f.name}" for m, f in state.referencing(self.model) if m.name != self.model]
        if referencing:
            raise MigrationError(f"{self.describe()}: {', '.join(referencing)} still reference it; remove those first")
        return state.without(self.model)

    @property
    def destructive(self) -> bool:
        return True

    def inverse(self) -> Operation:
        return CreateModel(self.model, self.fields, self.indexes)

    def describe(self) -> str:
        return f"drop model {self.model} (and its rows)"

    def source(self) -> str:
        return _call("DropModel", _model_arguments(self.model, self.fields, self.indexes))


def _replace_field(model: ModelState, name: str, spec: FieldSpec | None) -> ModelState:
    """``model`` with the field ``name`` replaced by ``spec`` (removed for ``None``); its indexes follow a new name."""
    fields = (
        [f for f in model.fields if f.name != name]
        if spec is None
        else [spec if f.name == name else f for f in model.fields]
    )
    indexes = model.indexes
    if spec is not None and spec.name != name:
        indexes = tuple(
            IndexSpec(i.name, [spec.name if f == name else f for f in i.fields], i.unique) for i in model.indexes
        )
    return model.replace(fields=tuple(fields), indexes=indexes)


@dataclasses.dataclass(frozen=True, slots=True)
class AddField(Operation):
    """Add a field; stored rows get ``field.default`` (required fields need one) or ``None``."""

    kind: ClassVar[str] = "add_field"
    model: str
    field: FieldSpec

    def problem(self) -> str | None:
        if self.field.key:
            return "a key field cannot be added to stored rows; create a new model and copy the rows in run(db)"
        if not self.field.nullable and self.field.default is None:
            return (
                "the field is required and has no default for the rows stored already; give it a default "
                "(a plain value, not a factory) or make it optional"
            )
        return None

    def state_forwards(self, state: SchemaState) -> SchemaState:
        self._check()
        model = state.model(self.model)
        if model.field(self.field.name) is not None:
            raise MigrationError(f"{self.describe()}: the model has a field {self.field.name!r} already")
        return state.with_model(model.replace(fields=(*model.fields, self.field)))

    def inverse(self) -> Operation:
        return RemoveField(self.model, self.field)

    def describe(self) -> str:
        return f"add field {self.model}.{self.field.name} ({self.field.describe()})"

    def source(self) -> str:
        return _call("AddField", [_text(self.model), _spec_source(self.field)])


@dataclasses.dataclass(frozen=True, slots=True)
class RemoveField(Operation):
    """Remove a field and its stored values. Destructive.

    It carries the removed field so that ``down`` can add it again (filled
    with its default, or ``None``: the values are gone).
    """

    kind: ClassVar[str] = "remove_field"
    model: str
    field: FieldSpec

    def problem(self) -> str | None:
        if self.field.key:
            return "a key field cannot be removed; create a new model and copy the rows in run(db)"
        return None

    def state_forwards(self, state: SchemaState) -> SchemaState:
        self._check()
        model = state.model(self.model)
        current = model.field(self.field.name)
        if current is None:
            raise MigrationError(f"{self.describe()}: the model has no field {self.field.name!r}")
        if current != self.field:
            raise MigrationError(f"{self.describe()}: the field is {current.describe()} at this point")
        indexed = [i.describe() for i in model.indexes if self.field.name in i.fields]
        if indexed:
            raise MigrationError(
                f"{self.describe()}: the {', '.join(indexed)} still name it; remove those first "
                "(RemoveIndex / RemoveUnique before RemoveField)"
            )
        return state.with_model(_replace_field(model, self.field.name, None))

    @property
    def destructive(self) -> bool:
        return True

    def inverse(self) -> Operation | None:
        added = AddField(self.model, self.field)
        return None if added.problem() else added

    def describe(self) -> str:
        return f"remove field {self.model}.{self.field.name} (and its values)"

    def source(self) -> str:
        return _call("RemoveField", [_text(self.model), _spec_source(self.field)])


@dataclasses.dataclass(frozen=True, slots=True)
class RenameField(Operation):
    """Store a field under another name; the values stay."""

    kind: ClassVar[str] = "rename_field"
    model: str
    old: str
    new: str

    def state_forwards(self, state: SchemaState) -> SchemaState:
        model = state.model(self.model)
        current = model.field(self.old)
        if current is None:
            raise MigrationError(f"{self.describe()}: the model has no field {self.old!r}")
        if model.field(self.new) is not None:
            raise MigrationError(f"{self.describe()}: the model has a field {self.new!r} already")
        return state.with_model(_replace_field(model, self.old, current.replace(name=self.new)))

    def inverse(self) -> Operation:
        return RenameField(self.model, self.new, self.old)

    def describe(self) -> str:
        return f"rename field {self.model}.{self.old} to {self.new}"

    def source(self) -> str:
        return _call("RenameField", [_text(self.model), _text(self.old), _text(self.new)])


@dataclasses.dataclass(frozen=True, slots=True)
class ChangeType(Operation):
    """Change how a field is stored: its type tag (:data:`CONVERSIONS`), whether it is optional, its reference.

    A required field made from an optional one fills the stored ``None``
    values with ``new.default`` (destructive: they cannot be told apart
    afterwards); a lossy conversion is destructive too. Keys and generated
    keys do not change here.
    """

    kind: ClassVar[str] = "change_type"
    model: str
    old: FieldSpec
    new: FieldSpec

    @property
    def conversion(self) -> Conversion | None:
        """How stored values convert, or ``None`` when the type tag stays."""
        if self.old.type == self.new.type:
            return None
        return CONVERSIONS.get((self.old.type, self.new.type))

    def problem(self) -> str | None:
        old, new = self.old, self.new
        if old.name != new.name:
            return "old and new must be the same field; a new name is a RenameField"
        if (old.key, old.generated) != (new.key, new.generated):
            return "a model's key cannot change; create a new model and copy the rows in run(db)"
        if old.type != new.type and (old.type, new.type) not in CONVERSIONS:
            possible = ", ".join(f"{a}->{b}" for a, b in CONVERSIONS)
            return (
                f"stored {old.type} values are not converted to {new.type} (conversions: {possible}); add a new "
                "field, fill it in the migration's run(db), then remove the old one"
            )
        if old.nullable and not new.nullable and new.default is None:
            return "the field becomes required: give it a default that replaces the stored None values"
        return None

    def state_forwards(self, state: SchemaState) -> SchemaState:
        self._check()
        model = state.model(self.model)
        current = model.field(self.old.name)
        if current != self.old:
            shown = "missing" if current is None else current.describe()
            raise MigrationError(f"{self.describe()}: the field is {shown} at this point")
        return state.with_model(_replace_field(model, self.old.name, self.new))

    @property
    def destructive(self) -> bool:
        conversion = self.conversion
        return (conversion is not None and not conversion.lossless) or (self.old.nullable and not self.new.nullable)

    def inverse(self) -> Operation | None:
        undo = ChangeType(self.model, self.new, self.old)
        return None if undo.problem() else undo

    def describe(self) -> str:
        return f"change field {self.model}.{self.old.name} from {self.old.describe()} to {self.new.describe()}"

    def source(self) -> str:
        return _call("ChangeType", [_text(self.model), _spec_source(self.old), _spec_source(self.new)])


@dataclasses.dataclass(frozen=True, slots=True)
class SetDefault(Operation):
    """Change the default a field fills rows with (``None``: none). Stored rows are not touched."""

    kind: ClassVar[str] = "set_default"
    model: str
    field: str
    old: Any
    new: Any

    def state_forwards(self, state: SchemaState) -> SchemaState:
        model = state.model(self.model)
        current = model.field(self.field)
        if current is None:
            raise MigrationError(f"{self.describe()}: the model has no field {self.field!r}")
        if current.default != self.old:
            raise MigrationError(f"{self.describe()}: the default is {current.default!r} at this point")
        return state.with_model(_replace_field(model, self.field, current.replace(default=self.new)))

    def inverse(self) -> Operation:
        return SetDefault(self.model, self.field, self.new, self.old)

    def describe(self) -> str:
        return f"set the default of {self.model}.{self.field} to {self.new!r}"

    def source(self) -> str:
        return _call(
            "SetDefault", [_text(self.model), _text(self.field), python_literal(self.old), python_literal(self.new)]
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _IndexOperation(Operation):
    """Base of the four index operations: one index (or unique constraint) of ``model``, by stored name.

    ``fields`` are stored field names in index order (a list in migration
    files, kept as a tuple); the removals keep them too, for ``down``.
    """

    unique: ClassVar[bool] = False
    adds: ClassVar[bool] = True
    model: str
    name: str
    fields: Sequence[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))

    def inverse(self) -> Operation:
        return _INVERSE_INDEX_OPERATION[type(self)](self.model, self.name, self.fields)

    @property
    def index(self) -> IndexSpec:
        """The index as data (checked: a name and at least one field)."""
        return IndexSpec(self.name, self.fields, self.unique)

    def _what(self) -> str:
        return "unique constraint" if self.unique else "index"

    def state_forwards(self, state: SchemaState) -> SchemaState:
        model = state.model(self.model)
        index = self.index
        current = model.index(self.name)
        if self.adds:
            if current is not None:
                raise MigrationError(f"{self.describe()}: the model has an index named {self.name!r} already")
            missing = [f for f in index.fields if model.field(f) is None]
            if missing:
                raise MigrationError(f"{self.describe()}: the model has no field {', '.join(map(repr, missing))}")
            return state.with_model(model.replace(indexes=(*model.indexes, index)))
        if current != index:
            shown = "missing" if current is None else current.describe()
            raise MigrationError(f"{self.describe()}: the {self._what()} is {shown} at this point")
        return state.with_model(model.replace(indexes=tuple(i for i in model.indexes if i.name != self.name)))

    def describe(self) -> str:
        verb = "add" if self.adds else "remove"
        return f"{verb} {self._what()} {self.model}.{self.name} on ({', '.join(self.fields)})"

    def source(self) -> str:
        return _call(type(self).__name__, [_text(self.model), _text(self.name), _names_source(self.fields)])


@dataclasses.dataclass(frozen=True, slots=True)
class AddIndex(_IndexOperation):
    """Create an index over stored fields (``Index`` in the models); the rows stay as they are."""

    kind: ClassVar[str] = "add_index"


@dataclasses.dataclass(frozen=True, slots=True)
class RemoveIndex(_IndexOperation):
    """Drop an index; no stored value is lost (so it is not destructive)."""

    kind: ClassVar[str] = "remove_index"
    adds: ClassVar[bool] = False


@dataclasses.dataclass(frozen=True, slots=True)
class AddUnique(_IndexOperation):
    """Refuse from now on a second row with equal values in all ``fields`` (``Unique`` in the models).

    Stored rows that already collide make it fail with ``IntegrityError``;
    the migration then commits nothing (SQL) or leaves no index (MongoDB).
    """

    kind: ClassVar[str] = "add_unique"
    unique: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True)
class RemoveUnique(_IndexOperation):
    """Drop a unique constraint: equal values are accepted from now on; no stored value is lost."""

    kind: ClassVar[str] = "remove_unique"
    unique: ClassVar[bool] = True
    adds: ClassVar[bool] = False


_INVERSE_INDEX_OPERATION: dict[type[_IndexOperation], type[_IndexOperation]] = {
    AddIndex: RemoveIndex,
    RemoveIndex: AddIndex,
    AddUnique: RemoveUnique,
    RemoveUnique: AddUnique,
}


@dataclasses.dataclass(frozen=True)
class MigrationStep:
    """One operation of one migration, as a driver applies it (``MigrationTransaction.apply_operation``).

    Attributes:
        migration: the migration's id.
        index: the operation's position in the migration (``down`` counts
            the inverse operations from 0 too); with ``migration`` and
            ``reverse`` it identifies the step for drivers that record progress.
        operation: what to apply.
        before: the schema before it.
        after: the schema after it.
        reverse: whether the step belongs to ``down``.
    """

    migration: str
    index: int
    operation: Operation
    before: SchemaState
    after: SchemaState
    reverse: bool = False
