"""A database left open: the interpreter still exits, and a ``ResourceWarning`` names it (issue 13).

``db = ommi.connect(url)`` without ``async with db:`` or ``await db.close()``
is what the API invites ("nothing is opened until the first operation").
Such a script must exit promptly on every driver (SQLite's aiosqlite worker
threads used to keep the interpreter waiting forever), and Ommi warns about
the open database like an unclosed file: a ``ResourceWarning`` naming its URL
without secrets, shown under ``-W always`` or ``python -X dev``.

The scripts run in subprocesses with a timeout, since a hang at exit only
shows there.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import ommi
import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.database import _report_open_at_exit
from ommi_testkit.reference import ReferenceDriver

EXIT_TIMEOUT = 60.0
"""A hang fails the test here; a normal run takes about a second (imports included)."""

SCRIPT = textwrap.dedent(
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
    {body}

    asyncio.run(main())
    print("script ended")
    """
)

LEFT_OPEN = """
    await db.add(Note("kept")).or_raise()
    print(await db.find(Note).count.or_raise())
"""

CLOSED = """
    async with db:
        await db.add(Note("kept")).or_raise()
        print(await db.find(Note).count.or_raise())
"""

TRANSACTION_LEFT_OPEN = """
    await db.add(Note("committed")).or_raise()
    transaction = db.transaction()
    t = await transaction.__aenter__()
    await t.add(Note("never committed")).or_raise()
    print("transaction open")
"""

DROP = """
    async with db:
        await db.remove_models()
"""


def _run(tmp_path: Path, body: str, url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(body=textwrap.indent(textwrap.dedent(body).strip(), "    ")))
    try:
        return subprocess.run(
            [sys.executable, *flags, str(script), url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=EXIT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script did not exit within {EXIT_TIMEOUT} s (hung at exit?); output: {exc.stdout!r}")


def _ran(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert "script ended" in result.stdout, result.stdout


@pytest.mark.parametrize("flags", [("-W", "always"), ("-X", "dev")], ids=["W-always", "X-dev"])
def test_sqlite_script_left_open_exits_and_warns(tmp_path: Path, flags: tuple[str, ...]) -> None:
    result = _run(tmp_path, LEFT_OPEN, "sqlite:///app.db", *flags)
    _ran(result)
    assert "ResourceWarning: unclosed Ommi database sqlite:///app.db (left open at exit)" in result.stderr
    assert "await db.close()" in result.stderr
    # Closed at exit: what was added is stored, and the WAL was checkpointed into the file.
    assert not (tmp_path / "app.db-wal").exists()
    with contextlib.closing(sqlite3.connect(tmp_path / "app.db")) as conn:
        assert conn.execute("SELECT count(*) FROM exit_note").fetchone() == (1,)


def test_sqlite_script_without_warnings_flag_is_silent(tmp_path: Path) -> None:
    # Python ignores ResourceWarning by default, as for an unclosed file.
    result = _run(tmp_path, LEFT_OPEN, "sqlite:///app.db")
    _ran(result)
    assert result.stderr == ""


def test_sqlite_script_with_async_with_does_not_warn(tmp_path: Path) -> None:
    result = _run(tmp_path, CLOSED, "sqlite:///app.db", "-W", "always")
    _ran(result)
    assert "Warning" not in result.stderr, result.stderr


def test_sqlite_transaction_left_open_at_exit_is_rolled_back(tmp_path: Path) -> None:
    result = _run(tmp_path, TRANSACTION_LEFT_OPEN, "sqlite:///app.db", "-W", "always")
    _ran(result)
    assert "transaction open" in result.stdout
    assert "unclosed Ommi database sqlite:///app.db" in result.stderr
    with contextlib.closing(sqlite3.connect(tmp_path / "app.db")) as conn:
        texts = [text for (text,) in conn.execute("SELECT text FROM exit_note")]
    assert texts == ["committed"]


def test_sqlite_memory_script_left_open_exits(tmp_path: Path) -> None:
    result = _run(tmp_path, LEFT_OPEN, "sqlite://", "-W", "always")
    _ran(result)
    assert "unclosed Ommi database sqlite:// (left open at exit)" in result.stderr


def test_postgresql_script_left_open_exits_and_warns_without_secrets(tmp_path: Path, postgresql_url: str) -> None:
    secret = "s3cret-never-shown"
    scheme, _, rest = postgresql_url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        pytest.skip("the PostgreSQL test URL names no user to give a password to")
    user = userinfo.partition(":")[0]
    # A password the server does not ask for (trust) is never sent; one it asks for is the real one.
    url = f"{scheme}://{user}:{secret}@{hosts}" if ":" not in userinfo else postgresql_url
    try:
        result = _run(tmp_path, LEFT_OPEN, url, "-W", "always")
        if result.returncode != 0 and "password" in result.stderr:
            pytest.skip("the PostgreSQL test server asks for a password")
        _ran(result)
        assert "ResourceWarning: unclosed Ommi database postgresql://" in result.stderr
        assert "(left open at exit)" in result.stderr
        assert secret not in result.stderr and secret not in result.stdout
        if url != postgresql_url:
            assert f"{user}:***@" in result.stderr
    finally:
        _run(tmp_path, DROP, url)


models = ModelCollection("test_exit_and_warnings")


@ommi_model(collection=models, name="exit_warning_item")
@dataclass
class Item:
    name: str
    id: int | None = None


def _forget(held: list[Ommi]) -> None:
    """Drop the only reference to each database, and collect."""
    held.clear()
    gc.collect()


async def test_database_collected_while_open_warns() -> None:
    held = [Ommi(ReferenceDriver.connect())]
    await held[0].use_models(models)
    with pytest.warns(ResourceWarning, match=r"unclosed Ommi database reference \(in memory\) \(garbage collected"):
        _forget(held)


async def test_connect_names_the_redacted_url() -> None:
    held = [ommi.connect("reference://app?password=hunter2")]
    await held[0].use_models(models)
    with pytest.warns(ResourceWarning) as caught:
        _forget(held)
    text = str(caught[0].message)
    assert "reference://app?password=***" in text
    assert "hunter2" not in text


async def test_closed_database_does_not_warn() -> None:
    db = Ommi(ReferenceDriver.connect())
    async with db:
        await db.use_models(models)
    await db.open()
    await db.close()
    never_opened = Ommi(ReferenceDriver.connect())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del db, never_opened
        gc.collect()
        _report_open_at_exit()
    assert [str(w.message) for w in caught] == []


async def test_exit_report_warns_once_per_open_database() -> None:
    db = Ommi(ReferenceDriver.connect())
    await db.use_models(models)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _report_open_at_exit()
            _report_open_at_exit()
        assert [(w.category, str(w.message)) for w in caught] == [
            (
                ResourceWarning,
                "unclosed Ommi database reference (in memory) (left open at exit): close it with "
                "`await db.close()`, or open it with `async with db:`",
            )
        ]
    finally:
        await db.close()
