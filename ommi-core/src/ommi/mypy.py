"""The mypy plugin: model fields read on the class are query operands, not an error.

Enable it in the mypy configuration (pyright needs no plugin)::

    [tool.mypy]
    plugins = ["ommi.mypy"]

What it does, and why nothing in the type system alone can: mypy marks every
field of a standard ``@dataclass`` that has no default as set in ``__init__``
only (``mypy/plugins/dataclasses.py``), and then reports ``Book.year`` as
``Cannot access instance-only attribute "year" on class object``, whatever the
field's type. An ``@ommi_model`` class has an attribute behind each field (the
query operand), so this plugin runs mypy's own dataclass handling and then
clears that mark on the fields of classes also decorated with ``@ommi_model``.
``Book.year`` is then typed ``int`` as pyright types it: ``Book.year >= 1970``
is a ``bool``, which ``find``, ``when``, ``.And`` and ``.Or`` accept. Nothing
else changes: a misspelled attribute, a wrong argument or a wrong type is
reported as before.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import CallExpr, Expression, RefExpr
from mypy.plugin import ClassDefContext, Plugin
from mypy.plugins.dataclasses import dataclass_class_maker_callback, dataclass_makers

__all__ = ["OmmiPlugin", "plugin"]

OMMI_MODEL = frozenset({"ommi.models.decorator.ommi_model", "ommi.ommi_model", "ommi.models.ommi_model"})
"""The names ``@ommi_model`` may resolve to."""


def _is_ommi_model(decorator: Expression) -> bool:
    if isinstance(decorator, CallExpr):  # @ommi_model(collection=...)
        decorator = decorator.callee
    return isinstance(decorator, RefExpr) and decorator.fullname in OMMI_MODEL


def _dataclass_with_class_fields(ctx: ClassDefContext) -> bool:
    """mypy's own ``@dataclass`` handling, then class-level fields for Ommi models."""
    done = dataclass_class_maker_callback(ctx)
    if done and any(_is_ommi_model(d) for d in ctx.cls.decorators):
        info = ctx.cls.info
        for attribute in info.metadata.get("dataclass", {}).get("attributes", []):
            symbol = info.names.get(attribute["name"])
            if symbol is not None:
                symbol.implicit = False
    return done


class OmmiPlugin(Plugin):
    """Lets ``Model.field`` be read on an ``@ommi_model`` dataclass (see the module docstring)."""

    def get_class_decorator_hook_2(self, fullname: str) -> Callable[[ClassDefContext], bool] | None:
        if fullname in dataclass_makers:
            return _dataclass_with_class_fields
        return None


def plugin(version: str) -> type[OmmiPlugin]:
    """The entry point mypy calls with its version."""
    return OmmiPlugin
