"""Bad input: refused with a clear ommi.errors exception before anything is written, on every backend.

The loops live in :mod:`ommi_testkit.reliability.bad_input`, so that any
driver's tests can run them; these tests run them on the four backends.
Hostile names must work (quoted, never spliced) or be refused before
anything is created; names of system catalogs, driver tables and system
columns must work on the model's own table or be refused at definition or
set-up; very long values must round-trip (or be refused cleanly where the
database has a size limit); ``in_([])`` is not an error but matches
nothing, and ``not_in([])`` matches everything.
"""

from __future__ import annotations

from typing import Any

import pytest
from ommi import Ommi
from ommi_testkit.reliability import Profile, record
from ommi_testkit.reliability.bad_input import (
    BAD_VALUES,
    INVALID_NAMES,
    SYSTEM_FIELD_NAMES,
    SYSTEM_TABLE_NAMES,
    UNSUPPORTED_ANNOTATIONS,
    bad_value_workload,
    empty_membership_workload,
    hostile_name_workload,
    incompatible_comparison_problems,
    invalid_name_problems,
    long_value_workload,
    system_name_workload,
    unsupported_annotation_problem,
)

BACKENDS = ["reference", "sqlite", "postgresql", "mongodb"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_values_are_refused_before_anything_is_written(backend: Any, profile: Profile) -> None:
    """Every bad value, through add (alone and with a valid row), update, save and every condition form.

    Each raises the catalogue's ``ommi.errors`` class naming the field, and
    the database holds exactly what it held before.
    """
    async with Ommi(backend.make()) as db:
        figures, problems = await bad_value_workload(db, backend=backend.name, profile=profile.name)
    record(figures)
    assert problems == [], "\n".join(problems)
    assert figures.cases == len(BAD_VALUES) * 9


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_long_text_and_bytes_round_trip(backend: Any) -> None:
    """A million characters of text and a MiB of bytes round-trip exactly and can be found by equality.

    17 MiB of bytes (beyond MongoDB's 16 MiB document limit) either round-trips
    or is refused with an ommi.errors exception, the database unchanged.
    """
    async with Ommi(backend.make()) as db:
        problems = await long_value_workload(db)
    assert problems == []


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_hostile_names_work_or_are_refused_cleanly(backend: Any, profile: Profile) -> None:
    """Tables and columns named with quotes, SQL, placeholders, dots, ``$``, unicode, 70 characters.

    Each either works exactly (create, add, find by the column, update, delete,
    drop) or is refused by ``use_models`` with an ommi.errors exception; either
    way the other tables keep their rows.
    """
    async with Ommi(backend.make()) as db:
        figures, problems = await hostile_name_workload(db, backend=backend.name, profile=profile.name)
    record(figures)
    assert problems == [], "\n".join(problems)
    assert figures.cases > 0


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_system_names_work_on_their_own_table_or_are_refused(backend: Any, profile: Profile) -> None:
    """Models named ``pg_class``, ``sqlite_master``, ``_ommi_counters``..., fields named ``_id``, ``rowid``, ``xmin``...

    Each works on a table of its own (add, find by the field, update, delete,
    drop) or is refused with an ommi.errors exception when defined or set
    up; never does it read or write the database's or the driver's own
    object. Afterwards the other tables hold what they held and generated
    keys still work.
    """
    async with Ommi(backend.make()) as db:
        figures, problems = await system_name_workload(db, backend=backend.name, profile=profile.name)
    record(figures)
    assert problems == [], "\n".join(problems)
    skipped = sum(1 for note in figures.notes if note.startswith("field ") and " not run: " in note)
    assert figures.cases == len(SYSTEM_TABLE_NAMES) + len(SYSTEM_FIELD_NAMES) - skipped


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_input_empty_in_matches_nothing_and_empty_not_in_everything(backend: Any) -> None:
    """``in_([])`` is a valid condition matching no row; ``not_in([])`` matches every row, NULLs included."""
    async with Ommi(backend.make()) as db:
        problems = await empty_membership_workload(db)
    assert problems == []


def test_bad_input_incompatible_comparisons_are_query_errors() -> None:
    """Comparing fields of different storage types, text matches on non-text fields and other misuse."""
    assert incompatible_comparison_problems() == []


@pytest.mark.parametrize(("label", "annotation"), UNSUPPORTED_ANNOTATIONS, ids=[a for a, _ in UNSUPPORTED_ANNOTATIONS])
def test_bad_input_unsupported_field_types_are_refused(label: str, annotation: Any) -> None:
    """``@ommi_model`` refuses a field no codec serves, naming the model and the field."""
    assert unsupported_annotation_problem(annotation) is None


@pytest.mark.parametrize("name", INVALID_NAMES, ids=repr)
def test_bad_input_invalid_names_are_refused(name: Any) -> None:
    """Empty names, names with NUL and names that are not text: as a model name and as a StoreAs name."""
    assert invalid_name_problems(name) == []
