"""Sum the figures of a reliability run into a report: JSON, and a short Markdown table.

::

    python -m ommi_testkit.reliability.report FIGURES_DIR --out benchmarks/reliability

reads every ``figures-*.jsonl`` under ``FIGURES_DIR`` (written by the tests
when ``OMMI_RELIABILITY_FIGURES`` is set), writes ``report.json`` and
``report.md`` into ``--out``, and exits with status 1 when a lost or
duplicated row, a write stored in part or an instance key that differs from
the stored one was recorded, or when a backend ran fewer generated cases
than ``--min-cases``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import Any

from ommi_testkit.reliability.figures import Figures, load

__all__ = ["build", "main", "markdown"]

_COUNTERS = (
    "cases",
    "examples",
    "faults",
    "cancelled",
    "tasks",
    "rows_verified",
    "acknowledged",
    "lost",
    "duplicated",
    "partial",
    "wrong_keys",
    "expected_errors",
)
_BACKENDS = ("reference", "sqlite", "postgresql", "mongodb")
_DISTRIBUTIONS = ("ommi-core", "ommi-sqlite", "ommi-postgresql", "ommi-mongodb", "ommi-testkit", "hypothesis")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def build(figures: list[Figures], *, seconds: float | None = None) -> dict[str, Any]:
    """The report's data: totals per backend, per section and backend, and the notes."""
    profiles = sorted({f.profile for f in figures if f.profile})
    by_backend: dict[str, dict[str, Any]] = defaultdict(lambda: dict.fromkeys(_COUNTERS, 0))
    sections: dict[tuple[str, str], dict[str, Any]] = {}
    notes: dict[str, list[str]] = defaultdict(list)
    for item in figures:
        backend = by_backend[item.backend]
        section = sections.setdefault((item.section, item.backend), {**dict.fromkeys(_COUNTERS, 0), "seconds": 0.0})
        for counter in _COUNTERS:
            value = getattr(item, counter)
            backend[counter] += value
            section[counter] += value
        section["seconds"] = round(section["seconds"] + item.seconds, 3)
        for note in item.notes:
            line = f"{item.section}: {note}"
            if line not in notes[item.backend]:
                notes[item.backend].append(line)
    order = {name: i for i, name in enumerate(_BACKENDS)}
    return {
        "profile": profiles[0] if len(profiles) == 1 else profiles,
        "generated": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _DISTRIBUTIONS},
        "seconds": seconds,
        "backends": {k: by_backend[k] for k in sorted(by_backend, key=lambda k: (order.get(k, 99), k))},
        "sections": [
            {"section": section, "backend": backend, **values}
            for (section, backend), values in sorted(
                sections.items(), key=lambda item: (item[0][0], order.get(item[0][1], 99))
            )
        ],
        "notes": dict(notes),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown document."""
    lines = [
        "# Ommi reliability report",
        "",
        f"Profile **{report['profile']}**, generated {report['generated']} with Python {report['python']}"
        + (f", {report['seconds']:.0f} s of tests" if report["seconds"] else "")
        + " (`nox -s stress`; the quick profile runs in the normal test suite). Lost and duplicated rows, "
        "writes stored in part and wrong instance keys must be 0; the run fails otherwise.",
        "",
        "| Backend | Generated cases | Bad-input checks | Faults injected | Tasks cancelled | Rows verified | "
        "Acknowledged writes | Lost rows | Duplicated rows | Partial writes | Wrong keys |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    per_section = {(row["section"], row["backend"]): row for row in report["sections"]}
    for name, totals in report["backends"].items():
        if name not in _BACKENDS:
            continue
        generated = per_section.get(("differential", name), {}).get("cases", 0)
        checks = sum(
            per_section.get((s, name), {}).get("cases", 0) for s in ("bad_input", "hostile_names", "system_names")
        )
        lines.append(
            f"| {name} | {generated:,} | {checks:,} | {totals['faults']:,} | {totals['cancelled']:,} | "
            f"{totals['rows_verified']:,} | {totals['acknowledged']:,} | {totals['lost']} | {totals['duplicated']} | "
            f"{totals['partial']} | {totals['wrong_keys']} |"
        )
    sql = per_section.get(("sql_text", "sqlite+postgresql"), {})
    lines += [
        "",
        "Generated cases: Hypothesis-generated operations (find, count, one, update, delete, add on generated "
        "data) run on the backend and on the reference driver with identical results required; the reference "
        "driver is the oracle, so it has none of its own. Bad-input checks: bad values through every entry "
        "point, hostile table and column names, and names of system catalogs, driver tables and system "
        "columns. Rows verified: rows read back and compared or checked against what was acknowledged. "
        "Partial writes: an add, update or transaction found stored in part where the driver promises all "
        "or nothing. Wrong keys: an instance whose key differs from the stored row's after an interrupted add.",
        "",
        "Workloads: `key_updates` (key-changing updates cancelled, timed out and, on PostgreSQL, hit by "
        "killed connections), `multi_add` (adds of two models and of more rows than one batch, cancelled), "
        "`close_race` (close() while operations and transactions run), `shared_transaction` (tasks streaming "
        "and writing through one transaction), `mixed_keys` (explicit keys, update(id=N) and generated keys at "
        "once), `retries` (concurrent withdrawals from pairs of accounts and deposits through `with_transaction` "
        "under serializable, rerun on serialization failures, also cancelled at random; expected errors count the "
        "reruns), alongside `differential`, `faults`, `crash`, `concurrency`, `cancellation`, `bad_input`, "
        "`hostile_names`, `system_names` and `sql_text`.",
        "",
        f"SQL text: {sql.get('examples', 0):,} generated queries, {sql.get('cases', 0):,} statement pairs "
        "compiled with the SQLite and PostgreSQL dialects; no value ever changed the SQL text.",
        "",
        "## By workload",
        "",
        "| Workload | Backend | Cases | Faults | Cancelled | Tasks | Rows verified | Lost | Duplicated | "
        "Partial | Wrong keys | Expected errors | Seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["sections"]:
        lines.append(
            f"| {row['section']} | {row['backend']} | {row['cases']:,} | {row['faults']:,} | {row['cancelled']:,} | "
            f"{row['tasks']:,} | {row['rows_verified']:,} | {row['lost']} | {row['duplicated']} | "
            f"{row['partial']} | {row['wrong_keys']} | {row['expected_errors']:,} | {row['seconds']:.1f} |"
        )
    if report["notes"]:
        lines += ["", "## Notes", ""]
        for backend, notes in report["notes"].items():
            lines.append(f"**{backend}**")
            lines.append("")
            lines += [f"- {note}" for note in notes]
            lines.append("")
    versions = ", ".join(f"{name} {version}" for name, version in report["versions"].items())
    lines += [f"Versions: {versions}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the report; 1 when a row was lost, duplicated or written in part, a key was wrong, or cases were few."""
    parser = argparse.ArgumentParser(prog="python -m ommi_testkit.reliability.report", description=__doc__)
    parser.add_argument("figures", type=Path, help="the directory OMMI_RELIABILITY_FIGURES named")
    parser.add_argument("--out", type=Path, required=True, help="where report.json and report.md go")
    parser.add_argument("--min-cases", type=int, default=0, help="differential cases each driver must have run")
    parser.add_argument("--seconds", type=float, default=None, help="the run's duration, for the report")
    args = parser.parse_args(argv)
    figures = load(args.figures)
    if not figures:
        print(f"no figures under {args.figures}", file=sys.stderr)
        return 1
    report = build(figures, seconds=args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "report.md").write_text(markdown(report), encoding="utf-8")
    failures = [
        f"{name}: {t['lost']} lost, {t['duplicated']} duplicated, {t['partial']} partial, {t['wrong_keys']} wrong keys"
        for name, t in report["backends"].items()
        if t["lost"] or t["duplicated"] or t["partial"] or t["wrong_keys"]
    ]
    for row in report["sections"]:
        if row["section"] == "differential" and row["cases"] < args.min_cases:
            failures.append(f"{row['backend']}: {row['cases']} differential cases, fewer than {args.min_cases}")
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"wrote {args.out / 'report.json'} and {args.out / 'report.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
