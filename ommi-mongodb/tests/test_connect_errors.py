"""What opening a MongoDB database says when it cannot (issue 13).

A closed port refuses the connection at once: PyMongo would keep retrying
until ``serverSelectionTimeoutMS`` (30 s) and report a timeout, and
``ommi check`` (10 s per step) used to say "timed out after 10 s". Now opening
fails at once with an ``ommi.errors.ConnectionError`` saying the connection
was refused, naming ``host:port`` and no credentials. A server that accepts
the connection but never answers still gets the timeout wording.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import ommi
import pytest
from ommi.cli import main
from ommi.drivers import map_exceptions
from ommi.errors import ConnectionError
from ommi_mongodb._errors import exceptions
from ommi_testkit.servers import collect_abandoned_sockets
from pymongo import errors as pm

SECRET = "Zk4711"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


async def test_closed_port_says_the_connection_was_refused_at_once() -> None:
    port = _closed_port()
    db = ommi.connect(f"mongodb://ommi:{SECRET}@127.0.0.1:{port}/app")
    started = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        await db.open()
    elapsed = time.monotonic() - started
    await collect_abandoned_sockets()
    message = str(caught.value)
    assert message.startswith(f"connect: the connection to 127.0.0.1:{port} was refused, so the MongoDB server at ")
    assert "ommi:***@" in message  # the URL, without its password
    assert "timed out" not in message and "Timeout" not in message
    assert SECRET not in message
    assert isinstance(caught.value.__cause__, pm.ConnectionFailure)
    # Well before PyMongo's 30 s server selection timeout (and ommi check's 10 s per step).
    assert elapsed < 8, elapsed


async def test_ommi_check_on_a_closed_port_says_refused(capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    status = await _in_thread(["check", f"mongodb://ommi:{SECRET}@127.0.0.1:{port}/app"])
    await collect_abandoned_sockets()
    out, err = capsys.readouterr()
    assert status == 2
    assert err.startswith(f"ommi check: ConnectionError: connect: the connection to 127.0.0.1:{port} was refused")
    assert "timed out" not in err
    assert SECRET not in out + err


async def _in_thread(argv: list[str]) -> int:
    # `ommi check` runs its own event loop (asyncio.run), so not in this test's.
    return await asyncio.to_thread(main, argv)


async def test_a_server_that_never_answers_keeps_the_timeout_wording(silent_port: int) -> None:
    db = ommi.connect(
        f"mongodb://ommi:{SECRET}@127.0.0.1:{silent_port}/app?serverSelectionTimeoutMS=1000&connectTimeoutMS=300"
    )
    with pytest.raises(ConnectionError) as caught:
        await db.open()
    await collect_abandoned_sockets()
    message = str(caught.value)
    assert "server selection timed out after 1.0 s" in message
    assert f"127.0.0.1:{silent_port}" in message
    assert "refused" not in message
    assert SECRET not in message


def _selection_error(*server_errors: str) -> pm.ServerSelectionTimeoutError:
    """A ServerSelectionTimeoutError worded as PyMongo 4 words it (its text is all it carries)."""
    timeouts = " (configured timeouts: socketTimeoutMS: 20000.0ms, connectTimeoutMS: 20000.0ms)"
    head = ",".join(error + timeouts for error in server_errors)
    return pm.ServerSelectionTimeoutError(
        f"{head}, Timeout: 30.0s, Topology Description: <TopologyDescription id: 1, topology_type: Unknown, "
        "servers: [...]>"
    )


def _mapped(exc: BaseException) -> str:
    with pytest.raises(ConnectionError) as caught, map_exceptions(exceptions("count 'user'", "mongodb://h/app")):
        raise exc
    return str(caught.value)


@pytest.mark.parametrize(
    "refusal",
    [
        "[Errno {errno}] Connect call failed ('{host}', {port})",
        "[Errno {errno}] Connection refused",
        "[WinError 10061] No connection could be made because the target machine actively refused it",
    ],
)
def test_selection_errors_that_are_all_refusals_say_refused(refusal: str) -> None:
    errors = [
        f"{host}:{port}: " + refusal.format(errno=errno.ECONNREFUSED, host=host, port=port)
        for host, port in (("db1.internal", 27017), ("10.0.0.2", 27018))
    ]
    message = _mapped(_selection_error(*errors))
    assert message.startswith("count 'user': the connections to db1.internal:27017, 10.0.0.2:27018 were refused")
    assert "the MongoDB server at mongodb://h/app cannot be reached" in message
    assert "Timeout" not in message


def test_selection_errors_with_a_timeout_keep_the_timeout_wording() -> None:
    message = _mapped(
        _selection_error(
            f"db1.internal:27017: [Errno {errno.ECONNREFUSED}] Connect call failed ('db1.internal', 27017)",
            "db2.internal:27017: timed out",
        )
    )
    assert "server selection timed out after 30.0 s" in message
    assert "db2.internal:27017: timed out" in message
    assert "were refused" not in message and "nothing listens" not in message


EXIT_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import sys
    from dataclasses import dataclass

    import ommi

    @ommi.ommi_model(name="exit_note")
    @dataclass
    class Note:
        text: str
        id: int | None = None

    db = ommi.connect(sys.argv[1])

    async def main() -> None:
        await db.add(Note("kept")).or_raise()
        if sys.argv[2] == "drop":
            await db.remove_models()
            await db.close()

    asyncio.run(main())
    print("script ended")
    """
)


def test_script_left_open_exits_and_warns(tmp_path: Path, mongodb_url: str) -> None:
    """Item 1 on MongoDB: a database left open does not keep Python from exiting, and is reported."""
    script = tmp_path / "script.py"
    script.write_text(EXIT_SCRIPT)
    try:
        result = subprocess.run(
            [sys.executable, "-W", "always", str(script), mongodb_url, "keep"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "script ended" in result.stdout
        assert "ResourceWarning: unclosed Ommi database mongodb://" in result.stderr
        assert "(left open at exit)" in result.stderr
    finally:
        subprocess.run([sys.executable, str(script), mongodb_url, "drop"], timeout=60, check=False)
