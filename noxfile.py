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

ROOT = Path(__file__).parent
PACKAGES = ["ommi-core", "ommi-sqlite", "ommi-postgresql", "ommi-mongodb", "ommi-testkit"]


def _sync(session: nox.Session, *groups: str) -> None:
    """Install the locked workspace (all members, the dev group) into the session's venv."""
    env = {"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}
    session.run_install("uv", "sync", "--locked", "--all-packages", *groups, env=env, external=True)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite; servers that are absent skip with one line each."""
    _sync(session)
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    _sync(session)
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy, strict for ommi-core."""
    _sync(session)
    session.run("mypy", "ommi-core/src/ommi")


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


@nox.session(python="3.11", venv_backend="none")
def build(session: nox.Session) -> None:
    """Build every distribution, install the wheels into a fresh venv without the workspace, run ``ommi demo``."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--all-packages", "--out-dir", str(dist), external=True)
    wheels = sorted(str(p) for p in dist.glob("*.whl"))
    if len(wheels) != len(PACKAGES):
        session.error(f"expected {len(PACKAGES)} wheels, built {len(wheels)}: {wheels}")
    venv = Path(session.create_tmp()) / "installed"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("uv", "venv", "--python", "3.11", str(venv), external=True)
    python = str(venv / "bin" / "python")
    session.run("uv", "pip", "install", "--python", python, *wheels, external=True)
    workdir = session.create_tmp()
    with session.chdir(workdir):
        env = {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        session.run(python, "-c", "import ommi, ommi_sqlite, ommi_postgresql, ommi_mongodb, ommi_testkit", env=env)
        session.run(str(venv / "bin" / "ommi"), "drivers", env=env, external=True)
        session.run(str(venv / "bin" / "ommi"), "demo", env=env, external=True)
