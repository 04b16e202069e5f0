"""Writes of several documents that no interruption leaves half done on a standalone server.

A standalone MongoDB server has no multi-document transactions, so an
``add`` spanning several wire messages, or an ``update`` that changes a key (a
delete of the old documents and an insert of the new ones), could be cut
short by a cancellation, a lost connection or a dead process. Such writes run
under a *journal entry* instead, one document in ``_ommi_journal``::

    {"_id": <op>, "collection": "<name>", "kind": "insert" | "rewrite",
     "state": "pending" | "committed" | "aborted", "renewed": <server time>,
     "changes": {<stored name>: <value>, ...}}

and mark the documents they touch with fields that no model field can be
stored as (a stored name holds ``%`` only in its escapes):

* ``%ommi_new: <op>`` on every document the operation writes;
* ``%ommi_old: <op>`` on each document a rewrite replaces;
* ``%ommi_set: <op>`` on each document a rewrite keeps under the same key
  (its other fields get ``changes`` when the rewrite completes).

Order of an operation: write the entry (pending); mark the old documents and
write the new ones; flip the entry to committed (the commit point: one
compare-and-set on one document, which the server applies atomically);
delete the old documents, unmark the new ones; delete the entry. Before the
commit point, undoing removes the ``%ommi_new`` documents and unmarks the
others; after it, redoing finishes the steps. Both are idempotent, so any
number of clients may repeat them.

Who undoes or redoes:

* the operation itself, when it fails or is cancelled (the cancellation waits
  for the step in flight, see :func:`uninterrupted`);
* the next operation of the same driver, when that clean-up could not run
  (the connection was gone): its op is *unsettled*;
* any client, for an entry whose lease ran out: a pending entry not renewed
  for ``lease`` seconds (server time) belongs to a client that died or was cut
  off. Recovery runs when the driver opens and then at most once per lease,
  before an operation. A live but stalled owner then finds its entry aborted
  at its commit and fails with ``OperationalError``, having changed nothing.

An aborted entry is kept for one more lease and undone again before it is
deleted: a write sent just before a connection died may still reach the
server after the first undo.

While such an operation runs, readers may see its documents appear one batch
at a time, or a row both in its old and its new form; never a row in neither.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ommi.drivers import get_logger
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from ommi_mongodb._filters import ServerForms
from ommi_mongodb._settings import JOURNAL_COLLECTION

__all__ = [
    "JOURNAL_COLLECTION",
    "MARKERS",
    "NEW",
    "OLD",
    "SET",
    "Journal",
    "LeaseLost",
    "Stop",
    "Stopped",
    "uninterrupted",
]

log = get_logger("ommi.mongodb.journal")


NEW = "%ommi_new"
OLD = "%ommi_old"
SET = "%ommi_set"
MARKERS = (NEW, OLD, SET)

PENDING, COMMITTED, ABORTED = "pending", "committed", "aborted"
INSERT, REWRITE = "insert", "rewrite"

T = TypeVar("T")

Filters = Mapping[str, Mapping[str, Any]]
"""Per marker, a filter narrowing the documents carrying it (the ids the owner wrote), for index use."""


# -- cancellation at step boundaries ------------------------------------------


class Stopped(Exception):
    """Raised by :meth:`Stop.check` once the caller was cancelled."""


class Stop:
    """Set when the task waiting for an :func:`uninterrupted` body was cancelled."""

    __slots__ = ("requested",)

    def __init__(self) -> None:
        self.requested = False

    def check(self) -> None:
        if self.requested:
            raise Stopped


async def uninterrupted(body: Callable[[Stop], Awaitable[T]]) -> T:
    """Run ``body`` in a task of its own that a cancellation of the caller only asks to stop.

    On cancellation the body's :class:`Stop` is set; the body notices it at its
    next step boundary and undoes or finishes its work, and the caller's
    ``CancelledError`` is raised once it has. No wire operation is ever cut in
    the middle, so no reply is left unread and no write lands after the caller
    has been told what happened.
    """
    stop = Stop()
    task = asyncio.ensure_future(body(stop))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.requested = True
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                continue
            except BaseException:  # noqa: BLE001 - the body's failure is superseded by the cancellation
                break
        if not task.cancelled():
            task.exception()  # retrieved: superseded by the cancellation
        raise


# -- the journal --------------------------------------------------------------


class LeaseLost(Exception):
    """The entry of a running operation was aborted by another client's recovery."""


@dataclass(slots=True)
class Entry:
    """A journal entry owned by a running operation."""

    op: str
    collection: str
    kind: str
    changes: dict[str, Any]
    renewed_at: float = field(default_factory=time.monotonic)


def _settled(exc: BaseException) -> bool:
    """Whether every write of a failed step is known to be over (the server replied, or nothing was sent)."""
    return isinstance(exc, (Stopped, LeaseLost, OperationFailure))


