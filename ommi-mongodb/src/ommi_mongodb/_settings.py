"""Settings of the MongoDB driver: what ``MongoDBDriver.connect`` accepts, checked without I/O.

A URL (``mongodb://`` or ``mongodb+srv://``) names the server and, in its path,
the database. A mapping gives the same through ``url`` and ``database`` plus the
driver's own settings; every other key is handed to
:class:`pymongo.AsyncMongoClient` unchanged (``maxPoolSize``, ``minPoolSize``,
``serverSelectionTimeoutMS``, ``tls``...), so the client keeps its own pool.

A client option set in several places takes its value from the first of:
keyword options of ``connect``, the URL's query string, the other entries of a
settings mapping, the driver's defaults (:data:`DEFAULT_CLIENT_OPTIONS`). Option
names compare case-insensitively, as PyMongo compares them.
"""

from __future__ import annotations

import math
import urllib.parse
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ommi.drivers.urls import REDACTED, is_secret_option, redact_url, scrub_secrets, url_problem, url_scheme
from ommi.errors import ConfigurationError

__all__ = [
    "COUNTERS_COLLECTION",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CLIENT_OPTIONS",
    "DEFAULT_JOURNAL_LEASE",
    "DEFAULT_SERVER_SELECTION_TIMEOUT_MS",
    "DEFAULT_WRITE_BATCH_BYTES",
    "JOURNAL_COLLECTION",
    "MAX_STATEMENT_TIMEOUT",
    "SCHEMA_COLLECTION",
    "MongoDBSettings",
    "parse_settings",
]

SCHEMES = ("mongodb", "mongodb+srv")

DEFAULT_HOST = "localhost:27017"
"""PyMongo's own default server, used when the settings name none."""

DEFAULT_URL = f"mongodb://{DEFAULT_HOST}/"

DEFAULT_BATCH_SIZE = 1000
"""Documents per batch for ``.all`` when neither the settings nor the query set one."""

DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 10_000
"""How long an operation waits for a usable server before failing (PyMongo's default is 30 s)."""

DEFAULT_CLIENT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
    "appname": "ommi-mongodb",
}
"""Client options the driver sets when neither the URL, the settings nor the keyword options do."""

COUNTERS_COLLECTION = "_ommi_counters"
"""The collection holding one counter document per collection with a generated int key."""

SCHEMA_COLLECTION = "_ommi_schema"
"""The collection recording the model shape each collection was set up for."""

JOURNAL_COLLECTION = "_ommi_journal"
"""The collection of the journal under which writes of several documents run on a standalone server (fixed)."""

DEFAULT_JOURNAL_LEASE = 30.0
"""Seconds a write under the journal may go without a sign of life before another client takes it for dead."""

DEFAULT_WRITE_BATCH_BYTES = 16 * 1024 * 1024
"""The largest insert message the driver sends on a standalone server (16 MiB, also the most it accepts)."""

MAX_STATEMENT_TIMEOUT = 2_147_483.647
"""The largest ``statement_timeout`` in seconds: MongoDB's limit on ``maxTimeMS`` (2**31 - 1 ms)."""

# Settings the driver consumes itself; the rest go to AsyncMongoClient.
_DRIVER_KEYS = frozenset(
    {
        "url",
        "host",
        "database",
        "batch_size",
        "counters_collection",
        "schema_collection",
        "collection_prefix",
        "journal_lease",
        "write_batch_bytes",
        "testserver_compat",
        "statement_timeout",
    }
)

# Client options the driver fixes because its value mapping depends on them.
_FIXED = {"uuidRepresentation": "standard", "tz_aware": False, "document_class": dict}


