"""Tests of the application fixtures ``ommi_url`` and ``ommi_db`` (``ommi_testkit.fixtures``).

Each runs a small application's test session with ``pytester``, on the
default SQLite file, on given URLs, under pytest-xdist, and on the PostgreSQL
and MongoDB test servers when they are reachable.
"""

from __future__ import annotations

import os
from pathlib import Path

import ommi
import pytest
from ommi_testkit._namespaces import isolation_for
from ommi_testkit.servers import server_url

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
xfail_strict = true
addopts = --strict-markers -p no:cacheprovider -p no:hypothesispytest
filterwarnings = error
"""

# An application's models and a helper its tests use to report what they saw.
APP = '''
import os
from dataclasses import dataclass
from typing import Annotated

import ommi
from ommi import Key, ModelCollection, ommi_model


@ommi_model
@dataclass
class AppUser:
    name: str
    id: int | None = None


@ommi_model
@dataclass
class AppToken:
    code: Annotated[str, Key]


extra = ModelCollection("app_extra")


@ommi_model(collection=extra)
@dataclass
class AppThing:
    label: str
    id: int | None = None


def record(name, text):
    """Append a line to a report file in the project directory (read by the outer test)."""
    with open(os.path.join(os.environ["APP_REPORTS"], name), "a", encoding="utf-8") as file:
        file.write(text + "\\n")


async def table_exists(url, model):
    """Whether the model's table exists, seen by a connection of its own that creates nothing."""
    if url.startswith("mongodb"):
        # Reading a missing MongoDB collection is no error: ask the server for its collections.
        from pymongo import AsyncMongoClient

        client = AsyncMongoClient(url)
        try:
            return model.__name__ in await client.get_default_database().list_collection_names()
        finally:
            await client.close()
    async with ommi.connect(url, allow_implicit_model_setup=False) as other:
        try:
            await other.find(model).count.or_raise()
        except ommi.OperationalError:
            return False
    return True
