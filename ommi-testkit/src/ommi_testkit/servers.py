"""Helpers for drivers whose tests need a database server.

A server driver's tests find their server with :func:`server_url`, usually in
a session-scoped fixture that its ``driver_factory`` uses::

    @pytest.fixture(scope="session")
    def postgresql_url() -> str:
        return server_url(
            "OMMI_TEST_POSTGRESQL_URL",
            "postgresql://postgres@127.0.0.1:5432/postgres",
            probe=connect_and_close,
            what="PostgreSQL",
        )

When the server cannot be reached within a short timeout every test using the
fixture skips with one line saying what was tried, where, and which variable
to set; with ``--ommi-require-servers`` (what CI passes) it fails instead. The
probe runs once per test session and URL; later calls reuse its outcome.

:func:`worker_namespace` gives each pytest-xdist worker its own schema or
database name so parallel workers never share tables.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import sys
import threading
import urllib.parse
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from ommi.drivers.urls import redact_url as _redact_url

from ommi_testkit._namespaces import isolation_for

__all__ = [
    "ServerSkip",
    "ServerUnavailable",
    "accepts_tcp",
    "collect_abandoned_sockets",
    "redact_url",
    "scratch_namespace",
    "server_url",
    "worker_namespace",
]

REQUIRE_SERVERS_OPTION = "ommi_require_servers"
"""The ``config.option`` attribute behind ``--ommi-require-servers``."""

DEFAULT_TIMEOUT = 3.0
"""Seconds a probe may take before the server counts as unreachable."""

_probes = pytest.StashKey[dict[tuple[str, str], "str | ServerUnavailable"]]()
_configs: list[pytest.Config] = []


class ServerUnavailable(Exception):
    """A probe failed; ``args[0]`` is the one-line explanation shown to the user."""


if TYPE_CHECKING:
    from _pytest.outcomes import Skipped as _Skipped
else:
    _Skipped = pytest.skip.Exception  # the public name of pytest's skip exception


class ServerSkip(_Skipped):
    """The skip of a test whose server is unreachable.

    It remembers where :func:`server_url` was called so that the testkit's
    pytest plugin reports every such skip at that one place: pytest then folds
    them into a single summary line instead of one line per test.
    """

    def __init__(self, msg: str, location: tuple[str, int]) -> None:
        super().__init__(msg)
        self.location = location

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable although __init__ takes more than the message (xdist ships outcomes around).
        return (type(self), (self.msg, self.location), self.__dict__)


def _register_config(config: pytest.Config) -> None:
    """Remember the running session's config (called by the testkit's pytest plugin)."""
    _configs.append(config)


def _unregister_config(config: pytest.Config) -> None:
    if config in _configs:
        _configs.remove(config)


def redact_url(url: str) -> str:
    """``url`` with its password and secret options replaced by ``***``, safe to print.

    The same as :func:`ommi.drivers.urls.redact_url`, which every driver uses.
    """
    return _redact_url(url)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run(probe: Callable[[str], Awaitable[Any]], url: str, timeout: float) -> None:
    """Run ``probe(url)`` to completion on a private event loop, bounded by ``timeout``."""

    async def bounded() -> None:
        await asyncio.wait_for(probe(url), timeout)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(bounded())
        return
    # Called from inside a running loop (an async fixture): probe on a thread of its own.
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(bounded())
        except BaseException as exc:  # noqa: BLE001 - handed back to the calling thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="ommi-server-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if thread.is_alive():
        raise TimeoutError
    if failure:
        raise failure[0]


def _explain(what: str, env_var: str, url: str | None, problem: str) -> ServerUnavailable:
    if url is None:
        return ServerUnavailable(f"{what} tests need a server: {problem}; set {env_var} to its URL")
    return ServerUnavailable(
        f"{what} server not reachable at {redact_url(url)} ({problem}); set {env_var} to a reachable server's URL"
    )


def _probe(
    env_var: str,
    default: str | None,
    probe: Callable[[str], Awaitable[Any]],
    what: str,
    timeout: float,
) -> str | ServerUnavailable:
    url = os.environ.get(env_var) or default
    if url is None:
        return _explain(what, env_var, None, f"{env_var} is not set and there is no default")
    try:
        _run(probe, url, timeout)
    except TimeoutError:
        return _explain(what, env_var, url, f"no answer within {timeout:g}s")
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable", explained in the message
        return _explain(what, env_var, url, _one_line(exc))
    return url


def _current_config(config: pytest.Config | None) -> pytest.Config | None:
    if config is not None:
        return config
    return _configs[-1] if _configs else None


def _unavailable(message: str, config: pytest.Config | None, location: tuple[str, int]) -> NoReturn:
    __tracebackhide__ = True
    if config is not None and getattr(config.option, REQUIRE_SERVERS_OPTION, False):
        pytest.fail(f"{message} (--ommi-require-servers is set)", pytrace=False)
    raise ServerSkip(message, location)


def server_url(
    env_var: str,
    default: str | None,
    probe: Callable[[str], Awaitable[Any]],
    what: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    config: pytest.Config | None = None,
) -> str:
    """The URL of a reachable test server, or skip (fail with ``--ommi-require-servers``).

    Args:
        env_var: the environment variable naming the server's URL
            (``OMMI_TEST_POSTGRESQL_URL``, ``OMMI_TEST_MONGODB_URL``).
        default: the URL to try when ``env_var`` is unset (a loopback server),
            or ``None`` to skip straight away.
        probe: ``await probe(url)`` connects and raises when it cannot; it is
            cancelled after ``timeout`` seconds.
        what: the server's name for the message (``"PostgreSQL"``).
        timeout: seconds the probe may take.
        config: the pytest config; defaults to the running session's.

    Returns:
        The URL that answered (from ``env_var`` or ``default``).
    """
    __tracebackhide__ = True
    caller = sys._getframe(1)
    location = (caller.f_code.co_filename, caller.f_lineno)
    config = _current_config(config)
    key = (env_var, os.environ.get(env_var) or default or "")
    cache: dict[tuple[str, str], str | ServerUnavailable] | None = None
    if config is not None:
        cache = config.stash.setdefault(_probes, {})
    outcome = cache.get(key) if cache is not None else None
    if outcome is None:
        outcome = _probe(env_var, default, probe, what, timeout)
        if cache is not None:
            cache[key] = outcome
    if isinstance(outcome, ServerUnavailable):
        _unavailable(outcome.args[0], config, location)
    return outcome


_UNSAFE = re.compile(r"[^a-z0-9_]+")


async def accepts_tcp(url: str, default_port: int, timeout: float = 2.0) -> None:
    """Raise ``ConnectionRefusedError`` unless some host of ``url`` accepts a TCP connection.

    For a probe to call before a client library is involved: some clients
    (PyMongo's asyncio client) leak a socket when closed while still trying
    to reach an absent server, and the ResourceWarning then fails an
    unrelated test. ``url`` may list several hosts (``scheme://a:1,b:2/db``);
    a URL without hosts in it (``mongodb+srv://``) is left to the client.
    """
    parts = urllib.parse.urlsplit(url)
    if "+srv" in parts.scheme:
        return
    failures = []
    for node in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = node.rpartition(":") if not node.endswith("]") else (node, "", "")
        if not host or not port.isdigit():
            host, port = node, str(default_port)
        host = host.strip("[]")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (TimeoutError, OSError) as exc:
            failures.append(f"{host}:{port}: {exc or type(exc).__name__}")
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise ConnectionRefusedError("; ".join(failures) or f"no host in {redact_url(url)}")


def worker_namespace(prefix: str, *, unique: bool = False) -> str:
    """A schema or database name of this pytest-xdist worker: ``<prefix>_gw0``, ``<prefix>_main``.

    Args:
        prefix: the start of the name (``"ommi_test"``).
        unique: also append the process id, so concurrent test runs against
            one server (several checkouts, several CI jobs) never share it.

    The result is lower case, made of ``[a-z0-9_]`` only, and at most 63
    characters (PostgreSQL's identifier limit; MongoDB allows more).
    """
    start = _UNSAFE.sub("_", prefix.lower()).strip("_")
    if not start:
        raise ValueError(f"worker_namespace({prefix!r}): the prefix gives an empty name")
    worker = _UNSAFE.sub("_", os.environ.get("PYTEST_XDIST_WORKER", "main").lower())
    parts = [start, worker] + ([str(os.getpid())] if unique else [])
    return "_".join(parts)[:63]


@contextmanager
def scratch_namespace(url: str, prefix: str) -> Iterator[str]:
    """A namespace of this worker and run on ``url``'s server, created empty and dropped with its contents at the end.

    A PostgreSQL schema or a MongoDB database (a driver's ``schema=`` setting or
    database name), named by :func:`worker_namespace` with ``unique=True``::

        @pytest.fixture(scope="session")
        def postgresql_schema(postgresql_url):
            with scratch_namespace(postgresql_url, "ommi_test") as name:
                yield name

    Raises:
        ValueError: ``url`` names a database without namespaces to isolate.
    """
    isolation = isolation_for(url)
    if isolation is None or isolation.what not in ("PostgreSQL", "MongoDB"):
        raise ValueError(f"scratch_namespace: {redact_url(url)} names no server with schemas or databases to isolate")
    name = worker_namespace(prefix, unique=True)
    isolation.reset(url, name)
    try:
        yield name
    finally:
        isolation.drop(url, name)


async def collect_abandoned_sockets() -> None:
    """Collect, without a ResourceWarning, sockets a client library abandoned during this test.

    PyMongo's asyncio client (4.x) leaves a socket unclosed when it is closed,
    or its connect is cancelled, while a monitor or pool task is still
    connecting. Nothing refers to it any more; collected here, in the test that
    caused it, rather than reported by ``-W error`` in whichever test the
    garbage collector happens to run next. Ommi's own connection accounting
    is checked separately (``reliability.workloads.hygiene``), so this hides
    no leak of Ommi's.
    """
    for _ in range(3):
        await asyncio.sleep(0.05)  # let cancelled monitor tasks finish
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
