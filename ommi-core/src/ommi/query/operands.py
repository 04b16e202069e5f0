"""Typed spellings of the operators a field's own type hides from a type checker.

A model field is annotated with its value's type (``year: int``), so to a type
checker ``Book.year`` is an ``int``: ``Book.year >= 1970`` is a ``bool`` (which
``find``, ``when``, ``.And`` and ``.Or`` accept), but ``Book.year.desc`` or
``Book.title.in_([...])`` are attributes ``int`` and ``str`` lack. At run time
``Book.year`` is the :class:`~ommi.models.schema.Field`; these functions hand it
back typed as such, and cost one ``isinstance`` per call (never per row)::

    db.find(Book).sort(ommi.desc(Book.year))
    db.find(ommi.field(Book.title).in_(["Dune", "Emma"]))

The untyped spellings (``Book.year.desc``, ``Book.title.in_(...)``) keep
working at run time.
"""

from __future__ import annotations

from ommi.errors import QueryError
from ommi.expressions import SortKey
from ommi.models.schema import Field

__all__ = ["asc", "desc", "field"]


def field(attribute: object) -> Field:
    """``Model.attribute`` as the query operand it is at run time, typed :class:`Field`.

    Raises:
        QueryError: ``attribute`` is not a field of an Ommi model read on the
            class (an instance's attribute is its value, not a field).
    """
    if isinstance(attribute, Field):
        return attribute
    raise QueryError(
        f"ommi.field() takes a model field read on the class (ommi.field(User.name)), not {attribute!r}; "
        "an instance's attribute is its value"
    )


def asc(attribute: object) -> SortKey:
    """Sort ascending by a field: ``.sort(ommi.asc(Book.year))`` (same as ``Book.year.asc``)."""
    return field(attribute).asc


def desc(attribute: object) -> SortKey:
    """Sort descending by a field: ``.sort(ommi.desc(Book.year))`` (same as ``Book.year.desc``)."""
    return field(attribute).desc
