"""Connection URLs as messages, descriptions and logs may show them: without their secrets.

Every driver and the ``ommi`` command use these helpers, so a secret written in
a URL is hidden the same way everywhere:

* :func:`redact_url` replaces the password of the user-info part and the value
  of every query option whose name suggests a secret (:func:`is_secret_option`)
  by ``***``. User names, hosts, ports, paths and other options stay visible.
  When the URL is too malformed to tell where its password ends (an ``@``
  after the host part, as an unescaped ``/``, ``?``, ``#`` or ``@`` in a
  password gives), everything after the scheme is hidden.
* :func:`url_problem` says what makes a URL unusable and where (``"the URL's
  password"``) without quoting any of it, for the messages of drivers that
  refuse the URL.
* :func:`scrub_secrets` removes a URL's secrets from a text that did not come
  from Ommi (a client library's error message) before Ommi repeats it.

None of them raises, whatever text it is given.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

__all__ = ["REDACTED", "is_secret_option", "redact_url", "scrub_secrets", "url_problem", "url_scheme"]

REDACTED = "***"
"""What a hidden secret is replaced with."""

_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "credential", "authmechanismproperties")
"""Parts of option names whose values are secret, compared case-insensitively without ``_`` and ``-``.

They cover ``password``, ``sslpassword``, ``passfile``, ``tlsCertificateKeyFilePassword``,
``sslkey``, ``api_key``, ``auth_token``, ``client_secret``, ``credentials`` and MongoDB's
``authMechanismProperties`` (which carries ``AWS_SESSION_TOKEN:...``).
"""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_QUERY_SEPARATORS = re.compile(r"[&;]")
_FRAGMENT_SEPARATORS = re.compile(r"[/@:%?#,;&=]")
_MIN_FRAGMENT = 4


def is_secret_option(name: str) -> bool:
    """Whether the value of the option ``name`` (of a URL query or a settings mapping) is secret."""
    folded = unquote_plus(name).lower().replace("_", "").replace("-", "")
    return any(word in folded for word in _SECRET_WORDS)


def url_scheme(url: str) -> str | None:
    """The scheme of ``url`` when it starts with one followed by ``//`` (``"postgresql"``), else ``None``.

    A text without ``scheme://`` gets ``None``: what precedes its first ``:``
    may be a user name or a secret rather than a scheme.
    """
    if not isinstance(url, str):
        return None
    match = _SCHEME.match(url)
    if match is None or not url.startswith("://", match.end()):
        return None
    return match.group()


class _Parts:
    """A URL cut where RFC 3986 cuts it, with what makes its user-info ambiguous."""

    __slots__ = ("authority", "hierarchical", "misplaced_at", "path", "query", "scheme", "stray_at")

    def __init__(self, url: str) -> None:
        match = _SCHEME.match(url)
        if match is None or not url.startswith(":", match.end()):
            raise ValueError("no scheme")
        self.scheme = match.group()
        rest = url[match.end() + 1 :]
        self.hierarchical = rest.startswith("//")
        self.authority = ""
        self.misplaced_at = False
        if self.hierarchical:
            rest = rest[2:]
            end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
            self.authority, rest = rest[:end], rest[end:]
        path, mark, query = rest.partition("?")
        self.path = path
        self.query = query if mark else None
        if self.hierarchical:
            # An "@" in the path, or after a "?" or "#" that comes before any "/": what
            # an unescaped "/", "?", "#" or "@" in a password leaves. (libpq reads the
            # user-info up to the first "@" before any "/", past "?" and "#".)
            self.misplaced_at = "@" in path or (rest[:1] in ("?", "#") and "@" in rest)
        # Any "@" after the host part (legitimate in a query value, but also what an
        # unescaped "/", "?", "#" or "@" in a password leaves): parsers may disagree
        # on where the password ends.
        self.stray_at = "@" in rest

    @property
    def userinfo(self) -> tuple[str, str | None] | None:
        """(user, password or None) of the authority, or None without user-info."""
        userinfo, at, _hosts = self.authority.rpartition("@")
        if not at:
            return None
        user, colon, password = userinfo.partition(":")
        return user, (password if colon else None)

    @property
    def hosts(self) -> str:
        return self.authority.rpartition("@")[2]


def _redact_option(option: str) -> str:
    name, eq, _value = option.partition("=")
    if not eq:
        # Not an option: perhaps the tail of a value that holds an unescaped "&" or ";".
        return option and REDACTED
    return f"{name}={REDACTED}" if is_secret_option(name) else option


def _redact_query(query: str) -> str:
    items = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        if eq and is_secret_option(name):
            items.append(f"{name}={REDACTED}")
        else:
            # MongoDB also separates options with ";".
            items.append(";".join(_redact_option(part) for part in item.split(";")))
    return "&".join(items)


def redact_url(url: str) -> str:
    """``url`` without its secrets, safe for messages and logs.

    ``postgresql://app:pw@db:5432/shop?sslpassword=x&sslmode=require`` becomes
    ``postgresql://app:***@db:5432/shop?sslpassword=***&sslmode=require``. A
    text that is not a ``scheme://`` URL (nor a ``file:`` URI) becomes
    ``"<not a URL>"``; a URL whose password cannot be told apart (an ``@``
    after its host part) becomes ``scheme://***``.
    """
    if not isinstance(url, str):
        return "<not a URL>"
    try:
        parts = _Parts(url)
    except ValueError:
        return "<not a URL>"
    if not parts.hierarchical and parts.scheme.lower() != "file":
        return "<not a URL>"  # "user:password@host", or a secret holding ":"
    if parts.stray_at:
        return f"{parts.scheme}{'://' if parts.hierarchical else ':'}{REDACTED}"
    text = f"{parts.scheme}:"
    if parts.hierarchical:
        authority = parts.authority
        userinfo = parts.userinfo
        if userinfo is not None:
            user, password = userinfo
            authority = f"{user}{':' + REDACTED if password is not None else ''}@{parts.hosts}"
        text += f"//{authority}"
    text += parts.path
    if parts.query is not None:
        text += "?" + _redact_query(parts.query)
    return text


def _secret_values(url: str) -> list[str]:
    """Every text of ``url`` that is secret, raw and percent-decoded, with its longer fragments."""
    try:
        parts = _Parts(url)
    except ValueError:
        parts = None
    if parts is None or not (parts.hierarchical or parts.scheme.lower() == "file"):
        # Not a URL: all of it may be secret ("user:password@host" without a scheme).
        return sorted(
            (v for v in {url, *_FRAGMENT_SEPARATORS.split(url)} if len(v) >= _MIN_FRAGMENT), key=len, reverse=True
        )
    values: list[str] = []
    if parts.hierarchical:
        rest = url[len(parts.scheme) + 3 :]
        userinfo, at, _ = (rest if parts.stray_at else parts.authority).rpartition("@")
        if at:
            values.append(userinfo.partition(":")[2] or (userinfo if parts.stray_at else ""))
    if parts.query is not None:
        for item in _QUERY_SEPARATORS.split(parts.query):
            name, eq, value = item.partition("=")
            if eq and is_secret_option(name):
                values.append(value)
    found: set[str] = set()
    for value in values:
        for form in (value, unquote(value), unquote_plus(value)):
            found.add(form)
            found.update(_FRAGMENT_SEPARATORS.split(form))
    return sorted((v for v in found if len(v) >= _MIN_FRAGMENT), key=len, reverse=True)


def scrub_secrets(text: str, url: str) -> str:
    """``text`` with every secret of ``url`` (and every fragment of at least 4 characters of one) replaced by ``***``.

    For messages of client libraries that may quote what they were given.
    """
    for value in _secret_values(url):
        text = text.replace(value, REDACTED)
    return text


def _percent_problem(text: str) -> bool:
    return _BAD_PERCENT.search(text) is not None


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable, and in which part, without quoting any of it; ``None`` if nothing does.

    It checks what the drivers' URL parsers agree on: a ``scheme://``, an
    ``@`` only inside the host part (a password must percent-encode ``/``,
    ``?``, ``#`` and ``@``), ``%`` followed by two hex digits, closed
    ``[...]`` around IPv6 addresses and numeric ports.
    """
    if not isinstance(url, str):
        return "it is not a string"
    if url_scheme(url) is None:
        return "it does not start with a scheme and '://' (like postgresql://host/db)"
    parts = _Parts(url)
    escape = "percent-encode it (urllib.parse.quote(password, safe=''))"
    if parts.misplaced_at:
        return (
            "there is an '@' after the URL's host part: the user name or password holds an unescaped "
            f"'/', '?', '#' or '@'; {escape}"
        )
    if parts.authority.count("@") > 1:
        return f"the URL's user name or password holds an unescaped '@'; {escape}"
    userinfo = parts.userinfo
    if userinfo is not None:
        user, password = userinfo
        if _percent_problem(user):
            return "the URL's user name has a '%' not followed by two hex digits; write '%' as %25"
        if password is not None and _percent_problem(password):
            return f"the URL's password has a '%' not followed by two hex digits; {escape}"
    for host in parts.hosts.split(","):
        if host.startswith("["):
            close = host.find("]")
            if close < 0:
                return "an IPv6 address in the URL's host part has no closing ']'"
            after = host[close + 1 :]
            if after and not (after.startswith(":") and after[1:].isdigit()):
                return "the URL's host part has text after an IPv6 address's ']' that is not ':port'"
            continue
        if "[" in host or "]" in host:
            return "the URL's host part has a '[' or ']' outside an IPv6 address"
        if _percent_problem(host):
            return "the URL's host part has a '%' not followed by two hex digits"
        _, colon, port = host.rpartition(":")
        if colon and port and not port.isdigit():
            return f"a port in the URL's host part is not a number (or a password holds an unescaped ':'; {escape})"
    if _percent_problem(parts.path):
        return "the URL's path has a '%' not followed by two hex digits"
    if parts.query is not None and _percent_problem(parts.query):
        # Option names are not quoted: with an unescaped "&" in a value, a name may be part of a secret.
        return "an option in the URL's query string has a '%' not followed by two hex digits"
    return None
