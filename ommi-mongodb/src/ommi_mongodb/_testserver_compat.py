"""What the driver does differently for nx-27017, the MongoDB wire-protocol server its tests run against.

No MongoDB can be installed on this project's machines, so the tests run
against nx-27017 (a MongoDB wire-protocol server from PyPI). It answers a few
filters wrongly that MongoDB answers right. Where a filter with the same
meaning on MongoDB exists that nx-27017 also answers right, the driver uses it
there, and only there: :class:`NX27017Forms` overrides those choices of
:class:`~ommi_mongodb._filters.ServerForms` (MongoDB's forms).

=======================================  ====================================  ===================================
what                                     MongoDB (``ServerForms``)             nx-27017 (``NX27017Forms``)
=======================================  ====================================  ===================================
``f != v``                               ``{f: {"$ne": v}}``                   ``{f: {"$nin": [v]}}``: it answers
                                                                               ``$ne`` wrongly for date-times
AND with an ``$or`` among its parts      the ``$or`` beside the other fields   everything in ``$and``: it ignores
                                                                               the fields after a top-level ``$or``
documents with a journal mark, within    one flat filter                       ``{"$and": [ids, mark]}``: it drops
an ``_id`` filter (clean-up)                                                   the mark beside a composite key's
                                                                               ``$or``
largest integer ``_id`` above the        one query (the first answer is the    up to 64 queries: it sorts integer
counter (first key generation)           largest)                              ``_id`` values as text
an update expression that is not         an update pipeline                    refused (``UnsupportedFeature``,
``field ± value`` / ``field * value``                                          naming the server): it has no
(``ommi_mongodb._expressions``)                                                pipeline updates
the candidates of a JSON ``has()`` or    ``{"tags": {"$eq": x}}``,             no narrowing (every document is a
index-path condition (``_filters.        ``{"meta.l.1": {"$eq": x}}``          candidate): it matches neither an
json_hint``)                                                                   array's element nor an index step
a JSON path key that is not a plain      the key as a component of the path   no narrowing: it reads brackets in a
identifier (``json_hint``)               (``meta.x[0]``)                       path (``x[0]`` is not the key)
``group_by`` (``ommi_mongodb.            ``_id: {"k0": {"$ifNull": ["$f",     ``_id: "$f"`` for one field; the
_aggregate``)                             null]}, ...}``                       documents aggregated in Python
                                                                               (Operations.aggregate's default)
                                                                               for several: it groups by literal
                                                                               text there
``Min``/``Max`` in an aggregate, or a     ``$min`` / ``$max``; a float key     the documents aggregated in Python:
``float`` group field                                                          its ``$min``/``$max`` are wrong,
                                                                               float keys rounded
a migration converting a field's type    one ``update_many`` with a pipeline   each document rewritten in Python
(``ChangeType``, ``ommi_mongodb.         (``$toString``, ``$toDecimal``...)    (``converts_in_python``): it has no
_migrate``)                                                                    pipeline updates
=======================================  ====================================  ===================================

The choice is made once per opened client (:func:`forms_for`): from the
``testserver_compat`` setting when it is given, else from the server's
``buildInfo`` reply, where nx-27017 reports ``process: nx_27017`` (MongoDB's
reply names no process, and carries ``gitVersion``, ``versionArray`` and
``modules``, which nx-27017's lacks). A real server never runs any of this code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ommi.models.schema import Field
from ommi.models.types import StorageType

from ommi_mongodb._filters import MONGODB, ServerForms, _merge_and
from ommi_mongodb._values import field_path

__all__ = ["NX_27017", "NX27017Forms", "converts_in_python", "forms_for", "is_nx_27017"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

NX_27017 = "nx_27017"
"""What nx-27017 reports as ``process`` in its ``buildInfo`` reply."""


class NX27017Forms(ServerForms):
    """Filters worded so that nx-27017 answers them as MongoDB does (see the module's table)."""

    __slots__ = ()

    name = "nx-27017"

    update_pipelines = False
    # It refuses an update given as a pipeline ("'list' object has no attribute
    # 'keys'"): an update expression needing one is refused before any I/O
    # (UnsupportedFeature); $inc and $mul it runs.

    def extremes(self, storage: StorageType) -> bool:
        # Its $min/$max are wrong: of int64 values it gave the smaller as the $max, of a float one
        # rounded to 15 digits, of date-times one of them as JSON text ('{"$date": ...}').
        return False

    def group_key(self, fields: list[Field]) -> Any:
        # It evaluates no field path inside a document _id ({"_id": {"k0": "$title"}} groups every
        # document under the literal "$title"), nor an expression ({"$ifNull": ...}): it groups by
        # one plain path only (which reads an absent field as null), and rounds a float key to 15
        # digits. Otherwise the driver aggregates in Python (the default of Operations.aggregate).
        # (The pipeline never sums int64 values with a plain $sum, on which nx-27017 hangs when the
        # sum overflows: integer sums go through $toDecimal everywhere.)
        if len(fields) > 1 or any(f.storage is StorageType.FLOAT for f in fields):
            return NotImplemented
        return "$" + field_path(fields[0]) if fields else None

    largest_key_rounds = 64
    # nx-27017 sorts integer _id values as text (1, 10, 2), so its first answer
    # to "the largest _id above n" is only some larger one: ask again until
    # there is none.

    json_array_hints = False
    # It answers {"tags": {"$eq": "x"}} with no document whose tags array holds "x", and
    # {"meta.l.1": ...} with none whose l[1] matches: a hint would drop matches.

    def json_hint_key(self, key: str) -> bool:
        # It reads brackets in a dotted path ("meta.x[0]" found nothing stored under the key "x[0]"):
        # only plain identifiers go into its hints.
        return _IDENTIFIER.fullmatch(key) is not None

    def not_equal(self, path: str, value: Any) -> dict[str, Any]:
        return {path: {"$nin": [value]}}

    def conjunction(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        # A flat filter still, for its speed there; but a logical operator stays
        # inside $and ({"$or": [...], "shade": {"$lt": "red"}} matched a document
        # whose shade is null).
        return _merge_and(parts, logical=False)

    def marked(self, marker: str, op: str, narrow: Mapping[str, Any] | None) -> dict[str, Any]:
        # An explicit $and: nx-27017 drops the marker from a delete whose flat
        # filter also holds the $or of a composite key's id_filter.
        return {"$and": [dict(narrow), {marker: op}]} if narrow else {marker: op}


NX27017 = NX27017Forms()


def is_nx_27017(build_info: Mapping[str, Any]) -> bool:
    """Whether a ``buildInfo`` reply is nx-27017's."""
    process = build_info.get("process")
    return isinstance(process, str) and process.replace("-", "_").lower() == NX_27017


def forms_for(setting: bool | None, build_info: Mapping[str, Any]) -> ServerForms:
    """The forms the driver uses with a server, decided once when it opens.

    Args:
        setting: the ``testserver_compat`` setting: ``True`` or ``False`` decide;
            ``None`` asks :func:`is_nx_27017` about ``build_info``.
        build_info: the server's ``buildInfo`` reply (empty when it gave none).
    """
    compat = is_nx_27017(build_info) if setting is None else setting
    return NX27017 if compat else MONGODB


def converts_in_python(forms: ServerForms) -> bool:
    """Whether a migration converts stored values document by document in Python rather than on the server.

    nx-27017 refuses an update given as an aggregation pipeline ("'list' object
    has no attribute 'keys'"), which MongoDB (4.2 and later) runs; MongoDB
    converts with one ``update_many`` and never takes this path (except for
    the conversions it has no operator for, see ``ommi_mongodb._migrate``).
    """
    return isinstance(forms, NX27017Forms)
