"""What the workloads wrote, and the checks that nothing acknowledged was lost, doubled or half-applied.

A :class:`Ledger` records every write the database acknowledged (the call
returned without an error). :func:`verify` then reads everything back and
checks, on any driver:

* every acknowledged :class:`Receipt` is stored exactly once (its token is not
  a key, so a write the driver silently repeated would show as a second row);
* every :class:`Part` group is complete (all its rows, or none: a group is one
  ``add`` or one transaction), and every acknowledged group is present;
* the account balances add up to the starting total, and each balance equals
  its starting value plus the journal of stored :class:`Transfer` rows, so no
  transaction was applied in part; every acknowledged transfer is stored.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ommi import Ommi

from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.models import Account, Part, Receipt, Transfer, workload_models
from ommi_testkit.reliability.specs import field_of

__all__ = ["START_BALANCE", "Ledger", "Verdict", "prepare", "transfer", "verify"]

START_BALANCE = 1_000

# The query operands ``Account.id`` and friends, spelled so a type checker sees Fields, not ints.
account_id = field_of(Account, "id")
account_balance = field_of(Account, "balance")
part_group = field_of(Part, "group")
part_size = field_of(Part, "size")


@dataclass
class Ledger:
    """Acknowledged writes of a workload, and the locks its transfers take.

    ``accounts`` is the number of accounts :func:`prepare` creates; with 0
    the workload moves no money and :func:`verify` skips the balances.
    """

    accounts: int = 10
    receipts: set[str] = field(default_factory=set)
    groups: dict[str, int] = field(default_factory=dict)
    transfers: set[str] = field(default_factory=set)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    @asynccontextmanager
    async def accounts_locked(self, *ids: int) -> AsyncIterator[None]:
        """Hold the application's locks of ``ids`` (in id order, so two transfers never deadlock).

        Ommi has no ``balance = balance + x``: a transfer reads and writes the
        balances, so two transfers of the same account must not interleave.
        The locks serialise them in the application, as a real one would.
        """
        ordered = sorted(set(ids))
        locks = [self._locks.setdefault(i, asyncio.Lock()) for i in ordered]
        acquired: list[asyncio.Lock] = []
        try:
            for lock in locks:
                await lock.acquire()
                acquired.append(lock)
            yield
        finally:
            for lock in reversed(acquired):
                lock.release()

    def pick_accounts(self, rng: random.Random) -> tuple[int, int]:
        source, target = rng.sample(range(1, self.accounts + 1), 2)
        return source, target


async def prepare(db: Ommi, ledger: Ledger) -> None:
    """Create the workload tables afresh with ``ledger.accounts`` accounts of :data:`START_BALANCE`."""
    await db.remove_models(workload_models)
    await db.use_models(workload_models)
    await db.add(*(Account(id=i, balance=START_BALANCE) for i in range(1, ledger.accounts + 1))).or_raise()


async def transfer(db: Ommi, ledger: Ledger, rng: random.Random, token: str) -> None:
    """Move a random amount between two accounts in one transaction, journalled; acknowledged on return."""
    source, target = ledger.pick_accounts(rng)
    amount = rng.randint(1, 50)
    async with ledger.accounts_locked(source, target), db.transaction() as t:
        balances = {a.id: a.balance async for a in t.find(account_id.in_([source, target])).all}
        await t.find(account_id == source).update(balance=balances[source] - amount).or_raise()
        await t.find(account_id == target).update(balance=balances[target] + amount).or_raise()
        await t.add(Transfer(token=token, source=source, target=target, amount=amount)).or_raise()
    ledger.transfers.add(token)


@dataclass
class Verdict:
    """What :func:`verify` found."""

    rows: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    unbalanced: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return (
            [f"lost: {x}" for x in self.lost]
            + [f"duplicated: {x}" for x in self.duplicated]
            + [f"partial: {x}" for x in self.partial]
            + [f"unbalanced: {x}" for x in self.unbalanced]
        )

    def into(self, figures: Figures) -> None:
        figures.rows_verified += self.rows
        figures.lost += len(self.lost)
        figures.duplicated += len(self.duplicated)


async def verify(db: Ommi, ledger: Ledger) -> Verdict:
    """Read everything back and check it against the ledger (see the module docstring)."""
    verdict = Verdict()
    receipts = collections.Counter([r.token async for r in db.find(Receipt).all(batch_size=500)])
    verdict.rows += sum(receipts.values())
    verdict.lost += sorted(f"receipt {t}" for t in ledger.receipts if receipts[t] == 0)
    verdict.duplicated += sorted(f"receipt {t} x{n}" for t, n in receipts.items() if n > 1)

    groups: dict[str, list[Part]] = collections.defaultdict(list)
    async for part in db.find(Part).all(batch_size=500):
        groups[part.group].append(part)
    for name, parts in groups.items():
        verdict.rows += len(parts)
        size = parts[0].size
        indexes = sorted(p.index for p in parts)
        if indexes != list(range(size)) or any(p.size != size for p in parts):
            verdict.partial.append(f"group {name}: rows {indexes} of {size}")
    verdict.lost += sorted(f"group {g}" for g in ledger.groups if g not in groups)

    if not ledger.accounts:
        return verdict
    accounts = {a.id: a.balance async for a in db.find(Account).all}
    journal = [t async for t in db.find(Transfer).all(batch_size=500)]
    verdict.rows += len(accounts) + len(journal)
    expected = dict.fromkeys(range(1, ledger.accounts + 1), START_BALANCE)
    for entry in journal:
        expected[entry.source] -= entry.amount
        expected[entry.target] += entry.amount
    if accounts != expected:
        verdict.unbalanced.append(f"balances {accounts} but the journal says {expected}")
    if sum(accounts.values()) != START_BALANCE * ledger.accounts:
        verdict.unbalanced.append(f"total {sum(accounts.values())} != {START_BALANCE * ledger.accounts}")
    stored = {t.token for t in journal}
    verdict.lost += sorted(f"transfer {t}" for t in ledger.transfers if t not in stored)
    return verdict
