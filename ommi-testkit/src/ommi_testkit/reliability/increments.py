"""Concurrent atomic increments: many tasks doing ``balance + 1`` / ``balance - 1`` at once, none lost.

Each task updates a random account with an update expression
(``db.find(Account.id == n).update(balance=Account.balance + 1)``), never
reading the balance first. Every acknowledged update (one matched row) is
counted per account; afterwards each balance must equal its start plus what
was acknowledged. A read-modify-write would lose some of them under this
load; an atomic update loses none. Any error is a problem: waiting for a lock
or a connection must be absorbed by the driver.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from ommi import Ommi

from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.ledger import START_BALANCE, Ledger, account_balance, account_id, prepare
from ommi_testkit.reliability.models import Account

__all__ = ["increment_workload"]


async def increment_workload(
    databases: list[Ommi],
    *,
    backend: str,
    profile: str,
    tasks: int = 100,
    rounds: int = 5,
    accounts: int = 5,
    seed: int = 0,
) -> tuple[Figures, list[str]]:
    """``tasks`` tasks at once, each doing ``rounds`` atomic ``+ 1`` / ``- 1`` updates of random accounts.

    The tasks share ``databases`` round-robin (several ``Ommi`` on one SQLite
    file give several writers). ``figures.lost`` counts the acknowledged
    updates the final balances do not show (or show twice).
    """
    figures = Figures("increments", backend, profile)
    await prepare(databases[0], Ledger(accounts=accounts))
    net: Counter[int] = Counter()
    problems: list[str] = []
    started = time.perf_counter()

    async def worker(number: int) -> None:
        db = databases[number % len(databases)]
        rng = random.Random(seed * 100_000 + number)
        for _ in range(rounds):
            account = rng.randint(1, accounts)
            step = rng.choice((1, 1, 1, -1))
            value = account_balance + 1 if step > 0 else account_balance - 1
            try:
                matched = await db.find(account_id == account).update(balance=value).or_raise()
            except Exception as exc:
                problems.append(f"task {number}: {type(exc).__name__}: {exc}")
                continue
            if matched != 1:
                problems.append(f"task {number}: the update of account {account} matched {matched} rows, not 1")
                continue
            net[account] += step
            figures.acknowledged += 1

    await asyncio.gather(*(worker(n) for n in range(tasks)))
    figures.tasks = tasks
    stored = {a.id: a.balance async for a in databases[0].find(Account).all}
    for account in range(1, accounts + 1):
        expected = START_BALANCE + net[account]
        actual = stored.get(account)
        figures.rows_verified += 1
        if actual is None:
            problems.append(f"account {account} is missing")
        elif actual != expected:
            # Increments and decrements mix: a difference of n is n acknowledged updates not (or twice) applied.
            figures.lost += abs(expected - actual)
            problems.append(
                f"account {account}: balance {actual}, expected {expected} ({net[account]:+d} acknowledged)"
            )
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures, problems
