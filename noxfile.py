"""Developer sessions: ``nox -s tests lint typecheck build``.

Every session installs into its own virtual environment with uv from the
workspace lock file, so a session run here behaves like one in CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]
# A version named by a session (3.12, 3.13) that cannot be found is a failure, not a silent skip.
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PACKAGES = ["ommi-core", "ommi-sqlite", "ommi-postgresql", "ommi-mongodb", "ommi-testkit"]
PYRIGHT = "pyright==1.1.414"
"""The pyright release ``typecheck_docs`` checks with (bump it together with the baseline)."""


def _sync(session: nox.Session, *groups: str) -> None:
    """Install the locked workspace (all members, the dev group) into the session's venv."""
    env = {"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}
    session.run_install("uv", "sync", "--locked", "--all-packages", *groups, env=env, external=True)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite on two processes; absent servers skip with one line each.

    ``nox -s tests -- --ommi-require-servers`` makes an absent server a failure (CI does).
    """
    _sync(session)
    session.run("pytest", "-n", "2", "--dist", "worksteal", *session.posargs)


# The suites that need no server, on the other supported Pythons, kept to what the interpreter
# version can change so that CI's time stays bounded: core's tests and the SQLite driver's (its
# sqlite3 module changes between versions) with its conformance suite once, on a file. The
# in-memory and small-batch SQLite variants and the drivers' server code paths vary a setting,
# not the interpreter, and run on 3.11 in `tests`; the reference driver's conformance suite runs
# on the newest version only (it is pure Python, and 3.11 runs it too).
COMPAT_PATHS = ["ommi-core/tests", "ommi-sqlite/tests"]
COMPAT_NEWEST_ONLY = ["ommi-testkit/tests/test_reference_conformance.py"]
COMPAT_DESELECT = "not TestSQLiteMemoryConformance and not TestSQLiteSmallBatches"
COMPAT_PYTHONS = ["3.12", "3.13"]


@nox.session(python=COMPAT_PYTHONS)
def compat(session: nox.Session) -> None:
    """Core and SQLite suites on the other supported Pythons, the reference driver's on the newest."""
    _sync(session)
    paths = COMPAT_PATHS + (COMPAT_NEWEST_ONLY if session.python == COMPAT_PYTHONS[-1] else [])
    session.run("pytest", "-n", "2", "--dist", "worksteal", "-k", COMPAT_DESELECT, *paths, *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    _sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy, strict, on every published package."""
    _sync(session)
    session.run("mypy", *(f"{package}/src" for package in PACKAGES))


@nox.session(python="3.11")
def typecheck_docs(session: nox.Session) -> None:
    """mypy --strict and pyright on every Python example of README.md and docs/content, and the typing tests.

    Fails on an error that ``tools/typecheck_docs_baseline.txt`` (the known
    remaining errors, each with its reason) does not list. pyright comes from
    PyPI, pinned, so that its verdicts do not drift between runs.
    """
    _sync(session)
    session.install(PYRIGHT)
    session.run("python", "tools/typecheck_docs.py", *session.posargs)
    session.run("pytest", "-q", "-p", "no:randomly", "ommi-core/tests/test_typing.py")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation site with ``--strict`` (its examples run in the tests session)."""
    _sync(session, "--group", "docs")
    session.run("mkdocs", "build", "--strict", "-f", "docs/mkdocs.yml", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks (benchmarks/run.py): ``nox -s bench -- --quick --backends sqlite``."""
    _sync(session, "--group", "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python="3.11")
def stress(session: nox.Session) -> None:
    """Reliability workloads with the stress profile; writes ``benchmarks/reliability/report.{json,md}``.

    Needs PostgreSQL (``OMMI_TEST_POSTGRESQL_URL``, else the loopback server) and
    MongoDB (``OMMI_TEST_MONGODB_URL``; when unset, ``.ci/mongo-wire-server start``
    starts nx-27017, which keeps running: stop it with ``.ci/mongo-wire-server stop``).
    """
    import time

    _sync(session)
    figures = Path(session.create_tmp()) / "reliability-figures"
    shutil.rmtree(figures, ignore_errors=True)
    env = {"OMMI_RELIABILITY_PROFILE": "stress", "OMMI_RELIABILITY_FIGURES": str(figures)}
    if not os.environ.get("OMMI_TEST_MONGODB_URL"):
        started = session.run(str(ROOT / ".ci" / "mongo-wire-server"), "start", silent=True, external=True)
        urls = [line for line in str(started).split() if line.startswith("mongodb://")]
        if not urls:
            session.error(f"could not start the MongoDB wire server: {started}")
        env["OMMI_TEST_MONGODB_URL"] = urls[-1]
    began = time.monotonic()
    tests = ["pytest", "ommi-testkit/tests/reliability", "-n", "2", "--ommi-require-servers", "-q"]
    session.run(*tests, *session.posargs, env=env)
    seconds = f"{time.monotonic() - began:.0f}"
    report = ["-m", "ommi_testkit.reliability.report", str(figures), "--out", "benchmarks/reliability"]
    session.run("python", *report, "--min-cases", "20000", "--seconds", seconds, env=env)


@nox.session(python="3.11", venv_backend="none")
def build(session: nox.Session) -> None:
    """Build every sdist and wheel, then install core + each driver from the built files into fresh venvs.

    Each venv has no workspace sources; in it ``ommi drivers`` and ``ommi check`` run against the
    driver's database: a temporary SQLite file, and the servers named by ``OMMI_TEST_POSTGRESQL_URL``
    and ``OMMI_TEST_MONGODB_URL`` when set (CI sets both).
    """
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--all-packages", "--out-dir", str(dist), external=True)
    wheels = {p.name.split("-")[0].replace("_", "-"): p for p in dist.glob("*.whl")}
    sdists = list(dist.glob("*.tar.gz"))
    if sorted(wheels) != sorted(PACKAGES) or len(sdists) != len(PACKAGES):
        built = sorted(p.name for p in dist.iterdir())
        session.error(f"expected a wheel and an sdist for each of {PACKAGES}; built {built}")
    scratch = Path(session.create_tmp()).resolve()
    targets = {
        "ommi-sqlite": f"sqlite:///{scratch / 'check.db'}",
        "ommi-postgresql": os.environ.get("OMMI_TEST_POSTGRESQL_URL"),
        "ommi-mongodb": os.environ.get("OMMI_TEST_MONGODB_URL"),
    }
    for driver, url in targets.items():
        venv = scratch / f"venv-{driver}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run("uv", "venv", "--quiet", "--python", "3.11", str(venv), external=True)
        python = str(venv / "bin" / "python")
        session.run(
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            str(wheels["ommi-core"]),
            str(wheels[driver]),
            external=True,
        )
        ommi_command = str(venv / "bin" / "ommi")
        with session.chdir(scratch):
            session.run(ommi_command, "drivers", external=True)
            if driver == "ommi-sqlite":
                session.run(ommi_command, "demo", external=True)
                _docs_on_a_user_install(session, python)
            if url:
                session.run(ommi_command, "check", url, external=True)
            else:
                session.warn(f"{driver}: no server URL set, `ommi check` not run")


def _docs_on_a_user_install(session: nox.Session, python: str) -> None:
    """Run the documentation's examples with only the built ommi-core and ommi-sqlite installed.

    That is the install the guides promise (``pip install ommi-core ommi-sqlite``): no
    ommi-testkit, no other driver. pytest and pytest-asyncio are added to run the test; the
    examples themselves never import them. Pages written for readers who install
    ommi-testkit, and examples that need a server, skip with the reason
    (``ommi-core/tests/test_docs_examples.py``).
    """
    session.run("uv", "pip", "install", "--quiet", "--python", python, "pytest", "pytest-asyncio", external=True)
    test = str(ROOT / "ommi-core" / "tests" / "test_docs_examples.py")
    # --noconftest: the suite's conftest imports ommi-testkit, which this install lacks on purpose.
    options = ["--noconftest", "-p", "no:cacheprovider", "-q", f"--rootdir={ROOT}"]
    session.run(python, "-m", "pytest", test, *options, external=True)
