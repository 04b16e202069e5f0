"""One Hypothesis run of generated cases on a driver and on the reference driver, each with its own tables.

The focused differentials (upserts, JSON fields) share it: both databases are
opened with ``collection``'s tables made afresh, every generated case is
checked by ``check(target, reference, case)``, and both are closed (their
tables dropped) whatever happens. The main differential (:mod:`.differential`)
has a richer loop of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ommi import Ommi
from ommi.drivers import Driver
from ommi.errors import OmmiError
from ommi.models.collections import ModelCollection

from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.profile import phases

__all__ = ["run_paired"]

C = TypeVar("C")


def run_paired(
    driver_factory: Callable[[], Driver],
    reference_factory: Callable[[], Driver],
    collection: ModelCollection,
    cases: st.SearchStrategy[C],
    check: Callable[[Ommi, Ommi, C], Coroutine[Any, Any, None]],
    *,
    examples: int,
    figures: Figures,
) -> Figures:
    """Run ``examples`` cases drawn from ``cases`` through ``check``; ``figures.seconds`` is set at the end."""
    started = time.perf_counter()
    with asyncio.Runner() as runner:
        target, reference = Ommi(driver_factory()), Ommi(reference_factory())

        async def open_both() -> None:
            for db in (target, reference):
                await db.open()
                await db.remove_models(collection)
                await db.use_models(collection)

        async def close_both() -> None:
            for db in (target, reference):
                try:
                    await db.remove_models(collection)
                except OmmiError:
                    pass  # never opened: the error that matters is raised already
                finally:
                    await db.close()

        try:
            runner.run(open_both())

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                print_blob=True,
                phases=phases(),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(cases)
            def differential(case: C) -> None:
                runner.run(check(target, reference, case))

            differential()
        finally:
            runner.run(close_both())
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures
