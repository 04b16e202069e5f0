"""The base every conformance test class builds on: fixtures and the marking rules.

A driver's tests subclass :class:`ommi_testkit.ConformanceSuite` and provide
one fixture, ``driver_factory``: a callable returning a new, unopened driver
that points at an isolated database (a temporary SQLite file, a per-worker
PostgreSQL schema...). Every driver the factory returns must reach the same
database, because ``second_db`` opens a second one to look at what ``db``
wrote. The suite opens it, creates the testkit's models, and drops them again
after each test.

Three ways to mark what a driver does not do, each with a reason:

* a capability the driver declares absent: tests marked ``@requires(...)``
  skip, the reason naming the capability;
* ``known_failures = {"test_name": "reason"}``: strict xfail (a pass is an error);
* ``impossible = {"test_name": "reason"}``: skipped, for what the engine can never do.

Unknown capability names and unknown test names are errors, not silent no-ops.

Every coroutine test of a suite class (and of a driver's subclass) is marked
``asyncio`` when the class is defined, and every async fixture comes from
``pytest_asyncio.fixture``, so the suite runs in pytest-asyncio's strict mode
as well as in auto mode.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, TypeVar

import pytest
import pytest_asyncio
from ommi import Ommi
from ommi.drivers import Capabilities, Driver
from ommi.models.collections import get_global_collection

from ommi_testkit.suites.models import testkit_models

__all__ = ["REQUIRES_MARKER", "SuiteBase", "apply_marking_tables", "capability_mark", "requires"]

F = TypeVar("F", bound=Callable[..., Any])

CAPABILITY_NAMES = frozenset(Capabilities().names())

REQUIRES_MARKER = "ommi_requires"
"""The pytest marker :func:`requires` applies (registered by the testkit's pytest plugin)."""


def capability_mark(*capabilities: str) -> pytest.MarkDecorator:
    """The marker :func:`requires` applies, for ``pytest.param(..., marks=...)``.

    Raises:
        ValueError: no name given, or a name is not a field of
            :class:`ommi.drivers.Capabilities`.
    """
    if not capabilities:
        raise ValueError("requires() needs at least one capability name")
    unknown = sorted(set(capabilities) - CAPABILITY_NAMES)
    if unknown:
        raise ValueError(f"unknown capabilities {unknown}; known: {sorted(CAPABILITY_NAMES)}")
    marker: pytest.MarkDecorator = getattr(pytest.mark, REQUIRES_MARKER)(*capabilities)
    return marker


def requires(*capabilities: str) -> Callable[[F], F]:
    """Mark a test (or a test class's own tests) as needing driver capabilities.

    Where the driver declares one of them absent the test skips, and the reason
    names the capability.

    Applied to a class, it marks only the test methods that class itself
    defines (the functions in its ``__dict__`` whose names start with
    ``test``), never the class: pytest passes a class's marks down the MRO, so
    a mark on one suite class would reach every test of each
    ``ConformanceSuite`` subclass that mixes it in. Tests a subclass adds or
    overrides are not marked; mark them themselves.

    Raises:
        ValueError: a name is not a field of :class:`ommi.drivers.Capabilities`.
    """
    marker = capability_mark(*capabilities)

    def mark(test: F) -> F:
        if isinstance(test, type):
            for name, value in vars(test).items():
                if name.startswith("test") and inspect.isfunction(value):
                    marker(value)
            return test
        marked: F = marker(test)
        return marked

    return mark


def _required(request: pytest.FixtureRequest) -> list[str]:
    return [name for marker in request.node.iter_markers(REQUIRES_MARKER) for name in marker.args]


def _skip_if_absent(driver: Driver, capabilities: list[str]) -> None:
    for capability in capabilities:
        if not getattr(driver.capabilities, capability):
            pytest.skip(f"driver {driver.name!r} declares capability {capability!r} absent")


def _check_marking_tables(cls: type) -> None:
    """Reject test names in ``known_failures`` / ``impossible`` that the class does not have."""
    tables = {"known_failures": cls.known_failures, "impossible": cls.impossible}  # type: ignore[attr-defined]
    for table, names in tables.items():
        if not isinstance(names, dict):
            raise TypeError(f"{cls.__name__}.{table} must be a dict of test name -> reason")
        unknown = [n for n in names if not (n.startswith("test_") and callable(getattr(cls, n, None)))]
        if unknown:
            raise TypeError(f"{cls.__name__}.{table} names unknown tests: {sorted(unknown)}")
        empty = [n for n, reason in names.items() if not isinstance(reason, str) or not reason.strip()]
        if empty:
            raise TypeError(f"{cls.__name__}.{table} needs a reason for {sorted(empty)}")
    both = set(tables["known_failures"]) & set(tables["impossible"])
    if both:
        raise TypeError(f"{cls.__name__}: {sorted(both)} are both known failures and impossible")


def _mark_coroutine_tests(cls: type) -> None:
    """Mark the class's own coroutine tests ``asyncio`` so pytest-asyncio's strict mode runs them.

    Only coroutines are marked: a class-wide ``pytestmark`` would make
    pytest-asyncio warn about any plain (sync) test a driver adds to its subclass.
    """
    for name, value in vars(cls).items():
        if name.startswith("test") and inspect.iscoroutinefunction(value):
            marks = getattr(value, "pytestmark", [])
            if not any(mark.name == "asyncio" for mark in marks):
                pytest.mark.asyncio(value)


_MARKED = pytest.StashKey[bool]()


def apply_marking_tables(item: pytest.Item) -> None:
    """Add the ``impossible`` skip or ``known_failures`` strict xfail of a collected suite test.

    The testkit's pytest plugin calls it at collection, so the marks hold
    before any fixture runs (a known failure may fail in fixture setup); the
    ``_ommi_marks`` fixture applies the same marks when the plugin is disabled.
    """
    cls = getattr(item, "cls", None)
    if cls is None or not issubclass(cls, SuiteBase) or item.stash.get(_MARKED, False):
        return
    item.stash[_MARKED] = True
    name = getattr(item, "originalname", item.name)
    if name in cls.impossible:
        item.add_marker(pytest.mark.skip(reason=f"impossible on this engine: {cls.impossible[name]}"))
    elif name in cls.known_failures:
        item.add_marker(pytest.mark.xfail(reason=cls.known_failures[name], strict=True))


class SuiteBase:
    """Fixtures and marking rules shared by every suite class."""

    known_failures: ClassVar[dict[str, str]] = {}
    """Test name -> reason: known gaps of this driver, run as strict xfails."""

    impossible: ClassVar[dict[str, str]] = {}
    """Test name -> reason: behaviour this engine can never provide; skipped."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _mark_coroutine_tests(cls)
        # Checked when the driver's test class is defined, so a typo fails collection loudly.
        _check_marking_tables(cls)

    @pytest.fixture
    def driver_factory(self) -> Callable[[], Driver]:
        """Override in the driver's test class: a callable returning a new unopened driver."""
        raise NotImplementedError(
            f"{type(self).__name__} must define a driver_factory fixture returning a new unopened driver"
        )

    @pytest.fixture(autouse=True)
    def _ommi_marks(self, request: pytest.FixtureRequest) -> None:
        """Apply ``impossible`` and ``known_failures`` if the pytest plugin did not at collection."""
        item = request.node
        if item.stash.get(_MARKED, False):
            return
        apply_marking_tables(item)
        # Collection-time skip marks are evaluated before fixtures; this late one must skip itself.
        skip = item.get_closest_marker("skip")
        if skip is not None:
            pytest.skip(skip.kwargs["reason"])

    @pytest_asyncio.fixture
    async def raw_driver(
        self, driver_factory: Callable[[], Driver], request: pytest.FixtureRequest
    ) -> AsyncIterator[Driver]:
        """A driver from the factory, capability-checked, not opened, closed after the test."""
        driver = driver_factory()
        if not isinstance(driver, Driver):
            raise TypeError(f"driver_factory must return an ommi Driver, not {driver!r}")
        _skip_if_absent(driver, _required(request))
        try:
            yield driver
        finally:
            await driver.close()

    @pytest_asyncio.fixture
    async def db(self, raw_driver: Driver, request: pytest.FixtureRequest) -> AsyncIterator[Ommi]:
        """An open :class:`Ommi` with the testkit models created (and dropped afterwards).

        It is the active database of the test, for model methods and lazy relations.
        """
        database = Ommi(raw_driver)
        async with database:
            # A driver may narrow its capabilities once connected (a server without transactions).
            _skip_if_absent(raw_driver, _required(request))
            await database.remove_models(testkit_models)
            await database.remove_models(get_global_collection())
            await database.use_models(testkit_models)
            try:
                yield database
            finally:
                await database.remove_models(testkit_models)
                await database.remove_models(get_global_collection())

    @pytest_asyncio.fixture
    async def fresh_db(self, raw_driver: Driver, request: pytest.FixtureRequest) -> AsyncIterator[Ommi]:
        """An open :class:`Ommi` on an empty database: nothing created, implicit setup allowed."""
        database = Ommi(raw_driver)
        async with database:
            _skip_if_absent(raw_driver, _required(request))
            await database.remove_models(testkit_models)
            await database.remove_models(get_global_collection())
            try:
                yield database
            finally:
                await database.remove_models(testkit_models)
                await database.remove_models(get_global_collection())

    @pytest_asyncio.fixture
    async def second_db(self, driver_factory: Callable[[], Driver]) -> AsyncIterator[Ommi]:
        """Another :class:`Ommi` on the same database (a second process's view); no set-up or teardown.

        It is opened without ``async with`` so that it never becomes the test's
        active database: model methods keep using ``db``.
        """
        database = Ommi(driver_factory(), allow_implicit_model_setup=False)
        await database.open()
        try:
            yield database
        finally:
            await database.close()
