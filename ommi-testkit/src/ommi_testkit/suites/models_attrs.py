"""attrs models of the model-library suite (imported only when attrs is installed).

Written without ``from __future__ import annotations``: attrs recognises a
``ClassVar`` (which the lazy relation annotations are) from the annotation
object, but only by its text when annotations are strings.
"""

# The lazy relation aliases are ClassVars at runtime (so model libraries leave
# them out of __init__), which mypy cannot express as a generic alias.
# mypy: disable-error-code="misc, valid-type"

from typing import Annotated

import attrs
from ommi import LazyLoadEveryRelated, LazyLoadTheRelated, ReferenceTo, ommi_model

from ommi_testkit.suites.models import testkit_models

__all__ = ["AttrsAuthor", "AttrsBook", "AttrsFrozenTag"]


@ommi_model(collection=testkit_models)
@attrs.define
class AttrsAuthor:
    """An ``@attrs.define`` class (slotted, weak-referenceable) with a to-many relation."""

    name: str
    age: int = 0
    id: int | None = None

    books: LazyLoadEveryRelated["AttrsBook"]


@ommi_model(collection=testkit_models)
@attrs.define
class AttrsBook:
    """References :class:`AttrsAuthor` and loads it lazily."""

    title: str
    author_id: Annotated[int, ReferenceTo(AttrsAuthor.id)]
    id: int | None = None

    author: LazyLoadTheRelated[AttrsAuthor]


@ommi_model(collection=testkit_models)
@attrs.frozen
class AttrsFrozenTag:
    """A frozen attrs class: ``add`` still sets its generated key."""

    label: str
    id: int | None = None
