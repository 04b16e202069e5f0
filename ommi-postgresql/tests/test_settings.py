"""Where the driver's settings come from: URL, settings mapping, keyword options, PG* environment.

The first tests need no server (they check the resolved settings); the
``*_connects_*`` tests open real connections and look at them from the
server's side (``pg_stat_activity``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import ommi
import psycopg
import pytest
from ommi import Ommi
from ommi.errors import ConfigurationError, ConnectionError
from ommi_postgresql import DEFAULTS, PostgreSQLDriver
from ommi_postgresql._settings import DEFAULT_CONNECT_TIMEOUT
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PG_ENV = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGAPPNAME", "PGCONNECT_TIMEOUT", "PGSSLMODE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PG* variable of the developer's shell leaks into these tests."""
    for name in PG_ENV:
        monkeypatch.delenv(name, raising=False)


# -- resolution, no server -----------------------------------------------------


def test_url_parameters_and_ommi_settings_are_split() -> None:
    """libpq parameters pass through; Ommi's settings in the query string are taken out and typed."""
    driver = PostgreSQLDriver.connect(
        "postgresql://app:s3cret@db.invalid:6543/shop?sslmode=disable&schema=sales&pool_max_size=7&batch_size=50"
    )
    settings = driver.settings
    assert settings.params["host"] == "db.invalid"
    assert settings.params["port"] == "6543"
    assert settings.params["dbname"] == "shop"
    assert settings.params["sslmode"] == "disable"
    assert "schema" not in settings.params
    assert (settings.schema, settings.pool_max_size, settings.batch_size) == ("sales", 7, 50)
    assert driver.default_batch_size == 50


def test_postgres_scheme_is_accepted() -> None:
    """``postgres://`` means the same as ``postgresql://``."""
    driver = PostgreSQLDriver.connect("postgres://u@h.invalid/d")
    assert (driver.settings.params["host"], driver.settings.params["dbname"]) == ("h.invalid", "d")


def test_description_never_shows_the_password() -> None:
    """The description names user, host, port and database, never the password."""
    driver = PostgreSQLDriver.connect("postgresql://app:s3cret@db.invalid:6543/shop", schema="sales")
    assert driver.description == "postgresql://app@db.invalid:6543/shop (schema sales)"
    assert "s3cret" not in repr(driver)


def test_defaults_apply_when_nothing_is_set() -> None:
    """Pool and batch defaults are the documented ones; connect_timeout gets the driver's default."""
    settings = PostgreSQLDriver.connect().settings
    assert settings.pool_min_size == DEFAULTS["pool_min_size"]
    assert settings.pool_max_size == DEFAULTS["pool_max_size"]
    assert settings.pool_timeout == DEFAULTS["pool_timeout"]
    assert settings.pool_max_idle == DEFAULTS["pool_max_idle"]
    assert settings.pool_max_lifetime == DEFAULTS["pool_max_lifetime"]
    assert settings.batch_size == DEFAULTS["batch_size"]
    # No host, user or database is assumed: libpq and the environment decide.
    assert settings.params == {"connect_timeout": str(DEFAULT_CONNECT_TIMEOUT)}


def test_precedence_options_over_url_over_mapping() -> None:
    """Keyword options beat the URL, which beats the mapping's other entries."""
    mapping = {"url": "postgresql://u@url-host.invalid/urldb", "host": "map-host.invalid", "user": "mapuser"}
    settings = PostgreSQLDriver.connect(mapping).settings
    assert settings.params["host"] == "url-host.invalid"
    assert settings.params["dbname"] == "urldb"
    assert settings.params["user"] == "u"
    settings = PostgreSQLDriver.connect(mapping, host="option-host.invalid", pool_max_size=3).settings
    assert settings.params["host"] == "option-host.invalid"
    assert settings.pool_max_size == 3


def test_mapping_accepts_database_alias() -> None:
    """``database`` is accepted for libpq's ``dbname``."""
    settings = PostgreSQLDriver.connect({"host": "h.invalid", "database": "shop", "port": 5433}).settings
    assert settings.params == {"host": "h.invalid", "dbname": "shop", "port": "5433", "connect_timeout": "10"}


def test_environment_connect_timeout_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    """PGCONNECT_TIMEOUT, when set, is left to libpq instead of the driver's default."""
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "3")
    assert "connect_timeout" not in PostgreSQLDriver.connect("postgresql://h.invalid/d").settings.params


