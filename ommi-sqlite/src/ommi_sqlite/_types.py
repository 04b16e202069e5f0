"""Which declared SQLite column types hold which of Ommi's storage types: for drift checks and ``ommi inspect``.

SQLite's declared types are free text; what they mean is their *affinity*,
derived from the name by SQLite's rules, in order: a name containing ``INT``
has INTEGER affinity; else one containing ``CHAR``, ``CLOB`` or ``TEXT`` has
TEXT affinity; else ``BLOB`` (or no type) BLOB; else ``REAL``, ``FLOA`` or
``DOUB`` REAL; else NUMERIC. Ommi's own column types (``DECIMAL_TEXT``,
``UUID_TEXT``, ``DATE_TEXT``...) are told apart by their exact names. A
column made by another tool is accepted when:

=====================  ============================================  ==========================
storage type           declared type                                 limit Ommi enforces
=====================  ============================================  ==========================
``int``                INTEGER affinity (``INT``, ``BIGINT``,         none: SQLite integers are
                       ``SMALLINT``...)                              64-bit whatever the name
``str``                TEXT affinity, except Ommi's own ``*_TEXT``   ``n`` characters of
                       types (``TEXT``, ``VARCHAR(n)``, ``CHAR(n)``)  ``VARCHAR(n)``/``CHAR(n)``
``float``              REAL affinity (``REAL``, ``DOUBLE``,           none
                       ``FLOAT``)
``Decimal``            ``DECIMAL_TEXT``; ``NUMERIC``/``DECIMAL``      ``p - s`` digits before the
                       (``(p,s)``): NUMERIC affinity, values stored  point of ``(p,s)``
                       as numbers (not exact past 15 digits)
``bool``               ``BOOLEAN``, ``BOOL``                         none
``date``               ``DATE_TEXT``, ``DATE``                       none
``datetime``           ``DATETIME_TEXT``, ``DATETIME``,              none
                       ``TIMESTAMP``
``datetime`` (aware)   ``DATETIME_TZ_TEXT``, ``TIMESTAMPTZ``,         none
                       ``TIMESTAMP WITH TIME ZONE``
``bytes``              ``BLOB``                                      none
``uuid``               ``UUID_TEXT``                                 none
JSON                   ``JSON_TEXT`` (read back as ``dict[str,       none
                       Any]``; a ``JSON`` column has NUMERIC
                       affinity and is not accepted)
=====================  ============================================  ==========================

SQLite itself never enforces a declared length; Ommi does (the size a
schema declares is what the application meant, and the same model then
refuses the same values on SQLite and PostgreSQL). A generated key must be
declared exactly ``INTEGER`` (the rowid alias).
"""

from __future__ import annotations

import re

from ommi.models.types import StorageType
from ommi.sql.limits import ColumnLimit, numeric_limit

__all__ = ["accepted_types", "classify"]

_OWN: dict[str, StorageType] = {
    "DECIMAL_TEXT": StorageType.DECIMAL,
    "UUID_TEXT": StorageType.UUID,
    "DATE_TEXT": StorageType.DATE,
    "DATETIME_TEXT": StorageType.DATETIME,
    "DATETIME_TZ_TEXT": StorageType.DATETIME_TZ,
    "JSON_TEXT": StorageType.JSON,
}

_NUMERIC_NAMES: dict[str, StorageType] = {
    "BOOLEAN": StorageType.BOOLEAN,
    "BOOL": StorageType.BOOLEAN,
    "DATE": StorageType.DATE,
    "DATETIME": StorageType.DATETIME,
    "TIMESTAMP": StorageType.DATETIME,
    "TIMESTAMP WITHOUT TIME ZONE": StorageType.DATETIME,
    "TIMESTAMPTZ": StorageType.DATETIME_TZ,
    "TIMESTAMP WITH TIME ZONE": StorageType.DATETIME_TZ,
}

_SIZE = re.compile(r"\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)\s*$")
_DECIMAL = re.compile(r"(NUMERIC|DECIMAL)\s*(\(.*\))?")

_ACCEPTED = {
    StorageType.INTEGER: "a type of INTEGER affinity",
    StorageType.TEXT: "a type of TEXT affinity (TEXT, VARCHAR(n)...)",
    StorageType.FLOAT: "a type of REAL affinity",
    StorageType.DECIMAL: "DECIMAL_TEXT, NUMERIC or DECIMAL(p,s)",
}


def affinity(declared: str) -> str:
    """SQLite's affinity of a declared type: ``INTEGER``, ``TEXT``, ``BLOB``, ``REAL`` or ``NUMERIC``."""
    name = declared.upper()
    if "INT" in name:
        return "INTEGER"
    if "CHAR" in name or "CLOB" in name or "TEXT" in name:
        return "TEXT"
    if "BLOB" in name or not name.strip():
        return "BLOB"
    if "REAL" in name or "FLOA" in name or "DOUB" in name:
        return "REAL"
    return "NUMERIC"


def classify(declared: str) -> tuple[StorageType, ColumnLimit | None] | None:
    """The storage type a column declared ``declared`` holds, and the limit Ommi enforces on it.

    ``None``: no storage type fits (no declared type, ``JSON``, ``MONEY``...).
    """
    name = " ".join(declared.upper().split())
    own = _OWN.get(name)
    if own is not None:
        return own, None
    kind = affinity(name)
    if kind == "INTEGER":
        return StorageType.INTEGER, None
    if kind == "REAL":
        return StorageType.FLOAT, None
    if kind == "TEXT":
        size = _SIZE.search(name)
        if "CHAR" in name and size is not None and size.group(2) is None:
            return StorageType.TEXT, ColumnLimit(declared, max_chars=int(size.group(1)))
        return StorageType.TEXT, None
    if kind == "BLOB":
        return (StorageType.BYTES, None) if name else None
    decimal = _DECIMAL.fullmatch(name)
    if decimal is not None:
        size = _SIZE.fullmatch(decimal.group(2) or "")
        if decimal.group(2) and size is None:
            return None
        if size is None:
            return StorageType.DECIMAL, None
        scale = int(size.group(2)) if size.group(2) is not None else 0
        return StorageType.DECIMAL, numeric_limit(declared, int(size.group(1)), scale)
    named = _NUMERIC_NAMES.get(name)
    return None if named is None else (named, None)


def accepted_types(storage: StorageType, created: str) -> str:
    """The declared types accepted for ``storage`` (``created``: the one Ommi creates), for drift messages."""
    return _ACCEPTED.get(storage, created)
