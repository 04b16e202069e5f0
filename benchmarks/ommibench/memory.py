"""W7: peak memory growth while one implementation iterates a large table, each run in a fresh process.

A fresh process per measurement keeps the numbers honest: memory that earlier
workloads left in Python's allocator cannot hide growth, and nothing else runs
in it. The child opens the implementation, runs one small query (imports and
caches warmed), then samples its resident set size every 2 ms while it streams
the table; growth = peak RSS - RSS just before the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ommibench.impls.base import Target

__all__ = ["CHILD_FLAG", "child_main", "run_memory_child"]

CHILD_FLAG = "--w7-child"
MARKER = "OMMIBENCH-W7 "
RUN_PY = Path(__file__).resolve().parent.parent / "run.py"
_MB = 1024 * 1024
_SAMPLE_EVERY = 0.002


async def run_memory_child(target: Target, impl: type[Any], table: str, timeout: float) -> dict[str, Any]:
    """Measure the implementation class ``impl`` iterating ``table`` in a child process; the child's report.

    Raises:
        RuntimeError: the child failed or printed no report (its stderr is in the message).
        TimeoutError: it ran longer than ``timeout`` seconds (and was killed).
    """
    # The child imports only this implementation's module: nothing else adds to its memory or start-up.
    request = json.dumps(
        {"target": dataclasses.asdict(target), "impl": [impl.__module__, impl.__qualname__], "table": table}
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUN_PY),
        CHILD_FLAG,
        request,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await child.communicate()
    except TimeoutError:
        child.kill()
        await child.wait()
        raise
    reports = [line[len(MARKER) :] for line in out.decode().splitlines() if line.startswith(MARKER)]
    if child.returncode != 0 or not reports:
        tail = "\n".join(err.decode(errors="replace").strip().splitlines()[-8:])
        raise RuntimeError(f"the W7 child exited with {child.returncode}: {tail or 'no output'}")
    report: dict[str, Any] = json.loads(reports[-1])
    return report


def _rss() -> int:
    """Resident set size in bytes (Linux: /proc; elsewhere the peak so far, the best available)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class _Sampler(threading.Thread):
    """Records the largest RSS seen until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(_SAMPLE_EVERY):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _rss())
        return self.peak


async def _measure(target: Target, impl_path: list[str], table: str) -> dict[str, Any]:
    module, name = impl_path
    impl = getattr(importlib.import_module(module), name)(target)
    await impl.open()
    try:
        await impl.filtered(1)  # warm-up: imports, connections, compiled statements
        gc.collect()
        baseline = _rss()
        sampler = _Sampler()
        sampler.start()
        started = time.perf_counter()
        try:
            rows, id_sum = await impl.stream(table)
        finally:
            elapsed = time.perf_counter() - started
            peak = sampler.stop()
    finally:
        await impl.close()
    return {
        "rows": rows,
        "id_sum": id_sum,
        "baseline_mb": baseline / _MB,
        "peak_mb": peak / _MB,
        "growth_mb": max(0, peak - baseline) / _MB,
        "elapsed_s": elapsed,
    }


def child_main(argv: list[str]) -> int:
    """The child's entry point: ``run.py --w7-child '<json request>'``."""
    request = json.loads(argv[0])
    target = Target(**request["target"])
    report = asyncio.run(_measure(target, request["impl"], request["table"]))
    print(MARKER + json.dumps(report), flush=True)
    return 0
