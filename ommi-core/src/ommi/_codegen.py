"""Compile generated functions so tracebacks, debuggers and profilers can show their source.

Ommi writes a few hot loops as Python source (row builders, encoders,
document converters). Code passed to ``exec`` as a bare string reports its
frames as ``File "<string>", line 4`` with no source line. :func:`generate`
compiles each source under a unique file name of its own, registers the text
in :mod:`linecache` (so ``traceback`` prints the generated line) for as long
as a generated function lives, and gives every function a ``__qualname__``
naming what it was generated for.

Only the caller's fixed templates and integer positions may appear in the
source; every name taken from a model reaches the code as a namespace value.
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["GENERATED_PREFIX", "generate", "generated"]

GENERATED_PREFIX = "<ommi generated "
"""How the file name of every generated function starts (``co_filename``)."""

_serial = itertools.count(1)


def _forget(filename: str, remaining: list[int]) -> None:
    remaining[0] -= 1
    if remaining[0] == 0:
        linecache.cache.pop(filename, None)


def generate(source: str, names: tuple[str, ...], namespace: dict[str, Any], *, label: str) -> tuple[Any, ...]:
    """Compile ``source`` and return the functions it defines under ``names``, in that order.

    Args:
        source: module-level ``def`` statements.
        names: the functions to return.
        namespace: the globals of the generated code (values it refers to by name).
        label: what the code is for (``"row builders of app.User"``); it becomes
            part of the file name and each function's ``__qualname__``
            (``"<label>.build"``).
    """
    filename = f"{GENERATED_PREFIX}{label} #{next(_serial)}>"
    code = compile(source, filename, "exec")
    exec(code, namespace)  # noqa: S102
    functions = tuple(namespace[name] for name in names)
    lines = source.splitlines(keepends=True)
    # A ``None`` modification time tells linecache.checkcache() to keep the entry.
    linecache.cache[filename] = (len(source), None, lines, filename)
    remaining = [len(functions)]
    for function in functions:
        function.__qualname__ = f"<{label}>.{function.__name__}"
        weakref.finalize(function, _forget, filename, remaining)
    return functions


def generated(function: Callable[..., Any]) -> bool:
    """Whether ``function`` was compiled by :func:`generate`."""
    code = getattr(function, "__code__", None)
    return code is not None and code.co_filename.startswith(GENERATED_PREFIX)
