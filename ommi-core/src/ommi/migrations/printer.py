"""Print an :class:`~ommi.migrations.inspection.Inspection` as a Python module of ``@ommi_model`` dataclasses.

The module is meant to be read, edited and committed, and it must be valid,
safe Python whatever the database's names are: every stored name reaches the
source only through :func:`repr` (``name=``, ``StoreAs``) or, in comments,
escaped to one ASCII line. Class and attribute names are made from the stored
names: ASCII identifiers, never a Python keyword or a name the module imports
(nor a builtin for a class, nor a type the annotations use for an
attribute), at most 60 characters (longer ones end with a hash of the whole
name), numbered ``_2``, ``_3``... in the order of the stored names when two
would be the same. The models go in a collection of their own,
``models``, in an order where a referenced model comes before the models
referencing it.

A stored unique constraint or index of one column, under the name Ommi
would give it (:func:`~ommi.models.constraints.constraint_name`), is a
marker on its field (``Annotated[str, Unique]``); any other is an item of
``@ommi_model(constraints=[...])`` over attribute names, with ``name=`` when
the stored name is not the default one, so that migrations made from the
printed models name the index the database has.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import re
from collections.abc import Iterable

from ommi.migrations.inspection import Inspection
from ommi.migrations.state import FieldSpec, ModelState
from ommi.models.constraints import constraint_name

__all__ = ["render_models"]

_IMPORTED = {
    "Annotated",
    "Any",
    "Auto",
    "Decimal",
    "Index",
    "Key",
    "ModelCollection",
    "ReferenceTo",
    "StoreAs",
    "TimezoneAware",
    "UUID",
    "Unique",
    "dataclass",
    "datetime",
    "generated_key",
    "models",
    "ommi_model",
}
"""Names the printed module binds itself: no class or attribute may take one."""

_FROM_OMMI = {
    "Auto",
    "Index",
    "Key",
    "ModelCollection",
    "ReferenceTo",
    "StoreAs",
    "TimezoneAware",
    "Unique",
    "generated_key",
    "ommi_model",
}
"""The names the module imports from ``ommi`` (its public names), when it uses them."""

_RESERVED_CLASSES = _IMPORTED | set(dir(builtins)) | set(keyword.kwlist)
"""A class is bound in the module: it must not hide a builtin or an imported name."""

_RESERVED_ATTRIBUTES = _IMPORTED | set(keyword.kwlist) | {"int", "float", "bool", "str", "bytes", "dict", "list"}
"""An attribute is bound in its class body, where the annotations after it would see it instead of the type."""

_INSTANCE_ATTRIBUTES = {"save", "delete", "reload"}
"""Methods Ommi gives model instances (see ``ommi.models.schema``): a field must not hide them."""

_MAX_NAME = 60

_LINE = 100
"""Longer ``@ommi_model(...)`` lines are split, one argument a line."""

_PYTHON_TYPES = {
    "int": "int",
    "float": "float",
    "decimal": "Decimal",
    "bool": "bool",
    "str": "str",
    "bytes": "bytes",
    "uuid": "UUID",
    "date": "datetime.date",
    "datetime": "datetime.datetime",
    "datetime_tz": "datetime.datetime",
    "json": "dict[str, Any]",
}

_NOT_WORD = re.compile(r"[^0-9A-Za-z]+")
_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


def _comment(text: str) -> str:
    """``text`` as the inside of a one-line comment: ASCII, newlines and other controls escaped."""
    return text.encode("unicode_escape").decode("ascii")


def _shorten(name: str, whole: str) -> str:
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha1(whole.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    taken.add(candidate)
    return candidate


def class_name(table: str, taken: set[str]) -> str:
    """A class name for the table ``table``: CamelCase ASCII words, unique in ``taken`` (updated)."""
    words = [w for w in _NOT_WORD.split(table) if w]
    name = "".join(w[0].upper() + w[1:] for w in words)
    if not name or name[0].isdigit():
        name = "Table" + name
    if name in _RESERVED_CLASSES:
        name += "Model"
    return _unique(_shorten(name, table), taken)


def attribute_name(column: str, taken: set[str]) -> str:
    """An attribute name for the column ``column``: itself when it is a plain identifier, unique in ``taken``."""
    name = _NOT_IDENTIFIER.sub("_", column).strip("_")
    name = re.sub("_+", "_", name) if name != column else name
    if not name:
        name = "field"
    elif name[0].isdigit():
        name = "f_" + name
    if name in _RESERVED_ATTRIBUTES or name in _INSTANCE_ATTRIBUTES:
        name += "_"
    return _unique(_shorten(name, column), taken)


def _ordered(models: list[ModelState], names: dict[str, str]) -> list[ModelState]:
    """Referenced models first (then by class name); models in a reference cycle follow in class-name order."""
    remaining = {m.name: m for m in models}
    needs = {m.name: {f.reference for f in m.fields if f.reference and f.reference != m.name} for m in models}
    ordered: list[ModelState] = []
    while remaining:
        ready = sorted((n for n in remaining if not needs[n] & remaining.keys()), key=names.__getitem__)
        if not ready:  # a cycle: string references resolve lazily, so any order works
            ready = sorted(remaining, key=names.__getitem__)[:1]
        for name in ready:
            ordered.append(remaining.pop(name))
    return ordered


def _annotation(spec: FieldSpec, attribute: str, target: str | None, indexed: Iterable[str]) -> tuple[str, str]:
    """The annotation text and the default (``""`` for none) of a field (``indexed``: its ``Unique``/``Index``)."""
    python_type = _PYTHON_TYPES[spec.type]
    if spec.nullable:
        python_type += " | None"
    markers = []
    if spec.key:
        markers.append("Key")
    if spec.generated:
        markers.append("Auto")
    if spec.type == "datetime_tz":
        markers.append("TimezoneAware")
    markers.extend(indexed)
    if attribute != spec.name:
        markers.append(f"StoreAs({spec.name!r})")
    if target is not None:
        markers.append(f"ReferenceTo({target!r})")
    annotation = f"Annotated[{python_type}, {' | '.join(markers)}]" if markers else python_type
    default = " = generated_key()" if spec.generated else " = None" if spec.nullable else ""
    return annotation, default


def _constraints(model: ModelState, attributes: dict[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """The model's indexes as field markers (column -> ``Unique``/``Index``) and as ``constraints=`` items."""
    markers: dict[str, list[str]] = {}
    items: list[str] = []
    for index in sorted(model.indexes, key=lambda i: (not i.unique, i.name)):
        marker = "Unique" if index.unique else "Index"
        default = constraint_name(model.name, index.fields, unique=index.unique)
        if len(index.fields) == 1 and index.name == default:
            markers.setdefault(index.fields[0], []).append(marker)
            continue
        arguments = [repr(attributes[column]) for column in index.fields]
        if index.name != default:
            arguments.append(f"name={index.name!r}")
        items.append(f"{marker}({', '.join(arguments)})")
    return markers, items


