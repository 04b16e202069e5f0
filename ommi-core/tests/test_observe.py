"""Query events and the query recorder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import pytest
from ommi import LazyLoadTheRelated, ModelCollection, Ommi, ReferenceTo, ommi_model
from ommi.testing import record_queries
from ommi_testkit import ReferenceDriver

observed = ModelCollection("test_observe")


@ommi_model(collection=observed)
@dataclass
class Writer:
    name: str
    id: int | None = None


@ommi_model(collection=observed)
@dataclass
class Note:
    text: str
    writer_id: Annotated[int, ReferenceTo(Writer.id)]
    id: int | None = None
    writer: LazyLoadTheRelated[Writer]


async def test_recorder_counts_operations_and_catches_n_plus_one() -> None:
    """record_queries() sees each operation; a lazy-relation loop shows up as one select per item."""
    async with Ommi(ReferenceDriver.connect(), allow_implicit_model_setup=False) as db:
        await db.use_models(observed)
        writers = await db.add(Writer("a"), Writer("b"), Writer("c")).or_raise()
        await db.add(*(Note(f"n{i}", w.id) for i, w in enumerate(writers))).or_raise()
        with record_queries() as q:
            notes = await (await db.find(Note).all.or_raise()).to_list()
            for note in notes:
                await note.writer
        assert q.count == 1 + len(notes)
        assert [e.operation for e in q.of(model="Writer")] == ["select"] * 3
        assert q.of("select", "Note")[0].rows == 3
        with record_queries() as q:
            assert await db.find(Note.text == "n1").update(text="x").or_raise() == 1
            await db.find(Writer.id == 999).one.or_use(None)
        assert [(e.operation, e.rows) for e in q.events] == [("update", 1), ("select", 0)]


async def test_query_events_are_logged_at_debug_without_values(caplog: pytest.LogCaptureFixture) -> None:
    """query.execute.complete carries driver, model, operation, rows and duration, never values."""
    async with Ommi(ReferenceDriver.connect(), allow_implicit_model_setup=False) as db:
        await db.use_models(observed)
        with caplog.at_level(logging.DEBUG, logger="ommi"):
            await db.add(Writer("secret-value")).or_raise()
    messages = [r.getMessage() for r in caplog.records if "query.execute" in r.getMessage()]
    assert messages
    assert "driver='reference'" in messages[0]
    assert "model='Writer'" in messages[0]
    assert "operation='insert'" in messages[0]
    assert "duration_ms=" in messages[0]
    assert all("secret-value" not in r.getMessage() for r in caplog.records)
