"""Query conditions as MongoDB filters, and the same conditions evaluated in Python.

:func:`to_filter` translates a condition on the target model alone into a
``find`` filter with the semantics of the reference driver:

============================  ================================================
condition                     filter
============================  ================================================
``f == v`` (``<``, ``<=``...)  ``{f: v}`` / ``{f: {"$lt": v}}``: never matches null,
                               since MongoDB's comparisons stay within a type
``f != v``                    ``{f: {"$ne": v}}``: matches null and missing too
``f == None`` / ``!= None``   ``{f: {"$eq": None}}`` / ``{f: {"$ne": None}}``
                               (null or missing / neither)
``f.in_(vs)``                 ``{f: {"$in": vs}}`` (empty: matches nothing)
``f.not_in(vs)``              ``{f: {"$nin": vs}}`` (matches null; empty: everything)
``contains/startswith/...``   ``{f: {"$regex": ...}}`` of :func:`pcre_escape` (text),
                               ``startswith`` anchored with ``^``, ``endswith``
                               with ``(?![\\s\\S])`` because ``$`` also matches
                               before a final newline; ``case_sensitive=False``
                               adds ``"$options": "i"`` (PCRE's caseless
                               matching in UTF mode: Unicode simple case
                               folding, as :func:`ommi.query.evaluate.fold_case`)
``And`` / ``Or``              ``{"$and": [...]}`` / ``{"$or": [...]}``; an ``And`` is
                               sent as one flat filter where that means the same
============================  ================================================

Where several filters mean the same to MongoDB, the driver's choice is a
method of :class:`ServerForms`. :data:`MONGODB` holds MongoDB's own forms;
``ommi_mongodb._testserver_compat`` overrides a few for nx-27017, the
wire-protocol server the tests run against, once per opened client.

Strings compare by code point (MongoDB compares UTF-8 bytes without a
collation, which orders the same way). Values always travel as BSON values,
never as operator documents, so text such as ``{"$gt": ""}`` is just text.

JSON path conditions (``Post.meta["plan"] == "pro"``, ``has``) are evaluated in
Python too: MongoDB's dotted paths traverse arrays implicitly (``{"meta.plan":
"pro"}`` matches ``{"plan": ["pro"]}``) and read an index step as a key
``"0"`` as well, where Ommi's paths never do. :func:`json_hint` gives the
server a filter that keeps every document the condition could match (its
matches and more), which the plan uses to narrow the candidates first.

Comparisons between two fields, ordering comparisons of bytes (MongoDB orders
binary values by length first, Ommi byte by byte) and conditions on related
models are evaluated
by :func:`evaluate` in Python over documents fetched by key (see
``_plan.py``); it follows the reference driver exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ommi.expressions import FOLDED_TEXT_OPS, And, Comparison, Expr, FieldComparison, JsonComparison, JsonHas, Op, Or
from ommi.models.schema import Field, ModelSchema
from ommi.models.types import StorageType
from ommi.query.evaluate import holds

from ommi_mongodb._values import decode_value, encode_value, field_path, value_at

__all__ = [
    "MONGODB",
    "ServerForms",
    "evaluate",
    "is_translatable",
    "json_hint",
    "pcre_escape",
    "text_pattern",
    "to_filter",
]

_OPERATORS = {Op.LT: "$lt", Op.LE: "$lte", Op.GT: "$gt", Op.GE: "$gte"}


def pcre_escape(text: str) -> str:
    """``text`` as a PCRE pattern matching exactly itself.

    Every ASCII character that is not a letter or digit gets a backslash: in
    PCRE a backslash before any ASCII non-alphanumeric character makes it
    literal, whatever it is (``\\ ^ $ . | ? * + ( ) [ ] { } -`` and space
    included, also under the ``x`` option, which is never sent). Letters,
    digits and non-ASCII characters stand for themselves; a backslash before
    them would start an escape sequence (``\\d``), so they never get one.
    Text holds no NUL (:mod:`ommi.models.types` refuses it), which a BSON
    regular expression could not carry.
    """
    return "".join(ch if ch.isalnum() or not ch.isascii() else "\\" + ch for ch in text)


def text_pattern(op: Op, text: str) -> str:
    """The regular expression matching ``text`` literally for ``op`` (case-insensitive ones get option ``i``)."""
    literal = pcre_escape(text)
    if op is Op.STARTSWITH or op is Op.ISTARTSWITH:
        return "^" + literal
    if op is Op.ENDSWITH or op is Op.IENDSWITH:
        # `$` would also match before a trailing newline; "not followed by any
        # character" is the end of the string in PCRE and Python alike.
        return literal + r"(?![\s\S])"
    return literal


def is_translatable(expr: Expr, target: ModelSchema) -> bool:
    """Whether :func:`to_filter` can express ``expr`` with Ommi's semantics.

    Not: conditions on other models, comparisons between fields, and ``<``,
    ``<=``, ``>``, ``>=`` on bytes, which MongoDB orders shorter-first rather than
    byte by byte.
    """
    if isinstance(expr, (And, Or)):
        return all(is_translatable(item, target) for item in expr.items)
    if not isinstance(expr, Comparison) or expr.field.schema is not target:
        return False
    return not (expr.field.storage is StorageType.BYTES and expr.op in _OPERATORS)


def _encode(field: Field, value: Any) -> Any:
    return encode_value(field.storage, value)


class ServerForms:
    """How the driver words what it asks the server, where several wordings mean the same to MongoDB.

    This class holds MongoDB's own forms (:data:`MONGODB`). The driver picks
    the forms of a server once, when it opens; ``ommi_mongodb._testserver_compat``
    overrides some of them for nx-27017, so that a real MongoDB never pays for
    that server's gaps.
    """

    __slots__ = ()

    name = "mongodb"
    """Which server these forms are for (in the driver's log events)."""

    update_pipelines = True
    """The server runs an update given as an aggregation pipeline (MongoDB 4.2 and later)."""

    largest_key_rounds = 1
    """Queries for the largest integer ``_id`` above the counter: MongoDB's first answer is the largest."""

    def extremes(self, storage: StorageType) -> bool:
        """Whether ``$min``/``$max`` of a ``$group`` stage give the smallest/largest value of ``storage`` fields."""
        return True

    def group_key(self, fields: list[Field]) -> Any:
        """The ``_id`` of a ``$group`` stage grouping by ``fields`` (``None``: one group).

        A document ``{"k0": ..., "k1": ...}`` whose values are the fields, an
        absent field read as null (as Ommi reads it); ``NotImplemented`` when
        the server cannot group so (the driver then aggregates in Python).
        """
        if not fields:
            return None
        return {f"k{i}": {"$ifNull": ["$" + field_path(f), None]} for i, f in enumerate(fields)}

    json_array_hints = True
    """:func:`json_hint` narrows ``has()`` and index steps too (``{"tags": {"$eq": x}}`` matches arrays holding x)."""

    def json_hint_key(self, key: str) -> bool:
        """Whether a JSON path key can be a component of a hint's dotted path (an empty one cannot)."""
        return key != ""

    def not_equal(self, path: str, value: Any) -> dict[str, Any]:
        """``f != v``: matches null and missing fields too (``value`` is not ``None``)."""
        return {path: {"$ne": value}}

    def conjunction(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        """The AND of several filters: one flat filter where that means the same (:func:`_merge_and`)."""
        return _merge_and(parts)

    def marked(self, marker: str, op: str, narrow: Mapping[str, Any] | None) -> dict[str, Any]:
        """Documents carrying the journal ``marker`` of entry ``op``, within ``narrow`` (an ``_id`` filter)."""
        # narrow holds only "_id" or "$or" (an id_filter), never a marker.
        return {**narrow, marker: op} if narrow else {marker: op}


MONGODB = ServerForms()
"""MongoDB's own forms."""


def _comparison(node: Comparison, forms: ServerForms) -> dict[str, Any]:
    path = field_path(node.field)
    op = node.op
    # Values are always wrapped in an operator ($eq rather than {path: v}), so
    # that no value is ever read as an operator document.
    if op is Op.IS_NULL:
        # Null or missing.
        return {path: {"$eq": None}}
    if op is Op.IS_NOT_NULL:
        return {path: {"$ne": None}}
    if op is Op.EQ:
        return {path: {"$eq": _encode(node.field, node.value)}}
    if op is Op.NE:
        return forms.not_equal(path, _encode(node.field, node.value))
    if op is Op.IN or op is Op.NOT_IN:
        values = [_encode(node.field, v) for v in node.value]
        return {path: {"$in" if op is Op.IN else "$nin": values}}
    if op in _OPERATORS:
        return {path: {_OPERATORS[op]: _encode(node.field, node.value)}}
    if op in FOLDED_TEXT_OPS:
        return {path: {"$regex": text_pattern(op, node.value), "$options": "i"}}
    return {path: {"$regex": text_pattern(op, node.value)}}


def _merge_and(parts: list[dict[str, Any]], *, logical: bool = True) -> dict[str, Any]:
    """AND filters as one flat filter where that means the same, else ``$and``.

    ``{"age": {"$gte": 30, "$lte": 40}, "active": {"$eq": True}}`` is MongoDB's
    own form of an AND (its query planner reads ``$and`` lists the same way;
    nx-27017 evaluates them about ten times slower). Operators on one field
    merge when they differ; a logical operator (``$or``) sits beside the fields
    when it is the only one of its name. Anything else keeps ``$and``.

    Args:
        logical: whether a logical operator may be merged; ``False`` keeps
            any ``$``-key inside ``$and``.
    """
    merged: dict[str, Any] = {}
    for part in parts:
        for key, condition in part.items():
            if not logical and key.startswith("$"):
                return {"$and": parts}
            if key not in merged:
                merged[key] = condition
                continue
            current = merged[key]
            mergeable = (
                not key.startswith("$")
                and isinstance(current, dict)
                and isinstance(condition, dict)
                and all(op.startswith("$") for op in (*current, *condition))
                and not set(current) & set(condition)
            )
            if not mergeable:
                return {"$and": parts}
            merged[key] = {**current, **condition}
    return merged


def to_filter(expr: Expr | None, forms: ServerForms = MONGODB) -> dict[str, Any]:
    """The ``find`` filter of a condition that :func:`is_translatable` accepts, in the server's ``forms``."""
    if expr is None:
        return {}
    if isinstance(expr, Comparison):
        return _comparison(expr, forms)
    if isinstance(expr, And):
        return forms.conjunction([to_filter(item, forms) for item in expr.items])
    if isinstance(expr, Or):
        return {"$or": [to_filter(item, forms) for item in expr.items]}
    raise TypeError(f"{expr!r} cannot be translated into a MongoDB filter")


def json_hint(expr: Expr, target: ModelSchema, forms: ServerForms = MONGODB) -> dict[str, Any] | None:
    """A filter matching every document where the JSON condition ``expr`` may hold (a superset), or ``None``.

    ``==``, the orderings and ``has`` of a value hold only where the value at
    the path (or an element of the array there) is of the operand's BSON kind
    and compares so; MongoDB's ``{"meta.a.0": {"$eq": v}}`` matches all of
    those (and more: array elements, keys ``"0"``), and compares numbers with
    numbers and strings with strings as Ommi does. ``!=`` and ``== None`` hold
    where the path is missing too: no narrowing.
    """
    if not isinstance(expr, (JsonComparison, JsonHas)) or expr.field.schema is not target:
        return None
    if not forms.json_array_hints and (isinstance(expr, JsonHas) or any(isinstance(s, int) for s in expr.path)):
        return None
    if not all(forms.json_hint_key(step) for step in expr.path if isinstance(step, str)):
        return None
    op = Op.EQ if isinstance(expr, JsonHas) else expr.op
    if op is not Op.EQ and op not in _OPERATORS:
        return None
    path = ".".join([field_path(expr.field), *(str(step) for step in expr.path)])
    return {path: {"$eq" if op is Op.EQ else _OPERATORS[op]: expr.value}}


# -- evaluation in Python --------------------------------------------------

Env = Mapping[int, Mapping[str, Any] | None]
"""Schema id -> the document of that model in this combination (None: no related row)."""


def stored_form(field: Field, value: Any) -> Any:
    """A canonical query value as it reads back once stored (datetimes lose sub-milliseconds)."""
    return decode_value(field.storage, encode_value(field.storage, value))


def evaluate(expr: Expr, env: Env) -> bool:
    """Whether ``expr`` holds for the documents in ``env``, with core's semantics (:mod:`ommi.query.evaluate`).

    Stored values are read back as canonical values and operands take the form
    they would have once stored, so the result is what the server would answer.
    """

    def value_of(field: Field) -> Any:
        document = env[id(field.schema)]
        return None if document is None else value_at(document, field)

    return holds(expr, value_of, stored_form)


def fields_of(expr: Expr | None) -> list[Field]:
    """Every field a condition reads."""
    if expr is None:
        return []
    if isinstance(expr, (And, Or)):
        return [f for item in expr.items for f in fields_of(item)]
    if isinstance(expr, Comparison):
        return [expr.field]
    if isinstance(expr, FieldComparison):
        return [expr.left, expr.right]
    if isinstance(expr, (JsonComparison, JsonHas)):
        return [expr.field]
    raise TypeError(f"unknown condition {expr!r}")  # pragma: no cover
