"""The compiled statement: the leaf every module of :mod:`ommi.sql` shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Compiled"]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement: SQL text and its parameters, in order."""

    sql: str
    params: list[Any]
