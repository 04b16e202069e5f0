"""Which stored PostgreSQL column types hold which of Ommi's storage types: for drift checks and ``ommi inspect``.

``use_models()`` creates one type per storage type (``bigint``, ``text``,
``numeric``...), but a table created by hand or by another tool is accepted
when each column's type can hold the field's values, in full or within a
limit that Ommi then enforces before writing (:mod:`ommi.sql.limits`):

====================  ===========================================  =========================
storage type          accepted stored types (``format_type()``)    limit enforced
====================  ===========================================  =========================
``int``               ``bigint``, ``integer``, ``smallint``        range of int4 / int2
``str``               ``text``, ``character varying(n)``,          n characters
                      ``character(n)``, ``citext``
``Decimal``           ``numeric``, ``numeric(p,s)``                p - s digits before the point
``float``             ``double precision``, ``real``              none (``real`` rounds)
``datetime``          ``timestamp without time zone``              none
``datetime`` (aware)  ``timestamp with time zone``                 none
JSON                  ``jsonb`` (read back as ``dict[str, Any]``;  none
                      ``json`` is not accepted: no jsonb operators)
others                exactly the type Ommi creates                none
====================  ===========================================  =========================

A column whose type is not listed for its field is drift (``text`` for an
``int``, ``timestamp`` for a ``TimezoneAware`` field and the other way round).
Each stored type maps to exactly one storage type, which is what
:func:`classify` returns and what ``ommi inspect`` prints.
"""

from __future__ import annotations

import re

from ommi.models.types import StorageType
from ommi.sql.limits import ColumnLimit, numeric_limit

__all__ = ["accepted_types", "classify"]

_EXACT: dict[str, StorageType] = {
    "bigint": StorageType.INTEGER,
    "integer": StorageType.INTEGER,
    "smallint": StorageType.INTEGER,
    "text": StorageType.TEXT,
    "character varying": StorageType.TEXT,
    "citext": StorageType.TEXT,
    "numeric": StorageType.DECIMAL,
    "double precision": StorageType.FLOAT,
    "real": StorageType.FLOAT,
    "boolean": StorageType.BOOLEAN,
    "bytea": StorageType.BYTES,
    "uuid": StorageType.UUID,
    "date": StorageType.DATE,
    "timestamp without time zone": StorageType.DATETIME,
    "timestamp with time zone": StorageType.DATETIME_TZ,
    "jsonb": StorageType.JSON,
}

_INT_LIMITS = {
    "integer": ColumnLimit("integer", min_int=-(2**31), max_int=2**31 - 1),
    "smallint": ColumnLimit("smallint", min_int=-(2**15), max_int=2**15 - 1),
}

_SIZED_TEXT = re.compile(r"(character varying|character)\((\d+)\)")
_NUMERIC = re.compile(r"numeric\((\d+),(-?\d+)\)")
_CITEXT = re.compile(r'(?:"?[^".]+"?\.)?citext')
"""``citext`` as format_type() names it: qualified with its schema when that is not on the search_path."""

_ACCEPTED = {
    StorageType.INTEGER: "bigint, integer or smallint",
    StorageType.TEXT: "text, varchar(n), char(n) or citext",
    StorageType.DECIMAL: "numeric or numeric(p,s)",
    StorageType.FLOAT: "double precision or real",
}


def classify(type_name: str) -> tuple[StorageType, ColumnLimit | None] | None:
    """The storage type a stored column of ``type_name`` (as ``format_type()`` spells it) holds, and its limit.

    ``None``: Ommi has no storage type for it (json, arrays, custom types...).
    """
    exact = _EXACT.get(type_name)
    if exact is not None:
        return exact, _INT_LIMITS.get(type_name)
    sized = _SIZED_TEXT.fullmatch(type_name)
    if sized is not None:
        return StorageType.TEXT, ColumnLimit(type_name, max_chars=int(sized.group(2)))
    numeric = _NUMERIC.fullmatch(type_name)
    if numeric is not None:
        return StorageType.DECIMAL, numeric_limit(type_name, int(numeric.group(1)), int(numeric.group(2)))
    if _CITEXT.fullmatch(type_name):
        return StorageType.TEXT, None
    return None


def accepted_types(storage: StorageType, created: str) -> str:
    """The stored types accepted for ``storage`` (``created``: the one Ommi creates), for drift messages."""
    return _ACCEPTED.get(storage, created)
