"""The testkit's pytest plugin (entry point ``pytest11: ommi_testkit``), loaded automatically.

It adds:

* ``--ommi-require-servers``: a test server that cannot be reached fails the
  tests that need it instead of skipping them (CI passes it so nothing skips
  silently); see :func:`ommi_testkit.servers.server_url`;
* one summary line for all the tests skipped because a server is unreachable
  (reported where ``server_url`` was called, not at each test);
* the marks of a suite's ``known_failures`` (strict xfail) and ``impossible``
  (skip) tables, applied at collection so they hold before any fixture runs;
* the ``ommi_requires(*capabilities)`` marker that
  :func:`ommi_testkit.requires` applies, registered so ``--strict-markers``
  accepts it;
* for applications' tests, the ``ommi_url`` and ``ommi_db`` fixtures and the
  ``--ommi-url`` option (see :mod:`ommi_testkit.fixtures`); they do nothing
  unless a test asks for them.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from ommi_testkit import fixtures, servers
from ommi_testkit.fixtures import ommi_db, ommi_url  # noqa: F401 - fixtures this plugin provides
from ommi_testkit.suites.base import REQUIRES_MARKER, apply_marking_tables


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ommi", "Ommi driver conformance")
    group.addoption(
        "--ommi-require-servers",
        action="store_true",
        default=False,
        dest=servers.REQUIRE_SERVERS_OPTION,
        help="fail, instead of skip, the tests whose database server (PostgreSQL, MongoDB...) cannot be reached",
    )
    group.addoption(
        "--ommi-url",
        default=None,
        dest=fixtures.URL_OPTION,
        metavar="URL",
        help=f"database for the ommi_url / ommi_db fixtures (default: ${fixtures.ENV_VAR}, else a temporary "
        "SQLite file); each xdist worker gets its own schema or database on it",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{REQUIRES_MARKER}(*capabilities): the test needs these driver capabilities; "
        "it skips, naming them, on a driver that declares them absent (use ommi_testkit.requires)",
    )
    servers._register_config(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the suite tests a driver lists in ``impossible`` (skip) or ``known_failures`` (strict xfail)."""
    for item in items:
        apply_marking_tables(item)


def pytest_unconfigure(config: pytest.Config) -> None:
    servers._unregister_config(config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Report server skips at the ``server_url`` call, so the summary shows them as one line."""
    report = yield
    excinfo = call.excinfo
    if report.skipped and excinfo is not None and isinstance(excinfo.value, servers.ServerSkip):
        # pytest places a fixture's skip at each test (one summary line per test);
        # one shared location lets it fold them all into a single line.
        path, lineno = excinfo.value.location
        report.longrepr = (path, lineno, f"Skipped: {excinfo.value.msg}")
    return report
