"""The benchmark data set, the profiles' sizes and the expected results.

Every implementation reads and writes the same rows, generated from the row
number alone, so the expected answer of each workload is computed here without
asking any database.

A row is ``(id, name, email, age, active, score)``:

* ``name`` is a permutation of the ids (``user-0123456``), so sorting by name
  shuffles the rows and every name is unique;
* ``age`` runs over 18..80, ``active`` is false for every third row;
* ``score`` is a multiple of 0.25, exactly representable in every backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "AUTHORS",
    "BIG",
    "COLUMNS",
    "FULL",
    "HOT_ROWS",
    "POSTS",
    "QUICK",
    "STREAM",
    "TABLES",
    "USERS",
    "AuthorWithPosts",
    "Group",
    "Profile",
    "Row",
    "chunks",
    "expected_filtered",
    "expected_groups",
    "expected_increments",
    "expected_prefetch",
    "expected_updated",
    "increment_plan",
    "lookup_ids",
    "make_row",
    "make_rows",
    "relation_rows",
    "stream_checksum",
    "upsert_rows",
]

Row = tuple[int, str, str, int, bool, float]
COLUMNS = ("id", "name", "email", "age", "active", "score")

USERS = "bench_users"
STREAM = "bench_stream"
BIG = "bench_big"
TABLES = (USERS, STREAM, BIG)
"""The three tables, all of the same shape: W1-W5 use the first, W6 the second, W7 the third."""

_PERMUTATION_PRIME = 1_000_003  # larger than every table, so names stay unique

FILTER_AGE = (30, 40)
"""W4: ``age between 30 and 40 and active``, sorted by name, limit 100."""
FILTER_LIMIT = 100
UPDATE_MIN_AGE = 60
"""W5: ``update score where age >= 60``, then count the rows holding the new score."""


def make_row(i: int) -> Row:
    """Row number ``i`` (1-based, also its id)."""
    return (
        i,
        f"user-{(i * 7919) % _PERMUTATION_PRIME:07d}",
        f"user{i}@example.org",
        18 + (i * 37) % 63,
        i % 3 != 0,
        ((i * 13) % 1000) / 4,
    )


def make_rows(count: int, start: int = 1) -> list[Row]:
    """Rows ``start`` .. ``start + count - 1``."""
    return [make_row(i) for i in range(start, start + count)]


def chunks(count: int, size: int) -> Iterator[list[Row]]:
    """All ``count`` rows in lists of at most ``size`` (seeding large tables without holding them)."""
    for start in range(1, count + 1, size):
        yield make_rows(min(size, count + 1 - start), start)


def lookup_ids(table_rows: int, count: int) -> list[int]:
    """W3: ``count`` ids in a scattered but reproducible order (repeats allowed past ``table_rows``)."""
    return [(j * 7907) % table_rows + 1 for j in range(count)]


def expected_filtered(rows: list[Row]) -> list[int]:
    """W4: the ids the filtered query returns, in order."""
    low, high = FILTER_AGE
    matching = sorted((r for r in rows if low <= r[3] <= high and r[4]), key=lambda r: r[1])
    return [r[0] for r in matching[:FILTER_LIMIT]]


def expected_updated(rows: list[Row]) -> int:
    """W5: how many rows the bulk update touches (and the count then finds)."""
    return sum(1 for r in rows if r[3] >= UPDATE_MIN_AGE)


HOT_ROWS = 10
"""W10: the increments all land on the first rows of the table, so tasks contend for them."""


def upsert_rows(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """W9: (the rows stored before the upsert, the rows it writes).

    The table holds the first half of ``rows``; the upsert writes every row
    with a changed ``age`` and ``score``, so half of it replaces stored rows and
    half inserts new ones. Afterwards the table must equal the written rows.
    """
    written = [(r[0], r[1], r[2], r[3] + 1, r[4], r[5] + 0.5) for r in rows]
    return rows[: len(rows) // 2], written


def increment_plan(tasks: int, per_task: int) -> list[list[int]]:
    """W10: for each concurrent task, the ids it increments one at a time, spread over the hot rows."""
    return [[(t + j) % HOT_ROWS + 1 for j in range(per_task)] for t in range(tasks)]


def expected_increments(plan: list[list[int]]) -> dict[int, int]:
    """W10: how much each hot row's ``age`` grows when every increment of ``plan`` lands."""
    grown: dict[int, int] = {}
    for ids in plan:
        for i in ids:
            grown[i] = grown.get(i, 0) + 1
    return grown


