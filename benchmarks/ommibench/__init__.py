"""The side-by-side benchmark suite: Ommi, the raw async drivers and peer ORMs.

Run it with ``python benchmarks/run.py`` (or ``nox -s bench``); see
``benchmarks/README.md`` for the workloads and how results are measured.
"""
