"""Hypothesis strategies for model data and query trees, within a backend's :class:`Domain`.

:func:`scenarios` draws a starting dataset of owners and samples (every field
type, NULLs, unicode, ties on purpose) and a list of operations on it: finds
with AND/OR trees of every operator (text matches with and without
``case_sensitive=False``), conditions through the join in both directions,
field-to-field comparisons, sorts on several keys, pages, keyset cursors
(``.after(row)`` / ``.before(row)`` from a row of the starting data), counts,
``.one``, updates (some with update expressions, ``Sample.number * 3 + 1``,
within the domain's ``expression_storage``), deletes and multi-row adds that
may fail as a whole.

Condition values are drawn half from the values the dataset holds (so
conditions match some rows and sorts meet ties) and half fresh.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import string
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from ommi.models.schema import Field, get_schema
from ommi.models.types import INT64_MAX, INT64_MIN, StorageType
from ommi.query.aggregate import UNORDERED
from ommi.query.arithmetic import is_numeric

from ommi_testkit.reliability.domain import Domain
from ommi_testkit.reliability.models import Owner, Sample, Shade
from ommi_testkit.reliability.specs import (
    CASE_INSENSITIVE_MATCHES,
    COMPARISONS,
    MEMBERSHIP,
    NULL_TESTS,
    TEXT_MATCHES,
    AddSpec,
    AggregateSpec,
    AllOf,
    AnyOf,
    Arith,
    Compare,
    CompareFields,
    Cond,
    DeleteSpec,
    ExistsSpec,
    FindSpec,
    HavingCompare,
    Operation,
    Ref,
    RowSpec,
    Scenario,
    UpdateSpec,
    UpsertSpec,
    ValuesSpec,
    field_of,
)

__all__ = ["Generator", "floor_datetime", "texts", "values_for"]

_SPECIAL = "%_\\*?[]^$.()|+{}\"'`;-/ \n\t"
# Case pairs, a ligature, CJK, an emoji, a combining mark, invisible characters: code points that
# case-insensitive or collating comparisons would treat differently from Ommi's code-point order.
_OTHER = "aAbBzZ09éÉßİ\u0131ﬁ中文😀\u0301\u200b\ufeff"

_BOOL = st.booleans()


@functools.cache
def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    # Building a strategy costs far more than drawing from it: build each range once.
    return st.integers(low, high)


def _choice(draw: Any, items: Sequence[Any]) -> Any:
    """One of ``items`` (shrinks towards the first)."""
    return items[draw(_ints(0, len(items) - 1))]


_DT_MIN = _dt.datetime.min + _dt.timedelta(days=2)
_DT_MAX = _dt.datetime.max - _dt.timedelta(days=2)


_OPERATIONS = ("find",) * 6 + (
    "values",
    "values",
    "exists",
    "aggregate",
    "aggregate",
    "update",
    "update",
    "delete",
    "add",
)


@functools.cache
def texts(max_size: int = 10, exclude: frozenset[str] = frozenset()) -> st.SearchStrategy[str]:
    """Unicode text without NUL or lone surrogates, rich in LIKE/GLOB/regex metacharacters.

    ``exclude``: characters never drawn (a domain's ``text_excludes``).
    """
    alphabet = st.one_of(
        st.sampled_from([ch for ch in _SPECIAL + _OTHER + string.ascii_letters[:6] if ch not in exclude]),
        st.characters(codec="utf-8", exclude_characters="".join(sorted({"\x00", *exclude}))),
    )
    return st.text(alphabet, max_size=max_size)


def floor_datetime(value: _dt.datetime, step: _dt.timedelta) -> _dt.datetime:
    """``value`` rounded down to a whole multiple of ``step`` (counted from ``datetime.min``)."""
    naive = value.replace(tzinfo=None)
    floored = naive - (naive - _dt.datetime.min) % step
    return floored.replace(tzinfo=value.tzinfo)


def _decimals(digits: int) -> st.SearchStrategy[decimal.Decimal]:
    top = 10**digits - 1
    return st.builds(
        lambda n, e: decimal.Decimal(f"{n}E{e}"),
        st.one_of(st.integers(-3, 3), st.integers(-top, top)),
        st.integers(-12, 12),
    )


def _datetimes(step: _dt.timedelta) -> st.SearchStrategy[_dt.datetime]:
    common = st.datetimes(min_value=_dt.datetime(1990, 1, 1), max_value=_dt.datetime(2040, 1, 1))
    anywhere = st.datetimes(min_value=_DT_MIN, max_value=_DT_MAX)
    return st.one_of(common, anywhere).map(lambda v: floor_datetime(v, step))


def _aware(step: _dt.timedelta) -> st.SearchStrategy[_dt.datetime]:
    offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: _dt.timezone(_dt.timedelta(minutes=m)))
    return st.builds(lambda v, tz: v.replace(tzinfo=tz), _datetimes(step), st.one_of(st.just(_dt.UTC), offsets))


def values_for(field: Field, domain: Domain) -> st.SearchStrategy[Any]:
    """Fresh application values for ``field`` (never ``None``)."""
    if field.python_type is Shade:
        return st.sampled_from(Shade)
    storage = field.storage
    low, high = domain.key_range
    if storage is StorageType.INTEGER:
        if field.key or field.reference is not None:
            return st.integers(low, high)
        return st.one_of(st.integers(-3, 3), st.integers(low, high))
    if storage is StorageType.FLOAT:
        return st.one_of(
            st.sampled_from([0.0, -0.0, 1.0, -1.5, 0.1]),
            st.floats(allow_nan=False, allow_infinity=False),
        )
    if storage is StorageType.DECIMAL:
        return _decimals(domain.decimal_digits)
    if storage is StorageType.BOOLEAN:
        return st.booleans()
    if storage is StorageType.TEXT:
        return texts(exclude=domain.text_excludes)
    if storage is StorageType.BYTES:
        return st.binary(max_size=10)
    if storage is StorageType.UUID:
        return st.uuids()
    if storage is StorageType.DATE:
        return st.dates()
    if storage is StorageType.DATETIME:
        return _datetimes(domain.datetime_step)
    if storage is StorageType.DATETIME_TZ:
        return _aware(domain.datetime_step)
    raise AssertionError(f"no strategy for {storage}")  # pragma: no cover


class Generator:
    """The strategies of one backend's domain.

    Args:
        domain: what may be generated.
        max_samples: most samples in a starting dataset.
        operations: (fewest, most) operations per scenario; each is one case.
    """

    def __init__(self, domain: Domain, *, max_samples: int = 16, operations: tuple[int, int] = (20, 30)) -> None:
        self.domain = domain
        self.max_samples = max_samples
        self.operations = operations
        fields = (*get_schema(Owner).fields, *get_schema(Sample).fields)
        self._fresh = {f: values_for(f, domain) for f in fields}
        # Mostly small keys (collisions and readable failures), sometimes anywhere in range.
        low, high = domain.key_range
        small_low = max(low, -5)
        self._keys_strategy = st.one_of(_ints(small_low, min(high, small_low + 45)), _ints(low, high))
        self._short_texts = texts(4, domain.text_excludes)

    # -- values and rows -----------------------------------------------------

    def _stored(self, field: Field) -> bool:
        return field.key or field.reference is not None or field.storage in self.domain.storable

    def _row(self, draw: Any, model: type, key: int, owners: Sequence[int]) -> RowSpec:
        values: list[tuple[str, Any]] = [("id", key)]
        for field in get_schema(model).fields:
            if field.key:
                continue
            value = None
            if field.reference is not None:
                if owners and draw(_BOOL):
                    value = _choice(draw, owners)
            elif self._stored(field) and draw(_ints(0, 3)):
                value = draw(self._fresh[field])
            values.append((field.name, value))
        return RowSpec(model, tuple(values))

    def _keys(self, draw: Any, fewest: int, most: int) -> list[int]:
        # Hypothesis favours short lists; a drawn minimum keeps datasets big enough to sort and page.
        size = draw(_ints(fewest, most))
        keys: list[int] = draw(st.lists(self._keys_strategy, unique=True, min_size=size, max_size=most))
        return keys

    # -- conditions ----------------------------------------------------------

    def _value(self, draw: Any, field: Field, pools: dict[Field, list[Any]]) -> Any:
        pool = pools.get(field, [])
        if pool and draw(_BOOL):
            return _choice(draw, pool)
        return draw(self._fresh[field])

    def _leaf(self, draw: Any, fields: Sequence[Field], pools: dict[Field, list[Any]], writing: bool) -> Cond:
        field = _choice(draw, fields)
        model = field.schema.cls
        filterable = field.storage in self.domain.filterable
        ops = list(NULL_TESTS) if self.domain.key_null_tests or not field.key else []
        if filterable:
            ops += [*COMPARISONS, *MEMBERSHIP]
            if field.storage is StorageType.TEXT and field.python_type is str:
                ops += TEXT_MATCHES
                if self.domain.case_insensitive_text:
                    ops += CASE_INSENSITIVE_MATCHES
        if writing:
            ops = [op for op in ops if op in self.domain.write_operators]
        if not ops:
            raise ValueError(f"the domain leaves no operator for {field!r}{' in writes' if writing else ''}")
        op = _choice(draw, ops)
        if op in NULL_TESTS:
            return Compare(model, field.name, op)
        if op in MEMBERSHIP:
            size = draw(_ints(0, 4))
            values = tuple(self._value(draw, field, pools) for _ in range(size))
            return Compare(model, field.name, op, values)
        if op in TEXT_MATCHES or op in CASE_INSENSITIVE_MATCHES:
            pool = [v for v in pools.get(field, []) if v]
            if pool and draw(_BOOL):
                # A piece of a stored text, so the match finds something.
                text = _choice(draw, pool)
                start = draw(_ints(0, len(text)))
                end = draw(_ints(start, len(text)))
                piece = text[start:end]
                if op in CASE_INSENSITIVE_MATCHES:
                    piece = self._recased(draw, piece)
                return Compare(model, field.name, op, piece)
            return Compare(model, field.name, op, draw(self._short_texts))
        return Compare(model, field.name, op, self._value(draw, field, pools))

    def _recased(self, draw: Any, text: str) -> str:
        """``text`` with its letters' case changed (all upper, all lower, or swapped), within the domain's alphabet."""
        change = _choice(draw, (str.upper, str.lower, str.swapcase))
        excluded = self.domain.text_excludes
        recased = []
        for ch in text:
            new = change(ch)
            # One character for one, and none the domain keeps out (upper("ß") is "SS").
            recased.append(new if len(new) == 1 and new not in excluded and new != "\x00" else ch)
        return "".join(recased)

    def _field_pair(self, draw: Any, fields: Sequence[Field]) -> Cond | None:
        pairs = [
            (a, b)
            for a in fields
            for b in fields
            if a is not b and a.storage is b.storage and a.storage in self.domain.filterable
        ]
        if not pairs:
            return None
        left, right = _choice(draw, pairs)
        op = _choice(draw, COMPARISONS)
        return CompareFields((left.schema.cls, left.name), op, (right.schema.cls, right.name))

    def _condition(
        self, draw: Any, fields: Sequence[Field], pools: dict[Field, list[Any]], depth: int, writing: bool
    ) -> Cond:
        kinds = ["leaf", "leaf", "leaf"]
        if self.domain.field_comparisons:
            kinds.append("fields")
        if depth > 0:
            kinds += ["and", "or", "or"]
        kind = _choice(draw, kinds)
        if kind == "fields":
            pair = self._field_pair(draw, fields)
            if pair is not None:
                return pair
            kind = "leaf"
        if kind == "leaf":
            return self._leaf(draw, fields, pools, writing)
        items = tuple(self._condition(draw, fields, pools, depth - 1, writing) for _ in range(draw(_ints(1, 3))))
        if kind == "and":
            return AllOf(items, chained=draw(_BOOL))
        return AnyOf(items)

    def _where(
        self, draw: Any, target: type, pools: dict[Field, list[Any]], *, writing: bool = False
    ) -> tuple[Cond, ...]:
        fields: list[Field] = list(get_schema(target).fields)
        if self.domain.related_conditions and draw(_ints(0, 3)) == 0:
            other = Owner if target is Sample else Sample
            fields += list(get_schema(other).fields)
        count = draw(_ints(0, 2))
        return tuple(self._condition(draw, fields, pools, 2, writing) for _ in range(count))

    # -- operations ----------------------------------------------------------

    def _find(self, draw: Any, target: type, pools: dict[Field, list[Any]], rows: Sequence[RowSpec]) -> FindSpec:
        where = self._where(draw, target, pools)
        cursor = None
        if rows and draw(_ints(0, 4)) == 4:
            # A keyset page: its condition compares every sort key, so the keys must be filterable too.
            cursor = (_choice(draw, ("after", "before")), _choice(draw, rows))
            domain = self.domain
            usable = [f.name for f in get_schema(target).fields if f.storage in domain.sortable & domain.filterable]
        else:
            usable = [f.name for f in get_schema(target).fields if f.storage in self.domain.sortable]
        sort = tuple((_choice(draw, usable), draw(_BOOL)) for _ in range(draw(_ints(0, 3))))
        window = None
        if draw(_BOOL):
            # With a cursor mostly page 0: a later page is refused (pages and cursors do not mix).
            page = draw(_ints(0, 4)) if cursor is None or draw(_ints(0, 5)) == 0 else 0
            window = (draw(_ints(1, 8)), page)
        action = _choice(draw, ("all", "all", "count", "one"))
        batch = _choice(draw, (None, None, 1, 2, 3, 7)) if action == "all" else None
        return FindSpec(target, where, sort, window, action, batch, cursor)

    def _values(self, draw: Any, target: type, pools: dict[Field, list[Any]]) -> ValuesSpec:
        """A projection of 1 to 4 fields (a field may repeat), distinct or not, sorted and windowed or not.

        A distinct projection sorts by every projected field, so it projects
        sortable fields only; its sort names projected fields, and once in a
        while one that is not (both sides must then refuse it alike).
        """
        where = self._where(draw, target, pools)
        schema = get_schema(target)
        distinct = draw(_BOOL)
        candidates = [f.name for f in schema.fields if not distinct or f.storage in self.domain.sortable]
        fields = tuple(_choice(draw, candidates) for _ in range(draw(_ints(1, 4))))
        sortable = [f.name for f in schema.fields if f.storage in self.domain.sortable]
        if distinct and draw(_ints(0, 9)):
            sortable = [name for name in sortable if name in fields]
        sort = tuple((_choice(draw, sortable), draw(_BOOL)) for _ in range(draw(_ints(0, 2)))) if sortable else ()
        window = (draw(_ints(1, 8)), draw(_ints(0, 4))) if draw(_BOOL) else None
        batch = _choice(draw, (None, None, 1, 2, 3, 7))
        return ValuesSpec(target, fields, where, sort, window, distinct, batch)

    def _exists(self, draw: Any, target: type, pools: dict[Field, list[Any]]) -> ExistsSpec:
        window = (draw(_ints(1, 8)), draw(_ints(0, 4))) if draw(_ints(0, 3)) == 0 else None
        return ExistsSpec(target, self._where(draw, target, pools), window)

    def _aggregate(self, draw: Any, target: type, pools: dict[Field, list[Any]]) -> AggregateSpec:
        """Random aggregates (NULLs and empty groups come from the data and the where), group_by subsets, having."""
        where = self._where(draw, target, pools)
        fields = [f for f in get_schema(target).fields if self._stored(f)]
        ordered = [f for f in fields if f.storage in self.domain.sortable and f.storage in self.domain.filterable]
        numeric = [f for f in fields if f.storage in (StorageType.INTEGER, StorageType.FLOAT, StorageType.DECIMAL)]
        extremes = [f for f in ordered if f.storage not in UNORDERED]
        group_by: list[Field] = []
        for _ in range(draw(_ints(0, 2)) if ordered else 0):
            grouped = _choice(draw, ordered)
            if all(grouped is not g for g in group_by):
                group_by.append(grouped)
        aggregates: list[tuple[str, str, str | None]] = []
        comparable: list[tuple[str, str, Field | None]] = []
        for index in range(draw(_ints(1, 4))):
            kinds = ["count", "count"] + (["sum", "avg"] if numeric else []) + (["min", "max"] if extremes else [])
            kind = _choice(draw, kinds)
            field: Field | None
            if kind == "count":
                field = _choice(draw, fields) if draw(_BOOL) else None
            elif kind in ("sum", "avg"):
                field = _choice(draw, numeric)
            else:
                field = _choice(draw, extremes)
            name = f"a{index}"
            aggregates.append((name, kind, None if field is None else field.name))
            # A float sum or mean differs between backends in the last bits: no having on it.
            if not (kind in ("sum", "avg") and field is not None and field.storage is StorageType.FLOAT):
                comparable.append((name, kind, field))
        having: list[tuple[HavingCompare, ...]] = []
        if group_by and comparable and draw(_BOOL):
            for _ in range(draw(_ints(1, 2))):
                having.append(tuple(self._having(draw, comparable, pools) for _ in range(draw(_ints(1, 2)))))
        return AggregateSpec(target, where, tuple(f.name for f in group_by), tuple(aggregates), tuple(having))

    def _having(
        self, draw: Any, comparable: list[tuple[str, str, Field | None]], pools: dict[Field, list[Any]]
    ) -> HavingCompare:
        name, kind, field = _choice(draw, comparable)
        op = _choice(draw, (*COMPARISONS, *NULL_TESTS))
        if op in NULL_TESTS:
            return HavingCompare(name, op)
        if kind == "count" or field is None:
            return HavingCompare(name, op, draw(_ints(0, 3)))
        if kind == "avg" and field.storage is StorageType.INTEGER:
            return HavingCompare(name, op, float(draw(_ints(-3, 3))))
        if kind in ("sum", "avg") and field.storage is StorageType.INTEGER:
            return HavingCompare(name, op, draw(_ints(-3, 3)))
        return HavingCompare(name, op, self._value(draw, field, pools))

    def _update(self, draw: Any, target: type, pools: dict[Field, list[Any]], owners: list[int]) -> UpdateSpec:
        where = self._where(draw, target, pools, writing=True)
        choices = [
            f
            for f in get_schema(target).fields
            if not f.key and (f.reference is not None or f.storage in self.domain.settable)
        ]
        if target is Sample and draw(_ints(0, 9)) == 0:
            # Rarely the key itself: two matches then collide, and nothing may change.
            choices.append(field_of(Sample, "id"))
        chosen = list(dict.fromkeys(_choice(draw, choices) for _ in range(draw(_ints(1, 3)))))
        values = []
        for field in chosen:
            if field.reference is not None:
                value = _choice(draw, [None, *owners])
            elif field.key:
                value = self._value(draw, field, pools)
            elif self._computable(field) and draw(_BOOL):
                value = self._expression(draw, field, target)
            else:
                value = None if draw(_ints(0, 4)) == 0 else self._value(draw, field, pools)
            values.append((field.name, value))
        return UpdateSpec(target, where, tuple(values))

    def _computable(self, field: Field) -> bool:
        """Whether ``update()`` may give ``field`` an update expression in this domain."""
        return (
            field.storage in self.domain.expression_storage
            and field.storage in self.domain.settable
            and field.reference is None
            and is_numeric(field)
        )

    def _literal(self, draw: Any, field: Field) -> Any:
        """A number for an expression computing ``field``: mostly its own type, some ints, rarely a wrong type."""
        kind = draw(_ints(0, 9))
        if kind == 0:
            return _choice(draw, (True, "1", 1.5, decimal.Decimal("0.5")))  # refused (when not the field's type)
        if kind <= 3:
            return draw(_ints(-3, 3))
        if field.storage is StorageType.INTEGER:
            return draw(st.one_of(_ints(-1000, 1000), _ints(INT64_MIN, INT64_MAX)))
        return draw(self._fresh[field])

    def _expression(self, draw: Any, field: Field, model: type) -> Ref | Arith:
        """A copy of ``field`` or an update expression over it: one step, swapped operands, or nested."""
        ref = Ref(model, field.name)
        ops = ("+", "-", "*", "/") if field.storage is StorageType.FLOAT else ("+", "-", "*")
        kind = _choice(draw, ("step", "step", "swapped", "nested", "itself", "copy"))
        if kind == "copy":
            return ref
        if kind == "itself":
            return Arith(_choice(draw, ("+", "-", "*")), ref, ref)
        if kind == "swapped":
            return Arith(_choice(draw, ("+", "-", "*")), self._literal(draw, field), ref)
        inner = Arith(_choice(draw, ops), ref, self._literal(draw, field))
        if kind == "step":
            return inner
        if draw(_BOOL):
            return Arith(_choice(draw, ops), inner, self._literal(draw, field))
        return Arith(_choice(draw, ("+", "-", "*")), self._literal(draw, field), inner)

    def _add(self, draw: Any, samples: list[int], owners: list[int]) -> AddSpec:
        keys = [
            _choice(draw, samples) if samples and draw(_BOOL) else draw(self._keys_strategy)
            for _ in range(draw(_ints(1, 3)))
        ]
        rows = []
        for key in keys:
            row = self._row(draw, Sample, key, owners)
            if self.domain.foreign_keys and draw(_ints(0, 9)) == 0:
                # A reference to an owner that does not exist: the whole add fails.
                missing = draw(self._keys_strategy.filter(lambda k: k not in owners))
                row = RowSpec(Sample, tuple((n, missing if n == "owner_id" else v) for n, v in row.values))
            rows.append(row)
        return AddSpec(tuple(rows))

    def _upsert(self, draw: Any, samples: list[int], owners: list[int]) -> UpsertSpec:
        """Rows of one model, stored keys and new ones mixed; a key twice in a call now and then (refused).

        Fields get values only of the storage types ``update()`` may set
        (``domain.settable``), the others ``None``: an upsert writes a matched
        row as an update does (MongoDB: ``$set``).
        """
        target = Sample if draw(_ints(0, 3)) else Owner
        stored = samples if target is Sample else owners
        keys = [
            _choice(draw, stored) if stored and draw(_BOOL) else draw(self._keys_strategy)
            for _ in range(draw(_ints(1, 4)))
        ]
        rows = []
        settable = self.domain.settable
        for key in keys:
            row = self._row(draw, target, key, owners)
            fields = get_schema(target).by_name
            row = RowSpec(
                target,
                tuple((n, v if fields[n].key or fields[n].storage in settable else None) for n, v in row.values),
            )
            if target is Sample and self.domain.foreign_keys and draw(_ints(0, 9)) == 0:
                # A reference to an owner that does not exist: the whole upsert fails.
                missing = draw(self._keys_strategy.filter(lambda k: k not in owners))
                row = RowSpec(Sample, tuple((n, missing if n == "owner_id" else v) for n, v in row.values))
            rows.append(row)
        return UpsertSpec(tuple(rows))

    def _operation(
        self,
        draw: Any,
        pools: dict[Field, list[Any]],
        samples: list[int],
        owners: list[int],
        rows: Mapping[type, Sequence[RowSpec]],
    ) -> Operation:
        kind = _choice(draw, _OPERATIONS)
        target = Sample if draw(_ints(0, 3)) else Owner
        if kind == "find":
            return self._find(draw, target, pools, rows[target])
        if kind == "values":
            return self._values(draw, target, pools)
        if kind == "exists":
            return self._exists(draw, target, pools)
        if kind == "aggregate":
            return self._aggregate(draw, target, pools)
        if kind == "update":
            return self._update(draw, target, pools, owners)
        if kind == "delete":
            if target is Owner and not self.domain.foreign_keys:
                target = Sample
            return DeleteSpec(target, self._where(draw, target, pools, writing=True))
        if self.domain.upsert and draw(_BOOL):
            return self._upsert(draw, samples, owners)
        return self._add(draw, samples, owners)

    def scenarios(self) -> st.SearchStrategy[Scenario]:
        """Datasets with operations on them."""

        @st.composite
        def scenario(draw: Any) -> Scenario:
            owner_keys = self._keys(draw, 1, 5)
            owners = [self._row(draw, Owner, key, []) for key in owner_keys]
            sample_keys = self._keys(draw, min(4, self.max_samples), self.max_samples)
            samples = [self._row(draw, Sample, key, owner_keys) for key in sample_keys]
            pools: dict[Field, list[Any]] = {}
            for row in (*owners, *samples):
                for name, value in row.values:
                    if value is not None:
                        pools.setdefault(field_of(row.model, name), []).append(value)
            fewest, most = self.operations
            count = draw(_ints(fewest, most))
            rows = {Owner: owners, Sample: samples}
            operations = tuple(self._operation(draw, pools, sample_keys, owner_keys, rows) for _ in range(count))
            return Scenario(tuple(owners), tuple(samples), operations)

        return scenario()

    def conditions(self, target: type = Sample) -> st.SearchStrategy[tuple[Cond, ...]]:
        """Condition lists on ``target`` alone (and its related model), with fresh values."""

        @st.composite
        def conditions(draw: Any) -> tuple[Cond, ...]:
            return self._where(draw, target, {})

        return conditions()

    def revalued(self, conditions: tuple[Cond, ...]) -> st.SearchStrategy[tuple[Cond, ...]]:
        """The same conditions with every value replaced by another of its field's type.

        The shape stays: the operators, the fields, and the number of distinct
        values of each ``in_`` / ``not_in`` (duplicates collapse when encoded).
        """

        @st.composite
        def revalued(draw: Any) -> tuple[Cond, ...]:
            return tuple(self._revalue(draw, condition) for condition in conditions)

        return revalued()

    def _revalue(self, draw: Any, condition: Cond) -> Cond:
        if isinstance(condition, AllOf):
            return AllOf(tuple(self._revalue(draw, c) for c in condition.items), condition.chained)
        if isinstance(condition, AnyOf):
            return AnyOf(tuple(self._revalue(draw, c) for c in condition.items))
        if isinstance(condition, CompareFields) or condition.op in NULL_TESTS:
            return condition
        field = field_of(condition.model, condition.field)
        if condition.op in TEXT_MATCHES or condition.op in CASE_INSENSITIVE_MATCHES:
            return Compare(
                condition.model, condition.field, condition.op, draw(texts(exclude=self.domain.text_excludes))
            )
        if condition.op in MEMBERSHIP:
            distinct = len(dict.fromkeys(field.encode(v) for v in condition.value))
            values = draw(st.lists(self._fresh[field], min_size=distinct, max_size=distinct, unique_by=field.encode))
            return Compare(condition.model, condition.field, condition.op, tuple(values))
        return Compare(condition.model, condition.field, condition.op, draw(self._fresh[field]))
