"""``ommi migrate``, through :mod:`ommi.migrations._cli` (what ``ommi.cli`` runs for ``migrate``)."""

from __future__ import annotations

import argparse
import contextlib
import io
import sqlite3
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from ommi.migrations import _cli

MODELS = """
from dataclasses import dataclass

import ommi

extra = ommi.ModelCollection("cli extra")


@ommi.ommi_model(name="cli_people_{token}")
@dataclass
class Person:
    name: str
    id: int = ommi.generated_key()


@ommi.ommi_model(collection=extra, name="cli_pets_{token}")
@dataclass
class Pet:
    name: str
    id: int = ommi.generated_key()
"""


RENAMED = """
from dataclasses import dataclass

import ommi

people = ommi.ModelCollection("cli people renamed")


@ommi.ommi_model(collection=people, name="cli_people_{token}")
@dataclass
class Person:
    full_name: str
    id: int = ommi.generated_key()
"""


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ommi")
    _cli.add_arguments(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["migrate", *argv])


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = _cli.main(_parse(*argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A project directory as the working directory, with a models module of a unique name."""
    module = f"cli_models_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(MODELS).format(token=module))
    monkeypatch.chdir(tmp_path)
    for variable in ("OMMI_URL", "OMMI_MODELS", "OMMI_MIGRATIONS"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path, module


def test_make_apply_status_down(project: tuple[Path, str]) -> None:
    """The loop from the command line: make, sql, apply, status, apply again, down."""
    root, module = project
    url = f"sqlite:///{root / 'app.db'}"
    code, out, _ = _run("make", "--models", module)
    assert (code, out) == (0, "Wrote migrations/0001_initial.py: review it, then commit it with the model change.\n")
    assert _run("make", "--models", module)[:2] == (0, "No changes: the models match the migrations in migrations.\n")
    code, out, _ = _run("sql", "--url", url)
    assert code == 0 and out.startswith("-- 0001_initial (migrations/0001_initial.py)\nCREATE TABLE")
    assert _run("status", "--url", url)[1].startswith("[ ] 0001_initial  pending")
    assert _run("apply", "--url", url)[:2] == (0, "Applied 0001_initial (migrations/0001_initial.py)\n")
    assert "is up to date" in _run("apply", "--url", url)[1]
    assert _run("status", "--url", url)[1].startswith("[x] 0001_initial  applied ")
    assert _run("down", "--url", url, "--to", "zero")[:2] == (0, "Undid 0001_initial (migrations/0001_initial.py)\n")


def test_make_with_a_collection_and_a_rename(project: tuple[Path, str]) -> None:
    """``MODULE:COLLECTION`` picks a collection; a refused change exits 1 and says what to write; --rename fixes it."""
    root, module = project
    assert _run("make", "--models", f"{module}:extra", "--dir", "pets")[0] == 0
    assert [p.name for p in (root / "pets").iterdir()] == ["0001_initial.py"]
    assert _run("make", "--models", module)[0] == 0
    renamed = f"renamed_{module}"
    (root / f"{renamed}.py").write_text(textwrap.dedent(RENAMED).format(token=module))
    code, _, err = _run("make", "--models", f"{renamed}:people")
    assert code == 1
    assert f"--rename cli_people_{module}.name=full_name" in err
    code, out, _ = _run(
        "make", "--models", f"{renamed}:people", "--rename", "Person.name=full_name", "--name", "renamed"
    )
    assert (code, out.split(":")[0]) == (0, "Wrote migrations/0002_renamed.py")


def test_settings_come_from_flags_then_environment_then_pyproject(
    project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flag wins over $OMMI_*, which wins over [tool.ommi] of the nearest pyproject.toml."""
    root, module = project
    (root / "pyproject.toml").write_text(
        f'[tool.ommi]\nurl = "sqlite:///from-file.db"\nmodels = "{module}"\nmigrations = "db/migrations"\n'
    )
    nested = root / "src" / "deep"
    nested.mkdir(parents=True)
    from_file = _cli.settings(_parse("status"), cwd=nested, environ={})
    assert from_file == {"url": "sqlite:///from-file.db", "models": module, "migrations": "db/migrations"}
    environment = {"OMMI_URL": "sqlite:///from-env.db", "OMMI_MIGRATIONS": "env-migrations"}
    assert _cli.settings(_parse("status"), cwd=root, environ=environment)["url"] == "sqlite:///from-env.db"
    flagged = _cli.settings(_parse("status", "--url", "sqlite:///flag.db", "--dir", "d"), cwd=root, environ=environment)
    assert (flagged["url"], flagged["migrations"]) == ("sqlite:///flag.db", "d")
    monkeypatch.chdir(root)
    assert _run("make")[0] == 0
    assert (root / "db" / "migrations" / "0001_initial.py").exists()


def test_errors_exit_2_without_secrets(project: tuple[Path, str]) -> None:
    """No URL, a server that cannot be reached, an unknown module: exit 2, one line, the password never shown."""
    code, _, err = _run("apply")
    assert code == 2 and "needs a database: --url URL, $OMMI_URL" in err
    code, _, err = _run("apply", "--url", "postgresql://user:hunter2@127.0.0.1:1/db")
    assert code == 2 and "cannot connect" in err and err.count("\n") == 1 and "hunter2" not in err
    code, _, err = _run("make", "--models", "no_such_module_here")
    assert code == 2 and "cannot be imported" in err
    code, _, err = _run("make")
    assert code == 2 and "--models MODULE[:COLLECTION]" in err


def test_lock_timeout_exits_1_and_applies_nothing(project: tuple[Path, str]) -> None:
    """``--lock-timeout``: while another connection holds SQLite's write lock, apply gives up, exit 1, nothing applied.

    A value that is not a finite number of seconds above 0 is refused (exit 2).
    """
    root, module = project
    url = f"sqlite:///{root / 'app.db'}"
    assert _run("make", "--models", module)[0] == 0
    with contextlib.closing(sqlite3.connect(root / "app.db", isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        code, _, err = _run("apply", "--url", url, "--lock-timeout", "0.3")
        assert time.monotonic() - started < 4  # not busy_timeout's 5 s
        holder.execute("ROLLBACK")
    assert code == 1 and "MigrationTimeoutError" not in err and "lock_timeout=0.3 s" in err, err
    assert _run("status", "--url", url)[1].startswith("[ ] 0001_initial  pending")
    code, _, err = _run("apply", "--url", url, "--lock-timeout", "0")
    assert code == 2 and "finite number of seconds above 0" in err
    with pytest.raises(SystemExit):
        _parse("apply", "--lock-timeout", "soon")
    assert _run("apply", "--url", url, "--lock-timeout", "5")[0] == 0
