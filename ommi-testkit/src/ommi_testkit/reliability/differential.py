"""The differential runner: every generated case on a driver and on the reference driver, compared.

::

    from ommi_testkit.reliability import current_profile, run_differential

    def test_differential(tmp_path):
        figures = run_differential(lambda: MyDriver.connect(...), backend="mydb", profile=current_profile())
        assert figures.cases >= current_profile().min_cases

Each Hypothesis example loads a generated dataset into both databases, then
runs its operations one by one on both. Every outcome must be identical: the
rows (values *and* their Python types, in order where the query defines
one), counts, ``.one``, the number of rows an update or delete touched, and
the error class when both refuse an operation. Aggregates must agree
exactly too, except a float ``Sum``/``Avg``, whose value depends on the
order the database adds in: it may differ from the reference by the error
bound of a summation, ``4 * n * n * eps * M`` (``n`` values of magnitude at
most ``M``; divided by ``n`` for a mean), and a case whose float sum could
overflow in some order (``n * M > 1e300``) is not compared. After every write both
databases must hold exactly the same rows. An exception that is not an
:class:`ommi.errors.OmmiError` fails at once.

The runner is synchronous (it drives its own event loop), so a test calls it
from a plain ``def`` test; Hypothesis shrinks a failure to a small case.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from ommi import Ommi
from ommi.drivers import Driver
from ommi.errors import OmmiError
from ommi.models.schema import get_schema
from ommi.models.types import StorageType
from ommi.query.aggregate import Count, Max, Min
from ommi.query.find import FindQuery

from ommi_testkit.reference import ReferenceDriver
from ommi_testkit.reliability.domain import Domain
from ommi_testkit.reliability.figures import Figures
from ommi_testkit.reliability.models import Owner, Sample, differential_models
from ommi_testkit.reliability.profile import Profile, phases, seed
from ommi_testkit.reliability.specs import (
    AddSpec,
    AggregateSpec,
    DeleteSpec,
    ExistsSpec,
    FindSpec,
    Operation,
    Scenario,
    UpdateSpec,
    UpsertSpec,
    ValuesSpec,
    field_of,
)
from ommi_testkit.reliability.strategies import Generator

__all__ = ["Divergence", "UnexpectedError", "execute", "run_differential", "snapshot"]

Outcome = tuple[str, Any]
Narrow = Callable[[Domain, Driver], Domain]


class Divergence(AssertionError):
    """A backend answered a generated case differently from the reference driver."""


class UnexpectedError(AssertionError):
    """An operation raised something other than an :class:`ommi.errors.OmmiError`."""


def typed(model: Any) -> tuple[tuple[str, Any], ...]:
    """A model instance as ``(type name, value)`` pairs, so ``1`` never passes for ``True`` or ``1.0``."""
    return tuple((type(value).__name__, value) for value in (getattr(model, f.name) for f in get_schema(model).fields))


def _key(model: Any) -> Any:
    return model.id


async def _rows(iterator: Any) -> list[Any]:
    return [model async for model in iterator]


async def _find(db: Ommi, spec: FindSpec) -> Any:
    query: FindQuery[Any] = db.find(spec.target, *(condition.build() for condition in spec.where))
    if spec.sort:
        keys = [field_of(spec.target, name) for name, _ in spec.sort]
        query = query.sort(*(f.desc if desc else f.asc for f, (_, desc) in zip(keys, spec.sort, strict=True)))
    if spec.cursor is not None:
        way, row = spec.cursor
        query = query.after(row.make()) if way == "after" else query.before(row.make())
    if spec.window is not None:
        query = query.limit(*spec.window)
    if spec.action == "count":
        return await query.count.or_raise()
    if spec.action == "one":
        return typed(await query.one.or_raise())
    iterator = await query.all(batch_size=spec.batch_size).or_raise()
    models = await _rows(iterator)
    if not spec.ordered:
        models.sort(key=_key)
    return [typed(m) for m in models]


def _typed_values(row: tuple[Any, ...]) -> tuple[tuple[str, Any], ...]:
    """A projected tuple as ``(type name, value)`` pairs, as :func:`typed` shows a model."""
    return tuple((type(value).__name__, value) for value in row)


def _windowed(query: FindQuery[Any], sort: tuple[tuple[str, bool], ...], window: tuple[int, int] | None) -> Any:
    if sort:
        keys = [field_of(query.query().model.cls, name) for name, _ in sort]
        query = query.sort(*(f.desc if desc else f.asc for f, (_, desc) in zip(keys, sort, strict=True)))
    if window is not None:
        query = query.limit(*window)
    return query


async def _values(db: Ommi, spec: ValuesSpec) -> Any:
    query = _windowed(db.find(spec.target, *(c.build() for c in spec.where)), spec.sort, spec.window)
    projection = query.values(*(field_of(spec.target, name) for name in spec.fields))
    if spec.distinct:
        projection = projection.distinct()
    rows = [_typed_values(row) async for row in projection(batch_size=spec.batch_size)]
    if not spec.ordered:
        rows.sort(key=repr)
    return rows


async def _exists(db: Ommi, spec: ExistsSpec) -> bool:
    query = _windowed(db.find(spec.target, *(c.build() for c in spec.where)), (), spec.window)
    found: bool = await query.exists.or_raise()
    return found


def _grouped(db: Ommi, spec: AggregateSpec) -> Any:
    query: FindQuery[Any] = db.find(spec.target, *(condition.build() for condition in spec.where))
    if not spec.group_by:
        return query
    return query.group_by(*(field_of(spec.target, name) for name in spec.group_by))


async def _aggregate(db: Ommi, spec: AggregateSpec) -> list[tuple[tuple[str, str, Any], ...]]:
    """The groups of an aggregate call (one without ``group_by``) as ``(name, type name, value)`` tuples."""
    grouped = _grouped(db, spec)
    having = spec.built_having()
    if having is not None:
        grouped = grouped.having(having)
    result = await grouped.aggregate(**spec.built_aggregates()).or_raise()
    groups = [result] if isinstance(result, dict) else result
    return [tuple((name, type(value).__name__, value) for name, value in group.items()) for group in groups]


_EPS = sys.float_info.epsilon


def _float_sums(spec: AggregateSpec) -> dict[str, tuple[str, str]]:
    """The float ``Sum``/``Avg`` aggregates of ``spec``: name -> (kind, field name)."""
    result: dict[str, tuple[str, str]] = {}
    for name, kind, field in spec.aggregates:
        if kind in ("sum", "avg") and field is not None and field_of(spec.target, field).storage is StorageType.FLOAT:
            result[name] = (kind, field)
    return result


async def _float_bounds(reference: Ommi, spec: AggregateSpec) -> dict[tuple[Any, ...], dict[str, float]] | None:
    """Per group (by its key values), the tolerance of each float sum or mean; ``None``: not comparable."""
    sums = _float_sums(spec)
    bounds: dict[tuple[Any, ...], dict[str, float]] = {}
    if not sums:
        return bounds
    measures: dict[str, Any] = {}
    for name, (_, field) in sums.items():
        f = field_of(spec.target, field)
        measures |= {f"{name}_n": Count(f), f"{name}_lo": Min(f), f"{name}_hi": Max(f)}
    result = await _grouped(reference, spec).aggregate(**measures).or_raise()
    for group in [result] if isinstance(result, dict) else result:
        key = tuple(group[name] for name in spec.group_by)
        tolerances: dict[str, float] = {}
        for name, (kind, _) in sums.items():
            n = group[f"{name}_n"]
            low, high = group[f"{name}_lo"], group[f"{name}_hi"]
            largest = max(abs(low or 0.0), abs(high or 0.0))
            if n * largest > 1e300:
                return None
            bound = 4 * n * n * _EPS * largest
            tolerances[name] = bound / n if kind == "avg" and n else bound
        bounds[key] = tolerances
    return bounds


def _aggregates_agree(
    spec: AggregateSpec, expected: Outcome, actual: Outcome, bounds: dict[tuple[Any, ...], dict[str, float]]
) -> bool:
    """Whether two outcomes of an aggregate call agree (float sums and means within their bounds)."""
    if expected[0] != "ok" or actual[0] != "ok" or len(expected[1]) != len(actual[1]):
        return expected == actual
    for mine, theirs in zip(actual[1], expected[1], strict=True):
        values = {name: value for name, _, value in theirs}
        tolerances = bounds.get(tuple(values[name] for name in spec.group_by), {})
        for (name, kind, value), (_, their_kind, their_value) in zip(mine, theirs, strict=True):
            if kind != their_kind:
                return False
            tolerance = tolerances.get(name)
            if tolerance is not None and isinstance(value, float) and isinstance(their_value, float):
                if not math.isclose(value, their_value, rel_tol=4 * _EPS, abs_tol=tolerance):
                    return False
            elif value != their_value:
                return False
    return True


async def _run(db: Ommi, operation: Operation) -> Any:
    if isinstance(operation, FindSpec):
        return await _find(db, operation)
    if isinstance(operation, ValuesSpec):
        return await _values(db, operation)
    if isinstance(operation, ExistsSpec):
        return await _exists(db, operation)
    if isinstance(operation, AggregateSpec):
        return await _aggregate(db, operation)
    if isinstance(operation, UpdateSpec):
        query: FindQuery[Any] = db.find(operation.target, *(c.build() for c in operation.where))
        values = operation.built_values()  # an expression of a wrong type fails here, as in an application
        return await query.update(values).or_raise()
    if isinstance(operation, DeleteSpec):
        return await db.find(operation.target, *(c.build() for c in operation.where)).delete.or_raise()
    if isinstance(operation, AddSpec):
        await db.add(*(row.make() for row in operation.rows)).or_raise()
        return len(operation.rows)
    if isinstance(operation, UpsertSpec):
        await db.upsert(*(row.make() for row in operation.rows)).or_raise()
        return len(operation.rows)
    raise TypeError(f"unknown operation {operation!r}")  # pragma: no cover


async def execute(db: Ommi, operation: Operation) -> Outcome:
    """Run one operation: ``("ok", result)`` or ``("error", "<ommi.errors class name>")``.

    Raises:
        UnexpectedError: the operation raised something outside :mod:`ommi.errors`.
    """
    try:
        return ("ok", await _run(db, operation))
    except OmmiError as exc:
        return ("error", type(exc).__name__)
    except Exception as exc:
        raise UnexpectedError(
            f"{db.driver.name}: {operation!r} raised {type(exc).__name__}, not an ommi.errors exception: {exc}"
        ) from exc


async def snapshot(db: Ommi) -> dict[str, list[Any]]:
    """Every owner and sample, in key order, as typed tuples."""
    result: dict[str, list[Any]] = {}
    for model in (Owner, Sample):
        iterator = await db.find(model).sort(field_of(model, "id")).all.or_raise()
        result[model.__name__] = [typed(m) for m in await _rows(iterator)]
    return result


class _Differential:
    """State shared by the examples of one run: the two databases and the counters."""

    def __init__(self, backend: str, target: Ommi, reference: Ommi, figures: Figures) -> None:
        self.backend = backend
        self.target = target
        self.reference = reference
        self.figures = figures

    async def _load(self, db: Ommi, scenario: Scenario) -> None:
        await db.find(Sample).delete.or_raise()
        await db.find(Owner).delete.or_raise()
        if scenario.owners:
            await db.add(*(row.make() for row in scenario.owners)).or_raise()
        if scenario.samples:
            await db.add(*(row.make() for row in scenario.samples)).or_raise()

    async def _same_data(self, after: str) -> None:
        mine, theirs = await snapshot(self.target), await snapshot(self.reference)
        if mine != theirs:
            raise Divergence(_explain_data(self.backend, after, mine, theirs))
        self.figures.rows_verified += sum(len(rows) for rows in mine.values())

    async def check(self, scenario: Scenario) -> None:
        await self._load(self.reference, scenario)
        await self._load(self.target, scenario)
        await self._same_data("loading the dataset")
        for number, operation in enumerate(scenario.operations):
            expected = await execute(self.reference, operation)
            actual = await execute(self.target, operation)
            if isinstance(operation, AggregateSpec):
                bounds = await _float_bounds(self.reference, operation)
                if bounds is None:
                    continue  # a float sum that could overflow in some order: not comparable
                agree = _aggregates_agree(operation, expected, actual, bounds)
            else:
                agree = actual == expected
            self.figures.cases += 1
            if not agree:
                raise Divergence(
                    f"{self.backend} differs from the reference driver at operation {number}:\n"
                    f"  {operation!r}\n  reference: {expected!r}\n  {self.backend}: {actual!r}"
                )
            if expected[0] == "ok" and isinstance(expected[1], list):
                self.figures.rows_verified += len(expected[1])
            if not isinstance(operation, (FindSpec, ValuesSpec, ExistsSpec, AggregateSpec)):
                await self._same_data(f"operation {number}: {operation!r}")
        self.figures.examples += 1


def _explain_data(backend: str, after: str, mine: dict[str, list[Any]], theirs: dict[str, list[Any]]) -> str:
    lines = [f"{backend} holds different rows than the reference driver after {after}:"]
    for model in theirs:
        ours = set(map(repr, mine[model]))
        reference = set(map(repr, theirs[model]))
        lines += [f"  only in {backend}: {row}" for row in sorted(ours - reference)]
        lines += [f"  only in reference: {row}" for row in sorted(reference - ours)]
    return "\n".join(lines)


def run_differential(
    driver_factory: Callable[[], Driver],
    *,
    backend: str,
    profile: Profile,
    narrow: Narrow | None = None,
    reference_factory: Callable[[], Driver] = ReferenceDriver.connect,
) -> Figures:
    """Run ``profile.examples`` generated examples on a driver and on the reference driver.

    Args:
        driver_factory: a new unopened driver on an isolated database.
        backend: the backend's name in messages and figures.
        profile: the sizes (examples, operations per example).
        narrow: ``(domain, opened driver) -> domain``: restrict the generated
            domain further, for a test server's known defects (each narrowing
            carries its reason into the figures' notes).
        reference_factory: the driver results are compared with.

    Returns:
        The figures (cases, examples, rows verified, the domain's narrowings).

    Raises:
        Divergence: a case gave a different result (Hypothesis's minimal example).
        UnexpectedError: an operation raised outside :mod:`ommi.errors`.
    """
    figures = Figures("differential", backend, profile.name)
    started = time.perf_counter()
    with asyncio.Runner() as runner:
        target, reference = Ommi(driver_factory()), Ommi(reference_factory())

        async def open_both() -> None:
            for db in (target, reference):
                await db.open()
                await db.remove_models(differential_models)
                await db.use_models(differential_models)

        async def close_both() -> None:
            for db in (target, reference):
                try:
                    await db.remove_models(differential_models)
                except OmmiError:
                    pass  # the database never opened: the error that matters is already raised
                finally:
                    await db.close()

        try:
            runner.run(open_both())
            domain = Domain.for_capabilities(target.driver.capabilities)
            if narrow is not None:
                domain = narrow(domain, target.driver)
            figures.notes = domain.describe()
            state = _Differential(backend, target, reference, figures)
            generator = Generator(domain, operations=profile.operations)

            @settings(
                max_examples=profile.examples,
                deadline=None,
                database=None,
                print_blob=True,
                phases=phases(),
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.data_too_large,
                    HealthCheck.filter_too_much,
                    HealthCheck.large_base_example,
                ],
            )
            @given(generator.scenarios())
            def differential(scenario: Scenario) -> None:
                runner.run(state.check(scenario))

            chosen = seed()
            test = hypothesis_seed(chosen)(differential) if chosen is not None else differential
            test()
        finally:
            runner.run(close_both())
    figures.seconds = round(time.perf_counter() - started, 3)
    return figures