'''

# Tests that pass only when every test starts on an empty database and the
# fixture drops what each test created.
FRESH_TESTS = """
import os
from app import AppThing, AppToken, AppUser, extra, record, table_exists


async def test_a_writes(ommi_db, ommi_url):
    record("urls", f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {ommi_url}")
    await ommi_db.add(AppUser("Ada"), AppUser("Grace")).or_raise()
    await ommi_db.add(AppToken("same")).or_raise()
    user = AppUser("saved through the active database")
    await user.save().or_raise()
    assert user.id == 3
    assert await ommi_db.find(AppUser).count.or_raise() == 3


async def test_b_starts_empty(ommi_db, ommi_url):
    assert not await table_exists(ommi_url, AppUser), "the previous test's table was not dropped"
    assert await ommi_db.find(AppUser).count.or_raise() == 0
    await ommi_db.add(AppToken("same")).or_raise()


async def test_c_explicit_collection(ommi_db):
    await ommi_db.use_models(extra)
    await ommi_db.add(AppThing("explicit")).or_raise()
    assert await ommi_db.find(AppThing).count.or_raise() == 1


async def test_d_explicit_collection_dropped(ommi_db, ommi_url):
    assert not await table_exists(ommi_url, AppThing), "a collection given to use_models was not dropped"
    await ommi_db.add(AppToken("same")).or_raise()
"""


@pytest.fixture
def app(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An application project (auto asyncio mode) whose tests report into ``reports/``."""
    monkeypatch.delenv("OMMI_TEST_URL", raising=False)
    # When this suite itself runs under xdist, the inner sessions must not look like one of its workers.
    for variable in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(variable, raising=False)
    reports = pytester.path / "reports"
    reports.mkdir()
    monkeypatch.setenv("APP_REPORTS", str(reports))
    pytester.makeini(INI.format(mode="auto"))
    pytester.makepyfile(app=APP)
    pytester.syspathinsert()
    return pytester


def _report(app: pytest.Pytester, name: str) -> list[str]:
    path = app.path / "reports" / name
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _urls_by_worker(app: pytest.Pytester) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for line in _report(app, "urls"):
        worker, url = line.split(" ", 1)
        seen.setdefault(worker, set()).add(url)
    return seen


async def _reachable(url: str) -> None:
    async with ommi.connect(url, allow_implicit_model_setup=False):
        pass


# -- without servers -------------------------------------------------------------


def test_fixtures_do_nothing_unless_asked_for(app: pytest.Pytester) -> None:
    """Tests that use no Ommi fixture run untouched, even with an unreachable --ommi-url and strict servers."""
    app.makepyfile(
        test_plain="""
        def test_sync():
            assert 1 + 1 == 2

        async def test_async():
            assert True
        """
    )
    result = app.runpytest("--ommi-url", "postgresql://postgres@127.0.0.1:1/none", "--ommi-require-servers")
    result.assert_outcomes(passed=2)
    assert not list(app.path.rglob("*.sqlite")), "no database may be created for tests that do not ask for one"


def test_fixtures_are_listed_with_the_option(app: pytest.Pytester) -> None:
    """``--fixtures`` shows ``ommi_url`` and ``ommi_db``; ``--help`` shows ``--ommi-url``."""
    app.runpytest("--fixtures").stdout.fnmatch_lines(["ommi_db *", "ommi_url *session*"])
    app.runpytest("--help").stdout.fnmatch_lines(["*--ommi-url=URL*"])


def test_ommi_db_sqlite_default_is_fresh_per_test(app: pytest.Pytester) -> None:
    """By default each test gets an empty SQLite database; the tables it created are dropped afterwards."""
    app.makepyfile(test_fresh=FRESH_TESTS)
    result = app.runpytest()
    result.assert_outcomes(passed=4)
    [url] = _urls_by_worker(app)["main"]
    assert url.startswith("sqlite:///") and url.endswith("test.sqlite")
    # pytester gives the inner session a basetemp next to its project directory.
    assert url.startswith(f"sqlite:///{app.path.parent}"), "the default database lives in pytest's temp directory"


def test_ommi_db_works_in_strict_asyncio_mode(app: pytest.Pytester) -> None:
    """The async fixture runs in pytest-asyncio's strict mode too (tests marked ``asyncio``)."""
    app.makeini(INI.format(mode="strict"))
    app.makepyfile(
        test_strict="""
        import pytest
        from app import AppUser

        @pytest.mark.asyncio
        async def test_strict(ommi_db):
            await ommi_db.add(AppUser("strict")).or_raise()
            assert await ommi_db.find(AppUser).count.or_raise() == 1
        """
    )
    app.runpytest().assert_outcomes(passed=1)


def test_ommi_db_drops_tables_left_by_own_connections(app: pytest.Pytester) -> None:
    """A test that wrote through its own connection to ``ommi_url`` does not leak rows into ``ommi_db``."""
    app.makepyfile(
        test_leftovers="""
        import ommi
        from app import AppUser

        async def test_a_own_connection(ommi_url):
            async with ommi.connect(ommi_url) as db:
                await db.add(AppUser("left behind")).or_raise()

        async def test_b_fixture_is_empty(ommi_db):
            assert await ommi_db.find(AppUser).count.or_raise() == 0
        """
    )
    app.runpytest().assert_outcomes(passed=2)


def test_ommi_url_comes_from_option_then_environment(app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--ommi-url`` wins over ``OMMI_TEST_URL``; a SQLite file URL gets a per-worker file, deleted afterwards."""
    app.makepyfile(test_fresh=FRESH_TESTS)
    from_env, from_option = app.path / "env.db", app.path / "option.db"
    monkeypatch.setenv("OMMI_TEST_URL", f"sqlite:///{from_env}")
    app.runpytest().assert_outcomes(passed=4)
    app.runpytest("--ommi-url", f"sqlite:///{from_option}?busy_timeout=2").assert_outcomes(passed=4)
    first, second = (url for line in _report(app, "urls") for url in line.split()[1:])
    assert first.startswith(f"sqlite:///{app.path / 'env_ommi_test_main_'}") and first.endswith(".db")
    assert second.startswith(f"sqlite:///{app.path / 'option_ommi_test_main_'}")
    assert second.endswith(".db?busy_timeout=2")
    assert not list(app.path.glob("*_ommi_test_*")), "the per-worker files must be deleted after the session"
    assert not from_env.exists() and not from_option.exists(), "the configured file itself is never touched"


def test_ommi_url_other_drivers_used_as_given(app: pytest.Pytester) -> None:
    """A URL of a driver without namespaces (here the reference driver) is used as given."""
    app.makepyfile(test_fresh=FRESH_TESTS)
    app.runpytest("--ommi-url", "reference://").assert_outcomes(passed=4)
    assert _urls_by_worker(app) == {"main": {"reference://"}}


def test_ommi_url_unknown_scheme_is_an_error(app: pytest.Pytester) -> None:
    """A URL no installed driver serves fails the tests using it, naming the scheme; it never skips."""
    app.makepyfile(test_fresh=FRESH_TESTS)
    result = app.runpytest("--ommi-url", "nosuchdb://somewhere/x")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*--ommi-url = nosuchdb://somewhere/x cannot be used*'nosuchdb'*"])


def test_unreachable_server_skips_with_one_line(app: pytest.Pytester) -> None:
    """An unreachable server skips every test using the fixtures in one summary line; strict mode fails them."""
    app.makepyfile(test_fresh=FRESH_TESTS)
    url = "postgresql://postgres:secret@127.0.0.1:1/none"
    result = app.runpytest("--ommi-url", url, "-rs")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]4[]] *PostgreSQL test database not reachable at postgresql://postgres:***@127.0.0.1:1/none*"]
    )
    assert "secret" not in result.stdout.str()
    strict = app.runpytest("--ommi-url", url, "--ommi-require-servers")
    strict.assert_outcomes(errors=4)
    strict.stdout.fnmatch_lines(["*--ommi-require-servers is set*"])


def test_ommi_db_under_xdist_sqlite(app: pytest.Pytester) -> None:
    """With ``-n 2`` each worker has its own SQLite database; tests writing the same keys never clash."""
    app.makepyfile(test_fresh=FRESH_TESTS, test_more=FRESH_TESTS)
    result = app.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=8)
    seen = _urls_by_worker(app)
    assert set(seen) <= {"gw0", "gw1"} and seen, seen
    assert all(len(urls) == 1 for urls in seen.values()), "one database per worker for the whole session"
    assert len({url for urls in seen.values() for url in urls}) == len(seen), "workers must not share a database"


@pytest.mark.parametrize(
    ("url", "isolated"),
    [
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db?schema=NS"),
        ("postgres://u@h/db?sslmode=disable&schema=app", "postgres://u@h/db?sslmode=disable&schema=NS"),
        ("mongodb://h1:1,h2:2/app?replicaSet=rs", "mongodb://h1:1,h2:2/NS?replicaSet=rs"),
        ("mongodb://h:27017", "mongodb://h:27017/NS"),
        ("sqlite:///data/app.db?busy_timeout=1", "sqlite:///data/app_NS.db?busy_timeout=1"),
        ("sqlite:////abs/app", "sqlite:////abs/app_NS"),
    ],
)
def test_isolated_urls(url: str, isolated: str) -> None:
    """Each kind of server URL is pointed at the worker's namespace, keeping its other settings."""
    isolation = isolation_for(url)
    assert isolation is not None
    assert isolation.isolate(url, "NS") == isolated


def test_isolation_prefix_follows_the_url() -> None:
    """A schema or database named in the URL starts the namespace's name; ``ommi_test`` otherwise."""
    postgresql = isolation_for("postgresql://h/db?schema=shop")
    mongodb = isolation_for("mongodb://h/shop")
    assert postgresql is not None and mongodb is not None
    assert postgresql.prefix("postgresql://h/db?schema=shop") == "shop"
    assert postgresql.prefix("postgresql://h/db") == "ommi_test"
    assert mongodb.prefix("mongodb://h/shop") == "shop"
    assert mongodb.prefix("mongodb://h") == "ommi_test"
    assert [isolation_for(u) for u in ("sqlite://", "sqlite:///:memory:", "reference://", "custom://x")] == [None] * 4


# -- on servers --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    """The PostgreSQL test server (skips with one line when unreachable)."""
    return server_url("OMMI_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test", _reachable, "PostgreSQL")


@pytest.fixture(scope="session")
def mongodb_url() -> str:
    """The MongoDB test server (skips with one line when unreachable)."""
    return server_url("OMMI_TEST_MONGODB_URL", "mongodb://127.0.0.1:27017/ommi_test", _reachable, "MongoDB")


PG_SCHEMA_TESTS = """
import os
import psycopg
from ommi_postgresql._settings import resolve
from app import AppToken


async def test_tables_live_in_the_worker_schema(ommi_db, ommi_url):
    await ommi_db.add(AppToken("here")).or_raise()
    schema = resolve(ommi_url, {}).schema
    assert schema.startswith("ommi_test_" + os.environ.get("PYTEST_XDIST_WORKER", "main"))
    async with await psycopg.AsyncConnection.connect(resolve(ommi_url, {}).conninfo) as conn:
        cursor = await conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'AppToken'"
        )
        assert schema in {row[0] for row in await cursor.fetchall()}
"""


def _pg_schemas(url: str) -> set[str]:
    import psycopg
    from ommi_postgresql._settings import resolve

    with psycopg.connect(resolve(url, {}).conninfo) as conn:
        return {row[0] for row in conn.execute("SELECT schema_name FROM information_schema.schemata")}


def test_ommi_db_postgresql_under_xdist(app: pytest.Pytester, postgresql_url: str) -> None:
    """On PostgreSQL with ``-n 2`` each worker works in a schema of its own, dropped after the session."""
    app.makepyfile(test_fresh=FRESH_TESTS, test_more=FRESH_TESTS, test_schema=PG_SCHEMA_TESTS)
    result = app.runpytest_subprocess("-n", "2", "--ommi-url", postgresql_url, "--ommi-require-servers")
    result.assert_outcomes(passed=9)
    seen = _urls_by_worker(app)
    assert seen and all(len(urls) == 1 for urls in seen.values()), seen
    schemas = {url.rpartition("schema=")[2] for urls in seen.values() for url in urls}
    assert len(schemas) == len(seen), "workers must not share a schema"
    assert all(s.startswith("ommi_test_gw") for s in schemas), schemas
    assert not schemas & _pg_schemas(postgresql_url), "the worker schemas must be dropped after the session"


def test_ommi_db_postgresql_keeps_the_urls_schema_as_prefix(app: pytest.Pytester, postgresql_url: str) -> None:
    """A ``schema=`` in the given URL names the worker schemas (``shop_main_<pid>``), never used itself."""
    app.makepyfile(test_fresh=FRESH_TESTS)
    separator = "&" if "?" in postgresql_url else "?"
    app.runpytest("--ommi-url", f"{postgresql_url}{separator}schema=shop").assert_outcomes(passed=4)
    [[url]] = _urls_by_worker(app).values()
    assert "schema=shop_main_" in url, url


def _mongo_databases(url: str) -> set[str]:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        return set(client.list_database_names())
    finally:
        client.close()


def test_ommi_db_mongodb(app: pytest.Pytester, mongodb_url: str) -> None:
    """On MongoDB each worker works in a database of its own, dropped after the session."""
    app.makepyfile(test_fresh=FRESH_TESTS)
    app.runpytest("--ommi-url", mongodb_url, "--ommi-require-servers").assert_outcomes(passed=4)
    [[url]] = _urls_by_worker(app).values()
    database = url.split("?")[0].rpartition("/")[2]
    assert database.startswith("ommi_test_main_"), url
    assert database not in _mongo_databases(mongodb_url), "the worker database must be dropped after the session"


def test_sqlite_isolation_deletes_worker_files(tmp_path: Path) -> None:
    """Isolation of a SQLite file deletes the per-worker file and its WAL companions."""
    isolation = isolation_for(f"sqlite:///{tmp_path / 'app.db'}")
    assert isolation is not None
    url = f"sqlite:///{tmp_path / 'app.db'}"
    worker_file = tmp_path / "app_NS.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{worker_file}{suffix}").write_bytes(b"x")
    isolation.drop(url, "NS")
    assert os.listdir(tmp_path) == []
