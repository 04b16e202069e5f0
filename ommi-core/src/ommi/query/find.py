"""``db.find(...)``: the immutable query builder and the iterator ``.all`` returns.

A :class:`FindQuery` runs on a :class:`QueryExecutor` (``ommi.Ommi`` and its
transactions are one): it plans the driver :class:`~ommi.query.ast.Query` and
asks the executor for the operations target to run it on.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar, overload

from ommi._rowcode import row_converter
from ommi.errors import (
    DBStatusNoResultException,
    QueryError,
    RemovedAttributeError,
    SchemaMismatchError,
    ValidationError,
)
from ommi.expressions import And, Arithmetic, Expr, Join, Or, Query, RowLock, SortKey, _conditions
from ommi.models.schema import Field, ModelSchema, get_schema, is_model
from ommi.models.types import INT64_MAX, StorageType
from ommi.query._prefetch import check_prefetch, load_related
from ommi.query.aggregate import Aggregate, AggregateCondition, Aggregation, resolve_having
from ommi.query.arithmetic import check_update_value
from ommi.query.keyset import Cursor, keyset_condition, make_cursor, reversed_sort
from ommi.results import DBAction, DBQueryResult, DBResult

if TYPE_CHECKING:
    from ommi.drivers.base import Operations
    from ommi.models.relations import Relation

__all__ = ["FindQuery", "GroupedQuery", "QueryExecutor", "ResultIterator", "ValuesQuery", "plan_query"]

T = TypeVar("T")
D = TypeVar("D")
V1 = TypeVar("V1")
V2 = TypeVar("V2")
V3 = TypeVar("V3")
V4 = TypeVar("V4")
V5 = TypeVar("V5")
V6 = TypeVar("V6")

_RowsBuilder = Callable[[Sequence[tuple[Any, ...]]], list[Any]]


class QueryExecutor(Protocol):
    """What a :class:`FindQuery` runs on: ``ommi.Ommi`` and its transactions implement it."""

    @property
    def default_batch_size(self) -> int:
        """Rows fetched per batch when ``.all`` is not given a ``batch_size``."""
        ...

    def require_capability(self, capability: str, action: str) -> None:
        """Raise ``UnsupportedFeature`` naming ``capability`` when the driver lacks it; no I/O."""
        ...

    async def query_operations(self, query: Query) -> Operations:
        """The operations target to run ``query`` on, after checking the driver can run it.

        Also sets up the models involved when the executor does that implicitly.

        Raises:
            UnsupportedFeature: the driver lacks a capability the query needs.
        """
        ...


def _join_for(target: ModelSchema, other: ModelSchema) -> Join:
    for f in target.fields:
        if f.reference is not None and f.reference.schema is other:
            return Join(other, ((f, f.reference),))
    other.resolve_references()
    for f in other.fields:
        if f.reference is not None and f.reference.schema is target:
            return Join(other, ((f.reference, f),))
    raise QueryError(
        f"a condition on {other.cls.__name__} cannot filter {target.cls.__name__}: no ReferenceTo field connects them"
    )


def _refuse_aggregate_conditions(condition: Expr) -> None:
    if isinstance(condition, AggregateCondition):
        raise QueryError(
            f"{condition!r} filters groups by an aggregate: give it to .having(...) after .group_by(...), not to find()"
        )
    if isinstance(condition, (And, Or)):
        for item in condition.items:
            _refuse_aggregate_conditions(item)


def plan_query(
    predicates: tuple[Any, ...],
    sort: tuple[SortKey, ...] = (),
    limit: int | None = None,
    offset: int = 0,
    lock: RowLock | None = None,
    cursor: Cursor | None = None,
) -> Query:
    """Turn ``find`` arguments into a driver :class:`Query`.

    The target is the first model class given, else the model of the first
    condition. Conditions on other models become joins. A ``cursor``
    (``.after(row)`` / ``.before(row)``) becomes one more condition on the
    target (:func:`ommi.query.keyset.keyset_condition`) and sorts the query
    (by the key at least).
    """
    target: ModelSchema | None = None
    conditions: list[Expr] = []
    for index, predicate in enumerate(predicates):
        if isinstance(predicate, type):
            if index != 0:
                raise QueryError(f"find() takes the target model first; {predicate.__name__} came later")
            if not is_model(predicate):
                raise QueryError(f"{predicate.__qualname__} is not an Ommi model; decorate it with @ommi_model")
            target = get_schema(predicate)
        else:
            conditions.extend(_conditions((predicate,)))
    for condition in conditions:
        _refuse_aggregate_conditions(condition)
    if target is None:
        if not conditions:
            raise QueryError("find() needs a model class or at least one condition")
        target = next(iter(conditions[0].models()))
        target.resolve_references()
    where: Expr | None = None
    if conditions:
        where = conditions[0] if len(conditions) == 1 else And(tuple(conditions))
    joins: list[Join] = []
    if where is not None:
        seen = {id(target)}
        for model in where.models():
            if id(model) not in seen:
                seen.add(id(model))
                model.resolve_references()
                joins.append(_join_for(target, model))
    for key in sort:
        if key.field.schema is not target:
            raise QueryError(f"cannot sort {target.cls.__name__} by {key.field!r}, a field of another model")
    if sort or limit is not None or offset or cursor is not None:
        sorted_fields = {id(k.field) for k in sort}
        sort = sort + tuple(SortKey(f) for f in target.key if id(f) not in sorted_fields)
    if cursor is not None:
        page = keyset_condition(target, sort, cursor)
        where = page if where is None else And((where, page))
    return Query(target, where, tuple(joins), sort, limit, offset, lock)


_NOTHING_TO_LOCK = {
    "count": "a count returns no rows to lock",
    "exists": "an existence test returns no rows to lock",
    "values": "a projection returns no whole rows to lock",
}

_REMOVED_ITERATOR_METHODS = {
    "get": "Ommi 0.2's `await iterator.get()` is `await iterator.to_list()` now "
    "(in one step: `await db.find(...).all.to_list()`)",
    "one": "Ommi 0.2's `await iterator.one()` is a query action now: `await db.find(...).one.or_raise()`",
}


def _pages_and_cursors(before: bool) -> NoReturn:
    method = "before" if before else "after"
    raise QueryError(
        f".{method}() with limit(n, page) above page 0: pages and cursors do not mix (the cursor already "
        f"says where the page starts); use .{method}(row).limit(n)"
    )


async def _reversed_batches(
    batches: AsyncIterator[list[tuple[Any, ...]]], size: int
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Every row of ``batches`` (a limited window) read first, then given back last row first, ``size`` at a time."""
    rows: list[tuple[Any, ...]] = []
    try:
        async for batch in batches:
            rows.extend(batch)
    finally:
        closer = getattr(batches, "aclose", None)
        if closer is not None:
            await closer()
    rows.reverse()
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class ResultIterator(Generic[T]):
    """Models streamed in batches; ``async for`` over it or ``await it.to_list()``.

    The driver's cursor stays open until the iterator is exhausted or closed
    (``await it.aclose()`` or ``async with``). With ``prefetch``, the related
    models of each batch are loaded when iteration reaches the batch, and
    ``to_list()`` loads them for all the remaining models at once.
    """

    def __init__(
        self,
        schema: ModelSchema,
        batches: AsyncIterator[list[tuple[Any, ...]]],
        *,
        build_rows: _RowsBuilder | None = None,
        prefetch: Callable[[list[Any]], Awaitable[None]] | None = None,
    ) -> None:
        self._build_rows = schema.build_rows if build_rows is None else build_rows
        self._batches = batches
        self._buffer: list[Any] = []
        self._position = 0
        self._exhausted = False
        self._prefetch = prefetch
        self._unloaded = False
        """Whether the buffer's related models are still to be prefetched."""

    async def _fill(self) -> bool:
        if self._exhausted:
            return False
        try:
            rows = await anext(self._batches)
        except StopAsyncIteration:
            self._exhausted = True
            return False
        except BaseException:
            self._exhausted = True
            await self.aclose()
            raise
        self._buffer = self._build_rows(rows)
        self._position = 0
        self._unloaded = self._prefetch is not None
        return True

    async def _load(self, items: list[Any]) -> None:
        assert self._prefetch is not None
        self._unloaded = False
        try:
            await self._prefetch(items)
        except BaseException:
            self._exhausted = True
            await self.aclose()
            raise

    def __aiter__(self) -> ResultIterator[T]:
        return self

    if not TYPE_CHECKING:  # hidden from type checkers, which keep reporting any misspelled attribute

        def __getattr__(self, name: str) -> NoReturn:
            # Reached only when the usual lookup fails: the methods of Ommi 0.2's AsyncBatchIterator.
            if name in _REMOVED_ITERATOR_METHODS:
                raise RemovedAttributeError(
                    f"ResultIterator.{name}(): {_REMOVED_ITERATOR_METHODS[name]}", name=name, obj=self
                )
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self)

    def __iter__(self) -> NoReturn:
        raise TypeError(
            "'ResultIterator' object is not iterable: it streams from the database; use "
            "`async for item in iterator:` or `await iterator.to_list()` (in one step: "
            "`await db.find(...).all.to_list()`)"
        )

    async def __anext__(self) -> T:
        while self._position >= len(self._buffer):
            if not await self._fill():
                raise StopAsyncIteration
        if self._unloaded:
            await self._load(self._buffer[self._position :])
        item: T = self._buffer[self._position]
        self._position += 1
        return item

    async def to_list(self) -> list[T]:
        """Every remaining model, in order."""
        items: list[T] = self._buffer[self._position :]
        loaded = 0 if self._unloaded else len(items)
        self._buffer, self._position = [], 0
        while await self._fill():
            items.extend(self._buffer)
            self._buffer = []
        if self._prefetch is not None and len(items) > loaded:
            await self._load(items[loaded:])
        return items

    async def aclose(self) -> None:
        """Release the driver's cursor now; the iterator yields nothing more."""
        self._exhausted = True
        self._buffer, self._position = [], 0
        closer = getattr(self._batches, "aclose", None)
        if closer is not None:
            await closer()

    async def __aenter__(self) -> ResultIterator[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _UpdateAction(DBAction[int]):
    """``.update``: call it with the values (``.update(name="x")`` or ``.update({...})``)."""

    __slots__ = ("_find",)

    def __init__(self, find: FindQuery[Any]) -> None:
        self._find = find

        async def missing_values() -> int:
            raise QueryError("update() needs the values to set, e.g. .update(name='x')")

        super().__init__(missing_values, query=True, what="find(...).update(...)")

    def __call__(self, values: Mapping[str | Field, Any] | None = None, /, **kwargs: Any) -> DBAction[int]:
        self._consumed()
        merged: dict[str | Field, Any] = dict(values or {})
        merged.update(kwargs)
        find = self._find
        return DBAction(lambda: find._update(merged), query=True, what="find(...).update(...)")


class _StreamAction(DBAction[ResultIterator[T]]):
    """An action giving a :class:`ResultIterator`: awaitable, async-iterable, and ``to_list()``."""

    __slots__ = ()

    def __aiter__(self) -> AsyncIterator[T]:
        self._consumed()
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        iterator = await self._run()
        async with iterator:
            async for item in iterator:
                yield item

    def to_list(self) -> Coroutine[Any, Any, list[T]]:
        """Run the query and return every result, in order: ``await db.find(User).all.to_list()``.

        Raises the query's error, as ``.or_raise()`` does.
        """
        self._consumed()
        return self._to_list()

    async def _to_list(self) -> list[T]:
        iterator = await self._run()
        async with iterator:
            return await iterator.to_list()


class _AllAction(_StreamAction[T]):
    """``.all``: awaitable, callable with ``batch_size=``, and async-iterable."""

    __slots__ = ("_find",)

    def __init__(self, find: FindQuery[T], batch_size: int | None = None) -> None:
        self._find = find
        super().__init__(lambda: find._all(batch_size), query=True, what="find(...).all")

    def __call__(self, *, batch_size: int | None = None) -> _AllAction[T]:
        self._consumed()
        return _AllAction(self._find, batch_size)


class ValuesQuery(_StreamAction[T]):
    """``.values(Post.title, Post.views)``: tuples of those fields, streamed like ``.all``.

    Await it (``.or_raise()``, ``.or_use()``) for a :class:`ResultIterator`
    of tuples, iterate it with ``async for``, or ``await ....to_list()``;
    call it with ``batch_size=`` as ``.all``. :meth:`distinct` keeps each
    different tuple once. The semantics (allowed fields, sort and window with
    ``distinct``) are in :meth:`FindQuery.values`.
    """

    __slots__ = ("_batch_size", "_distinct", "_fields", "_find")

    def __init__(
        self, find: FindQuery[Any], fields: tuple[Any, ...], distinct: bool = False, batch_size: int | None = None
    ) -> None:
        self._find = find
        self._fields = fields
        self._distinct = distinct
        self._batch_size = batch_size
        what = "find(...).values(...)" + (".distinct()" if distinct else "")
        super().__init__(lambda: find._values(fields, distinct, batch_size), query=True, what=what)

    def distinct(self) -> ValuesQuery[T]:
        """The same projection without repeated tuples (SQL ``SELECT DISTINCT``; ``None`` equals ``None``).

        The results are sorted by projected fields only: the query's sort
        (which may name projected fields only), then every other projected
        field ascending, ``None`` first; ``limit()`` and its page apply to
        the distinct tuples.
        """
        self._consumed()
        return ValuesQuery(self._find, self._fields, True, self._batch_size)

    def __call__(self, *, batch_size: int | None = None) -> ValuesQuery[T]:
        self._consumed()
        return ValuesQuery(self._find, self._fields, self._distinct, batch_size)


_tuple_builders: weakref.WeakKeyDictionary[ModelSchema, dict[tuple[int, ...], _RowsBuilder]] = (
    weakref.WeakKeyDictionary()
)


def _tuple_builder(schema: ModelSchema, fields: Sequence[Field]) -> _RowsBuilder:
    """Turns rows of canonical values of ``fields`` into tuples of the application's values (cached per model)."""
    positions = tuple(f.index for f in fields)
    builders = _tuple_builders.get(schema)
    if builders is None:
        builders = _tuple_builders[schema] = {}
    build = builders.get(positions)
    if build is not None:
        return build
    steps = {i: f._decode for i, f in enumerate(fields) if f._decode is not None}
    convert = row_converter(len(fields), steps)
    if convert is None:

        def plain(rows: Sequence[tuple[Any, ...]]) -> list[Any]:
            return rows if isinstance(rows, list) else list(rows)

        build = plain
    else:
        converter = convert

        def decoded(rows: Sequence[tuple[Any, ...]]) -> list[Any]:
            try:
                return converter(rows)
            except (TypeError, ValueError, ArithmeticError):
                for row in rows:
                    _check_decodable(fields, row)
                raise

        build = decoded
    builders[positions] = build
    return build


def _check_decodable(fields: Sequence[Field], row: tuple[Any, ...]) -> None:
    """Raise :class:`SchemaMismatchError` naming the field whose stored value does not decode."""
    for f, value in zip(fields, row, strict=True):
        try:
            f.decode(value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise SchemaMismatchError(
                f"{f!r}: the stored value {value!r} is not a valid {f.python_type.__name__} ({exc}); "
                f"the {f.schema.name!r} rows and the model {f.schema.cls.__qualname__} disagree: migrate the "
                "stored rows (update them to a valid value) or accept the value in the model again"
            ) from exc


class FindQuery(Generic[T]):
    """The result of ``db.find(...)``: refine with ``sort``/``limit``, then run with an action.

    Awaiting the query itself means ``.all``.
    """

    __slots__ = ("_cursor", "_executor", "_limit", "_lock", "_offset", "_predicates", "_prefetch", "_sort")

    def __init__(
        self,
        executor: QueryExecutor,
        predicates: tuple[Any, ...],
        sort: tuple[SortKey, ...] = (),
        limit: int | None = None,
        offset: int = 0,
        lock: RowLock | None = None,
        prefetch: tuple[Relation, ...] = (),
        cursor: Cursor | None = None,
    ) -> None:
        self._executor = executor
        self._predicates = predicates
        self._sort = sort
        self._limit = limit
        self._offset = offset
        self._lock = lock
        self._prefetch = prefetch
        self._cursor = cursor

    def _replace(self, **changes: Any) -> FindQuery[T]:
        values = {
            "sort": self._sort,
            "limit": self._limit,
            "offset": self._offset,
            "lock": self._lock,
            "prefetch": self._prefetch,
            "cursor": self._cursor,
        } | changes
        return FindQuery(self._executor, self._predicates, **values)

    def sort(self, *fields: object) -> FindQuery[T]:
        """Order by ``fields`` (``Model.field`` ascending, or ``.asc`` / ``.desc``).

        Typed ``object``: to a type checker ``Book.year`` is an ``int``
        (see :func:`ommi.asc` / :func:`ommi.desc` for typed sort keys); the
        values are checked when called.
        """
        keys: list[SortKey] = []
        for item in fields:
            if isinstance(item, SortKey):
                keys.append(item)
            elif isinstance(item, Field):
                keys.append(item.asc)
            else:
                raise QueryError(f"sort() takes model fields or field.asc / field.desc, not {item!r}")
        return self._replace(sort=self._sort + tuple(keys))

    def limit(self, limit: int, page: int = 0) -> FindQuery[T]:
        """At most ``limit`` results, skipping ``page`` pages of that size (0-based).

        Raises:
            QueryError: ``limit`` or ``page`` is not an int, is negative (``limit``
                below 1), or the window (``limit``, and ``limit * page`` rows
                skipped) does not fit the signed 64-bit integer databases take.
        """
        for name, value, low in (("limit", limit, 1), ("page", page, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise QueryError(f"limit(): {name} must be an int >= {low}, not {value!r}")
        if limit > INT64_MAX:
            raise QueryError(
                f"limit(): limit {limit} is more than a database accepts (at most {INT64_MAX}); "
                "leave limit() out to get every match"
            )
        offset = limit * page
        if offset > INT64_MAX:
            raise QueryError(
                f"limit(): page {page} of {limit} rows skips {offset} rows, more than a database accepts "
                f"(at most {INT64_MAX}); such a page is past every stored row"
            )
        if offset and self._cursor is not None:
            _pages_and_cursors(self._cursor.before)
        return self._replace(limit=limit, offset=offset)

    def after(self, row: Any) -> FindQuery[T]:
        """Only the matches strictly after ``row`` in the query's sort order: the next keyset page.

        ``row`` is a model instance, usually the last one of the previous page:
        ``db.find(Post).sort(Post.created.desc).after(last).limit(20)``. The key
        fields break ties (core appends them to every sort), so pages never
        repeat or skip a row, even when rows are inserted or deleted between
        them; without ``.sort()`` the order is the key's. ``row``'s values are
        taken (and encoded) now; it need not be stored still, its values mark
        the place. NULL sorts first ascending and last descending, as in
        ``.sort()``.

        Raises:
            QueryError: ``row`` is not a model instance, has no key (an
                instance never stored), is of another model than the query
                finds (when the query runs), the query already has a cursor
                (``.after()`` or ``.before()``: one page boundary per query), or it
                has ``limit(n, page)`` with ``page`` above 0 (pages and cursors
                do not mix: the cursor already says where the page starts).
            ValidationError: a field of ``row`` holds a value it refuses.
        """
        return self._with_cursor(row, before=False)

    def before(self, row: Any) -> FindQuery[T]:
        """Only the matches strictly before ``row`` in the query's sort order: the previous keyset page.

        The results keep the query's order. With ``limit(n)`` they are the
        ``n`` matches closest to ``row`` (the page just before it), still in
        the query's order: the query runs with its sort reversed and core
        reverses the ``n`` rows back, so ``.all`` reads them all before
        yielding the first. Otherwise as :meth:`after`.

        Raises:
            QueryError: as :meth:`after`.
            ValidationError: as :meth:`after`.
        """
        return self._with_cursor(row, before=True)

    def _with_cursor(self, row: Any, *, before: bool) -> FindQuery[T]:
        method = "before" if before else "after"
        if self._cursor is not None:
            raise QueryError(
                f".{method}(): the query already continues {'before' if self._cursor.before else 'after'} a row; "
                "a query takes one cursor (start a new query from db.find(...) for another page)"
            )
        if self._offset:
            _pages_and_cursors(before)
        return self._replace(cursor=make_cursor(row, before=before))

    def for_update(self, *, skip_locked: bool = False, nowait: bool = False) -> FindQuery[T]:
        """Lock the rows ``.all`` / ``.one`` return until the transaction ends (``SELECT ... FOR UPDATE``).

        Only inside a transaction (``t.find(...).for_update()``), on a driver
        with the ``row_locks`` capability; run through the database itself it
        raises :class:`~ommi.errors.TransactionError` before any I/O, since
        the lock would end with the statement. Another transaction's
        ``for_update()``, update or delete of a locked row waits until this
        transaction commits or rolls back (bounded by its ``lock_timeout``).

        Args:
            skip_locked: leave out the rows another transaction holds locked
                instead of waiting for them (a queue of jobs: each worker
                claims rows nobody else holds).
            nowait: fail at once with :class:`~ommi.errors.TimeoutError`
                (naming ``lock_timeout``) when a row is locked, instead of waiting.

        ``.count``, ``.delete`` and ``.update`` refuse a query marked
        ``for_update()`` (:class:`~ommi.errors.QueryError`): a count returns
        no rows to lock, and ``delete``/``update`` lock the rows they change anyway.

        Raises:
            QueryError: ``skip_locked`` and ``nowait`` both set, or not bools.
        """
        for name, value in (("skip_locked", skip_locked), ("nowait", nowait)):
            if not isinstance(value, bool):
                raise QueryError(f"for_update(): {name} must be True or False, not {value!r}")
        if skip_locked and nowait:
            raise QueryError(
                "for_update(): skip_locked and nowait exclude each other (skip the locked rows, or fail on them)"
            )
        return self._replace(lock=RowLock(skip_locked=skip_locked, nowait=nowait))

    def group_by(self, *fields: object) -> GroupedQuery:
        """Group the matches by ``fields`` (of the target model) for ``.aggregate(...)``.

        ``db.find(Post).group_by(Post.author).aggregate(n=ommi.Count())``
        gives one dict per group, keyed by the group fields' attribute names
        and the aggregate names; NULL forms a group of its own. Groups come
        back ordered by the group fields ascending, NULL first. Filter groups
        with :meth:`GroupedQuery.having`.

        Raises:
            QueryError: no field, something other than a model field, or a field twice.
        """
        if not fields:
            raise QueryError("group_by() needs at least one model field")
        chosen: list[Field] = []
        for item in fields:
            if not isinstance(item, Field):
                raise QueryError(f"group_by() takes model fields, not {item!r}")
            if any(item is f for f in chosen):
                raise QueryError(f"group_by(): {item!r} is given twice")
            if item.storage is StorageType.JSON:
                raise QueryError(
                    f"group_by() cannot group by {item!r}, a JSON field: groups come back ordered by their fields, "
                    "and databases order JSON values differently; group by a plain field holding the value"
                )
            chosen.append(item)
        return GroupedQuery(self, tuple(chosen), None)

    def aggregate(self, **aggregates: Aggregate) -> DBAction[dict[str, Any]]:
        """The named aggregates of every match, as one dict: ``.aggregate(n=ommi.Count(), total=ommi.Sum(Post.views))``.

        Over no match the dict still comes: counts are 0, the others ``None``.
        See :mod:`ommi.query.aggregate` for the semantics (NULLs are ignored,
        an integer sum outside 64 bits is a ``ValidationError``...).

        Raises:
            QueryError: no aggregate, a value that is not one, an aggregate of
                another model's field, or a query with ``sort``, ``limit`` or
                ``for_update`` (before any I/O).
        """

        async def run() -> dict[str, Any]:
            rows = await self._aggregate(aggregates, (), None)
            names = [name for name, _ in aggregates.items()]
            return dict(zip(names, rows[0], strict=True))

        return DBAction(run, query=True, what="find(...).aggregate(...)")

    def prefetch(self, *relations: object) -> FindQuery[T]:
        """Load ``relations`` for every result with one query per relation, so awaiting them does no I/O.

        ``db.find(Author).prefetch(Author.posts)``: ``.all``, ``.one`` and
        ``.to_list()`` load the posts of every author they return with one
        batched ``IN`` query (split into one query per 900 authors, within
        every database's parameter limit); ``await author.posts``
        then gives them without a query. A relation through an association
        model (``AssociateUsing``) takes two queries: the association rows,
        then the related models. Nested paths: ``.prefetch(Author.posts,
        Post.tags)`` also loads the tags of those posts; a relation applies
        to the models the query, or a relation listed before it, loads.

        The values equal lazy loading's (ordered by the related model's key;
        ``[]`` / ``None`` when nothing is related), except that models
        related to several results are one shared instance. ``.all`` loads
        per batch as iteration reaches it; ``.to_list()`` loads all at once.
        Inside a transaction the queries run in it. ``count``, ``delete``
        and ``update`` ignore it.

        Typed ``object``: to a type checker ``Author.posts`` is the
        relation's handle type; the values are checked when called.

        Raises:
            QueryError: a value is not a lazy relation of a model, is listed
                twice, belongs to a model neither the query nor an earlier
                relation loads, or to a model whose instances cannot be
                weakly referenced (no I/O happens).
            ModelDefinitionError: no ``ReferenceTo`` field supports a relation.
        """
        model = plan_query(self._predicates).model
        return self._replace(prefetch=check_prefetch(model, self._prefetch, relations))

    def _prefetcher(self, model: ModelSchema) -> Callable[[list[Any]], Awaitable[None]] | None:
        if not self._prefetch:
            return None
        executor, relations = self._executor, self._prefetch

        async def prefetch(items: list[Any]) -> None:
            await load_related(executor, model, relations, items)

        return prefetch

    def query(self) -> Query:
        """The driver-level :class:`Query` this builder describes.

        For ``.before(row)`` with a ``limit`` its sort is the query's reversed
        (see :meth:`before`): the actions reverse the rows it gives back.
        """
        query = plan_query(self._predicates, self._sort, self._limit, self._offset, self._lock, self._cursor)
        if self._runs_backward:
            return dataclasses.replace(query, sort=reversed_sort(query.sort))
        return query

    @property
    def _runs_backward(self) -> bool:
        """Whether :meth:`query` runs in reverse order (``.before(row)`` with a limit)."""
        return self._cursor is not None and self._cursor.before and self._limit is not None

    # -- actions -----------------------------------------------------------

    @property
    def all(self) -> _AllAction[T]:
        """Every match, as a :class:`ResultIterator`."""
        return _AllAction(self)

    @property
    def one(self) -> DBAction[T]:
        """The first match; fails with ``DBStatusNoResultException`` when there is none."""
        return DBAction(self._one, query=True, what="find(...).one")

    @property
    def count(self) -> DBAction[int]:
        """The number of matches."""
        return DBAction(self._count, query=True, what="find(...).count")

    @property
    def delete(self) -> DBAction[int]:
        """Delete every match; gives the number deleted."""
        return DBAction(self._delete, query=True, what="find(...).delete")

    @property
    def update(self) -> _UpdateAction:
        """``.update(field=value, ...)`` or ``.update({"field": value})``; gives the number updated.

        A value may be an update expression computed from each matched row's
        own fields, ``.update(balance=Account.balance + 1)``, or another field
        of the model, ``.update(a=Account.b)``; see :mod:`ommi.query.arithmetic`.
        """
        return _UpdateAction(self)

    @overload
    def values(self, field1: V1, /) -> ValuesQuery[tuple[V1]]: ...
    @overload
    def values(self, field1: V1, field2: V2, /) -> ValuesQuery[tuple[V1, V2]]: ...
    @overload
    def values(self, field1: V1, field2: V2, field3: V3, /) -> ValuesQuery[tuple[V1, V2, V3]]: ...
    @overload
    def values(self, field1: V1, field2: V2, field3: V3, field4: V4, /) -> ValuesQuery[tuple[V1, V2, V3, V4]]: ...
    @overload
    def values(
        self, field1: V1, field2: V2, field3: V3, field4: V4, field5: V5, /
    ) -> ValuesQuery[tuple[V1, V2, V3, V4, V5]]: ...
    @overload
    def values(
        self, field1: V1, field2: V2, field3: V3, field4: V4, field5: V5, field6: V6, /
    ) -> ValuesQuery[tuple[V1, V2, V3, V4, V5, V6]]: ...
    @overload
    def values(self, *fields: Any) -> ValuesQuery[tuple[Any, ...]]: ...
    def values(self, *fields: Any) -> ValuesQuery[Any]:
        """Tuples of ``fields``' values for every match, instead of models: ``.values(Post.title, Post.views)``.

        Behaves like :attr:`all` (streams in batches; ``await``, ``async for``,
        ``.to_list()``, ``(batch_size=...)``), each value decoded to its
        field's Python type (an ``Enum`` field gives the member). To a type
        checker a field is its value type, so up to six fields give
        ``tuple[type1, type2, ...]``.

        * ``fields``: one or more fields of the query's target model, in the
          order the tuples hold them; a field may come twice.
        * Order and window as for ``.all``: the query's sort (which may name
          fields that are not projected), the key as a tie-break.
        * ``.distinct()`` after it keeps each different tuple once: see
          :meth:`ValuesQuery.distinct`.

        The query's checks run when it runs (before any I/O), its failure in
        the result like any query's.

        Raises:
            QueryError: no field; something other than a field of the target
                model; with ``distinct()``, a sort on a field that is not
                projected; a query marked ``for_update()``.
        """
        return ValuesQuery(self, fields)

    @property
    def exists(self) -> DBAction[bool]:
        """Whether the query matches any row: ``await db.find(...).exists.or_raise()``.

        One cheap query (``SELECT 1 ... LIMIT 1``), whatever the number of
        matches; a window counts, ``.limit(n, page).exists`` asks whether that
        page holds a row.

        Raises:
            QueryError: the query is marked ``for_update()`` (an existence
                test returns no rows to lock).
        """
        return DBAction(self._exists, query=True, what="find(...).exists")

    def __await__(self) -> Generator[Any, None, DBResult[ResultIterator[T]] | DBQueryResult[ResultIterator[T]]]:
        return self.all.__await__()

    async def or_raise(self) -> ResultIterator[T]:
        """Same as ``.all.or_raise()``."""
        return await self.all.or_raise()

    async def or_use(self, default: D) -> ResultIterator[T] | D:
        """Same as ``.all.or_use(default)``."""
        return await self.all.or_use(default)

    # -- execution ---------------------------------------------------------

    async def _all(self, batch_size: int | None) -> ResultIterator[T]:
        invalid = isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        if batch_size is not None and invalid:
            raise QueryError(f"batch_size must be an int >= 1, not {batch_size!r}")
        query = self.query()
        ops = await self._executor.query_operations(query)
        size = batch_size or self._executor.default_batch_size
        batches: AsyncIterator[list[tuple[Any, ...]]] = ops.fetch(query, size)
        if self._runs_backward:
            batches = _reversed_batches(batches, size)
        iterator: ResultIterator[T] = ResultIterator(query.model, batches, prefetch=self._prefetcher(query.model))
        await iterator._fill()  # surface errors here, inside the result
        return iterator

    async def _one(self) -> T:
        if self._runs_backward:
            # The first of .all: the farthest of the rows closest to the cursor.
            iterator = await self._all(None)
            async with iterator:
                async for item in iterator:
                    return item
            raise DBStatusNoResultException(f"no {self.query().model.cls.__name__} matches the query")
        query = plan_query(self._predicates, self._sort, 1, self._offset, self._lock, self._cursor)
        ops = await self._executor.query_operations(query)
        batches = ops.fetch(query, 1)
        try:
            async for rows in batches:
                if rows:
                    result: T = query.model.build(rows[0])
                    break
            else:
                raise DBStatusNoResultException(f"no {query.model.cls.__name__} matches the query")
        finally:
            await batches.aclose()
        if self._prefetch:
            await load_related(self._executor, query.model, self._prefetch, [result])
        return result

    def _unlocked(self, action: str) -> None:
        if self._lock is not None:
            reason = _NOTHING_TO_LOCK.get(action, f"{action}() locks the rows it changes anyway")
            raise QueryError(
                f"{action}() does not take a query marked for_update(): {reason}; "
                "use for_update() with .all or .one (or leave it out)"
            )

    async def _values(self, fields: tuple[Any, ...], distinct: bool, batch_size: int | None) -> ResultIterator[T]:
        invalid = isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        if batch_size is not None and invalid:
            raise QueryError(f"batch_size must be an int >= 1, not {batch_size!r}")
        self._unlocked("values")
        query = self.query()
        model = query.model
        if not fields:
            raise QueryError(f"values() needs at least one field of {model.cls.__name__}, e.g. .values(Model.name)")
        for item in fields:
            if not isinstance(item, Field):
                raise QueryError(f"values() takes fields of {model.cls.__name__} (Model.field), not {item!r}")
            if item.schema is not model:
                raise QueryError(
                    f"values() on a query of {model.cls.__name__} takes its own fields, not {item!r}: a condition "
                    f"may name another model, a projection may not (query {item.schema.cls.__name__} for its values)"
                )
        if distinct:
            projected = {id(f) for f in fields}
            order: dict[int, SortKey] = {}
            for key in self._sort:
                if id(key.field) not in projected:
                    raise QueryError(
                        f"values(...).distinct() cannot sort by {key.field!r}, which it does not project: a "
                        "distinct tuple has no single value of it; sort by projected fields, or project it too"
                    )
                order.setdefault(id(key.field), key)
            for f in fields:
                order.setdefault(id(f), f.asc)
            sort = tuple(order.values())
            if self._runs_backward:
                sort = reversed_sort(sort)
            query = Query(model, query.where, query.joins, sort, query.limit, query.offset)
        ops = await self._executor.query_operations(query)
        size = batch_size or self._executor.default_batch_size
        projection: tuple[Field, ...] = fields
        batches: AsyncIterator[list[tuple[Any, ...]]] = ops.fetch_values(query, projection, distinct, size)
        if self._runs_backward:
            batches = _reversed_batches(batches, size)
        iterator: ResultIterator[T] = ResultIterator(model, batches, build_rows=_tuple_builder(model, projection))
        await iterator._fill()  # surface errors here, inside the result
        return iterator

    async def _exists(self) -> bool:
        self._unlocked("exists")
        query = self.query()
        probe = Query(query.model, query.where, query.joins, (), 1, query.offset)
        ops = await self._executor.query_operations(probe)
        return await ops.exists(probe)

    async def _count(self) -> int:
        self._unlocked("count")
        query = self.query()
        ops = await self._executor.query_operations(query)
        return await ops.count(query)

    def _writable(self, action: str) -> Query:
        self._unlocked(action)
        query = self.query()
        if query.limit is not None or query.offset:
            raise QueryError(f"{action}() applies to every match; remove limit() from the query")
        return Query(query.model, query.where, query.joins)

    async def _delete(self) -> int:
        query = self._writable("delete")
        ops = await self._executor.query_operations(query)
        return await ops.delete(query)

    async def _update(self, values: Mapping[str | Field, Any]) -> int:
        query = self._writable("update")
        if not values:
            raise QueryError("update() needs the values to set, e.g. .update(name='x')")
        encoded: dict[Field, Any] = {}
        for name, value in values.items():
            field = name if isinstance(name, Field) else query.model.by_name.get(name)
            if field is None or field.schema is not query.model:
                raise QueryError(f"update(): {query.model.cls.__name__} has no field {name!r}")
            if value is None and field.key:
                raise ValidationError(
                    f"update(): {field!r} is {'part of ' if len(query.model.key) > 1 else ''}the key of "
                    f"{query.model.cls.__name__} and cannot be set to None; a stored row always has its key "
                    "(delete the rows instead, or give the new key)"
                )
            encoded[field] = check_update_value(field, value)
        if any(isinstance(value, (Field, Arithmetic)) for value in encoded.values()):
            self._executor.require_capability("update_expressions", "an update expression (Model.field + 1)")
        ops = await self._executor.query_operations(query)
        return await ops.update(query, encoded)

    async def _aggregate(
        self, aggregates: Mapping[str, Aggregate], group_by: tuple[Field, ...], having: Expr | None
    ) -> list[tuple[Any, ...]]:
        """Check, run and decode an aggregation: rows of application values (group values, then aggregates)."""
        if not aggregates:
            raise QueryError("aggregate() needs at least one named aggregate, e.g. .aggregate(n=ommi.Count())")
        if self._lock is not None:
            raise QueryError("aggregate() does not take a query marked for_update(): it returns no rows to lock")
        if self._sort:
            raise QueryError(
                "aggregate() does not take a sorted query: groups come back ordered by the group fields "
                "(ascending, NULL first); remove sort()"
            )
        if self._limit is not None or self._offset:
            raise QueryError("aggregate() applies to every match; remove limit() from the query")
        for name, aggregate in aggregates.items():
            if not isinstance(aggregate, Aggregate):
                raise QueryError(
                    f"aggregate(): {name}={aggregate!r} is not an aggregate; use ommi.Count(), ommi.Sum(field), "
                    "ommi.Avg(field), ommi.Min(field) or ommi.Max(field)"
                )
        query = self.query()
        target = query.model
        for field in (*group_by, *(a.field for a in aggregates.values() if a.field is not None)):
            if field.schema is not target:
                raise QueryError(
                    f"cannot aggregate {target.cls.__name__} rows by {field!r}, a field of another model; "
                    f"find({field.schema.cls.__name__}) to aggregate its rows"
                )
        for field in group_by:
            if field.name in aggregates:
                raise QueryError(
                    f"aggregate(): the name {field.name!r} is taken by the group field {field!r}; "
                    "give the aggregate another name"
                )
        if having is not None:
            having = resolve_having(having, dict(aggregates))
        aggregation = Aggregation(tuple(aggregates.items()), group_by, having)
        ops = await self._executor.query_operations(query)
        rows = await ops.aggregate(query, aggregation)
        decoders = [f.decode for f in group_by] + [a.decode for a in aggregates.values()]
        return [tuple(decode(value) for decode, value in zip(decoders, row, strict=True)) for row in rows]


class GroupedQuery:
    """``db.find(...).group_by(...)``: add ``having(...)``, then run ``.aggregate(...)`` for one dict per group."""

    __slots__ = ("_find", "_group_by", "_having")

    def __init__(self, find: FindQuery[Any], group_by: tuple[Field, ...], having: Expr | None) -> None:
        self._find = find
        self._group_by = group_by
        self._having = having

    def having(self, *conditions: Expr | bool) -> GroupedQuery:
        """Keep only the groups where ``conditions`` hold (ANDed, and with an earlier ``having``).

        Conditions name aggregates given to ``.aggregate(...)``:
        ``.having(ommi.Aggregated("n") >= 2)``, combined with ``&`` and ``|``.
        The names are looked up when ``.aggregate(...)`` runs; an unknown one
        is a :class:`~ommi.errors.QueryError` raised before any I/O. A
        comparison other than ``!=`` never holds for a NULL aggregate (a ``Sum``
        over no value); ``!=`` does, and ``== None`` tests for it.

        Raises:
            QueryError: no condition, or something that is not a condition.
        """
        items = _conditions(conditions)
        if not items:
            raise QueryError("having() needs at least one condition, e.g. ommi.Aggregated('n') >= 2")
        if self._having is not None:
            items = (self._having, *items)
        return GroupedQuery(self._find, self._group_by, items[0] if len(items) == 1 else And(items))

    def aggregate(self, **aggregates: Aggregate) -> DBAction[list[dict[str, Any]]]:
        """The named aggregates of each group: a list of dicts keyed by the group fields' names and ``aggregates``.

        Raises:
            QueryError: as :meth:`FindQuery.aggregate`, and also an aggregate
                named like a group field, or a ``having`` naming an unknown aggregate.
            ValidationError: a ``having`` value the aggregate's result cannot be.
        """
        find, group_by, having = self._find, self._group_by, self._having

        async def run() -> list[dict[str, Any]]:
            rows = await find._aggregate(aggregates, group_by, having)
            names = [f.name for f in group_by] + list(aggregates)
            return [dict(zip(names, row, strict=True)) for row in rows]

        return DBAction(run, query=True, what="find(...).group_by(...).aggregate(...)")
