"""The ``ommi`` command."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import warnings

import pytest
from ommi.cli import main


def test_drivers_lists_installed_drivers(capsys: pytest.CaptureFixture[str]) -> None:
    """`ommi drivers` prints each driver with its version, schemes and capabilities."""
    assert main(["drivers"]) == 0
    out = capsys.readouterr().out
    for name in ("sqlite", "postgresql", "mongodb", "reference"):
        assert f"{name} 1." in out
    assert "URL schemes: sqlite://" in out
    assert "capabilities:" in out


def test_check_round_trips_a_row(capsys: pytest.CaptureFixture[str]) -> None:
    """`ommi check` on a reachable database prints timings for each step and OK."""
    assert main(["check", "reference://"]) == 0
    out = capsys.readouterr().out
    assert "insert" in out
    assert "drop scratch table" in out
    assert out.rstrip().endswith("OK")


def test_check_on_sqlite_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ommi check sqlite:///...` creates, uses and drops a scratch table in the file."""
    assert main(["check", f"sqlite:///{tmp_path / 'check.db'}"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")


def test_check_unreachable_server_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable server gives a clear message and a non-zero exit status."""
    status = main(["check", "postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=2", "--timeout", "5"])
    assert status != 0
    err = capsys.readouterr().err
    assert err.startswith("ommi check:")


def test_check_unknown_scheme_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown URL scheme names the installed drivers."""
    assert main(["check", "nosuch://x"]) == 2
    assert "DriverNotFound" in capsys.readouterr().err


def test_demo_runs_from_the_console_script() -> None:
    """`ommi demo` (the README's first command) runs the tour and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "ommi.cli", "demo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Ommi demo" in result.stdout
    assert "books still stored: 4" in result.stdout
    assert "DBStatusNoResultException" in result.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ommi:Zk4711%2Fx@127.0.0.1:{port}/db",
        "postgresql://ommi@127.0.0.1:{port}/db?sslpassword=Zk4711",
        "postgresql://ommi:Zk4711/x@127.0.0.1:{port}/db",
        "postgresql://ommi:%zzZk4711@127.0.0.1:{port}/db",
        "postgresql://ommi:Zk4711@[::1:{port}/db",
        "mongodb://127.0.0.1:{port}/db?serverSelectionTimeoutMS=200&authMechanismProperties=AWS_SESSION_TOKEN:Zk4711",
        "mongodb://127.0.0.1:{port}/db?serverSelectionTimeoutMS=200&tlsCertificateKeyFilePassword=Zk4711",
        "mongodb://ommi:Zk4711/x@127.0.0.1:{port}/db?serverSelectionTimeoutMS=200",
        "sqlite://ommi:Zk4711@/check.db",
        "ommi:Zk4711@127.0.0.1:{port}/db",
        "Zk4711",
    ],
)
def test_check_never_prints_a_secret_of_the_url(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever fails, `ommi check` says so without the URL's password or secret options."""
    status = main(["check", url.format(port=_closed_port()), "--timeout", "8"])
    # PyMongo's asyncio client leaks a socket when closed while still connecting to an
    # absent server: collect it here rather than as a ResourceWarning in a later test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    out, err = capsys.readouterr()
    assert status == 2
    assert err.startswith("ommi check:")
    assert "zk4711" not in (out + err).lower()


def test_check_names_the_scheme_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped scheme is named (it is not secret), with the installed drivers."""
    assert main(["check", "postgersql://u:pw@h/db"]) == 2
    err = capsys.readouterr().err
    assert "'postgersql'" in err
    assert "postgresql (postgresql/postgres://)" in err


URL_SAMPLES = ("sqlite:///app.db", "postgresql://user@host/db", "mongodb://host/db")


@pytest.mark.parametrize("text", ["garbage", "data/orders.db", "", "postgresql//host/db", "user:hostpw1@host:5432"])
def test_check_text_that_is_not_a_url_says_so(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a URL at all: `ommi check` says it is not a database URL and shows what one looks like.

    It gives no advice to install a driver (none would help), and never quotes
    the text, which may be a password pasted in the wrong place; the sample
    URLs come out whole even when the text shares words with them.
    """
    assert main(["check", text]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("ommi check: not a database URL: it does not start with a scheme and '://'")
    for sample in URL_SAMPLES:
        assert sample in err
    assert "install" not in err
    assert "DriverNotFound" not in err
    if text and text not in " ".join(URL_SAMPLES):
        assert text not in err
    assert "hostpw1" not in err


def test_check_unknown_scheme_of_a_well_formed_url_keeps_the_install_advice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "mysql://app:Zk4711@127.0.0.1/db"]) == 2
    err = capsys.readouterr().err
    assert "DriverNotFound: no Ommi driver for the URL scheme 'mysql': install a driver distribution" in err
    assert "not a database URL" not in err
    assert "Zk4711" not in err


def test_connect_refuses_text_that_is_not_a_url_without_quoting_it() -> None:
    import ommi
    from ommi.errors import ConfigurationError, DriverNotFound

    with pytest.raises(DriverNotFound) as caught:
        ommi.connect("hunter2-secret")
    assert isinstance(caught.value, ConfigurationError)
    message = str(caught.value)
    assert message.startswith("not a database URL")
    for sample in URL_SAMPLES:
        assert sample in message
    assert "hunter2" not in message


def test_check_sqlite_url_with_one_slash_shows_the_url_forms(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`ommi check sqlite:/app.db` refuses the URL (it named a file at the root) with the forms unscrubbed."""
    monkeypatch.chdir(tmp_path)
    assert main(["check", "sqlite:/ommi-check-one-slash.db"]) == 2
    err = capsys.readouterr().err
    assert "the sqlite URL has one slash after 'sqlite:'" in err
    assert "sqlite:///relative/path.db" in err
    assert "sqlite:////absolute/path.db" in err
    assert "***" not in err
