"""The run's report: Markdown tables for people, JSON for tools."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

from ommibench.stats import Measurement, WorkloadResult, ratio

__all__ = ["BackendReport", "header", "machine", "markdown"]


@dataclass
class BackendReport:
    """What one backend's run produced.

    Attributes:
        name: ``sqlite``, ``postgresql``, ``mongodb``.
        status: ``ok``, ``failed`` (some workload erred or was wrong) or ``skipped``.
        reason: why it was skipped or failed to run at all.
        server_version: the engine's version.
        implementations: key to {"title", "versions"}.
        results: one per workload run.
        errors: failures outside any workload (an implementation that could not connect).
    """

    name: str
    status: str = "ok"
    reason: str | None = None
    server_version: str = ""
    implementations: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[WorkloadResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        """``backend W# implementation: error`` for every failed measurement, then the other errors."""
        return [
            f"{self.name} {r.workload} {m.title}: {m.error}"
            for r in self.results
            for m in r.measurements.values()
            if m.error is not None
        ] + [f"{self.name}: {error}" for error in self.errors]

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "status": self.status,
            "reason": self.reason,
            "server_version": self.server_version,
            "implementations": self.implementations,
            "workloads": {r.workload: r.to_json() for r in self.results},
            "errors": self.errors,
        }


def machine() -> dict[str, Any]:
    """Where the run happened."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }


def header(document: dict[str, Any]) -> str:
    """The run's date, profile, machine and library versions, as Markdown."""
    box = document["machine"]
    servers = ", ".join(
        f"{name} {info['server_version']}" for name, info in document["backends"].items() if info["server_version"]
    )
    lines = [
        f"Run {document['started']} ({document['profile']['name']} profile, {document['duration_s']} s); "
        f"{box['implementation']} {box['python']} on {box['platform']}, {box['cpus']} CPUs; servers: {servers or '-'}.",
        "",
        "Libraries: " + ", ".join(f"{name} {version}" for name, version in document["versions"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _value(unit: str, seconds_or_mb: float) -> str:
    if unit == "MB":
        return f"{seconds_or_mb:.1f} MB"
    ms = seconds_or_mb * 1000
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def _cell(result: WorkloadResult, measurement: Measurement | None, baseline: float | None) -> str:
    if measurement is None:
        return "-"
    if measurement.error is not None:
        return "**FAILED**"
    median = measurement.median
    if median is None:
        return "-"
    text = _value(result.unit, median)
    spread = measurement.spread
    if spread is not None and len(measurement.samples) > 1:
        text += f" ±{spread:.0%}"
    # Memory growth is judged absolutely (it must stay flat); a ratio to a near-zero baseline means nothing.
    if measurement.key != "raw" and result.unit != "MB":
        factor = ratio(median, baseline)
        if factor is not None:
            text += f" ({factor:.2f}x)"
    return text


def markdown(report: BackendReport, title: str) -> str:
    """The backend's table: a row per workload, a column per implementation, ratios to the raw driver."""
    lines = [f"### {title}", ""]
    if report.status == "skipped":
        return "\n".join([*lines, f"Skipped: {report.reason}", ""])
    if report.reason:
        lines += [f"Did not complete: {report.reason}", ""]
    keys = list(report.implementations)
    header = ["workload", *(report.implementations[k]["title"] for k in keys)]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    for result in report.results:
        baseline = result.baseline()
        cells = [_cell(result, result.measurements.get(k), baseline) for k in keys]
        lines.append(f"| {result.workload} {result.title} | " + " | ".join(cells) + " |")
        elapsed_cells = _elapsed_cells(result, keys)
        if elapsed_cells is not None:
            lines.append(f"| {result.workload} (time to stream/iterate) | " + " | ".join(elapsed_cells) + " |")
    lines.append("")
    lines.append(
        "Median of the measured rounds ± half their interquartile range (ratio to the raw driver's median in this run)."
    )
    for failure in report.failures():
        lines.append(f"- FAILED {failure}")
    lines.append("")
    return "\n".join(lines)


def _elapsed_cells(result: WorkloadResult, keys: list[str]) -> list[str] | None:
    series = {k: m.extra.get("elapsed_s") for k, m in result.measurements.items()}
    if not any(series.values()):
        return None
    raw = series.get("raw")
    baseline = statistics.median(raw) if raw else None
    cells = []
    for key in keys:
        values = series.get(key)
        if not values:
            cells.append("-")
            continue
        median = statistics.median(values)
        text = _value("s", median)
        if key != "raw" and baseline:
            text += f" ({median / baseline:.2f}x)"
        cells.append(text)
    return cells
