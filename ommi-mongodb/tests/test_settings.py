"""The MongoDB driver's settings: where client options come from, and URLs shown without their secrets.

The first tests need no server. The last ones open the driver on the test
server (its options as PyMongo holds them) or on a closed loopback port (how
long failing takes).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from ommi.errors import ConfigurationError, ConnectionError, UnsupportedFeature
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._settings import (
    DEFAULT_JOURNAL_LEASE,
    DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
    DEFAULT_WRITE_BATCH_BYTES,
    JOURNAL_COLLECTION,
)

SECRET = "Zk27017"


def _options(driver: MongoDBDriver) -> dict[str, Any]:
    return {k.lower(): v for k, v in driver.settings.client_options.items()}


# -- precedence of client options, no server --------------------------------------


def test_url_options_are_not_overridden_by_the_drivers_defaults() -> None:
    """``?serverSelectionTimeoutMS=300`` in the URL is left to PyMongo, which reads it from the URL."""
    driver = MongoDBDriver.connect("mongodb://127.0.0.1:1/app?serverSelectionTimeoutMS=300&appName=shop")
    options = _options(driver)
    assert "serverselectiontimeoutms" not in options
    assert "appname" not in options


def test_url_option_names_compare_case_insensitively() -> None:
    """PyMongo's option names are case-insensitive, so a lower-case one in the URL counts too."""
    driver = MongoDBDriver.connect("mongodb://127.0.0.1:1/app?serverselectiontimeoutms=300")
    assert "serverselectiontimeoutms" not in _options(driver)


def test_defaults_apply_when_nothing_sets_the_option() -> None:
    """Without the option anywhere, the driver's defaults are passed to the client."""
    driver = MongoDBDriver.connect("mongodb://127.0.0.1:1/app")
    assert driver.settings.client_options["serverSelectionTimeoutMS"] == DEFAULT_SERVER_SELECTION_TIMEOUT_MS
    assert driver.settings.client_options["appname"] == "ommi-mongodb"


def test_keyword_options_win_over_the_url_and_the_mapping() -> None:
    """Keyword options are passed to the client, which lets them override the URL."""
    driver = MongoDBDriver.connect(
        {"url": "mongodb://127.0.0.1:1/app?serverSelectionTimeoutMS=300", "serverSelectionTimeoutMS": 400},
        serverselectiontimeoutms=500,
    )
    options = _options(driver)
    assert options["serverselectiontimeoutms"] == 500
    assert list(options).count("serverselectiontimeoutms") == 1


def test_the_url_wins_over_the_mappings_other_entries() -> None:
    """As for PostgreSQL: an option in the URL beats the same option among a mapping's entries."""
    driver = MongoDBDriver.connect(
        {"url": "mongodb://127.0.0.1:1/app?serverSelectionTimeoutMS=300", "serverSelectionTimeoutMS": 400}
    )
    assert "serverselectiontimeoutms" not in _options(driver)
    mapped = MongoDBDriver.connect({"url": "mongodb://127.0.0.1:1/app", "maxPoolSize": 3})
    assert mapped.settings.client_options["maxPoolSize"] == 3


