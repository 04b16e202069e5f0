"""What ``DictStoreDriver.connect`` accepts, checked without any I/O.

Settings come from (later wins): the defaults, a URL / path / mapping, then
keyword arguments::

    dictstore://                     a private in-memory database
    dictstore:///data/app.json       the JSON file data/app.json (relative)
    dictstore:////srv/app.json       the JSON file /srv/app.json (absolute)
    dictstore:///app.json?batch_size=200
    "app.json" or pathlib.Path(...)  a file path
    {"path": "app.json", "batch_size": 200}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from ommi.errors import ConfigurationError

__all__ = ["SCHEME", "DictStoreSettings", "parse_settings"]

SCHEME = "dictstore"
DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class DictStoreSettings:
    """Validated settings of one driver.

    Attributes:
        path: the JSON file holding the database, or ``None`` for a private
            in-memory database that disappears when the driver closes.
        batch_size: rows per batch when ``.all`` streams and the query sets none.
    """

    path: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE


_NAMES = ("path", "batch_size")


def _from_url(url: str) -> dict[str, Any]:
    rest, _, query = url[len(SCHEME) + 1 :].partition("?")
    if not rest.startswith("//"):
        raise ConfigurationError(f"{url!r} is not a dictstore URL; write dictstore:///file.json or dictstore://")
    host, slash, path = rest[2:].partition("/")
    if host:
        raise ConfigurationError(
            f"dictstore URL {url!r} names a host ({host!r}); the database is a local file: "
            "dictstore:///relative.json or dictstore:////absolute.json"
        )
    values: dict[str, Any] = {"path": unquote(path) if slash and path else None}
    for name, text in parse_qsl(query, keep_blank_values=True):
        if name != "batch_size":
            raise ConfigurationError(f"unknown dictstore URL setting {name!r}; the URL accepts batch_size")
        try:
            values[name] = int(text)
        except ValueError:
            raise ConfigurationError(f"dictstore batch_size must be an int, not {text!r}") from None
    return values


def parse_settings(
    settings: str | os.PathLike[str] | Mapping[str, Any] | None, options: Mapping[str, Any]
) -> DictStoreSettings:
    """Merge ``connect``'s arguments into :class:`DictStoreSettings`.

    Raises:
        ConfigurationError: an unknown setting or an unusable value.
    """
    values: dict[str, Any] = {}
    if settings is None:
        pass
    elif isinstance(settings, Mapping):
        values.update(settings)
    elif isinstance(settings, os.PathLike):
        values["path"] = os.fspath(settings)
    elif isinstance(settings, str):
        if settings.lower().startswith(f"{SCHEME}:"):
            values.update(_from_url(settings))
        else:
            values["path"] = settings or None
    else:
        raise ConfigurationError(
            f"DictStoreDriver.connect() takes a dictstore:// URL, a path or a mapping, not {settings!r}"
        )
    values.update(options)
    unknown = sorted(set(values) - set(_NAMES))
    if unknown:
        raise ConfigurationError(f"unknown dictstore settings {unknown}; the driver accepts {', '.join(_NAMES)}")
    path = values.get("path")
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if path is not None and (not isinstance(path, str) or not path or "\x00" in path):
        raise ConfigurationError(f"dictstore path must be a non-empty path string, not {path!r}")
    batch_size = values.get("batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"dictstore batch_size must be an int >= 1, not {batch_size!r}")
    return DictStoreSettings(path, batch_size)
