"""Models of the relation, transaction, schema, setup and audit suites.

This module deliberately does **not** use ``from __future__ import annotations``:
its lazy relations name models defined further down with quoted forward
references (``LazyLoadEveryRelated["RelPost"]``), the style of code written
without the future import. :mod:`ommi_testkit.suites.models_future` holds the
same shapes under the future import.

Groups:

* ``Rel*`` (in ``testkit_models``): users, profiles, posts, tags and a
  post-tag association, plus a self-referencing ``RelNode`` tree. Together they
  use every form of ``ReferenceTo``: ``ReferenceTo(RelUser.id)``,
  ``ReferenceTo("RelUser.id")``, ``ReferenceTo(RelPost)`` (a model: its key)
  and ``ReferenceTo("RelTag")`` (a model by name).
* ``Tx*`` and ``Audit*`` (in ``testkit_models``): rows for transactions,
  errors and the audit regressions (a generated key, a str key, optional
  text, datetimes, a UUID key).
* ``SchemaDrift*``: five models stored under the same name
  (``tk_schema_drift``) with different fields, each in a collection of its
  own, so that ``use_models`` meets a stored table that differs from a model.
  ``SchemaKeep*`` are two unrelated tables for the "create missing tables
  only" tests. ``RaceParent`` and ``RaceChild`` (``race_models``) are created
  by many ``use_models`` calls at once. The schema suite creates and drops
  these collections itself.
* ``Frozen*`` / ``Slotted*``: dataclass variants (frozen, ``slots=True``).

The global-collection models of the implicit-setup tests are in
:mod:`ommi_testkit.suites.models_global`, imported only by the tests that
need them.
"""

# The lazy relation aliases are ClassVars at runtime (so model libraries leave
# them out of __init__), which mypy cannot express as a generic alias.
# mypy: disable-error-code="misc, valid-type"

import datetime
import uuid
from dataclasses import dataclass
from typing import Annotated

from ommi import (
    AssociateUsing,
    Key,
    LazyLoadEveryRelated,
    LazyLoadTheRelated,
    ModelCollection,
    ReferenceTo,
    ommi_model,
)

from ommi_testkit.suites.models import testkit_models

__all__ = [
    "AuditEvent",
    "AuditNote",
    "AuditTicket",
    "FrozenNote",
    "RaceChild",
    "RaceParent",
    "RelNode",
    "RelPost",
    "RelPostTag",
    "RelProfile",
    "RelTag",
    "RelUser",
    "SchemaDriftNullable",
    "SchemaDriftRenamed",
    "SchemaDriftRetyped",
    "SchemaDriftV1",
    "SchemaDriftWider",
    "SchemaKeepA",
    "SchemaKeepB",
    "SlottedNote",
    "TxCode",
    "TxEntry",
    "drift_models",
    "keep_a_models",
    "keep_b_models",
    "race_models",
]


# -- relations (testkit_models) ----------------------------------------------------


@ommi_model(collection=testkit_models)
@dataclass
class RelUser:
    """A user: many posts (one-to-many) and at most one profile (one-to-one, held by the profile)."""

    name: str
    id: int | None = None

    posts: LazyLoadEveryRelated["RelPost"]
    profile: LazyLoadTheRelated["RelProfile"]


@ommi_model(collection=testkit_models)
@dataclass
class RelProfile:
    """A user's profile; references the user by ``"Model.field"`` string."""

    bio: str
    user_id: Annotated[int, ReferenceTo("RelUser.id")]
    id: int | None = None

    user: LazyLoadTheRelated[RelUser]


@ommi_model(collection=testkit_models)
@dataclass
class RelPost:
    """A post: references its author by ``Model.field`` and has tags through ``RelPostTag``."""

    title: str
    author_id: Annotated[int, ReferenceTo(RelUser.id)]
    id: int | None = None

    author: LazyLoadTheRelated[RelUser]
    tags: LazyLoadEveryRelated[Annotated["RelTag", AssociateUsing("RelPostTag")]]


@ommi_model(collection=testkit_models)
@dataclass
class RelTag:
    """A tag; reaches its posts through the association model."""

    name: str
    id: int | None = None

    posts: LazyLoadEveryRelated[Annotated[RelPost, AssociateUsing("RelPostTag")]]


