"""MongoDB's side of update expressions: ``$inc``/``$mul`` or a pipeline, the exact range checks, nx-27017's gap."""

# mypy: disable-error-code="operator, dict-item"

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from ommi import ModelCollection, Ommi, Unique, UnsupportedFeature, ValidationError, ommi_model
from ommi.expressions import ArithOp
from ommi.models.types import INT64_MAX, INT64_MIN, StorageType
from ommi.query.arithmetic import check_update_value, compute
from ommi_mongodb._expressions import _allowed_range, _underflow_edge, plan_update

models = ModelCollection("mongodb_update_expressions")

OpenDb = Callable[..., Awaitable[Ommi]]


@ommi_model(collection=models)
@dataclass
class Ticket:
    number: Annotated[int, Unique]
    uses: int = 0
    id: int | None = None


@ommi_model(collection=models)
@dataclass
class Counter:
    hits: int
    ratio: float = 1.0
    spare: int | None = None
    id: int | None = None


def _checked(values: dict[Any, Any]) -> dict[Any, Any]:
    return {target: check_update_value(target, value) for target, value in values.items()}


def test_field_and_value_go_through_inc_and_mul() -> None:
    """``f + c``, ``c + f``, ``f - c`` are ``$inc``; ``f * c`` is ``$mul``; plain values stay in ``$set``."""
    assert plan_update(_checked({Counter.hits: Counter.hits + 5}), True, "s").update == {"$inc": {"hits": 5}}
    assert plan_update(_checked({Counter.hits: 5 + Counter.hits}), True, "s").update == {"$inc": {"hits": 5}}
    assert plan_update(_checked({Counter.hits: Counter.hits - 5}), True, "s").update == {"$inc": {"hits": -5}}
    planned = plan_update(_checked({Counter.ratio: 3 * Counter.ratio, Counter.spare: 7}), False, "s")
    assert planned.update == {"$set": {"spare": 7}, "$mul": {"ratio": 3.0}}


def test_everything_else_is_a_pipeline_or_refused_without_one() -> None:
    """An optional target, ``c - f``, a copy, nesting, division: one ``$set`` stage; refused where pipelines lack."""
    values = _checked(
        {
            Counter.spare: Counter.spare + 1,
            Counter.hits: 10 - Counter.hits,
            Counter.ratio: (Counter.ratio + 1) / 4,
        }
    )
    planned = plan_update(values, True, "s")
    assert planned.update == [
        {
            "$set": {
                "spare": {"$add": ["$spare", {"$literal": 1}]},
                "hits": {"$subtract": [{"$literal": 10}, "$hits"]},
                "ratio": {"$divide": [{"$add": ["$ratio", {"$literal": 1.0}]}, {"$literal": 4.0}]},
            }
        }
    ]
    with pytest.raises(UnsupportedFeature, match=r"needs an update pipeline.*which the test server lacks"):
        plan_update(values, False, "the test server")
    copy = plan_update(_checked({Counter.spare: Counter.hits}), True, "s")
    assert copy.update == [{"$set": {"spare": "$hits"}}]


@pytest.mark.parametrize(
    ("op", "c"),
    [
        (ArithOp.ADD, 1),
        (ArithOp.ADD, -1),
        (ArithOp.ADD, INT64_MAX),
        (ArithOp.ADD, INT64_MIN),
        (ArithOp.MUL, 2),
        (ArithOp.MUL, -2),
        (ArithOp.MUL, -1),
        (ArithOp.MUL, 3),
        (ArithOp.MUL, 7919),
    ],
)
def test_int_ranges_are_exact(op: ArithOp, c: int) -> None:
    """The range check lets through exactly the values whose result fits 64 bits (checked against compute())."""
    allowed = _allowed_range(StorageType.INTEGER, op, c)
    assert allowed is not None
    low, high = allowed
    expression = check_update_value(Counter.hits, Counter.hits + c if op is ArithOp.ADD else Counter.hits * c)
    for x in (low, high):
        compute(Counter.hits, expression, lambda _f, x=x: x)  # fits
    for x in (low - 1, high + 1):
        if INT64_MIN <= x <= INT64_MAX:
            with pytest.raises(ValidationError):
                compute(Counter.hits, expression, lambda _f, x=x: x)


