"""Models of the upsert suite, in a collection of their own (every table is prefixed ``ups_``).

* ``UpsAccount``: a generated key, a unique ``email``, an optional unique
  ``handle`` (``None`` never collides) and a composite unique ``(team, number)``.
* ``UpsPlace``: a composite key ``(region, number)`` and an optional unique ``label``.
* ``UpsTag``: a text key and nothing else (an upsert with no field to replace).
* ``UpsExcluded``: table ``excluded`` with a unique column ``excluded`` (SQL's name for the row an
  ``ON CONFLICT`` update sees).
"""

from dataclasses import dataclass
from typing import Annotated

from ommi import Key, ModelCollection, Unique, ommi_model

__all__ = ["UpsAccount", "UpsExcluded", "UpsPlace", "UpsTag", "ups_models"]

ups_models = ModelCollection("ommi_testkit_ups")


@ommi_model(collection=ups_models, name="ups_account", constraints=[Unique("team", "number")])
@dataclass
class UpsAccount:
    email: Annotated[str, Unique]
    team: str = "red"
    number: int = 0
    note: str | None = None
    handle: Annotated[str | None, Unique] = None
    id: int | None = None


@ommi_model(collection=ups_models, name="ups_place")
@dataclass
class UpsPlace:
    region: Annotated[str, Key]
    number: Annotated[int, Key]
    name: str
    label: Annotated[str | None, Unique] = None


@ommi_model(collection=ups_models, name="ups_tag")
@dataclass
class UpsTag:
    code: Annotated[str, Key]


@ommi_model(collection=ups_models, name="excluded")
@dataclass
class UpsExcluded:
    """A table and a column named like SQL's ``excluded`` row of ``ON CONFLICT``."""

    excluded: Annotated[str, Unique]
    value: int = 0
    id: int | None = None
