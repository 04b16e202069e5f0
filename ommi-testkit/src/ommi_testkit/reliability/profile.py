"""How big a reliability run is: the ``quick`` profile (the normal test suite) or ``stress``.

Choose with ``OMMI_RELIABILITY_PROFILE=quick|stress`` (default ``quick``);
``nox -s stress`` sets ``stress``. ``OMMI_RELIABILITY_SEED`` makes the
differential test's Hypothesis run reproducible, and ``OMMI_RELIABILITY_SHRINK=1``
lets Hypothesis shrink a failing case (off by default: every step of a
shrink runs on a database, which can take minutes; the unshrunk failure
already names the operation that diverged).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import Phase

__all__ = ["PROFILES", "PROFILE_ENV", "SEED_ENV", "SHRINK_ENV", "Profile", "current_profile", "phases", "seed"]

PROFILE_ENV = "OMMI_RELIABILITY_PROFILE"
SEED_ENV = "OMMI_RELIABILITY_SEED"
SHRINK_ENV = "OMMI_RELIABILITY_SHRINK"


@dataclass(frozen=True, slots=True)
class Profile:
    """The sizes of one reliability run.

    Attributes:
        name: ``"quick"`` or ``"stress"``.
        min_cases: generated differential cases each backend must run, at least.
        examples: Hypothesis examples (datasets) per backend.
        operations: (fewest, most) operations per example; each is one case.
        fault_seconds: how long the PostgreSQL fault workload runs.
        kill_rounds: SQLite child processes killed with SIGKILL.
        concurrent_tasks: tasks running at once on one ``Ommi``.
        concurrency_rounds: operations each concurrent task performs.
        cancelled_tasks: tasks started and cancelled at a random point.
        sql_text_examples: examples of the "values never change the SQL text" property.
        key_update_rounds: key-changing updates interrupted (cancelled, timed out, connection killed).
        key_update_rows: most rows one key-changing update moves.
        multi_add_rounds: multi-model adds interrupted at a random point.
        big_add_rounds: adds of more rows than one insert batch, interrupted.
        big_add_rows: rows of such an add.
        close_rounds: rounds of ``close()`` racing operations and transactions.
        close_tasks: tasks running when ``close()`` is called.
        shared_transaction_rounds: transactions shared by streaming and writing tasks.
        mixed_key_tasks: tasks mixing explicit and generated keys at once.
        mixed_key_rounds: operations each of those tasks performs.
        migration_rounds: rolling deploys of a migration adding a field while
            old-model writers write (:mod:`~ommi_testkit.reliability.migrating`).
        migration_writers: writers on the old models in each of them.
        retry_moves: concurrent moves of the retried-transaction workload
            (:func:`~ommi_testkit.reliability.workloads.retry_workload`).
        increment_tasks: tasks doing atomic ``balance + 1`` updates at once
            (:mod:`~ommi_testkit.reliability.increments`).
        increment_rounds: updates each of those tasks performs.
        upsert_tasks: tasks upserting the same few keys at once
            (:func:`~ommi_testkit.reliability.workloads.upsert_workload`).
        upsert_rounds: upserts each of those tasks performs.
    """

    name: str
    min_cases: int
    examples: int
    operations: tuple[int, int]
    fault_seconds: float
    kill_rounds: int
    concurrent_tasks: int
    concurrency_rounds: int
    cancelled_tasks: int
    sql_text_examples: int
    key_update_rounds: int
    key_update_rows: int
    multi_add_rounds: int
    big_add_rounds: int
    big_add_rows: int
    close_rounds: int
    close_tasks: int
    shared_transaction_rounds: int
    mixed_key_tasks: int
    mixed_key_rounds: int
    migration_rounds: int
    migration_writers: int
    retry_moves: int
    increment_tasks: int = 100
    increment_rounds: int = 5
    upsert_tasks: int = 50
    upsert_rounds: int = 4

    def __post_init__(self) -> None:
        if self.examples * self.operations[0] < self.min_cases:
            raise ValueError(f"profile {self.name!r} cannot reach {self.min_cases} cases")


QUICK = Profile(
    name="quick",
    min_cases=1_000,
    examples=50,
    operations=(20, 30),
    fault_seconds=4.0,
    kill_rounds=3,
    concurrent_tasks=200,
    concurrency_rounds=3,
    cancelled_tasks=2_000,
    sql_text_examples=200,
    key_update_rounds=150,
    key_update_rows=40,
    multi_add_rounds=150,
    big_add_rounds=6,
    big_add_rows=2_100,
    close_rounds=20,
    close_tasks=30,
    shared_transaction_rounds=20,
    mixed_key_tasks=50,
    mixed_key_rounds=4,
    migration_rounds=2,
    migration_writers=3,
    retry_moves=60,
    upsert_tasks=50,
    upsert_rounds=4,
)

STRESS = Profile(
    name="stress",
    min_cases=20_000,
    examples=1_000,
    operations=(20, 30),
    fault_seconds=60.0,
    kill_rounds=25,
    concurrent_tasks=200,
    concurrency_rounds=25,
    cancelled_tasks=20_000,
    sql_text_examples=5_000,
    key_update_rounds=1_500,
    key_update_rows=200,
    multi_add_rounds=1_500,
    big_add_rounds=40,
    big_add_rows=4_500,
    close_rounds=200,
    close_tasks=60,
    shared_transaction_rounds=200,
    mixed_key_tasks=200,
    mixed_key_rounds=20,
    migration_rounds=25,
    migration_writers=8,
    retry_moves=600,
    increment_tasks=200,
    increment_rounds=50,
    upsert_tasks=200,
    upsert_rounds=25,
)

PROFILES = {p.name: p for p in (QUICK, STRESS)}


def current_profile() -> Profile:
    """The profile ``OMMI_RELIABILITY_PROFILE`` names (``quick`` when unset).

    Raises:
        ValueError: the variable names no profile.
    """
    name = os.environ.get(PROFILE_ENV, "quick").strip().lower() or "quick"
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"{PROFILE_ENV}={name!r}: choose one of {', '.join(PROFILES)}") from None


def seed() -> int | None:
    """The Hypothesis seed ``OMMI_RELIABILITY_SEED`` sets, if any."""
    text = os.environ.get(SEED_ENV, "").strip()
    return int(text) if text else None


def phases() -> tuple[Phase, ...]:
    """Hypothesis's phases: shrinking only when ``OMMI_RELIABILITY_SHRINK`` is set to a true value."""
    base = (Phase.explicit, Phase.reuse, Phase.generate)
    if os.environ.get(SHRINK_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return (*base, Phase.shrink)
    return base
