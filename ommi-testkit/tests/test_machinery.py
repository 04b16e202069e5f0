"""Tests of the testkit's own machinery: marking rules, strict mode, the pytest plugin.

Most of them run a small pytest session with ``pytester`` in a temporary
directory, as a driver author's project would.
"""

from __future__ import annotations

import pytest
from ommi_testkit import requires
from ommi_testkit.suites.base import capability_mark

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
xfail_strict = true
addopts = --strict-markers -p no:cacheprovider -p no:hypothesispytest
filterwarnings = error
"""

DRIVERS = """
import pytest
from ommi.drivers import Capabilities
from ommi_testkit import ReferenceDriver
from ommi_testkit.reference import ReferenceStore


class NoDecimals(ReferenceDriver):
    capabilities = Capabilities(exact_decimal=False)


class NarrowsWhenOpened(ReferenceDriver):
    async def open(self):
        await super().open()
        self.capabilities = Capabilities(transactions=False)


def shared(driver_class):
    store = ReferenceStore()
    return lambda: driver_class.connect(store=store)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A driver project in strict asyncio mode, with a few reference-driver variants."""
    pytester.makeini(INI.format(mode="strict"))
    pytester.makepyfile(drivers=DRIVERS)
    pytester.syspathinsert()
    return pytester


# -- requires() ----------------------------------------------------------


def test_requires_unknown_capability_raises() -> None:
    """``requires`` with a name that is not a capability is an error at decoration time."""
    with pytest.raises(ValueError, match="unknown capabilities \\['exact_decimals'\\]"):
        requires("exact_decimals")
    with pytest.raises(ValueError, match="at least one"):
        requires()
    with pytest.raises(ValueError, match="unknown capabilities"):
        capability_mark("transactions", "teleportation")


def test_requires_skips_naming_the_absent_capability(project: pytest.Pytester) -> None:
    """A test needing a capability the driver declares absent skips, the reason naming the capability."""
    project.makepyfile(
        test_caps="""
        import decimal
        import pytest
        from drivers import NoDecimals, shared
        from ommi_testkit import requires
        from ommi_testkit.suites.base import SuiteBase, capability_mark
        from ommi_testkit.suites.models import DecimalRecord


        class TestCaps(SuiteBase):
            @pytest.fixture
            def driver_factory(self):
                return shared(NoDecimals)

            @requires("exact_decimal")
            async def test_needs_decimals(self, db):
                raise AssertionError("must not run")

            async def test_plain(self, db):
                await db.add(DecimalRecord(decimal.Decimal("1.5"), id=1)).or_raise()
                assert await db.find(DecimalRecord).count.or_raise() == 1

            @pytest.mark.parametrize("n", [1, pytest.param(2, marks=capability_mark("exact_decimal"))])
            async def test_param(self, db, n):
                assert n == 1
        """
    )
    result = project.runpytest("-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*driver 'reference' declares capability 'exact_decimal' absent*"])


def test_requires_checks_capabilities_after_open(project: pytest.Pytester) -> None:
    """A capability the driver turns off once connected also skips the tests needing it."""
    project.makepyfile(
        test_narrow="""
        import pytest
        from drivers import NarrowsWhenOpened, shared
        from ommi_testkit import requires
        from ommi_testkit.suites.base import SuiteBase


        class TestNarrow(SuiteBase):
            @pytest.fixture
            def driver_factory(self):
                return shared(NarrowsWhenOpened)

            @requires("transactions")
            async def test_needs_transactions(self, db):
                raise AssertionError("must not run")

            @requires("composite_keys")
            async def test_needs_composite_keys(self, db):
                assert db.driver.capabilities.composite_keys is True
        """
    )
    result = project.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*declares capability 'transactions' absent*"])


def test_requires_on_a_class_marks_only_its_own_tests(project: pytest.Pytester) -> None:
    """``@requires`` on one suite class skips that class's tests only, not its siblings' in a combined suite.

    Regression: it used to mark the class, and pytest passes class marks down
    the MRO, so every test of a ConformanceSuite-like subclass skipped.
    """
    project.makepyfile(
        test_class_mark="""
        import pytest
        from drivers import NoDecimals, shared
        from ommi_testkit import requires
        from ommi_testkit.suites.base import SuiteBase


        @requires("exact_decimal")
        class NeedsDecimals(SuiteBase):
            async def test_needs_decimals(self, db):
                raise AssertionError("must not run")

            def helper(self):
                return 1


        class Plain(SuiteBase):
            async def test_plain(self, db):
                assert db.driver.capabilities.exact_decimal is False


        class TestCombined(NeedsDecimals, Plain):
            @pytest.fixture
            def driver_factory(self):
                return shared(NoDecimals)

            async def test_own(self, db):
                assert self.helper() == 1


        def test_class_carries_no_mark():
            assert not hasattr(NeedsDecimals, "pytestmark")
            assert [m.name for m in NeedsDecimals.helper.__dict__.get("pytestmark", [])] == []
        """
    )
    result = project.runpytest("-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*declares capability 'exact_decimal' absent*"])


def test_driver_subclass_may_add_sync_and_async_tests(project: pytest.Pytester) -> None:
    """A driver's suite subclass may add its own async and plain tests; strict mode runs both, warning-free."""
    project.makepyfile(
        test_own="""
        import pytest
        from drivers import shared
        from ommi_testkit import CrudTests, ReferenceDriver
        from ommi_testkit.suites.models import Person


        class TestDriver(CrudTests):
            @pytest.fixture
            def driver_factory(self):
                return shared(ReferenceDriver)

            def test_plain(self):
                assert ReferenceDriver.name == "reference"

            async def test_own_async(self, db):
                await db.add(Person("own", 1)).or_raise()
                assert await db.find(Person).count.or_raise() == 1
        """
    )
    result = project.runpytest("-k", "plain or own_async or test_add_one")
    result.assert_outcomes(passed=4)


