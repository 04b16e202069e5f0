"""Settings of the SQLite driver: parsing paths, ``sqlite:`` URLs and mappings."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ommi.drivers.urls import redact_url
from ommi.errors import ConfigurationError

__all__ = ["MEMORY", "URL_FORMS", "SQLiteSettings", "parse_settings"]

MEMORY = ":memory:"
"""The ``database`` value of a private in-memory database."""

_JOURNAL_MODES = ("wal", "delete", "truncate", "persist", "memory", "off")
_SYNCHRONOUS = ("off", "normal", "full", "extra")


@dataclass(frozen=True, slots=True)
class SQLiteSettings:
    """Everything :meth:`ommi_sqlite.SQLiteDriver.connect` accepts, with the defaults.

    Attributes:
        database: a file path, a ``file:`` URI, or ``":memory:"`` (the default)
            for a private in-memory database. A ``file:`` URI with
            ``mode=memory`` (``"file:cache?mode=memory"``) names an in-memory
            database shared by the drivers of this process that use the same URI.
        pool_size: reader connections of a file database (default 4). Writes
            use one more connection of their own.
        busy_timeout: seconds an operation waits for a connection, for the
            write lock or for another process's lock before failing with
            :class:`ommi.errors.TimeoutError` (default 5.0).
        batch_size: rows per batch when ``.all`` streams results and the query
            sets none (default 1000).
        journal_mode: journal mode of a file database (default ``"wal"``, so
            readers never block the writer); ignored for memory.
        synchronous: ``PRAGMA synchronous`` (default ``"normal"``, durable
            with WAL except on power loss).
        statement_cache_size: prepared statements each connection keeps for
            reuse (default 256).
        statement_timeout: seconds any one statement (or one batch of a
            stream) may run before SQLite interrupts it and it fails with
            :class:`ommi.errors.TimeoutError` naming ``statement_timeout``
            (default ``None``: no limit). A progress handler checks the
            deadline while the statement runs.

    ``lock_timeout`` is accepted as another name of ``busy_timeout`` (the name
    the other drivers give their lock wait; :attr:`lock_timeout` reads it):
    SQLite's only lock is the database's write lock, and ``busy_timeout`` is
    how long a write or a transaction waits for it. Given both, they must agree.
    """

    database: str = MEMORY
    pool_size: int = 4
    busy_timeout: float = 5.0
    batch_size: int = 1000
    journal_mode: str = "wal"
    synchronous: str = "normal"
    statement_cache_size: int = 256
    statement_timeout: float | None = None

    @property
    def lock_timeout(self) -> float:
        """How long a write or a transaction waits for the write lock: ``busy_timeout`` under the common name."""
        return self.busy_timeout

    @property
    def is_memory(self) -> bool:
        """Whether the database lives in memory (private, or named by a ``file:`` URI)."""
        return self.database in (MEMORY, "") or self.shared_memory_name is not None

    @property
    def display_name(self) -> str:
        """The database as messages name it: the quoted path, or ``in-memory``.

        A ``file:`` URI is shown with the values of secret-looking options
        (``key=``, ``password=``...) replaced by ``***``.
        """
        return "in-memory" if self.database in (MEMORY, "") else repr(self.shown_database)

    @property
    def shown_database(self) -> str:
        """``database`` as descriptions and logs show it (a ``file:`` URI without its secret options)."""
        if self.database.lower().startswith("file:"):
            return redact_url(self.database)
        return self.database

    @property
    def shared_memory_name(self) -> str | None:
        """The URI of a named in-memory database that drivers of this process share, if it is one.

        A ``file:`` URI with ``mode=memory`` (or the path ``:memory:``) names an
        in-memory database: every driver of the process connecting with the
        same URI uses the same database, until the last of them closes.
        """
        if not self.database.startswith("file:"):
            return None
        parts = urlsplit(self.database)
        if parts.path == MEMORY or tuple(v for k, v in parse_qsl(parts.query) if k == "mode") == ("memory",):
            return self.database
        return None

    def relative_path_note(self) -> str:
        """For a message about a file that cannot be opened: where a relative path was looked for.

        Empty for an absolute path, a ``file:`` URI or a memory database.
        """
        database = self.database
        if self.is_memory or database.lower().startswith("file:") or os.path.isabs(database):
            return ""
        return (
            f"the path is relative to the working directory, {os.getcwd()!r}: in a URL, "
            "sqlite:///relative/path.db (three slashes) is relative to it and "
            "sqlite:////absolute/path.db (four slashes) is an absolute path"
        )

    def __repr__(self) -> str:
        values = ", ".join(
            f"{f.name}={self.shown_database if f.name == 'database' else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
        )
        return f"SQLiteSettings({values})"

    def __post_init__(self) -> None:
        _check_int(self, "pool_size", 1)
        _check_int(self, "batch_size", 1)
        _check_int(self, "statement_cache_size", 0)
        timeout = self.busy_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise ConfigurationError(f"sqlite setting busy_timeout must be a number of seconds >= 0, not {timeout!r}")
        object.__setattr__(self, "busy_timeout", float(timeout))
        statement_timeout = self.statement_timeout
        if statement_timeout is not None:
            if (
                isinstance(statement_timeout, bool)
                or not isinstance(statement_timeout, (int, float))
                or not (math.isfinite(statement_timeout) and statement_timeout > 0)
            ):
                raise ConfigurationError(
                    "sqlite setting statement_timeout must be a finite number of seconds above 0, or None for no "
                    f"limit; not {statement_timeout!r}"
                )
            object.__setattr__(self, "statement_timeout", float(statement_timeout))
        for name, allowed in (("journal_mode", _JOURNAL_MODES), ("synchronous", _SYNCHRONOUS)):
            value = getattr(self, name)
            if not isinstance(value, str) or value.lower() not in allowed:
                raise ConfigurationError(f"sqlite setting {name} must be one of {', '.join(allowed)}; not {value!r}")
            object.__setattr__(self, name, value.lower())
        if not isinstance(self.database, str) or "\x00" in self.database:
            raise ConfigurationError(f"sqlite setting database must be a path string, not {self.database!r}")


def _check_int(settings: SQLiteSettings, name: str, minimum: int) -> None:
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"sqlite setting {name} must be an int >= {minimum}, not {value!r}")


_FIELDS = {f.name: f for f in dataclasses.fields(SQLiteSettings)}


def _from_text(name: str, text: str) -> Any:
    """A setting given as text (in a URL query) as the type the setting wants."""
    kind = _FIELDS[name].type
    if name == "statement_timeout":
        if text.lower() in ("", "none"):
            return None
        kind = "float"
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise ConfigurationError(f"sqlite setting {name} in the URL must be a number, not {text!r}") from None
    return text


URL_FORMS = (
    "write sqlite:///relative/path.db (three slashes: a path relative to the working directory), "
    "sqlite:////absolute/path.db (four slashes: an absolute path), or sqlite:// for an in-memory database"
)
"""The URL forms every message about a sqlite URL's path shows (SQLAlchemy's, which Ommi follows)."""


def _parse_url(url: str) -> dict[str, Any]:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite://`` (memory), with ``?setting=value``.

    SQLAlchemy's convention: ``sqlite://``, an empty host, then ``/`` and the
    path, so three slashes before a relative path and four before an
    absolute one. Anything else after ``sqlite:`` is refused rather than
    guessed at: ``sqlite:/app.db`` would otherwise name a file at the root
    of the file system.
    """
    rest = url[len("sqlite:") :]
    rest, _, query = rest.partition("?")
    if not rest.startswith("//"):
        # The path is not quoted (nor anything else of the URL): a mistyped URL may hold a password.
        slashes = len(rest) - len(rest.lstrip("/"))
        after = "nothing" if not rest else ("no slash" if not slashes else "one slash")
        raise ConfigurationError(
            f"the sqlite URL has {after} after 'sqlite:', where a sqlite URL has 'sqlite://' and then the "
            f"path; {URL_FORMS}"
        )
    host, slash, path = rest[2:].partition("/")
    if host:
        # Neither the URL nor the host is quoted: a "host" is often "user:password@".
        raise ConfigurationError(
            "the sqlite URL names a host (or a user and password) after sqlite:// (not shown: it may hold a "
            f"password), and a sqlite database has none; {URL_FORMS}"
        )
    rest = path if slash else ""
    values: dict[str, Any] = {"database": unquote(rest) or MEMORY}
    for name, text in parse_qsl(query, keep_blank_values=True):
        if name == _LOCK_TIMEOUT:
            values[name] = _from_text("busy_timeout", text)
            continue
        if name not in _FIELDS or name == "database":
            raise ConfigurationError(_unknown([name]))
        values[name] = _from_text(name, text)
    return values