@pytest.mark.parametrize(
    ("source", "options", "fragment"),
    [
        ("mysql://h/d", {}, "postgresql://"),
        ("just-a-name", {}, "neither a URL nor a libpq connection string"),
        ("postgresql://h/d?bogus_param=1", {}, "bogus_param"),
        ({"no_such_libpq_option": 1}, {}, "no_such_libpq_option"),
        ("postgresql://h/d", {"pool_max_size": 0}, "pool_max_size"),
        ("postgresql://h/d", {"pool_timeout": "soon"}, "pool_timeout"),
        ("postgresql://h/d", {"pool_min_size": 5, "pool_max_size": 2}, "pool_min_size"),
        (42, {}, "URL"),
    ],
)
def test_bad_settings_raise_configuration_error(source: Any, options: dict[str, Any], fragment: str) -> None:
    """Unusable settings fail at connect() (before any I/O) with a message naming the problem."""
    with pytest.raises(ConfigurationError, match=fragment):
        PostgreSQLDriver.connect(source, **options)


SECRET = "Zk90210"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"postgresql://u:pw%zz{SECRET}@h.invalid/d", ["password", "'%'"]),
        (f"postgresql://u:{SECRET}@[::1/d", ["IPv6", "']'"]),
        (f"postgresql://u:{SECRET}/x@h.invalid/d", ["'@' after the URL's host part"]),
        (f"postgresql://u:{SECRET}?x@h.invalid/d", ["'@' after the URL's host part"]),
        (f"postgresql://u:{SECRET}@x@h.invalid/d", ["unescaped '@'"]),
        (f"postgresql://u:{SECRET}@h.invalid:port/d", ["port", "not a number"]),
        (f"postgresql://u@h.invalid/d?sslpassword=ab&{SECRET}", ["cannot be used"]),
        (f"postgresql://u@h.invalid/d?sslpassword=%zz{SECRET}", ["query string"]),
        (f"postgresql://u@h.invalid/d?sslpassword={SECRET}&=x", ["cannot be used"]),
        (SECRET, ["neither a URL nor a libpq connection string"]),
        (f"u:{SECRET}@h.invalid/d", ["neither a URL"]),
        (f"host=h.invalid password='{SECRET}", ["connection string", "not shown"]),
    ],
)
def test_a_malformed_url_is_refused_without_quoting_its_secrets(url: str, words: list[str]) -> None:
    """The message says what is wrong and where, never with the password or a secret option's value."""
    with pytest.raises(ConfigurationError) as caught:
        PostgreSQLDriver.connect(url)
    message = str(caught.value)
    for word in words:
        assert word in message
    assert SECRET.lower() not in message.lower()


def test_settings_repr_hides_passwords_and_secret_parameters() -> None:
    """``repr(driver.settings)`` (what a debugger or a log shows) has ``***`` for every secret parameter."""
    driver = PostgreSQLDriver.connect(
        f"postgresql://u:{SECRET}@h.invalid/d?sslpassword={SECRET}&passfile=%2F{SECRET}&sslmode=disable"
    )
    shown = repr(driver.settings)
    assert SECRET not in shown
    assert "'password': '***'" in shown
    assert "'sslmode': 'disable'" in shown
    assert SECRET not in repr(PostgreSQLDriver.connect("postgresql://u@h.invalid/d", password=SECRET).settings)
    # The settings still hold the values libpq needs.
    assert driver.settings.params["password"] == SECRET
    assert driver.settings.params["sslpassword"] == SECRET