@pytest.mark.parametrize(
    ("op", "c"), [(ArithOp.ADD, 1e308), (ArithOp.ADD, -1e300), (ArithOp.MUL, 10.0), (ArithOp.MUL, -0.5)]
)
def test_float_ranges_are_exact(op: ArithOp, c: float) -> None:
    """The largest finite x whose result is finite is allowed; the next double is not (unless it is the last)."""
    allowed = _allowed_range(StorageType.FLOAT, op, c)
    assert allowed is not None

    def result(x: float) -> float:
        return x + c if op is ArithOp.ADD else x * c

    for edge, away in ((allowed[0], -math.inf), (allowed[1], math.inf)):
        assert math.isfinite(result(edge))
        beyond = math.nextafter(edge, away)
        if math.isfinite(beyond):
            assert not math.isfinite(result(beyond))


async def test_nx_27017_refuses_a_pipeline_update_and_changes_nothing(open_db: OpenDb, mongodb_server: Any) -> None:
    """Where the server has no pipelines, an expression needing one is UnsupportedFeature, before any write."""
    db = await open_db(models)
    await db.add(Counter(1, id=1)).or_raise()
    if not mongodb_server.is_nx_27017:
        await db.find(Counter).update(hits=10 - Counter.hits).or_raise()
        assert (await db.find(Counter).one.or_raise()).hits == 9
        return
    with pytest.raises(UnsupportedFeature, match="lacks"):
        await db.find(Counter).update(hits=Counter.hits + 1, spare=Counter.hits).or_raise()
    assert (await db.find(Counter).one.or_raise()) == Counter(1, id=1)
    await db.find(Counter).update(hits=Counter.hits + 1).or_raise()
    assert (await db.find(Counter).one.or_raise()).hits == 2


async def test_overflow_check_refuses_before_writing(open_db: OpenDb) -> None:
    """One document at the edge: the whole ``$inc`` is refused, the other documents keep their values."""
    db = await open_db(models)
    await db.add(Counter(1, id=1), Counter(INT64_MAX, id=2), Counter(5, id=3)).or_raise()
    with pytest.raises(ValidationError, match="outside its field's range"):
        await db.find(Counter).update(hits=Counter.hits + 1).or_raise()
    assert [c.hits for c in await db.find(Counter).sort(Counter.id).all.to_list()] == [1, INT64_MAX, 5]


async def test_key_change_with_an_expression_and_unique_targets_are_refused(open_db: OpenDb) -> None:
    """A key change beside an expression, and (outside a transaction) a unique field set beside one: refused."""
    db = await open_db(models)
    await db.add(Counter(1, id=1), Ticket(1, id=1), Ticket(2, id=2)).or_raise()
    with pytest.raises(UnsupportedFeature, match="Run two updates"):
        await db.find(Counter).update(id=5, hits=Counter.hits + 1).or_raise()
    with pytest.raises(UnsupportedFeature, match="unique"):
        await db.find(Ticket.id == 1).update(number=3, uses=Ticket.uses + 1).or_raise()
    assert (await db.find(Counter).one.or_raise()) == Counter(1, id=1)
    assert [(t.number, t.uses) for t in await db.find(Ticket).sort(Ticket.id).all.to_list()] == [(1, 0), (2, 0)]


@pytest.mark.parametrize("c", [0.5, -1e-300, 3.0, 1e-10])
def test_float_underflow_edge_is_exact(c: float) -> None:
    """``x * c`` is 0 for every double up to the edge and not for the next one."""
    edge = _underflow_edge(c)
    assert edge * c == 0
    assert math.nextafter(edge, math.inf) * c != 0


async def test_float_underflow_is_refused(open_db: OpenDb) -> None:
    """``ratio * c`` underflowing to zero for one document refuses the whole ``$mul``; nothing changes."""
    db = await open_db(models)
    await db.add(Counter(0, ratio=1e-200, id=1), Counter(0, ratio=2.0, id=2)).or_raise()
    with pytest.raises(ValidationError, match="outside its field's range"):
        await db.find(Counter).update(ratio=Counter.ratio * 1e-200).or_raise()
    assert [c.ratio for c in await db.find(Counter).sort(Counter.id).all.to_list()] == [1e-200, 2.0]
