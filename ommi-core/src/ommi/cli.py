"""The ``ommi`` command: ``ommi demo``, ``ommi drivers``, ``ommi check URL``, ``ommi migrate``, ``ommi inspect``."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TextIO

import ommi
from ommi import plugins
from ommi.connect import spec_for_url
from ommi.drivers.urls import scrub_secrets, url_scheme
from ommi.errors import DriverNotFound, OmmiError
from ommi.migrations import _cli as migrate_cli
from ommi.migrations import _inspect_cli as inspect_cli
from ommi.models import ModelCollection, ommi_model

__all__ = ["main"]


def _print_drivers(out: TextIO) -> int:
    infos = ommi.drivers()
    if not infos:
        print("No Ommi drivers are installed. Install one, e.g.: pip install ommi-sqlite", file=out)
        return 1
    for info in infos:
        print(f"{info.name} {info.version}  ({info.distribution})", file=out)
        print(f"  URL schemes: {', '.join(s + '://' for s in info.schemes)}", file=out)
        if info.description:
            print(f"  {info.description}", file=out)
        if info.capabilities is not None:
            present = [n for n, v in info.capabilities.as_dict().items() if v]
            absent = info.capabilities.absent()
            print(f"  capabilities: {', '.join(present)}", file=out)
            if absent:
                print(f"  absent: {', '.join(absent)}", file=out)
        if info.error:
            print(f"  cannot load: {info.error}", file=out)
    return 0


async def _check(url: str, timeout: float, out: TextIO) -> int:
    scratch = ModelCollection("ommi-check")
    suffix = secrets.token_hex(4)

    @ommi_model(collection=scratch, name=f"ommi_check_{suffix}")
    @dataclass
    class CheckRow:
        label: str
        id: int | None = None

    timings: list[tuple[str, float]] = []

    async def step(name: str, action: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        result = await asyncio.wait_for(action(), timeout)
        timings.append((name, (time.perf_counter() - started) * 1000))
        return result

    db = ommi.connect(url, allow_implicit_model_setup=False)
    # scrub_secrets: a third-party driver's description may quote the URL as given.
    print(f"Checking {scrub_secrets(db.driver.description, url)} with the {db.driver.name} driver", file=out)
    try:
        await step("connect", db.open)
        await step("create scratch table", lambda: db.use_models(scratch))
        try:
            row = await step("insert", lambda: db.add(CheckRow("ommi check")).or_raise())
            back = await step("select", lambda: db.find(CheckRow.id == row.id).one.or_raise())
            if back != row:
                print(f"FAILED: wrote {row!r} but read back {back!r}", file=out)
                return 1
        finally:
            await step("drop scratch table", lambda: db.remove_models(scratch))
    finally:
        await db.close()
    for name, ms in timings:
        print(f"  {name:<20} {ms:8.1f} ms", file=out)
    print("OK", file=out)
    return 0


def _versions() -> str:
    """``ommi-core 1.0.0`` and the installed driver distributions, without importing any database client."""

    def version_of(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "(not installed as a distribution)"

    lines = [f"ommi-core {version_of('ommi-core')}"]
    for name, spec in sorted(plugins.driver_specs().items()):
        lines.append(f"{spec.distribution} {version_of(spec.distribution)}  (driver {name})")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(_versions())
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ommi`` console script."""
    parser = argparse.ArgumentParser(prog="ommi", description="Ommi, the async object mapper: tools.")
    parser.add_argument(
        "--version", action=_VersionAction, nargs=0, help="show the versions of ommi-core and the installed drivers"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="a short tour of the API on an in-memory SQLite database")
    commands.add_parser("drivers", help="list installed drivers, their versions and capabilities")
    check = commands.add_parser("check", help="connect to URL and round-trip a row in a scratch table")
    check.add_argument("url", help="database URL, e.g. sqlite:///app.db or postgresql://user@host/db")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per step (default 10)")
    migrate_cli.add_arguments(commands)
    inspect_cli.add_arguments(commands)
    args = parser.parse_args(argv)
    out = sys.stdout
    url = getattr(args, "url", "")
    secrets_of = url

    def shown(exc: BaseException) -> str:
        # Drivers never quote a URL's secrets; a third-party driver or client library might.
        return scrub_secrets(str(exc), secrets_of) if secrets_of else str(exc)

    try:
        if args.command == "drivers":
            return _print_drivers(out)
        if args.command == "demo":
            from ommi._demo import demo

            return asyncio.run(demo(out))
        if args.command == "migrate":
            return migrate_cli.main(args)
        if args.command == "inspect":
            return inspect_cli.main(args)
        try:
            spec_for_url(url)
        except DriverNotFound as exc:
            # Ommi's own message, which quotes the scheme at most (never the rest of the
            # text): shown whole, since scrubbing would garble its sample URLs. A text
            # that is not a URL is not a driver missing either.
            kind = "" if url_scheme(url) is None else f"{type(exc).__name__}: "
            print(f"ommi check: {kind}{exc}", file=sys.stderr)
            return 2
        if url_scheme(url) is None:
            # "sqlite:/app.db": not a scheme:// URL, so every word of it counts as a possible
            # secret, but the scheme is an installed driver's: not one, and the driver's
            # message about the URL names it.
            secrets_of = url.partition(":")[2]
        try:
            return asyncio.run(_check(url, args.timeout, out))
        except (OmmiError, TimeoutError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported in one line, never with the URL's secrets
            print(f"ommi check: unexpected {type(exc).__name__}: {shown(exc)}", file=sys.stderr)
            return 2
    except OmmiError as exc:
        print(f"ommi {args.command}: {type(exc).__name__}: {shown(exc)}", file=sys.stderr)
        return 2
    except TimeoutError:
        print(f"ommi {args.command}: timed out after {getattr(args, 'timeout', '?')} s", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
