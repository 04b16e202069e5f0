"""Settings of the MongoDB driver: what ``MongoDBDriver.connect`` accepts, checked without I/O.

A URL (``mongodb://`` or ``mongodb+srv://``) names the server and, in its path,
the database. A mapping gives the same through ``url`` and ``database`` plus the
driver's own settings; every other key is handed to
:class:`pymongo.AsyncMongoClient` unchanged (``maxPoolSize``, ``minPoolSize``,
``serverSelectionTimeoutMS``, ``tls``...), so the client keeps its own pool.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ommi.errors import ConfigurationError

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_SERVER_SELECTION_TIMEOUT_MS", "MongoSettings", "parse_settings"]

SCHEMES = ("mongodb", "mongodb+srv")

DEFAULT_HOST = "localhost:27017"
"""PyMongo's own default server, used when the settings name none."""

DEFAULT_URL = f"mongodb://{DEFAULT_HOST}/"

DEFAULT_BATCH_SIZE = 1000
"""Documents per batch for ``.all`` when neither the settings nor the query set one."""

DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 10_000
"""How long an operation waits for a usable server before failing (PyMongo's default is 30 s)."""

COUNTERS_COLLECTION = "_ommi_counters"
"""The collection holding one counter document per collection with a generated int key."""

SCHEMA_COLLECTION = "_ommi_schema"
"""The collection recording the model shape each collection was set up for."""

# Settings the driver consumes itself; the rest go to AsyncMongoClient.
_DRIVER_KEYS = frozenset(
    {"url", "host", "database", "batch_size", "counters_collection", "schema_collection", "collection_prefix"}
)

# Client options the driver fixes because its value mapping depends on them.
_FIXED = {"uuidRepresentation": "standard", "tz_aware": False, "document_class": dict}


@dataclass(frozen=True, slots=True)
class MongoSettings:
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
    """

    url: str
    database: str | None
    batch_size: int = DEFAULT_BATCH_SIZE
    counters_collection: str = COUNTERS_COLLECTION
    schema_collection: str = SCHEMA_COLLECTION
    collection_prefix: str = ""
    client_options: dict[str, Any] = field(default_factory=dict)

    @property
    def redacted_url(self) -> str:
        """The URL with any password replaced by ``***``."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` without its password, safe for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<not a URL>"
    authority, slash, tail = rest.partition("/")
    credentials, at, hosts = authority.rpartition("@")
    if not at:
        return url
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{hosts}{slash}{tail}"


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


def parse_settings(settings: str | Mapping[str, Any] | None, options: Mapping[str, Any]) -> MongoSettings:
    """Validate ``connect`` arguments without any I/O.

    Args:
        settings: a ``mongodb://`` / ``mongodb+srv://`` URL, or a mapping with
            ``url`` (or ``host``), ``database``, ``batch_size``,
            ``counters_collection``, ``schema_collection``,
            ``collection_prefix`` and client options.
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
            f"MongoDBDriver.connect() takes a mongodb:// URL or a mapping of settings, not {settings!r}"
        )
    values.update(options)
    if "host" in values and "url" not in values:
        values["url"] = values.pop("host")
    url = values.get("url") or DEFAULT_URL
    if not isinstance(url, str):
        raise ConfigurationError(f"the MongoDB URL must be a str, not {url!r}")
    if url.partition("://")[2].partition("/")[0].rpartition("@")[2] == "":
        # "mongodb://" or "mongodb:///app": no host given, so PyMongo's default one.
        scheme_part, _, rest = url.partition("://")
        url = f"{scheme_part}://{DEFAULT_HOST}{rest}" if rest.startswith("/") else f"{scheme_part}://{DEFAULT_HOST}/"
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"the MongoDB driver takes mongodb:// or mongodb+srv:// URLs, not {redact(url)!r}"
        )
    database = _check_database(values.get("database") or _database_from_url(url))
    batch_size = _check_batch_size(values.get("batch_size", DEFAULT_BATCH_SIZE))
    counters = _check_collection("counters_collection", values.get("counters_collection", COUNTERS_COLLECTION))
    shapes = _check_collection("schema_collection", values.get("schema_collection", SCHEMA_COLLECTION))
    prefix = values.get("collection_prefix", "")
    if prefix:
        _check_collection("collection_prefix", prefix)

    client_options = {k: v for k, v in values.items() if k not in _DRIVER_KEYS}
    for key, fixed in _FIXED.items():
        given = client_options.get(key, fixed)
        if given != fixed:
            raise ConfigurationError(
                f"the MongoDB driver needs the client option {key}={fixed!r} (values are mapped with it), "
                f"not {given!r}"
            )
        client_options[key] = fixed
    client_options.setdefault("serverSelectionTimeoutMS", DEFAULT_SERVER_SELECTION_TIMEOUT_MS)
    client_options.setdefault("appname", "ommi-mongodb")
    return MongoSettings(url, database, batch_size, counters, shapes, prefix, client_options)