AUTHORS = "bench_authors"
POSTS = "bench_posts"
"""W12: ``bench_authors (id, name)`` and ``bench_posts (id, author_id -> bench_authors.id, title)``."""

AuthorWithPosts = tuple[int, str, list[tuple[int, int, str]]]
"""W12's answer per author: ``(id, name, [(post id, author_id, title), ...])``, posts ordered by id."""


def relation_rows(authors: int, posts_each: int) -> tuple[list[tuple[int, str]], list[tuple[int, int, str]]]:
    """W12: the authors and the posts; post ``p`` belongs to author ``(p - 1) % authors + 1``.

    The posts of one author are spread over the table (not stored together),
    as rows written over time are.
    """
    author_rows = [(i, f"author-{i:05d}") for i in range(1, authors + 1)]
    post_rows = [(p, (p - 1) % authors + 1, f"post {p}") for p in range(1, authors * posts_each + 1)]
    return author_rows, post_rows


def expected_prefetch(authors: int, posts_each: int) -> list[AuthorWithPosts]:
    """W12: every author (by id) with its posts (by id)."""
    author_rows, post_rows = relation_rows(authors, posts_each)
    by_author: dict[int, list[tuple[int, int, str]]] = {a[0]: [] for a in author_rows}
    for post in post_rows:
        by_author[post[1]].append(post)
    return [(a[0], a[1], by_author[a[0]]) for a in author_rows]


Group = tuple[int, int, int, float]
"""W11: one group of the grouped aggregate, ``(age, rows, sum of ids, mean score)``."""


def expected_groups(count: int) -> list[Group]:
    """W11: ``group by age`` over the first ``count`` rows with ``count(*)``, ``sum(id)``, ``avg(score)``, by age."""
    groups: dict[int, list[float]] = {}
    for i in range(1, count + 1):
        _, _, _, age, _, score = make_row(i)
        state = groups.setdefault(age, [0, 0, 0.0])
        state[0] += 1
        state[1] += i
        state[2] += score
    return [(age, int(n), int(total), scores / n) for age, (n, total, scores) in sorted(groups.items())]


def stream_checksum(count: int) -> tuple[int, int]:
    """W6/W7: (rows, sum of ids) that streaming a table of ``count`` rows must see."""
    return count, count * (count + 1) // 2


@dataclass(frozen=True)
class Profile:
    """How big each workload is and how often it runs.

    Attributes:
        name: ``full`` or ``quick``.
        users: rows of the W1-W5 table (W1 inserts this many, W2 fetches them).
        lookups: W3's sequential primary-key lookups.
        queries: W4's filtered queries.
        stream_rows: W6's streamed table.
        big_rows: W7's table iterated with ``.all``.
        increment_tasks: W10's concurrent tasks.
        increments_per_task: W10's atomic increments per task, one after another.
        authors: W12's authors.
        posts_per_author: W12's posts of each author.
        warmup: untimed rounds before the measured ones (W1-W6).
        repeats: measured rounds (W1-W6); each round runs every implementation once.
        memory_repeats: W7 runs per implementation, each in a fresh process.
    """

    name: str
    users: int
    lookups: int
    queries: int
    stream_rows: int
    big_rows: int
    increment_tasks: int
    increments_per_task: int
    authors: int
    posts_per_author: int
    warmup: int
    repeats: int
    memory_repeats: int


FULL = Profile(
    "full",
    users=10_000,
    lookups=1_000,
    queries=200,
    stream_rows=100_000,
    big_rows=1_000_000,
    increment_tasks=50,
    increments_per_task=20,
    authors=1_000,
    posts_per_author=10,
    warmup=1,
    repeats=7,
    memory_repeats=2,
)
QUICK = Profile(
    "quick",
    users=1_000,
    lookups=100,
    queries=20,
    stream_rows=10_000,
    big_rows=20_000,
    increment_tasks=10,
    increments_per_task=5,
    authors=1_000,
    posts_per_author=10,
    warmup=1,
    repeats=1,
    memory_repeats=1,
)
