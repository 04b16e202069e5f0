"""Generated upsert sequences on unique constraints (``on=``), on a driver and on the reference driver, compared.

The main differential (:mod:`ommi_testkit.reliability.differential`) upserts
by key; this one upserts :class:`~ommi_testkit.suites.models_upsert.UpsAccount`
rows, which have a generated key, a unique ``email``, an optional unique
``handle`` and a unique ``(team, number)``, matching on any of them or on the
key, from small pools of values so that rows collide. Every call's outcome
(success, or the error's class), the keys set on its instances and the stored
rows must be the reference driver's.

Generated key values differ between databases (a sequence consumed by a row
that matched), so explicit keys are drawn from negative numbers, which no
generator hands out, and a generated key compares as ``"generated"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from ommi import Ommi
from ommi.drivers import Driver
from ommi.errors import OmmiError

from ommi_testkit.reference import ReferenceDriver
from ommi_testkit.reliability.differential import Divergence, UnexpectedError
from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.paired import run_paired
from ommi_testkit.suites.models_upsert import UpsAccount, ups_models

__all__ = ["run_upsert_differential", "upsert_calls"]

Call = tuple[str, tuple[tuple[str, str, int, str | None, str | None, int | None], ...]]
"""``(on, rows)``: ``on`` is ``key``, ``email``, ``handle`` or ``team_number``; a row is the fields of an account."""

_ON = {
    "key": None,
    "email": (UpsAccount.email,),
    "handle": (UpsAccount.handle,),
    "team_number": (UpsAccount.number, UpsAccount.team),
}


def _row() -> st.SearchStrategy[tuple[str, str, int, str | None, str | None, int | None]]:
    return st.tuples(
        st.sampled_from(["a@x", "b@x", "c@x", "d@x"]),
        st.sampled_from(["red", "blue"]),
        st.integers(1, 3),
        st.one_of(st.none(), st.sampled_from(["n1", "n2"])),
        st.one_of(st.none(), st.sampled_from(["h1", "h2"])),
        st.one_of(st.none(), st.integers(-6, -1)),
    )


def upsert_calls() -> st.SearchStrategy[list[Call]]:
    """Sequences of 1 to 12 upsert calls of 1 to 4 rows, matching on the key or on a unique constraint."""
    call = st.tuples(st.sampled_from(sorted(_ON)), st.lists(_row(), min_size=1, max_size=4).map(tuple))
    return st.lists(call, min_size=1, max_size=12)


def _shown(key: int | None) -> Any:
    return "generated" if key is not None and key > 0 else key


async def _run(db: Ommi, call: Call) -> Any:
    on, rows = call
    accounts = [UpsAccount(e, t, n, note=o, handle=h, id=k) for e, t, n, o, h, k in rows]
    try:
        await db.upsert(*accounts, on=_ON[on]).or_raise()
    except OmmiError as exc:
        return ("error", type(exc).__name__, [_shown(a.id) for a in accounts])
    except Exception as exc:
        raise UnexpectedError(f"{db.driver.name}: upsert {call!r} raised {type(exc).__name__}: {exc}") from exc
    return ("ok", [_shown(a.id) for a in accounts])


async def _snapshot(db: Ommi) -> list[Any]:
    rows = await db.find(UpsAccount).all.to_list()
    return sorted((a.email, a.team, a.number, a.note, a.handle, _shown(a.id)) for a in rows)


def run_upsert_differential(
    driver_factory: Callable[[], Driver],
    *,
    backend: str,
    examples: int,
    profile: str = "",
    reference_factory: Callable[[], Driver] = ReferenceDriver.connect,
) -> Figures:
    """Run ``examples`` generated upsert sequences on a driver and on the reference driver.

    Raises:
        Divergence: a call gave another outcome, other keys or other rows (Hypothesis's minimal example).
        UnexpectedError: a call raised outside :mod:`ommi.errors`.
    """
    figures = Figures("upsert differential", backend, profile)

    async def check(target: Ommi, reference: Ommi, calls: list[Call]) -> None:
        for db in (target, reference):
            await db.find(UpsAccount).delete.or_raise()
        for number, call in enumerate(calls):
            expected = await _run(reference, call)
            actual = await _run(target, call)
            figures.cases += 1
            if actual != expected:
                raise Divergence(
                    f"{backend} differs from the reference driver at upsert {number}: {call!r}\n"
                    f"  reference: {expected!r}\n  {backend}: {actual!r}"
                )
            mine, theirs = await _snapshot(target), await _snapshot(reference)
            if mine != theirs:
                raise Divergence(
                    f"{backend} holds other rows than the reference driver after upsert {number}: {call!r}\n"
                    f"  reference: {theirs!r}\n  {backend}: {mine!r}"
                )
            figures.rows_verified += len(mine)
        figures.examples += 1

    return run_paired(
        driver_factory, reference_factory, ups_models, upsert_calls(), check, examples=examples, figures=figures
    )
