"""The plugin system: hook specs, registries, driver lookup by URL."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import ommi
import pytest
from ommi import plugins
from ommi.drivers import DriverSpec
from ommi.errors import ConfigurationError, DriverNotFound
from ommi.hookspecs import hookimpl


def test_plugin_manager_is_cached_and_loads_entry_points() -> None:
    """The manager is created once and knows the installed driver plugins."""
    assert plugins.get_plugin_manager() is plugins.get_plugin_manager()
    assert "reference" in plugins.driver_specs()


def test_unknown_scheme_lists_installed_drivers_and_distribution() -> None:
    """An unknown scheme names the installed drivers; a known-but-missing one names its distribution."""
    with pytest.raises(DriverNotFound) as excinfo:
        ommi.connect("nosuchdb://host/db")
    message = str(excinfo.value)
    assert "'nosuchdb'" in message
    assert "reference (reference://)" in message


def test_missing_first_party_driver_names_its_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for mongodb:// without ommi-mongodb installed says to install ommi-mongodb."""
    specs = {k: v for k, v in plugins.driver_specs().items() if "mongodb" not in v.schemes}
    monkeypatch.setattr(plugins, "driver_specs", lambda: specs)
    with pytest.raises(DriverNotFound, match="install ommi-mongodb"):
        ommi.connect("mongodb://127.0.0.1/db")


def test_missing_reference_driver_names_ommi_testkit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``reference://`` without ommi-testkit installed says which distribution ships it."""
    specs = {k: v for k, v in plugins.driver_specs().items() if "reference" not in v.schemes}
    monkeypatch.setattr(plugins, "driver_specs", lambda: specs)
    with pytest.raises(DriverNotFound, match="install ommi-testkit"):
        ommi.connect("reference://")


def test_url_without_scheme_is_rejected() -> None:
    """A bare path is not a URL; the error shows what a URL looks like."""
    with pytest.raises(DriverNotFound, match=r"sqlite:///app\.db"):
        ommi.connect("app.db")


def test_connect_picks_driver_by_scheme() -> None:
    """connect() builds an Ommi around the driver registered for the scheme."""
    db = ommi.connect("reference://")
    assert isinstance(db, ommi.Ommi)
    assert db.driver.name == "reference"


def test_drivers_lists_versions_and_capabilities() -> None:
    """ommi.drivers() reports each driver's distribution version and capabilities."""
    infos = {info.name: info for info in ommi.drivers()}
    reference = infos["reference"]
    assert reference.version != "unknown"
    assert reference.capabilities is not None
    assert reference.capabilities.transactions is True


class _ExtraPlugin:
    def __init__(self, item: Any) -> None:
        self.item = item

    @hookimpl
    def ommi_register_drivers(self, register: Callable[[Any], Any]) -> None:
        register(self.item)


def test_bad_registration_names_the_plugin() -> None:
    """A plugin registering something that is not a DriverSpec is reported by name."""
    manager = plugins.get_plugin_manager()
    plugin = _ExtraPlugin("not a spec")
    manager.register(plugin, name="broken-plugin")
    try:
        plugins.reset(keep_manager=True)
        with pytest.raises(ConfigurationError, match="broken-plugin"):
            plugins.driver_specs()
    finally:
        manager.unregister(plugin)
        plugins.reset(keep_manager=True)


def test_registered_driver_that_cannot_import_is_a_clear_error() -> None:
    """A spec pointing at a missing module fails with the distribution to reinstall."""
    spec = DriverSpec("ghost", ("ghost",), "ommi_ghost_driver_missing:Driver", "ommi-ghost")
    with pytest.raises(ConfigurationError, match="reinstall ommi-ghost"):
        spec.load()


def test_plugin_modules_do_not_import_database_clients() -> None:
    """Importing a driver's plugin module must not import its database client."""
    import importlib

    for module_name, client in (
        ("ommi_sqlite.plugin", "aiosqlite"),
        ("ommi_postgresql.plugin", "psycopg"),
        ("ommi_mongodb.plugin", "pymongo"),
    ):
        before = client in sys.modules
        importlib.import_module(module_name)
        assert before or client not in sys.modules, f"{module_name} imported {client}"
