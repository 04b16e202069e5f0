"""One module per backend: where its data lives, how it is set up, seeded and checked."""

from __future__ import annotations

from ommibench.backends.base import Backend, BackendUnavailable
from ommibench.backends.mongodb import MongoDBBackend
from ommibench.backends.postgresql import PostgreSQLBackend
from ommibench.backends.sqlite import SQLiteBackend

__all__ = ["BACKENDS", "Backend", "BackendUnavailable"]

BACKENDS: dict[str, type[Backend]] = {
    "sqlite": SQLiteBackend,
    "postgresql": PostgreSQLBackend,
    "mongodb": MongoDBBackend,
}
