"""The schema as migrations see it: models and fields as plain data, without the application's classes.

A :class:`SchemaState` maps each stored model name (table or collection) to a
:class:`ModelState`, an ordered tuple of :class:`FieldSpec`. It is built two
ways, which :func:`ommi.migrations.diff` compares:

* from the application's models (:meth:`SchemaState.from_models`), reading
  each :class:`~ommi.models.schema.ModelSchema`;
* by replaying the operations of the migration files in order, starting from
  the empty state (:meth:`SchemaState.apply`), which imports nothing of the
  application (Django's way).

A field is described by what is stored, never by the Python class that holds
it: its stored name, a stable type tag (:data:`TYPE_TAGS`), nullability, key,
whether the database generates it, the default that fills existing rows when
it is added, and the model it references. An ``Enum`` field is its values'
tag; a field stored through a codec is the codec's storage type.

:meth:`SchemaState.schema` turns a model of the state back into a
:class:`~ommi.models.schema.ModelSchema` (a dataclass built for it, in a
collection of its own): drivers build the statements of a migration with it,
exactly as ``use_models`` would for the application's model, and a
migration's ``run(db)`` queries through it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import decimal
import functools
import inspect
import keyword
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any

from ommi.errors import MigrationError, ModelDefinitionError, OmmiError, ValidationError
from ommi.models.collections import ModelCollection
from ommi.models.constraints import MAX_NAME_BYTES, Index, Unique
from ommi.models.decorator import ommi_model
from ommi.models.metadata import Auto, Key, ReferenceTo, StoreAs, TimezoneAware
from ommi.models.schema import ModelSchema, get_schema, is_model
from ommi.models.types import StorageType, check_canonical

if TYPE_CHECKING:
    from ommi.migrations.operations import Operation

__all__ = [
    "HISTORY_TABLE",
    "TYPE_TAGS",
    "FieldSpec",
    "IndexSpec",
    "ModelState",
    "SchemaState",
    "is_historical",
]

HISTORY_TABLE = "ommi_migrations"
"""The stored name of the applied-migrations history; no model may use it."""

TYPE_TAGS: Mapping[StorageType, str] = MappingProxyType(
    {
        StorageType.INTEGER: "int",
        StorageType.FLOAT: "float",
        StorageType.DECIMAL: "decimal",
        StorageType.BOOLEAN: "bool",
        StorageType.TEXT: "str",
        StorageType.BYTES: "bytes",
        StorageType.UUID: "uuid",
        StorageType.DATE: "date",
        StorageType.DATETIME: "datetime",
        StorageType.DATETIME_TZ: "datetime_tz",
        StorageType.JSON: "json",
    }
)
"""The type tag of each storage type, as migration files spell it (stable across Ommi versions)."""

_STORAGE_OF_TAG = {tag: storage for storage, tag in TYPE_TAGS.items()}

_PYTHON_TYPE: dict[str, Any] = {
    "int": int,
    "float": float,
    "decimal": decimal.Decimal,
    "bool": bool,
    "str": str,
    "bytes": bytes,
    "uuid": uuid.UUID,
    "date": _dt.date,
    "datetime": _dt.datetime,
    "datetime_tz": _dt.datetime,
    # Migrations do not know whether an object or an array was stored: either passes.
    "json": dict[str, Any] | list[Any],
}


def _reserved(name: str) -> bool:
    return name.casefold() == HISTORY_TABLE


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One stored field, as data.

    Args:
        name: the stored name (column or document field), after ``StoreAs``.
        type: the type tag, one of :data:`TYPE_TAGS` (``"int"``, ``"str"``...).
        nullable: whether ``None`` may be stored (never for a key).
        key: whether the field is (part of) the model's key.
        generated: whether the database generates the value (the single int key).
        default: the canonical value that fills the rows stored before the
            field was added (or was made required); ``None`` for none.
        reference: the stored name of the model whose single key the field holds.

    Raises:
        MigrationError: the values contradict each other (an unknown tag, a
            nullable key, a default of another type...).
    """

    name: str
    type: str
    nullable: bool = False
    key: bool = False
    generated: bool = False
    default: Any = None
    reference: str | None = None

    def __post_init__(self) -> None:
        where = f"FieldSpec({self.name!r}, {self.type!r})"
        if not isinstance(self.name, str) or not self.name or "\x00" in self.name:
            raise MigrationError(f"{where}: a field needs a non-empty name without NUL characters")
        if self.type not in _STORAGE_OF_TAG:
            raise MigrationError(f"{where}: unknown type tag; use one of {', '.join(sorted(_STORAGE_OF_TAG))}")
        if self.key and self.nullable:
            raise MigrationError(f"{where}: a key field cannot be nullable")
        if self.generated and not (self.key and self.type == "int"):
            raise MigrationError(f"{where}: only an int key is generated by the database")
        if self.reference is not None and (not isinstance(self.reference, str) or not self.reference):
            raise MigrationError(f"{where}: reference must name a model (its stored name)")
        if self.default is not None:
            try:
                canonical = check_canonical(self.storage, self.default)
            except (ValidationError, TypeError, ValueError) as exc:
                raise MigrationError(
                    f"{where}: the default {self.default!r} is not a {self.type} value ({exc})"
                ) from None
            if self.type == "datetime_tz" and canonical.tzinfo is None:
                raise MigrationError(f"{where}: the default of a datetime_tz field must be an aware datetime")

    @property
    def storage(self) -> StorageType:
        """The :class:`~ommi.models.types.StorageType` of the tag."""
        return _STORAGE_OF_TAG[self.type]

    def replace(self, **changes: Any) -> FieldSpec:
        """A copy with ``changes`` applied (``spec.replace(nullable=True)``)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """``int, nullable, default 0``: the type and whatever is not the default, for messages."""
        parts = [self.type]
        if self.nullable:
            parts.append("optional")
        if self.key:
            parts.append("generated key" if self.generated else "key")
        if self.reference is not None:
            parts.append(f"references {self.reference}")
        if self.default is not None:
            parts.append(f"default {self.default!r}")
        return ", ".join(parts)


@dataclasses.dataclass(frozen=True, slots=True)
class IndexSpec:
    """One unique constraint or index of a model, as data (``Unique``/``Index`` in the models).

    Args:
        name: its stored name (what the models gave, or computed).
        fields: the stored names of its fields, in index order.
        unique: a unique constraint (``True``) or a plain index.

    Raises:
        MigrationError: no field, a field twice, or a name that is empty or too long.
    """

    name: str
    fields: Sequence[str]
    """The stored field names, in order (kept as a tuple)."""
    unique: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        where = f"IndexSpec({self.name!r})"
        if not isinstance(self.name, str) or not self.name or "\x00" in self.name:
            raise MigrationError(f"{where}: an index needs a non-empty name without NUL characters")
        if len(self.name.encode()) > MAX_NAME_BYTES:
            raise MigrationError(f"{where}: the name is longer than {MAX_NAME_BYTES} bytes")
        if not self.fields or not all(isinstance(f, str) and f for f in self.fields):
            raise MigrationError(f"{where}: fields must be a non-empty list of stored field names")
        if len(set(self.fields)) != len(self.fields):
            raise MigrationError(f"{where}: a field is named twice")

    def describe(self) -> str:
        """``unique uq_users_email_... on (email)``, for messages."""
        return f"{'unique ' if self.unique else 'index '}{self.name} on ({', '.join(self.fields)})"


@dataclasses.dataclass(frozen=True, slots=True)
class ModelState:
    """One model (table or collection) as data: its stored name, its fields in order, and its indexes.

    Raises:
        MigrationError: no field, two fields with one stored name, no key,
            ``generated`` not on the single int key (Ommi generates exactly that one),
            or an index naming a field the model does not have (or a name twice).
    """

    name: str
    fields: Sequence[FieldSpec]
    """The fields, in order (kept as a tuple)."""
    indexes: Sequence[IndexSpec] = ()
    """Its unique constraints and indexes (kept as a tuple; their order does not count)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "\x00" in self.name:
            raise MigrationError(f"a model needs a non-empty stored name without NUL characters, not {self.name!r}")
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "indexes", tuple(self.indexes))
        if not self.fields or not all(isinstance(f, FieldSpec) for f in self.fields):
            raise MigrationError(f"model {self.name!r}: fields must be a non-empty list of FieldSpec")
        names = [f.name for f in self.fields]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise MigrationError(f"model {self.name!r}: several fields are stored as {twice}")
        key = [f for f in self.fields if f.key]
        if not key:
            raise MigrationError(f"model {self.name!r}: no field is a key")
        single_int = len(key) == 1 and key[0].type == "int"
        if single_int != any(f.generated for f in self.fields):
            raise MigrationError(
                f"model {self.name!r}: a single int key is generated by the database and nothing else is; "
                "mark it generated=True (and no other field)"
            )
        if not all(isinstance(i, IndexSpec) for i in self.indexes):
            raise MigrationError(f"model {self.name!r}: indexes must be a list of IndexSpec")
        index_names = [i.name for i in self.indexes]
        twice = sorted({n for n in index_names if index_names.count(n) > 1})
        if twice:
            raise MigrationError(f"model {self.name!r}: several indexes are named {twice}")
        for index in self.indexes:
            unknown = [f for f in index.fields if f not in names]
            if unknown:
                raise MigrationError(
                    f"model {self.name!r}: the {index.describe()} names fields the model does not have: {unknown}"
                )

    def index(self, name: str) -> IndexSpec | None:
        """The index (or unique constraint) named ``name``, or ``None``."""
        return next((i for i in self.indexes if i.name == name), None)

    def field(self, name: str) -> FieldSpec | None:
        """The field stored as ``name``, or ``None``."""
        return next((f for f in self.fields if f.name == name), None)

    @property
    def key(self) -> tuple[FieldSpec, ...]:
        """The key fields, in order."""
        return tuple(f for f in self.fields if f.key)

    def same_fields(self, other: ModelState) -> bool:
        """Whether ``other`` has the same fields, in any order (order is not part of a stored schema)."""
        return {f.name: f for f in self.fields} == {f.name: f for f in other.fields}

    def same_indexes(self, other: ModelState) -> bool:
        """Whether ``other`` has the same indexes and unique constraints, in any order."""
        return set(self.indexes) == set(other.indexes)

    def replace(self, **changes: Any) -> ModelState:
        """A copy with ``changes`` applied (``model.replace(indexes=...)``)."""
        return dataclasses.replace(self, **changes)


