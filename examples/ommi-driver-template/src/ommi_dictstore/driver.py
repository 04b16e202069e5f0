"""The Ommi driver: :class:`DictStoreDriver`, served for ``dictstore://`` URLs.

It implements ``ommi.drivers.Driver`` over the engine in
:mod:`ommi_dictstore._tables` and the storage in :mod:`ommi_dictstore._files`.
Core hands it canonical values and rows in the model's field order, and
decodes whatever it returns, so the driver never converts types itself
(except to write its JSON file).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

from ommi.drivers import Capabilities, Driver, DriverTransaction
from ommi.errors import ConnectionError, IntegrityError, OperationalError, SchemaMismatchError, UnsupportedFeature
from ommi.expressions import Query
from ommi.models.schema import Field, ModelSchema

from ommi_dictstore import _query
from ommi_dictstore._files import CorruptFile, Database, acquire, release
from ommi_dictstore._settings import DictStoreSettings, parse_settings
from ommi_dictstore._tables import (
    DuplicateKey,
    MissingValue,
    NoSuchTable,
    ShapeMismatch,
    Tables,
    create_tables,
    drop_tables,
    insert_rows,
    replace_rows,
)

__all__ = ["DictStoreDriver"]

Row = tuple[Any, ...]


class DictStoreDriver(Driver[DictStoreSettings]):
    """Rows in Python dicts, in memory or saved to a JSON file (``dictstore://``).

    Build one with :meth:`connect`; ``async with Ommi(driver)`` opens it.
    Drivers of one process on the same file share its tables.
    """

    name = "dictstore"

    # What this driver does NOT do, declared so that core refuses those
    # operations up front (UnsupportedFeature naming the capability) and the
    # conformance suite skips their tests with the capability as the reason.
    capabilities = Capabilities(
        transactions=False,  # no db.transaction(): there is no undo log
        transaction_isolation=False,  # follows from the above
        related_conditions=False,  # no joins: conditions may only name the queried model
        foreign_keys=False,  # ReferenceTo is not enforced: a dangling reference is stored as is
    )

    def __init__(self, settings: DictStoreSettings) -> None:
        self.settings = settings
        self.default_batch_size = settings.batch_size
        self._database: Database | None = None

    @classmethod
    def connect(cls, settings: str | Mapping[str, Any] | None = None, /, **options: Any) -> Self:
        """Build a driver from a ``dictstore://`` URL, a file path or a mapping, plus keyword settings.

        No I/O happens until :meth:`open`. See :mod:`ommi_dictstore._settings` for every form.

        Raises:
            ConfigurationError: an unknown setting or an unusable value.
        """
        return cls(parse_settings(settings, options))

    @property
    def description(self) -> str:
        return "dictstore (in memory)" if self.settings.path is None else f"dictstore {self.settings.path!r}"

    def __repr__(self) -> str:
        return f"<DictStoreDriver {self.description}>"

    def __del__(self) -> None:
        if getattr(self, "_database", None) is not None:
            warnings.warn(f"{self!r} was not closed; use `async with Ommi(driver)`", ResourceWarning, stacklevel=1)

    # -- errors ----------------------------------------------------------------

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn the engine's and the file system's exceptions into ``ommi.errors``, chained."""
        try:
            yield
        except (DuplicateKey, MissingValue) as exc:
            raise IntegrityError(f"{exc} ({self.description})") from exc
        except NoSuchTable as exc:
            raise OperationalError(
                f"{exc} ({self.description}); create it with db.use_models() or allow implicit setup"
            ) from exc
        except ShapeMismatch as exc:
            differences = "; ".join(exc.args[1])
            raise SchemaMismatchError(
                f"{exc.args[0]} ({self.description}): {differences}. Nothing was changed; "
                "migrate the stored data or drop the tables with db.remove_models()"
            ) from exc
        except CorruptFile as exc:
            raise OperationalError(str(exc)) from exc
        except OSError as exc:
            raise OperationalError(f"cannot save {self.description}: {exc}") from exc

    def _open_database(self) -> Database:
        if self._database is None:
            raise OperationalError(f"{self.description} is not open; use `async with Ommi(driver)`")
        return self._database

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        if self._database is not None:
            return
        try:
            self._database = await acquire(self.settings.path)
        except CorruptFile as exc:
            raise OperationalError(str(exc)) from exc
        except OSError as exc:
            raise ConnectionError(f"cannot open {self.description}: {exc}") from exc

    async def close(self) -> None:
        database, self._database = self._database, None
        if database is not None:
            release(database)

    async def begin(self) -> DriverTransaction:
        # Core checks the capability before calling this; a direct caller gets the same answer.
        raise UnsupportedFeature("the dictstore driver has no transactions (capability 'transactions' is absent)")

    # -- schema ------------------------------------------------------------------

    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        with self._translated():
            await self._open_database().change(lambda tables: (create_tables(tables, schemas), None))

    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        with self._translated():
            await self._open_database().change(lambda tables: (drop_tables(tables, schemas), None))

    # -- data --------------------------------------------------------------------

    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        with self._translated():
            keys = await self._open_database().change(lambda tables: insert_rows(tables, schema, rows))
        return keys if schema.auto_field is not None else None

    async def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        with self._translated():
            rows = _query.select(query, self._open_database().tables)
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]
            # Give other tasks a turn between batches, as a network driver would.
            await asyncio.sleep(0)

    async def count(self, query: Query) -> int:
        with self._translated():
            return _query.count(query, self._open_database().tables)

    async def delete(self, query: Query) -> int:
        def action(tables: Tables) -> tuple[Tables, int]:
            matched = _query.select(query, tables)
            return replace_rows(tables, query.model, matched, None), len(matched)

        with self._translated():
            return await self._open_database().change(action)

    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        def action(tables: Tables) -> tuple[Tables, int]:
            matched = _query.select(query, tables)
            return replace_rows(tables, query.model, matched, values), len(matched)

        with self._translated():
            return await self._open_database().change(action)