def test_a_conflicting_fixed_option_in_the_url_is_refused() -> None:
    """The driver needs uuidRepresentation=standard, wherever another value is written."""
    with pytest.raises(ConfigurationError, match="uuidRepresentation"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app?uuidRepresentation=pythonLegacy")
    with pytest.raises(ConfigurationError, match="uuidRepresentation"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app?UUIDREPRESENTATION=javaLegacy")
    assert (
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app?uuidrepresentation=standard").settings.client_options[
            "uuidRepresentation"
        ]
        == "standard"
    )


def test_pymongos_complaints_about_the_url_come_at_connect() -> None:
    """A URL PyMongo cannot use fails at connect() with ConfigurationError (no I/O), not a ValueError at open()."""
    with pytest.raises(ConfigurationError, match="cannot be used"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app?authMechanismProperties=Malformed")
    with pytest.raises(ConfigurationError, match="cannot be used"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app?serverSelectionTimeoutMS=soon")


# -- secrets, no server -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hidden_as"),
    [
        (f"mongodb://u:{SECRET}@127.0.0.1:1/app", "u:***@"),
        (
            f"mongodb://127.0.0.1:1/app?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:{SECRET}",
            "authMechanismProperties=***",
        ),
        (f"mongodb://127.0.0.1:1/app?tlsCertificateKeyFilePassword={SECRET}", "tlsCertificateKeyFilePassword=***"),
        (f"mongodb://127.0.0.1:1/app?appname=a;tlsCertificateKeyFilePassword={SECRET}", "=***"),
    ],
)
def test_description_and_repr_hide_passwords_and_secret_options(url: str, hidden_as: str) -> None:
    """``description`` (in every error message), ``repr(driver)`` and ``repr(settings)`` never show a secret."""
    driver = MongoDBDriver.connect(url)
    assert hidden_as in driver.description
    for shown in (driver.description, repr(driver), repr(driver.settings)):
        assert SECRET not in shown
    assert SECRET not in repr(MongoDBDriver.connect("mongodb://127.0.0.1:1/app", password=SECRET).settings)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"mongodb://u:{SECRET}/x@127.0.0.1:1/app", ["'@' after the URL's host part", "percent-encode"]),
        (f"mongodb://u:{SECRET}?x@127.0.0.1:1/app", ["'@' after the URL's host part"]),
        (f"mongodb://u:{SECRET}@x@127.0.0.1:1/app", ["unescaped '@'"]),
        (f"mongodb://u:%zz{SECRET}@127.0.0.1:1/app", ["password", "'%'"]),
        (f"mongodb://u:{SECRET}@[::1:1/app", ["IPv6"]),
        (f"mongodb://u:{SECRET}@127.0.0.1:port/app", ["port"]),
        (f"mongodb://127.0.0.1:1/app?authMechanismProperties=AWS_SESSION_TOKEN{SECRET}", ["cannot be used"]),
        (f"u:{SECRET}@127.0.0.1:1/app", ["mongodb://", "not shown"]),
        (SECRET, ["not shown"]),
    ],
)
def test_a_malformed_url_is_refused_without_quoting_its_secrets(url: str, words: list[str]) -> None:
    """The message says what is wrong and where, never with the password or a secret option's value."""
    with pytest.raises(ConfigurationError) as caught:
        MongoDBDriver.connect(url)
    message = str(caught.value)
    for word in words:
        assert word in message
    assert SECRET.lower() not in message.lower()


# -- against a server, or a closed port ---------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _collect_leaked_sockets() -> None:
    # PyMongo's asyncio client leaks a socket when it is closed while its monitor
    # still connects to an absent server (see test_driver.py): collect it here.
    for _ in range(3):
        await asyncio.sleep(0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


async def test_url_options_reach_the_client(mongodb_url: str, make_driver: Callable[..., MongoDBDriver]) -> None:
    """Options written in the URL are what the opened AsyncMongoClient uses."""
    base = make_driver()
    separator = "&" if "?" in mongodb_url else "?"
    url = f"{mongodb_url}{separator}serverSelectionTimeoutMS=1234&appName=secret-check&maxPoolSize=3"
    driver = MongoDBDriver.connect(
        url, database=base.settings.database, collection_prefix=base.settings.collection_prefix
    )
    await driver.open()
    try:
        assert driver._client is not None
        options = driver._client.options
        assert options.server_selection_timeout == pytest.approx(1.234)
        assert options.pool_options.max_pool_size == 3
        assert options.pool_options.metadata["application"]["name"] == "secret-check"
    finally:
        await driver.close()


async def test_failing_takes_the_urls_server_selection_timeout() -> None:
    """On a closed loopback port, open() fails after the URL's 300 ms, not the driver's default 10 s."""
    driver = MongoDBDriver.connect(f"mongodb://u:{SECRET}@127.0.0.1:{_closed_port()}/app?serverSelectionTimeoutMS=300")
    started = time.perf_counter()
    try:
        with pytest.raises(ConnectionError) as caught:
            await driver.open()
    finally:
        await driver.close()
    elapsed = time.perf_counter() - started
    await _collect_leaked_sockets()
    assert elapsed < 3.0, f"open() took {elapsed:.1f} s to fail"
    assert SECRET not in str(caught.value)
    assert "u:***@" in str(caught.value)


async def test_messages_of_an_open_driver_never_show_the_urls_secrets(
    mongodb_url: str, make_driver: Callable[..., MongoDBDriver]
) -> None:
    """On a working URL holding a secret option, descriptions and the errors quoting them hide it."""
    from ommi.errors import UnsupportedFeature

    base = make_driver()
    separator = "&" if "?" in mongodb_url else "?"
    url = f"{mongodb_url}{separator}authMechanismProperties=AWS_SESSION_TOKEN:{SECRET}"
    driver = MongoDBDriver.connect(url, database=base.settings.database)
    await driver.open()
    try:
        shown = [driver.description, repr(driver), repr(driver.settings)]
        if not driver.capabilities.transactions:
            with pytest.raises(UnsupportedFeature) as caught:
                await driver.begin()
            shown.append(str(caught.value))
    finally:
        await driver.close()
    assert "authMechanismProperties=***" in driver.description
    for text in shown:
        assert SECRET not in text


# -- the driver's own settings: journal lease, write batches, reserved collections -----


def test_journal_lease_and_write_batch_bytes_are_settings() -> None:
    """Both default as documented, come from the mapping or keywords, and the driver reads them there."""
    default = MongoDBDriver.connect("mongodb://127.0.0.1:1/app")
    assert default.settings.journal_lease == DEFAULT_JOURNAL_LEASE == 30.0
    assert default.settings.write_batch_bytes == DEFAULT_WRITE_BATCH_BYTES == 16 * 1024 * 1024
    tuned = MongoDBDriver.connect({"url": "mongodb://127.0.0.1:1/app", "journal_lease": 2}, write_batch_bytes=4096)
    assert tuned.settings.journal_lease == 2.0 and isinstance(tuned.settings.journal_lease, float)
    assert tuned.settings.write_batch_bytes == 4096
    assert (tuned.journal_lease, tuned.write_batch_bytes) == (2.0, 4096)
    assert not {"journal_lease", "write_batch_bytes", "testserver_compat"} & set(tuned.settings.client_options)
    assert "journal_lease=2.0" in repr(tuned.settings)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "30", None])
