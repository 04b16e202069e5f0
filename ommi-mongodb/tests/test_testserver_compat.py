"""MongoDB's filter forms, nx-27017's, and how the driver chooses between them once per client.

The first tests need no server: they pin the forms each side writes. The last
ones open the driver on the test server and read the filters it sends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from ommi import ModelCollection, Ommi, ommi_model
from ommi.models import get_schema
from ommi.query.ast import And, Comparison, Op, Or
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._filters import MONGODB, to_filter
from ommi_mongodb._testserver_compat import NX27017, forms_for, is_nx_27017
from pymongo import monitoring

models = ModelCollection("ommi_mongodb_test_compat")

OpenDb = Callable[..., Awaitable[Ommi]]


@ommi_model(collection=models, name="mdb_shade")
@dataclass
class Shade:
    """A model with a text field and an int field to filter on."""

    colour: str
    depth: int
    id: int | None = None


NX_BUILD_INFO = {"ok": 1, "host": "vm", "version": "7.0.0", "process": "nx_27017", "pid": 1}
"""Part of what nx-27017 0.8.1 answers to ``buildInfo``."""

MONGODB_BUILD_INFO = {
    "ok": 1.0,
    "version": "7.0.14",
    "gitVersion": "ce59cfc6a3c5e5c067dca0d30697edd68d4f5188",
    "modules": [],
    "allocator": "tcmalloc",
    "versionArray": [7, 0, 14, 0],
    "bits": 64,
}
"""Part of what MongoDB answers to ``buildInfo`` (no ``process``: mongod does not name itself there)."""


def _comparison(name: str, op: Op, value: Any) -> Comparison:
    schema = get_schema(Shade)
    return Comparison(schema.by_name[name], op, value)


# -- the forms, no server ---------------------------------------------------------


def test_not_equal_is_ne_on_mongodb_and_nin_on_nx_27017() -> None:
    """``!=`` is MongoDB's ``$ne``; nx-27017, which answers ``$ne`` wrongly for date-times, gets ``$nin``."""
    condition = _comparison("depth", Op.NE, 3)
    assert to_filter(condition, MONGODB) == {"depth": {"$ne": 3}}
    assert to_filter(condition, NX27017) == {"depth": {"$nin": [3]}}


def test_an_or_beside_fields_is_flat_on_mongodb_and_in_and_on_nx_27017() -> None:
    """An AND holding an OR is one flat filter on MongoDB; nx-27017 ignores fields after a top-level ``$or``."""
    condition = And(
        (
            Or((_comparison("depth", Op.EQ, 1), _comparison("depth", Op.EQ, 2))),
            _comparison("colour", Op.LT, "red"),
        )
    )
    either = {"$or": [{"depth": {"$eq": 1}}, {"depth": {"$eq": 2}}]}
    assert to_filter(condition, MONGODB) == {**either, "colour": {"$lt": "red"}}
    assert to_filter(condition, NX27017) == {"$and": [either, {"colour": {"$lt": "red"}}]}


def test_plain_ands_are_flat_on_both() -> None:
    """Conditions on distinct fields (or distinct operators on one) merge into one flat filter everywhere."""
    condition = And((_comparison("depth", Op.GE, 1), _comparison("depth", Op.LE, 9), _comparison("colour", Op.EQ, "x")))
    flat = {"depth": {"$gte": 1, "$lte": 9}, "colour": {"$eq": "x"}}
    assert to_filter(condition, MONGODB) == flat
    assert to_filter(condition, NX27017) == flat


def test_two_ors_keep_and_on_both() -> None:
    """Two ORs cannot share one filter: both keep ``$and``."""
    first = Or((_comparison("depth", Op.EQ, 1), _comparison("depth", Op.EQ, 2)))
    second = Or((_comparison("colour", Op.EQ, "a"), _comparison("colour", Op.EQ, "b")))
    for forms in (MONGODB, NX27017):
        assert list(to_filter(And((first, second)), forms)) == ["$and"]


def test_journal_marks_are_flat_on_mongodb_and_in_and_on_nx_27017() -> None:
    """The clean-up filter of a journal mark within an ``_id`` filter: flat, or ``$and`` for nx-27017."""
    narrow = {"$or": [{"_id.a": 1, "_id.b": 2}]}
    assert MONGODB.marked("%ommi_new", "op1", narrow) == {"$or": narrow["$or"], "%ommi_new": "op1"}
    assert NX27017.marked("%ommi_new", "op1", narrow) == {"$and": [narrow, {"%ommi_new": "op1"}]}
    for forms in (MONGODB, NX27017):
        assert forms.marked("%ommi_old", "op2", None) == {"%ommi_old": "op2"}


def test_largest_key_is_one_query_on_mongodb() -> None:
    """MongoDB's first answer to "the largest integer ``_id``" is the largest; nx-27017 sorts them as text."""
    assert MONGODB.largest_key_rounds == 1
    assert NX27017.largest_key_rounds > 1


def test_the_server_is_told_apart_by_its_build_info() -> None:
    """nx-27017 names itself as ``process`` in ``buildInfo``; MongoDB's reply (or none at all) means MongoDB."""
    assert is_nx_27017(NX_BUILD_INFO)
    assert is_nx_27017({"process": "nx-27017"})
    assert not is_nx_27017(MONGODB_BUILD_INFO)
    assert not is_nx_27017({"process": "mongod"})
    assert not is_nx_27017({})
    assert forms_for(None, NX_BUILD_INFO) is NX27017
    assert forms_for(None, MONGODB_BUILD_INFO) is MONGODB
    assert forms_for(None, {}) is MONGODB


def test_the_setting_overrides_the_build_info() -> None:
    """``testserver_compat=True`` / ``False`` decide whatever the server says."""
    assert forms_for(True, MONGODB_BUILD_INFO) is NX27017
    assert forms_for(False, NX_BUILD_INFO) is MONGODB


# -- on the test server -------------------------------------------------------------


class _Finds(monitoring.CommandListener):
    """Records the filters of the ``find`` commands a client sends."""

    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.filters.append(dict(event.command.get("filter", {})))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def _filter_sent(db: Ommi, finds: _Finds) -> dict[str, Any]:
    finds.filters.clear()
    await db.find(Shade.depth != 3).count.or_raise()
    await db.find(Shade.depth != 3).all.or_raise()
    assert finds.filters, "a find was sent"
    return finds.filters[-1]


async def test_the_driver_picks_the_forms_from_the_server(open_db: OpenDb, mongodb_server: Any) -> None:
    """Opened without the setting, the driver uses nx-27017's forms exactly when the server is nx-27017."""
    finds = _Finds()
    db = await open_db(models, event_listeners=[finds])
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    expected = NX27017 if mongodb_server.is_nx_27017 else MONGODB
    assert driver._opening().forms is expected
    sent = await _filter_sent(db, finds)
    assert sent == ({"depth": {"$nin": [3]}} if mongodb_server.is_nx_27017 else {"depth": {"$ne": 3}})


@pytest.mark.parametrize("compat", [True, False])
async def test_the_setting_decides_the_forms_sent(open_db: OpenDb, compat: bool) -> None:
    """``testserver_compat`` chooses the forms of every filter the client sends, on any server."""
    finds = _Finds()
    db = await open_db(models, event_listeners=[finds], testserver_compat=compat)
    driver = db.driver
    assert isinstance(driver, MongoDBDriver)
    assert driver._opening().forms is (NX27017 if compat else MONGODB)
    sent = await _filter_sent(db, finds)
    assert sent == ({"depth": {"$nin": [3]}} if compat else {"depth": {"$ne": 3}})
