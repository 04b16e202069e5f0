"""Helpers for drivers' migration tests: a slow migration file and ``apply`` in a process of its own.

A driver's own migration tests (processes applying at once, a run killed or
its connection terminated half-way) need the same two pieces on every
database, which live here:

* :func:`slow_step` writes the text of a migration ``0002_slow`` that adds
  ``count`` (an ``int`` with default 0) to a table, marks its run by adding a
  row, then waits: when ``$OMMI_TEST_HANG`` names a file it creates that file
  and sleeps ``$OMMI_TEST_HANG_SECONDS`` (default ten minutes: the test kills
  or cuts it off meanwhile), and it sleeps ``$OMMI_TEST_PAUSE`` seconds in any case.
* :func:`apply_process` starts ``python -c APPLY_SCRIPT``: ``ommi.migrations.apply``
  on a URL with driver settings, printing each migration it applied.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

__all__ = ["APPLY_SCRIPT", "apply_process", "slow_step", "wait_for_file"]


def slow_step(table: str, *, parent: str = "0001_initial") -> str:
    """The text of the migration ``0002_slow`` on ``table`` (a model with a ``label`` text field).

    The table's name travels as a Python literal, so any name works.
    """
    return textwrap.dedent(
        f"""
        import asyncio
        import os
        from pathlib import Path

        from ommi.migrations import AddField, FieldSpec

        id = "0002_slow"
        parent = {parent!r}

        operations = [AddField({table!r}, FieldSpec("count", "int", default=0))]


        async def run(db):
            Items = db.models[{table!r}]
            await db.add(Items(label="marker", count=1)).or_raise()
            signal = os.environ.get("OMMI_TEST_HANG")
            if signal:
                Path(signal).write_text("running")
                await asyncio.sleep(float(os.environ.get("OMMI_TEST_HANG_SECONDS", "600")))
            await asyncio.sleep(float(os.environ.get("OMMI_TEST_PAUSE", "0")))
        """
    )


APPLY_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import ommi
    from ommi import migrations

    async def main():
        settings = json.loads(sys.argv[3])
        async with ommi.connect(sys.argv[1], allow_implicit_model_setup=False, **settings) as db:
            for result in await migrations.apply(db, sys.argv[2]):
                print(result.id, flush=True)

    asyncio.run(main())
    """
)
"""A script applying the migrations of ``argv[2]`` to the URL ``argv[1]``, driver settings ``argv[3]`` (JSON)."""


def apply_process(
    url: str, directory: Path, settings: dict[str, Any] | None = None, **environment: str
) -> subprocess.Popen[str]:
    """Start :data:`APPLY_SCRIPT` in a new Python process; its output and errors are pipes (text)."""
    return subprocess.Popen(  # noqa: S603 - this interpreter and this module's own script
        [sys.executable, "-c", APPLY_SCRIPT, url, str(directory), json.dumps(settings or {})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **environment},
    )


def wait_for_file(path: Path, process: subprocess.Popen[str], *, timeout: float = 60) -> None:
    """Wait until ``path`` exists (the slow step reached its wait); fail if ``process`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the apply process ended first: {process.communicate()}")
        if time.monotonic() >= deadline:
            raise AssertionError("the migration never reached its data step")
        time.sleep(0.05)