def test_a_bad_journal_lease_is_refused(value: Any) -> None:
    """The lease is a finite number of seconds above zero."""
    with pytest.raises(ConfigurationError, match=r"journal_lease must be a number of seconds > 0"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app", journal_lease=value)


@pytest.mark.parametrize("value", [0, -5, DEFAULT_WRITE_BATCH_BYTES + 1, 1.5, False, "4096"])
def test_a_bad_write_batch_bytes_is_refused(value: Any) -> None:
    """The insert message size is an int from 1 byte to 16 MiB."""
    with pytest.raises(ConfigurationError, match=r"write_batch_bytes must be an int from 1 to 16777216"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app", write_batch_bytes=value)


@pytest.mark.parametrize("value", [None, True, False])
def test_testserver_compat_takes_none_true_or_false(value: bool | None) -> None:
    """``None`` (the default) decides from the server when opening; ``True``/``False`` decide."""
    driver = MongoDBDriver.connect("mongodb://127.0.0.1:1/app", testserver_compat=value)
    assert driver.settings.testserver_compat is value
    with pytest.raises(ConfigurationError, match=r"testserver_compat must be True, False or None"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app", testserver_compat="yes")


def test_counters_and_schema_collections_must_differ() -> None:
    """Counters and recorded shapes share ``_id`` values (collection names), so one collection cannot hold both."""
    with pytest.raises(ConfigurationError, match=r"counters_collection and schema_collection .* both 'meta'"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app", counters_collection="meta", schema_collection="meta")
    with pytest.raises(ConfigurationError, match=r"both '_ommi_schema'"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app", counters_collection="_ommi_schema")
    with pytest.raises(ConfigurationError, match=r"both '_ommi_counters'"):
        MongoDBDriver.connect({"url": "mongodb://127.0.0.1:1/app", "schema_collection": "_ommi_counters"})


@pytest.mark.parametrize("setting", ["counters_collection", "schema_collection"])
def test_the_journal_collection_is_refused_for_counters_or_schema(setting: str) -> None:
    """Neither of the driver's records may go to its journal's collection, ``_ommi_journal``."""
    with pytest.raises(ConfigurationError, match=rf"{setting} cannot be '_ommi_journal'.*journal"):
        MongoDBDriver.connect("mongodb://127.0.0.1:1/app", **{setting: JOURNAL_COLLECTION})
    assert JOURNAL_COLLECTION == "_ommi_journal"


@pytest.mark.parametrize(
    "given",
    [
        {"settings": "mongodb://127.0.0.1:27017/db?lock_timeout=2"},
        {"settings": {"url": "mongodb://127.0.0.1:27017/db", "lock_timeout": 2}},
    ],
)
def test_timeout_settings_are_refused_with_the_reason(given: dict[str, Any]) -> None:
    """``lock_timeout`` (the other drivers' setting) is refused, saying why (statement_timeout: see its tests)."""
    settings = given.pop("settings")
    with pytest.raises(ConfigurationError, match=r"no lock_timeout setting: .*WriteConflict"):
        MongoDBDriver.connect(settings, **given)


def test_for_update_and_transaction_timeouts_are_unsupported() -> None:
    """No row locks on MongoDB: the reason names the lock-field pattern; timeouts name the capability."""
    from ommi import Ommi

    driver = MongoDBDriver.connect("mongodb://127.0.0.1:27017/db")
    assert not driver.capabilities.row_locks and not driver.capabilities.timeouts
    assert "lock field" in (driver.absent_reason("row_locks") or "")
    with pytest.raises(UnsupportedFeature, match="'timeouts'"):
        Ommi(driver).transaction(lock_timeout=1)
