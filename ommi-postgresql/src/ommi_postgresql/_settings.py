"""Where the driver's settings come from, and their defaults.

Sources, highest precedence first:

1. keyword options of :meth:`PostgreSQLDriver.connect` (what ``ommi.connect(url, **settings)`` passes);
2. the URL (``postgresql://user:pw@host:5432/db?sslmode=require&schema=app``), also
   when given as the ``"url"`` entry of a settings mapping;
3. the other entries of a settings mapping (``{"host": ..., "dbname": ...}``);
4. libpq's own environment variables (``PGHOST``, ``PGPORT``, ``PGUSER``,
   ``PGPASSWORD``, ``PGDATABASE``, ``PGSSLMODE``...), read by libpq itself for
   every connection parameter none of the above sets;
5. libpq's compiled-in defaults (the local Unix socket, the OS user name).

No host, user or password is ever assumed by the driver. Every key is either a
libpq connection parameter (passed through untouched) or one of the Ommi
settings in :data:`DEFAULTS`, which may also appear in the URL's query string.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ommi.drivers.urls import REDACTED, is_secret_option, redact_url, scrub_secrets, url_problem, url_scheme
from ommi.errors import ConfigurationError

__all__ = ["DEFAULTS", "PostgreSQLSettings", "resolve"]

SCHEMES = ("postgresql", "postgres")

DEFAULTS: dict[str, Any] = {
    "schema": None,
    "pool_min_size": 1,
    "pool_max_size": 10,
    "pool_timeout": 30.0,
    "pool_max_idle": 600.0,
    "pool_max_lifetime": 3600.0,
    "batch_size": 1000,
    "insert_chunk_size": 2000,
    "prepare_threshold": 5,
    "lock_timeout": 30.0,
    "statement_timeout": None,
}
"""Ommi settings and their defaults.

* ``schema``: the PostgreSQL schema (namespace) holding the tables; it becomes
  the connections' ``search_path``. ``None`` keeps the server's search_path.
* ``pool_min_size`` / ``pool_max_size``: connections kept open / at most open.
* ``pool_timeout``: seconds to wait for a free connection before
  :class:`ommi.errors.TimeoutError`.
* ``pool_max_idle``: seconds an unused connection above ``pool_min_size`` stays open.
* ``pool_max_lifetime``: seconds after which a connection is replaced (when returned).
* ``batch_size``: rows per batch when ``.all`` streams (a query may set its own).
* ``insert_chunk_size``: rows per ``INSERT`` statement when adding many models.
* ``prepare_threshold``: executions before psycopg prepares a statement
  server-side; ``None`` disables prepared statements (needed behind PgBouncer
  in transaction mode).
* ``lock_timeout``: seconds a statement waits for a row or table lock before
  :class:`ommi.errors.TimeoutError` (PostgreSQL's ``lock_timeout``, set on every connection).
  ``for_update()`` rows, rows another transaction updates or deletes, tables a
  migration alters: every lock wait. ``db.transaction(lock_timeout=...)``
  overrides it for one transaction (``SET LOCAL``).
* ``statement_timeout``: seconds any one statement may run before
  :class:`ommi.errors.TimeoutError` naming it (PostgreSQL's
  ``statement_timeout``, set on every connection); ``None`` (the default)
  keeps the server's (normally no limit). ``db.transaction(statement_timeout=...)``
  overrides it for one transaction. Migrations run without it.

Both timeouts are seconds above 0 and at most :data:`MAX_TIMEOUT` (PostgreSQL
keeps them in whole milliseconds, at least 1 ms).

``connect_timeout`` is libpq's own parameter; when no source sets it (including
``PGCONNECT_TIMEOUT``) the driver uses :data:`DEFAULT_CONNECT_TIMEOUT` seconds
instead of libpq's "wait forever".
"""

DEFAULT_CONNECT_TIMEOUT = 10

MAX_TIMEOUT = 2_147_483.647
"""The largest ``lock_timeout`` / ``statement_timeout`` in seconds: PostgreSQL's limit (2**31 - 1 ms)."""

