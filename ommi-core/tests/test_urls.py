"""``ommi.drivers.urls``: the one place URLs are made safe to show."""

from __future__ import annotations

import pytest
from ommi.drivers.urls import is_secret_option, redact_url, scrub_secrets, url_problem, url_scheme


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:pw1234@db:5432/shop?sslmode=require", "postgresql://app:***@db:5432/shop?sslmode=require"),
        ("postgresql://app@db/shop", "postgresql://app@db/shop"),
        ("postgresql://:pw1234@db/shop", "postgresql://:***@db/shop"),
        ("postgresql://u:pw1234@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("postgresql://u:pw1234@[::1/db", "postgresql://u:***@[::1/db"),
        ("postgresql://u:pw%zz1234@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:ab@cd1234@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?sslpassword=pw1234&passfile=%2Fp%2Fpgpass",
            "postgresql://u@h/db?sslpassword=***&passfile=***",
        ),
        (
            "mongodb://h1:1,h2:2/app?authMechanismProperties=AWS_SESSION_TOKEN:tok1234&replicaSet=rs",
            "mongodb://h1:1,h2:2/app?authMechanismProperties=***&replicaSet=rs",
        ),
        (
            "mongodb://h/app?appname=x;tlsCertificateKeyFilePassword=pw1234",
            "mongodb://h/app?appname=x;tlsCertificateKeyFilePassword=***",
        ),
        ("mongodb://h/app?Client_Secret=pw1234", "mongodb://h/app?Client_Secret=***"),
        # An unescaped "/", "?", "#" or "@" in the password: no telling where it ends.
        ("mongodb://u:pa/ss1234@h/app", "mongodb://***"),
        ("postgresql://u:pa?ss1234@h/db", "postgresql://***"),
        ("postgresql://u:pa#ss1234@h/db", "postgresql://***"),
        # An unescaped "&" or ";" in a secret value: the tail is not shown either.
        ("postgresql://u@h/db?sslpassword=ab&cd1234", "postgresql://u@h/db?sslpassword=***&***"),
        ("file:app.db?mode=ro&key=pw1234", "file:app.db?mode=ro&key=***"),
        # Not URLs: "user:password@host" without a scheme, a bare secret, key=value strings.
        ("u:pw1234@h/db", "<not a URL>"),
        ("pw1234", "<not a URL>"),
        ("host=h password=pw1234", "<not a URL>"),
        ("", "<not a URL>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """Passwords and secret options become ``***``; users, hosts, ports, paths and other options stay."""
    assert redact_url(url) == shown
    assert "1234" not in shown


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "PASSWORD",
        "sslpassword",
        "passfile",
        "tlsCertificateKeyFilePassword",
        "authMechanismProperties",
        "sslkey",
        "api_key",
        "auth-token",
        "client_secret",
        "credentials",
        "pass%77ord",
    ],
)
def test_secret_option_names(name: str) -> None:
    """Names suggesting a secret are recognised case-insensitively, also percent-encoded."""
    assert is_secret_option(name)


@pytest.mark.parametrize("name", ["sslmode", "authSource", "authMechanism", "appname", "replicaSet", "schema"])
def test_plain_option_names(name: str) -> None:
    """Ordinary options stay visible."""
    assert not is_secret_option(name)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://u:pw%zz1234@h/db", ["password", "'%'"]),
        ("postgresql://u%zz:pw@h/db", ["user name", "'%'"]),
        ("postgresql://u:pw1234@[::1/db", ["IPv6", "']'"]),
        ("postgresql://u:pw1234@[::1]x/db", ["IPv6", "port"]),
        ("mongodb://u:pa/ss1234@h/app", ["'@' after the URL's host part", "percent-encode"]),
        ("postgresql://u:pa?ss1234@h/app", ["'@' after the URL's host part"]),
        ("postgresql://u:ab@cd1234@h/db", ["unescaped '@'"]),
        ("mongodb://u:ab@cd?ef/gh1234@h/db", ["'@' after the URL's host part"]),
        ("postgresql://h?application_name=me@x1234", ["'@' after the URL's host part"]),
        ("postgresql://u:pw1234@h:port/db", ["port", "not a number"]),
        ("postgresql://h/d%zzb", ["path"]),
        ("postgresql://h/db?sslpassword=%zz1234", ["query string"]),
        ("pw1234", ["scheme"]),
        ("u:pw1234@h/db", ["scheme"]),
    ],
)
def test_url_problem_says_what_and_where_without_quoting(url: str, words: list[str]) -> None:
    """The problem names the part of the URL, never its text."""
    problem = url_problem(url)
    assert problem is not None
    for word in words:
        assert word in problem
    assert "1234" not in problem
    assert "zz" not in problem


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@h:5432/db?sslmode=require",
        "postgresql://h1:1,h2:2/db",
        "postgresql:///db",
        "mongodb://[::1]:27017/app",
        "mongodb://%2Ftmp%2Fmongodb-27017.sock/app",
        "postgresql://h/db?application_name=me@home",
    ],
)
def test_usable_urls_have_no_problem(url: str) -> None:
    assert url_problem(url) is None


def test_scrub_secrets_removes_every_form_of_the_secrets() -> None:
    """A client library's message quoting the password (raw, decoded or in pieces) loses it."""
    url = "mongodb://u:Zk1234%2FQw5678@h/app?authMechanismProperties=AWS_SESSION_TOKEN:Tok9999"
    text = "bad Zk1234%2FQw5678 or Zk1234/Qw5678 or Qw5678 and AWS_SESSION_TOKEN:Tok9999 on h"
    scrubbed = scrub_secrets(text, url)
    for secret in ("Zk1234", "Qw5678", "Tok9999"):
        assert secret not in scrubbed
    assert scrubbed.endswith("on h")


def test_url_scheme_only_before_slashes() -> None:
    """What precedes ':' counts as a scheme only when '://' follows (else it may be a user or a secret)."""
    assert url_scheme("postgresql://h/db") == "postgresql"
    assert url_scheme("user:secret@h/db") is None
    assert url_scheme("1x://h") is None


def test_scrub_secrets_of_a_text_that_is_not_a_url() -> None:
    """Without a scheme, the whole text and its pieces count as secret."""
    assert "Zk5555" not in scrub_secrets("cannot use u:Zk5555@h", "u:Zk5555@h/db")
