"""Measurements and their summary: median, spread, ratio to the raw driver."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Measurement", "WorkloadResult"]


@dataclass
class Measurement:
    """One implementation's samples of one workload (seconds, or megabytes for W7).

    Attributes:
        key: the implementation's key (``raw``, ``ommi``...).
        title: its name in the report.
        samples: the measured rounds, warm-up excluded.
        error: why it failed (an exception or a wrong result); ``None`` when every round passed.
        extra: secondary series (e.g. W6's stream time) by name.
    """

    key: str
    title: str
    samples: list[float] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every round ran and returned the right result."""
        return self.error is None and bool(self.samples)

    @property
    def median(self) -> float | None:
        """The median sample, ``None`` without samples."""
        return statistics.median(self.samples) if self.samples else None

    @property
    def spread(self) -> float | None:
        """Half the interquartile range relative to the median (0.05 = ±5%); ``None`` below 2 samples.

        Quartiles rather than the range: on a shared machine one descheduled
        round would otherwise dominate the spread.
        """
        median = self.median
        if len(self.samples) < 2 or not median:
            return None
        low, _, high = statistics.quantiles(self.samples, n=4, method="inclusive")
        return (high - low) / 2 / median

    def to_json(self, baseline: float | None) -> dict[str, Any]:
        """The JSON form, with the ratio to ``baseline`` (the raw driver's median)."""
        median = self.median
        return {
            "title": self.title,
            "ok": self.ok,
            "error": self.error,
            "samples": self.samples,
            "median": median,
            "min": min(self.samples) if self.samples else None,
            "max": max(self.samples) if self.samples else None,
            "spread": self.spread,
            "ratio_to_raw": ratio(median, baseline),
            "extra": {
                name: {"samples": v, "median": statistics.median(v) if v else None} for name, v in self.extra.items()
            },
        }


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline``, ``None`` when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return value / baseline


@dataclass
class WorkloadResult:
    """Every implementation's measurement of one workload on one backend.

    Attributes:
        workload: ``W1`` .. ``W7``.
        title: what it does, with its size.
        unit: ``s`` (time), ``s-stall`` (largest event-loop stall) or ``MB`` (memory growth).
        measurements: by implementation key, in the backend's implementation order.
    """

    workload: str
    title: str
    unit: str
    measurements: dict[str, Measurement] = field(default_factory=dict)

    def baseline(self) -> float | None:
        """The raw driver's median."""
        raw = self.measurements.get("raw")
        return raw.median if raw is not None and raw.ok else None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        baseline = self.baseline()
        return {
            "title": self.title,
            "unit": self.unit,
            "results": {key: m.to_json(baseline) for key, m in self.measurements.items()},
        }
