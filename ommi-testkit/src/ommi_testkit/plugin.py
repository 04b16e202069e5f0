"""Registers the in-memory reference driver (``reference://``) with Ommi."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ommi.drivers import DriverSpec
from ommi.hookspecs import hookimpl


@hookimpl
def ommi_register_drivers(register: Callable[[DriverSpec], Any]) -> None:
    register(
        DriverSpec(
            name="reference",
            schemes=("reference",),
            driver="ommi_testkit.reference:ReferenceDriver",
            distribution="ommi-testkit",
            description="in-memory reference driver that defines query semantics (testing only)",
        )
    )