@dataclass(frozen=True, slots=True)
class MongoDBSettings:
    """Validated settings of one driver.

    Attributes:
        url: the connection URL as given (may hold a password; never print it).
        database: the database the driver works in; ``None`` when the settings
            name none, which :meth:`MongoDBDriver.open` reports as an error.
        batch_size: documents per batch for ``.all``.
        counters_collection: where generated int keys are counted.
        schema_collection: where the shapes of set-up collections are recorded.
        collection_prefix: put before every model's collection name (several
            applications sharing one database); empty by default.
        client_options: keyword arguments for :class:`pymongo.AsyncMongoClient`.
        journal_lease: seconds a write under the journal (several documents
            on a standalone server) may go without a sign of life before
            another client takes it for dead and undoes it. Such a write renews
            its entry between steps (at most every quarter lease); a single
            step (one insert message of up to ``write_batch_bytes``, or one
            update of the documents a key update replaces) must finish within
            it. Left behind by a client that died, such a write stays visible
            half done for up to about two leases.
        write_batch_bytes: the largest insert message the driver sends on a
            standalone server (a bound on the documents' BSON size). An
            ``add`` that fits in one is sent as one message, all or nothing; a
            larger one is split and written under the journal.
        testserver_compat: write filters in the forms nx-27017 (the MongoDB
            wire-protocol server the tests run against) answers right
            (:mod:`ommi_mongodb._testserver_compat`); ``None`` decides from the
            server's ``buildInfo`` reply when the driver opens.
        statement_timeout: seconds any one operation the driver sends for a
            query or a write (find, count, insert, update, delete, key
            generation, a transaction's commit) may take, under PyMongo's
            client-side operation timeout (``pymongo.timeout``): each such call
            gets its own deadline, sent to the server as ``maxTimeMS``, and its
            expiry raises :class:`ommi.errors.TimeoutError` naming
            ``statement_timeout``. ``None`` (the default): no bound. Migrations,
            schema set-up and the journal's bookkeeping and recovery run
            without it. Cannot be combined with PyMongo's ``timeoutMS``.
    """

    url: str
    database: str | None
    batch_size: int = DEFAULT_BATCH_SIZE
    counters_collection: str = COUNTERS_COLLECTION
    schema_collection: str = SCHEMA_COLLECTION
    collection_prefix: str = ""
    client_options: dict[str, Any] = field(default_factory=dict)
    journal_lease: float = DEFAULT_JOURNAL_LEASE
    write_batch_bytes: int = DEFAULT_WRITE_BATCH_BYTES
    testserver_compat: bool | None = None
    statement_timeout: float | None = None

    @property
    def redacted_url(self) -> str:
        """The URL with its password and secret options replaced by ``***`` (:func:`ommi.drivers.urls.redact_url`)."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        options = {k: (REDACTED if is_secret_option(k) else v) for k, v in self.client_options.items()}
        return (
            f"MongoDBSettings(url={self.redacted_url!r}, database={self.database!r}, batch_size={self.batch_size!r}, "
            f"counters_collection={self.counters_collection!r}, schema_collection={self.schema_collection!r}, "
            f"collection_prefix={self.collection_prefix!r}, client_options={options!r}, "
            f"journal_lease={self.journal_lease!r}, write_batch_bytes={self.write_batch_bytes!r}, "
            f"testserver_compat={self.testserver_compat!r}, statement_timeout={self.statement_timeout!r})"
        )


def _url_options(url: str) -> dict[str, Any]:
    """The client options the URL's query string sets, by lower-cased PyMongo name, as written (no I/O).

    PyMongo's own parser checks the URL too (for ``mongodb+srv://`` only its
    options: the hosts come from DNS when the client starts). Its complaints
    are repeated without the URL's secrets.
    """
    from pymongo.errors import PyMongoError
    from pymongo.uri_parser import parse_uri, split_options

    query = url.partition("?")[2]
    problem = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if url.lower().startswith("mongodb://"):
                parse_uri(url, validate=True, warn=True)
            elif query:
                split_options(query, validate=True, warn=True)
            raw = split_options(query, validate=False, warn=True) if query else {}
    except Exception as exc:  # noqa: BLE001 - PyMongo's parser raises more than PyMongoError/ValueError
        if isinstance(exc, (PyMongoError, ValueError, TypeError)):
            problem = str(exc)
        else:
            problem = f"PyMongo could not parse it ({type(exc).__name__})"
    else:
        # PyMongo only warns about a bad value, then ignores it; Ommi refuses it. Unknown
        # option names stay warnings (the client repeats them, by name, when it starts).
        bad = [
            str(w.message)
            for w in caught
            if w.category is UserWarning and not str(w.message).startswith("Unknown option")
        ]
        problem = "; ".join(dict.fromkeys(bad)) or None
    if problem is not None:
        raise ConfigurationError(f"the MongoDB URL {redact_url(url)} cannot be used: {scrub_secrets(problem, url)}")
    return {str(name).lower(): value for name, value in raw.items()}


def _database_from_url(url: str) -> str | None:
    """The database named in a MongoDB URL's path (``mongodb://h1,h2/app?opts`` -> ``app``)."""
    _, _, rest = url.partition("://")
    # Hosts never contain "/" (UNIX socket paths are percent-encoded), so the
    # first "/" starts the path.
    _, slash, tail = rest.partition("/")
    if not slash:
        return None
    path = tail.split("?", 1)[0]
    name = urllib.parse.unquote(path)
    return name or None


def _check_database(name: Any) -> str | None:
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise ConfigurationError(f"the MongoDB database name must be a str, not {name!r}")
    bad = sorted({c for c in name if c in '/\\. "$\x00'})
    if bad or len(name.encode()) > 63:
        raise ConfigurationError(
            f"{name!r} cannot be a MongoDB database name: it must be at most 63 bytes without any of {bad or '/.$'}"
        )
    return name


