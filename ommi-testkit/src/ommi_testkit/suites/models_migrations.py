"""Models of the migration suite: versions of the same tables, each version a collection of its own.

Every table is prefixed ``mig_``. A test writes migration files from one
version, applies them, writes the next version's, and so on:

* ``mig_v1`` -> ``mig_v2`` -> ``mig_v3``: authors and books; v2 adds a field
  with a default (``country``), an optional field (``bio``) and a model
  (``mig_review``); v3 removes the optional ``nick`` (destructive).
* ``mig_renamed``: v1 with ``name`` stored as ``full_name`` (a rename).
* ``mig_types_v1`` -> ``mig_types_v2``: ``amount`` from ``int`` to ``Decimal``,
  ``note`` from optional to required with a default, on a table referenced
  by another (SQL drivers rebuild or alter it, its references kept).
* ``mig_ref_v1`` -> ``mig_ref_v2``: ``owner`` gains a ``ReferenceTo``.
* ``mig_hostile``: a model stored as ``ommi_migrations`` (never created).
"""

import decimal
from dataclasses import dataclass
from typing import Annotated

from ommi import ModelCollection, ReferenceTo, generated_key, ommi_model

__all__ = ["MIGRATION_COLLECTIONS", "mig_v1", "mig_v2", "mig_v3"]

mig_v1 = ModelCollection("ommi_testkit_mig_v1")
mig_v2 = ModelCollection("ommi_testkit_mig_v2")
mig_v3 = ModelCollection("ommi_testkit_mig_v3")
mig_renamed = ModelCollection("ommi_testkit_mig_renamed")
mig_types_v1 = ModelCollection("ommi_testkit_mig_types_v1")
mig_types_v2 = ModelCollection("ommi_testkit_mig_types_v2")
mig_ref_v1 = ModelCollection("ommi_testkit_mig_ref_v1")
mig_ref_v2 = ModelCollection("ommi_testkit_mig_ref_v2")


# -- authors and books ---------------------------------------------------------------


@ommi_model(collection=mig_v1, name="mig_author")
@dataclass
class AuthorV1:
    name: str
    nick: str | None = None
    id: int = generated_key()


@ommi_model(collection=mig_v1, name="mig_book")
@dataclass
class BookV1:
    title: str
    author: Annotated[int, ReferenceTo(AuthorV1)]
    id: int = generated_key()


@ommi_model(collection=mig_v2, name="mig_author")
@dataclass
class AuthorV2:
    name: str
    nick: str | None = None
    country: str = "unknown"
    bio: str | None = None
    id: int = generated_key()


@ommi_model(collection=mig_v2, name="mig_book")
@dataclass
class BookV2:
    title: str
    author: Annotated[int, ReferenceTo(AuthorV2)]
    id: int = generated_key()


@ommi_model(collection=mig_v2, name="mig_review")
@dataclass
class ReviewV2:
    book: Annotated[int, ReferenceTo(BookV2)]
    stars: int
    id: int = generated_key()


@ommi_model(collection=mig_v3, name="mig_author")
@dataclass
class AuthorV3:
    name: str
    country: str = "unknown"
    bio: str | None = None
    id: int = generated_key()


@ommi_model(collection=mig_v3, name="mig_book")
@dataclass
class BookV3:
    title: str
    author: Annotated[int, ReferenceTo(AuthorV3)]
    id: int = generated_key()


@ommi_model(collection=mig_v3, name="mig_review")
@dataclass
class ReviewV3:
    book: Annotated[int, ReferenceTo(BookV3)]
    stars: int
    id: int = generated_key()


@ommi_model(collection=mig_renamed, name="mig_author")
@dataclass
class AuthorRenamed:
    full_name: str
    nick: str | None = None
    id: int = generated_key()


@ommi_model(collection=mig_renamed, name="mig_book")
@dataclass
class BookRenamed:
    title: str
    author: Annotated[int, ReferenceTo(AuthorRenamed)]
    id: int = generated_key()


# -- type changes ----------------------------------------------------------------------


@ommi_model(collection=mig_types_v1, name="mig_measure")
@dataclass
class MeasureV1:
    amount: int
    note: str | None = None
    id: int = generated_key()


@ommi_model(collection=mig_types_v1, name="mig_reading")
@dataclass
class ReadingV1:
    measure: Annotated[int, ReferenceTo(MeasureV1)]
    id: int = generated_key()


@ommi_model(collection=mig_types_v2, name="mig_measure")
@dataclass
class MeasureV2:
    amount: decimal.Decimal
    note: str = "none"
    id: int = generated_key()


@ommi_model(collection=mig_types_v2, name="mig_reading")
@dataclass
class ReadingV2:
    measure: Annotated[int, ReferenceTo(MeasureV2)]
    id: int = generated_key()


# -- a reference added -------------------------------------------------------------------


@ommi_model(collection=mig_ref_v1, name="mig_owner")
@dataclass
class OwnerV1:
    name: str
    id: int = generated_key()


@ommi_model(collection=mig_ref_v1, name="mig_pet")
@dataclass
class PetV1:
    name: str
    owner: int
    id: int = generated_key()


@ommi_model(collection=mig_ref_v2, name="mig_owner")
@dataclass
class OwnerV2:
    name: str
    id: int = generated_key()


@ommi_model(collection=mig_ref_v2, name="mig_pet")
@dataclass
class PetV2:
    name: str
    owner: Annotated[int, ReferenceTo(OwnerV2)]
    id: int = generated_key()


# -- hostile -------------------------------------------------------------------------------

mig_hostile = ModelCollection("ommi_testkit_mig_hostile")


@ommi_model(collection=mig_hostile, name="ommi_migrations")
@dataclass
class HistoryImpostor:
    """A model stored under the name of the migration history: ``make`` refuses it."""

    id: str
    applied: bool = False


MIGRATION_COLLECTIONS = (mig_renamed, mig_v1, mig_v2, mig_v3, mig_types_v1, mig_types_v2, mig_ref_v1, mig_ref_v2)
"""Every collection of the suite: dropped before and after each test (latest versions first).

``mig_v3`` is dropped before ``mig_renamed``: its ``mig_review`` references ``mig_book``, and a database
enforcing foreign keys (PostgreSQL) refuses to drop a referenced table on its own."""
