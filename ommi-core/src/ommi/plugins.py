"""The plugin manager and the registries filled from it.

:func:`get_plugin_manager` is a cached factory: the first call loads core's own
plugin and every plugin installed under the ``ommi`` entry-point group, then
checks that each hook implementation matches a specification.
"""

from __future__ import annotations

import functools
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
    items: list[Any] = []
    manager = get_plugin_manager()
    for impl in reversed(getattr(manager.hook, hook_name).get_hookimpls()):
        # pluggy calls hooks LIFO; we call each implementation ourselves so a
        # bad registration names the plugin that made it.
        def register(item: Any, _plugin: str = impl.plugin_name) -> None:
            if not isinstance(item, expected):
                raise ConfigurationError(f"plugin {_plugin!r} registered {item!r}, which is not a {what}")
            items.append(item)

        impl.function(register=register)
    return items


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
