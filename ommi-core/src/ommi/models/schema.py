"""Model schemas: what Ommi knows about a model class, and its fields.

``@ommi_model`` attaches a :class:`ModelSchema` to the class (``Model.__ommi__``)
and puts a :class:`Field` behind every stored attribute, so that ``User.name``
is a query operand while ``user.name`` stays the plain value. Annotations are
resolved at decoration when possible, else at first use (forward references).

Late binding: a field's codec comes from ``ommi.plugins.codecs()``, imported
when a field is made (see :func:`_find_codec`). ``ommi.plugins`` loads core's
own plugin, which is built on this package, so it cannot be imported while
this module is; it is the one documented exception to "every import at the
top" in ommi-core, with ``ommi.plugins.model_adapters()`` in
:mod:`ommi.models.decorator`.
"""

from __future__ import annotations

import json
import operator
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Union

from ommi._codegen import generate
from ommi._rowcode import Builders, compile_builders
from ommi.errors import ModelDefinitionError, QueryError, SchemaMismatchError, ValidationError
from ommi.expressions import (
    FOLDED_TEXT_OPS,
    ORDERING_OPS,
    Comparison,
    Expr,
    FieldComparison,
    JsonComparison,
    JsonHas,
    Op,
    Operand,
    SortKey,
    _ComparisonOperators,
)
from ommi.models.adapters import positional_constructor
from ommi.models.constraints import (
    Constraint,
    Index,
    ModelConstraint,
    Unique,
    check_name,
    constraint_name,
)
from ommi.models.metadata import Auto, Key, ReferenceTo, StoreAs, TimezoneAware, iter_metadata
from ommi.models.relations import (
    Relation,
    RelationDescriptor,
    looks_like_relation,
    read_relation,
    relation_from_annotation,
)
from ommi.models.types import (
    CHECKERS,
    FAST_CHECKS,
    INT64_MAX,
    INT64_MIN,
    MAX_JSON_DEPTH,
    Codec,
    StorageType,
    check_json,
)

if TYPE_CHECKING:
    from ommi.models.adapters import ModelAdapter
    from ommi.models.collections import ModelCollection

__all__ = ["Field", "JsonPath", "ModelSchema", "get_schema", "is_model"]


