"""pydantic v2 models of the model-library suite (imported only when pydantic is installed)."""

# The lazy relation aliases are ClassVars at runtime (so model libraries leave
# them out of __init__), which mypy cannot express as a generic alias.
# mypy: disable-error-code="misc, valid-type"

from typing import Annotated

from ommi import LazyLoadEveryRelated, LazyLoadTheRelated, ReferenceTo, ommi_model
from pydantic import BaseModel

from ommi_testkit.suites.models import testkit_models

__all__ = ["PydanticAuthor", "PydanticBook"]


@ommi_model(collection=testkit_models)
class PydanticAuthor(BaseModel):
    """A ``BaseModel`` with a to-many relation."""

    name: str
    age: int = 0
    id: int | None = None

    books: LazyLoadEveryRelated["PydanticBook"]


@ommi_model(collection=testkit_models)
class PydanticBook(BaseModel):
    """References :class:`PydanticAuthor` and loads it lazily."""

    title: str
    author_id: Annotated[int, ReferenceTo(PydanticAuthor.id)]
    id: int | None = None

    author: LazyLoadTheRelated[PydanticAuthor]
