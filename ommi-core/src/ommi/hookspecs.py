"""Hook specifications of Ommi's plugin system (pluggy project ``ommi``).

Plugins are modules or objects with functions decorated by :data:`hookimpl`.
Installed distributions expose them through the ``ommi`` entry-point group::

    [project.entry-points.ommi]
    sqlite = "ommi_sqlite.plugin"

Every hook is synchronous and receives a ``register`` callback: the plugin calls
it once per thing it contributes, and core validates each call so a mistake is
reported against the plugin that made it. A plugin module must stay cheap to
import: it must not import its database client at import time (drivers are
loaded only when a URL asks for them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ommi.drivers.registry import DriverSpec
    from ommi.models.adapters import ModelAdapter
    from ommi.models.types import Codec

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "ommi"
ENTRY_POINT_GROUP = "ommi"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def ommi_register_drivers(register: Callable[[DriverSpec], Any]) -> None:
    """Register database drivers.

    Called once, the first time Ommi needs the list of drivers (``ommi.connect``,
    ``ommi.drivers()``, the ``ommi`` command). Call ``register`` with one
    :class:`ommi.drivers.DriverSpec` per driver; the spec names the URL schemes
    it serves and where to import the driver class from, so that the client
    library is imported only when the driver is used.
    """


@hookspec
def ommi_register_model_adapters(register: Callable[[ModelAdapter], Any]) -> None:
    """Register support for a model library (dataclasses, attrs, pydantic...).

    Called once, before the first model is decorated with ``@ommi_model``. Call
    ``register`` with an object following :class:`ommi.models.ModelAdapter`.
    Adapters are asked in registration order; the first whose ``handles(cls)``
    is true maps the class. Core's own adapters are registered last, so a
    plugin may take over a library core supports.
    """


@hookspec
def ommi_register_codecs(register: Callable[[Codec], Any]) -> None:
    """Register codecs that store further Python types.

    Called once, before the first field type is resolved. Call ``register``
    with an :class:`ommi.models.Codec` mapping a Python type onto one of the
    storage types every driver supports. Codecs registered by plugins win over
    core's for the same type.
    """
