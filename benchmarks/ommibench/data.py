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
    "BIG",
    "COLUMNS",
    "FULL",
    "QUICK",
    "STREAM",
    "TABLES",
    "USERS",
    "Profile",
    "Row",
    "chunks",
    "expected_filtered",
    "expected_updated",
    "lookup_ids",
    "make_row",
    "make_rows",
    "stream_checksum",
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
    warmup=1,
    repeats=1,
    memory_repeats=1,
)
