"""The models the reliability workloads store, in two collections of their own.

* :data:`differential_models`: :class:`Owner` and :class:`Sample`. A sample has
  one optional field of every storage type (and an ``Enum``), and may
  reference an owner, so generated queries can filter through a join in
  either direction.
* :data:`workload_models`: :class:`Account` and :class:`Transfer` (money moved
  between accounts, the total never changes), :class:`Receipt` (one row per
  acknowledged write, found again afterwards by its token) and :class:`Part`
  (rows written in groups that must be stored all or none), :class:`Stock`
  (a composite key the application chooses, changed by key-changing updates)
  and :class:`Ticket` (a generated key that explicit keys and ``update(id=...)``
  race against).

Stored names start with ``rel_`` so they never meet the conformance suite's tables.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from dataclasses import dataclass
from typing import Annotated

from ommi import Key, ModelCollection, ReferenceTo, TimezoneAware, ommi_model

__all__ = [
    "Account",
    "Owner",
    "Part",
    "Receipt",
    "Sample",
    "Shade",
    "Stock",
    "Ticket",
    "Transfer",
    "differential_models",
    "workload_models",
]

differential_models = ModelCollection("ommi_reliability_differential")
"""The models of the differential test."""

workload_models = ModelCollection("ommi_reliability_workloads")
"""The models of the fault, concurrency and cancellation workloads."""


class Shade(enum.Enum):
    """A str-valued enum: stored as its text, compared and sorted as text."""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@ommi_model(collection=differential_models, name="rel_owner")
@dataclass
class Owner:
    """The referenced side of the join: samples point at their owner."""

    id: Annotated[int, Key]
    name: str | None = None
    rank: int | None = None


@ommi_model(collection=differential_models, name="rel_sample")
@dataclass
class Sample:
    """One optional field of every storage type, plus an enum and a reference."""

    id: Annotated[int, Key]
    owner_id: Annotated[int | None, ReferenceTo(Owner.id)] = None
    number: int | None = None
    real: float | None = None
    exact: decimal.Decimal | None = None
    flag: bool | None = None
    text: str | None = None
    blob: bytes | None = None
    ident: uuid.UUID | None = None
    day: datetime.date | None = None
    moment: datetime.datetime | None = None
    instant: Annotated[datetime.datetime | None, TimezoneAware] = None
    shade: Shade | None = None


@ommi_model(collection=workload_models, name="rel_account")
@dataclass
class Account:
    """A balance; transfers move amounts between accounts inside transactions."""

    id: Annotated[int, Key]
    balance: int


@ommi_model(collection=workload_models, name="rel_transfer")
@dataclass
class Transfer:
    """The journal of a transfer, written in the same transaction as the balances it moves."""

    token: Annotated[str, Key]
    source: int
    target: int
    amount: int


@ommi_model(collection=workload_models, name="rel_receipt")
@dataclass
class Receipt:
    """One acknowledged write; the key is generated, so a repeated write would show as a second row."""

    token: str
    worker: int
    id: int | None = None


@ommi_model(collection=workload_models, name="rel_part")
@dataclass
class Part:
    """A row of a group written at once (one ``add`` or one transaction): all or none must be stored."""

    group: Annotated[str, Key]
    index: Annotated[int, Key]
    size: int


@ommi_model(collection=workload_models, name="rel_stock")
@dataclass
class Stock:
    """A row keyed by (``region``, ``code``), both chosen by the application; updates move it between regions."""

    region: Annotated[str, Key]
    code: Annotated[int, Key]
    quantity: int


@ommi_model(collection=workload_models, name="rel_ticket")
@dataclass
class Ticket:
    """A generated int key, also set explicitly (on add and by ``update``); ``token`` names the write."""

    token: str
    batch: str = ""
    note: str = ""
    id: int | None = None