class SchemaState:
    """Every model of a schema by stored name: an immutable value.

    Two states are equal when they hold the same models with the same fields,
    whatever the order. :meth:`apply` returns a new state; the state itself
    never changes.
    """

    __slots__ = ("_classes", "_models")

    _classes: dict[str, type[Any]] | None

    def __init__(self, models: Iterable[ModelState] = ()) -> None:
        table: dict[str, ModelState] = {}
        for model in models:
            if model.name in table:
                raise MigrationError(f"the model {model.name!r} is defined twice")
            table[model.name] = model
        self._models: Mapping[str, ModelState] = MappingProxyType(table)
        self._classes: dict[str, type] | None = None

    # -- reading -----------------------------------------------------------------

    @property
    def models(self) -> Mapping[str, ModelState]:
        """Stored name -> :class:`ModelState`, in the order the models were added."""
        return self._models

    def __iter__(self) -> Iterator[ModelState]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaState):
            return NotImplemented
        return self._models.keys() == other._models.keys() and all(
            model.same_fields(other._models[name]) and model.same_indexes(other._models[name])
            for name, model in self._models.items()
        )

    def __repr__(self) -> str:
        return f"<SchemaState {', '.join(self._models) or 'empty'}>"

    def model(self, name: str) -> ModelState:
        """The model stored as ``name``.

        Raises:
            MigrationError: there is no such model in this state.
        """
        model = self._models.get(name)
        if model is None:
            known = ", ".join(sorted(self._models)) or "none"
            raise MigrationError(f"there is no model {name!r} at this point of the migrations (models: {known})")
        return model

    def referencing(self, name: str) -> list[tuple[ModelState, FieldSpec]]:
        """The fields of other models (or of ``name`` itself) that reference the model ``name``."""
        return [(m, f) for m in self for f in m.fields if f.reference == name]

    # -- changing (a new state each time) ------------------------------------------

    def with_model(self, model: ModelState) -> SchemaState:
        """This state with ``model`` added or replacing the model of the same name."""
        models = dict(self._models)
        models[model.name] = model
        return SchemaState(models.values())

    def without(self, name: str) -> SchemaState:
        """This state without the model ``name``."""
        return SchemaState(m for m in self if m.name != name)

    def apply(self, operation: Operation) -> SchemaState:
        """The state after ``operation`` (checked: a migration file that does not fit fails here).

        Raises:
            MigrationError: the operation does not fit this state (a field
                that is not there, a reference to a missing model...).
        """
        after = operation.state_forwards(self)
        after.check()
        return after

    def check(self) -> None:
        """Raise :class:`MigrationError` for a reference that names no model (or a model without a single key)."""
        for model in self:
            if _reserved(model.name):
                raise MigrationError(
                    f"the model name {model.name!r} is Ommi's migration history table; no model may use it"
                )
            for f in model.fields:
                if f.reference is None:
                    continue
                target = self._models.get(f.reference)
                if target is None:
                    raise MigrationError(f"{model.name}.{f.name} references {f.reference!r}, which is not a model")
                if len(target.key) != 1:
                    raise MigrationError(f"{model.name}.{f.name} references {f.reference!r}, whose key is composite")
                if target.key[0].type != f.type:
                    raise MigrationError(
                        f"{model.name}.{f.name} ({f.type}) references {f.reference!r}, "
                        f"whose key is {target.key[0].type}"
                    )

    # -- from the application's models ------------------------------------------------

    @classmethod
    def from_models(cls, models: Iterable[type] | ModelCollection) -> SchemaState:
        """The state the application's models describe.

        Raises:
            MigrationError: a model uses the history table's name, or references a
                model that is not among ``models``.
            ModelDefinitionError: a model cannot be mapped at all.
        """
        schemas = []
        for model in models:
            if not is_model(model):
                raise MigrationError(f"{model!r} is not an Ommi model; decorate it with @ommi_model")
            schemas.append(get_schema(model))
        state = SchemaState(_model_state(schema) for schema in schemas)
        for schema in schemas:
            if _reserved(schema.name):
                raise MigrationError(
                    f"model {schema.cls.__module__}.{schema.cls.__qualname__} is stored as {schema.name!r}, the "
                    f"name of Ommi's migration history table ({HISTORY_TABLE}); name it otherwise with "
                    "@ommi_model(name=...)"
                )
            for f in schema.fields:
                if f.reference is not None and f.reference.schema.name not in state:
                    raise MigrationError(
                        f"{schema.cls.__qualname__}.{f.name} references {f.reference.schema.cls.__qualname__}, "
                        "which is not among the models given to the migration; add its model (or collection)"
                    )
        state.check()
        return state

    # -- back to model schemas (for drivers and run(db)) ---------------------------------

    def model_classes(self) -> Mapping[str, type[Any]]:
        """A model class per model of the state (dataclasses made for it), by stored name.

        The classes belong to a :class:`~ommi.models.ModelCollection` of their
        own, never the global one, so no implicit set-up touches them. Their
        attributes are the stored names where those are Python identifiers.
        """
        if self._classes is None:
            self._classes = _build_classes(self)
        return MappingProxyType(self._classes)

    def schema(self, name: str) -> ModelSchema:
        """The :class:`~ommi.models.schema.ModelSchema` of the model ``name`` in this state.

        Raises:
            MigrationError: there is no such model in this state.
        """
        self.model(name)
        return get_schema(self.model_classes()[name])


