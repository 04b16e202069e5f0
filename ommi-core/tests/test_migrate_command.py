"""The issue's scenario through the ``ommi`` console script itself, on a real SQLite file.

models v1 -> ``make`` -> ``apply`` -> rows added -> v2 (a field with a default, an
optional field, a new model) -> ``make`` -> ``apply`` -> the rows are still there with
the defaults and ``use_models()`` passes -> v3 (a field removed): ``make`` refuses
without ``--allow-destructive`` and succeeds with it; ``apply`` twice is a no-op;
``status`` lists every migration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

V1 = """
from dataclasses import dataclass

import ommi


@ommi.ommi_model(name="people")
@dataclass
class Person:
    name: str
    id: int = ommi.generated_key()
"""

V2 = """
from dataclasses import dataclass

import ommi


@ommi.ommi_model(name="people")
@dataclass
class Person:
    name: str
    city: str = "unknown"
    nickname: str | None = None
    id: int = ommi.generated_key()


@ommi.ommi_model(name="pets")
@dataclass
class Pet:
    name: str
    id: int = ommi.generated_key()
"""

V3 = """
from dataclasses import dataclass

import ommi


@ommi.ommi_model(name="people")
@dataclass
class Person:
    name: str
    city: str = "unknown"
    id: int = ommi.generated_key()


@ommi.ommi_model(name="pets")
@dataclass
class Pet:
    name: str
    id: int = ommi.generated_key()
"""

SCRIPT = """
import asyncio
import sys

import ommi
from app_models import Person


async def main(action: str) -> None:
    async with ommi.connect(sys.argv[2]) as db:
        if action == "add":
            await db.add(Person("ada"), Person("grace")).or_raise()
        else:
            await db.use_models()
            people = await db.find(Person).sort(ommi.asc(Person.name)).all.to_list()
            print([(p.name, p.city) for p in people])


asyncio.run(main(sys.argv[1]))
"""


def _ommi() -> str:
    command = shutil.which("ommi", path=os.path.dirname(sys.executable))
    if command is None:  # pragma: no cover - the workspace always installs the console script
        pytest.fail("the ommi console script is not installed next to this interpreter")
    return command


def test_make_apply_evolve_refuse_destructive_status(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMMI_URL": f"sqlite:///{tmp_path / 'app.db'}"}
    env.pop("OMMI_MODELS", None)
    env.pop("OMMI_MIGRATIONS", None)
    models = tmp_path / "app_models.py"
    (tmp_path / "script.py").write_text(SCRIPT)

    def ommi(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_ommi(), "migrate", *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    def script(action: str) -> str:
        completed = subprocess.run(
            [sys.executable, "script.py", action, env["OMMI_URL"]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stderr
        return completed.stdout.strip()

    models.write_text(textwrap.dedent(V1))
    made = ommi("make", "--models", "app_models", "--name", "people")
    assert made.returncode == 0, made.stderr
    assert ommi("apply").returncode == 0
    script("add")

    models.write_text(textwrap.dedent(V2))
    made = ommi("make", "--models", "app_models", "--name", "city and pets")
    assert made.returncode == 0, made.stderr
    applied = ommi("apply")
    assert applied.returncode == 0, applied.stderr
    assert script("list") == "[('ada', 'unknown'), ('grace', 'unknown')]"

    models.write_text(textwrap.dedent(V3))
    refused = ommi("make", "--models", "app_models")
    assert refused.returncode == 1
    assert "--allow-destructive" in refused.stderr + refused.stdout
    files = sorted(path.name for path in (tmp_path / "migrations").glob("*.py"))
    assert len(files) == 2, files  # the refusal wrote nothing
    made = ommi("make", "--models", "app_models", "--allow-destructive")
    assert made.returncode == 0, made.stderr
    assert ommi("apply").returncode == 0

    again = ommi("apply")
    assert again.returncode == 0, again.stderr
    status = ommi("status")
    assert status.returncode == 0, status.stderr
    ids = sorted(path.stem for path in (tmp_path / "migrations").glob("*.py") if path.stem[:4].isdigit())
    assert len(ids) == 3
    for migration_id in ids:
        assert migration_id in status.stdout
    assert "pending" not in status.stdout.lower()
    assert script("list") == "[('ada', 'unknown'), ('grace', 'unknown')]"
