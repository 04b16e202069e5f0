"""Settings: every form ``SQLiteDriver.connect`` and ``ommi.connect`` accept, and what they reject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ommi
import pytest
from ommi.drivers import Capabilities
from ommi.errors import ConfigurationError
from ommi_sqlite import SQLiteDriver, SQLiteSettings


def test_connect_without_arguments_is_a_private_memory_database() -> None:
    """``connect()`` gives an in-memory database with every default."""
    driver = SQLiteDriver.connect()
    assert driver.settings == SQLiteSettings()
    assert driver.settings.is_memory and driver.settings.shared_memory_name is None
    assert driver.description == "sqlite (in memory)"
    assert driver.default_batch_size == 1000


@pytest.mark.parametrize("argument", [":memory:", "", "sqlite://", "sqlite:///:memory:", "SQLITE://"])
def test_memory_forms(argument: str) -> None:
    """``":memory:"``, the empty path and the memory URLs all mean a private memory database."""
    driver = SQLiteDriver.connect(argument)
    assert driver.settings.is_memory
    assert driver.settings.shared_memory_name is None


@pytest.mark.parametrize(
    ("argument", "database"),
    [
        ("app.db", "app.db"),
        ("sqlite:///app.db", "app.db"),
        ("sqlite:///data/app.db", "data/app.db"),
        ("sqlite:////var/data/app.db", "/var/data/app.db"),
        ("sqlite:///my%20app.db", "my app.db"),
        ({"database": "app.db"}, "app.db"),
        (Path("data") / "app.db", str(Path("data") / "app.db")),
    ],
)
def test_file_forms(argument: Any, database: str) -> None:
    """Paths, ``sqlite:`` URLs (three slashes relative, four absolute) and mappings name a file."""
    driver = SQLiteDriver.connect(argument)
    assert driver.settings.database == database
    assert not driver.settings.is_memory
    assert driver.description == f"sqlite {database!r}"


def test_named_memory_uri_is_shared_memory() -> None:
    """A ``file:`` URI with ``mode=memory`` names a shared in-memory database."""
    driver = SQLiteDriver.connect("file:cache?mode=memory")
    assert driver.settings.is_memory
    assert driver.settings.shared_memory_name == "file:cache?mode=memory"
    assert not SQLiteDriver.connect("file:app.db?mode=rw").settings.is_memory


def test_every_setting_from_a_mapping() -> None:
    """Every documented setting is accepted from a mapping and keeps its type."""
    driver = SQLiteDriver.connect(
        {
            "database": "app.db",
            "pool_size": 2,
            "busy_timeout": 1,
            "batch_size": 50,
            "journal_mode": "DELETE",
            "synchronous": "full",
            "statement_cache_size": 0,
        }
    )
    assert driver.settings == SQLiteSettings("app.db", 2, 1.0, 50, "delete", "full", 0)
    assert isinstance(driver.settings.busy_timeout, float)
    assert driver.default_batch_size == 50


def test_url_query_settings_are_typed() -> None:
    """Settings in a URL's query are converted from text to the setting's type."""
    driver = SQLiteDriver.connect("sqlite:///app.db?busy_timeout=2.5&pool_size=3&batch_size=7&journal_mode=wal")
    assert (driver.settings.busy_timeout, driver.settings.pool_size, driver.settings.batch_size) == (2.5, 3, 7)
    assert driver.settings.database == "app.db"


def test_keyword_settings_override_the_url_and_the_mapping() -> None:
    """Keyword options win over the URL query and over mapping keys."""
    assert SQLiteDriver.connect("sqlite:///a.db?pool_size=3", pool_size=5).settings.pool_size == 5
    assert SQLiteDriver.connect({"database": "a.db", "batch_size": 3}, batch_size=9).default_batch_size == 9
    assert SQLiteDriver.connect("a.db", database="b.db").settings.database == "b.db"


@pytest.mark.parametrize(
    ("settings", "options"),
    [
        (None, {"pool": 3}),
        ({"databse": "x.db"}, {}),
        ("sqlite:///x.db?timeout=3", {}),
        ("sqlite:///x.db?database=y.db", {}),
    ],
)
def test_unknown_settings_are_configuration_errors(settings: Any, options: dict[str, Any]) -> None:
    """An unknown setting (keyword, mapping key or URL parameter) fails, listing the accepted ones."""
    with pytest.raises(ConfigurationError, match="busy_timeout") as caught:
        SQLiteDriver.connect(settings, **options)
    assert "unknown sqlite driver settings" in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [
        {"pool_size": 0},
        {"pool_size": "2"},
        {"pool_size": True},
        {"batch_size": 0},
        {"busy_timeout": -1},
        {"busy_timeout": "soon"},
        {"journal_mode": "fast"},
        {"synchronous": 2},
        {"statement_cache_size": -1},
        {"database": 42},
    ],
)
def test_bad_values_are_configuration_errors(options: dict[str, Any]) -> None:
    """A value of the wrong kind or out of range fails at connect, naming the setting."""
    (name,) = options
    with pytest.raises(ConfigurationError, match=name):
        SQLiteDriver.connect(**options)


@pytest.mark.parametrize("url", ["sqlite://example.com/app.db", "sqlite:///app.db?pool_size=many"])
def test_bad_urls_are_configuration_errors(url: str) -> None:
    """A URL with a host, or a setting that is not a number where one is needed, fails clearly."""
    with pytest.raises(ConfigurationError, match="sqlite"):
        SQLiteDriver.connect(url)


def test_connect_rejects_other_argument_types() -> None:
    """Only a path, a URL, a mapping or None are settings."""
    with pytest.raises(ConfigurationError, match="takes a path"):
        SQLiteDriver.connect(42)  # type: ignore[arg-type]


_DECLARED = Capabilities(
    migrations=True,
    inspection=True,
    constraints=True,
    savepoints=True,
    isolation_levels=True,
    row_locks=True,
    timeouts=True,
    update_expressions=True,
    upsert=True,
    raw_sql=True,
    case_insensitive_text=True,
    json_fields=True,
)
"""What the SQLite driver class declares."""


def test_audit_2_connect_never_mutates_class_defaults() -> None:
    """Audit item 2: ``connect`` with settings leaves the class and later drivers untouched."""
    before = (SQLiteDriver.default_batch_size, SQLiteDriver.capabilities)
    custom = SQLiteDriver.connect(":memory:", batch_size=5, pool_size=9)
    assert custom.default_batch_size == 5
    assert custom.capabilities.transaction_isolation is False
    expected = (1000, _DECLARED)
    assert (SQLiteDriver.default_batch_size, SQLiteDriver.capabilities) == before == expected
    fresh = SQLiteDriver.connect("app.db")
    assert fresh.default_batch_size == 1000 and fresh.settings.pool_size == 4
    assert fresh.capabilities == _DECLARED


def test_ommi_connect_uses_the_sqlite_driver_with_settings(tmp_path: Path) -> None:
    """``ommi.connect`` picks this driver for ``sqlite:`` URLs and passes keyword settings on."""
    db = ommi.connect(f"sqlite:///{tmp_path / 'app.db'}", batch_size=12)
    assert isinstance(db.driver, SQLiteDriver)
    assert db.driver.settings.database == str(tmp_path / "app.db")
    assert db.driver.default_batch_size == 12
    memory = ommi.connect("sqlite://")
    assert isinstance(memory.driver, SQLiteDriver) and memory.driver.settings.is_memory


SECRET = "Zk31337"


@pytest.mark.parametrize(
    "url",
    [f"sqlite://app:{SECRET}@/x.db", f"sqlite://app:{SECRET}/x@/x.db", f"sqlite://{SECRET}@localhost/x.db"],
)
def test_a_url_with_a_password_is_refused_without_showing_it(url: str) -> None:
    """sqlite URLs name no host; the refusal says so without quoting the user-info (often a password)."""
    with pytest.raises(ConfigurationError, match="names a host") as caught:
        SQLiteDriver.connect(url)
    assert SECRET not in str(caught.value)


def test_a_file_uri_is_shown_without_its_secret_options(tmp_path: Path) -> None:
    """A ``file:`` URI's secret-looking options are ``***`` in the description and the settings' repr."""
    uri = f"file:{tmp_path / 'x.db'}?mode=rwc&key={SECRET}"
    driver = SQLiteDriver.connect(uri)
    for shown in (driver.description, repr(driver), repr(driver.settings), driver.settings.display_name):
        assert SECRET not in shown
        assert "mode=rwc" in shown
    assert driver.settings.database == uri