_INTS = ("pool_min_size", "pool_max_size", "batch_size", "insert_chunk_size")
_FLOATS = ("pool_timeout", "pool_max_idle", "pool_max_lifetime", "lock_timeout")
_ALIASES = {"database": "dbname", "username": "user"}


@dataclass(frozen=True)
class PostgreSQLSettings:
    """Resolved settings: libpq parameters and Ommi's own."""

    params: dict[str, str] = field(default_factory=dict)
    """libpq connection parameters set explicitly (the environment fills the rest)."""

    schema: str | None = None
    pool_min_size: int = DEFAULTS["pool_min_size"]
    pool_max_size: int = DEFAULTS["pool_max_size"]
    pool_timeout: float = DEFAULTS["pool_timeout"]
    pool_max_idle: float = DEFAULTS["pool_max_idle"]
    pool_max_lifetime: float = DEFAULTS["pool_max_lifetime"]
    batch_size: int = DEFAULTS["batch_size"]
    insert_chunk_size: int = DEFAULTS["insert_chunk_size"]
    prepare_threshold: int | None = DEFAULTS["prepare_threshold"]
    lock_timeout: float = DEFAULTS["lock_timeout"]
    statement_timeout: float | None = DEFAULTS["statement_timeout"]

    def __repr__(self) -> str:
        params = {k: (REDACTED if k == "password" or is_secret_option(k) else v) for k, v in self.params.items()}
        ours = ", ".join(f"{name}={getattr(self, name)!r}" for name in DEFAULTS)
        return f"PostgreSQLSettings(params={params!r}, {ours})"

    @property
    def conninfo(self) -> str:
        """The libpq connection string (may hold a password: never log it)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", **self.params)

    @property
    def connect_timeout(self) -> float:
        """Seconds libpq waits for one connection attempt."""
        return float(self.params.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT)

    def describe(self) -> str:
        """``postgresql://user@host:port/db`` from the settings and environment, without password."""

        def pick(key: str, env: str) -> str:
            return self.params.get(key) or os.environ.get(env, "")

        user, host = pick("user", "PGUSER"), pick("host", "PGHOST")
        port, dbname = pick("port", "PGPORT"), pick("dbname", "PGDATABASE")
        where = host or "(local socket)"
        if port:
            where += f":{port}"
        text = f"postgresql://{user + '@' if user else ''}{where}/{dbname}"
        if self.schema:
            text += f" (schema {self.schema})"
        return text


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """Take Ommi's settings out of a URL's query string; libpq rejects unknown ones."""
    base, sep, query = url.partition("?")
    if not sep:
        return url, {}
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in DEFAULTS:
            ours[key] = value
        else:
            theirs.append((key, value))
    return (f"{base}?{urlencode(theirs)}" if theirs else base), ours


def _libpq_complaint(exc: Exception, url: str) -> str:
    """libpq's parse error without the text it quotes (``...: "<the URL or a piece of it>"``)."""
    text = " ".join(str(exc).split())
    text = re.sub(r':\s*".*\Z', "", text)  # the quoted input ends every libpq parse message
    text = re.sub(r'character ".*?" at', "character at", text)
    return scrub_secrets(text, url) or "libpq could not parse it"