@ommi_model(collection=testkit_models)
@dataclass
class RelPostTag:
    """Association of posts and tags: ``ReferenceTo(Model)`` and ``ReferenceTo("Model")`` (their keys)."""

    post_id: Annotated[int, ReferenceTo(RelPost)]
    tag_id: Annotated[int, ReferenceTo("RelTag")]
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class RelNode:
    """A tree: each node optionally references its parent node (a self-reference)."""

    label: str
    parent_id: Annotated[int | None, ReferenceTo("RelNode.id")] = None
    id: int | None = None

    parent: LazyLoadTheRelated["RelNode"]
    children: LazyLoadEveryRelated["RelNode"]


# -- transactions and errors (testkit_models) ----------------------------------


@ommi_model(collection=testkit_models)
@dataclass
class TxEntry:
    """A row with a generated key, for transactions and concurrency."""

    label: str
    amount: int = 0
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class TxCode:
    """A row keyed by an application-chosen string: adding the same code twice is a duplicate key."""

    code: Annotated[str, Key]
    label: str = ""


@ommi_model(collection=testkit_models)
@dataclass
class AuditNote:
    """Optional text: ``None`` and the text ``"NULL"`` must stay different things."""

    text: str | None = None
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class AuditEvent:
    """A naive datetime and a date, which must come back as ``datetime`` / ``date`` objects."""

    at: datetime.datetime
    day: datetime.date
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class AuditTicket:
    """A UUID key chosen by the application, never replaced by a generated value."""

    ticket: Annotated[uuid.UUID, Key]
    title: str = ""


# -- schema drift (one collection each; created and dropped by the schema suite) --

drift_models = ModelCollection("ommi_testkit_drift")
"""Holds :class:`SchemaDriftV1`, the table every other ``SchemaDrift*`` model disagrees with."""


@ommi_model(collection=drift_models, name="tk_schema_drift")
@dataclass
class SchemaDriftV1:
    """The stored shape: a text ``label`` and an int key."""

    label: str
    id: int | None = None


@ommi_model(collection=ModelCollection("ommi_testkit_drift_wider"), name="tk_schema_drift")
@dataclass
class SchemaDriftWider:
    """``tk_schema_drift`` with an extra ``weight`` column the stored table lacks."""

    label: str
    weight: int = 0
    id: int | None = None


@ommi_model(collection=ModelCollection("ommi_testkit_drift_retyped"), name="tk_schema_drift")
@dataclass
class SchemaDriftRetyped:
    """``tk_schema_drift`` whose ``label`` is an int instead of text."""

    label: int
    id: int | None = None


@ommi_model(collection=ModelCollection("ommi_testkit_drift_renamed"), name="tk_schema_drift")
@dataclass
class SchemaDriftRenamed:
    """``tk_schema_drift`` with ``caption`` where the stored table has ``label``."""

    caption: str
    id: int | None = None


@ommi_model(collection=ModelCollection("ommi_testkit_drift_nullable"), name="tk_schema_drift")
@dataclass
class SchemaDriftNullable:
    """``tk_schema_drift`` whose ``label`` is optional where the stored one is required."""

    label: str | None = None
    id: int | None = None


keep_a_models = ModelCollection("ommi_testkit_keep_a")
keep_b_models = ModelCollection("ommi_testkit_keep_b")


@ommi_model(collection=keep_a_models, name="tk_schema_keep_a")
@dataclass
class SchemaKeepA:
    """A table created first, whose rows must survive later ``use_models`` calls."""

    label: str
    id: int | None = None


@ommi_model(collection=keep_b_models, name="tk_schema_keep_b")
@dataclass
class SchemaKeepB:
    """A table created later, next to :class:`SchemaKeepA`."""

    code: Annotated[str, Key]
    size: int = 0


# -- concurrent set-up (one collection; created and dropped by the schema suite) --

race_models = ModelCollection("ommi_testkit_race")
"""Two tables created by many ``use_models`` calls at once, from several ``Ommi`` on one database."""


@ommi_model(collection=race_models, name="tk_race_parent")
@dataclass
class RaceParent:
    """The referenced table of the concurrent set-up test."""

    label: str
    id: int | None = None


@ommi_model(collection=race_models, name="tk_race_child")
@dataclass
class RaceChild:
    """A table referencing :class:`RaceParent`, so set-up has a foreign key to create as well."""

    parent_id: Annotated[int, ReferenceTo(RaceParent.id)]
    code: Annotated[str, Key]


# -- dataclass variants (testkit_models) ----------------------------------------


@ommi_model(collection=testkit_models)
@dataclass(frozen=True)
class FrozenNote:
    """A frozen dataclass: ``add`` still sets its generated key."""

    text: str
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass(slots=True)
class SlottedNote:
    """A ``slots=True`` dataclass (no instance ``__dict__``)."""

    text: str
    pinned: bool = False
    id: int | None = None
