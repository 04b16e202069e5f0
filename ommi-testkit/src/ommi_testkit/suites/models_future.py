"""Relation models written under ``from __future__ import annotations``.

Every annotation here is a string that Ommi evaluates itself, so lazy
relations may name models defined later in the module without quotes, and
the association and self-reference forms must work the same as in
:mod:`ommi_testkit.suites.models_extra`.
"""

# The lazy relation aliases are ClassVars at runtime (so model libraries leave
# them out of __init__), which mypy cannot express as a generic alias.
# mypy: disable-error-code="misc, valid-type"

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ommi import AssociateUsing, LazyLoadEveryRelated, LazyLoadTheRelated, ReferenceTo, ommi_model

from ommi_testkit.suites.models import testkit_models

__all__ = ["FutureAuthor", "FutureBook", "FutureBookGenre", "FutureCategory", "FutureGenre"]


@ommi_model(collection=testkit_models)
@dataclass
class FutureAuthor:
    """An author; ``books`` names a model defined below, unquoted."""

    name: str
    id: int | None = None

    books: LazyLoadEveryRelated[FutureBook]


@ommi_model(collection=testkit_models)
@dataclass
class FutureBook:
    """A book with an author and genres (through :class:`FutureBookGenre`, defined below)."""

    title: str
    author_id: Annotated[int, ReferenceTo(FutureAuthor.id)]
    id: int | None = None

    author: LazyLoadTheRelated[FutureAuthor]
    genres: LazyLoadEveryRelated[Annotated[FutureGenre, AssociateUsing(FutureBookGenre)]]


@ommi_model(collection=testkit_models)
@dataclass
class FutureGenre:
    """A genre with its books."""

    name: str
    id: int | None = None

    books: LazyLoadEveryRelated[Annotated[FutureBook, AssociateUsing(FutureBookGenre)]]


@ommi_model(collection=testkit_models)
@dataclass
class FutureBookGenre:
    """Association of books and genres."""

    book_id: Annotated[int, ReferenceTo(FutureBook.id)]
    genre_id: Annotated[int, ReferenceTo("FutureGenre.id")]
    id: int | None = None


@ommi_model(collection=testkit_models)
@dataclass
class FutureCategory:
    """A self-referencing tree under the future import."""

    name: str
    parent_id: Annotated[int | None, ReferenceTo("FutureCategory.id")] = None
    id: int | None = None

    parent: LazyLoadTheRelated[FutureCategory]
    children: LazyLoadEveryRelated[FutureCategory]