# -- from models ------------------------------------------------------------------------


def _model_state(schema: ModelSchema) -> ModelState:
    defaults = _constructor_defaults(schema.cls)
    fields = []
    for f in schema.fields:
        default = None
        raw = defaults.get(f.name, inspect.Parameter.empty)
        if raw is not inspect.Parameter.empty and raw is not None and not f.key:
            try:
                default = f.encode(raw)
            except (OmmiError, TypeError, ValueError):
                default = None  # a default the field refuses: the add step says a default is missing
            if not isinstance(default, _LITERAL_TYPES):
                default = None
        fields.append(
            FieldSpec(
                f.column,
                TYPE_TAGS[f.storage],
                nullable=f.nullable and not f.key,
                key=f.key,
                generated=f is schema.auto_field,
                default=default,
                reference=f.reference.schema.name if f.reference is not None else None,
            )
        )
    indexes = tuple(IndexSpec(c.name, c.columns, c.unique) for c in schema.constraints)
    return ModelState(schema.name, tuple(fields), indexes)


_LITERAL_TYPES = (bool, int, float, str, bytes, decimal.Decimal, uuid.UUID, _dt.date)
"""Canonical values a migration file can spell (``datetime`` is a ``date``)."""


def _constructor_defaults(cls: type) -> dict[str, Any]:
    """Each field's plain default, read from the constructor's signature (dataclasses, attrs, pydantic alike).

    A ``default_factory`` shows up as a marker object, which no field accepts;
    the caller drops it.
    """
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}


