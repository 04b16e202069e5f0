"""Tortoise ORM models of the benchmark tables, used on postgresql only (see ``tortoise_models``)."""

from __future__ import annotations

from ommibench.data import BIG, STREAM, USERS
from ommibench.impls.tortoise_models import BenchColumns

__all__ = ["TBigRow", "TStreamRow", "TUser"]


class TUser(BenchColumns):
    class Meta:
        table = USERS


class TStreamRow(BenchColumns):
    class Meta:
        table = STREAM


class TBigRow(BenchColumns):
    class Meta:
        table = BIG
