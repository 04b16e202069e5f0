"""Keys after a cancelled multi-model ``add`` (issue 11, item 5).

``db.add(a, b)`` with instances of two model classes runs in one transaction.
Cancelled after that transaction committed, it used to reset the generated
keys of the instances although their rows were stored, so a retry stored
them twice. Whatever the point of cancellation, each instance's key must now
say what is stored: the key of its row, or ``None`` when nothing was stored.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.drivers import Driver

BACKENDS = ["reference", "sqlite", "postgresql"]
ATTEMPTS = 160

models = ModelCollection("test_add_cancellation")


@ommi_model(collection=models, name="cancel_author")
@dataclass
class Author:
    name: str
    id: int | None = None


@ommi_model(collection=models, name="cancel_book")
@dataclass
class Book:
    title: str
    id: int | None = None


async def _typical_add_seconds(db: Ommi, make: Callable[[int], tuple[object, ...]]) -> float:
    """The median duration of an uncancelled add of the shape under test, on this machine now."""
    durations = []
    for number in range(7):
        started = time.perf_counter()
        await db.add(*make(-1 - number)).or_raise()
        durations.append(time.perf_counter() - started)
    return sorted(durations)[len(durations) // 2]


async def _stop_after(task: asyncio.Task[object], rng: random.Random, attempt: int, typical: float) -> None:
    """Cancel ``task`` after a number of loop steps (even attempts) or a sleep (odd ones).

    The sleeps spread over 1.5 times a typical add, so cancellations land
    before, during and after the commit whatever the machine's speed.
    """
    if attempt % 2 == 0:
        for _ in range(attempt // 2 % 40):
            await asyncio.sleep(0)
    else:
        await asyncio.sleep(rng.random() * typical * 1.5)
    task.cancel()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_keys_match_storage_after_cancelled_multi_model_add(make_driver: Callable[..., Driver]) -> None:
    rng = random.Random(5)
    async with Ommi(make_driver()) as db:
        await db.remove_models(models)
        await db.use_models(models)
        typical = await _typical_add_seconds(db, lambda n: (Author(f"a{n}"), Book(f"b{n}"), Author(f"c{n}")))
        await db.find(Author).delete.or_raise()
        await db.find(Book).delete.or_raise()
        outcomes = {"stored": 0, "not stored": 0}
        mismatches: list[str] = []
        for attempt in range(ATTEMPTS):
            author, book, second = Author(f"a{attempt}"), Book(f"b{attempt}"), Author(f"c{attempt}")
            task = asyncio.ensure_future(db.add(author, book, second).or_raise())
            await _stop_after(task, rng, attempt, typical)
            await asyncio.gather(task, return_exceptions=True)

            stored_authors = {
                a.name: a.id
                for a in await (await db.find(Author.name.in_([author.name, second.name])).all.or_raise()).to_list()
            }
            stored_books = {
                b.title: b.id for b in await (await db.find(Book.title == book.title).all.or_raise()).to_list()
            }
            expected = {author.name: author.id, second.name: second.id}
            for name, key in expected.items():
                if stored_authors.get(name) != key:
                    mismatches.append(f"attempt {attempt}: {name} has key {key}, stored {stored_authors.get(name)}")
            if stored_books.get(book.title) != book.id:
                mismatches.append(
                    f"attempt {attempt}: {book.title} has key {book.id}, stored {stored_books.get(book.title)}"
                )
            count = len(stored_authors) + len(stored_books)
            assert count in (0, 3), f"attempt {attempt}: a multi-model add stored {count} of 3 rows"
            outcomes["stored" if count else "not stored"] += 1
        wrong_attempts = {int(m.split(":")[0].split()[1]) for m in mismatches}
        assert not mismatches, f"{len(wrong_attempts)} of {ATTEMPTS} attempts: {mismatches[:5]}"
        # The cancellations landed on both sides of the commit.
        assert outcomes["not stored"] > 0, outcomes
        assert outcomes["stored"] > 0, outcomes
        await db.remove_models(models)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_keys_match_storage_after_cancelled_single_model_add(make_driver: Callable[..., Driver]) -> None:
    """One model class: one atomic insert; its keys must say what is stored too."""
    rng = random.Random(7)
    async with Ommi(make_driver()) as db:
        await db.remove_models(models)
        await db.use_models(models)
        typical = await _typical_add_seconds(db, lambda n: (Author(f"s{n}"), Author(f"t{n}")))
        await db.find(Author).delete.or_raise()
        mismatches: list[str] = []
        outcomes = {"stored": 0, "not stored": 0}
        for attempt in range(ATTEMPTS):
            first, second = Author(f"s{attempt}"), Author(f"t{attempt}")
            task = asyncio.ensure_future(db.add(first, second).or_raise())
            await _stop_after(task, rng, attempt, typical)
            await asyncio.gather(task, return_exceptions=True)
            stored = {
                a.name: a.id
                for a in await (await db.find(Author.name.in_([first.name, second.name])).all.or_raise()).to_list()
            }
            for instance in (first, second):
                if stored.get(instance.name) != instance.id:
                    mismatches.append(f"attempt {attempt}: {instance.name} has key {instance.id}, stored {stored}")
            assert len(stored) in (0, 2), f"attempt {attempt}: stored {len(stored)} of 2 rows"
            outcomes["stored" if stored else "not stored"] += 1
        wrong_attempts = {int(m.split(":")[0].split()[1]) for m in mismatches}
        assert not mismatches, f"{len(wrong_attempts)} of {ATTEMPTS} attempts: {mismatches[:5]}"
        assert outcomes["not stored"] > 0, outcomes
        assert outcomes["stored"] > 0, outcomes
        await db.remove_models(models)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_keys_generated_in_a_transaction_say_whether_it_committed(make_driver: Callable[..., Driver]) -> None:
    """Keys set by adds inside ``db.transaction()`` are reset when it rolls back, kept when it commits."""
    rng = random.Random(9)
    async with Ommi(make_driver()) as db:
        await db.remove_models(models)
        await db.use_models(models)

        class Abort(Exception):
            pass

        async def failing() -> tuple[Author, Book]:
            author, book = Author("rolled back"), Book("rolled back")
            try:
                async with db.transaction() as tx:
                    await tx.add(author).or_raise()
                    await tx.save(book).or_raise()
                    assert author.id is not None and book.id is not None
                    raise Abort
            except Abort:
                pass
            return author, book

        author, book = await failing()
        assert (author.id, book.id) == (None, None)

        committed = Author("committed")
        async with db.transaction() as tx:
            await tx.add(committed).or_raise()
        assert committed.id is not None

        mismatches = []
        for attempt in range(40):
            first, second = Author(f"tx{attempt}"), Book(f"tx{attempt}")

            async def in_transaction(first: Author = first, second: Book = second) -> None:
                async with db.transaction() as tx:
                    await tx.add(first).or_raise()
                    await tx.add(second).or_raise()

            task = asyncio.ensure_future(in_transaction())
            await _stop_after(task, rng, attempt, 0.01)
            await asyncio.gather(task, return_exceptions=True)
            stored_author = await db.find(Author.name == first.name).one.or_use(None)
            stored_book = await db.find(Book.title == second.title).one.or_use(None)
            if (stored_author and stored_author.id) != first.id or (stored_book and stored_book.id) != second.id:
                mismatches.append((attempt, first, stored_author, second, stored_book))
        assert not mismatches, mismatches[:3]
        await db.remove_models(models)


async def test_an_add_cancelled_again_and_again_still_waits_for_its_insert() -> None:
    from ommi_testkit.reference import ReferenceDriver

    started, release = asyncio.Event(), asyncio.Event()

    class SlowInsert(ReferenceDriver):
        async def insert(self, schema, rows):  # type: ignore[no-untyped-def]
            started.set()
            await release.wait()
            return await super().insert(schema, rows)

    async with Ommi(SlowInsert()) as db:
        await db.use_models(models)
        author = Author("patient")
        task = asyncio.ensure_future(db.add(author).or_raise())
        await started.wait()
        for _ in range(3):
            task.cancel()
            await asyncio.sleep(0)
        assert not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        stored = await db.find(Author.name == "patient").one.or_raise()
        assert author.id == stored.id is not None
