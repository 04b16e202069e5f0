"""The operations that take one schema state to another.

:func:`diff` guesses nothing: a field that disappears while another appears
is a removal and an addition (destructive, so ``make`` refuses it) unless the
caller says it is a rename. Models are matched by stored name.

The order of the operations is one every driver can apply: new models first
(referenced ones before those referencing them, each with its indexes), then
per existing model renames, the indexes and unique constraints that go (before
any field they name is removed), field removals, additions, type changes and
defaults, then the indexes and unique constraints that come (after the fields
they name are added), and the dropped models last (referencing ones first).
Indexes are matched by stored name, fields and uniqueness: one that changes is
removed and added again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ommi.errors import MigrationError
from ommi.migrations.operations import (
    AddField,
    AddIndex,
    AddUnique,
    ChangeType,
    CreateModel,
    DropModel,
    Operation,
    RemoveField,
    RemoveIndex,
    RemoveUnique,
    RenameField,
    SetDefault,
)
from ommi.migrations.state import FieldSpec, IndexSpec, ModelState, SchemaState

__all__ = ["Rename", "diff", "parse_rename", "rename_hint"]

Rename = tuple[str, str, str]
"""``(model, old field, new field)``, each a stored name."""


def parse_rename(text: str) -> Rename:
    """``"Model.old=new"`` -> ``("Model", "old", "new")`` (the form ``--rename`` takes).

    Raises:
        MigrationError: the text is not of that form.
    """
    left, equals, new = text.partition("=")
    model, dot, old = left.rpartition(".")
    if not (equals and dot and model and old and new):
        raise MigrationError(f"a rename is written Model.old_field=new_field, not {text!r}")
    return model.strip(), old.strip(), new.strip()


def _ordered(models: Iterable[ModelState]) -> list[ModelState]:
    """Referenced models before the models referencing them (a cycle keeps its given order)."""
    pending = {m.name: m for m in models}
    done: list[ModelState] = []
    placed: set[str] = set()

    def place(model: ModelState, path: set[str]) -> None:
        if model.name in placed or model.name in path:
            return
        for f in model.fields:
            target = pending.get(f.reference or "")
            if target is not None and target.name != model.name:
                place(target, path | {model.name})
        placed.add(model.name)
        done.append(model)

    for model in list(pending.values()):
        place(model, set())
    return done


def _removal(model: str, index: IndexSpec) -> Operation:
    return (RemoveUnique if index.unique else RemoveIndex)(model, index.name, index.fields)


def _addition(model: str, index: IndexSpec) -> Operation:
    return (AddUnique if index.unique else AddIndex)(model, index.name, index.fields)


def _model_changes(old: ModelState, new: ModelState, renames: dict[str, str]) -> list[Operation]:
    operations: list[Operation] = []
    current = {f.name: f for f in old.fields}
    # The indexes as they are after the renames (a rename carries its indexes along).
    renamed_indexes = [IndexSpec(i.name, [renames.get(f, f) for f in i.fields], i.unique) for i in old.indexes]
    for old_name, new_name in renames.items():
        if old_name not in current:
            raise MigrationError(f"rename {old.name}.{old_name}={new_name}: the model has no field {old_name!r}")
        if new.field(new_name) is None:
            raise MigrationError(f"rename {old.name}.{old_name}={new_name}: the new model has no field {new_name!r}")
        if new_name in current:
            raise MigrationError(f"rename {old.name}.{old_name}={new_name}: the field {new_name!r} exists already")
        operations.append(RenameField(old.name, old_name, new_name))
        current[new_name] = current.pop(old_name).replace(name=new_name)
    wanted = {f.name: f for f in new.fields}
    operations += [_removal(old.name, i) for i in renamed_indexes if i not in new.indexes]
    operations += [RemoveField(old.name, f) for name, f in current.items() if name not in wanted]
    operations += [AddField(old.name, f) for name, f in wanted.items() if name not in current]
    for name, spec in wanted.items():
        before = current.get(name)
        if before is None or before == spec:
            continue
        if _storage(before) != _storage(spec):
            # The default follows the model, and fills the stored None values of a field made required.
            operations.append(ChangeType(old.name, before, spec))
        elif before.default != spec.default:
            operations.append(SetDefault(old.name, name, before.default, spec.default))
    operations += [_addition(old.name, i) for i in new.indexes if i not in renamed_indexes]
    return operations


def _storage(spec: FieldSpec) -> tuple[object, ...]:
    """Everything of a field spec but its default: what decides how its values are stored.

    Compared as a tuple rather than through ``spec.replace(default=...)``, which
    validates the default against the *old* type and fails when the type changes.
    """
    return tuple(getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != "default")


def diff(old: SchemaState, new: SchemaState, *, renames: Iterable[Rename | str] = ()) -> list[Operation]:
    """The operations that take ``old`` to ``new``; an empty list when they are equal.

    Args:
        old: the state of the migrations so far.
        new: the state wanted (usually ``SchemaState.from_models(...)``).
        renames: fields stored under a new name, as ``(model, old, new)`` or
            ``"model.old=new"``, with stored names.

    Raises:
        MigrationError: a rename that does not fit the states, or an operation
            that cannot be applied whatever the data (a required field added
            without a default, a key changed, a type that is not converted...).
    """
    by_model: dict[str, dict[str, str]] = {}
    for rename in renames:
        name, old_name, new_name = parse_rename(rename) if isinstance(rename, str) else rename
        if name not in old or name not in new:
            raise MigrationError(f"rename {name}.{old_name}={new_name}: {name!r} is not a model of both versions")
        by_model.setdefault(name, {})[old_name] = new_name

    operations: list[Operation] = [
        CreateModel(m.name, m.fields, m.indexes) for m in _ordered(m for m in new if m.name not in old)
    ]
    for model in old:
        if model.name in new:
            operations += _model_changes(model, new.model(model.name), by_model.get(model.name, {}))
    dropped = _ordered(m for m in old if m.name not in new)
    operations += [DropModel(m.name, m.fields, m.indexes) for m in reversed(dropped)]

    problems = [f"{op.describe()}: {problem}" for op in operations if (problem := op.problem()) is not None]
    if problems:
        raise MigrationError(
            "the models cannot be migrated to automatically: " + "; ".join(problems) + rename_hint(operations)
        )
    return operations


def rename_hint(operations: Iterable[Operation]) -> str:
    """A sentence suggesting renames where a field of a model is removed and one of the same type added (or ``""``)."""
    operations = list(operations)
    removed = [op for op in operations if isinstance(op, RemoveField)]
    added = [op for op in operations if isinstance(op, AddField)]
    pairs = [
        f"{r.model}.{r.field.name}={a.field.name}"
        for r in removed
        for a in added
        if r.model == a.model and r.field.type == a.field.type
    ]
    if not pairs:
        return ""
    return (
        f". If a field was renamed rather than replaced, say so: renames=[{', '.join(map(repr, pairs))}] "
        f"(ommi migrate make {' '.join('--rename ' + p for p in pairs)})"
    )
