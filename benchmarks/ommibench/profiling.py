"""``--profile``: pyinstrument around one implementation's timed calls, and the hotspots it found.

Each (backend, workload, implementation) gets a profiler that is started and
stopped around every timed call, so the report covers exactly what the clock
measured. Time the event loop spends waiting (``[await]``: the database, or
aiosqlite's worker thread) is reported apart from Python time on the loop's
thread, which is what the mapping layer can make cheaper.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Hotspot", "Profiles", "hotspots"]

_AWAIT = "[await]"
_SELF = "[self]"


@dataclass(frozen=True)
class Hotspot:
    """A function's share of the profiled Python time (await time excluded)."""

    function: str
    where: str
    self_share: float
    total_share: float


def hotspots(root: Any, top: int = 15) -> tuple[list[Hotspot], float, float]:
    """The functions with the most self time under ``root`` (a pyinstrument frame).

    Returns:
        (hotspots by self time, seconds in Python, seconds awaiting).
    """
    own: dict[tuple[str, str], float] = {}
    inclusive: dict[tuple[str, str], float] = {}
    awaited = 0.0

    def walk(frame: Any, path: frozenset[tuple[str, str]]) -> None:
        nonlocal awaited
        if frame.identifier == _AWAIT:
            awaited += frame.time
            return
        if frame.is_synthetic:
            return
        key = (frame.function, f"{frame.file_path_short}:{frame.line_no}")
        cpu = frame.time - frame.await_time()
        own_time = frame.time - sum(c.time for c in frame.children if c.identifier != _SELF)
        own[key] = own.get(key, 0.0) + own_time
        if key not in path:  # recursion counts once
            inclusive[key] = inclusive.get(key, 0.0) + cpu
        for child in frame.children:
            walk(child, path | {key})

    walk(root, frozenset())
    python = max(root.time - awaited, 1e-12)
    ranked = sorted(own.items(), key=lambda item: item[1], reverse=True)[:top]
    spots = [Hotspot(fn, where, t / python, inclusive.get((fn, where), 0.0) / python) for (fn, where), t in ranked]
    return spots, python, awaited


class Profiles:
    """One pyinstrument profiler per (backend, workload, implementation) of the profiled implementations."""

    def __init__(self, impl_keys: set[str], directory: Path) -> None:
        self.impl_keys = impl_keys
        self.directory = directory
        self.backend = ""
        self._profilers: dict[tuple[str, str, str], Any] = {}

    @contextmanager
    def around(self, workload: str, impl: Any) -> Iterator[None]:
        """Profile this call when ``impl`` is one of the profiled implementations."""
        if impl.key not in self.impl_keys:
            yield
            return
        from pyinstrument import Profiler

        key = (self.backend, workload, impl.key)
        profiler = self._profilers.setdefault(key, Profiler(interval=0.0002, async_mode="enabled"))
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()

    def write(self, log: Any = print) -> list[dict[str, Any]]:
        """Write a text and an HTML report per profile and log the top hotspots; their JSON form."""
        self.directory.mkdir(parents=True, exist_ok=True)
        summary = []
        for (backend, workload, impl_key), profiler in sorted(self._profilers.items()):
            session = profiler.last_session
            if session is None:
                continue
            stem = self.directory / f"profile-{backend}-{workload}-{impl_key}"
            stem.with_suffix(".txt").write_text(profiler.output_text(unicode=True, show_all=False))
            stem.with_suffix(".html").write_text(profiler.output_html())
            root = session.root_frame(trim_stem=False)
            if root is None:
                continue
            spots, python, awaited = hotspots(root)
            log(
                f"\nHotspots of {impl_key} on {backend} {workload}: {python:.3f} s Python, {awaited:.3f} s awaiting "
                f"({stem.with_suffix('.txt').name})"
            )
            log("| function | where | self | incl. |\n|---|---|---:|---:|")
            for spot in spots:
                log(f"| `{spot.function}` | {spot.where} | {spot.self_share:.1%} | {spot.total_share:.1%} |")
            summary.append(
                {
                    "backend": backend,
                    "workload": workload,
                    "implementation": impl_key,
                    "python_s": python,
                    "await_s": awaited,
                    "hotspots": [spot.__dict__ for spot in spots],
                }
            )
        return summary
