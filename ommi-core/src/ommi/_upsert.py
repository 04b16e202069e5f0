"""``db.upsert(*models, on=...)``: insert each instance, or replace the stored row it matches.

Everything is checked before any I/O: the driver's ``upsert`` capability, the
conflict target ``on`` (the key, or exactly the fields of one of the model's
unique constraints), the values (validated like ``add``), and that no two
instances of the call match on equal values. Then each model's rows go to
:meth:`ommi.drivers.Operations.upsert`, all or none per model (several models
of one call run in one transaction where the driver has them, like ``add``).

Keys: a row whose generated key is ``None`` gets the key it is stored under
(generated, or the matched row's). As for ``add``, the write then runs to
its end even if the caller is cancelled meanwhile, so that no stored row has
a key its instance lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ommi.errors import QueryError, UnsupportedFeature
from ommi.models.schema import Field, ModelSchema, get_schema

if TYPE_CHECKING:
    from ommi.drivers.base import Driver

__all__ = ["check_upsert", "conflict_target", "upsert_groups"]

_Group = tuple[ModelSchema, list[Any], list[tuple[Any, ...]], tuple[Field, ...]]


def _names(fields: Sequence[Field]) -> str:
    return "(" + ", ".join(f.name for f in fields) + ")"


def conflict_target(schema: ModelSchema, on: Sequence[Any] | None) -> tuple[Field, ...]:
    """The fields ``upsert`` matches ``schema``'s rows on: the key, or the fields of one unique constraint.

    ``on`` ``None`` is the key. The fields are given in the key's or the
    constraint's order.

    Raises:
        QueryError: ``on`` is empty, holds something other than fields of
            ``schema``, or is neither the key nor exactly a unique constraint
            (the message names those that exist).
    """
    if on is None:
        return schema.key
    model = schema.cls.__name__
    fields = list(on)
    if not fields:
        raise QueryError(f"upsert(on=()) of {model}: name the fields to match on, or leave on out to match by key")
    for f in fields:
        if not isinstance(f, Field) or f.schema is not schema:
            shown = f"{f.schema.cls.__name__}.{f.name}" if isinstance(f, Field) else repr(f)
            raise QueryError(
                f"upsert(on=...) of {model}: {shown} is not a field of {model}; name fields as {model}.field"
            )
    if len({id(f) for f in fields}) != len(fields):
        raise QueryError(f"upsert(on=...) of {model}: a field is named twice in {_names(fields)}")
    if {id(f) for f in fields} == {id(f) for f in schema.key}:
        return schema.key
    constraint = schema.unique_constraint(fields)
    if constraint is not None:
        return constraint.fields
    uniques = [_names(c.fields) for c in schema.constraints if c.unique]
    raise QueryError(
        f"upsert(on={_names(fields)}) of {model}: no unique constraint of {model} is over exactly these fields; "
        f"it can match on its key {_names(schema.key)}"
        + (f" or on a unique constraint: {', '.join(uniques)}" if uniques else " (it declares no unique constraint)")
    )


def _refuse_duplicates(schema: ModelSchema, rows: Sequence[tuple[Any, ...]], on: tuple[Field, ...]) -> None:
    """Two rows of one call matching on equal values: refused (which would win is not a question to answer)."""
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        values = tuple(row[f.index] for f in on)
        if None in values:
            continue  # never matches: inserted
        if values in seen:
            raise QueryError(
                f"upsert() of {schema.cls.__name__}: two instances have {_names(on)} = {values!r}; "
                "an upsert writes each row once, so give each row once"
            )
        seen.add(values)


def check_upsert(driver: Driver) -> None:
    """Refuse ``upsert`` on a driver without the capability (before any I/O)."""
    if not driver.capabilities.upsert:
        reason = driver.absent_reason("upsert")
        raise UnsupportedFeature(
            f"the {driver.name} driver cannot upsert (capability 'upsert' is absent for {driver.description})"
            + (f": {reason}" if reason else "")
        )


def upsert_groups(models: tuple[Any, ...], on: Iterable[Any] | None) -> list[_Group]:
    """The instances grouped by model with their encoded rows and conflict target, all checked.

    Raises:
        QueryError: no instance, a bad ``on`` (see :func:`conflict_target`), ``on``
            with instances of another model, or two instances matching on equal values.
        ValidationError: a value does not fit its field.
    """
    if not models:
        raise QueryError("upsert() needs at least one model instance")
    if isinstance(on, (str, bytes)) or (on is not None and not isinstance(on, Iterable)):
        raise QueryError(f"upsert(on={on!r}): give a tuple of fields, on=(Model.field, ...)")
    fields = None if on is None else tuple(on)  # read once, whatever iterable it is
    groups: dict[int, tuple[ModelSchema, list[Any]]] = {}
    for instance in models:
        schema = get_schema(instance)
        groups.setdefault(id(schema), (schema, []))[1].append(instance)
    if fields is not None:
        owners = {id(f.schema): f.schema for f in fields if isinstance(f, Field)}
        if len(owners) > 1:
            raise QueryError(
                "upsert(on=...): the fields belong to "
                + ", ".join(s.cls.__name__ for s in owners.values())
                + "; name fields of one model"
            )
        if owners:
            target = next(iter(owners.values()))
            others = sorted({s.cls.__name__ for s, _ in groups.values() if s is not target})
            if others:
                raise QueryError(
                    f"upsert(on=...) matches {target.cls.__name__} rows, but {', '.join(others)} instances were "
                    "given too; upsert them in a call of their own"
                )
    result: list[_Group] = []
    for schema, items in groups.values():
        target_fields = conflict_target(schema, fields)
        rows = [schema.encode_instance(i) for i in items]
        _refuse_duplicates(schema, rows, target_fields)
        result.append((schema, items, rows, target_fields))
    return result