_LOCK_TIMEOUT = "lock_timeout"
"""Accepted as another name of ``busy_timeout`` (see :class:`SQLiteSettings`)."""


def _lock_timeout_alias(values: dict[str, Any]) -> None:
    """Turn a ``lock_timeout`` setting into ``busy_timeout``; refuse both with different values."""
    if _LOCK_TIMEOUT not in values:
        return
    lock_timeout = values.pop(_LOCK_TIMEOUT)
    if "busy_timeout" in values and values["busy_timeout"] != lock_timeout:
        raise ConfigurationError(
            f"sqlite settings lock_timeout={lock_timeout!r} and busy_timeout={values['busy_timeout']!r} disagree: "
            "for SQLite they are one setting (how long to wait for the write lock); give one of them"
        )
    values["busy_timeout"] = lock_timeout


def _unknown(names: list[str]) -> str:
    known = ", ".join(sorted([*_FIELDS, _LOCK_TIMEOUT]))
    return f"unknown sqlite driver settings {sorted(names)}; the sqlite driver accepts: {known}"


def parse_settings(
    settings: str | os.PathLike[str] | Mapping[str, Any] | None, options: Mapping[str, Any]
) -> SQLiteSettings:
    """Settings from ``connect``'s arguments: defaults, then ``settings``, then ``options``.

    Raises:
        ConfigurationError: an unknown setting, or a value of the wrong kind.
    """
    values: dict[str, Any] = {}
    if settings is None:
        pass
    elif isinstance(settings, Mapping):
        values.update(settings)
    elif isinstance(settings, os.PathLike):
        values["database"] = os.fspath(settings)
    elif isinstance(settings, str):
        if settings.lower().startswith("sqlite:"):
            values.update(_parse_url(settings))
        else:
            values["database"] = settings or MEMORY
    else:
        raise ConfigurationError(
            "SQLiteDriver.connect() takes a path, a sqlite: URL or a mapping of settings, "
            f"not {type(settings).__name__}"
        )
    if _LOCK_TIMEOUT in values and _LOCK_TIMEOUT in options:
        values.pop(_LOCK_TIMEOUT)  # keyword options win over the URL and the mapping
    if "busy_timeout" in options or _LOCK_TIMEOUT in options:
        values.pop("busy_timeout" if _LOCK_TIMEOUT in options else _LOCK_TIMEOUT, None)
    values.update(options)
    _lock_timeout_alias(values)
    unknown = [name for name in values if name not in _FIELDS]
    if unknown:
        raise ConfigurationError(_unknown(unknown))
    if isinstance(values.get("database"), os.PathLike):
        values["database"] = os.fspath(values["database"])
    return SQLiteSettings(**values)
