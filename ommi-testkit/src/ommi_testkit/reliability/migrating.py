"""A workload: ``migrations.apply`` adding a field while writers on the previous models keep adding rows.

:func:`migration_race_workload` plays a rolling deploy, round after round: the
table of :data:`v1` is migrated (``0001``), writers on other connections add
rows through the *old* models, and meanwhile ``apply`` runs ``0002``, which adds
``count`` with a default (and, with ``rebuild``, makes ``label`` optional,
which SQLite does by rebuilding the table). The writers go on after the
migration. The ledger is every key a writer's ``add`` acknowledged; afterwards
each must be stored exactly once, read through the new models, with ``count``
filled: rows stored before the migration by its backfill, rows written by the
old models afterwards by the column DEFAULT (the rule of
:mod:`ommi.sql.migrate`). A write refused because the new column had no value
is a problem, not an expected error: the rule says old writers keep working.

Drivers without column defaults (MongoDB) do not run it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ommi
from ommi import ModelCollection, Ommi, migrations, ommi_model
from ommi.errors import IntegrityError, TimeoutError
from ommi.migrations.history import history_models

from ommi_testkit.reliability.figures import Figures

__all__ = ["DEFAULT_COUNT", "migration_race_workload", "v1", "v2", "v2_rebuilt"]

DEFAULT_COUNT = 7
"""The default of the added field: every row must read it."""

v1 = ModelCollection("ommi_testkit reliability migration v1")
v2 = ModelCollection("ommi_testkit reliability migration v2")
v2_rebuilt = ModelCollection("ommi_testkit reliability migration v2 rebuilt")

_TABLE = "rel_mig_items"


@ommi_model(collection=v1, name=_TABLE)
@dataclass
class Item:
    """The model the writers keep using throughout (the deployment not yet updated)."""

    label: str
    id: int = ommi.generated_key()


@ommi_model(collection=v2, name=_TABLE)
@dataclass
class ItemV2:
    """After ``0002``: ``count`` added with a default (``ALTER TABLE ... ADD COLUMN ... DEFAULT``)."""

    label: str
    count: int = DEFAULT_COUNT
    id: int = ommi.generated_key()


@ommi_model(collection=v2_rebuilt, name=_TABLE)
@dataclass
class ItemRebuilt:
    """After ``0002``: ``count`` added and ``label`` made optional (SQLite rebuilds the table)."""

    label: str | None = None
    count: int = DEFAULT_COUNT
    id: int = ommi.generated_key()


async def _drop(db: Ommi) -> None:
    await db.remove_models(v2_rebuilt)
    await db.remove_models(history_models)


async def _writer(
    db: Ommi, name: str, stop: asyncio.Event, acknowledged: list[int], problems: list[str], figures: Figures
) -> None:
    """Add rows through the old model until ``stop``; the keys acknowledged go to ``acknowledged``."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            item = await db.add(Item(f"{name}n{n}")).or_raise()
        except IntegrityError as exc:
            problems.append(f"{name}: an old-model write was refused: {exc}")
        except TimeoutError:
            figures.expected_errors += 1  # waited past the driver's lock wait: loud, not lost
        else:
            acknowledged.append(item.id)
        await asyncio.sleep(0)


async def migration_race_workload(
    make_db: Callable[[], Ommi],
    directory: Path,
    *,
    backend: str,
    profile: str,
    rounds: int,
    writers: int,
    rebuild: bool = False,
    lead: float = 0.05,
    tail: float = 0.05,
) -> tuple[Figures, list[str]]:
    """Run ``rounds`` rolling deploys of a field with a default; every acknowledged row must be stored with it.

    Args:
        make_db: a new unopened ``Ommi`` on the database under test (called for
            the migrating side and once per writer).
        directory: an empty folder for the migration files (emptied each round).
        backend: the backend's name, for the figures.
        profile: the profile's name, for the figures.
        rounds: deploys to play, each on a fresh table.
        writers: tasks adding rows through the old models, each on its own ``Ommi``.
        rebuild: also make ``label`` optional in ``0002`` (a table rebuild on SQLite).
        lead: seconds the writers write before ``apply`` starts.
        tail: seconds they go on writing after it ended.

    Returns:
        The figures (``acknowledged``, ``lost``, ``duplicated``, ``rows_verified``,
        ``expected_errors``: lock waits that ran out) and the problems found.
    """
    figures = Figures("migrations", backend, profile=profile)
    problems: list[str] = []
    target = v2_rebuilt if rebuild else v2
    read_model: type[Any] = ItemRebuilt if rebuild else ItemV2
    started = time.perf_counter()
    for round_ in range(rounds):
        shutil.rmtree(directory, ignore_errors=True)
        migrations.make(v1, directory)
        migrations.make(target, directory)
        acknowledged: list[int] = []
        stop = asyncio.Event()
        expected = [migrations.load(directory)[-1].id]
        async with make_db() as migrating:
            await _drop(migrating)
            await migrations.apply(migrating, directory, to="0001_initial")
            writing = [make_db() for _ in range(writers)]
            try:
                for db in writing:
                    await db.open()
                    await db.use_models(v1)
                tasks = [
                    asyncio.ensure_future(_writer(db, f"r{round_}w{i}", stop, acknowledged, problems, figures))
                    for i, db in enumerate(writing)
                ]
                figures.tasks += len(tasks)
                try:
                    await asyncio.sleep(lead)
                    applied = await migrations.apply(migrating, directory, lock_timeout=60)
                    if [r.id for r in applied] != expected:
                        problems.append(f"round {round_}: apply applied {[r.id for r in applied]}")
                    await asyncio.sleep(tail)
                finally:
                    stop.set()
                    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
                problems += [
                    f"round {round_}: a writer failed: {o!r}" for o in outcomes if isinstance(o, BaseException)
                ]
            finally:
                for db in writing:
                    await db.close()
            await migrating.use_models(target)
            stored = await migrating.find(read_model).all.to_list()
            await _drop(migrating)
        figures.acknowledged += len(acknowledged)
        figures.rows_verified += len(stored)
        keys = [row.id for row in stored]
        figures.duplicated += len(keys) - len(set(keys))
        lost = set(acknowledged) - set(keys)
        figures.lost += len(lost)
        if lost:
            problems.append(f"round {round_}: {len(lost)} acknowledged rows lost, e.g. {sorted(lost)[:5]}")
        unfilled = [row.id for row in stored if row.count != DEFAULT_COUNT]
        if unfilled:
            problems.append(f"round {round_}: {len(unfilled)} rows without the default, e.g. {unfilled[:5]}")
        if not acknowledged:
            problems.append(f"round {round_}: no write was acknowledged")
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems
