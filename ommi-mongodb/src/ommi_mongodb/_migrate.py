"""Migrations on MongoDB: the driver's ``migrations`` capability.

MongoDB has no transactional DDL (and a standalone server no transactions at
all), so a migration is not applied all or nothing. Instead:

* **Every command is idempotent.** An added field is
  ``update_many({f: {"$exists": False}}, {"$set": {f: default}})``, a removed
  one ``$unset``, a renamed one ``$rename`` where the old name still exists,
  a converted one rewrites only the values still stored as the old type, a
  required field made of an optional one fills only the ``null`` values;
  indexes are created when missing and dropped when present; the driver's
  schema record (``_ommi_schema``) is set to the shape the operation leaves.
  Running a command twice leaves what running it once leaves.
* **Progress is recorded per operation.** After each operation a progress
  document (migration, direction, operation index) is written; a later run
  skips the operations recorded and goes on with the first one that is not.
  The history record (``ommi_migrations``) is written last, by
  ``ommi.migrations``; the progress of a migration is deleted when its run
  ends well. A run that fails or is killed half-way is *not* rolled back: the
  next ``apply`` resumes it. A migration's ``run(db)`` step runs again on
  resumption, so it must be written to be run twice.
* **A lock document with an expiry** (``_id: "lock"`` in
  ``_ommi_migrate``, owner token and ``expires_at`` in seconds since the
  epoch) makes runners take turns: taken by an insert (or, once expired, a
  compare-and-set update), renewed while the migration runs (before each
  operation and in the background), released at the end by a delete naming
  the owner. A runner that died keeps it only until it expires; a runner
  whose lock expired and was taken over stops before its next command.

On nx-27017 (the wire-protocol server the tests run against), which has no
pipeline updates, conversions are rewritten document by document in Python
(:func:`ommi_mongodb._testserver_compat.converts_in_python`); MongoDB converts
on the server with ``$convert``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from bson import Binary, Decimal128, json_util
from ommi.drivers import get_logger, map_exceptions
from ommi.drivers.base import MigrationTransaction
from ommi.errors import IntegrityError, MigrationError, MigrationTimeoutError, SchemaMismatchError, TransactionError
from ommi.migrations import AddField, ChangeType, CreateModel, DropModel, MigrationStep, RemoveField, RenameField
from ommi.migrations.operations import CONVERSIONS
from ommi.migrations.state import FieldSpec
from ommi.models.schema import Field, ModelSchema
from pymongo.errors import DuplicateKeyError

from ommi_mongodb._errors import exceptions
from ommi_mongodb._operations import MongoDBOperations
from ommi_mongodb._schema import IndexSpec, declared_partial, drift, shape, wanted_indexes
from ommi_mongodb._testserver_compat import converts_in_python
from ommi_mongodb._values import ID, decode_value, encode_value, field_path

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

    from ommi_mongodb.driver import Generation, MongoDBDriver

__all__ = ["MIGRATE_COLLECTION", "MigrationLock", "MongoDBMigration", "begin_migration", "migration_statements"]

log = get_logger("ommi.mongodb.migrations")

MIGRATE_COLLECTION = "_ommi_migrate"
"""The driver's collection of the migration lock and of the progress of interrupted migrations."""

_LOCK_ID = "lock"
_POLL = 0.1

Document = dict[str, Any]


# -- the lock -------------------------------------------------------------------------------


