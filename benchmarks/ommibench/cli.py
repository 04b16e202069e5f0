"""``python benchmarks/run.py``: options, the run over each backend, and the outputs."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from ommibench.data import FULL, QUICK, Profile
from ommibench.memory import CHILD_FLAG, child_main

__all__ = ["main"]

BENCH_DIR = Path(__file__).resolve().parent.parent
RESULTS = BENCH_DIR / "results"
BACKEND_NAMES = ("sqlite", "postgresql", "mongodb")
BACKEND_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mongodb": "MongoDB"}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _names(text: str, allowed: tuple[str, ...] | None, what: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if allowed is not None and n not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed or ())}")
    return names


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    from ommibench.workloads import WORKLOADS

    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Ommi side by side with the raw async drivers and peer ORMs (workloads W1-W7).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small tables, one measured round: a smoke test that checks every result"
    )
    parser.add_argument(
        "--backends",
        type=lambda t: _names(t, BACKEND_NAMES, "backend"),
        default=list(BACKEND_NAMES),
        help="comma-separated: sqlite,postgresql,mongodb",
    )
    parser.add_argument(
        "--impls",
        type=lambda t: _names(t, None, "implementation"),
        default=None,
        help="comma-separated implementation keys (raw,raw-copy,ommi,sqlalchemy,tortoise); "
        "the raw baseline always runs",
    )
    parser.add_argument(
        "--workloads",
        type=lambda t: _names(t.upper(), WORKLOADS, "workload"),
        default=list(WORKLOADS),
        help="comma-separated: W1,...,W7",
    )
    parser.add_argument("--repeats", type=int, help="measured rounds (default: 7, quick: 1)")
    parser.add_argument("--warmup", type=int, help="untimed rounds first (default: 1)")
    parser.add_argument("--memory-repeats", type=int, help="W7 runs per implementation (default: 2, quick: 1)")
    parser.add_argument(
        "--require-servers",
        action="store_true",
        help="a backend whose server is missing fails the run (the full profile always does)",
    )
    parser.add_argument(
        "--profile",
        type=lambda t: _names(t, None, "implementation"),
        default=None,
        metavar="IMPLS",
        help="profile these implementations' timed calls with pyinstrument (reports in benchmarks/results/)",
    )
    parser.add_argument("--json", type=Path, help="where to write the JSON (default: results/latest[-quick].json)")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown tables to this file")
    return parser.parse_args(argv)


def _profile(args: argparse.Namespace) -> Profile:
    base = QUICK if args.quick else FULL
    changes = {
        name: getattr(args, name) for name in ("repeats", "warmup", "memory_repeats") if getattr(args, name) is not None
    }
    return dataclasses.replace(base, **changes)


async def _run_backend(name: str, args: argparse.Namespace, profile: Profile, profiles: Any) -> Any:
    from ommibench.backends import BACKENDS, BackendUnavailable
    from ommibench.report import BackendReport
    from ommibench.workloads import WorkloadRunner

    report = BackendReport(name)
    backend = BACKENDS[name](profile)
    try:
        target = await backend.connect()
    except BackendUnavailable as exc:
        must = args.require_servers or not args.quick
        report.status, report.reason = ("failed" if must else "skipped"), str(exc)
        if must:
            report.errors.append(str(exc))
        _log(f"{name}: {'FAILED' if must else 'skipped'}: {exc}")
        return report
    impls = []
    try:
        report.server_version = await backend.server_version()
        started = time.perf_counter()
        await backend.setup()
        _log(f"{name} {report.server_version}: tables set up and seeded in {time.perf_counter() - started:.1f} s")
        for cls in backend.implementations:
            if args.impls is not None and cls.key not in args.impls and not cls.is_baseline:
                continue
            impl = cls(target)
            try:
                await impl.open()
            except Exception as exc:
                report.errors.append(f"{cls.title} could not connect: {type(exc).__name__}: {exc}")
                _log(f"  {cls.title}: FAILED to connect: {exc}")
                continue
            impls.append(impl)
            report.implementations[impl.key] = {"title": impl.title, "versions": impl.versions()}
        if profiles is not None:
            profiles.backend = name
        runner = WorkloadRunner(backend, impls, profile, profiles.around if profiles is not None else None, _log)
        report.results = await runner.run(args.workloads)
    except Exception as exc:
        report.reason = f"{type(exc).__name__}: {exc}"
        report.errors.append(report.reason)
        _log(f"{name}: FAILED: {report.reason}")
    finally:
        for impl in impls:
            try:
                await impl.close()
            except Exception as exc:
                report.errors.append(f"{impl.title} failed to close: {type(exc).__name__}: {exc}")
        try:
            await backend.drop_everything()
        except Exception as exc:
            _log(f"{name}: could not drop the benchmark data: {exc}")
        await backend.close()
    if report.failures():
        report.status = "failed"
    return report


async def _run(args: argparse.Namespace, profile: Profile, profiles: Any) -> list[Any]:
    reports = []
    for name in args.backends:
        _log(f"\n== {name} ({profile.name} profile) ==")
        reports.append(await _run_backend(name, args, profile, profiles))
    return reports


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; 0 when every workload ran and returned the right results."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        return child_main(argv[1:])
    args = parse_args(argv)
    profile = _profile(args)

    from ommibench.report import header, machine, markdown
    from ommibench.workloads import titles

    profiles = None
    if args.profile:
        from ommibench.profiling import Profiles

        profiles = Profiles(set(args.profile), RESULTS)
    started = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    reports = asyncio.run(_run(args, profile, profiles))
    hotspots = profiles.write(_log) if profiles is not None else []

    tables = "\n".join(markdown(r, f"{BACKEND_TITLES[r.name]} {r.server_version}".strip()) for r in reports)
    failures = [failure for r in reports for failure in r.failures()]
    versions: dict[str, str] = {}
    for r in reports:
        for info in r.implementations.values():
            versions.update(info["versions"])
    document = {
        "profile": dataclasses.asdict(profile),
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - clock, 1),
        "machine": machine(),
        "versions": dict(sorted(versions.items())),
        "workloads": {w: t for w, (t, _) in titles(profile).items()},
        "backends": {r.name: r.to_json() for r in reports},
        "failures": failures,
        "hotspots": hotspots,
    }
    path = args.json or RESULTS / ("latest-quick.json" if args.quick else "latest.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    tables = header(document) + "\n" + tables
    if args.markdown:
        args.markdown.write_text(tables)
    print(tables)
    print(f"JSON: {path}")
    if failures:
        print(f"\n{len(failures)} failure(s):")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print(f"\nEvery workload returned the right results ({profile.name} profile, {document['duration_s']} s).")
    return 0
