"""Models of the aggregate suite, in a collection of their own (tables prefixed ``agg_``, and one named ``group``).

* ``AggAuthor`` and ``AggPost``: a post references its author; a post has an
  optional ``int``, ``float``, date and text value (``Decimal`` aggregates use
  ``DecimalRecord``, which a server without Decimal128 can skip alone) to aggregate.
* ``AggKeywords``: table ``group`` whose fields are named like SQL's keywords and
  aggregate functions (``count``, ``sum``, ``group``, ``select``).
"""

import datetime
from dataclasses import dataclass
from typing import Annotated

from ommi import ModelCollection, ReferenceTo, ommi_model

__all__ = ["AggAuthor", "AggKeywords", "AggPost", "agg_models"]

agg_models = ModelCollection("ommi_testkit_agg")


@ommi_model(collection=agg_models, name="agg_author")
@dataclass
class AggAuthor:
    name: str
    team: str | None = None
    id: int | None = None


@ommi_model(collection=agg_models, name="agg_post")
@dataclass
class AggPost:
    author_id: Annotated[int, ReferenceTo(AggAuthor.id)]
    title: str = ""
    views: int | None = None
    score: float | None = None
    day: datetime.date | None = None
    id: int | None = None


@ommi_model(collection=agg_models, name="group")
@dataclass
class AggKeywords:
    """Fields named like SQL keywords and aggregate functions, in a table named ``group``."""

    group: str | None = None
    count: int | None = None
    sum: int | None = None
    select: str | None = None
    id: int | None = None
