"""Library-safe structlog loggers.

Ommi never calls ``structlog.configure()``. When the application has configured
structlog, Ommi's events go through that configuration; otherwise they go to the
standard-library logger of the same name (``ommi.*``), which is silent unless the
application configures :mod:`logging`.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["get_logger"]

logging.getLogger("ommi").addHandler(logging.NullHandler())


class _Logger:
    """Resolves to structlog's configured logger, or to stdlib logging, at each call."""

    __slots__ = ("_name", "_stdlib", "_wrapped")

    def __init__(self, name: str) -> None:
        self._name = name
        self._stdlib = logging.getLogger(name)
        self._wrapped: Any = None

    def _log(self, level: int, event: str, kwargs: dict[str, Any]) -> None:
        if structlog.is_configured():
            getattr(structlog.get_logger(self._name), logging.getLevelName(level).lower())(event, **kwargs)
            return
        if not self._stdlib.isEnabledFor(level):
            return
        if self._wrapped is None:
            self._wrapped = structlog.wrap_logger(
                self._stdlib,
                processors=[
                    structlog.stdlib.add_logger_name,
                    structlog.processors.format_exc_info,
                    structlog.processors.KeyValueRenderer(key_order=["event"]),
                ],
                wrapper_class=structlog.stdlib.BoundLogger,
            )
        getattr(self._wrapped, logging.getLevelName(level).lower())(event, **kwargs)

    def debug(self, event: str, **kwargs: Any) -> None:
        self._log(logging.DEBUG, event, kwargs)

    def info(self, event: str, **kwargs: Any) -> None:
        self._log(logging.INFO, event, kwargs)

    def warning(self, event: str, **kwargs: Any) -> None:
        self._log(logging.WARNING, event, kwargs)

    def error(self, event: str, **kwargs: Any) -> None:
        self._log(logging.ERROR, event, kwargs)

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at ``level`` would go anywhere (skip costly context otherwise)."""
        return structlog.is_configured() or self._stdlib.isEnabledFor(level)


def get_logger(name: str) -> _Logger:
    """A logger named ``name`` (``ommi.<package>.<component>``)."""
    return _Logger(name)
