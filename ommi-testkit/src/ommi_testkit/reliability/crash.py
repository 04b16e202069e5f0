"""A process killed with SIGKILL in the middle of transactions: committed rows must survive.

The child (``python -m ommi_testkit.reliability.crash URL``) writes
:class:`~ommi_testkit.reliability.models.Part` groups without pause, one
group per transaction or per multi-row ``add`` in turn, and prints each
group's name and size once the write returned: that line is the
acknowledgement. The parent (:func:`crash_rounds`) reads the lines, kills the
child with SIGKILL at a random moment, and then checks that the database
opens cleanly (``ommi`` opens it and ``use_models`` finds the schema intact),
that every acknowledged group is stored in full and that no group is stored
in part. Rounds repeat on the same database, so each round also proves the
previous crash left it usable.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

from ommi import Ommi
from ommi.drivers import Driver

from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.ledger import Ledger, verify
from ommi_testkit.reliability.models import Part, workload_models

__all__ = ["crash_rounds", "main"]


async def _child(url: str) -> None:
    import ommi

    async with ommi.connect(url) as db:
        await db.use_models(workload_models)
        prefix = f"p{os.getpid()}"
        rng = random.Random(os.getpid())
        number = 0
        while True:
            name, size = f"{prefix}-{number}", rng.randint(2, 8)
            parts = [Part(group=name, index=i, size=size) for i in range(size)]
            if number % 2:
                await db.add(*parts).or_raise()
            else:
                async with db.transaction() as t:
                    # Two statements: a transaction cut between them must leave nothing.
                    await t.add(*parts[: size // 2]).or_raise()
                    await t.add(*parts[size // 2 :]).or_raise()
            sys.stdout.write(f"{name} {size}\n")
            sys.stdout.flush()
            number += 1


def _read_acks(stream: IO[str], ledger: Ledger, wanted: int) -> None:
    while len(ledger.groups) < wanted:
        line = stream.readline()
        if not line:
            return
        name, size = line.split()
        ledger.groups[name] = int(size)


def crash_rounds(
    url: str,
    driver_factory: Callable[[], Driver],
    *,
    backend: str,
    profile: str,
    rounds: int,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """Kill ``rounds`` writing child processes with SIGKILL and check the database after each.

    Args:
        url: what the child passes to :func:`ommi.connect` (a file database).
        driver_factory: a new unopened driver on the same database, for the checks.
        backend: the backend's name in the figures.
        profile: the profile's name in the figures.
        rounds: how many children to kill.
        seed: makes the kill moments reproducible.
    """
    figures = Figures("crash", backend, profile)
    ledger = Ledger(accounts=0)
    rng = random.Random(seed)
    problems: list[str] = []
    started = time.perf_counter()
    for round_ in range(rounds):
        before = len(ledger.groups)
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "ommi_testkit.reliability.crash", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stderr is not None
        # A child that hangs instead of writing is killed anyway, and the round reports it.
        watchdog = threading.Timer(60, child.kill)
        watchdog.start()
        try:
            _read_acks(child.stdout, ledger, before + rng.randint(3, 40))
        finally:
            watchdog.cancel()
        time.sleep(rng.uniform(0, 0.01))  # land anywhere inside the next transaction
        child.send_signal(signal.SIGKILL)
        rest, errors = child.communicate(timeout=30)
        for line in rest.splitlines():
            name, size = line.split()
            ledger.groups[name] = int(size)
        if child.returncode != -signal.SIGKILL:
            problems.append(f"round {round_}: the child exited with {child.returncode} before the kill: {errors}")
            break
        figures.faults += 1
        problems += [f"round {round_}: {p}" for p in asyncio.run(_check(driver_factory, ledger, figures))]
        if problems:
            break
    figures.acknowledged = len(ledger.groups)
    figures.seconds = round(time.perf_counter() - started, 3)
    if len(ledger.groups) < rounds:
        problems.append(f"only {len(ledger.groups)} writes were acknowledged in {rounds} rounds")
    return figures, problems


async def _check(driver_factory: Callable[[], Driver], ledger: Ledger, figures: Figures) -> list[str]:
    problems: list[str] = []
    async with Ommi(driver_factory(), allow_implicit_model_setup=False) as db:
        try:
            await db.use_models(workload_models)
        except Exception as exc:
            return [f"the database did not open cleanly after the kill: {type(exc).__name__}: {exc}"]
        verdict = await verify(db, ledger)
    figures.rows_verified += verdict.rows
    figures.lost += len(verdict.lost)
    figures.duplicated += len(verdict.duplicated)
    problems += verdict.problems
    return problems


def main(argv: list[str] | None = None) -> None:
    """The child process: write groups until killed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m ommi_testkit.reliability.crash URL")
    asyncio.run(_child(args[0]))


if __name__ == "__main__":
    main()