# -- back to classes ------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"\W")


def _python_name(text: str, taken: set[str], prefix: str) -> str:
    name = _IDENTIFIER.sub("_", text)
    if not name or name[0].isdigit() or keyword.iskeyword(name) or name.startswith("__"):
        name = f"{prefix}{name}"
    base, number = name, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


class _StateCollection(ModelCollection):
    """The collection of the model classes of one :class:`SchemaState` (see :func:`is_historical`)."""


def _build_classes(state: SchemaState) -> dict[str, type[Any]]:
    collection = _StateCollection(f"ommi.migrations state ({', '.join(state.models) or 'empty'})")
    class_names: dict[str, str] = {}
    taken: set[str] = set()
    for model in state:
        class_names[model.name] = _python_name(model.name, taken, "Model_")
    classes: dict[str, type[Any]] = {}
    for model in state:
        attributes: set[str] = {"save", "delete", "reload"}
        fields: list[tuple[str, Any, Any]] = []
        attribute_of: dict[str, str] = {}
        for spec in model.fields:
            attribute = attribute_of[spec.name] = _python_name(spec.name, attributes, "f_")
            python_type: Any = _PYTHON_TYPE[spec.type]
            markers: list[Any] = []
            if spec.key:
                markers.append(Key)
            if spec.generated:
                markers.append(Auto)
            if spec.type == "datetime_tz":
                markers.append(TimezoneAware)
            if attribute != spec.name:
                markers.append(StoreAs(spec.name))
            if spec.reference is not None:
                markers.append(ReferenceTo(class_names[spec.reference]))
            if spec.nullable:
                python_type = python_type | None
            annotation = Annotated[(python_type, *markers)] if markers else python_type
            if isinstance(spec.default, (dict, list)):
                # A JSON default: a fresh copy per instance (dataclasses refuse a mutable default).
                made = dataclasses.field(default_factory=functools.partial(copy.deepcopy, spec.default))
            else:
                made = dataclasses.field(default=spec.default)
            fields.append((attribute, annotation, made))
        cls = dataclasses.make_dataclass(class_names[model.name], fields, kw_only=True)
        cls.__module__ = __name__
        cls.__doc__ = f"The model {model.name!r} as the migrations describe it at this point."
        constraints = [
            (Unique if index.unique else Index)(*(attribute_of[f] for f in index.fields), name=index.name)
            for index in model.indexes
        ]
        try:
            classes[model.name] = ommi_model(collection=collection, name=model.name, constraints=constraints or None)(
                cls
            )
        except ModelDefinitionError as exc:
            raise MigrationError(f"the model {model.name!r} of the migrations cannot be mapped: {exc}") from exc
    return classes


def is_historical(schema: ModelSchema) -> bool:
    """Whether ``schema`` was built from a migration state (:meth:`SchemaState.schema`), not by the application."""
    return isinstance(schema.collection, _StateCollection)
