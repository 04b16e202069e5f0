"""The driver interface: what a database driver implements for Ommi.

A driver works on *canonical* values (see :mod:`ommi.models.types`): core has
validated and encoded every value before a driver sees it, and decodes what a
driver returns. Rows are tuples in the order of ``schema.fields``.

Lifecycle: :meth:`Driver.connect` builds a driver without I/O; :meth:`Driver.open`
connects (pools open here); :meth:`Driver.close` releases everything and is
idempotent. Each operation on the driver itself runs in its own implicit
transaction (autocommit). :meth:`Driver.begin` returns a
:class:`DriverTransaction` that owns one connection until it commits or rolls
back; core guarantees it calls exactly one of those, also on cancellation.

Errors: translate the client library's exceptions into :mod:`ommi.errors`
(most specific class, chained with ``raise ... from exc``).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, Self

from ommi.drivers.capabilities import Capabilities
from ommi.errors import UnsupportedFeature
from ommi.expressions import Query
from ommi.query.aggregate import Aggregation, aggregate_rows

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    from ommi.migrations.inspection import Inspection
    from ommi.migrations.operations import MigrationStep
    from ommi.models.schema import Field, ModelSchema
else:
    from typing import TypeVar

__all__ = [
    "Driver",
    "DriverSettings",
    "DriverTransaction",
    "IsolationLevel",
    "MigrationTransaction",
    "Operations",
    "Row",
    "TransactionOptions",
]

Row = tuple[Any, ...]
"""One stored row as drivers exchange it with core: the model's canonical values in field order.

