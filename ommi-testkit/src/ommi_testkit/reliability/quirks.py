"""Known defects of test servers that stand in for a real database, as domain narrowings.

nx-27017 is a MongoDB wire-protocol server written in Python; CI runs it
because no MongoDB can be installed there. It answers some queries wrongly
(ommi-mongodb's conformance tests list the same defects in their
``needs_real_mongodb`` table). :func:`narrow_for_test_servers` keeps the
differential generator away from exactly those, each with its reason, and only
when the driver is connected to nx-27017: on a real MongoDB the full domain
(less the driver's declared capabilities) runs.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from typing import Any

from ommi.drivers import Driver
from ommi.models.types import StorageType
from ommi.query.evaluate import fold_case

from ommi_testkit.reliability.domain import ALL_OPERATORS, Domain

__all__ = [
    "columns_not_run",
    "is_nx_27017",
    "lowercasing_differences",
    "narrow_for_nx_27017",
    "narrow_for_test_servers",
    "python_regex_folding_differences",
]

_DATES = {StorageType.DATE, StorageType.DATETIME, StorageType.DATETIME_TZ}


def is_nx_27017(driver: Driver) -> bool:
    """Whether an opened driver talks to nx-27017 (it says so as ``process`` in ``buildInfo``)."""
    info: Any = getattr(driver, "server_info", None)
    if not isinstance(info, dict):
        return False
    process = str(info.get("buildInfo", {}).get("process", ""))
    return process.replace("-", "_").lower() == "nx_27017"


def narrow_for_nx_27017(domain: Domain) -> Domain:
    """The domain less what nx-27017 gets wrong (each narrowing names the defect)."""
    everything_but = set(StorageType)
    return (
        domain.narrowed(
            "no Decimal values",
            "nx-27017 cannot store Decimal128 ('Object of type Decimal128 is not JSON serializable')",
            storable=everything_but - {StorageType.DECIMAL},
            filterable=everything_but - {StorageType.DECIMAL},
            sortable=everything_but - {StorageType.DECIMAL},
            settable=everything_but - {StorageType.DECIMAL},
        )
        .narrowed(
            "no value conditions on bytes or UUID fields (null tests only)",
            "nx-27017 never matches binary values (subtypes 0 and 4) in a filter",
            filterable=everything_but - {StorageType.BYTES, StorageType.UUID},
        )
        .narrowed(
            "no sort on UUID fields",
            "nx-27017 sorts binary values (subtypes 0 and 4) neither byte by byte nor by length; bytes fields "
            "are sorted by ommi-mongodb itself, UUIDs by the server",
            sortable=everything_but - {StorageType.UUID},
        )
        .narrowed(
            "datetimes in whole seconds",
            "nx-27017 ignores milliseconds when it compares date-times",
            datetime_step=_dt.timedelta(seconds=1),
        )
        .narrowed(
            "update() never sets date or datetime fields",
            "nx-27017 stores a date-time given to $set as text, which then reads back as a string",
            settable=everything_but - _DATES,
        )
        .narrowed(
            "update() never sets bool fields",
            "nx-27017 stores a bool given to $set as the integer 1 or 0, which then sorts among numbers",
            settable=everything_but - {StorageType.BOOLEAN},
        )
        .narrowed(
            "update() never sets float fields",
            "nx-27017 keeps 15 significant digits of a float given to $set (6.8946707031919096e+16 reads back "
            "as 6.89467070319191e+16)",
            settable=everything_but - {StorageType.FLOAT},
        )
        .narrowed(
            "update() and delete() conditions use only ==, <, <=, >, >= and NULL tests",
            "nx-27017's update_many / delete_many honour only $eq, $lt, $lte, $gt, $gte and null tests: with "
            "$in, $nin, $ne or $regex in the filter (in_, not_in, != and the text matches) they report the "
            "matches but change nothing, or fail with 'malformed JSON' for date-times, while find and count "
            "answer the same filters right",
            write_operators=ALL_OPERATORS
            - {"!=", "in", "not in", "contains", "startswith", "endswith", "icontains", "istartswith", "iendswith"},
        )
        .narrowed(
            "texts avoid the characters Python's re folds differently from fold_case",
            "nx-27017 runs a case-insensitive $regex with Python's re, which matches by simple lower-casing "
            "and its own extra case pairs (İ and the dotless i with i, the Greek symbol forms with their letters); "
            "MongoDB's PCRE folds as fold_case does",
            text_excludes=python_regex_folding_differences(),
        )
        .narrowed(
            "no NULL tests on key fields",
            "nx-27017 answers {_id: {$ne: null}} with no documents (inside $and it answers right)",
            key_null_tests=False,
        )
        .narrowed(
            "no update expressions",
            "nx-27017 has no update pipelines, which an optional target needs (every generated numeric field is "
            "optional; the driver refuses such an update there with UnsupportedFeature)",
            expression_storage=set(),
        )
        .narrowed(
            "integer keys between 100 and 999",
            "nx-27017 sorts integer _id values as text (1, 10, 2); keys of three digits sort the same either way",
            key_range=(100, 999),
        )
    )


def narrow_for_test_servers(domain: Domain, driver: Driver) -> Domain:
    """Narrow ``domain`` for the test server ``driver`` is connected to, if it is a known stand-in.

    Also for what a first-party driver documents beyond its capabilities:
    SQLite computes no ``Decimal`` update expression (it stores a ``Decimal``
    as text; the driver raises ``UnsupportedFeature``), and PostgreSQL folds
    a few characters differently from ``fold_case`` (the queries guide lists
    them), which its generated texts avoid.
    """
    if driver.name == "postgresql" and driver.capabilities.case_insensitive_text:
        domain = domain.narrowed(
            "texts avoid the characters PostgreSQL folds differently from fold_case",
            "documented in the queries guide: PostgreSQL lower-cases under ICU (full and in context: a capital "
            "sigma ending a word, İ), and characters that fold without being upper case (the micro sign, the "
            "long s, the final sigma, the Greek symbol forms) stay apart",
            text_excludes=lowercasing_differences() | {"\u03a3"},
        )
    if driver.name == "sqlite":
        domain = domain.narrowed(
            "no Decimal update expressions",
            "the sqlite driver refuses Decimal arithmetic (UnsupportedFeature): SQLite stores a Decimal as text",
            expression_storage=set(StorageType) - {StorageType.DECIMAL},
        )
    if is_nx_27017(driver):
        return narrow_for_nx_27017(domain)
    return domain


@functools.cache
def lowercasing_differences() -> frozenset[str]:
    """Every character whose ``lower()`` is not one character, or is not its :func:`fold_case`.

    Outside them, lower-casing one character at a time and ``fold_case`` put
    the same characters together: what a database's ``lower()`` may differ
    in (beyond context, as the Greek final sigma) is among them.
    """
    found = []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        lowered = ch.lower()
        if len(lowered) != 1 or lowered != fold_case(ch):
            found.append(ch)
    return frozenset(found)


@functools.cache
def python_regex_folding_differences() -> frozenset[str]:
    """The characters Python's ``re.IGNORECASE`` puts together differently from :func:`fold_case`.

    ``re`` compares simple lower-cased characters, plus its own extra case
    pairs (``re._casefix``: ``i`` and the dotless i, ``s`` and the long s...): every
    character of :func:`lowercasing_differences`, and both sides of each pair
    whose characters ``fold_case`` keeps apart.
    """
    found = set(lowercasing_differences())
    # The pairs re itself uses (Python 3.11 and later); the dotless i pair alone if it moves.
    casefix = importlib.import_module("re._casefix") if importlib.util.find_spec("re._casefix") else None
    extra_cases: dict[int, tuple[int, ...]] = getattr(casefix, "_EXTRA_CASES", {0x69: (0x131,), 0x131: (0x69,)})
    for code, others in extra_cases.items():
        group = [chr(code), *map(chr, others)]
        if len({fold_case(ch) for ch in group}) > 1:
            found.update(group)
    return frozenset(found)


def columns_not_run(driver: Driver, names: Iterable[str]) -> dict[str, str]:
    """The column names among ``names`` not to run on the test server ``driver`` is connected to, with reasons.

    nx-27017 cannot filter on a field whose name holds a double quote, and
    matches nothing on one whose name holds a backslash or is not ASCII; a
    real MongoDB runs them all.
    """
    if not is_nx_27017(driver):
        return {}
    skipped: dict[str, str] = {}
    for name in names:
        if '"' in name:
            skipped[name] = "nx-27017 cannot filter on a field whose name holds a double quote"
        elif "\\" in name:
            skipped[name] = "nx-27017 matches nothing on a field whose name holds a backslash"
        elif not name.isascii():
            skipped[name] = "nx-27017 matches nothing on a field whose name is not ASCII"
    return skipped