# -- known_failures / impossible ---------------------------------------------


def test_known_failures_are_strict_xfails(project: pytest.Pytester) -> None:
    """A listed known failure that fails is an xfail; one that passes is an error (strict)."""
    project.makepyfile(
        test_known="""
        import pytest
        from drivers import shared
        from ommi_testkit import ReferenceDriver
        from ommi_testkit.suites.base import SuiteBase


        class Base(SuiteBase):
            async def test_broken(self, db):
                assert 1 == 2

            async def test_fine(self, db):
                assert 1 == 1

            async def test_setup_breaks(self, broken_fixture):
                pass

            @pytest.fixture
            def broken_fixture(self):
                raise RuntimeError("fails before the test body")


        class TestDriver(Base):
            known_failures = {
                "test_broken": "issue 7: not done yet",
                "test_fine": "fixed meanwhile",
                "test_setup_breaks": "issue 8: fixture cannot work yet",
            }

            @pytest.fixture
            def driver_factory(self):
                return shared(ReferenceDriver)
        """
    )
    result = project.runpytest("-rxX")
    result.assert_outcomes(xfailed=2, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*fixed meanwhile*"])
    result.stdout.fnmatch_lines(["*XFAIL*issue 7: not done yet*"])
    result.stdout.fnmatch_lines(["*XFAIL*issue 8: fixture cannot work yet*"])


def test_marking_tables_work_without_the_plugin(project: pytest.Pytester) -> None:
    """With the testkit's pytest plugin disabled, the ``_ommi_marks`` fixture still applies both tables."""
    project.makeini(INI.format(mode="strict").replace("--strict-markers ", ""))
    project.makepyfile(
        test_noplugin="""
        import pytest
        from drivers import shared
        from ommi_testkit import ReferenceDriver
        from ommi_testkit.suites.base import SuiteBase


        class Base(SuiteBase):
            async def test_broken(self, db):
                assert 1 == 2

            async def test_never(self, db):
                raise AssertionError("must not run")


        class TestDriver(Base):
            known_failures = {"test_broken": "issue 7"}
            impossible = {"test_never": "no such thing"}

            @pytest.fixture
            def driver_factory(self):
                return shared(ReferenceDriver)
        """
    )
    result = project.runpytest("-p", "no:ommi_testkit", "-rsx")
    result.assert_outcomes(xfailed=1, skipped=1)
    result.stdout.fnmatch_lines(["*impossible on this engine: no such thing*"])


def test_impossible_tests_skip_with_their_reason(project: pytest.Pytester) -> None:
    """A test listed in ``impossible`` skips and says why."""
    project.makepyfile(
        test_impossible="""
        import pytest
        from drivers import shared
        from ommi_testkit import ReferenceDriver
        from ommi_testkit.suites.base import SuiteBase


        class Base(SuiteBase):
            async def test_never(self, db):
                raise AssertionError("must not run")


        class TestDriver(Base):
            impossible = {"test_never": "the engine has no such thing"}

            @pytest.fixture
            def driver_factory(self):
                return shared(ReferenceDriver)
        """
    )
    result = project.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*impossible on this engine: the engine has no such thing*"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('known_failures = {"test_typo": "x"}', "known_failures names unknown tests: ['test_typo']"),
        ('impossible = {"driver_factory": "x"}', "impossible names unknown tests: ['driver_factory']"),
        ('known_failures = {"test_real": ""}', "known_failures needs a reason for ['test_real']"),
        (
            'known_failures = {"test_real": "a"}\n    impossible = {"test_real": "b"}',
            "['test_real'] are both known failures and impossible",
        ),
    ],
    ids=["unknown_known_failure", "unknown_impossible", "missing_reason", "listed_twice"],
)
def test_marking_table_mistakes_are_errors(project: pytest.Pytester, table: str, message: str) -> None:
    """Unknown test names, empty reasons or a test listed twice fail collection with a clear message."""
    project.makepyfile(
        test_bad=f"""
from ommi_testkit.suites.base import SuiteBase


class TestDriver(SuiteBase):
    {table}

    async def test_real(self, db):
        pass
"""
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    pattern = message.replace("[", "[[]")  # a literal "[" in fnmatch syntax
    result.stdout.fnmatch_lines([f"*{pattern}*"])


def test_missing_driver_factory_is_explained(project: pytest.Pytester) -> None:
    """A suite subclass without ``driver_factory`` errors, saying what to define."""
    project.makepyfile(
        test_nofactory="""
        from ommi_testkit.suites.base import SuiteBase


        class TestDriver(SuiteBase):
            async def test_real(self, db):
                pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestDriver must define a driver_factory fixture*"])


# -- the plugin ----------------------------------------------------------------


def test_plugin_registers_option_and_marker(pytester: pytest.Pytester) -> None:
    """The pytest plugin adds ``--ommi-require-servers`` and registers the ``ommi_requires`` marker."""
    pytester.makeini(INI.format(mode="strict"))
    help_result = pytester.runpytest("--help")
    help_result.stdout.fnmatch_lines(["*--ommi-require-servers*"])
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.ommi_requires(*capabilities)*"])


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_whole_suite_passes_on_the_reference_driver(pytester: pytest.Pytester, mode: str) -> None:
    """The full ConformanceSuite passes on the reference driver, in strict and in auto mode.

    Nothing skips but the ``raw_sql`` tests: the reference has no SQL.
    """
    pytester.makeini(INI.format(mode=mode))
    pytester.makepyfile(
        test_reference="""
        import pytest
        from ommi_testkit import ConformanceSuite, ReferenceDriver
        from ommi_testkit.reference import ReferenceStore


        class TestReference(ConformanceSuite):
            @pytest.fixture
            def driver_factory(self):
                store = ReferenceStore()
                return lambda: ReferenceDriver.connect(store=store)
        """
    )
    # In a process of its own: an in-process run after another one sees the models the first run
    # imported still registered, so references resolve to the first run's classes.
    result = pytester.runpytest_subprocess("-q", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 150, outcomes
    assert set(outcomes) <= {"passed", "skipped"}, outcomes
    # The one capability the reference lacks: it has no SQL to pass ``db.raw`` statements to.
    skips = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert sum(int(line.split("[")[1].split("]")[0]) for line in skips) == outcomes.get("skipped", 0), skips
    assert all("capability 'raw_sql' absent" in line for line in skips), skips