def test_plugin_imports_no_client_and_registers_both_schemes() -> None:
    """The entry-point module imports no psycopg; ``ommi.connect`` picks the driver for both schemes."""
    code = (
        "import sys, ommi_postgresql.plugin as p\n"
        "assert 'psycopg' not in sys.modules, sorted(m for m in sys.modules if 'psycopg' in m)\n"
        "print(p.SPEC.schemes)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "('postgresql', 'postgres')" in result.stdout
    for url in ("postgresql://u@h.invalid/d", "postgres://u@h.invalid/d"):
        assert isinstance(ommi.connect(url).driver, PostgreSQLDriver)
    listed = {info.name: info for info in ommi.drivers()}
    assert listed["postgresql"].distribution == "ommi-postgresql"
    assert listed["postgresql"].capabilities == PostgreSQLDriver.capabilities


# -- against the server ----------------------------------------------------------


@pytest.fixture
def server(postgresql_url: str) -> dict[str, str]:
    """The test server's libpq parameters (host, port, user, dbname...)."""
    return {k: str(v) for k, v in conninfo_to_dict(postgresql_url).items()}


@pytest.fixture
def app_names(admin: psycopg.Connection[Any]) -> Callable[[str], list[str]]:
    """``databases(application_name)``: the databases our connections with that name are on."""

    def databases(name: str) -> list[str]:
        rows = admin.execute("SELECT datname FROM pg_stat_activity WHERE application_name = %s", [name]).fetchall()
        return [row[0] for row in rows]

    return databases


def _url(params: dict[str, str], **overrides: str) -> str:
    merged = {**params, **overrides}
    return make_conninfo("", **{k: v for k, v in merged.items() if v})


async def test_precedence_connects_with_each_source(
    server: dict[str, str],
    postgresql_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    app_names: Callable[[str], list[str]],
) -> None:
    """The server sees the application_name of the highest-precedence source: options > URL > mapping > env."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("PGAPPNAME", f"env_{tag}")
    base = dict(server)
    url = "postgresql://?" + urlencode({**base, "application_name": f"url_{tag}"})
    cases = [
        ("env", _url(base), {}),
        ("dict", {**base, "application_name": f"dict_{tag}"}, {}),
        ("url", {**base, "application_name": f"dict_{tag}", "url": url}, {}),
        ("option", {**base, "url": url}, {"application_name": f"option_{tag}"}),
    ]
    for winner, source, options in cases:
        driver = PostgreSQLDriver.connect(source, schema=postgresql_schema, **options)
        async with Ommi(driver):
            assert app_names(f"{winner}_{tag}") == [server["dbname"]], winner
        # The server notices the disconnection a moment after the pool closed.
        for _ in range(100):
            if not app_names(f"{winner}_{tag}"):
                break
            await asyncio.sleep(0.02)
        assert app_names(f"{winner}_{tag}") == [], f"{winner}: the pool did not close its connection"


async def test_environment_fills_what_the_url_leaves_out(
    server: dict[str, str],
    postgresql_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    app_names: Callable[[str], list[str]],
) -> None:
    """A URL naming no database and no user connects with PGDATABASE and PGUSER (libpq reads them)."""
    name = f"env_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)
    monkeypatch.setenv("PGDATABASE", server["dbname"])
    if "user" in server:
        monkeypatch.setenv("PGUSER", server["user"])
    if "password" in server:
        monkeypatch.setenv("PGPASSWORD", server["password"])
    host = server.get("host", "")
    port = server.get("port", "")
    url = f"postgresql://{host}{':' + port if port else ''}"
    driver = PostgreSQLDriver.connect(url, schema=postgresql_schema)
    assert server["dbname"] in driver.description
    async with Ommi(driver):
        assert app_names(name) == [server["dbname"]]


async def test_unreachable_server_raises_connection_error() -> None:
    """Opening a driver whose server does not answer fails with ConnectionError naming where it tried."""
    driver = PostgreSQLDriver.connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:1") as caught:
        await driver.open()
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    await driver.close()


async def test_missing_database_raises_connection_error(server: dict[str, str]) -> None:
    """A database that does not exist is reported at open() as a ConnectionError with the server's reason."""
    driver = PostgreSQLDriver.connect({**server, "dbname": f"ommi_missing_{uuid.uuid4().hex[:8]}"})
    with pytest.raises(ConnectionError, match="does not exist"):
        await driver.open()
    await driver.close()


async def test_errors_of_an_open_driver_never_show_the_urls_secrets(
    server: dict[str, str], postgresql_schema: str, admin: psycopg.Connection[Any]
) -> None:
    """A working URL holding a password and secret options: descriptions and a SchemaMismatchError hide them."""
    from dataclasses import dataclass

    from ommi import ModelCollection, ommi_model
    from ommi.errors import SchemaMismatchError

    table = f"secret_shape_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE TABLE "{postgresql_schema}"."{table}" (id TEXT PRIMARY KEY)')
    models = ModelCollection()

    @ommi_model(collection=models, name=table)
    @dataclass
    class Shape:
        size: int
        id: int | None = None

    # The test server trusts its clients, so a password (right or not) is accepted and ignored.
    query = urlencode({"sslpassword": SECRET, "sslmode": "disable", "schema": postgresql_schema})
    url = (
        f"postgresql://{server.get('user', '')}:{SECRET}@{server.get('host', '127.0.0.1')}:{server.get('port', 5432)}"
        f"/{server.get('dbname', '')}?{query}"
    )
    db = ommi.connect(url, allow_implicit_model_setup=False)
    try:
        async with db:
            with pytest.raises(SchemaMismatchError) as caught:
                await db.use_models(models)
    finally:
        admin.execute(f'DROP TABLE IF EXISTS "{postgresql_schema}"."{table}"')
    for shown in (str(caught.value), repr(db), db.driver.description, repr(db.driver), repr(db.driver.settings)):
        assert SECRET not in shown
    assert table in str(caught.value)
