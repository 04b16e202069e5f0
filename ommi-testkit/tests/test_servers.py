"""Tests of :mod:`ommi_testkit.servers`: the one-line skip for absent servers and per-worker names."""

from __future__ import annotations

import asyncio
import os
import pickle
import socket

import pytest
from ommi_testkit.servers import ServerSkip, accepts_tcp, redact_url, scratch_namespace, server_url, worker_namespace

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
xfail_strict = true
addopts = --strict-markers -p no:cacheprovider -p no:hypothesispytest
filterwarnings = error
"""

# A session fixture probing a real TCP port, the way a server driver's tests do.
PROBING_TESTS = """
import asyncio
import os
import pytest
from ommi_testkit.servers import server_url

PROBES = os.environ["PROBE_LOG"]


async def tcp_probe(url):
    with open(PROBES, "a") as log:
        log.write(url + "\\n")
    host_port = url.split("@")[-1].split("/")[0]
    host, port = host_port.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    await writer.wait_closed()


@pytest.fixture(scope="session")
def fake_url():
    return server_url("OMMI_TEST_FAKEDB_URL", os.environ.get("FAKE_DEFAULT") or None, tcp_probe, "FakeDB", timeout=2)


def test_one(fake_url):
    assert fake_url.startswith("fakedb://")


def test_two(fake_url):
    assert fake_url.startswith("fakedb://")


def test_three(fake_url):
    assert fake_url.startswith("fakedb://")
"""


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def probing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_probing=PROBING_TESTS)
    monkeypatch.setenv("PROBE_LOG", str(pytester.path / "probes.log"))
    monkeypatch.delenv("OMMI_TEST_FAKEDB_URL", raising=False)
    return pytester


def _probes(pytester: pytest.Pytester) -> list[str]:
    log = pytester.path / "probes.log"
    return log.read_text().splitlines() if log.exists() else []


def test_server_unreachable_skips_with_one_line(probing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable server skips every test with one summary line: what, where (no password), which variable."""
    port = _closed_port()
    monkeypatch.setenv("FAKE_DEFAULT", f"fakedb://user:s3cret@127.0.0.1:{port}/db")
    result = probing.runpytest("-rs")
    result.assert_outcomes(skipped=3)
    skip_lines = [line for line in result.stdout.lines if line.startswith("SKIPPED")]
    assert len(skip_lines) == 1, skip_lines
    line = skip_lines[0]
    assert line.startswith("SKIPPED [3] ")
    assert f"FakeDB server not reachable at fakedb://user:***@127.0.0.1:{port}/db" in line
    assert "set OMMI_TEST_FAKEDB_URL to a reachable server's URL" in line
    assert "s3cret" not in result.stdout.str()
    assert len(_probes(probing)) == 1, "the server is probed once per session"


def test_server_unreachable_fails_with_require_servers(
    probing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--ommi-require-servers`` turns the skip into a failure with the same explanation."""
    port = _closed_port()
    monkeypatch.setenv("FAKE_DEFAULT", f"fakedb://127.0.0.1:{port}/db")
    result = probing.runpytest("--ommi-require-servers")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [f"*FakeDB server not reachable at fakedb://127.0.0.1:{port}/db*OMMI_TEST_FAKEDB_URL*--ommi-require-servers*"]
    )
    assert len(_probes(probing)) == 1


def test_server_without_url_or_default_skips(probing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no variable set and no default, the tests skip saying which variable to set, without probing."""
    monkeypatch.delenv("FAKE_DEFAULT", raising=False)
    result = probing.runpytest("-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*FakeDB tests need a server: OMMI_TEST_FAKEDB_URL is not set*"])
    assert _probes(probing) == []


