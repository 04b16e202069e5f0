"""pytest fixtures for the tests of applications that use Ommi.

The testkit's pytest plugin provides them to every project that installs
ommi-testkit. Nothing happens unless a test asks for one: no autouse fixture
and no table created at import.

* ``ommi_url`` (session scope): the URL of a database of this test worker's
  own. It is SQLite in a temporary file by default. Any other URL comes from
  ``--ommi-url`` or, failing that, the ``OMMI_TEST_URL`` environment variable.
  On a server every pytest-xdist worker gets its own namespace, created empty
  before its first test and dropped after its last: a PostgreSQL schema
  (``schema=`` in the URL) or a MongoDB database (the URL's path). A SQLite
  file URL gets a file per worker, next to the one named. Other URLs are used
  as given, with ``{worker}`` in them replaced by the worker's name.
* ``ommi_db`` (function scope): an open :class:`ommi.Ommi` on ``ommi_url``
  and the test's active database. The database is empty and implicit model
  setup is allowed. Afterwards the fixture drops the tables it created: those
  of the global collection and of every collection passed to its
  ``use_models``.

An unreachable server skips the tests that use these fixtures with one line
naming the URL (without its password). ``--ommi-require-servers`` turns that
into a failure.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import NoReturn

import ommi
import pytest
import pytest_asyncio
from ommi import ModelCollection, Ommi, get_global_collection
from ommi.errors import DriverNotFound

from ommi_testkit import servers
from ommi_testkit._namespaces import DEFAULT_PREFIX, isolation_for

__all__ = ["ENV_VAR", "URL_OPTION", "ommi_db", "ommi_url"]

ENV_VAR = "OMMI_TEST_URL"
"""The environment variable naming the test database when ``--ommi-url`` is not given."""

URL_OPTION = "ommi_url"
"""The ``config.option`` attribute behind ``--ommi-url``."""


def configured_url(config: pytest.Config) -> tuple[str, str] | None:
    """The test database URL the run was given, and where it came from; ``None`` for the SQLite default."""
    url = getattr(config.option, URL_OPTION, None)
    if url:
        return url, "--ommi-url"
    url = os.environ.get(ENV_VAR)
    if url:
        return url, ENV_VAR
    return None


def _unreachable(config: pytest.Config, what: str, url: str, source: str, problem: str) -> NoReturn:
    """Skip (fail under ``--ommi-require-servers``) the tests needing the database, with one line."""
    __tracebackhide__ = True
    message = (
        f"{what} test database not reachable at {servers.redact_url(url)} (from {source}; {problem}); "
        f"start the server, or point --ommi-url / {ENV_VAR} at a reachable one"
    )
    # One location for every such skip, so pytest's summary folds them into a single line.
    servers._unavailable(message, config, (__file__, sys._getframe().f_lineno))


async def _open_and_close(url: str) -> None:
    async with ommi.connect(url, allow_implicit_model_setup=False):
        pass


@pytest.fixture(scope="session")
def ommi_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of this worker's own test database (SQLite in a temporary file unless configured).

    Configure another with ``--ommi-url URL`` or ``OMMI_TEST_URL``. On
    PostgreSQL and MongoDB each worker gets a schema / database of its own,
    dropped at the end of the session.
    """
    config = request.config
    configured = configured_url(config)
    if configured is None:
        folder = tmp_path_factory.mktemp("ommi")
        yield f"sqlite:///{folder / 'test.sqlite'}"
        return
    url, source = configured
    try:
        ommi.connect(url)  # builds the driver without I/O: the scheme and the settings are checked
    except (DriverNotFound, ommi.ConfigurationError) as exc:
        pytest.fail(f"{source} = {servers.redact_url(url)} cannot be used: {exc}", pytrace=False)
    isolation = isolation_for(url)
    if isolation is None:
        worker_url = url.replace("{worker}", servers.worker_namespace(DEFAULT_PREFIX))
        try:
            servers._run(_open_and_close, worker_url, servers.DEFAULT_TIMEOUT)
        except TimeoutError:
            _unreachable(config, "Ommi", worker_url, source, f"no answer within {servers.DEFAULT_TIMEOUT:g}s")
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable", explained in the message
            _unreachable(config, "Ommi", worker_url, source, servers._one_line(exc))
        yield worker_url
        return
    namespace = servers.worker_namespace(isolation.prefix(url), unique=True)
    try:
        isolation.reset(url, namespace)
    except Exception as exc:  # noqa: BLE001 - as above
        _unreachable(config, isolation.what, url, source, servers._one_line(exc))
    try:
        yield isolation.isolate(url, namespace)
    finally:
        isolation.drop(url, namespace)


class _ScratchOmmi(Ommi):
    """An :class:`Ommi` that remembers which collections it set up, so it can drop them."""

    def __init__(self, url: str) -> None:
        super().__init__(ommi.connect(url).driver, allow_implicit_model_setup=True)
        self._collections: list[ModelCollection] = []

    async def use_models(self, collection: ModelCollection | None = None) -> None:
        chosen = collection if collection is not None else get_global_collection()
        if not any(chosen is known for known in self._collections):
            self._collections.append(chosen)
        await super().use_models(collection)

    async def _drop_used(self) -> None:
        # Later collections may reference earlier ones: drop them first, the global one last.
        for collection in reversed(self._collections):
            if collection is not get_global_collection():
                await self.remove_models(collection)
        await self.remove_models()


@pytest_asyncio.fixture
async def ommi_db(ommi_url: str) -> AsyncIterator[Ommi]:
    """An open :class:`ommi.Ommi` on an empty database, the test's active database.

    Implicit model setup is allowed. Afterwards the tables of the global
    collection and of every collection given to ``use_models`` are dropped.
    """
    database = _ScratchOmmi(ommi_url)
    async with database:
        # Tables a test left behind when it connected to ommi_url on its own.
        await database.remove_models()
        try:
            yield database
        finally:
            await database._drop_used()