class Field(Operand):
    """A stored field of a model; also the operand of query conditions.

    Attributes:
        schema: the model the field belongs to.
        name: the attribute name.
        column: the stored name (``StoreAs``), defaulting to ``name``.
        python_type: the annotation with ``Optional`` and ``Annotated`` removed.
        nullable: whether ``None`` may be stored.
        storage: the storage type drivers map to a native type.
        key: whether the field is (part of) the key.
        auto: whether the database generates the value when it is ``None``.
        reference: the referenced field, for ``ReferenceTo`` fields.
    """

    __slots__ = (
        "_check",
        "_decode",
        "_encode",
        "_marks",
        "_reference_spec",
        "auto",
        "codec",
        "column",
        "index",
        "key",
        "name",
        "nullable",
        "python_type",
        "reference",
        "schema",
        "storage",
    )

    def __init__(
        self,
        schema: ModelSchema,
        name: str,
        index: int,
        python_type: type,
        nullable: bool,
        codec: Codec,
        storage: StorageType,
        *,
        column: str,
        key: bool,
        auto: bool,
        reference_spec: ReferenceTo | None,
    ) -> None:
        self.schema = schema
        self.name = name
        self.index = index
        self.python_type = python_type
        self.nullable = nullable
        self.codec = codec
        self.storage = storage
        self.column = column
        self.key = key
        self.auto = auto
        self._reference_spec = reference_spec
        self._marks: tuple[bool, ...] = ()
        """One entry per ``Unique`` (``True``) or ``Index`` (``False``) marker of the field, in order."""
        self.reference: Field | None = None
        self._encode = codec.encode
        self._check = CHECKERS[storage]
        decode = codec.decode
        if decode is not None and codec.decode_with_type:
            raw_decode = decode
            decode = lambda value, _t=python_type: raw_decode(value, _t)  # noqa: E731
        self._decode = decode

    def __repr__(self) -> str:
        return f"{self.schema.cls.__name__}.{self.name}"

    def encode(self, value: Any) -> Any:
        """Validate an application value and return its canonical storage value.

        Raises:
            ValidationError: the value does not fit the field; the message names it.
        """
        if value is None:
            if self.nullable or self.auto:
                return None
            raise ValidationError(f"{self!r} is not optional and cannot be None")
        try:
            if self._encode is not None:
                value = self._encode(value)
            value = self._check(value)
            if self._decode is not None:
                # Refuse now what could not be read back later (a value outside an Enum).
                self._decode(value)
            return value
        except ValidationError as exc:
            raise ValidationError(f"{self!r}: {exc}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValidationError(f"{self!r}: {value!r} cannot be stored: {exc}") from exc

    def decode(self, value: Any) -> Any:
        """Turn a canonical value back into the application's value."""
        if value is None or self._decode is None:
            return value
        return self._decode(value)

    # -- query operands (the operators of Operand end here) ------------------

    # __getitem__ would make a field iterable by the old sequence protocol (list(Post.tags) would never end).
    __iter__ = None

    def __contains__(self, item: object) -> NoReturn:
        raise QueryError(
            f"{item!r} in {self!r}: `in` has no meaning in a query; test a JSON array with "
            f"ommi.field({self!r}).has(value), a value with ommi.field(Model.field).in_([...])"
        )

    def __getitem__(self, step: str | int) -> JsonPath:
        """``Post.meta["plan"]``: the value at a key (``str``) or array index (``int``) inside a JSON field.

        Raises:
            QueryError: the field is not a JSON field, or the step is not a valid key or index.
        """
        if self.storage is not StorageType.JSON:
            raise QueryError(f"{self!r}[{step!r}]: only JSON fields (dict[...] / list[...]) are read by path")
        return JsonPath(self, (_path_step(self, step),))

    def has(self, value: Any) -> Expr:
        """The JSON array field holds an element equal to ``value`` (type-strict: ``1`` is not ``True`` nor ``"1"``).

        Typed spelling: ``ommi.field(Post.tags).has("x")``.

        Raises:
            QueryError: the field is not a JSON field, or ``value`` is not a str, int, float or bool.
        """
        if self.storage is not StorageType.JSON:
            raise QueryError(f"{self!r}.has(): only JSON fields (list[...]) have elements")
        return JsonHas(self, (), _json_operand(repr(self), "has", value))

    def _compare(self, op: Op, value: Any) -> Expr:
        if self.storage is StorageType.JSON and not (value is None and op in (Op.EQ, Op.NE)):
            raise QueryError(
                f"{self!r} {op.value} {value!r}: a JSON field is compared by path (Model.field['key'] == value) or "
                "tested with == None / != None and .has(value), never as a whole"
            )
        if isinstance(value, Field):
            if self.storage is not value.storage:
                raise QueryError(
                    f"cannot compare {self!r} ({self.storage.value}) with {value!r} ({value.storage.value})"
                )
            return FieldComparison(self, op, value)
        if value is None:
            if op is Op.EQ:
                return Comparison(self, Op.IS_NULL)
            if op is Op.NE:
                return Comparison(self, Op.IS_NOT_NULL)
            raise QueryError(f"{self!r} {op.value} None is not a valid comparison; use == None or != None")
        return Comparison(self, op, self.encode(value))

    def _compare_many(self, op: Op, values: Iterable[Any]) -> Expr:
        if self.storage is StorageType.JSON:
            raise QueryError(f"{self!r}.in_() / .not_in(): a JSON field is compared by path, or tested with .has()")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise QueryError(f"{self!r}.in_() / .not_in() take a collection of values, not {values!r}")
        encoded = []
        for value in values:
            if value is None:
                raise QueryError(f"{self!r}.in_() / .not_in() cannot hold None; use == None")
            encoded.append(self.encode(value))
        return Comparison(self, op, tuple(dict.fromkeys(encoded)))

    def _compare_text(self, op: Op, text: Any) -> Expr:
        method = op.value.removeprefix("i") + ("(..., case_sensitive=False)" if op in FOLDED_TEXT_OPS else "()")
        if self.storage is StorageType.JSON:
            raise QueryError(f"{self!r}.{method} needs a text field; compare a path: Model.field['key']")
        if self.storage is not StorageType.TEXT:
            raise QueryError(f"{self!r}.{method} needs a text field, not {self.storage.value}")
        if not isinstance(text, str):
            raise ValidationError(f"{self!r}.{method} takes a str, not {type(text).__name__}")
        return Comparison(self, op, self.encode(text))

    def _sort_key(self, descending: bool) -> SortKey:
        if self.storage is StorageType.JSON:
            raise QueryError(
                f"cannot sort by {self!r}, a JSON field: databases order JSON values differently; "
                "sort by a plain field holding the value"
            )
        return SortKey(self, descending)


def _path_step(field: Field, step: Any) -> str | int:
    """A checked step of a JSON path: an object key or an array index.

    Raises:
        QueryError: a key that no stored value can have (see ``check_json``) or
            that SQLite's path syntax cannot name (a ``"``, a backslash, a
            control character), or an index that is negative or not an int.
    """
    if isinstance(step, bool) or not isinstance(step, (str, int)):
        raise QueryError(f"{field!r}[{step!r}]: a path step is a str key or an int index, not {type(step).__name__}")
    if isinstance(step, int):
        if not 0 <= step < 2**31:
            raise QueryError(f"{field!r}[{step}]: an array index is an int from 0 to 2**31 - 1 (no negative indexes)")
        return int(step)
    if json.dumps(step, ensure_ascii=False)[1:-1] != step:
        raise QueryError(
            f"{field!r}[{step!r}]: a key in a path cannot hold a double quote, a backslash or a control character "
            "(SQLite's JSON paths cannot name such a key reliably)"
        )
    try:
        check_json({step: None})
    except ValidationError as exc:
        raise QueryError(f"{field!r}[{step!r}]: no stored value can have this key: {exc}") from None
    return str(step)


def _json_operand(where: str, op: str, value: Any) -> Any:
    """A scalar a JSON path is compared with: ``str``, ``int`` (64 bit), finite ``float`` or ``bool``.

    Raises:
        QueryError: a dict, list or other value (paths compare with scalars only).
        ValidationError: a scalar no JSON value can hold (NaN, a NUL character, an int beyond 64 bits).
    """
    if isinstance(value, (dict, list, tuple, set, frozenset)) or not isinstance(value, (str, int, float)):
        raise QueryError(
            f"{where} {op} {value!r}: a JSON path is compared with a str, int, float or bool "
            f"(or == None), not {type(value).__name__}"
        )
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError(f"{where} {op} {value}: outside the signed 64-bit range no JSON value holds")
    try:
        return check_json(value)
    except ValidationError as exc:
        raise ValidationError(f"{where} {op} {value!r}: {exc}") from None


class JsonPath(_ComparisonOperators):
    """The value at a path inside a JSON field: ``Post.meta["plan"]``, ``Post.meta["a"]["b"]``, ``Post.tags[0]``.

    Compare it with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` (see
    :class:`ommi.expressions.JsonComparison` for the type-strict semantics),
    extend it with ``[step]``, or test an array at it with :meth:`has`. It is
    not sortable and has no truth value.
    """

    __slots__ = ("field", "path")

    def __init__(self, field: Field, path: tuple[str | int, ...]) -> None:
        self.field = field
        self.path = path

    def __repr__(self) -> str:
        return repr(self.field) + "".join(f"[{step!r}]" for step in self.path)

    __iter__ = None  # not a sequence (see Field.__iter__)

    def __contains__(self, item: object) -> NoReturn:
        raise QueryError(f"{item!r} in {self!r}: `in` has no meaning in a query; write {self!r}.has(value)")

    def __getitem__(self, step: str | int) -> JsonPath:
        if len(self.path) >= MAX_JSON_DEPTH:
            raise QueryError(f"{self!r}: a path has at most {MAX_JSON_DEPTH} steps, as JSON values have levels")
        return JsonPath(self.field, (*self.path, _path_step(self.field, step)))

    def _compare(self, op: Op, value: Any) -> Expr:
        if value is None:
            if op is Op.EQ:
                return JsonComparison(self.field, self.path, Op.IS_NULL)
            if op is Op.NE:
                return JsonComparison(self.field, self.path, Op.IS_NOT_NULL)
            raise QueryError(f"{self!r} {op.value} None is not a valid comparison; use == None or != None")
        if op in ORDERING_OPS and isinstance(value, bool):
            raise QueryError(f"{self!r} {op.value} {value!r}: true and false have no order; compare them with == / !=")
        return JsonComparison(self.field, self.path, op, _json_operand(repr(self), op.value, value))

    def has(self, value: Any) -> Expr:
        """The value at the path is an array holding an element equal to ``value`` (type-strict)."""
        return JsonHas(self.field, self.path, _json_operand(repr(self), "has", value))

    def __bool__(self) -> bool:
        raise QueryError(f"{self!r} has no truth value: compare it (== value, != None) or test it with .has(value)")

    def _no_order(self) -> NoReturn:
        raise QueryError(f"cannot sort by {self!r}: JSON values have no order every database shares")

    asc = property(_no_order)
    desc = property(_no_order)


class _FieldAttribute:
    """Non-data descriptor: class access gives the Field, instances use their ``__dict__``."""

    __slots__ = ("field",)

    def __init__(self, field: Field) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self.field
        try:
            return instance.__dict__[self.field.name]
        except (KeyError, AttributeError):
            raise AttributeError(self.field.name) from None


class _SlotFieldAttribute:
    """Data descriptor wrapping a slot: class access gives the Field, instances the slot value."""

    __slots__ = ("field", "slot")

    def __init__(self, field: Field, slot: Any) -> None:
        self.field = field
        self.slot = slot

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self.field
        return self.slot.__get__(instance, owner)

    def __set__(self, instance: Any, value: Any) -> None:
        self.slot.__set__(instance, value)

    def __delete__(self, instance: Any) -> None:
        self.slot.__delete__(instance)


def install_field_descriptors(schema: ModelSchema) -> None:
    """Put the query descriptors on the class (called once the schema resolved)."""
    cls = schema.cls
    for f in schema.fields:
        current = cls.__dict__.get(f.name)
        if (
            current is not None
            and hasattr(type(current), "__set__")
            and not isinstance(current, (_FieldAttribute, _SlotFieldAttribute))
        ):
            setattr(cls, f.name, _SlotFieldAttribute(f, current))
        else:
            setattr(cls, f.name, _FieldAttribute(f))
    for name, relation in schema.relations.items():
        setattr(cls, name, RelationDescriptor(relation))


def _unwrap(annotation: Any) -> tuple[Any, list[Any], bool]:
    """Split an annotation into (bare type, Annotated metadata, nullable)."""
    metadata: list[Any] = []
    nullable = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            metadata.extend(annotation.__metadata__)
            annotation = annotation.__origin__
            continue
        if origin is Union or origin is types.UnionType:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != len(typing.get_args(annotation)):
                nullable = True
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, metadata, nullable


def _evaluate(annotation: Any, globalns: dict[str, Any], localns: dict[str, Any]) -> Any:
    """``annotation`` with the forward references inside it resolved, through public typing API only.

    ``typing.get_type_hints`` resolves a holder object's ``__annotations__``;
    ``include_extras`` keeps ``Annotated`` metadata (Ommi's field markers).
    """
    holder = types.SimpleNamespace(__annotations__={"annotation": annotation})
    return typing.get_type_hints(holder, globalns, localns, include_extras=True)["annotation"]


class _Forgiving(dict[str, Any]):
    """Evaluation namespace turning unknown names into forward references."""

    def __init__(self, local: dict[str, Any], globalns: dict[str, Any]) -> None:
        super().__init__(local)
        self._globalns = globalns

    def __missing__(self, name: str) -> Any:
        if name in self._globalns:
            return self._globalns[name]
        builtins = self._globalns.get("__builtins__")
        table = builtins if isinstance(builtins, dict) else vars(builtins) if builtins is not None else {}
        if name in table:
            return table[name]
        return typing.ForwardRef(name)


def _find_codec(annotation: Any) -> Codec | None:
    # Late-bound on purpose (see the module docstring): ommi.plugins is built on ommi.models.
    from ommi import plugins

    for codec in plugins.codecs():
        if codec.matches(annotation):
            return codec
    return None


class ModelSchema:
    """Everything Ommi knows about one model class.

    Attributes:
        cls: the model class.
        name: the stored table or collection name (the class name unless overridden).
        collection: the :class:`ModelCollection` the model belongs to.
        adapter: the model-library adapter that reads and builds instances.
        fields: stored fields in declaration order (after :meth:`resolve`).
        key: the key fields.
        auto_field: the int key the database generates, if any.
        relations: lazy relation attributes by name.
        constraints: unique constraints and indexes (``Unique``/``Index``):
            the fields' markers in field order, then the model's
            ``constraints=`` in their order.
    """

    def __init__(self, cls: type, name: str, collection: ModelCollection, adapter: ModelAdapter) -> None:
        self.cls = cls
        self.name = name
        self.collection = collection
        self.adapter = adapter
        self.fields: tuple[Field, ...] = ()
        self.by_name: dict[str, Field] = {}
        self.by_column: dict[str, Field] = {}
        self.key: tuple[Field, ...] = ()
        self.auto_field: Field | None = None
        self.relations: dict[str, Relation] = {}
        self.constraints: tuple[ModelConstraint, ...] = ()
        self.declared_constraints: tuple[Constraint, ...] = ()
        """The ``constraints=`` of ``@ommi_model``, resolved into :attr:`constraints` with the fields."""
        self.local_namespace: dict[str, Any] = {}
        """Locals of the function the model was defined in, for postponed annotations."""
        self._resolved = False
        self._references_resolved = False
        self._builders: Builders | None = None
        self._encode_row: Callable[[Any], tuple[Any, ...]] | None = None

    def __repr__(self) -> str:
        return f"<ModelSchema {self.cls.__qualname__} as {self.name!r}>"

    # -- resolution --------------------------------------------------------

    def _error(self, field: str | None, message: str) -> ModelDefinitionError:
        where = f"{self.cls.__qualname__}.{field}" if field else self.cls.__qualname__
        return ModelDefinitionError(f"model {where}: {message}")

    def _annotations(self, wanted: set[str], *, strict: bool) -> dict[str, Any] | None:
        """Evaluate the annotations of ``wanted`` names and of lazy relations.

        Only the model's own annotations are evaluated (never those of library
        base classes such as ``pydantic.BaseModel``), each in its class's module.
        """
        local = dict(self.local_namespace)
        local.update(self.collection.namespace())
        local.setdefault(self.cls.__name__, self.cls)
        hints: dict[str, Any] = {}
        for klass in reversed(self.cls.__mro__):
            raw = klass.__dict__.get("__annotations__", {})
            module = sys.modules.get(klass.__module__)
            globalns = dict(vars(module)) if module is not None else {}
            for name, annotation in raw.items():
                if looks_like_relation(annotation):
                    # Relations may name models defined later: unknown names
                    # become forward references, resolved when first loaded.
                    forgiving = _Forgiving(local, globalns)

                    def evaluate(text: str, g: dict[str, Any] = globalns, f: _Forgiving = forgiving) -> Any:
                        return eval(text, g, f)  # noqa: S307 - annotations are code

                    try:
                        relation = read_relation(annotation, evaluate)
                    except (SyntaxError, TypeError, NameError, ValueError, AttributeError) as exc:
                        raise self._error(
                            name,
                            f"the relation annotation {annotation!r} cannot be read ({exc}); write it as "
                            "LazyLoadEveryRelated[Model] or LazyLoadTheRelated[Model]",
                        ) from exc
                    if relation is not None:
                        hints[name] = relation
                        continue
                if name not in wanted:
                    continue
                try:
                    if isinstance(annotation, str):
                        annotation = eval(annotation, globalns, local)  # noqa: S307 - annotations are code
                    hints[name] = _evaluate(annotation, globalns, local)
                except NameError as exc:
                    if strict:
                        raise self._error(name, f"the annotation names something undefined: {exc}") from exc
                    return None
        return hints

    def resolve(self, *, strict: bool = True) -> bool:
        """Resolve annotations into fields; returns whether it succeeded.

        With ``strict`` false a forward reference that cannot be resolved yet
        leaves the schema unresolved (it is retried at first use).
        """
        if self._resolved:
            return True
        names = self.adapter.field_names(self.cls)
        hints = self._annotations(set(names), strict=strict)
        if hints is None:
            return False
        relations: dict[str, Relation] = {}
        for attr, annotation in hints.items():
            relation = relation_from_annotation(self, attr, annotation)
            if relation is not None:
                relations[attr] = relation

        fields: list[Field] = []
        for name in names:
            if name in relations:
                # The model library made it an attribute of every instance, which would hide the relation.
                raise self._error(
                    name,
                    f"{hints[name]!r} is a lazy relation, but {self.cls.__name__} treats it as a field "
                    "(a relation annotation quoted as a whole under `from __future__ import annotations` "
                    "is not recognised as ClassVar by dataclasses, attrs or pydantic): write it unquoted, "
                    "as LazyLoadEveryRelated[Model] or LazyLoadTheRelated[Model], with no default",
                )
            if name not in hints:
                raise self._error(name, "the field has no type annotation")
            fields.append(self._make_field(name, len(fields), hints[name]))
        if not fields:
            raise self._error(None, "the model has no stored fields")

        keys = [f for f in fields if f.key]
        if not keys:
            implicit = next((f for f in fields if f.name == "id"), None)
            if implicit is None:
                raise self._error(None, "no field is marked Key and there is no field named 'id'")
            implicit.key = True
            keys = [implicit]
        for f in fields:
            if f.storage is StorageType.JSON and (f.key or f._marks):
                raise self._error(
                    f.name,
                    "a JSON field cannot be (part of) the key, Unique or Index: JSON values have no order or "
                    "equality every database shares; index a plain field holding the value instead",
                )
            if f.auto and not f.key:
                raise self._error(f.name, "Auto applies to the key field only; mark it Key | Auto")
        for f in keys:
            if len(keys) == 1 and f.storage is StorageType.INTEGER:
                f.auto = True
            elif f.auto:
                raise self._error(f.name, "Auto needs a single int key")
        columns = [f.column for f in fields]
        duplicates = {c for c in columns if columns.count(c) > 1}
        if duplicates:
            raise self._error(None, f"several fields are stored as {sorted(duplicates)}")

        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in fields}
        self.by_column = {f.column: f for f in fields}
        self.key = tuple(keys)
        self.auto_field = keys[0] if len(keys) == 1 and keys[0].auto else None
        self.relations = relations
        self.constraints = self._resolve_constraints(fields, relations)
        for f in fields:
            if f._reference_spec is not None and isinstance(f._reference_spec.target, Field):
                # The target is known already: refuse a bad one at definition.
                self._check_reference(f, f._reference_spec.target)
        self._resolved = True
        install_field_descriptors(self)
        return True

    def _make_field(self, name: str, index: int, annotation: Any) -> Field:
        bare, metadata, nullable = _unwrap(annotation)
        markers = [m for item in metadata for m in iter_metadata(item)]
        json_kind = _json_kind(bare)
        if json_kind is not None:
            bare = self._json_annotation(name, bare, json_kind)
        elif typing.get_origin(bare) is not None or not isinstance(bare, type):
            raise self._error(name, _unstorable_hint(annotation, bare))
        codec = _JSON_ANY if json_kind is object else _find_codec(bare)
        if codec is None:
            raise self._error(
                name,
                f"the type {bare.__name__} cannot be stored; use a supported type or register a codec "
                "through the ommi_register_codecs hook",
            )
        try:
            storage = codec.storage_for(bare)
        except ModelDefinitionError as exc:
            raise self._error(name, str(exc)) from None
        if TimezoneAware in markers:
            if storage is not StorageType.DATETIME:
                raise self._error(name, "TimezoneAware applies to datetime fields only")
            storage = StorageType.DATETIME_TZ
        column = name
        reference: ReferenceTo | None = None
        for marker in markers:
            if isinstance(marker, StoreAs):
                column = marker.name
            elif isinstance(marker, ReferenceTo):
                reference = marker
        if not isinstance(column, str) or not column or "\x00" in column:
            raise self._error(name, f"StoreAs needs a non-empty name, not {column!r}")
        field = Field(
            self,
            name,
            index,
            bare,
            nullable,
            codec,
            storage,
            column=column,
            key=Key in markers,
            auto=Auto in markers,
            reference_spec=reference,
        )
        field._marks = tuple(m is Unique for m in markers if m is Unique or m is Index)
        return field

    def _json_annotation(self, name: str, bare: Any, kind: type) -> type:
        """The Python type of a JSON field annotated ``bare`` (``dict``, ``list``, or ``object`` for either).

        Raises:
            ModelDefinitionError: a ``dict`` whose keys are not ``str``.
        """
        if kind is dict:
            args = typing.get_args(bare)
            if args and args[0] is not str:
                raise self._error(
                    name, f"{bare!r}: JSON objects have str keys; annotate it dict[str, ...] (dict[str, Any] for any)"
                )
        return kind

    def _resolve_constraints(self, fields: list[Field], relations: dict[str, Relation]) -> tuple[ModelConstraint, ...]:
        """The fields' ``Unique``/``Index`` markers and the model's ``constraints=``, checked and named.

        Raises:
            ModelDefinitionError: an unknown or repeated field, a relation, a
                constraint declared twice, or one that only repeats the key.
        """
        by_name = {f.name: f for f in fields}
        declared: list[tuple[str, tuple[Field, ...], bool, str | None]] = []
        for f in fields:
            for unique in f._marks:
                declared.append((f"{f.name}: {'Unique' if unique else 'Index'}", (f,), unique, None))
        for item in self.declared_constraints:
            where = f"constraints={item!r}"
            if not item.fields:
                raise self._error(None, f"{where} names no field; give the attribute names of its fields")
            chosen: list[Field] = []
            for attribute in item.fields:
                if not isinstance(attribute, str):
                    raise self._error(None, f"{where}: fields are named by their attribute names, not {attribute!r}")
                if attribute in relations:
                    raise self._error(
                        None,
                        f"{where}: {attribute!r} is a lazy relation, not a stored field; name the field it loads by",
                    )
                field = by_name.get(attribute)
                if field is None:
                    raise self._error(
                        None, f"{where}: {self.cls.__name__} has no field {attribute!r} (fields: {', '.join(by_name)})"
                    )
                if field.storage is StorageType.JSON:
                    raise self._error(None, f"{where}: {attribute!r} is a JSON field, which cannot be Unique or Index")
                if any(other is field for other in chosen):
                    raise self._error(None, f"{where} names {attribute!r} twice")
                chosen.append(field)
            name = None if item.name is None else check_name(item.name, f"model {self.cls.__qualname__}: {where}")
            declared.append((where, tuple(chosen), item.unique, name))

        key = {id(f) for f in self.key}
        resolved: list[ModelConstraint] = []
        for where, chosen_fields, unique, name in declared:
            if {id(f) for f in chosen_fields} == key:
                raise self._error(
                    None,
                    f"{where} repeats the key ({', '.join(f.name for f in self.key)}), which is unique and indexed",
                )
            for other in resolved:
                same = (
                    {id(f) for f in other.fields} == {id(f) for f in chosen_fields}
                    if unique and other.unique
                    else [id(f) for f in other.fields] == [id(f) for f in chosen_fields]
                )
                if same:
                    raise self._error(
                        None,
                        f"{where} declares the {other.describe()} again"
                        + ("" if unique == other.unique else "; a unique constraint is indexed already"),
                    )
            columns = [f.column for f in chosen_fields]
            stored = name if name is not None else constraint_name(self.name, columns, unique=unique)
            if any(other.name == stored for other in resolved):
                raise self._error(None, f"{where}: another constraint of the model is named {stored!r}")
            resolved.append(ModelConstraint(stored, chosen_fields, unique))
        return tuple(resolved)

    def unique_constraint(self, fields: Iterable[Field]) -> ModelConstraint | None:
        """The unique constraint over exactly ``fields`` (in any order), or ``None``; the key is not one.

        What a conflict target (``on=(Model.email,)``) resolves to.
        """
        wanted = {id(f) for f in fields}
        for constraint in self.constraints:
            if constraint.unique and {id(f) for f in constraint.fields} == wanted:
                return constraint
        return None

    def resolve_references(self) -> None:
        """Resolve ``ReferenceTo`` targets and relations (needs the referenced models)."""
        if self._references_resolved:
            return
        self.resolve()
        for f in self.fields:
            spec = f._reference_spec
            if spec is not None:
                f.reference = self._check_reference(f, self._reference_target(f, spec.target))
                if f.reference.storage is not f.storage:
                    raise self._error(
                        f.name,
                        f"references {f.reference!r} ({f.reference.storage.value}) but is stored as {f.storage.value}",
                    )
        self._references_resolved = True

    def _reference_target(self, field: Field, target: Any) -> Field:
        if isinstance(target, Field):
            target.schema.resolve()
            return target
        if isinstance(target, str):
            model_name, _, field_name = target.partition(".")
            model = self.collection.find_model(model_name)
            if model is None and model_name == self.cls.__name__:
                model = self.cls
            if model is None:
                raise self._error(field.name, f"ReferenceTo({target!r}) names an unknown model {model_name!r}")
            # Only the target's fields are needed, not its own references:
            # get_schema() would recurse forever on self- and mutual references.
            schema: ModelSchema = model.__dict__["__ommi__"]
            schema.resolve()
            if not field_name:
                return self._single_key(field, schema)
            referenced = schema.by_name.get(field_name)
            if referenced is None:
                raise self._error(field.name, f"ReferenceTo({target!r}): {model_name} has no field {field_name!r}")
            return referenced
        if isinstance(target, type) and is_model(target):
            target_schema: ModelSchema = target.__dict__["__ommi__"]
            target_schema.resolve()
            return self._single_key(field, target_schema)
        raise self._error(field.name, f"ReferenceTo({target!r}) must name a model field or a model")

    def _check_reference(self, field: Field, referenced: Field) -> Field:
        """``referenced`` when it is the single key of its model; else a :class:`ModelDefinitionError` saying why."""
        target = referenced.schema
        key = target.key
        if len(key) == 1 and key[0] is referenced:
            return referenced
        model = target.cls.__name__
        if referenced.key:
            raise self._error(
                field.name,
                f"ReferenceTo({referenced!r}) names one part of the composite key of {model} "
                f"({', '.join(k.name for k in key)}); one part does not identify a row, so no reference "
                f"(and no foreign key) can point at it: reference a model with a single key field",
            )
        fix = (
            f"reference {model}.{key[0].name} or the model itself, ReferenceTo({model})"
            if len(key) == 1
            else "reference a model with a single key field"
        )
        raise self._error(
            field.name,
            f"ReferenceTo({referenced!r}) names a field that is not the key of {model}; a reference holds the "
            f"key of the row it points to (Ommi declares no other field unique): {fix}",
        )

    def _single_key(self, field: Field, schema: ModelSchema) -> Field:
        if len(schema.key) != 1:
            raise self._error(field.name, f"ReferenceTo({schema.cls.__name__}) needs a model with a single key field")
        return schema.key[0]

    # -- instances ---------------------------------------------------------

    def encode_instance(self, instance: Any) -> tuple[Any, ...]:
        """The canonical values of an instance's fields, validated, in field order."""
        if not isinstance(instance, self.cls):
            raise ValidationError(f"expected a {self.cls.__name__} instance, got {type(instance).__name__}")
        encode = self._encode_row
        if encode is None:
            encode = self._encode_row = self._make_row_encoder()
        return encode(instance)

    def _make_row_encoder(self) -> Callable[[Any], tuple[Any, ...]]:
        """One generated function encoding a whole instance: the hot path of ``add``.

        For a plain field (no codec conversion) the common case is tested
        inline (``FAST_CHECKS``: an exact ``int`` in range, an ASCII ``str``
        without NUL...) and its checker runs only otherwise; other fields go
        through :meth:`Field.encode`. Any failure re-runs the field-by-field
        path, whose messages name the field. Only positions appear in the
        generated source, never names taken from the model.
        """
        fields = self.fields

        def field_by_field(instance: Any) -> tuple[Any, ...]:
            values = [getattr(instance, f.name) for f in fields]
            return tuple(f.encode(value) for f, value in zip(fields, values, strict=True))

        namespace: dict[str, Any] = {
            "get": operator.attrgetter(*(f.name for f in fields)),
            "field_by_field": field_by_field,
            "errors": (ValidationError, TypeError, ValueError, OverflowError, AttributeError),
        }
        parts = []
        for f in fields:
            v = f"v{f.index}"
            plain = f._encode is None and f._decode is None
            namespace[f"c{f.index}"] = f._check if plain else f.encode
            fast = FAST_CHECKS.get(f.storage) if plain else None
            expression = f"c{f.index}({v})" if fast is None else f"({v} if {fast.format(v=v)} else c{f.index}({v}))"
            if f.nullable or f.auto:
                expression = f"(None if {v} is None else {expression})"
            parts.append(expression)
        values = ", ".join(f"v{f.index}" for f in fields)
        source = (
            "def encode(o):\n"
            "    try:\n"
            f"        {values}, = {'(get(o),)' if len(fields) == 1 else 'get(o)'}\n"
            f"        return ({', '.join(parts)},)\n"
            "    except errors:\n"
            "        return field_by_field(o)\n"
        )
        (encode,) = generate(source, ("encode",), namespace, label=f"encoder of {self._label()}")
        encoder: Callable[[Any], tuple[Any, ...]] = encode
        return encoder

    def _label(self) -> str:
        """The model's dotted path, naming its generated functions (``app.models.User``)."""
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    def build(self, row: tuple[Any, ...]) -> Any:
        """Build an instance from canonical values in field order."""
        builders = self._builders
        if builders is None:
            builders = self._builders = self._make_builders()
        return builders[0](row)

    def build_rows(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Build an instance from each row of canonical values: :meth:`build` for a batch, in one loop."""
        builders = self._builders
        if builders is None:
            builders = self._builders = self._make_builders()
        return builders[1](rows)

    def _make_builders(self) -> Builders:
        names = tuple(f.name for f in self.fields)
        decoders = {f.index: f._decode for f in self.fields if f._decode is not None}
        constructor = positional_constructor(self.adapter, self.cls, names)
        label = f"row builders of {self._label()}"
        if constructor is not None:
            build, build_rows = compile_builders(len(self.fields), decoders, constructor, positional=True, label=label)
        else:
            build, build_rows = compile_builders(
                len(self.fields), decoders, self.adapter.builder(self.cls, names), positional=False, label=label
            )
        if not decoders:
            return build, build_rows

        # A failing decoder (a stored value the model no longer accepts) is reported
        # by field; the check costs nothing until something fails.
        def checked_build(row: tuple[Any, ...]) -> Any:
            try:
                return build(row)
            except (TypeError, ValueError, ArithmeticError):
                self.decode_row(row)
                raise

        def checked_build_rows(rows: Sequence[tuple[Any, ...]]) -> list[Any]:
            try:
                return build_rows(rows)
            except (TypeError, ValueError, ArithmeticError):
                for row in rows:
                    self.decode_row(row)
                raise

        return checked_build, checked_build_rows

    def decode_row(self, row: tuple[Any, ...]) -> list[Any]:
        """The application values of a row of canonical values, in field order.

        Raises:
            SchemaMismatchError: a stored value does not fit its field (an
                ``Enum`` member that was removed from the model, say).
        """
        values = []
        for f in self.fields:
            value = row[f.index]
            try:
                values.append(f.decode(value))
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise SchemaMismatchError(
                    f"{f!r}: the stored value {value!r} is not a valid {f.python_type.__name__} "
                    f"({exc}); the {self.name!r} rows and the model {self.cls.__qualname__} disagree: "
                    f"migrate the stored rows (update them to a valid value) or accept the value in the model again"
                ) from exc
        return values

    def key_values(self, instance: Any) -> tuple[Any, ...]:
        """The canonical key values of an instance."""
        return tuple(f.encode(getattr(instance, f.name)) for f in self.key)

    def set_value(self, instance: Any, field: Field, canonical: Any) -> None:
        """Set a field on an instance from a canonical value."""
        self.adapter.set_value(instance, field.name, field.decode(canonical))

    def set_row(self, instance: Any, row: tuple[Any, ...]) -> None:
        """Set every field on an instance from a row of canonical values; all are decoded before any is set.

        Raises:
            SchemaMismatchError: a stored value does not fit its field; the instance is unchanged.
        """
        for f, value in zip(self.fields, self.decode_row(row), strict=True):
            self.adapter.set_value(instance, f.name, value)


def is_model(cls: Any) -> bool:
    """Whether ``cls`` is a class decorated with ``@ommi_model``."""
    return isinstance(cls, type) and isinstance(cls.__dict__.get("__ommi__"), ModelSchema)


def get_schema(cls: Any) -> ModelSchema:
    """The schema of a model class (or of an instance's class), resolved."""
    if not isinstance(cls, type):
        cls = type(cls)
    schema = cls.__dict__.get("__ommi__")
    if not isinstance(schema, ModelSchema):
        raise ModelDefinitionError(f"{cls.__qualname__} is not an Ommi model; decorate it with @ommi_model")
    if not schema._references_resolved:
        schema.resolve_references()
    return schema


_JSON_ANY = Codec(object, StorageType.JSON)
"""The codec of a field annotated ``dict[...] | list[...]``: any JSON object or array."""


def _json_kind(bare: Any) -> type | None:
    """``dict`` or ``list`` for an annotation stored as JSON (``dict[str, Any]``, ``list[int]``...), ``object`` for a
    union of both, else ``None``."""
    if bare is dict or bare is list:
        return bare
    origin = typing.get_origin(bare)
    if origin is dict or origin is list:
        return origin
    if origin is Union or origin is types.UnionType:
        kinds = {_json_kind(arg) for arg in typing.get_args(bare) if arg is not type(None)}
        if kinds == {dict, list}:
            return object
    return None


def _unstorable_hint(annotation: Any, bare: Any) -> str:
    """Why a generic or special annotation (``list[int]``, ``Literal[...]``) cannot be a field, and what to do."""
    origin = typing.get_origin(bare)
    shown = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = f"the type {shown or annotation!r} cannot be stored"
    if origin is typing.Literal:
        values = typing.get_args(bare)
        return (
            f"{text}: Literal fields are not supported; store the values' own type "
            f"({', '.join(sorted({type(v).__name__ for v in values}))}) or use an Enum of {values!r}"
        )
    if origin in (set, frozenset, tuple):
        return (
            f"{text}: a set or tuple would not come back as itself; annotate it list[...] to store a JSON array "
            "(drivers with the json_fields capability), or keep a collection in a related model (one row per item, "
            "with ReferenceTo)"
        )
    if isinstance(origin, type):
        return (
            f"{text}: a field holds one value; keep a collection in a related model (one row per item, "
            "with ReferenceTo) or store it encoded through a codec registered with the ommi_register_codecs hook"
        )
    return f"{text}; use a supported type or register a codec through the ommi_register_codecs hook"
