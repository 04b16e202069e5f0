"""The testkit's models in the **global** collection, for the implicit-setup tests.

Implicit setup only ever creates the global collection, so these models
cannot live in ``testkit_models``. Importing this module adds them to the
global collection of the whole process; the suites therefore import it
lazily, through :func:`ommi_testkit.suites._support.global_models`, only when
a test that needs them runs. That keeps ``tk_implicit_*`` tables out of the
databases of applications whose pytest sessions merely load the testkit's
plugin. The fixtures drop the global collection's tables before and after
every test.
"""

# The lazy relation aliases are ClassVars at runtime (so model libraries leave
# them out of __init__), which mypy cannot express as a generic alias.
# mypy: disable-error-code="misc, valid-type"

from dataclasses import dataclass
from typing import Annotated

from ommi import LazyLoadEveryRelated, LazyLoadTheRelated, ReferenceTo, ommi_model

__all__ = ["ImplicitItem", "ImplicitOwner"]


@ommi_model(name="tk_implicit_owner")
@dataclass
class ImplicitOwner:
    """Set up implicitly by the first operation of an ``Ommi``."""

    name: str
    id: int | None = None

    items: LazyLoadEveryRelated["ImplicitItem"]


@ommi_model(name="tk_implicit_item")
@dataclass
class ImplicitItem:
    """References :class:`ImplicitOwner`; set up together with it."""

    label: str
    owner_id: Annotated[int | None, ReferenceTo("ImplicitOwner.id")] = None
    id: int | None = None

    owner: LazyLoadTheRelated[ImplicitOwner]
