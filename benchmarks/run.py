"""Ommi side by side with the raw async drivers and peer ORMs.

    uv run --group bench python benchmarks/run.py            # the full profile, every backend
    uv run --group bench python benchmarks/run.py --quick    # the CI smoke test
    nox -s bench -- --quick --backends sqlite,postgresql

See benchmarks/README.md. Exits non-zero when a workload errs or returns a wrong
result, never because of timings.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The harness package lives beside this script (benchmarks/ommibench/).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ommibench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
