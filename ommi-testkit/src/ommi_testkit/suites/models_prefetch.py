"""Models of the prefetch suite, in a collection of their own (tables prefixed ``pre_``, and two SQL keywords).

* ``PreOrder`` / ``PreLine``: a text key referenced by lines whose key is
  composite ``(order_code, number)``: the related lists sort by both fields.
* ``PreGroup`` (table ``group``, key field ``select``) / ``PreMember`` (table
  ``excluded``, a reference field ``count``): names that collide with SQL.
"""

# The lazy relation aliases are ClassVars at runtime: a type checker sees the
# annotations, not the descriptors the decorator installs.
# mypy: disable-error-code="valid-type, misc"

from dataclasses import dataclass
from typing import Annotated

from ommi import Key, LazyLoadEveryRelated, LazyLoadTheRelated, ModelCollection, ReferenceTo, ommi_model

__all__ = ["PreGroup", "PreLine", "PreMember", "PreOrder", "pre_models"]

pre_models = ModelCollection("ommi_testkit_pre")


@ommi_model(collection=pre_models, name="pre_order")
@dataclass
class PreOrder:
    """An order keyed by a text code; its lines sort by their composite key."""

    code: Annotated[str, Key]
    customer: str = ""

    lines: LazyLoadEveryRelated["PreLine"]


@ommi_model(collection=pre_models, name="pre_line")
@dataclass
class PreLine:
    """A line of an order: composite key ``(order_code, number)``, ``order_code`` references the order."""

    order_code: Annotated[str, Key, ReferenceTo("PreOrder.code")]
    number: Annotated[int, Key]
    item: str = ""

    order: LazyLoadTheRelated[PreOrder]


@ommi_model(collection=pre_models, name="group")
@dataclass
class PreGroup:
    """Table ``group`` keyed by a field ``select``."""

    select: Annotated[str, Key]

    members: LazyLoadEveryRelated["PreMember"]


@ommi_model(collection=pre_models, name="excluded")
@dataclass
class PreMember:
    """Table ``excluded`` with a reference field ``count`` to ``group.select``."""

    count: Annotated[str, ReferenceTo("PreGroup.select")]
    order: int = 0
    id: int | None = None

    group: LazyLoadTheRelated[PreGroup]
