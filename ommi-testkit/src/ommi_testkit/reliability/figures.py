"""Figures the reliability workloads produce, collected across test processes.

Each workload returns a :class:`Figures`; the tests pass it to :func:`record`.
When ``OMMI_RELIABILITY_FIGURES`` names a directory, :func:`record` appends
the figures as one JSON line to a file of this process there (pytest-xdist
workers never write the same file); :mod:`ommi_testkit.reliability.report`
later sums them into the report. Without the variable nothing is written.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FIGURES_ENV", "Figures", "load", "record"]

FIGURES_ENV = "OMMI_RELIABILITY_FIGURES"


@dataclass(slots=True)
class Figures:
    """What one workload did on one backend.

    Attributes:
        section: the workload (``differential``, ``faults``, ``crash``,
            ``concurrency``, ``cancellation``, ``bad_input``, ``sql_text``, ``increments``).
        backend: ``reference``, ``sqlite``, ``postgresql``, ``mongodb`` (or a driver's name).
        profile: the profile it ran with.
        cases: generated cases run and compared.
        examples: generated examples (datasets, or property examples).
        faults: faults injected (backends terminated, processes killed).
        cancelled: tasks cancelled.
        tasks: tasks run.
        rows_verified: rows read back and checked.
        acknowledged: writes the database acknowledged.
        lost: acknowledged rows missing afterwards (must be 0).
        duplicated: rows stored more than once (must be 0).
        partial: writes stored in part where the driver promises all or nothing (must be 0).
        wrong_keys: instances whose key differs from what is stored, or is set
            while nothing was stored (must be 0).
        expected_errors: errors the workload provokes on purpose (a killed connection...).
        seconds: wall-clock duration.
        notes: narrowings of the generated domain and other remarks.
    """

    section: str
    backend: str
    profile: str = ""
    cases: int = 0
    examples: int = 0
    faults: int = 0
    cancelled: int = 0
    tasks: int = 0
    rows_verified: int = 0
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    partial: int = 0
    wrong_keys: int = 0
    expected_errors: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record(figures: Figures) -> None:
    """Append ``figures`` to this process's file under ``$OMMI_RELIABILITY_FIGURES`` (if set)."""
    folder = os.environ.get(FIGURES_ENV)
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with (path / f"figures-{os.getpid()}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(figures.as_dict(), sort_keys=True) + "\n")


def load(folder: Path) -> list[Figures]:
    """Every figure recorded under ``folder``."""
    found: list[Figures] = []
    for path in sorted(folder.glob("figures-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.append(Figures(**json.loads(line)))
    return found
