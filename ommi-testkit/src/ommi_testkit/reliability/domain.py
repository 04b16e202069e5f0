"""What the generators may produce for one backend: the capability model, made explicit.

Every backend runs the same generated cases as the reference driver, drawn
from the *full* domain of Ommi's API except where the driver declares a
capability absent (:class:`ommi.drivers.Capabilities`). A legitimate difference
lives there, never in a silent exception in the test:

* ``microsecond_datetimes`` absent (MongoDB): datetimes are generated in whole
  milliseconds, both the stored values and the values queries compare with;
* ``exact_decimal`` absent: decimals have at most 15 significant digits;
* ``related_conditions`` absent: no condition on another model;
* ``foreign_keys`` absent: no delete of a row others may reference (the
  reference driver refuses it; such a backend would accept it);
* ``transactions`` absent: the workloads write without transactions;
* ``update_expressions`` absent: updates set plain values only;
* ``case_insensitive_text`` absent: no ``case_sensitive=False`` matches.

A *test server* that is not the real database may get some things wrong
(nx-27017, the MongoDB wire-protocol server CI runs, is the one case today).
:meth:`Domain.narrowed` removes what it cannot do, each narrowing with its
reason; the reason goes into the test output and the report, and the narrowing
applies only when that server is detected, never on the real database.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass

from ommi.drivers import Capabilities
from ommi.models.types import INT64_MAX, INT64_MIN, StorageType

__all__ = ["ALL_OPERATORS", "ALL_STORAGE", "Domain", "Narrowing"]

ALL_STORAGE = frozenset(StorageType)
ALL_OPERATORS = frozenset(
    (
        *("==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith", "endswith"),
        *("icontains", "istartswith", "iendswith", "is null", "is not null"),
    )
)
"""Every operator of the generated conditions; ``icontains``... are the matches with ``case_sensitive=False``."""


@dataclass(frozen=True, slots=True)
class Narrowing:
    """One restriction of the domain and why it exists."""

    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Domain:
    """The values and query forms the generators may use for one backend.

    Attributes:
        datetime_step: datetimes (naive and aware) are whole multiples of this.
        decimal_digits: most significant digits of a generated ``Decimal``.
        storable: storage types whose fields hold generated values (others stay NULL).
        filterable: storage types that value comparisons and ``in_`` may test.
        write_operators: the operators (``"!="``, ``"not in"``...) the conditions
            of ``update()`` and ``delete()`` may use.
        sortable: storage types ``sort()`` may use.
        settable: storage types ``update()`` may set.
        related_conditions: conditions may name the other model (a join).
        field_comparisons: conditions may compare two fields.
        key_null_tests: conditions may test a key field for NULL (never true, always false).
        foreign_keys: deletes of referenced rows are generated (and must fail).
        transactions: the workloads may use ``db.transaction()``.
        expression_storage: storage types ``update()`` may compute with update
            expressions (``Sample.number + 1``); empty: none are generated.
        upsert: ``db.upsert(...)`` operations are generated.
        case_insensitive_text: conditions may match text with ``case_sensitive=False``.
        text_excludes: characters no generated text holds: those a backend is
            documented to fold differently from :func:`ommi.query.evaluate.fold_case`
            (a narrowing adds to them, where other sets shrink).
        key_range: the range of generated integer keys.
        narrowings: every restriction applied beyond the full domain, with its reason.
    """

    datetime_step: _dt.timedelta = _dt.timedelta(microseconds=1)
    decimal_digits: int = 20
    storable: frozenset[StorageType] = ALL_STORAGE
    filterable: frozenset[StorageType] = ALL_STORAGE
    write_operators: frozenset[str] = ALL_OPERATORS
    sortable: frozenset[StorageType] = ALL_STORAGE
    settable: frozenset[StorageType] = ALL_STORAGE
    related_conditions: bool = True
    field_comparisons: bool = True
    key_null_tests: bool = True
    foreign_keys: bool = True
    transactions: bool = True
    upsert: bool = True
    case_insensitive_text: bool = True
    text_excludes: frozenset[str] = frozenset()
    key_range: tuple[int, int] = (INT64_MIN, INT64_MAX)
    expression_storage: frozenset[StorageType] = frozenset(
        {StorageType.INTEGER, StorageType.FLOAT, StorageType.DECIMAL}
    )
    narrowings: tuple[Narrowing, ...] = ()

    @classmethod
    def for_capabilities(cls, capabilities: Capabilities) -> Domain:
        """The full domain, less what the driver declares absent (each absence is a narrowing)."""
        domain = cls()
        if not capabilities.microsecond_datetimes:
            domain = domain.narrowed(
                "datetimes in whole milliseconds",
                "capability 'microsecond_datetimes' is absent",
                datetime_step=_dt.timedelta(milliseconds=1),
            )
        if not capabilities.exact_decimal:
            domain = domain.narrowed(
                "decimals of at most 15 significant digits",
                "capability 'exact_decimal' is absent",
                decimal_digits=15,
            )
        if not capabilities.related_conditions:
            domain = domain.narrowed(
                "no conditions on related models", "capability 'related_conditions' is absent", related_conditions=False
            )
        if not capabilities.foreign_keys:
            domain = domain.narrowed(
                "no deletes of referenced rows", "capability 'foreign_keys' is absent", foreign_keys=False
            )
        if not capabilities.transactions:
            domain = domain.narrowed(
                "workloads write without transactions", "capability 'transactions' is absent", transactions=False
            )
        if not capabilities.update_expressions:
            domain = domain.narrowed(
                "no update expressions", "capability 'update_expressions' is absent", expression_storage=set()
            )
        if not capabilities.upsert:
            domain = domain.narrowed("no upserts", "capability 'upsert' is absent", upsert=False)
        if not capabilities.case_insensitive_text:
            domain = domain.narrowed(
                "no case-insensitive text matches",
                "capability 'case_insensitive_text' is absent",
                case_insensitive_text=False,
            )
        return domain

    def narrowed(self, what: str, reason: str, **changes: object) -> Domain:
        """A copy with ``changes`` applied and the narrowing recorded.

        Set-valued changes (``storable``, ``filterable``...) are intersected
        with the current value, ``text_excludes`` is united with it, and
        ``datetime_step`` only ever grows, so narrowings compose in any order.
        """
        merged: dict[str, object] = {}
        for name, value in changes.items():
            current = getattr(self, name)
            if name == "text_excludes" and isinstance(value, (set, frozenset)):
                merged[name] = current | frozenset(value)
            elif isinstance(current, frozenset) and isinstance(value, (set, frozenset)):
                merged[name] = current & frozenset(value)
            elif name == "datetime_step" and isinstance(value, _dt.timedelta):
                merged[name] = max(current, value)
            else:
                merged[name] = value
        return dataclasses.replace(self, narrowings=(*self.narrowings, Narrowing(what, reason)), **merged)  # type: ignore[arg-type]

    def describe(self) -> list[str]:
        """Every narrowing as one line (empty: the full domain)."""
        return [str(n) for n in self.narrowings]
