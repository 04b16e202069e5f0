"""Settings for every test run from the repository root (the packages' own conftest files hold fixtures)."""

from __future__ import annotations

import gc

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what imports and collection made into the collector's permanent generation.

    Many tests call ``gc.collect()`` to surface, in the test that caused it, a
    ResourceWarning of something collected unclosed. A full collection walks
    every object alive; in a test process holding pytest, hypothesis, PyMongo,
    psycopg and every test module that is a good part of a second each time, and
    some tests collect hundreds of times. Frozen objects are skipped. Nothing a
    test makes is frozen (the freeze happens before the first test starts, after
    a collection that frees the garbage of imports), so no warning is hidden.
    """
    gc.collect()
    gc.freeze()
