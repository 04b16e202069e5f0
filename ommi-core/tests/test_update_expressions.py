"""Update expressions in core: how ``Model.field + 1`` builds, what ``update()`` checks before any I/O.

The drivers' behaviour is the conformance suite's (``UpdateExpressionTests``);
these tests need no database except where one says so.
"""

# mypy: disable-error-code="operator, arg-type"

from __future__ import annotations

import decimal
import enum
from dataclasses import dataclass

import ommi
import pytest
from ommi import QueryError, ValidationError
from ommi.expressions import Arithmetic, ArithOp
from ommi.query.arithmetic import MAX_DEPTH, MAX_OPERATIONS, check_update_value, compute

collection = ommi.ModelCollection("core_update_expressions")


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@ommi.ommi_model(collection=collection)
@dataclass
class Wallet:
    coins: int
    ratio: float = 1.0
    amount: decimal.Decimal = decimal.Decimal(0)
    level: Level = Level.LOW
    spare: int | None = None
    id: int = ommi.generated_key()


def test_operators_build_nodes_in_python_order() -> None:
    """``+ - * /`` on fields and nodes build ``Arithmetic`` nodes; reflected operators keep the operand order."""
    node = (Wallet.coins + 1) * 2
    assert isinstance(node, Arithmetic) and node.op is ArithOp.MUL
    assert repr(node) == "((Wallet.coins + 1) * 2)"
    assert repr(10 - Wallet.coins) == "(10 - Wallet.coins)"
    assert repr(Wallet.ratio / 4.0) == "(Wallet.ratio / 4.0)"
    assert list(node.fields()) == [Wallet.coins] and list(node.literals()) == [1, 2]


def test_literals_must_be_numbers_when_built() -> None:
    """``bool``, text and ``None`` are not numbers: refused as the expression is built."""
    for value in (True, "1", None, b"1"):
        with pytest.raises(ValidationError, match="is not a number"):
            Wallet.coins + value


def test_an_expression_is_not_a_condition() -> None:
    """Comparing or testing the truth of an expression is a QueryError, not a silent bool."""
    node = Wallet.coins + 1
    for compare in (lambda: node == 1, lambda: node < 1, lambda: node >= 1, lambda: bool(node)):
        with pytest.raises(QueryError, match="not a condition"):
            compare()


def test_literals_take_the_target_type() -> None:
    """An int literal becomes a float or a Decimal in such an expression; the wrong float/Decimal is refused."""
    checked = check_update_value(Wallet.ratio, Wallet.ratio * 3)
    assert checked.right == 3.0 and type(checked.right) is float
    checked = check_update_value(Wallet.amount, Wallet.amount + 2)
    assert checked.right == decimal.Decimal(2) and type(checked.right) is decimal.Decimal
    with pytest.raises(ValidationError, match="int values only"):
        check_update_value(Wallet.coins, Wallet.coins + 1.0)
    with pytest.raises(ValidationError):
        check_update_value(Wallet.amount, Wallet.amount + 0.1)


def test_enum_and_nullable_rules() -> None:
    """An IntEnum field is not a number here; a nullable operand needs a nullable target."""
    with pytest.raises(ValidationError, match="arithmetic needs an int, float or Decimal field"):
        check_update_value(Wallet.level, Wallet.level + 1)
    with pytest.raises(ValidationError, match="optional"):
        check_update_value(Wallet.coins, Wallet.spare + 1)
    assert isinstance(check_update_value(Wallet.spare, Wallet.coins + 1), Arithmetic)


def test_size_limits_refuse_before_recursing() -> None:
    """An expression deeper than MAX_DEPTH or larger than MAX_OPERATIONS is a QueryError, also 100,000 deep."""
    node = Wallet.coins + 1
    for _ in range(MAX_DEPTH - 1):
        node = node + 1
    assert isinstance(check_update_value(Wallet.coins, node), Arithmetic)
    with pytest.raises(QueryError, match="too large"):
        check_update_value(Wallet.coins, node + 1)
    deep = Wallet.coins + 1
    for _ in range(100_000):
        deep = deep + 1
    with pytest.raises(QueryError, match="too large"):
        check_update_value(Wallet.coins, deep)
    wide = Wallet.coins + 1
    for _ in range(8):
        wide = wide + wide  # 2**9 - 1 operations, 9 deep
    with pytest.raises(QueryError, match=str(MAX_OPERATIONS)):
        check_update_value(Wallet.coins, wide)


def test_compute_is_exact_and_checks_each_step() -> None:
    """The reference meaning: exact ints checked per step, floats finite and not underflowing, exact Decimals."""
    rows = {Wallet.coins: 2**62, Wallet.ratio: 1e-200, Wallet.amount: decimal.Decimal("0.1")}
    value = rows.__getitem__
    with pytest.raises(ValidationError, match="64-bit"):
        compute(Wallet.coins, check_update_value(Wallet.coins, Wallet.coins * 2 - Wallet.coins), value)
    with pytest.raises(ValidationError, match="underflows"):
        compute(Wallet.ratio, check_update_value(Wallet.ratio, Wallet.ratio * 1e-200), value)
    exact = compute(Wallet.amount, check_update_value(Wallet.amount, Wallet.amount * 3 + 1), value)
    assert exact == decimal.Decimal("1.3")
    assert compute(Wallet.spare, check_update_value(Wallet.spare, Wallet.spare + 1), {Wallet.spare: None}.get) is None


async def test_an_expression_is_no_value_for_add() -> None:
    """An expression given to a model instance is refused by add() like any wrong value (sqlite://, in memory)."""
    async with ommi.connect("sqlite://") as db:
        await db.use_models(collection)
        with pytest.raises(ValidationError):
            await db.add(Wallet(Wallet.coins + 1)).or_raise()
        assert await db.find(Wallet).count.or_raise() == 0
