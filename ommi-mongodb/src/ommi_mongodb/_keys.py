"""Generated integer keys: one counter document per collection, advanced atomically.

The counters live in their own collection (``_ommi_counters`` by default), one
document per model collection: ``{"_id": "<collection>", "last": <int>}``.

* Reserving ``n`` keys is one ``find_one_and_update`` with ``$inc: {"last": n}``
  (upserting the counter), which the server applies atomically: concurrent
  inserters always get disjoint ranges.
* Before a key the application chose is inserted, ``$max: {"last": key}`` moves
  the counter past it, so later generated keys never collide with it.
* The first time a driver generates keys for a collection it also moves the
  counter past the largest integer ``_id`` already stored, which covers
  documents written before the counter existed (or by other tools).
* Should a generated key still be taken when it is inserted (a key chosen by
  another client between its ``$max`` and its insert, or a document written
  by another tool meanwhile), the insert catches the counter up and retries
  with new keys; only a key the application chose can fail as a duplicate.

Counters are advanced outside any transaction, like SQL sequences: a rolled
back insert leaves a gap, and concurrent transactions never conflict on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import Int64
from ommi.errors import OperationalError
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

__all__ = ["KeyGenerator"]

_UPSERT_RETRIES = 3


class KeyGenerator:
    """Hands out integer keys for the collections of one database.

    Args:
        database: the driver's database.
        counters: the name of the counters collection.
        rounds: how many times to ask for a larger integer ``_id`` when catching
            up (:attr:`ommi_mongodb._filters.ServerForms.largest_key_rounds`).
    """

    def __init__(self, database: AsyncDatabase[dict[str, Any]], counters: str, *, rounds: int = 1) -> None:
        self._database = database
        self._counters = database[counters]
        self._rounds = rounds
        self._seeded: set[str] = set()

    async def _catch_up(self, collection: str) -> None:
        """Move the counter past every integer ``_id`` already stored in ``collection``."""
        counter = await self._counters.find_one({"_id": collection})
        last = int(counter.get("last", 0)) if counter else 0
        # Ask for the largest key above the counter. On MongoDB the first answer is
        # the largest (one round); a server that sorts _id oddly still answers
        # "some larger key", so asking again until there is none converges.
        for _ in range(self._rounds):
            newest = await self._database[collection].find_one(
                {"_id": {"$gt": Int64(last)}}, projection={"_id": 1}, sort=[("_id", -1)]
            )
            highest = newest.get("_id") if newest else None
            if not isinstance(highest, int) or isinstance(highest, bool) or highest <= last:
                break
            last = int(highest)
            await self.observe(collection, [last])
        self._seeded.add(collection)

    async def reserve(self, collection: str, count: int, *, catch_up: bool = False) -> list[int]:
        """``count`` new keys for ``collection``, never handed out before.

        Args:
            catch_up: first move the counter past the keys stored in the
                collection, as on the first use (after a generated key was
                found taken).
        """
        if catch_up or collection not in self._seeded:
            await self._catch_up(collection)
        for attempt in range(_UPSERT_RETRIES):
            try:
                counter = await self._counters.find_one_and_update(
                    {"_id": collection},
                    {"$inc": {"last": Int64(count)}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                # Two first upserts raced; the counter exists now, so retry.
                if attempt == _UPSERT_RETRIES - 1:
                    raise
        if counter is None:  # pragma: no cover - an upsert returning the document after it never gives None
            raise OperationalError(f"the key counter of {collection!r} could not be read back")
        last = int(counter["last"])
        return list(range(last - count + 1, last + 1))

    async def observe(self, collection: str, keys: Sequence[int]) -> None:
        """Move the counter of ``collection`` past keys the application chose."""
        if not keys:
            return
        for attempt in range(_UPSERT_RETRIES):
            try:
                await self._counters.update_one({"_id": collection}, {"$max": {"last": Int64(max(keys))}}, upsert=True)
                return
            except DuplicateKeyError:
                if attempt == _UPSERT_RETRIES - 1:
                    raise

    async def forget(self, collections: Sequence[str]) -> None:
        """Drop the counters of dropped collections (their keys start at 1 again)."""
        self._seeded.difference_update(collections)
        await self._counters.delete_many({"_id": {"$in": list(collections)}})
