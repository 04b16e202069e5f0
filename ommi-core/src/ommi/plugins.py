"""The plugin manager and the registries filled from it.

:func:`get_plugin_manager` is a cached factory: the first call loads core's own
plugin and every plugin installed under the ``ommi`` entry-point group, then
checks that each hook implementation matches a specification.
"""

from __future__ import annotations

import functools
import inspect
from types import CodeType, FrameType
from typing import Any

import pluggy

from ommi import _builtins, hookspecs
from ommi.drivers.registry import DriverSpec
from ommi.errors import ConfigurationError
from ommi.models.adapters import ModelAdapter
from ommi.models.types import Codec

__all__ = ["codecs", "driver_specs", "get_plugin_manager", "model_adapters", "reset"]


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(_builtins, name="ommi.builtins")
    manager.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    manager.check_pending()
    return manager


def _collect(hook_name: str, expected: type | tuple[type, ...], what: str) -> list[Any]:
    """Call ``hook_name`` through pluggy and return what its implementations registered, in call order.

    Calling through ``manager.hook`` (not each implementation by hand) keeps
    pluggy's ordering, wrappers (``@hookimpl(wrapper=True)``) and tracing. A
    registration of the wrong kind names the plugin that made it: ``register``
    finds the implementation among its callers' frames.
    """
    items: list[Any] = []
    caller = getattr(get_plugin_manager().hook, hook_name)
    plugins = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()}

    def register(item: Any) -> None:
        if not isinstance(item, expected):
            plugin = _registering_plugin(plugins)
            raise ConfigurationError(f"plugin {plugin!r} registered {item!r}, which is not a {what}")
        items.append(item)

    caller(register=register)
    return items


def _registering_plugin(plugins: dict[CodeType, str]) -> str:
    frame: FrameType | None = inspect.currentframe()
    while frame is not None:
        name = plugins.get(frame.f_code)
        if name is not None:
            return name
        frame = frame.f_back
    return "unknown"


@functools.cache
def driver_specs() -> dict[str, DriverSpec]:
    """Installed drivers by name."""
    specs: dict[str, DriverSpec] = {}
    for spec in _collect("ommi_register_drivers", DriverSpec, "DriverSpec"):
        specs.setdefault(spec.name, spec)
    return specs


@functools.cache
def model_adapters() -> tuple[ModelAdapter, ...]:
    """Model adapters, in the order they are asked."""
    return tuple(_collect("ommi_register_model_adapters", ModelAdapter, "model adapter"))


@functools.cache
def codecs() -> tuple[Codec, ...]:
    """Codecs, plugin ones before core's."""
    return tuple(_collect("ommi_register_codecs", Codec, "Codec"))


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object in this process (tests, applications) and refresh the registries."""
    get_plugin_manager().register(plugin, name=name)
    reset(keep_manager=True)


def reset(*, keep_manager: bool = False) -> None:
    """Forget cached registries (and the manager unless ``keep_manager``)."""
    driver_specs.cache_clear()
    model_adapters.cache_clear()
    codecs.cache_clear()
    if not keep_manager:
        get_plugin_manager.cache_clear()
