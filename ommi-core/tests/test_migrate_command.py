"""The issue's scenario through the ``ommi`` console script itself, on SQLite, PostgreSQL and MongoDB.

models v1 -> ``make`` -> ``apply`` -> rows added -> v2 (a field with a default, an
optional field, a new model with a unique field, an index) -> ``make`` -> ``apply`` -> the rows are still there with
the defaults and ``use_models()`` passes -> v3 (a field removed): ``make`` refuses
without ``--allow-destructive`` and succeeds with it; ``apply`` twice is a no-op;
``status`` lists every migration; two ``apply`` processes started together apply each
migration once. PostgreSQL works in a schema of this test (``?schema=``), MongoDB in a
database of its own; both skip with one line when the server is absent (and fail under
``--ommi-require-servers``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from ommi_testkit.servers import server_url, worker_namespace

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
from typing import Annotated

import ommi


@ommi.ommi_model(name="people")
@dataclass
class Person:
    name: str
    city: Annotated[str, ommi.Index] = "unknown"
    nickname: str | None = None
    id: int = ommi.generated_key()


@ommi.ommi_model(name="pets")
@dataclass
class Pet:
    name: Annotated[str, ommi.Unique]
    id: int = ommi.generated_key()
"""

V3 = """
from dataclasses import dataclass
from typing import Annotated

import ommi


@ommi.ommi_model(name="people")
@dataclass
class Person:
    name: str
    city: Annotated[str, ommi.Index] = "unknown"
    id: int = ommi.generated_key()


@ommi.ommi_model(name="pets")
@dataclass
class Pet:
    name: Annotated[str, ommi.Unique]
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


@pytest.fixture(params=["sqlite", "postgresql", "mongodb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of this test on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
    elif request.param == "postgresql":
        yield f"{request.getfixturevalue('postgresql_url')}?schema={request.getfixturevalue('postgresql_schema')}"
    else:
        from pymongo import MongoClient

        url = server_url("OMMI_TEST_MONGODB_URL", "mongodb://127.0.0.1:27017", probe=_probe_mongodb, what="MongoDB")
        name = worker_namespace("ommi_migrate_command", unique=True)
        base, _, query = url.partition("?")
        scheme, _, rest = base.partition("://")
        host = rest.split("/", 1)[0]
        with MongoClient(url, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(name)
            try:
                yield f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")
            finally:
                client.drop_database(name)


async def _probe_mongodb(url: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url, serverSelectionTimeoutMS=3000)
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


def test_make_apply_evolve_refuse_destructive_status(tmp_path: Path, database_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMMI_URL": database_url}
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
    second = sorted((tmp_path / "migrations").glob("0002_*.py"))
    assert len(second) == 1
    written = second[0].read_text(encoding="utf-8")
    assert "AddIndex(" in written and "- add index people.ix_people_city_" in written
    assert "IndexSpec(" in written and ", unique=True)" in written  # the pets' unique name, with the new table
    # Two processes apply at once: the migration lock lets one apply 0002, the other finds it applied.
    racers = [
        subprocess.Popen(
            [_ommi(), "migrate", "apply"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        outputs.append(out)
    assert sorted("Applied 0002_" in out for out in outputs) == [False, True], outputs
    assert sum("Nothing to apply" in out for out in outputs) == 1, outputs
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