Canonical values are what :class:`ommi.models.types.StorageType` names (``int``,
``str``, ``bytes``, ``Decimal``, ...); a driver converts what its client returns
into them (``row_converter`` builds a fast converter) and core builds model
instances from them.
"""


IsolationLevel = Literal["read_committed", "repeatable_read", "serializable"]
"""The isolation levels ``db.transaction(isolation=...)`` names (the SQL standard's, spelled in Python)."""


@dataclasses.dataclass(frozen=True, slots=True)
class TransactionOptions:
    """How ``db.transaction(...)`` asks a driver to run one transaction; ``None`` everywhere is the default.

    Core passes it to :meth:`Driver.begin` only when one field is set, after
    checking the driver's capabilities, so a driver written before these
    options keeps working as long as it does not declare them.
    """

    isolation: IsolationLevel | None = None
    """The isolation level; ``None``: the database's default."""

    statement_timeout: float | None = None
    """Seconds any one statement of the transaction may run; ``None``: the driver's ``statement_timeout`` setting.

    Expiry raises :class:`~ommi.errors.TimeoutError` naming ``statement_timeout``
    (capability ``timeouts``; core checks the value is a number above 0).
    """

    lock_timeout: float | None = None
    """Seconds a statement (or the transaction's start) waits for a lock; ``None``: the ``lock_timeout`` setting.

    Expiry raises :class:`~ommi.errors.TimeoutError` naming ``lock_timeout``
    (capability ``timeouts``).
    """

    def is_default(self) -> bool:
        """Whether every option is unset (the driver's plain ``begin()``)."""
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


_BOTH_TIMEOUTS = frozenset({"statement_timeout", "lock_timeout"})


class DriverSettings(Protocol):
    """What the settings of every driver have; each driver's own settings class adds the rest.

    ``SQLiteSettings``, ``PostgreSQLSettings`` and ``MongoDBSettings`` are such
    classes: a driver declares its own as ``Driver[MySettings]``.
    """

    @property
    def batch_size(self) -> int:
        """Rows per batch for ``.all`` when a query does not set one."""
        ...


if TYPE_CHECKING:
    # A bare ``Driver`` means ``Driver[DriverSettings]`` (typing_extensions exists for checkers only:
    # ommi does not depend on it, and TypeVar takes ``default`` at run time from Python 3.13 on).
    SettingsT_co = TypeVar("SettingsT_co", bound=DriverSettings, covariant=True, default=DriverSettings)
else:
    SettingsT_co = TypeVar("SettingsT_co", bound=DriverSettings, covariant=True)


class Operations(abc.ABC):
    """Data operations shared by a driver and its transactions."""

    @abc.abstractmethod
    async def insert(self, schema: ModelSchema, rows: Sequence[Row]) -> Sequence[Any] | None:
        """Insert rows; all or none are stored.

        Generated keys must never collide with keys the application chose:
        when a row brings its own value for the generated field, the
        generator moves past it (PostgreSQL's driver advances the sequence,
        SQLite's ``INTEGER PRIMARY KEY`` does so itself, MongoDB's counter is
        raised with ``$max``). The conformance suite checks it.

        If the task is cancelled while a key-generating insert runs, the rows
        may be stored; core then still receives their keys, so a driver lets
        such an insert finish (or rolls it back) before the cancellation
        propagates, never leaving stored rows whose keys nobody learned.

        Returns:
            When ``schema.auto_field`` is set: its value for every row, in order
            (the given value, or the one the database generated where the row
            held ``None``). Otherwise ``None``. Core decodes the generated
            values through the key field's codec (an integral float becomes an
            ``int``) and raises ``DatabaseError`` for one the field cannot hold.
        """

    @abc.abstractmethod
    def fetch(self, query: Query, batch_size: int) -> AsyncGenerator[list[Row], None]:
        """Yield the matching rows in batches of at most ``batch_size``.

        An async generator: core closes it (``aclose``) when the caller stops
        early, and the driver must then release its cursor.
        """

    @abc.abstractmethod
    async def count(self, query: Query) -> int:
        """The number of rows the query matches (ignoring sort; honouring limit/offset)."""

    @abc.abstractmethod
    async def delete(self, query: Query) -> int:
        """Delete the matching rows; return how many were deleted."""

    @abc.abstractmethod
    async def update(self, query: Query, values: Mapping[Field, Any]) -> int:
        """Set ``values`` on the matching rows; return how many matched.

        Each value is a canonical value, or, on a driver declaring the
        ``update_expressions`` capability (core refuses them otherwise), a
        :class:`~ommi.models.schema.Field` of ``query.model`` to copy or an
        :class:`ommi.expressions.Arithmetic` node, checked by core and with
        its literals canonical (:mod:`ommi.query.arithmetic`). Those are
        computed per row from the row as it was before the update, in the
        database's own atomic write; a row whose result leaves the field's
        range fails the whole update (``ValidationError``), changing no row.
        """

    async def aggregate(self, query: Query, aggregation: Aggregation) -> list[Row]:
        """The aggregates of the rows ``query`` matches, per group: see :mod:`ommi.query.aggregate`.

        Core has checked ``aggregation`` (its fields belong to ``query.model``,
        its ``having`` resolved and its values canonical) and gives a query
        without sort, limit or lock; a row joined to several related rows
        counts once, as :meth:`fetch` returns it once. Returns one row per
        group, ordered by the group fields ascending (NULL first): the group
        fields' canonical values, then each aggregate's canonical value
        (:func:`ommi.query.aggregate.aggregate_rows` defines them). Without
        ``group_by`` exactly one row, also when no row matches.

        This default streams the rows through :meth:`fetch` and computes in
        Python, so every driver gives correct results; a driver overrides it
        to let the database compute (one ``GROUP BY`` statement, a
        ``$group`` pipeline), and must then give the same values.

        Raises:
            ValidationError: an integer sum outside the signed 64-bit range, a
                float sum that overflows, a Decimal sum too long to be exact.
        """
        matched = Query(query.model, query.where, query.joins)
        rows: list[Row] = []
        batches = self.fetch(matched, 1000)
        try:
            async for batch in batches:
                rows.extend(batch)
        finally:
            await batches.aclose()
        return aggregate_rows(rows, aggregation)

    async def upsert(self, schema: ModelSchema, rows: Sequence[Row], on: Sequence[Field]) -> Sequence[Any] | None:
        """Insert each row, or replace the stored row it matches on ``on``; all or none are written.

        Capability ``upsert`` (absent by default: this default refuses). Core
        has validated and encoded the rows, refused an empty call, and checked
        before any I/O that ``on`` is the key of ``schema`` or exactly the
        fields of one of its unique constraints (any order), and that no two
        rows match on equal ``on`` values.

        The rows are written one after the other, in order, each atomically
        (a concurrent upsert of the same row never makes it fail or store it
        twice), and the whole call succeeds or fails together:

        * ``on`` is the key: a row whose generated key is ``None`` is
          inserted (its key generated); another row replaces every non-key
          field of the stored row with that key, or is inserted.
        * ``on`` is a unique constraint: a row with ``None`` in one of its
          fields never matches (SQL's rule) and is inserted. A matched row
          keeps its stored key and gets every non-key field of the row; the
          row must then hold that key or ``None`` for a generated key,
          otherwise :class:`~ommi.errors.IntegrityError`. A row matching no
          stored row is inserted, its key generated when ``None``.
        * A write that breaks another unique constraint (the key included) is
          an :class:`~ommi.errors.IntegrityError`, and nothing of the call is
          kept.

        Explicit values of a generated key are reserved as ``insert`` does
        (the generator moves past them). Cancelled while it runs, a driver
        behaves as for ``insert`` with generated keys: core then still
        receives the keys, so the driver finishes or undoes the call before
        the cancellation propagates.

        Returns:
            When ``schema.auto_field`` is set: its stored value for every row,
            in order (the given key, the generated one, or the matched row's).
            Otherwise ``None``.
        """
        raise UnsupportedFeature(f"this driver ({type(self).__name__}) has no upsert (capability 'upsert' is absent)")

    async def fetch_values(
        self, query: Query, fields: Sequence[Field], distinct: bool, batch_size: int
    ) -> AsyncGenerator[list[Row], None]:
        """Yield tuples of the canonical values of ``fields`` (in that order) of the matching rows, in batches.

        ``.values(...)`` / ``.values(...).distinct()`` run it. Core has checked
        that ``fields`` are one or more fields of ``query.model`` (a field may
        come twice) and that the query is not marked ``for_update()``.

        * ``distinct`` false: one tuple per matching row, in the query's order
          (its sort ends with the key whenever it sorts or windows), the
          window (``limit``/``offset``) applied to the rows.
        * ``distinct`` true: each different tuple once. Core then sorts by
          projected fields only, every projected field once (the requested
          sort, then the other fields ascending), so equal tuples are adjacent
          and their order is complete; ``limit``/``offset`` apply to the
          distinct tuples. ``None`` equals ``None`` here (SQL ``DISTINCT``).

        An async generator, closed by core when the caller stops early, like
        :meth:`fetch`. The default runs :meth:`fetch` (without the window when
        ``distinct``, then drops repeated tuples and windows in Python, holding
        the distinct tuples in memory) and picks the columns; a driver
        overrides it to read only the projected columns.
        """
        indexes = [f.index for f in fields]
        if not distinct:
            batches = self.fetch(query, batch_size)
            try:
                async for rows in batches:
                    yield [tuple([row[i] for i in indexes]) for row in rows]
            finally:
                await batches.aclose()
            return
        whole = dataclasses.replace(query, limit=None, offset=0)
        seen = _Seen()
        distinct_rows: list[Row] = []
        batches = self.fetch(whole, batch_size)
        try:
            async for rows in batches:
                for row in rows:
                    values = tuple([row[i] for i in indexes])
                    if seen.add(values):
                        distinct_rows.append(values)
        finally:
            await batches.aclose()
        end = None if query.limit is None else query.offset + query.limit
        window = distinct_rows[query.offset : end]
        for start in range(0, len(window), batch_size):
            yield window[start : start + batch_size]

    async def exists(self, query: Query) -> bool:
        """Whether the query matches a row (``.exists``); sort ignored, ``offset`` honoured.

        Core passes the query with ``limit=1`` and no sort: true when a row
        exists past ``offset`` (``find(...).limit(n, page).exists`` asks
        whether that page has a row). The default fetches at most that row.
        """
        batches = self.fetch(query, 1)
        try:
            async for rows in batches:
                if rows:
                    return True
        finally:
            await batches.aclose()
        return False

    async def raw(
        self, statement: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement of the database's own language as given; return its rows as the client gives them.

        Capability ``raw_sql`` (absent by default: this default refuses).
        ``params`` are bound by the client library in its own paramstyle
        (never spliced into the text). A statement that returns no rows gives
        ``[]``. No value is decoded: the rows hold what the client library
        returns. Inside a transaction the statement runs on its connection,
        one turn like any other statement; errors are translated into
        :mod:`ommi.errors` as for every other statement.

        Raises:
            UnsupportedFeature: the driver does not declare ``raw_sql`` (the default).
        """
        raise UnsupportedFeature(
            f"this driver ({type(self).__name__}) runs no raw statements (capability 'raw_sql' is absent)"
        )


class _Seen:
    """The tuples met so far, for ``distinct``: hashed where they can be, compared one by one where not."""

    __slots__ = ("_hashed", "_other")

    def __init__(self) -> None:
        self._hashed: set[Row] = set()
        self._other: list[Row] = []

    def add(self, values: Row) -> bool:
        """Remember ``values``; whether they were new."""
        try:
            if values in self._hashed:
                return False
            self._hashed.add(values)
        except TypeError:  # an unhashable canonical value (a JSON document)
            if values in self._other:
                return False
            self._other.append(values)
        return True


class DriverTransaction(Operations):
    """Operations on one connection inside one database transaction.

    Several tasks may share one transaction (``asyncio.gather`` over
    ``t.add(...)`` calls): the driver must keep their statements from
    interleaving on the one connection (the bundled SQL drivers give the
    tasks turns with a lock per transaction), and a cancelled task must not
    leave the connection mid-statement for the next one.

    When a statement fails inside the transaction, the transaction stays
    usable for rollback: the driver raises the translated error and the
    application (or ``async with db.transaction()``) decides. Where the
    database poisons the transaction after an error (PostgreSQL), further
    statements raise :class:`~ommi.errors.TransactionError` until it rolls
    back; a driver must not silently commit a transaction one of whose
    statements failed. After ``commit()`` or ``rollback()`` every operation,
    including a stream begun inside it, raises ``TransactionError``.
    """

    @abc.abstractmethod
    async def commit(self) -> None:
        """Make the transaction's writes permanent and release the connection."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Discard the transaction's writes and release the connection."""

    # -- savepoints (capability "savepoints"; see ommi._transactions) ---------------

    async def savepoint(self, name: str) -> None:
        """Mark a savepoint called ``name`` (SQL ``SAVEPOINT``); savepoints nest.

        Core makes the names (``ommi_sp_`` and random hex: letters, digits and
        underscores, never one an application or the driver itself uses), calls
        these three methods one at a time, innermost savepoint first, and lets
        each finish even when its task is cancelled. When it raises, core takes
        the savepoint as not made.

        Raises:
            UnsupportedFeature: the driver does not declare ``savepoints`` (the default).
        """
        raise UnsupportedFeature(self._no_savepoints())

    async def release_savepoint(self, name: str) -> None:
        """Keep what was done since savepoint ``name`` in the transaction, and forget the savepoint (``RELEASE``).

        Savepoints made after it and not yet released are released with it.
        """
        raise UnsupportedFeature(self._no_savepoints())

    async def rollback_to_savepoint(self, name: str) -> None:
        """Undo everything since savepoint ``name`` and forget it (``ROLLBACK TO`` then ``RELEASE``).

        Afterwards the transaction is usable again, even where a failed
        statement had aborted it (PostgreSQL): that is what savepoints are for.
        """
        raise UnsupportedFeature(self._no_savepoints())

    def _no_savepoints(self) -> str:
        return f"{type(self).__name__} has no savepoints (capability 'savepoints' is absent)"


class Driver(Operations, Generic[SettingsT_co]):
    """A connected (or connectable) database.

    Subclasses set :attr:`name` and :attr:`capabilities`, accept settings in
    :meth:`connect` (``None`` for defaults, a URL or path string, or a
    mapping), and set :attr:`settings` when built. A driver names its settings
    class as the type argument, ``class SQLiteDriver(Driver[SQLiteSettings])``,
    so that ``driver.settings`` has that type; a bare ``Driver`` is
    ``Driver[DriverSettings]``.
    """

    name: ClassVar[str] = "driver"
    """Short name, as registered (``"sqlite"``)."""

    settings: SettingsT_co
    """The driver's resolved settings (``SQLiteSettings``...), set when the driver is built.

    Through ``db.driver`` (a ``Driver``, whichever driver the URL chose) a type
    checker knows only :class:`DriverSettings`; narrow the driver first,
    ``isinstance(db.driver, SQLiteDriver)``, to reach the driver's own settings.
    """

    capabilities: Capabilities = Capabilities()
    """What this driver supports; an instance may narrow it after :meth:`open`."""

    default_batch_size: int = 1000
    """Rows per batch for ``.all`` when a query does not set one."""

    supported_isolation_levels: frozenset[str] = frozenset()
    """The ``isolation`` levels :meth:`begin` honours (with the capability ``isolation_levels``).

    A driver may honour a level by running a stronger one (SQLite's
    transactions are all serializable): the SQL standard allows it.
    """

    @classmethod
    @abc.abstractmethod
    def connect(cls, settings: str | Mapping[str, Any] | None = None, /, **options: Any) -> Self:
        """Build a driver from settings without doing I/O.

        Raises:
            ConfigurationError: the settings cannot be used.
        """

    @property
    def description(self) -> str:
        """Where this driver points, safe to print (no password)."""
        return self.name

    @property
    def transaction_timeouts(self) -> frozenset[str]:
        """The :class:`TransactionOptions` timeouts :meth:`begin` honours (``"statement_timeout"``, ``"lock_timeout"``).

        By default both when the driver declares ``timeouts``, none otherwise. A
        driver that can honour only one kind keeps ``timeouts`` absent (it means
        both) and names the one here: core then refuses only the other, before any
        I/O, with ``UnsupportedFeature`` carrying ``absent_reason("timeouts")``.
        """
        return _BOTH_TIMEOUTS if self.capabilities.timeouts else frozenset()

    def absent_reason(self, capability: str) -> str | None:
        """Why ``capability`` is absent here, when the driver knows more than the capability's name.

        Core puts it into the ``UnsupportedFeature`` it raises (e.g. "the server is
        standalone"). The default knows nothing more.
        """
        return None

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect. Raises :class:`ommi.errors.ConnectionError` when the database is unreachable."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every connection; safe to call twice, and while operations run.

        Operations and transactions begun before ``close()`` finish, or fail
        with ``ConnectionError`` / ``TransactionError``; they never touch the
        state of a later :meth:`open`, which builds everything afresh (new
        pools, new locks). ``Ommi`` itself refuses new work after ``close()``
        with ``DatabaseClosedError``.
        """

    @abc.abstractmethod
    async def begin(self, options: TransactionOptions | None = None) -> DriverTransaction:
        """Start a transaction on a connection of its own.

        ``options`` is ``None`` for a plain transaction; core passes a
        :class:`TransactionOptions` only when one of its fields is set and the
        driver declares the capability that field needs.
        """

    @abc.abstractmethod
    async def apply_schema(self, schemas: Sequence[ModelSchema]) -> None:
        """Create missing tables and indexes; never drop or empty anything.

        Drift is whatever would make the stored table answer differently
        from the model. The bundled SQL drivers count a missing or extra
        column, a column whose storage type, nullability or key position
        differs; MongoDB's driver compares the field description it stored
        when it created the collection. Every difference is reported in one
        error, and the check happens before any
        change, so an error leaves the database as it was.

        Raises:
            SchemaMismatchError: a stored table differs from its model (naming
                the table and the differences); nothing was changed.
        """

    @abc.abstractmethod
    async def drop_schema(self, schemas: Sequence[ModelSchema]) -> None:
        """Drop the tables of ``schemas`` (and their indexes) if they exist."""

    # -- migrations (capability "migrations"; see ommi.migrations) ------------------

    async def begin_migration(self, *, lock_timeout: float | None = None) -> MigrationTransaction:
        """Start the transaction one migration is applied (or undone) in, holding the migration lock.

        The lock makes concurrent runners take turns: ``ommi.migrations`` reads
        the history again inside the transaction, so each migration is applied
        once however many processes run ``apply`` at the same moment. SQLite
        holds its write lock from ``BEGIN IMMEDIATE``; a PostgreSQL driver
        takes ``pg_advisory_xact_lock`` inside the transaction; a database
        without transactional DDL holds a lock record with an expiry.

        Args:
            lock_timeout: seconds to wait for the migration lock and, for the
                rest of the transaction, for any lock its statements need
                (``None``: the driver's own lock-wait setting, which is finite).

        Raises:
            MigrationTimeoutError: the lock stayed held for ``lock_timeout``
                (the message names it and, where the database tells, its holder).
            UnsupportedFeature: the driver does not declare ``migrations`` (the default).
        """
        raise UnsupportedFeature(self._no_migrations())

    def migration_statements(self, step: MigrationStep) -> list[str]:
        """What :meth:`MigrationTransaction.apply_operation` would run for ``step``, as text; no I/O.

        ``ommi.migrations.apply(..., dry_run=True)`` and ``ommi migrate sql``
        print it: SQL statements (parameters shown after them), or a
        description of each command for a database without SQL.

        Raises:
            UnsupportedFeature: the driver does not declare ``migrations`` (the default).
        """
        raise UnsupportedFeature(self._no_migrations())

    # -- inspection (capability "inspection"; see ommi inspect) -----------------------

    async def inspect_schema(self) -> Inspection:
        """Read the stored tables (or collections) into an :class:`~ommi.migrations.inspection.Inspection`.

        Every table of the driver's schema except Ommi's own (``ommi_migrations``
        and anything else the driver keeps): each becomes a model whose
        ``use_models()`` passes against it, or is skipped with the reason
        (:func:`ommi.migrations.inspection.build_inspection` applies the shared
        rules). Reads only; changes nothing.

        Raises:
            UnsupportedFeature: the driver does not declare ``inspection`` (the default).
        """
        reason = self.absent_reason("inspection")
        raise UnsupportedFeature(
            f"the {self.name} driver cannot read its tables into models (capability 'inspection' is absent for "
            f"{self.description})" + (f": {reason}" if reason else "")
        )

    def _no_migrations(self) -> str:
        reason = self.absent_reason("migrations")
        return (
            f"the {self.name} driver cannot apply migrations (capability 'migrations' is absent for "
            f"{self.description})" + (f": {reason}" if reason else "")
        )


class MigrationTransaction(DriverTransaction):
    """A transaction that also changes the schema: one migration, its data step and its history record.

    :meth:`Driver.begin_migration` returns it holding the migration lock, which
    it keeps until :meth:`commit` or :meth:`rollback`. Between them
    ``ommi.migrations`` reads and writes its history (the ``ommi_migrations``
    model, through the ordinary :class:`Operations`), calls
    :meth:`apply_operation` for each operation of the migration in order, and
    runs the migration's ``run(db)`` through the same transaction.

    Where the database has transactional DDL (SQLite, PostgreSQL), everything
    commits together or not at all: a run killed half-way leaves the database
    at the previous migration. Where it has not (MongoDB), each operation must
    be idempotent and the driver records its progress (``step.migration``,
    ``step.index``) under the lock, so that the next run resumes; the history
    record is written last.
    """

    @abc.abstractmethod
    async def apply_operation(self, step: MigrationStep) -> None:
        """Apply ``step.operation``, which takes the schema from ``step.before`` to ``step.after``.

        ``step.before.schema(name)`` and ``step.after.schema(name)`` give the
        :class:`~ommi.models.schema.ModelSchema` of a model as it is before and
        after the operation (built from the migration files, never from the
        application's classes), so a SQL driver builds its statements with the
        same compiler as ``apply_schema``: a migrated table then passes
        ``use_models`` with no drift. Stored rows are kept (an added field gets
        ``field.default`` or ``None``, a converted one the converted value),
        and so are keys, references and indexes.

        Raises:
            MigrationError: the operation cannot be applied on this database.
            IntegrityError: stored rows break a constraint of the new schema.
        """
