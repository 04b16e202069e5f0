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
clears that mark on the fields of classes also decorated with ``@ommi_model``
(for a slotted attrs class, whose fields mypy reports as "in __slots__
conflicts with class variable access", it drops mypy's record of the slots).
``Book.year`` is then typed ``int`` as pyright types it: ``Book.year >= 1970``
is a ``bool``, which ``find``, ``when``, ``.And`` and ``.Or`` accept. Nothing
else changes: a misspelled attribute, a wrong argument or a wrong type is
reported as before.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from mypy.nodes import CallExpr, Expression, RefExpr
from mypy.options import Options
from mypy.plugin import ClassDefContext, Plugin
from mypy.plugins.default import DefaultPlugin

__all__ = ["OmmiPlugin", "plugin"]

OMMI_MODEL = frozenset({"ommi.models.decorator.ommi_model", "ommi.ommi_model", "ommi.models.ommi_model"})
"""The names ``@ommi_model`` may resolve to."""

CLASS_MAKERS = ("dataclass", "attrs")
"""The ``TypeInfo.metadata`` keys under which mypy's own class-maker plugins list a class's fields."""


def _is_ommi_model(decorator: Expression) -> bool:
    if isinstance(decorator, CallExpr):  # @ommi_model(collection=...)
        decorator = decorator.callee
    return isinstance(decorator, RefExpr) and decorator.fullname in OMMI_MODEL


def _then_class_fields(maker: Callable[[ClassDefContext], bool], ctx: ClassDefContext) -> bool:
    """mypy's own handling of the class maker, then class-level fields for Ommi models."""
    done = maker(ctx)
    if not done or not any(_is_ommi_model(d) for d in ctx.cls.decorators):
        return done
    info = ctx.cls.info
    names = {
        attribute["name"] for key in CLASS_MAKERS for attribute in info.metadata.get(key, {}).get("attributes", [])
    }
    if names and info.slots is not None and names & info.slots:
        # attrs' slotted classes: a field read on the class is the query operand, not a slot conflict.
        info.slots = None
    for name in names:
        symbol = info.names.get(name)
        if symbol is not None:
            symbol.implicit = False
    return done


class OmmiPlugin(Plugin):
    """Lets ``Model.field`` be read on an ``@ommi_model`` class (see the module docstring)."""

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._default = DefaultPlugin(options)

    def get_class_decorator_hook_2(self, fullname: str) -> Callable[[ClassDefContext], bool] | None:
        maker = self._default.get_class_decorator_hook_2(fullname)
        if maker is None:
            return None
        return partial(_then_class_fields, maker)


def plugin(version: str) -> type[OmmiPlugin]:
    """The entry point mypy calls with its version."""
    return OmmiPlugin
