"""Models of the constraints suite (``Unique`` and ``Index``), each version a collection of its own.

Every table is prefixed ``con_``:

* ``con_v1``: ``con_member`` with a unique ``email`` (optional: ``None``
  never collides), a composite unique ``(team, number)`` and an index on
  ``joined``; ``con_plain`` with none.
* ``con_bare``: ``con_member`` without any constraint (the table as another
  tool or an older version left it), to check drift.
* ``con_mig_v1`` -> ``con_mig_v2`` -> ``con_mig_v1`` again: ``con_tag`` gains
  a unique ``label`` and an index on ``(kind, label)``, then loses them.
"""

import datetime
from dataclasses import dataclass
from typing import Annotated

from ommi import Index, ModelCollection, Unique, ommi_model

__all__ = ["CONSTRAINT_COLLECTIONS", "con_bare", "con_mig_v1", "con_mig_v2", "con_v1"]

con_v1 = ModelCollection("ommi_testkit_con_v1")
con_bare = ModelCollection("ommi_testkit_con_bare")
con_mig_v1 = ModelCollection("ommi_testkit_con_mig_v1")
con_mig_v2 = ModelCollection("ommi_testkit_con_mig_v2")


@ommi_model(collection=con_v1, name="con_member", constraints=[Unique("team", "number")])
@dataclass
class Member:
    team: str
    number: int
    joined: Annotated[datetime.date, Index]
    email: Annotated[str | None, Unique] = None
    id: int | None = None


@ommi_model(collection=con_bare, name="con_member")
@dataclass
class MemberBare:
    team: str
    number: int
    joined: datetime.date
    email: str | None = None
    id: int | None = None


@ommi_model(collection=con_mig_v1, name="con_tag")
@dataclass
class TagV1:
    kind: str
    label: str
    id: int | None = None


@ommi_model(collection=con_mig_v2, name="con_tag", constraints=[Index("kind", "label")])
@dataclass
class TagV2:
    kind: str
    label: Annotated[str, Unique]
    id: int | None = None


CONSTRAINT_COLLECTIONS = (con_v1, con_bare, con_mig_v1, con_mig_v2)
