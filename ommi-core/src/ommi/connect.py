"""``ommi.connect(url)`` and ``ommi.drivers()``: choosing a driver by URL scheme."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ommi import plugins
from ommi.database import Ommi
from ommi.drivers.capabilities import Capabilities
from ommi.drivers.registry import DriverSpec
from ommi.drivers.urls import redact_url, url_scheme
from ommi.errors import DriverNotFound

__all__ = ["DriverInfo", "connect", "drivers", "spec_for_url"]

_KNOWN = {
    "sqlite": "ommi-sqlite",
    "postgresql": "ommi-postgresql",
    "postgres": "ommi-postgresql",
    "mongodb": "ommi-mongodb",
    "mongodb+srv": "ommi-mongodb",
    "reference": "ommi-testkit (the in-memory reference driver, for tests)",
}


NOT_A_URL = (
    "not a database URL: it does not start with a scheme and '://'. A database URL looks like "
    "sqlite:///app.db, postgresql://user@host/db or mongodb://host/db"
)
"""The message for a text that is not a URL at all; it never quotes the text (it may be a password)."""


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """An installed driver, as ``ommi drivers`` lists it."""

    name: str
    schemes: tuple[str, ...]
    distribution: str
    version: str
    description: str
    capabilities: Capabilities | None
    error: str | None = None


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def drivers() -> list[DriverInfo]:
    """Every installed driver with its version and declared capabilities."""
    infos = []
    for spec in plugins.driver_specs().values():
        capabilities, error = None, None
        try:
            capabilities = spec.load().capabilities
        except Exception as exc:  # noqa: BLE001 - reported, not raised, in a listing
            error = str(exc)
        infos.append(
            DriverInfo(
                spec.name,
                spec.schemes,
                spec.distribution,
                _version(spec.distribution),
                spec.description,
                capabilities,
                error,
            )
        )
    return infos


def spec_for_url(url: str) -> DriverSpec:
    """The registered driver serving ``url``'s scheme.

    Raises:
        DriverNotFound: no installed driver serves it; the message lists the
            installed drivers and the distribution to install. For a text
            that is not a URL at all (no ``scheme://``), it says so and shows
            what one looks like, without quoting the text.
    """
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    specs = plugins.driver_specs()
    for spec in specs.values():
        if scheme in spec.schemes:
            return spec
    installed = ", ".join(f"{s.name} ({'/'.join(s.schemes)}://)" for s in specs.values()) or "none"
    # The URL itself is never quoted: without a scheme, what precedes ":" may be
    # a user name or part of a password rather than a scheme.
    shown = url_scheme(url)
    if shown is None:
        raise DriverNotFound(NOT_A_URL)
    shown = shown.lower()
    hint = f"install {_KNOWN[shown]}" if shown in _KNOWN else "install a driver distribution that serves it"
    raise DriverNotFound(f"no Ommi driver for the URL scheme {shown!r}: {hint}. Installed drivers: {installed}")


def connect(url: str, /, *, allow_implicit_model_setup: bool = True, **settings: Any) -> Ommi:
    """An :class:`Ommi` database for ``url``, with the driver its scheme names.

    Nothing is opened until ``async with`` or the first operation; from then
    on the database stays open until ``await db.close()`` (or the end of the
    ``async with`` block). One left open gets a ``ResourceWarning`` naming
    its URL (without secrets) when collected or at exit; see :class:`Ommi`.

    Args:
        url: ``sqlite:///app.db``, ``sqlite://`` (memory), ``postgresql://...``, ``mongodb://...``.
        allow_implicit_model_setup: see :class:`Ommi`.
        settings: driver settings overriding those in the URL.
    """
    if not isinstance(url, str):
        raise DriverNotFound(f"connect() takes a URL string, not {type(url).__name__}")
    driver_cls = spec_for_url(url).load()
    db = Ommi(driver_cls.connect(url, **settings), allow_implicit_model_setup=allow_implicit_model_setup)
    db._shown = redact_url(url)
    return db