class Journal:
    """The journal of one opened driver (one connection pool).

    Args:
        database: the driver's database.
        lease: gives the lease in seconds (read each time, so it can be tuned).
        unsettled: ops of this driver whose clean-up could not run; shared
            with the driver's later openings, which settle them at once.
        deletes: ``(collection, filter)`` of documents this driver must take
            back (a one-message insert that failed part-way, when the take-back
            itself failed); shared like ``unsettled``.
        forms: how the server is asked for marked documents.
    """

    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        lease: Callable[[], float],
        unsettled: set[str],
        deletes: list[tuple[str, dict[str, Any]]],
        forms: ServerForms,
    ) -> None:
        self._database = database
        self._forms = forms
        self._entries = database[JOURNAL_COLLECTION]
        self._lease = lease
        self._unsettled = unsettled
        self._deletes = deletes
        self._live: set[str] = set()
        self._checked = time.monotonic()
        self._lock = asyncio.Lock()

    # -- recovery -------------------------------------------------------------

    def due(self) -> bool:
        """Whether an operation should run :meth:`recover` first."""
        return bool(self._unsettled or self._deletes) or time.monotonic() - self._checked >= self._lease()

    def defer_delete(self, collection: str, flt: dict[str, Any]) -> None:
        """Have the next operation delete the documents ``flt`` selects in ``collection``."""
        self._deletes.append((collection, flt))

    async def _server_now(self) -> _dt.datetime:
        reply = await self._database.command("hello")
        now = reply.get("localTime")
        if isinstance(now, _dt.datetime):
            return now.replace(tzinfo=None)
        return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)  # pragma: no cover - every MongoDB sends localTime

    def _expired(self, entry: Mapping[str, Any], now: _dt.datetime) -> bool:
        renewed = entry.get("renewed")
        return not isinstance(renewed, _dt.datetime) or renewed <= now - _dt.timedelta(seconds=self._lease())

    async def recover(self, *, force: bool = False) -> None:
        """Settle every entry that no live operation owns: unsettled ones now, others once their lease ran out."""
        async with self._lock:
            if not force and not self.due():
                return
            self._checked = time.monotonic()
            while self._deletes:
                name, flt = self._deletes[0]
                try:
                    await self._database[name].delete_many(flt)
                except OperationFailure:  # refused by the server: retrying would never end
                    log.error("journal.take_back_failed", driver="mongodb", collection=name, exc_info=True)
                self._deletes.pop(0)
            mine = set(self._unsettled)
            try:
                entries = [entry async for entry in self._entries.find({})]
            except OperationFailure:
                # A user not allowed to read the journal (it only reads, then): nothing it could recover.
                log.warning("journal.unreadable", driver="mongodb", exc_info=True)
                return
            now: _dt.datetime | None = None
            for entry in entries:
                op = entry.get("_id")
                if op in self._live:
                    continue
                collection, kind = entry.get("collection"), entry.get("kind")
                if not isinstance(op, str) or not isinstance(collection, str) or kind not in (INSERT, REWRITE):
                    log.warning("journal.entry_not_understood", driver="mongodb", entry=repr(entry)[:200])
                    continue
                if entry.get("state") == PENDING and op not in mine:
                    now = now or await self._server_now()
                    if not self._expired(entry, now):
                        continue
                try:
                    await self._settle(entry, now_known=now)
                except OperationFailure:
                    log.warning("journal.settle_failed", driver="mongodb", op=op, collection=collection, exc_info=True)
            self._unsettled.difference_update(mine)

    async def _settle(self, entry: Mapping[str, Any], *, now_known: _dt.datetime | None) -> None:
        op, collection, kind = entry["_id"], entry["collection"], entry["kind"]
        state = entry.get("state")
        if state == PENDING:
            entry = await self._abort_entry(op) or entry
            state = entry.get("state")
        changes = entry.get("changes")
        if state == COMMITTED:
            await self._redo(op, collection, kind, changes if isinstance(changes, dict) else {}, {})
            await self._entries.delete_one({"_id": op})
            log.info("journal.redone", driver="mongodb", op=op, collection=collection, kind=kind)
        elif state == ABORTED:
            await self._undo(op, collection, kind, {})
            now = now_known or await self._server_now()
            if self._expired(entry, now):
                await self._entries.delete_one({"_id": op, "state": ABORTED})
            log.info("journal.undone", driver="mongodb", op=op, collection=collection, kind=kind)

    async def _abort_entry(self, op: str) -> dict[str, Any] | None:
        """Flip a pending entry to aborted; the entry as it then is (``None`` when it is gone)."""
        entry = await self._entries.find_one_and_update(
            {"_id": op, "state": PENDING},
            {"$set": {"state": ABORTED}, "$currentDate": {"renewed": True}},
            return_document=ReturnDocument.AFTER,
        )
        return entry if entry is not None else await self._entries.find_one({"_id": op})

    async def _undo(self, op: str, collection: str, kind: str, narrow: Filters) -> None:
        documents = self._database[collection]
        await documents.delete_many(self._forms.marked(NEW, op, narrow.get(NEW)))
        if kind == REWRITE:
            await documents.update_many(self._forms.marked(OLD, op, narrow.get(OLD)), {"$unset": {OLD: ""}})
            await documents.update_many(self._forms.marked(SET, op, narrow.get(SET)), {"$unset": {SET: ""}})

    async def _redo(self, op: str, collection: str, kind: str, changes: dict[str, Any], narrow: Filters) -> None:
        documents = self._database[collection]
        if kind == REWRITE:
            await documents.delete_many(self._forms.marked(OLD, op, narrow.get(OLD)))
            kept: dict[str, Any] = {"$unset": {SET: ""}}
            if changes:
                kept["$set"] = changes
            await documents.update_many(self._forms.marked(SET, op, narrow.get(SET)), kept)
        await documents.update_many(self._forms.marked(NEW, op, narrow.get(NEW)), {"$unset": {NEW: ""}})

    # -- an operation's own entry --------------------------------------------

    async def run(
        self,
        collection: str,
        kind: str,
        steps: Callable[[Entry], Awaitable[None]],
        stop: Stop,
        *,
        changes: dict[str, Any] | None = None,
        narrow: Filters | None = None,
    ) -> None:
        """Run ``steps`` under a new entry, then commit and finish; undo instead when anything fails.

        ``steps`` writes marked documents and calls :meth:`renew` between its
        writes. Raises what failed (``LeaseLost`` when another client aborted
        the entry); ``Stopped`` when ``stop`` was set before the commit point.
        """
        narrow = narrow or {}
        entry = Entry(uuid.uuid4().hex, collection, kind, changes or {})
        self._live.add(entry.op)
        try:
            try:
                await self._entries.update_one(
                    {"_id": entry.op},
                    {
                        "$set": {"collection": collection, "kind": kind, "state": PENDING, "changes": entry.changes},
                        "$currentDate": {"renewed": True},
                    },
                    upsert=True,
                )
                await steps(entry)
                stop.check()
                result = await self._entries.update_one(
                    {"_id": entry.op, "state": PENDING}, {"$set": {"state": COMMITTED}}
                )
                if result.matched_count != 1:
                    raise LeaseLost
            except BaseException as exc:
                if await self._abandon(entry, exc, narrow) != COMMITTED:
                    raise
                # The commit reached the server though its reply was lost: the write is done.
            else:
                if stop.requested and kind == INSERT:
                    # Cancelled while it committed: an add the caller was told is cancelled stores nothing.
                    await self._take_back(entry, narrow)
                    raise Stopped
                await self._finish(entry, narrow)
        finally:
            self._live.discard(entry.op)

    async def renew(self, entry: Entry) -> None:
        """Tell other clients the operation is alive (at most four times per lease)."""
        now = time.monotonic()
        if now - entry.renewed_at < self._lease() / 4:
            return
        result = await self._entries.update_one(
            {"_id": entry.op, "state": PENDING}, {"$currentDate": {"renewed": True}}
        )
        entry.renewed_at = now
        if result.matched_count != 1:
            raise LeaseLost

    async def _finish(self, entry: Entry, narrow: Filters) -> None:
        try:
            await self._redo(entry.op, entry.collection, entry.kind, entry.changes, narrow)
            await self._entries.delete_one({"_id": entry.op})
        except BaseException:
            # Committed: the next operation (or another client, after the lease) finishes it.
            self._unsettled.add(entry.op)
            raise

    async def _take_back(self, entry: Entry, narrow: Filters) -> None:
        """Undo a committed insert: abort its entry (committed -> aborted), then remove its documents."""
        try:
            await self._entries.update_one({"_id": entry.op, "state": COMMITTED}, {"$set": {"state": ABORTED}})
            await self._undo(entry.op, entry.collection, entry.kind, narrow)
            await self._entries.delete_one({"_id": entry.op})
        except PyMongoError:
            # Had the abort reached the server, recovery undoes the rest; had it not, it finishes the add.
            self._unsettled.add(entry.op)
            log.warning("journal.take_back_deferred", driver="mongodb", op=entry.op, collection=entry.collection)

    async def _abandon(self, entry: Entry, failure: BaseException, narrow: Filters) -> str | None:
        """Undo a failed operation (or redo it, when its commit did reach the server); its final state."""
        try:
            current = await self._abort_entry(entry.op)
            state = current.get("state") if current else None
            if state == COMMITTED:
                if not isinstance(failure, PyMongoError):
                    # Cancelled after the commit point: finish, then let the cancellation through.
                    await self._finish(entry, narrow)
                    return None
                await self._finish(entry, narrow)
                return COMMITTED
            await self._undo(entry.op, entry.collection, entry.kind, narrow)
            if _settled(failure) and state == ABORTED and not isinstance(failure, LeaseLost):
                await self._entries.delete_one({"_id": entry.op})
            return state
        except (PyMongoError, asyncio.CancelledError):
            self._unsettled.add(entry.op)
            log.warning(
                "journal.undo_deferred",
                driver="mongodb",
                op=entry.op,
                collection=entry.collection,
                reason=repr(failure),
                exc_info=True,
            )
            return None
