"""Plugins are called through pluggy's hook: wrappers run, bad registrations name their plugin."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
from ommi import plugins
from ommi.errors import ConfigurationError
from ommi.hookspecs import hookimpl
from ommi.models.types import Codec, StorageType


class _Marker:
    pass


MARKER_CODEC = Codec(_Marker, StorageType.TEXT, lambda v: "m", lambda v: _Marker())


class WrapperPlugin:
    """A hook wrapper (pluggy's ``wrapper=True``): it registers around the other implementations."""

    seen: list[str] = []

    @hookimpl(wrapper=True)
    def ommi_register_codecs(self, register: Callable[[Codec], Any]) -> Generator[None, Any, Any]:
        self.seen.append("before")
        register(MARKER_CODEC)
        result = yield
        self.seen.append("after")
        return result


class BadPlugin:
    @hookimpl
    def ommi_register_codecs(self, register: Callable[[Any], Any]) -> None:
        register("not a codec")


@pytest.fixture
def clean_plugins() -> Any:
    yield
    plugins.reset()


def test_a_wrapper_implementation_runs(clean_plugins: Any) -> None:
    plugins.register_plugin(WrapperPlugin(), name="wrapper-plugin")
    codecs = plugins.codecs()
    assert MARKER_CODEC in codecs
    assert WrapperPlugin.seen == ["before", "after"]


def test_a_bad_registration_names_its_plugin(clean_plugins: Any) -> None:
    plugins.register_plugin(BadPlugin(), name="bad-plugin")
    with pytest.raises(ConfigurationError, match="plugin 'bad-plugin' registered 'not a codec', which is not a Codec"):
        plugins.codecs()


def test_hook_calls_are_traced(clean_plugins: Any) -> None:
    calls: list[str] = []
    manager = plugins.get_plugin_manager()
    undo = manager.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append(name), lambda *a: None)
    try:
        plugins.reset(keep_manager=True)
        plugins.codecs()
    finally:
        undo()
    assert "ommi_register_codecs" in calls
