"""SQLite's side of update expressions: the range check inside the statement, and no Decimal arithmetic."""

# mypy: disable-error-code="operator"

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from ommi import ModelCollection, Ommi, UnsupportedFeature, ValidationError, ommi_model
from ommi.models.types import INT64_MAX
from ommi.query.find import plan_query
from ommi_sqlite import SQLiteDriver

models = ModelCollection("sqlite_update_expressions")


@ommi_model(collection=models)
@dataclass
class Wallet:
    coins: int
    ratio: float
    amount: decimal.Decimal
    spare: decimal.Decimal | None = None
    bonus: int | None = None
    id: int | None = None


async def _rows(db: Ommi) -> list[tuple[int, float, decimal.Decimal, decimal.Decimal | None, int | None]]:
    rows = await db.find(Wallet).sort(Wallet.id).all.to_list()
    return [(w.coins, w.ratio, w.amount, w.spare, w.bonus) for w in rows]


async def test_decimal_arithmetic_is_refused_and_a_decimal_copy_works(connect_file: Callable[..., Ommi]) -> None:
    """Decimal arithmetic: UnsupportedFeature naming why, nothing written; a Decimal copy keeps the text exactly."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(Wallet(1, 1.0, decimal.Decimal("1.10"), id=1)).or_raise()
        with pytest.raises(UnsupportedFeature, match="cannot compute with Decimal fields exactly"):
            await db.find(Wallet).update(amount=Wallet.amount + decimal.Decimal("0.1")).or_raise()
        assert (await _rows(db))[0][2] == decimal.Decimal("1.10")
        await db.find(Wallet).update(spare=Wallet.amount).or_raise()
        assert str((await _rows(db))[0][3]) == "1.10"


def test_overflow_check_sits_in_the_statement_with_parameters() -> None:
    """The statement reads the columns and binds the literals; the check repeats them, never splicing a value."""
    core = SQLiteDriver.connect(":memory:")
    compiled = core._core.compiler.update(plan_query((Wallet,)), {Wallet.coins: Wallet.coins + 7})
    assert "typeof(" in compiled.sql and "abs(-9223372036854775807 - 1" in compiled.sql
    assert "7" not in compiled.sql.replace("9223372036854775807", "")
    assert compiled.params == [7, 7]


async def test_overflow_inside_a_transaction_leaves_it_usable(connect_file: Callable[..., Ommi]) -> None:
    """A refused expression inside a transaction undoes only itself; the transaction goes on and commits."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(
            Wallet(INT64_MAX, 1e308, decimal.Decimal(0), id=1), Wallet(1, 2.0, decimal.Decimal(0), id=2)
        ).or_raise()
        async with db.transaction() as tx:
            await tx.find(Wallet.id == 2).update(bonus=5).or_raise()
            with pytest.raises(ValidationError, match="outside the field's range"):
                await tx.find(Wallet).update(coins=Wallet.coins + 1).or_raise()
            with pytest.raises(ValidationError, match="outside the field's range"):
                await tx.find(Wallet).update(ratio=Wallet.ratio * 2).or_raise()
            await tx.find(Wallet.id == 2).update(coins=Wallet.coins + 1).or_raise()
        assert [(c, b) for c, _, _, _, b in await _rows(db)] == [(INT64_MAX, None), (2, 5)]


async def test_nan_from_infinite_steps_is_refused(connect_file: Callable[..., Ommi]) -> None:
    """``ratio * 1e308 - ratio * 1e308`` is inf - inf, a NaN SQLite turns into NULL: refused, not stored as NULL."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(Wallet(0, 10.0, decimal.Decimal(0), id=1)).or_raise()
        with pytest.raises(ValidationError):
            await db.find(Wallet).update(ratio=Wallet.ratio * 1e308 - Wallet.ratio * 1e308).or_raise()
        assert (await _rows(db))[0][1] == 10.0


async def test_float_underflow_to_zero_is_refused(connect_file: Callable[..., Ommi]) -> None:
    """A product of nonzero floats too small for a double (PostgreSQL refuses it) fails here too; a zero sum is fine."""
    async with connect_file() as db:
        await db.use_models(models)
        await db.add(Wallet(0, 1e-200, decimal.Decimal(0), id=1)).or_raise()
        with pytest.raises(ValidationError):
            await db.find(Wallet).update(ratio=Wallet.ratio * 1e-200).or_raise()
        with pytest.raises(ValidationError):
            await db.find(Wallet).update(ratio=(Wallet.ratio / 1e200) + 1.0).or_raise()
        assert (await _rows(db))[0][1] == 1e-200
        await db.find(Wallet).update(ratio=Wallet.ratio - 1e-200).or_raise()
        assert (await _rows(db))[0][1] == 0.0
        await db.find(Wallet).update(ratio=Wallet.ratio * 5).or_raise()  # zero times nonzero is zero, no underflow
        assert (await _rows(db))[0][1] == 0.0
