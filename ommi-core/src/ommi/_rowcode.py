"""Generated per-model row functions: the hot loops of fetching, written once.

Converting a row field by field in a Python loop costs about three times what
one generated tuple expression costs (``(r[0], None if r[1] is None else
c1(r[1]), r[2])``). Only field positions appear in the generated source, never
a name taken from a model, so no model can inject code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ommi._codegen import generate

__all__ = ["Builders", "compile_builders", "row_converter"]

Row = tuple[Any, ...]
Builders = tuple[Callable[[Row], Any], Callable[[Sequence[Row]], list[Any]]]
"""A model's instance builders: one row -> instance, a batch of rows -> instances."""


def _tuple_expression(width: int, steps: Mapping[int, Callable[[Any], Any]]) -> tuple[str, dict[str, Any]]:
    parts = [f"None if r[{i}] is None else c{i}(r[{i}])" if i in steps else f"r[{i}]" for i in range(width)]
    return "(" + ", ".join(parts) + ",)", {f"c{i}": step for i, step in steps.items()}


def compile_builders(
    width: int,
    steps: Mapping[int, Callable[[Any], Any]],
    then: Callable[..., Any],
    *,
    positional: bool,
    label: str = "row builders",
) -> Builders:
    """Two functions: ``row -> then(converted row)`` and its list version for a batch of rows.

    ``steps[i]`` converts position ``i`` unless it is ``None``. With
    ``positional`` the converted values are passed to ``then`` as separate
    arguments (``then(r[0], c1(r[1]), ...)``), else as one tuple. ``label``
    names the functions in tracebacks (``"row builders of app.User"``).
    """
    expression, namespace = _tuple_expression(width, steps)
    call = f"then({expression[1:-2]})" if positional else f"then({expression})"
    if positional and not steps:
        call = "then(*r)"
    namespace["then"] = then
    source = f"def build(r):\n    return {call}\ndef build_rows(rows):\n    return [{call} for r in rows]\n"
    build, build_rows = generate(source, ("build", "build_rows"), namespace, label=label)
    return build, build_rows


def row_converter(width: int, steps: Mapping[int, Callable[[Any], Any]]) -> Callable[[Sequence[Row]], list[Row]] | None:
    """A function converting a batch of rows of ``width`` values, or ``None`` when ``steps`` is empty.

    ``steps[i]`` converts the value at position ``i`` (``None`` stays ``None``).
    Drivers use it to turn what their client returns into canonical rows.
    """
    if not steps:
        return None
    expression, namespace = _tuple_expression(width, steps)
    source = f"def convert_rows(rows):\n    return [{expression} for r in rows]\n"
    (function,) = generate(source, ("convert_rows",), namespace, label=f"row converter of width {width}")
    converter: Callable[[Sequence[Row]], list[Row]] = function
    return converter