def _parse_url(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """(libpq parameters, Ommi settings) of a ``postgresql://`` URL or ``key=value`` string.

    No message quotes the URL: it may hold a password. They say what is wrong
    and where, next to the URL with its secrets replaced by ``***``.
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    scheme = (url_scheme(url) or "").lower()
    if scheme and scheme not in SCHEMES:
        raise ConfigurationError(f"the PostgreSQL driver takes postgresql:// or postgres:// URLs, not {scheme}://")
    if not scheme and ("=" not in url or "://" in url):
        raise ConfigurationError(
            "the PostgreSQL settings are neither a URL nor a libpq connection string (the text is not shown, "
            "it may hold a password); write postgresql://user@host:5432/dbname or 'host=... dbname=...'"
        )
    if scheme:
        problem = url_problem(url)
        if problem is not None:
            raise ConfigurationError(f"the PostgreSQL URL {redact_url(url)} cannot be used: {problem}")
    stripped, ours = _split_url(url) if scheme else (url, {})
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(stripped).items()}
    except ProgrammingError as exc:
        shown = f"URL {redact_url(url)}" if scheme else "connection string (not shown: it may hold a password)"
        raise ConfigurationError(f"the PostgreSQL {shown} cannot be used: {_libpq_complaint(exc, url)}") from None
    return params, ours


def _split(values: Mapping[str, Any], origin: str) -> tuple[dict[str, str], dict[str, Any]]:
    params: dict[str, str] = {}
    ours: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"{origin}: setting names are strings, not {key!r}")
        key = _ALIASES.get(key, key)
        if key in DEFAULTS:
            ours[key] = value
        elif value is not None:
            params[key] = str(value)
    return params, ours


def _coerce(key: str, value: Any) -> Any:
    try:
        if key in _INTS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(value)
            if number < (0 if key == "pool_min_size" else 1):
                raise ValueError
            return number
        if key == "statement_timeout" and value in (None, "", "none", "None"):
            return None
        if key in _FLOATS or key == "statement_timeout":
            if isinstance(value, bool) and key in ("lock_timeout", "statement_timeout"):
                raise ValueError
            seconds = float(value)
            if not seconds > 0:
                raise ValueError
            if key in ("lock_timeout", "statement_timeout") and not (math.isfinite(seconds) and seconds <= MAX_TIMEOUT):
                raise ConfigurationError(
                    f"invalid PostgreSQL driver setting {key}={value!r}: seconds above 0 and at most {MAX_TIMEOUT} "
                    "(PostgreSQL's limit)" + (", or None for the server's" if key == "statement_timeout" else "")
                )
            return seconds
        if key == "prepare_threshold":
            return None if value in (None, "", "none", "None") else int(value)
        if key == "schema":
            if value in (None, ""):
                return None
            if not isinstance(value, str) or "\x00" in value:
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise ConfigurationError(f"invalid PostgreSQL driver setting {key}={value!r}") from None
    return value  # pragma: no cover


def resolve(source: str | Mapping[str, Any] | None, options: Mapping[str, Any]) -> PostgreSQLSettings:
    """Merge the sources (see the module docstring) into :class:`PostgreSQLSettings`.

    Raises:
        ConfigurationError: a malformed URL, an unknown libpq parameter or a bad Ommi setting.
    """
    params: dict[str, str] = {}
    ours: dict[str, Any] = {}
    if isinstance(source, Mapping):
        mapping = dict(source)
        url = mapping.pop("url", None)
        params, ours = _split(mapping, "settings")
        if url is not None:
            if not isinstance(url, str):
                raise ConfigurationError(f"the 'url' setting must be a string, not {type(url).__name__}")
            url_params, url_ours = _parse_url(url)
            params.update(url_params)
            ours.update(url_ours)
    elif isinstance(source, str):
        params, ours = _parse_url(source)
    elif source is not None:
        raise ConfigurationError(
            f"PostgreSQLDriver.connect() takes a URL, a settings mapping or nothing, not {type(source).__name__}"
        )
    option_params, option_ours = _split(options, "options")
    params.update(option_params)
    ours.update(option_ours)
    if "connect_timeout" not in params and not os.environ.get("PGCONNECT_TIMEOUT"):
        params["connect_timeout"] = str(DEFAULT_CONNECT_TIMEOUT)

    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo

    try:
        make_conninfo("", **params)  # libpq validates the parameter names
    except ProgrammingError as exc:
        raise ConfigurationError(f"invalid PostgreSQL connection setting: {exc}") from None

    values = {key: _coerce(key, value) for key, value in ours.items()}
    settings = PostgreSQLSettings(params=params, **values)
    if settings.pool_min_size > settings.pool_max_size:
        raise ConfigurationError(
            f"pool_min_size ({settings.pool_min_size}) is larger than pool_max_size ({settings.pool_max_size})"
        )
    return settings
