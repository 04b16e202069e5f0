"""``make``, ``apply``, ``status`` and ``down``: the migration loop, on any driver with the ``migrations`` capability.

``make`` compares the models with the state the migration files replay into
and writes the next file; it reads no database. ``apply`` reads the history
(the ``ommi_migrations`` model), then applies each pending migration in a
transaction of its own from :meth:`ommi.drivers.Driver.begin_migration`,
which holds the migration lock: inside it the history is read again (another
process may have applied the migration meanwhile), the operations run, then
the migration's ``run(db)``, then its history record is written, and all of
it commits together. ``down`` does the same backwards, for migrations whose
operations all have an inverse.

Every wait for a lock is bounded (``lock_timeout``): the migration lock,
and the locks the statements of the migration need (a table another
transaction uses). A wait that runs out is a :class:`MigrationTimeoutError`
and that migration is rolled back, so a migration never queues for ever behind
a long transaction while every later query on the table queues behind it.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import datetime as _dt
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ommi._context import _active
from ommi._logging import get_logger
from ommi.database import Executor, Ommi
from ommi.drivers.base import Driver, MigrationTransaction, Operations
from ommi.errors import (
    ConfigurationError,
    MigrationError,
    MigrationTimeoutError,
    OperationalError,
    TimeoutError,
    UnsupportedFeature,
)
from ommi.migrations.diff import Rename, diff, parse_rename, rename_hint
from ommi.migrations.files import DEFAULT_DIRECTORY, DataStep, Migration, load, render, replay, slug_for
from ommi.migrations.history import MigrationRecord, history_models
from ommi.migrations.operations import MigrationStep, Operation
from ommi.migrations.state import HISTORY_TABLE, SchemaState
from ommi.models.collections import ModelCollection
from ommi.models.schema import get_schema, is_model
from ommi.observe import ObservedOperations

if TYPE_CHECKING:
    from ommi.models.schema import ModelSchema

__all__ = ["MigrationDatabase", "MigrationResult", "MigrationStatus", "apply", "down", "make", "status"]

log = get_logger("ommi.core.migrations")


class MigrationDatabase(Executor):
    """What a migration's ``run(db)`` and ``reverse(db)`` receive: Ommi's API inside the migration's transaction.

    ``add``, ``find``, ``save``... work as on a transaction. The application's
    model classes describe the latest version of the schema, not the one this
    migration leaves, so query through :attr:`models`: a model class per model
    as the migrations describe it at this point, by stored name::

        async def run(db: MigrationDatabase) -> None:
            User = db.models["users"]
            await db.find(User, User.country == "").update(country="unknown").or_raise()

    No implicit set-up happens here: every table is the migrations' business.
    """

    def __init__(self, database: Ommi, transaction: MigrationTransaction, state: SchemaState) -> None:
        self._db = database
        self._transaction = transaction
        self._state = state

    @property
    def models(self) -> Mapping[str, type[Any]]:
        """A model class per model of the schema at this point of the migrations, by stored name."""
        return self._state.model_classes()

    @property
    def state(self) -> SchemaState:
        """The schema at this point of the migrations."""
        return self._state

    def _database(self) -> Ommi:
        return self._db

    def _target(self) -> Operations:
        return self._transaction

    async def _operations(self, schemas: Iterable[ModelSchema]) -> Operations:
        return ObservedOperations(self._transaction, self._db.driver.name)


@dataclasses.dataclass(frozen=True)
class MigrationResult:
    """A migration ``apply`` or ``down`` ran (or, with ``dry_run``, would run).

    Attributes:
        id: the migration's id.
        path: its file.
        statements: what the driver ran for its operations (SQL, or a
            description of each command), in order, with a line for its data step.
    """

    id: str
    path: Path
    statements: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class MigrationStatus:
    """Where one migration stands in a database.

    Attributes:
        id: the migration's id.
        path: its file; ``None`` for a migration the database has applied but
            the directory does not have.
        state: ``"applied"``, ``"pending"``, ``"changed"`` (applied, but its
            file's operations changed since: ``apply`` refuses to go on) or
            ``"unknown"`` (applied, no file).
        applied_at: when it was applied, if it was.
    """

    id: str
    path: Path | None
    state: Literal["applied", "pending", "changed", "unknown"]
    applied_at: _dt.datetime | None = None


# -- make ----------------------------------------------------------------------------------


def _model_classes(models: ModelCollection | Iterable[type]) -> list[type]:
    classes = list(models)
    for model in classes:
        if not is_model(model):
            raise MigrationError(f"{model!r} is not an Ommi model; decorate it with @ommi_model")
    return classes


def _resolve_renames(renames: Iterable[str | Rename], classes: Sequence[type]) -> list[Rename]:
    """Renames with stored names: the model may be named by class or stored name, the new field by attribute too."""
    resolved = []
    for rename in renames:
        model, old, new = parse_rename(rename) if isinstance(rename, str) else rename
        schema = next((get_schema(c) for c in classes if model in (c.__name__, c.__qualname__)), None)
        if schema is None:
            schema = next((get_schema(c) for c in classes if get_schema(c).name == model), None)
        if schema is None:
            raise MigrationError(f"rename {model}.{old}={new}: no model given is named {model!r}")
        field = schema.by_name.get(new)
        resolved.append((schema.name, old, field.column if field is not None else new))
    return resolved


def _next_number(migrations: Sequence[Migration]) -> int:
    return max((m.number for m in migrations), default=0) + 1


def make(
    models: ModelCollection | Iterable[type],
    directory: str | Path = DEFAULT_DIRECTORY,
    *,
    name: str | None = None,
    allow_destructive: bool = False,
    renames: Iterable[str | Rename] = (),
) -> Path | None:
    """Write the next migration file of ``directory``: the operations from the migrations' state to ``models``.

    Reads no database. The file is named ``NNNN_<name>.py``, follows the last
    migration of the directory, and is meant to be reviewed and committed.

    Args:
        models: the application's models (a collection, or model classes).
        directory: the migrations directory (created if missing).
        name: the file name's slug (default: one describing the operations).
        allow_destructive: write operations that drop or narrow stored data
            (a removed field or model, a required field made of an optional
            one, a lossy type change).
        renames: fields stored under a new name, ``"Model.old=new"`` (the
            model by class or stored name, ``old`` its stored name, ``new``
            the new field); without it a rename is a removal and an addition.

    Returns:
        The written file, or ``None`` when the models match the migrations.

    Raises:
        MigrationError: a destructive operation without ``allow_destructive``
            (naming each), a change that cannot be migrated automatically, a
            broken migrations directory, a model named ``ommi_migrations``.
    """
    classes = _model_classes(models)
    migrations = load(directory)
    states = replay(migrations)
    old = states[-1] if states else SchemaState()
    new = SchemaState.from_models(classes)
    operations = diff(old, new, renames=_resolve_renames(renames, classes))
    if not operations:
        return None
    destructive = [op for op in operations if op.destructive]
    if destructive and not allow_destructive:
        raise MigrationError(
            "the models drop or narrow stored data: "
            + "; ".join(op.describe() for op in destructive)
            + ". Nothing was written. If that is meant, pass allow_destructive=True "
            "(ommi migrate make --allow-destructive) and back the data up before applying" + rename_hint(operations)
        )
    # A name is a message, as Alembic's -m is: "add city" becomes the slug add_city.
    slug = (
        slug_for(operations, first=not migrations) if name is None else re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    )
    if not slug:
        raise MigrationError(f"a migration name needs a letter or a digit (ASCII), not {name!r}")
    migration_id = f"{_next_number(migrations):04d}_{slug}"
    parent = migrations[-1].id if migrations else None
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{migration_id}.py"
    summary = f"Migration {migration_id}: {len(operations)} operation{'s' if len(operations) != 1 else ''}."
    text = render(migration_id, parent, operations, summary=summary)
    try:
        with path.open("x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        raise MigrationError(f"{path} exists already; name the migration otherwise (name=...)") from None
    # The file must replay into the models' state, or it would mislead every later `make`.
    written = load(root)
    if replay(written)[-1] != new:
        path.unlink()
        raise MigrationError(f"{path} did not replay into the models' schema (an Ommi bug); it was removed")
    log.info("migration.make", directory=str(root), migration=migration_id, operations=len(operations))
    return path


# -- reading the history --------------------------------------------------------------------


def _check_capability(driver: Driver) -> None:
    if not driver.capabilities.migrations:
        reason = driver.absent_reason("migrations")
        raise UnsupportedFeature(
            f"the {driver.name} driver cannot apply migrations (capability 'migrations' is absent for "
            f"{driver.description})" + (f": {reason}" if reason else "")
        )


async def _records(executor: Executor) -> dict[str, MigrationRecord]:
    rows = await executor.find(MigrationRecord).all.to_list()
    return {row.id: row for row in rows}


async def _records_if_any(db: Ommi) -> dict[str, MigrationRecord]:
    """The history, or nothing when its table does not exist (status and dry runs create nothing)."""
    try:
        return await _records(db)
    except OperationalError:
        return {}


def _applied_count(records: Mapping[str, MigrationRecord], migrations: Sequence[Migration], directory: Path) -> int:
    """How many migrations, from the first, the history records; checks the history against the files.

    Raises:
        MigrationError: the history holds a migration the directory lacks, a
            file changed since it was applied (naming it), or migrations were
            applied out of order.
    """
    known = {m.id for m in migrations}
    unknown = sorted(set(records) - known)
    if unknown:
        raise MigrationError(
            f"the database has migrations applied that {directory} does not have: {', '.join(unknown)}; "
            "run this from the checkout that wrote them (or restore their files)"
        )
    for migration in migrations:
        record = records.get(migration.id)
        if record is not None and record.checksum != migration.checksum:
            raise MigrationError(
                f"{migration.path}: its operations changed since it was applied on "
                f"{record.applied_at:%Y-%m-%d %H:%M} UTC. Restore the file as it was applied and write the "
                "change as a new migration (ommi migrate make)"
            )
    count = 0
    while count < len(migrations) and migrations[count].id in records:
        count += 1
    later = [m.id for m in migrations[count:] if m.id in records]
    if later:
        raise MigrationError(
            f"the database has {', '.join(later)} applied but not {migrations[count].id}, which comes before; "
            "the history and the files disagree"
        )
    return count


def _index(migrations: Sequence[Migration], migration_id: str, directory: Path) -> int:
    for index, migration in enumerate(migrations):
        if migration.id == migration_id:
            return index
    raise MigrationError(f"there is no migration {migration_id!r} in {directory}")


def _before(states: Sequence[SchemaState], index: int) -> SchemaState:
    return states[index - 1] if index > 0 else SchemaState()


# -- running one migration -------------------------------------------------------------------


def _steps(migration: Migration, start: SchemaState, *, reverse: bool) -> list[MigrationStep]:
    operations: list[Operation] = []
    for op in reversed(migration.operations) if reverse else migration.operations:
        step = op.inverse() if reverse else op
        if step is None:
            raise MigrationError(f"{migration.path}: {op.describe()} cannot be undone")
        operations.append(step)
    steps = []
    state = start
    for index, operation in enumerate(operations):
        try:
            after = state.apply(operation)
        except MigrationError as exc:
            raise MigrationError(f"{migration.path}: {exc}") from exc
        steps.append(MigrationStep(migration.id, index, operation, state, after, reverse))
        state = after
    return steps


def _statements(
    driver: Driver, migration: Migration, steps: Sequence[MigrationStep], data: DataStep | None
) -> tuple[str, ...]:
    lines = [line for step in steps for line in driver.migration_statements(step)]
    if data is not None:
        lines.append(f"-- {migration.path.name}: {data.__name__}(db)")
    return tuple(lines)


async def _run_data_step(step: DataStep, executor: MigrationDatabase) -> None:
    token = _active.set(executor)
    try:
        await step(executor)
    finally:
        _active.reset(token)


async def _quiet_rollback(transaction: MigrationTransaction, driver: Driver) -> None:
    try:
        await transaction.rollback()
    except Exception:  # the error that made us roll back is the one to report
        log.warning("migration.rollback.failed", driver=driver.name, exc_info=True)


def _check_lock_timeout(lock_timeout: float | None) -> None:
    if lock_timeout is None:
        return
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)):
        raise ConfigurationError(f"lock_timeout must be a number of seconds, not {lock_timeout!r}")
    if not (math.isfinite(lock_timeout) and lock_timeout > 0):
        raise ConfigurationError(
            f"lock_timeout must be a finite number of seconds above 0, not {lock_timeout!r} (an unbounded wait "
            "lets a migration queue behind a long transaction, and every query on the table behind it)"
        )


def _timed_out(
    exc: TimeoutError, driver: Driver, migration: Migration, lock_timeout: float | None
) -> MigrationTimeoutError:
    """The :class:`MigrationTimeoutError` for a lock wait of the driver (``exc``) that ran out inside ``migration``."""
    bound = f"lock_timeout={lock_timeout} s" if lock_timeout is not None else "the driver's lock wait"
    return MigrationTimeoutError(
        f"migration {migration.id} on {driver.description}: a lock it needs stayed held past {bound} ({exc}). "
        "Nothing of the migration was applied; apply again once the other transaction ends, or with a longer "
        "lock_timeout (ommi migrate apply --lock-timeout SECONDS)"
    )


async def _set_up_history(db: Ommi, lock_timeout: float | None) -> dict[str, MigrationRecord]:
    """The history, its table created first if it has no record yet (``use_models``, bounded by ``lock_timeout``).

    A history with records was set up by an earlier ``apply``: it is read
    without ``use_models``, which takes SQLite's write lock (held by any other
    ``apply`` for the whole of a migration) with a wait SQLite cannot cut short.
    """
    try:
        async with asyncio.timeout(lock_timeout):  # opening the database may wait for a lock too
            try:
                records = await _records(db)
            except OperationalError:
                records = {}  # no history table yet
            if records:
                return records
            await db.use_models(history_models)
    except builtins.TimeoutError as exc:  # asyncio.timeout's, or Ommi's (a subclass)
        bound = f"lock_timeout={lock_timeout} s" if lock_timeout is not None else "the driver's lock wait"
        raise MigrationTimeoutError(
            f"{db.driver.description}: waited {bound} to set up the migration history ({HISTORY_TABLE}): the "
            "database stayed locked by another connection (another ommi migrate apply, or a long write). Nothing "
            "was applied; apply again later or with a longer lock timeout"
        ) from exc
    return await _records(db)


async def _in_transaction(
    db: Ommi,
    migrations: Sequence[Migration],
    directory: Path,
    *,
    migration: Migration,
    expected: int,
    lock_timeout: float | None,
    work: Callable[[MigrationTransaction], Awaitable[None]],
) -> bool:
    """Run ``work(executor)`` in a migration transaction if the history still stands at ``expected`` applied.

    Returns whether it ran (``False``: another run moved the history meanwhile, past this migration).

    Raises:
        MigrationTimeoutError: the migration lock, or a lock a statement
            needed, stayed held past ``lock_timeout``; nothing was committed.
    """
    driver = db.driver
    try:
        transaction = await driver.begin_migration(lock_timeout=lock_timeout)
    except MigrationTimeoutError:
        raise  # the driver's own, naming the lock
    except TimeoutError as exc:
        raise _timed_out(exc, driver, migration, lock_timeout) from exc
    try:
        executor = MigrationDatabase(db, transaction, SchemaState())
        count = _applied_count(await _records(executor), migrations, directory)
        if count != expected:
            await transaction.rollback()
            return False
        await work(transaction)
        await asyncio.shield(transaction.commit())
    except TimeoutError as exc:
        await asyncio.shield(_quiet_rollback(transaction, driver))
        if isinstance(exc, MigrationTimeoutError):
            raise
        raise _timed_out(exc, driver, migration, lock_timeout) from exc
    except BaseException:
        await asyncio.shield(_quiet_rollback(transaction, driver))
        raise
    return True


async def _apply_one(
    db: Ommi,
    migration: Migration,
    index: int,
    migrations: Sequence[Migration],
    states: Sequence[SchemaState],
    directory: Path,
    lock_timeout: float | None,
) -> MigrationResult | None:
    steps = _steps(migration, _before(states, index), reverse=False)
    statements = _statements(db.driver, migration, steps, migration.run)

    async def work(transaction: MigrationTransaction) -> None:
        for step in steps:
            await transaction.apply_operation(step)
        executor = MigrationDatabase(db, transaction, states[index])
        if migration.run is not None:
            await _run_data_step(migration.run, executor)
        record = MigrationRecord(migration.id, migration.path.name, migration.checksum, _dt.datetime.now(_dt.UTC))
        await executor.add(record).or_raise()

    started = time.perf_counter()
    done = await _in_transaction(
        db, migrations, directory, migration=migration, expected=index, lock_timeout=lock_timeout, work=work
    )
    if not done:
        log.info(
            "migration.apply.skipped", driver=db.driver.name, migration=migration.id, reason="applied by another run"
        )
        return None
    log.info(
        "migration.apply.complete",
        driver=db.driver.name,
        migration=migration.id,
        operations=len(steps),
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return MigrationResult(migration.id, migration.path, statements)


async def _undo_one(
    db: Ommi,
    migration: Migration,
    index: int,
    migrations: Sequence[Migration],
    states: Sequence[SchemaState],
    directory: Path,
    lock_timeout: float | None,
) -> MigrationResult | None:
    steps = _steps(migration, states[index], reverse=True)
    statements = _statements(db.driver, migration, steps, migration.reverse)

    async def work(transaction: MigrationTransaction) -> None:
        executor = MigrationDatabase(db, transaction, states[index])
        if migration.reverse is not None:
            await _run_data_step(migration.reverse, executor)
        for step in steps:
            await transaction.apply_operation(step)
        await executor.find(MigrationRecord, MigrationRecord.id == migration.id).delete.or_raise()

    done = await _in_transaction(
        db, migrations, directory, migration=migration, expected=index + 1, lock_timeout=lock_timeout, work=work
    )
    if not done:
        log.info("migration.down.skipped", driver=db.driver.name, migration=migration.id, reason="moved by another run")
        return None
    log.info("migration.down.complete", driver=db.driver.name, migration=migration.id, operations=len(steps))
    return MigrationResult(migration.id, migration.path, statements)


# -- the API ------------------------------------------------------------------------------------


async def apply(
    db: Ommi,
    directory: str | Path = DEFAULT_DIRECTORY,
    *,
    to: str | None = None,
    dry_run: bool = False,
    lock_timeout: float | None = None,
) -> list[MigrationResult]:
    """Apply the pending migrations of ``directory`` to ``db``, in order, each in one transaction with its record.

    Safe to run from several processes at once (each migration is applied
    once) and to run again (nothing pending, nothing done).

    Args:
        db: the database (opened if it is not yet).
        directory: the migrations directory.
        to: stop after this migration (default: the last).
        dry_run: change nothing; return what would run.
        lock_timeout: seconds each migration waits for the migration lock
            (another ``apply`` or ``down`` running) and, on PostgreSQL, for
            each table lock its statements need; SQLite waits that long for
            its write lock, MongoDB for the lock document. ``None`` (the
            default) keeps the driver's own finite wait: PostgreSQL's
            ``lock_timeout`` setting (30 s), SQLite's ``busy_timeout`` (5 s),
            MongoDB's ``migration_lock_wait`` (300 s).

    Returns:
        The migrations applied by this call (or, with ``dry_run``, that would
        be), with the statements of each.

    Raises:
        UnsupportedFeature: the driver does not declare ``migrations``.
        MigrationError: the files and the history disagree (a changed file,
            named), ``to`` is unknown or behind, an operation does not fit.
        MigrationTimeoutError: a lock stayed held past ``lock_timeout``; the
            migration waiting for it was not applied (those before it were).
        ConfigurationError: ``lock_timeout`` is not a finite number above 0.
    """
    _check_lock_timeout(lock_timeout)
    root = Path(directory)
    migrations = load(root)
    _check_capability(db.driver)
    states = replay(migrations)
    records = await (_records_if_any(db) if dry_run else _set_up_history(db, lock_timeout))
    count = _applied_count(records, migrations, root)
    end = len(migrations) if to is None else _index(migrations, to, root) + 1
    if end < count:
        raise MigrationError(
            f"{to} and later migrations are applied already; go back with ommi.migrations.down(db, to={to!r})"
        )
    results = []
    for index in range(count, end):
        migration = migrations[index]
        if dry_run:
            steps = _steps(migration, _before(states, index), reverse=False)
            results.append(
                MigrationResult(migration.id, migration.path, _statements(db.driver, migration, steps, migration.run))
            )
            continue
        result = await _apply_one(db, migration, index, migrations, states, root, lock_timeout)
        if result is not None:
            results.append(result)
    return results


async def down(
    db: Ommi,
    directory: str | Path = DEFAULT_DIRECTORY,
    *,
    to: str,
    dry_run: bool = False,
    lock_timeout: float | None = None,
) -> list[MigrationResult]:
    """Undo the applied migrations after ``to`` (``"zero"``: all of them), latest first, each in one transaction.

    Each migration runs its ``reverse(db)`` first, then the inverse of its
    operations in reverse order. Inverses restore the schema, not dropped
    data: undoing a removed field adds it back filled with its default.
    ``lock_timeout`` bounds each lock wait as for :func:`apply`.

    Raises:
        UnsupportedFeature: the driver does not declare ``migrations``.
        MigrationError: one of the migrations cannot be undone (all are checked
            before anything runs), ``to`` is unknown or not applied.
        MigrationTimeoutError: a lock stayed held past ``lock_timeout``.
    """
    _check_lock_timeout(lock_timeout)
    root = Path(directory)
    migrations = load(root)
    _check_capability(db.driver)
    states = replay(migrations)
    records = await _records_if_any(db)
    count = _applied_count(records, migrations, root)
    keep = 0 if to == "zero" else _index(migrations, to, root) + 1
    if keep > count:
        raise MigrationError(f"{to} is not applied; nothing to undo (ommi.migrations.apply(db, to={to!r}) gets there)")
    undo = list(range(count - 1, keep - 1, -1))
    problems = [f"{migrations[i].path.name}: {reason}" for i in undo for reason in migrations[i].irreversible()]
    if problems:
        raise MigrationError("cannot go down to " + to + ", nothing was changed: " + "; ".join(problems))
    results = []
    for index in undo:
        migration = migrations[index]
        if dry_run:
            steps = _steps(migration, states[index], reverse=True)
            results.append(
                MigrationResult(
                    migration.id, migration.path, _statements(db.driver, migration, steps, migration.reverse)
                )
            )
            continue
        result = await _undo_one(db, migration, index, migrations, states, root, lock_timeout)
        if result is not None:
            results.append(result)
    return results


async def status(db: Ommi, directory: str | Path = DEFAULT_DIRECTORY) -> list[MigrationStatus]:
    """Every migration of ``directory`` in order, applied or pending, then those applied without a file.

    Reads only: a database without history has every migration pending.
    """
    migrations = load(directory)
    records = await _records_if_any(db)
    statuses = []
    for migration in migrations:
        record = records.get(migration.id)
        if record is None:
            statuses.append(MigrationStatus(migration.id, migration.path, "pending"))
        else:
            state: Literal["applied", "changed"] = "applied" if record.checksum == migration.checksum else "changed"
            statuses.append(MigrationStatus(migration.id, migration.path, state, record.applied_at))
    known = {m.id for m in migrations}
    for record in sorted(records.values(), key=lambda r: r.applied_at):
        if record.id not in known:
            statuses.append(MigrationStatus(record.id, None, "unknown", record.applied_at))
    return statuses