def test_server_reachable_gives_the_url_from_the_variable(
    probing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reachable server's URL (the variable wins over the default) is handed to the tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        monkeypatch.setenv("FAKE_DEFAULT", f"fakedb://127.0.0.1:{_closed_port()}/unused")
        monkeypatch.setenv("OMMI_TEST_FAKEDB_URL", f"fakedb://u:pw@127.0.0.1:{port}/db")
        result = probing.runpytest()
    result.assert_outcomes(passed=3)
    assert _probes(probing) == [f"fakedb://u:pw@127.0.0.1:{port}/db"]


def test_server_probe_timeout_is_reported(pytester: pytest.Pytester) -> None:
    """A probe that hangs counts as unreachable after the timeout, and the message gives the timeout."""
    pytester.makeini(INI)
    pytester.makepyfile(
        test_hang="""
        import asyncio
        import pytest
        from ommi_testkit.servers import server_url

        async def hang(url):
            await asyncio.sleep(60)

        @pytest.fixture(scope="session")
        def url():
            return server_url("OMMI_TEST_HANG_URL", "hang://127.0.0.1:1", hang, "HangDB", timeout=0.2)

        def test_it(url):
            pass
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*HangDB server not reachable at hang://127.0.0.1:1 (no answer within 0.2s)*"])


async def test_server_url_works_inside_a_running_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """``server_url`` may be called from async code (an async fixture): the probe runs on its own loop."""
    monkeypatch.delenv("OMMI_TEST_LOOPDB_URL", raising=False)
    seen: list[str] = []

    async def probe(url: str) -> None:
        seen.append(url)

    assert server_url("OMMI_TEST_LOOPDB_URL", "loopdb://127.0.0.1:9/x", probe, "LoopDB") == "loopdb://127.0.0.1:9/x"
    assert seen == ["loopdb://127.0.0.1:9/x"]


# -- helpers -------------------------------------------------------------------


def test_redact_url_hides_only_the_password() -> None:
    """Passwords become ``***``; users, hosts, ports, paths and queries stay; URLs without one are unchanged."""
    assert redact_url("postgresql://ommi:secret@127.0.0.1:5432/db?sslmode=disable") == (
        "postgresql://ommi:***@127.0.0.1:5432/db?sslmode=disable"
    )
    assert redact_url("mongodb://127.0.0.1:27017/test") == "mongodb://127.0.0.1:27017/test"
    assert redact_url("postgresql://ommi@127.0.0.1/db") == "postgresql://ommi@127.0.0.1/db"
    assert redact_url("postgresql://u:p@[::1]:5432/db") == "postgresql://u:***@[::1]:5432/db"


def test_redact_url_hides_secret_options_and_ambiguous_passwords() -> None:
    """Secret query options become ``***``; a password with an unescaped '/' hides everything after the scheme."""
    assert redact_url("mongodb://h:27017/app?authMechanismProperties=AWS_SESSION_TOKEN:tok3n&appname=x") == (
        "mongodb://h:27017/app?authMechanismProperties=***&appname=x"
    )
    assert redact_url("mongodb://h/app?tlsCertificateKeyFilePassword=pw1234") == (
        "mongodb://h/app?tlsCertificateKeyFilePassword=***"
    )
    assert redact_url("postgresql://u@h/db?SSLPASSWORD=pw1234&sslmode=require") == (
        "postgresql://u@h/db?SSLPASSWORD=***&sslmode=require"
    )
    assert redact_url("mongodb://u:pa/ss1234@h/app") == "mongodb://***"
    assert redact_url("u:pw1234@h/db") == "<not a URL>"


def test_worker_namespace_per_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each xdist worker gets its own name; without xdist the name ends in ``main``; names are safe identifiers."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert worker_namespace("ommi_test") == "ommi_test_gw3"
    assert worker_namespace("Ommi-Test") == "ommi_test_gw3"
    assert worker_namespace("ommi_test", unique=True) == f"ommi_test_gw3_{os.getpid()}"
    assert worker_namespace("x" * 100) == "x" * 63
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert worker_namespace("ommi_test") == "ommi_test_main"
    with pytest.raises(ValueError, match="empty name"):
        worker_namespace("--")


def test_server_skip_pickles() -> None:
    """The skip exception survives pickling with its message and location (pytest-xdist ships outcomes)."""
    skip = ServerSkip("MyDB server not reachable", ("conftest.py", 12))
    copy = pickle.loads(pickle.dumps(skip))
    assert type(copy) is ServerSkip
    assert (copy.msg, copy.location) == ("MyDB server not reachable", ("conftest.py", 12))


async def test_accepts_tcp_tries_every_host_of_the_url() -> None:
    """A URL's hosts are tried in turn; the probe fails only when none accepts a connection."""
    server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # bound once, now nobody listens there
    try:
        await accepts_tcp(f"mongodb://user:pw@127.0.0.1:{closed_port},127.0.0.1:{port}/db", 27017)
        with pytest.raises(ConnectionRefusedError, match=str(closed_port)):
            await accepts_tcp(f"mongodb://127.0.0.1:{closed_port}/db", 27017)
    finally:
        server.close()
        await server.wait_closed()


def test_scratch_namespace_creates_and_drops_a_postgresql_schema() -> None:
    """The schema exists (empty) inside the block and is gone, with its tables, afterwards."""
    import psycopg

    url = os.environ.get("OMMI_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {redact_url(url)}: {exc}; set OMMI_TEST_POSTGRESQL_URL")

    def schema_exists(name: str) -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
        return found is not None

    with scratch_namespace(url, "ommi_scratch_test") as name:
        assert name.startswith("ommi_scratch_test_") and schema_exists(name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE TABLE "{name}".t (x int)')
    assert not schema_exists(name)


def test_scratch_namespace_refuses_a_url_without_namespaces() -> None:
    with pytest.raises(ValueError, match="no server with schemas or databases"), scratch_namespace("reference://", "x"):
        pass
