"""How the application fixtures give each pytest-xdist worker a database of its own on a server.

One :class:`Isolation` per kind of URL says how to point a URL at a private
namespace and how to remove that namespace again:

* PostgreSQL: a schema (the driver's ``schema`` URL setting), created empty
  and dropped with ``DROP SCHEMA ... CASCADE``;
* MongoDB: a database (the URL's path), dropped with ``dropDatabase``;
* SQLite files: a file of its own next to the configured one, deleted.

The client libraries are imported only when such a URL is used; they come with
the driver that serves it (ommi-postgresql, ommi-mongodb). URLs of other
drivers are used as given, except that ``{worker}`` in them is replaced by the
worker's namespace name.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

__all__ = ["Isolation", "isolation_for"]

TIMEOUT = 5
"""Seconds to wait for a server while creating or dropping a namespace."""


@dataclass(frozen=True, slots=True)
class Isolation:
    """A way to give one worker its own namespace on the database a URL names.

    Attributes:
        what: the kind of database, for messages (``"PostgreSQL"``).
        prefix: the start of the namespace's name, taken from the URL when
            it names one (a schema, a database) so related runs stay recognisable.
        isolate: ``(url, namespace)`` -> a URL that works in the namespace only.
        reset: ``(url, namespace)``: drop the namespace if it exists, then
            create it empty where that is needed. Raises when the server is
            unreachable.
        drop: ``(url, namespace)``: remove the namespace and everything in it.
    """

    what: str
    prefix: Callable[[str], str]
    isolate: Callable[[str, str], str]
    reset: Callable[[str, str], None]
    drop: Callable[[str, str], None]


DEFAULT_PREFIX = "ommi_test"


def _query_replaced(url: str, name: str, value: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


# -- PostgreSQL ---------------------------------------------------------------------


def _pg_prefix(url: str) -> str:
    given = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)).get("schema")
    return given or DEFAULT_PREFIX


def _pg_run(url: str, namespace: str, *statements: LiteralString) -> None:
    import psycopg
    from ommi_postgresql._settings import resolve
    from psycopg import sql

    # The driver's own parser separates libpq's parameters from Ommi's (schema=...).
    conninfo = resolve(url, {}).conninfo
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=TIMEOUT) as connection:
        for statement in statements:
            connection.execute(sql.SQL(statement).format(sql.Identifier(namespace)))


def _pg_reset(url: str, namespace: str) -> None:
    _pg_run(url, namespace, "DROP SCHEMA IF EXISTS {} CASCADE", "CREATE SCHEMA {}")


def _pg_drop(url: str, namespace: str) -> None:
    _pg_run(url, namespace, "DROP SCHEMA IF EXISTS {} CASCADE")


POSTGRESQL = Isolation(
    what="PostgreSQL",
    prefix=_pg_prefix,
    isolate=lambda url, namespace: _query_replaced(url, "schema", namespace),
    reset=_pg_reset,
    drop=_pg_drop,
)


# -- MongoDB ------------------------------------------------------------------------


def _mongo_prefix(url: str) -> str:
    return urllib.parse.urlsplit(url).path.strip("/") or DEFAULT_PREFIX


def _mongo_isolate(url: str, namespace: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{namespace}"))


def _mongo_drop(url: str, namespace: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=TIMEOUT * 1000)
    try:
        client.drop_database(namespace)
    finally:
        client.close()


MONGODB = Isolation(
    what="MongoDB",
    prefix=_mongo_prefix,
    isolate=_mongo_isolate,
    reset=_mongo_drop,  # a MongoDB database exists as soon as something is written to it
    drop=_mongo_drop,
)


# -- SQLite files -------------------------------------------------------------------


def _sqlite_parts(url: str) -> tuple[str, str]:
    """(path, query) of a ``sqlite:`` URL; the path is empty for an in-memory database."""
    rest, _, query = url[len("sqlite:") :].partition("?")
    path = rest[3:] if rest.startswith("///") else ""
    return urllib.parse.unquote(path), query


def _sqlite_file(url: str, namespace: str) -> str:
    path, _ = _sqlite_parts(url)
    stem, suffix = os.path.splitext(path)
    return f"{stem}_{namespace}{suffix}"


def _sqlite_isolate(url: str, namespace: str) -> str:
    _, query = _sqlite_parts(url)
    return f"sqlite:///{_sqlite_file(url, namespace)}" + (f"?{query}" if query else "")


def _sqlite_remove(url: str, namespace: str) -> None:
    path = _sqlite_file(url, namespace)
    for leftover in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        Path(leftover).unlink(missing_ok=True)


SQLITE_FILE = Isolation(
    what="SQLite",
    prefix=lambda url: DEFAULT_PREFIX,
    isolate=_sqlite_isolate,
    reset=_sqlite_remove,
    drop=_sqlite_remove,
)


def isolation_for(url: str) -> Isolation | None:
    """How to isolate workers on ``url``, or ``None`` when it is used as given."""
    scheme = url.partition(":")[0].lower()
    if scheme in ("postgresql", "postgres"):
        return POSTGRESQL
    if scheme in ("mongodb", "mongodb+srv"):
        return MONGODB
    if scheme == "sqlite":
        path, _ = _sqlite_parts(url)
        # In-memory databases (and file: URIs, which name them) are private to each driver already.
        if path and path != ":memory:" and not path.startswith("file:"):
            return SQLITE_FILE
    return None
