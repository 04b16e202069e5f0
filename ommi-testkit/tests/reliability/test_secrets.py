"""Secrets written in connection URLs never reach a message, a description, a log event or ``ommi check``.

Hypothesis draws a distinctive secret (chunks like ``Zk482913`` joined by
``/``, ``@``, ``:``, ``%``, ``?`` or ``#``) and puts it in every
credential-bearing position of every driver's URL: the password (escaped,
and unescaped as people paste it), the query options whose value is a secret
(``sslpassword``, ``password``, ``passfile``, ``authMechanismProperties``,
``tlsCertificateKeyFilePassword``...), a password keyword setting, and
garbage around it (bad percent-encoding, an unclosed IPv6 ``[``, a bare string
with no scheme). User names, hosts, ports and paths are not secret and may be
shown.

For each URL it checks, case-insensitively, that neither the secret, its
escaped form nor any of its chunks appears in: the exception of
``ommi.connect(url)`` and of ``Driver.connect(url)``, ``repr(db)``,
``db.driver.description``, ``repr(driver.settings)``, the error of a failed
``open()`` (the server address is a closed loopback port), any log record
(Ommi's events and the client libraries' own, at DEBUG), and the output of
``ommi check URL`` run in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import socket
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import ommi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ommi.cli import main as ommi_main
from ommi.connect import spec_for_url
from ommi.errors import OmmiError
from ommi_mongodb import MongoDBDriver
from ommi_postgresql import PostgreSQLDriver
from ommi_testkit.reliability import current_profile


@dataclass(frozen=True)
class Secret:
    text: str
    chunks: tuple[str, ...]

    @property
    def escaped(self) -> str:
        return quote(self.text, safe="")

    def forms(self) -> list[str]:
        """Every text whose presence in an output is a leak, lower-cased."""
        return [f.lower() for f in (self.text, self.escaped, quote_plus(self.text), *self.chunks)]

    def leaks(self, where: str, output: str) -> None:
        folded = output.lower()
        found = [form for form in self.forms() if form in folded]
        assert not found, f"the secret {self.text!r} leaks into {where} (as {found}): {output}"


@st.composite
def secrets(draw: st.DrawFn) -> Secret:
    chunks = draw(st.lists(st.integers(100_000, 999_999).map(lambda n: f"Zk{n}"), min_size=2, max_size=4, unique=True))
    separators = [draw(st.sampled_from("/@:%?#")) for _ in chunks[1:]]
    text = chunks[0] + "".join(sep + chunk for sep, chunk in zip(separators, chunks[1:], strict=True))
    if draw(st.booleans()):
        text = draw(st.sampled_from("/@:%?#")) + text
    return Secret(text, tuple(chunks))


def closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- where a secret can be written ---------------------------------------------

Build = Callable[[Secret, int], str]

MONGO_FAST = "serverSelectionTimeoutMS=300&connectTimeoutMS=300"

POSITIONS: dict[str, dict[str, Build]] = {
    "postgresql": {
        "password": lambda s, p: f"postgresql://ommi:{s.escaped}@127.0.0.1:{p}/db",
        "password, unescaped": lambda s, p: f"postgresql://ommi:{s.text}@127.0.0.1:{p}/db",
        "password in the query": lambda s, p: f"postgresql://ommi@127.0.0.1:{p}/db?password={s.escaped}",
        "sslpassword": lambda s, p: f"postgresql://ommi@127.0.0.1:{p}/db?sslmode=disable&sslpassword={s.escaped}",
        "sslpassword, unescaped": lambda s, p: f"postgresql://ommi@127.0.0.1:{p}/db?sslpassword={s.text}",
        "passfile": lambda s, p: f"postgresql://ommi@127.0.0.1:{p}/db?passfile={s.escaped}",
        "bad percent-encoding": lambda s, p: f"postgresql://ommi:%zz{s.escaped}@127.0.0.1:{p}/db",
        "unclosed IPv6 bracket": lambda s, p: f"postgresql://ommi:{s.escaped}@[::1:{p}/db",
        "password, IPv6 host": lambda s, p: f"postgres://ommi:{s.escaped}@[::1]:{p}/db",
    },
    "mongodb": {
        "password": lambda s, p: f"mongodb://ommi:{s.escaped}@127.0.0.1:{p}/db?{MONGO_FAST}",
        "password, unescaped": lambda s, p: f"mongodb://ommi:{s.text}@127.0.0.1:{p}/db?{MONGO_FAST}",
        "authMechanismProperties": lambda s, p: (
            f"mongodb://127.0.0.1:{p}/db?{MONGO_FAST}&authMechanismProperties=AWS_SESSION_TOKEN:{s.escaped}"
        ),
        "authMechanismProperties, unescaped": lambda s, p: (
            f"mongodb://127.0.0.1:{p}/db?authMechanismProperties=AWS_SESSION_TOKEN:{s.text}&{MONGO_FAST}"
        ),
        "tlsCertificateKeyFilePassword": lambda s, p: (
            f"mongodb://127.0.0.1:{p}/db?tlsCertificateKeyFilePassword={s.escaped}&{MONGO_FAST}"
        ),
        "bad percent-encoding": lambda s, p: f"mongodb://ommi:%zz{s.escaped}@127.0.0.1:{p}/db?{MONGO_FAST}",
        "unclosed IPv6 bracket": lambda s, p: f"mongodb://ommi:{s.escaped}@[::1:{p}/db?{MONGO_FAST}",
        "password, srv": lambda s, p: f"mongodb+srv://ommi:{s.escaped}@cluster.invalid/db?{MONGO_FAST}",
    },
    "sqlite": {
        "password in a host part": lambda s, p: f"sqlite://ommi:{s.escaped}@/secret.db",
        "password in a host part, unescaped": lambda s, p: f"sqlite://ommi:{s.text}@/secret.db",
        "password in the query": lambda s, p: f"sqlite:///secret.db?password={s.escaped}",
    },
    "no scheme": {
        "bare secret": lambda s, p: s.text,
        "user and password": lambda s, p: f"ommi:{s.text}@127.0.0.1:{p}/db",
        "libpq key=value": lambda s, p: f"host=127.0.0.1 port={p} password={s.text}",
    },
}

CASES = [(family, position) for family, builds in POSITIONS.items() for position in builds]


# -- what is looked at -----------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # includes the traceback of exc_info


@contextlib.contextmanager
def every_log_record() -> Iterator[_Collect]:
    """Every record of every stdlib logger at DEBUG (Ommi's events go there when structlog is not configured)."""
    root = logging.getLogger()
    handler = _Collect()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _driver_class(url: str) -> type[Any] | None:
    try:
        return spec_for_url(url).load()
    except OmmiError:
        return None


async def _outputs_of_api(url: str, keywords: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) of everything the API shows about ``url``."""
    outputs: list[tuple[str, str]] = []
    builders: list[tuple[str, Callable[[], Any]]] = [("ommi.connect", lambda: ommi.connect(url, **keywords))]
    driver_cls = _driver_class(url)
    # A text without a scheme goes to the server drivers too (to SQLite it is a file path, not a URL).
    for cls in [driver_cls] if driver_cls is not None else [PostgreSQLDriver, MongoDBDriver]:
        builders.append((f"{cls.__name__}.connect", lambda cls=cls: ommi.Ommi(cls.connect(url, **keywords))))
    for name, build in builders:
        try:
            db = build()
        except OmmiError as exc:
            outputs.append((f"the error of {name}", f"{type(exc).__name__}: {exc}"))
            continue
        outputs.append((f"repr(db) after {name}", repr(db)))
        outputs.append((f"description after {name}", db.driver.description))
        outputs.append((f"repr(driver) after {name}", repr(db.driver)))
        outputs.append((f"repr(driver.settings) after {name}", repr(getattr(db.driver, "settings", ""))))
        try:
            await asyncio.wait_for(db.open(), 20)
        except OmmiError as exc:
            outputs.append((f"the error of open() after {name}", f"{type(exc).__name__}: {exc}"))
        else:  # pragma: no cover - the port is closed, so this is a failure of the test itself
            raise AssertionError(f"{url} opened although nothing listens there")
        finally:
            await db.close()
            if isinstance(db.driver, MongoDBDriver):
                await _collect_leaked_sockets()
    return outputs


@pytest.fixture(autouse=True)
def _only_this_tests_garbage() -> Iterator[None]:
    """Freeze what the worker holds already, so that each full collection below scans this test's objects only.

    Every example collects garbage four times (PyMongo's leaked sockets); in a
    worker that ran a thousand tests before, each collection walked the whole
    heap and an example took 5 s instead of half a second.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _collect_leaked_sockets() -> None:
    # PyMongo's asyncio client leaks a socket when it is closed while its monitor still connects to
    # an absent server (see ommi-mongodb's test_driver.py): collect it here, rather than as a
    # ResourceWarning failing whichever test runs next. Only MongoDB clients need it.
    for _ in range(3):
        await asyncio.sleep(0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def _output_of_check(url: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = ommi_main(["check", url, "--timeout", "8"])
    if _driver_class(url) in (MongoDBDriver, None):
        # The socket PyMongo leaks (see _collect_leaked_sockets), if `ommi check` opened a client. A full
        # collection costs a good part of a second in a loaded test process: only where it can matter.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    assert status != 0, f"ommi check {url} succeeded against a closed port: {out.getvalue()}"
    return out.getvalue() + err.getvalue()


EXAMPLES = 40 if current_profile().name == "stress" else 5
"""Secrets drawn per position: each example opens drivers and runs ``ommi check`` (about a second)."""


@pytest.mark.parametrize(("family", "position"), CASES, ids=[f"{f}: {p}" for f, p in CASES])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=secrets())
def test_a_secret_in_a_url_is_never_shown(family: str, position: str, secret: Secret) -> None:
    """The secret is absent from errors, descriptions, reprs, failed open(), logs and `ommi check`."""
    url = POSITIONS[family][position](secret, closed_port())
    with every_log_record() as logs:
        outputs = asyncio.run(_outputs_of_api(url, {}))
        outputs.append(("ommi check", _output_of_check(url)))
    outputs.append(("log records", "\n".join(logs.lines)))
    for where, text in outputs:
        secret.leaks(where, text)


@settings(max_examples=EXAMPLES, deadline=None)
@given(secret=secrets())
def test_a_password_setting_is_never_shown(secret: Secret) -> None:
    """A password given as a keyword setting (not in the URL) is hidden the same way."""
    port = closed_port()
    with every_log_record() as logs:
        outputs = asyncio.run(_outputs_of_api(f"postgresql://ommi@127.0.0.1:{port}/db", {"password": secret.text}))
        outputs += asyncio.run(
            _outputs_of_api(f"mongodb://127.0.0.1:{port}/db?{MONGO_FAST}", {"password": secret.text, "username": "u"})
        )
    outputs.append(("log records", "\n".join(logs.lines)))
    for where, text in outputs:
        secret.leaks(where, text)