def _decorator(arguments: list[str], constraints: list[str]) -> list[str]:
    """``@ommi_model(...)`` on one line, or one argument (and constraint) a line when that is too long."""
    listed = [*arguments, "constraints=[" + ", ".join(constraints) + "]"] if constraints else arguments
    line = f"@ommi_model({', '.join(listed)})"
    if len(line) <= _LINE:
        return [line]
    lines = ["@ommi_model(", *(f"    {argument}," for argument in arguments)]
    if constraints:
        lines += ["    constraints=[", *(f"        {item}," for item in constraints), "    ],"]
    return [*lines, ")"]


def _used(lines: Iterable[str]) -> set[str]:
    text = "\n".join(line.split("#", 1)[0] for line in lines)
    return {name for name in _IMPORTED if re.search(rf"\b{name}\b", text)}


def render_models(inspection: Inspection) -> str:
    """The Python module (source text) of the models of ``inspection``; skipped tables appear as comments."""
    state = inspection.state
    taken: set[str] = set()
    classes = {name: class_name(name, taken) for name in sorted(state.models)}
    attributes: dict[str, dict[str, str]] = {}
    for model in state:
        used: set[str] = set()
        attributes[model.name] = {f.name: attribute_name(f.name, used) for f in model.fields}

    body: list[str] = []
    for model in _ordered(list(state), classes):
        body += ["", ""]
        name = classes[model.name]
        arguments = ["collection=models"]
        if name != model.name:
            arguments.append(f"name={model.name!r}")
        markers, constraints = _constraints(model, attributes[model.name])
        body += [*_decorator(arguments, constraints), "@dataclass(kw_only=True)", f"class {name}:"]
        body.append(f"    # table {_comment(repr(model.name))}")
        for note in inspection.notes.get(model.name, ()):
            body.append(f"    # note: {_comment(note)}")
        columns = inspection.columns.get(model.name, {})
        for spec in model.fields:
            attribute = attributes[model.name][spec.name]
            target = None
            if spec.reference is not None:
                referenced = state.model(spec.reference)
                key_attribute = attributes[spec.reference][referenced.key[0].name]
                target = f"{classes[spec.reference]}.{key_attribute}"
            annotation, default = _annotation(spec, attribute, target, markers.get(spec.name, ()))
            column = columns.get(spec.name)
            comment = ""
            if column is not None:
                comment = f"  # {_comment(column.native_type)}"
                if column.limit:
                    comment += f": {_comment(column.limit)}"
            body.append(f"    {attribute}: {annotation}{default}{comment}")

    skipped = [f"# - {_comment(repr(t))}: {_comment(why)}" for t, why in inspection.skipped.items()]
    used = _used(body)
    header = [
        '"""Models of an existing database, written by `ommi inspect`: review them, then commit them.',
        "",
        "Use them with `await db.use_models(models)` (or `--models MODULE:models`): they",
        "pass its check against the tables they were read from.",
        '"""',
        "",
        f"# Read from: {_comment(inspection.source)}",
    ]
    if skipped:
        header += ["# Tables without a model (see why; map them by hand if need be):", *skipped]
    header.append("")
    imports = []
    if "datetime" in used:
        imports.append("import datetime")
    imports.append("from dataclasses import dataclass")
    if "Decimal" in used:
        imports.append("from decimal import Decimal")
    typing_names = [name for name in ("Annotated", "Any") if name in used]
    if typing_names:
        imports.append(f"from typing import {', '.join(typing_names)}")
    if "UUID" in used:
        imports.append("from uuid import UUID")
    imports.append("")
    public = sorted(used & _FROM_OMMI | {"ModelCollection", "ommi_model"})
    line = f"from ommi import {', '.join(public)}"
    imports += [line] if len(line) <= _LINE else ["from ommi import (", *(f"    {n}," for n in public), ")"]
    imports += ["", 'models = ModelCollection("inspected")', '"""The models below (not the global collection)."""']
    if not state.models:
        imports.append("# No table of the database maps to a model.")
    return "\n".join(header + imports + body) + "\n"
