"""Unique constraints and secondary indexes: the ``Unique`` and ``Index`` markers, and their stored names.

One field::

    email: Annotated[str, Unique]
    created: Annotated[datetime, Index]

Several fields, at model level (attribute names, in index order)::

    @ommi_model(constraints=[Unique("first", "last"), Index("author", "created", name="ix_by_author")])

``@ommi_model`` resolves both forms into :class:`ModelConstraint` objects
(``ModelSchema.constraints``), each with a stored name: the one given with
``name=``, else :func:`constraint_name`. Drivers create them with new tables,
report a missing one on an existing table as drift, and enforce uniqueness:
a second row with equal values in every field of a unique constraint is an
``IntegrityError``, while ``None`` never collides (SQL's rule: a row with
``None`` in any field of the constraint is not compared).

This module depends on nothing above :mod:`ommi.models.metadata`; the fields
it resolves are :class:`ommi.models.schema.Field` objects, named for type
checkers only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ommi.errors import ModelDefinitionError
from ommi.models.metadata import FieldMetadata

if TYPE_CHECKING:
    from ommi.models.schema import Field

__all__ = [
    "MAX_NAME_BYTES",
    "Constraint",
    "Index",
    "ModelConstraint",
    "StoredIndex",
    "Unique",
    "constraint_name",
    "missing_constraints",
]

MAX_NAME_BYTES = 63
"""The longest stored constraint or index name: PostgreSQL's identifier limit, the smallest of the backends."""


@dataclasses.dataclass(frozen=True, slots=True)
class Constraint:
    """A unique constraint or an index over several fields, as ``Unique(...)`` and ``Index(...)`` return it.

    Attributes:
        fields: attribute names of the model's fields, in index order.
        unique: whether equal values in all the fields are refused.
        name: the stored name, or ``None`` for :func:`constraint_name`'s.
    """

    fields: tuple[str, ...]
    unique: bool
    name: str | None = None

    def __repr__(self) -> str:
        named = f", name={self.name!r}" if self.name is not None else ""
        return f"{'Unique' if self.unique else 'Index'}({', '.join(map(repr, self.fields))}{named})"


class _ConstraintMarker(FieldMetadata):
    """``Unique`` / ``Index``: a field marker, and called with field names, a model-level :class:`Constraint`."""

    __slots__ = ("_name", "unique")

    def __init__(self, name: str, *, unique: bool) -> None:
        self._name = name
        self.unique = unique

    def __call__(self, *fields: str, name: str | None = None) -> Constraint:
        """A constraint over ``fields`` (attribute names) for ``@ommi_model(constraints=[...])``.

        The names are checked when the model is decorated, against its fields.
        """
        return Constraint(tuple(fields), self.unique, name)

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


Unique = _ConstraintMarker("Unique", unique=True)
"""A unique field (``Annotated[str, Unique]``), or ``Unique("a", "b", name=None)`` for several fields."""

Index = _ConstraintMarker("Index", unique=False)
"""An indexed field (``Annotated[datetime, Index]``), or ``Index("a", "b", name=None)`` for several fields."""


def constraint_name(table: str, columns: Sequence[str], *, unique: bool) -> str:
    """The stored name of a constraint given no ``name=``: ``uq_<table>_<columns>_<hash>`` (``ix_`` for an index).

    Deterministic (the same table and columns always give the same name), at
    most :data:`MAX_NAME_BYTES` bytes (the readable part is cut, never the
    hash), and never equal to the ``ix_<table>_<column>`` indexes drivers make
    on references: the hash of the table and columns always ends the name.
    """
    prefix = "uq" if unique else "ix"
    digest = hashlib.sha1("\x00".join((prefix, table, *columns)).encode(), usedforsecurity=False).hexdigest()[:8]
    readable = "_".join((prefix, table, *columns)).encode()[: MAX_NAME_BYTES - len(digest) - 1]
    return f"{readable.decode(errors='ignore')}_{digest}"


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ModelConstraint:
    """A constraint of a model, resolved: its stored name and its fields (``ModelSchema.constraints``).

    Attributes:
        name: the stored name of the constraint (or index).
        fields: the model's fields, in index order.
        unique: a unique constraint (``True``) or a plain index.
    """

    name: str
    fields: tuple[Field, ...]
    unique: bool

    @property
    def columns(self) -> tuple[str, ...]:
        """The stored names of the fields, in order."""
        return tuple(f.column for f in self.fields)

    def describe(self) -> str:
        """``unique constraint uq_... on (first, last)``, for messages."""
        kind = "unique constraint" if self.unique else "index"
        return f"{kind} {self.name} on ({', '.join(self.columns)})"

    def __repr__(self) -> str:
        return f"<ModelConstraint {self.describe()}>"


@dataclasses.dataclass(frozen=True, slots=True)
class StoredIndex:
    """An index or unique constraint a database holds, as drift checks compare it.

    Attributes:
        columns: the stored columns (or document fields), in index order.
        unique: whether it refuses equal values.
    """

    columns: tuple[str, ...]
    unique: bool


def _satisfies(stored: StoredIndex, wanted: ModelConstraint) -> bool:
    if wanted.unique:
        # Uniqueness does not depend on the order of the columns.
        return stored.unique and sorted(stored.columns) == sorted(wanted.columns)
    # Any index on these columns in this order serves the queries, whatever else it refuses.
    return stored.columns == wanted.columns


def missing_constraints(constraints: Iterable[ModelConstraint], stored: Iterable[StoredIndex]) -> list[str]:
    """The drift of a stored table: one line per declared constraint no stored index provides.

    A unique constraint is provided by a unique index (or constraint) on the
    same columns, in any order, whatever its name; an index by any index on
    the same columns in the same order. Stored indexes no model declares are
    the database's own business, never drift.
    """
    present = list(stored)
    return [
        f"the {wanted.describe()} is missing"
        for wanted in constraints
        if not any(_satisfies(index, wanted) for index in present)
    ]


def check_declared(value: Any, model: str) -> tuple[Constraint, ...]:
    """``@ommi_model(constraints=...)`` checked for shape (the field names are checked when the model resolves).

    Raises:
        ModelDefinitionError: not a non-empty list of ``Unique(...)``/``Index(...)``.
    """
    if isinstance(value, (str, bytes, Constraint)) or not isinstance(value, Iterable):
        raise ModelDefinitionError(
            f"model {model}: constraints= takes a list of Unique(...) and Index(...), not {value!r}"
        )
    items = tuple(value)
    if not items:
        raise ModelDefinitionError(f"model {model}: constraints=[] declares nothing; leave the argument out")
    for item in items:
        if isinstance(item, _ConstraintMarker):
            raise ModelDefinitionError(
                f'model {model}: constraints= needs {item!r}("field", ...) called with field names; a bare '
                f"{item!r} marks a single field inside its annotation (Annotated[str, {item!r}])"
            )
        if not isinstance(item, Constraint):
            raise ModelDefinitionError(
                f"model {model}: constraints= takes Unique(...) and Index(...) items, not {item!r}"
            )
    return items


def check_name(name: Any, where: str) -> str:
    """A stored constraint name given with ``name=``, checked.

    Raises:
        ModelDefinitionError: not a non-empty string without NUL, or longer than :data:`MAX_NAME_BYTES` bytes.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ModelDefinitionError(f"{where}: name= must be a non-empty string without NUL characters, not {name!r}")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ModelDefinitionError(
            f"{where}: the name {name!r} is longer than {MAX_NAME_BYTES} bytes (PostgreSQL would cut it); "
            "give a shorter one"
        )
    return name
