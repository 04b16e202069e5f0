"""Driver registration: what a plugin hands to ``register`` in ``ommi_register_drivers``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ommi.errors import ConfigurationError

if TYPE_CHECKING:
    from ommi.drivers.base import Driver

__all__ = ["DriverSpec"]


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """A driver as its plugin registers it.

    Args:
        name: short name (``"sqlite"``), also the entry-point name.
        schemes: URL schemes the driver serves (``("postgresql", "postgres")``).
        driver: ``"module:ClassName"`` of the :class:`ommi.drivers.Driver`
            subclass, imported only when the driver is first used.
        distribution: the distribution to ``pip install`` for it.
        description: one line for ``ommi drivers``.
    """

    name: str
    schemes: tuple[str, ...]
    driver: str
    distribution: str
    description: str = ""
    _loaded: list[type[Driver]] = field(default_factory=list, compare=False, repr=False)

    def load(self) -> type[Driver]:
        """Import and return the driver class."""
        if not self._loaded:
            module_name, _, attr = self.driver.partition(":")
            try:
                module = importlib.import_module(module_name)
                driver_cls: type[Driver] = getattr(module, attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigurationError(
                    f"driver {self.name!r} could not be loaded from {self.driver!r}: {exc}; "
                    f"reinstall {self.distribution}"
                ) from exc
            self._loaded.append(driver_cls)
        return self._loaded[0]