def _check_batch_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"MongoDB batch_size must be an int >= 1, not {value!r}")
    return value


def _check_collection(setting: str, name: Any) -> str:
    if not isinstance(name, str) or not name or name.startswith("system.") or "$" in name or "\x00" in name:
        raise ConfigurationError(f"{setting} must be a plain collection name, not {name!r}")
    return name


def _check_own_collections(counters: str, shapes: str) -> None:
    """Refuse settings that would store two of the driver's own records in one collection."""
    for setting, name in (("counters_collection", counters), ("schema_collection", shapes)):
        if name == JOURNAL_COLLECTION:
            raise ConfigurationError(
                f"MongoDB {setting} cannot be {name!r}: the driver keeps its journal of interrupted writes "
                "there; choose another collection name"
            )
    if counters == shapes:
        raise ConfigurationError(
            f"MongoDB counters_collection and schema_collection must be two collections, not both {counters!r}: "
            "the driver keeps key counters and recorded model shapes under the same _id values; "
            "give them different names"
        )


def _check_journal_lease(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(
            f"MongoDB journal_lease must be a number of seconds > 0 (default {DEFAULT_JOURNAL_LEASE:g}), not {value!r}"
        )
    return float(value)


def _check_write_batch_bytes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= DEFAULT_WRITE_BATCH_BYTES:
        raise ConfigurationError(
            f"MongoDB write_batch_bytes must be an int from 1 to {DEFAULT_WRITE_BATCH_BYTES} (16 MiB, the "
            f"default: one insert message must stay one message for the server), not {value!r}"
        )
    return value


def _check_testserver_compat(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ConfigurationError(
            "MongoDB testserver_compat must be True, False or None (None: decided from the server's "
            f"buildInfo reply when the driver opens), not {value!r}"
        )
    return value


LOCK_TIMEOUT_REASON = (
    "MongoDB has no per-operation lock wait to bound: a write conflicting with a transaction fails at once "
    "(WriteConflict) instead of waiting; bound operations with statement_timeout instead"
)
"""Why the driver has no ``lock_timeout`` (setting, or ``db.transaction(lock_timeout=...)``)."""


def _refuse_timeouts(names: set[str]) -> None:
    if "lock_timeout" in names:
        raise ConfigurationError(f"the MongoDB driver has no lock_timeout setting: {LOCK_TIMEOUT_REASON}")


def _check_statement_timeout(value: Any, source: str) -> float | None:
    """``statement_timeout`` in seconds (a number; its text in the URL); ``None`` stays ``None``."""
    if value is None:
        return None
    seconds: Any = value
    if isinstance(value, str) and source == "in the URL":
        try:
            seconds = float(value)
        except ValueError:
            seconds = value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= MAX_STATEMENT_TIMEOUT  # also false for NaN; compares ints of any size exactly
    ):
        raise ConfigurationError(
            f"MongoDB statement_timeout ({source}) must be a number of seconds above 0 and at most "
            f"{MAX_STATEMENT_TIMEOUT} (MongoDB's limit on maxTimeMS), not {value!r}"
        )
    return float(seconds)


def _without_query_option(url: str, name: str) -> str:
    """``url`` without the query option ``name`` (compared case-insensitively), the rest left as written."""
    head, mark, query = url.partition("?")
    if not mark:
        return url
    kept = [part for part in query.split("&") if urllib.parse.unquote(part.partition("=")[0]).lower() != name]
    return f"{head}?{'&'.join(kept)}" if kept else head


def parse_settings(settings: str | Mapping[str, Any] | None, options: Mapping[str, Any]) -> MongoDBSettings:
    """Validate ``connect`` arguments without any I/O.

    Args:
        settings: a ``mongodb://`` / ``mongodb+srv://`` URL, or a mapping with
            ``url`` (or ``host``), ``database``, ``batch_size``,
            ``counters_collection``, ``schema_collection``,
            ``collection_prefix``, ``journal_lease``, ``write_batch_bytes``,
            ``testserver_compat``, ``statement_timeout`` and client options.
        options: keyword arguments of ``connect``; they override ``settings``.

    Without a URL (or host) the server is PyMongo's default, ``localhost:27017``.
    A missing database name is reported when the driver opens.

    Raises:
        ConfigurationError: a wrong scheme, a bad database name or value.
    """
    values: dict[str, Any] = {}
    if settings is None:
        pass
    elif isinstance(settings, str):
        values["url"] = settings
    elif isinstance(settings, Mapping):
        values.update(settings)
    else:
        raise ConfigurationError(
            f"MongoDBDriver.connect() takes a mongodb:// URL or a mapping of settings, not {type(settings).__name__}"
        )
    mapped = {k: v for k, v in values.items() if k not in _DRIVER_KEYS}
    values.update(options)
    if "host" in values and "url" not in values:
        values["url"] = values.pop("host")
    url = values.get("url") or DEFAULT_URL
    if not isinstance(url, str):
        raise ConfigurationError(f"the MongoDB URL must be a str, not {type(url).__name__}")
    scheme = (url_scheme(url) or "").lower()
    if scheme not in SCHEMES:
        shown = f"{scheme}:// URLs" if scheme else "a text without a scheme (not shown: it may hold a password)"
        raise ConfigurationError(f"the MongoDB driver takes mongodb:// or mongodb+srv:// URLs, not {shown}")
    if url.partition("://")[2].partition("/")[0].rpartition("@")[2] == "":
        # "mongodb://" or "mongodb:///app": no host given, so PyMongo's default one.
        scheme_part, _, rest = url.partition("://")
        url = f"{scheme_part}://{DEFAULT_HOST}{rest}" if rest.startswith("/") else f"{scheme_part}://{DEFAULT_HOST}/"
    problem = url_problem(url)
    if problem is not None:
        raise ConfigurationError(f"the MongoDB URL {redact_url(url)} cannot be used: {problem}")
    in_url = _url_options(url)
    _refuse_timeouts({*(str(k).lower() for k in values), *in_url})
    statement_timeout = _check_statement_timeout(values.get("statement_timeout"), "setting")
    if "statement_timeout" in in_url:
        # An Ommi setting, not a client option: PyMongo would warn of an unknown option.
        from_url = _check_statement_timeout(in_url.pop("statement_timeout"), "in the URL")
        url = _without_query_option(url, "statement_timeout")
        # As for client options: keyword options first, then the URL, then the mapping.
        if options.get("statement_timeout") is None:
            statement_timeout = from_url
    if statement_timeout is not None and (
        "timeoutms" in in_url or any(str(k).lower() == "timeoutms" for k in {*mapped, *options})
    ):
        raise ConfigurationError(
            "MongoDB statement_timeout and PyMongo's timeoutMS cannot both be set: statement_timeout bounds each "
            "query and write the driver sends with PyMongo's client-side timeout, which takes precedence over "
            "timeoutMS for them while timeoutMS alone bounds the rest (migrations, the journal); set one of them"
        )
    database = _check_database(values.get("database") or _database_from_url(url))
    batch_size = _check_batch_size(values.get("batch_size", DEFAULT_BATCH_SIZE))
    counters = _check_collection("counters_collection", values.get("counters_collection", COUNTERS_COLLECTION))
    shapes = _check_collection("schema_collection", values.get("schema_collection", SCHEMA_COLLECTION))
    _check_own_collections(counters, shapes)
    prefix = values.get("collection_prefix", "")
    if prefix:
        _check_collection("collection_prefix", prefix)
    journal_lease = _check_journal_lease(values.get("journal_lease", DEFAULT_JOURNAL_LEASE))
    write_batch_bytes = _check_write_batch_bytes(values.get("write_batch_bytes", DEFAULT_WRITE_BATCH_BYTES))
    testserver_compat = _check_testserver_compat(values.get("testserver_compat"))

    # Keyword options, then the URL (which PyMongo reads itself), then the mapping, then the defaults.
    client_options = {k: v for k, v in mapped.items() if k.lower() not in in_url}
    client_options.update((k, v) for k, v in options.items() if k not in _DRIVER_KEYS)
    for key, fixed in _FIXED.items():
        given = next((v for k, v in client_options.items() if k.lower() == key.lower()), fixed)
        written = in_url.get(key.lower())
        if given != fixed or (written is not None and str(written).lower() != str(fixed).lower()):
            raise ConfigurationError(
                f"the MongoDB driver needs the client option {key}={fixed!r} (values are mapped with it), "
                f"not {given if given != fixed else written!r}"
            )
        client_options = {k: v for k, v in client_options.items() if k.lower() != key.lower()}
        client_options[key] = fixed
    named = {k.lower() for k in client_options} | set(in_url)
    for key, default in DEFAULT_CLIENT_OPTIONS.items():
        if key.lower() not in named:
            client_options[key] = default
    return MongoDBSettings(
        url,
        database,
        batch_size,
        counters,
        shapes,
        prefix,
        client_options,
        journal_lease=journal_lease,
        write_batch_bytes=write_batch_bytes,
        testserver_compat=testserver_compat,
        statement_timeout=statement_timeout,
    )