class MigrationLock:
    """The lock document: ``{_id: "lock", owner, expires_at, holder}`` in :data:`MIGRATE_COLLECTION`."""

    def __init__(self, collection: AsyncCollection[Document], where: str, *, lease: float, wait: float) -> None:
        self._collection = collection
        self._where = where
        self.lease = lease
        self.wait = wait
        self.owner = secrets.token_hex(12)
        self.holder = f"{socket.gethostname()} pid {os.getpid()}"
        self.lost = False
        self._renewer: asyncio.Task[None] | None = None

    def _document(self) -> Document:
        return {"owner": self.owner, "holder": self.holder, "expires_at": time.time() + self.lease}

    async def _try(self) -> bool:
        try:
            await self._collection.insert_one({"_id": _LOCK_ID, **self._document()})
        except DuplicateKeyError:
            # Held: taken over only once its holder stopped renewing it.
            taken = await self._collection.find_one_and_update(
                {"_id": _LOCK_ID, "expires_at": {"$lt": time.time()}}, {"$set": self._document()}
            )
            if taken is None:
                return False
            log.warning("migration.lock.taken_over", driver="mongodb", previous=taken.get("holder"), where=self._where)
        return True

    async def acquire(self) -> None:
        """Take the lock, waiting up to :attr:`wait` seconds for its holder.

        Raises:
            MigrationTimeoutError: another live runner held it all that time (naming it).
        """
        deadline = time.monotonic() + self.wait
        try:
            with map_exceptions(exceptions("take the migration lock in", self._where)):
                while not await self._try():
                    if time.monotonic() >= deadline:
                        held = await self._collection.find_one({"_id": _LOCK_ID}) or {}
                        left = float(held.get("expires_at", 0) or 0) - time.time()
                        raise MigrationTimeoutError(
                            f"another migration run holds the migration lock of {self._where} "
                            f"({held.get('holder', 'unknown holder')}, renewed until {max(left, 0):.0f} s from now); "
                            f"waited lock_timeout={self.wait:g} s. Nothing was applied; retry when it has finished "
                            "(or with a longer lock timeout); a lock whose holder died "
                            f"expires {self.lease:g} s after its last renewal"
                        )
                    await asyncio.sleep(_POLL)
        except BaseException:
            # Cancelled after the insert reached the server: never leave the lock behind.
            await asyncio.shield(self._release_quietly())
            raise
        self._renewer = asyncio.ensure_future(self._keep())

    async def renew(self) -> None:
        """Push the expiry forward; raises when another runner has taken the lock meanwhile."""
        if not self.lost:
            with map_exceptions(exceptions("renew the migration lock in", self._where)):
                result = await self._collection.update_one(
                    {"_id": _LOCK_ID, "owner": self.owner}, {"$set": {"expires_at": time.time() + self.lease}}
                )
            self.lost = result.matched_count == 0
        if self.lost:
            raise MigrationError(
                f"the migration lock of {self._where} expired and another run took it over (no renewal for "
                f"{self.lease:g} s); this run stopped before its next command. The migration resumes on the next "
                "apply"
            )

    async def _keep(self) -> None:
        while not self.lost:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.renew()
            except MigrationError:
                return
            except Exception:  # the next command's own renewal reports it
                log.warning("migration.lock.renew_failed", driver="mongodb", where=self._where, exc_info=True)

    async def release(self) -> None:
        """Stop renewing and delete the lock if it is still this runner's."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
        with map_exceptions(exceptions("release the migration lock in", self._where)):
            await self._collection.delete_one({"_id": _LOCK_ID, "owner": self.owner})

    async def _release_quietly(self) -> None:
        try:
            await self.release()
        except Exception:
            log.warning("migration.lock.release_failed", driver="mongodb", where=self._where, exc_info=True)


# -- commands ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Command:
    """One idempotent command of an operation: what it says, and how it runs."""

    text: str
    run: Callable[[], Awaitable[None]]


def _shown(value: Any) -> str:
    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)


def _field(schema: ModelSchema, column: str) -> Field:
    return schema.by_column[column]


_BSON_TYPES: Mapping[str, list[str]] = {
    "bool": ["bool"],
    "int": ["int", "long"],
    "decimal": ["decimal"],
    "uuid": ["binData"],
    "float": ["double"],
    "str": ["string"],
}
_SERVER_CONVERSIONS: Mapping[tuple[str, str], str] = {
    ("bool", "int"): "$toInt",
    ("int", "decimal"): "$toDecimal",
    ("int", "str"): "$toString",
    ("decimal", "str"): "$toString",
    ("int", "float"): "$toDouble",
    ("decimal", "float"): "$toDouble",
}
"""Conversions MongoDB makes on the server; the others (a UUID's text) are made in Python."""


def stored_as(tag: str, value: Any) -> bool:
    """Whether a stored (BSON-decoded) value is of the type tag's stored type."""
    if tag == "bool":
        return isinstance(value, bool)
    if tag == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if tag == "decimal":
        return isinstance(value, Decimal128)
    if tag == "float":
        return isinstance(value, float)
    if tag == "str":
        return isinstance(value, str)
    if tag == "uuid":
        return (isinstance(value, Binary) and value.subtype == 4) or isinstance(value, uuid.UUID)
    return False


class Planner:
    """The commands of each operation, for one opening of the driver."""

    def __init__(self, driver: MongoDBDriver, generation: Generation | None) -> None:
        self.driver = driver
        self.generation = generation

    def _db(self) -> Any:
        assert self.generation is not None, "only migration_statements plans without an opening"
        return self.generation.database

    def name(self, schema: ModelSchema) -> str:
        return self.driver.collection_name(schema)

    def commands(self, step: MigrationStep) -> list[Command]:
        operation = step.operation
        model = operation.model
        before = step.before.schema(model) if model in step.before else None
        after = step.after.schema(model) if model in step.after else None
        commands: list[Command] = []
        if isinstance(operation, CreateModel):
            assert after is not None
            return [self._create(after)]
        if isinstance(operation, DropModel):
            assert before is not None
            return [self._drop(before)]
        assert before is not None and after is not None
        commands.append(self._check_record(before, after))
        if isinstance(operation, AddField):
            commands.append(self._add(after, operation))
        elif isinstance(operation, RemoveField):
            commands.append(self._remove(before, operation))
        elif isinstance(operation, RenameField):
            commands.extend(self._rename(before, after, operation))
        elif isinstance(operation, ChangeType):
            commands.extend(self._change(before, after, operation))
        elif operation.kind == "add_unique":
            commands.append(self._refuse_duplicates(after, operation.model, getattr(operation, "name", "")))
        elif operation.kind in ("add_index", "remove_index", "remove_unique"):
            pass  # the index commands below do it all
        elif operation.kind != "set_default":  # a default fills rows only when a field is added or made required
            raise MigrationError(f"{operation.describe()}: the MongoDB driver does not know {type(operation).__name__}")
        commands.extend(self._indexes(before, after))
        commands.append(self._record(after))
        return commands

    # -- per operation --------------------------------------------------------------------

    def _create(self, schema: ModelSchema) -> Command:
        name = self.name(schema)

        async def run() -> None:
            try:
                await self.driver.apply_schema([schema])
            except SchemaMismatchError as exc:
                raise MigrationError(
                    f"{exc} The collection exists and differs from the model the migration creates: was it made "
                    "by use_models() with other fields? Make it match (or drop it) and apply again"
                ) from exc

        indexes = "; ".join(spec.describe() for spec in wanted_indexes(schema, name))
        return Command(
            f"db.createCollection({name!r}) unless it exists"
            + (f"; create {indexes} unless present" if indexes else "")
            + f"; db.{self.driver.settings.schema_collection}.updateOne({{_id: {name!r}}}, "
            f"{{$set: {{fields: {_shown(shape(schema))}}}}}, {{upsert: true}}) unless recorded",
            run,
        )

    def _drop(self, schema: ModelSchema) -> Command:
        name = self.name(schema)

        async def run() -> None:
            await self.driver.drop_schema([schema])

        return Command(
            f"db.{name}.drop() if it exists; forget its record in {self.driver.settings.schema_collection}, "
            "its key counter and its journal entries",
            run,
        )

    def _check_record(self, before: ModelSchema, after: ModelSchema) -> Command:
        name = self.name(before)
        records = self.driver.settings.schema_collection

        async def run() -> None:
            with map_exceptions(exceptions(f"read the record of {name!r} in", self.driver.description)):
                record = await self._db()[records].find_one({"_id": name})
            if record is None:
                return  # a collection without a record (made by another tool) is adopted
            fields = record.get("fields", [])
            if not drift(before, name, fields) or not drift(after, name, fields):
                return  # as the migrations left it, or as this operation leaves it (a resumed run)
            raise MigrationError(
                f"{self.driver.description}: the recorded shape of {name!r} differs from the model the migrations "
                f"describe: {'; '.join(drift(before, name, fields))}. Was it changed by another tool, or made by "
                "use_models() with other fields? Make it match (or drop it) and apply again"
            )

        return Command(f"check db.{records} {{_id: {name!r}}} against the migrations' model", run)

    def _update_many(self, schema: ModelSchema, flt: Document, update: Any) -> Command:
        name = self.name(schema)

        async def run() -> None:
            with map_exceptions(exceptions(f"update {name!r} in", self.driver.description)):
                await self._db()[name].update_many(flt, update)

        return Command(f"db.{name}.updateMany({_shown(flt)}, {_shown(update)})", run)

    def _add(self, schema: ModelSchema, operation: AddField) -> Command:
        field = _field(schema, operation.field.name)
        path = field_path(field)
        value = encode_value(field.storage, operation.field.default)
        return self._update_many(schema, {path: {"$exists": False}}, {"$set": {path: value}})

    def _remove(self, schema: ModelSchema, operation: RemoveField) -> Command:
        path = field_path(_field(schema, operation.field.name))
        return self._update_many(schema, {path: {"$exists": True}}, {"$unset": {path: ""}})

    def _rename(self, before: ModelSchema, after: ModelSchema, operation: RenameField) -> list[Command]:
        old = _field(before, operation.old)
        if old.key:
            if len(before.key) > 1:
                raise MigrationError(
                    f"{operation.describe()}: MongoDB cannot rename a part of a composite key (it lives in the "
                    "immutable _id); create a new model and copy the documents in run(db)"
                )
            return []  # a single key is stored as _id whatever its name
        old_path, new_path = field_path(old), field_path(_field(after, operation.new))
        return [self._update_many(before, {old_path: {"$exists": True}}, {"$rename": {old_path: new_path}})]

    def _change(self, before: ModelSchema, after: ModelSchema, operation: ChangeType) -> list[Command]:
        commands = []
        field = _field(after, operation.new.name)
        path = field_path(field)
        old_tag, new_tag = operation.old.type, operation.new.type
        if old_tag != new_tag:
            if field.key:
                raise MigrationError(
                    f"{operation.describe()}: MongoDB cannot change a key's stored values (they are the immutable "
                    "_id); create a new model and copy the documents in run(db)"
                )
            commands.append(self._convert(before, field, old_tag, new_tag))
        if operation.old.nullable and not operation.new.nullable:
            value = encode_value(field.storage, operation.new.default)
            commands.append(self._update_many(after, {path: None}, {"$set": {path: value}}))
        return commands

    def _convert(self, schema: ModelSchema, field: Field, old_tag: str, new_tag: str) -> Command:
        name = self.name(schema)
        path = field_path(field)
        flt = {path: {"$type": list(_BSON_TYPES[old_tag])}}
        operator = _SERVER_CONVERSIONS.get((old_tag, new_tag))
        in_python = operator is None or (self.generation is not None and converts_in_python(self.generation.forms))
        if operator is not None:
            pipeline = [{"$set": {path: {operator: f"${path}"}}}]
            text = f"db.{name}.updateMany({_shown(flt)}, {_shown(pipeline)})"
        else:
            text = f"rewrite {path} of each document of db.{name} stored as {old_tag} as {new_tag}, in batches"
        convert = CONVERSIONS[(old_tag, new_tag)].convert
        old_type = FieldSpec(field.column, old_tag).storage

        async def run() -> None:
            collection = self._db()[name]
            with map_exceptions(exceptions(f"convert {path!r} of {name!r} in", self.driver.description)):
                if not in_python:
                    await collection.update_many(flt, pipeline)
                    return
                await rewrite_values(
                    collection,
                    path,
                    lambda value: stored_as(old_tag, value),
                    lambda value: encode_value(field.storage, convert(decode_value(old_type, value))),
                )

        return Command(text, run)

    def _indexes(self, before: ModelSchema, after: ModelSchema) -> list[Command]:
        name = self.name(after)
        old, new = set(wanted_indexes(before, name)), set(wanted_indexes(after, name))
        create, drop = [s for s in new if s not in old], [s for s in old if s not in new]
        commands = []
        for spec in drop:
            kept = [s for s in new if (s.keys, s.unique) == (spec.keys, spec.unique)]
            if kept:
                continue  # another wanted index has the same keys (a reference's, say): dropping it would take that
            commands.append(Command(f"db.{name}.dropIndex({spec.name!r}) if present", self._drop_index(name, spec)))
        if create:
            shown = "; ".join(spec.describe() for spec in create)

            async def run() -> None:
                models = [spec.model() for spec in create]
                with map_exceptions(exceptions(f"create indexes of {name!r} in", self.driver.description)):
                    await self._db()[name].create_indexes(models)

            commands.append(Command(f"db.{name}.createIndexes: {shown} (kept if present)", run))
        return commands

    def _drop_index(self, name: str, spec: IndexSpec) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            collection = self._db()[name]
            with map_exceptions(exceptions(f"drop an index of {name!r} in", self.driver.description)):
                for info in [i async for i in await collection.list_indexes()]:
                    keys = tuple((str(p), d) for p, d in dict(info.get("key", {})).items())
                    # 1 == 1.0; a text or hashed index's kind never equals 1. Uniqueness must match too, as
                    # the same keys may hold a unique and a plain index; the name alone is not kept by every server.
                    same_keys = keys == spec.keys and bool(info.get("unique", False)) == spec.unique
                    if same_keys or info.get("name") == spec.name:
                        await collection.drop_index(str(info["name"]))

        return run

    def _refuse_duplicates(self, schema: ModelSchema, model: str, index_name: str) -> Command:
        """Before a unique index is built: stored documents that already collide fail the step, naming them.

        MongoDB's index build fails on them too (and leaves no index); the
        check says which values collide, and does not depend on the server
        reporting the build's failure as a duplicate key.
        """
        name = self.name(schema)
        constraint = next(c for c in schema.constraints if c.name == index_name)
        paths = [field_path(f) for f in constraint.fields]
        partial = declared_partial(schema, index_name)

        async def run() -> None:
            # Counted here rather than by an aggregation: nx-27017 does not group by a sub-document of paths.
            seen: set[str] = set()
            shared: list[str] = []
            with map_exceptions(exceptions(f"look for duplicates in {name!r} in", self.driver.description)):
                async for document in self._db()[name].find(partial, {p: 1 for p in paths}):
                    values = tuple(_path_value(document, p) for p in paths)
                    shown = repr(values)
                    if shown in seen and shown not in shared:
                        shared.append(shown)
                    seen.add(shown)
            if shared:
                raise IntegrityError(
                    f"{self.driver.description}: the {constraint.describe()} cannot be added to {name!r}: stored "
                    f"documents already share the values {', '.join(shared[:5])}; no index was made. Change or "
                    "remove the duplicates (in an earlier migration's run(db)), then apply again"
                )

        return Command(f"db.{name}.find({_shown(partial)}): no two documents share the values of {paths}", run)

    def _record(self, schema: ModelSchema) -> Command:
        name = self.name(schema)
        records = self.driver.settings.schema_collection
        fields = shape(schema)

        async def run() -> None:
            with map_exceptions(exceptions(f"record the shape of {name!r} in", self.driver.description)):
                await self._db()[records].update_one({"_id": name}, {"$set": {"fields": fields}}, upsert=True)

        return Command(
            f"db.{records}.updateOne({{_id: {name!r}}}, {{$set: {{fields: {_shown(fields)}}}}}, {{upsert: true}})", run
        )


def _path_value(document: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a document (``_id.part``), ``None`` when absent."""
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


async def rewrite_values(
    collection: AsyncCollection[Document],
    path: str,
    needs: Callable[[Any], bool],
    convert: Callable[[Any], Any],
) -> int:
    """Set ``convert(value)`` on each document whose value at ``path`` ``needs`` it; returns how many.

    Idempotent: a converted value no longer ``needs`` converting, so a
    document the cursor meets twice, or a rerun after an interruption,
    converts nothing again.
    """
    done = 0
    cursor = collection.find({}, {path: 1})
    try:
        async for document in cursor:
            value = document.get(path)
            if needs(value):
                await collection.update_one({ID: document[ID]}, {"$set": {path: convert(value)}})
                done += 1
    finally:
        await cursor.close()
    return done


def migration_statements(driver: MongoDBDriver, step: MigrationStep) -> list[str]:
    """The commands of ``step`` as text (``MongoDBDriver.migration_statements``); no I/O."""
    return [command.text for command in Planner(driver, driver._current).commands(step)]


# -- the migration "transaction" -------------------------------------------------------------


def _progress_id(step: MigrationStep) -> str:
    return f"{step.migration}:{'down' if step.reverse else 'up'}:{step.index}"


class MongoDBMigration(MongoDBOperations, MigrationTransaction):
    """One migration run under the lock; each operation applied once, its progress recorded.

    Its data operations (the history record, ``run(db)``) write at once, as the
    driver's own do: nothing is rolled back. :meth:`commit` forgets the
    progress of the migrations it ran and releases the lock; :meth:`rollback`
    keeps the progress (the next run resumes) and releases the lock.
    """

    def __init__(self, driver: MongoDBDriver, generation: Generation, lock: MigrationLock) -> None:
        super().__init__(driver, None, generation)
        self._lock = lock
        self._planner = Planner(driver, generation)
        self._progress = generation.database[MIGRATE_COLLECTION]
        self._migrations: set[str] = set()
        self._open = True

    def _check_open(self) -> None:
        if not self._open:
            raise TransactionError("the MongoDB migration run has ended")

    async def apply_operation(self, step: MigrationStep) -> None:
        self._check_open()
        self._migrations.add(step.migration)
        commands = self._planner.commands(step)  # refuses an operation it cannot apply before any write
        await self._lock.renew()
        where = self._driver.description
        with map_exceptions(exceptions("read the migration progress in", where)):
            done = await self._progress.find_one({"_id": _progress_id(step)})
        if done is not None:
            log.debug("migration.step.skipped", driver="mongodb", migration=step.migration, index=step.index)
            return
        for command in commands:
            await self._lock.renew()
            await command.run()
        with map_exceptions(exceptions("record the migration progress in", where)):
            await self._progress.update_one(
                {"_id": _progress_id(step)},
                {"$set": {"migration": step.migration, "index": step.index, "at": time.time()}},
                upsert=True,
            )
        log.debug("migration.step.applied", driver="mongodb", migration=step.migration, index=step.index)

    async def commit(self) -> None:
        self._check_open()
        self._open = False
        try:
            # No renewal check here: the history record is written, the migration is complete.
            if self._migrations:
                with map_exceptions(exceptions("forget the migration progress in", self._driver.description)):
                    await self._progress.delete_many({"migration": {"$in": sorted(self._migrations)}})
        finally:
            await self._lock.release()

    async def rollback(self) -> None:
        if not self._open:
            return
        self._open = False
        await self._lock.release()


async def begin_migration(
    driver: MongoDBDriver, generation: Generation, lock_timeout: float | None = None
) -> MongoDBMigration:
    """Take the lock (waiting for a live holder), then start a migration run (``MongoDBDriver.begin_migration``).

    ``lock_timeout``: seconds to wait for the lock (default: the driver's ``migration_lock_wait``).
    """
    lock = MigrationLock(
        generation.database[MIGRATE_COLLECTION],
        driver.description,
        lease=driver.migration_lock_lease,
        wait=driver.migration_lock_wait if lock_timeout is None else lock_timeout,
    )
    await lock.acquire()
    return MongoDBMigration(driver, generation, lock)
