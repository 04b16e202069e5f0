"""Generated JSON documents and path conditions, on a driver and on the reference driver, compared.

Each example stores a few :class:`~ommi_testkit.suites.models_json.JsonDoc`
rows whose ``meta`` objects and ``tags`` arrays are drawn from small pools of
keys and values (so that paths meet ints, floats, text, booleans, nulls,
arrays and objects, and missing keys), then runs generated conditions:
``JsonDoc.meta[k1][k2] <op> value``, ``== None`` / ``!= None``, ``has(x)`` on
``tags`` or on a path, with ``&`` and ``|``, through ``.all``, ``.count`` and
now and then an ``update`` of the matched rows. Every answer and the stored
rows afterwards must be the reference driver's, typed (``1`` and ``1.0`` and
``True`` are told apart).

Floats are drawn within +/-2**53: beyond it PostgreSQL compares an int with a
float by the float's shortest decimal form rather than its exact binary value
(``jsonb`` keeps numbers as ``numeric``), a difference this test leaves out on
purpose (the queries guide says so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ommi
from hypothesis import strategies as st
from ommi import Ommi
from ommi.drivers import Driver
from ommi.errors import OmmiError
from ommi.expressions import Expr
from ommi.models.types import INT64_MAX, INT64_MIN

from ommi_testkit.reference import ReferenceDriver
from ommi_testkit.reliability.differential import Divergence, UnexpectedError
from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.paired import run_paired
from ommi_testkit.suites.models_json import JsonDoc, json_models

__all__ = ["JsonCase", "json_cases", "run_json_differential"]

_KEYS = ("a", "b", "n", "0", "", "x[0]")
_SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, -1, 3, INT64_MAX, INT64_MIN]),
    st.sampled_from([0.0, 1.0, 1.5, -2.5, 2.0, 0.1]),
    st.floats(min_value=-(2.0**53), max_value=2.0**53, allow_nan=False),
    st.sampled_from(["", "a", "b", "1", "A", "\u00e9", "a b", "\U0001f600"]),
)
_JSON: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
_OPS = ("==", "!=", "<", "<=", ">", ">=", "is null", "is not null")
_PATH = st.lists(st.one_of(st.sampled_from(_KEYS), st.integers(0, 2)), min_size=1, max_size=3).map(tuple)


@dataclass(frozen=True, slots=True)
class PathCond:
    """``JsonDoc.<field>[path] <op> value`` or, with ``op`` ``"has"``, ``JsonDoc.<field>[path].has(value)``."""

    field: str
    path: tuple[str | int, ...]
    op: str
    value: Any = None

    def build(self) -> Expr:
        operand: Any = ommi.field(getattr(JsonDoc, self.field))
        for step in self.path:
            operand = operand[step]
        if self.op == "has":
            return operand.has(self.value)  # type: ignore[no-any-return]
        if self.op == "is null":
            return operand == None  # type: ignore[no-any-return]  # noqa: E711
        if self.op == "is not null":
            return operand != None  # type: ignore[no-any-return]  # noqa: E711
        return {  # type: ignore[no-any-return]
            "==": lambda: operand == self.value,
            "!=": lambda: operand != self.value,
            "<": lambda: operand < self.value,
            "<=": lambda: operand <= self.value,
            ">": lambda: operand > self.value,
            ">=": lambda: operand >= self.value,
        }[self.op]()


@dataclass(frozen=True, slots=True)
class Either:
    """``left | right``."""

    left: PathCond
    right: PathCond

    def build(self) -> Expr:
        return self.left.build() | self.right.build()


@dataclass(frozen=True, slots=True)
class JsonCase:
    """One example: the rows (``meta``, ``tags``) and the queries run on them (``(conditions, update or None)``)."""

    rows: tuple[tuple[dict[str, Any], list[Any]], ...]
    queries: tuple[tuple[tuple[PathCond | Either, ...], dict[str, Any] | None], ...]


def _operand(op: str) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.booleans(),
        st.sampled_from([0, 1, 2, -1, 3, INT64_MAX, INT64_MIN, 1.0, 1.5, 0.1]),
        st.floats(min_value=-(2.0**53), max_value=2.0**53, allow_nan=False),
        st.sampled_from(["", "a", "b", "1", "A", "\u00e9", "\U0001f600"]),
    )
    if op in ("<", "<=", ">", ">="):
        return scalars.filter(lambda v: not isinstance(v, bool))
    return scalars


@st.composite
def _condition(draw: Any) -> PathCond:
    if draw(st.integers(0, 4)) == 0:
        path: tuple[str | int, ...] = () if draw(st.booleans()) else draw(_PATH)
        return PathCond("tags" if not path else "meta", path, "has", draw(_operand("has")))
    op = draw(st.sampled_from(_OPS))
    value = None if op in ("is null", "is not null") else draw(_operand(op))
    return PathCond(
        draw(st.sampled_from(["meta", "tags"])) if draw(st.integers(0, 5)) == 0 else "meta", draw(_PATH), op, value
    )


@st.composite
def json_cases(draw: Any) -> JsonCase:
    """1 to 8 rows and 1 to 6 queries of 1 or 2 conditions (an ``|`` now and then), some with an update."""
    rows = draw(
        st.lists(
            st.tuples(st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=4), st.lists(_SCALARS, max_size=4)),
            min_size=1,
            max_size=8,
        )
    )
    queries = []
    for _ in range(draw(st.integers(1, 6))):
        conditions: list[PathCond | Either] = []
        for _ in range(draw(st.integers(1, 2))):
            first = draw(_condition())
            conditions.append(Either(first, draw(_condition())) if draw(st.integers(0, 3)) == 0 else first)
        update = None
        if draw(st.integers(0, 4)) == 0:
            update = {"meta": draw(st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=3))}
        queries.append((tuple(conditions), update))
    return JsonCase(tuple((meta, tags) for meta, tags in rows), tuple(queries))


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted((key, _typed(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


async def _snapshot(db: Ommi) -> list[Any]:
    return sorted((d.name, repr(_typed(d.meta)), repr(_typed(d.tags))) for d in await db.find(JsonDoc).all.to_list())


async def _answer(db: Ommi, conditions: tuple[PathCond | Either, ...], update: dict[str, Any] | None) -> Any:
    try:
        query = db.find(JsonDoc, *(c.build() for c in conditions))
        names = sorted(d.name for d in await query.all.to_list())
        count = await query.count.or_raise()
        changed = None if update is None else await query.update(**update).or_raise()
    except OmmiError as exc:
        return ("error", type(exc).__name__)
    except Exception as exc:
        raise UnexpectedError(f"{db.driver.name}: {conditions!r} raised {type(exc).__name__}: {exc}") from exc
    return (names, count, changed)


def run_json_differential(
    driver_factory: Callable[[], Driver],
    *,
    backend: str,
    examples: int,
    profile: str = "",
    reference_factory: Callable[[], Driver] = ReferenceDriver.connect,
) -> Figures:
    """Run ``examples`` generated JSON datasets and path queries on a driver and on the reference driver.

    Raises:
        Divergence: a query matched other rows, counted otherwise, or left other rows (Hypothesis's minimal example).
        UnexpectedError: a query raised outside :mod:`ommi.errors`.
    """
    figures = Figures("json differential", backend, profile)

    async def check(target: Ommi, reference: Ommi, case: JsonCase) -> None:
        for db in (target, reference):
            await db.find(JsonDoc).delete.or_raise()
            docs = [JsonDoc(f"d{i}", meta=meta, tags=tags) for i, (meta, tags) in enumerate(case.rows)]
            await db.add(*docs).or_raise()
        for number, (conditions, update) in enumerate(case.queries):
            expected = await _answer(reference, conditions, update)
            actual = await _answer(target, conditions, update)
            figures.cases += 1
            if actual != expected:
                raise Divergence(
                    f"{backend} differs from the reference driver at query {number}: {conditions!r} "
                    f"(update {update!r})\n  reference: {expected!r}\n  {backend}: {actual!r}"
                )
        mine, theirs = await _snapshot(target), await _snapshot(reference)
        if mine != theirs:
            raise Divergence(
                f"{backend} holds other rows than the reference driver\n  reference: {theirs!r}\n  {backend}: {mine!r}"
            )
        figures.rows_verified += len(mine)
        figures.examples += 1

    return run_paired(
        driver_factory, reference_factory, json_models, json_cases(), check, examples=examples, figures=figures
    )
