"""Aggregates on MongoDB: one ``$match`` + ``$group`` pipeline, finished in Python to Ommi's semantics.

The pipeline (:func:`group_pipeline`) computes per group, for each aggregate:

=====================  ==========================================================
``Count()``            ``{"$sum": 1}``
``Count(f)``           ``$sum`` of 1 for each document whose ``f`` is not null/missing
``Sum``/``Avg`` of int the sum of ``{"$toDecimal": "$f"}`` (exact in Decimal128 below
                       10**15 documents: ``$sum`` of int64 values turns to a double on
                       overflow) and the count of values, then ``int`` and
                       :func:`ommi.query.aggregate.average` in Python
``Sum``/``Avg`` of      ``$sum`` and the count of values (``$sum`` over no value is 0,
float                  Ommi's sum is ``None``); the mean is the sum over the count
                       (nx-27017's ``$avg`` counts nulls)
``Min``/``Max``        ``$min`` / ``$max`` (they skip null and missing values)
=====================  ==========================================================

``Sum``/``Avg`` of a ``Decimal`` field do not go to the server: Decimal128
arithmetic rounds to 34 significant digits, and Ommi's decimal sum is exact.
An aggregation holding one is computed by the default of
:meth:`ommi.drivers.Operations.aggregate` (documents streamed, summed in Python).

Group keys are ``{"$ifNull": ["$f", null]}`` (an absent field is NULL, as
Ommi reads it), in the ``_id`` document ``ServerForms.group_key`` words. The
groups come back in no defined order and without ``having`` applied:
:func:`ommi.query.aggregate.finish_groups` orders and filters them in Python.
Over no document ``$group`` gives no group; without ``group_by`` the driver
then returns the one row of an empty input.

nx-27017 (the wire server the tests run against) gets much of ``$group``
wrong (``ommi_mongodb._testserver_compat`` lists it): it evaluates no field
path inside a document ``_id``, rounds float keys, answers ``$min``/``$max``
wrongly, counts nulls in ``$avg``, hangs on a ``$sum`` of int64 values that
overflows. There the pipeline groups by one plain non-float path and has no
``$min``/``$max``; anything else is aggregated in Python (the default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bson import Decimal128
from ommi.models.types import StorageType
from ommi.query.aggregate import Aggregate, Aggregation, average, check_sum

from ommi_mongodb._filters import MONGODB, ServerForms
from ommi_mongodb._values import decode_value, field_path

__all__ = ["empty_row", "group_pipeline", "on_server"]

Finisher = Callable[[Mapping[str, Any]], tuple[Any, ...]]


def on_server(aggregation: Aggregation, forms: ServerForms = MONGODB) -> bool:
    """Whether the server computes ``aggregation`` exactly.

    Not with a ``Sum``/``Avg`` of a ``Decimal`` field, nor a ``Min``/``Max`` the
    server's ``$min``/``$max`` get wrong (``forms.extremes``).
    """
    for _, aggregate in aggregation.aggregates:
        field = aggregate.field
        if field is None:
            continue
        if aggregate.kind in ("sum", "avg") and field.storage is StorageType.DECIMAL:
            return False
        if aggregate.kind in ("min", "max") and not forms.extremes(field.storage):
            return False
    return True


def _path(field: Any) -> str:
    return "$" + field_path(field)


def _present(field: Any) -> Any:
    """1 for a document whose ``field`` holds a value, 0 for null or missing.

    A required field always holds one (a document lacking it fails to read):
    plain ``1`` then, which the server adds up without evaluating an expression.
    """
    if not field.nullable:
        return 1
    return {"$cond": [{"$eq": [{"$ifNull": [_path(field), None]}, None]}, 0, 1]}


def _number(value: Any) -> Any:
    return value.to_decimal() if isinstance(value, Decimal128) else value


def _accumulators(index: int, aggregate: Aggregate) -> tuple[dict[str, Any], Callable[[Mapping[str, Any]], Any]]:
    name = f"a{index}"
    field = aggregate.field
    if field is None:
        return {name: {"$sum": 1}}, lambda doc: int(doc.get(name) or 0)
    kind, storage, path = aggregate.kind, field.storage, _path(field)
    if kind == "count":
        return {name: {"$sum": _present(field)}}, lambda doc: int(doc.get(name) or 0)
    if kind in ("min", "max"):
        return {name: {f"${kind}": path}}, lambda doc: decode_value(storage, doc.get(name))
    count = f"{name}n"
    summed: Any = {"$toDecimal": path} if storage is StorageType.INTEGER else path
    spec = {name: {"$sum": summed}, count: {"$sum": _present(field)}}

    def total(doc: Mapping[str, Any]) -> Any:
        if not doc.get(count):
            return None
        value = _number(doc.get(name))
        return int(value) if storage is StorageType.INTEGER else float(value)

    if kind == "sum":
        return spec, lambda doc: check_sum(aggregate, total(doc))
    return spec, lambda doc: average(total(doc), int(doc.get(count) or 0), storage)


def group_pipeline(
    match: dict[str, Any], aggregation: Aggregation, forms: ServerForms = MONGODB
) -> tuple[list[dict[str, Any]], Finisher] | None:
    """The ``$match`` + ``$group`` pipeline of ``aggregation`` over the documents ``match`` selects.

    Returns it with the function that turns each group document into the
    canonical result row (group values, then aggregates), unordered; ``None``
    when the server cannot group by these fields (``forms.group_key``).
    """
    group_id = forms.group_key(list(aggregation.group_by))
    if group_id is NotImplemented:
        return None
    stage: dict[str, Any] = {"_id": group_id}
    finishers: list[Callable[[Mapping[str, Any]], Any]] = []
    for index, (_, aggregate) in enumerate(aggregation.aggregates):
        spec, finish = _accumulators(index, aggregate)
        stage.update(spec)
        finishers.append(finish)
    keys = [(f"k{i}", f.storage) for i, f in enumerate(aggregation.group_by)]

    def finish_row(doc: Mapping[str, Any]) -> tuple[Any, ...]:
        ident = doc.get("_id")
        if isinstance(group_id, str):  # one plain path: the _id is the value itself
            groups: tuple[Any, ...] = (decode_value(keys[0][1], ident),)
        else:
            ident = ident or {}
            groups = tuple(decode_value(storage, ident.get(key)) for key, storage in keys)
        return groups + tuple(finish(doc) for finish in finishers)

    pipeline: list[dict[str, Any]] = [{"$group": stage}]
    if match:
        pipeline.insert(0, {"$match": match})
    return pipeline, finish_row


def empty_row(aggregation: Aggregation) -> tuple[Any, ...]:
    """The one result row of an aggregation without ``group_by`` over no document."""
    return tuple(0 if a.kind == "count" else None for _, a in aggregation.aggregates)
