"""Result objects and actions."""

from __future__ import annotations

import logging

import pytest
from ommi import DBQueryResult, DBResult
from ommi.results import DBAction


async def test_action_success_and_failure_results() -> None:
    """Awaiting an action captures the value or the exception; or_raise/or_use unwrap."""

    async def ok() -> int:
        return 3

    async def boom() -> int:
        raise ValueError("no")

    match await DBAction(ok):
        case DBResult.DBSuccess(value):
            assert value == 3
        case _:
            pytest.fail("expected a success")
    failure = await DBAction(boom)
    assert isinstance(failure, DBResult.DBFailure)
    assert isinstance(failure.exception, ValueError)
    assert await DBAction(boom).or_use(7) == 7
    with pytest.raises(ValueError, match="no"):
        await DBAction(boom).or_raise()
    query_failure = await DBAction(boom, query=True)
    assert isinstance(query_failure, DBQueryResult.DBQueryFailure)
    assert query_failure.or_use(None) is None


async def test_action_is_callable_and_reruns() -> None:
    """`.one()` and `.one` are the same action; each await runs it again."""
    calls = []

    async def run() -> int:
        calls.append(1)
        return len(calls)

    action = DBAction(run, query=True)
    assert action() is action
    assert (await action).or_raise() == 1
    assert await action.or_raise() == 2


async def test_library_is_silent_without_logging_configuration(capfd: pytest.CaptureFixture[str]) -> None:
    """Ommi prints nothing unless the application configures logging."""
    from ommi._logging import get_logger

    logging.getLogger("ommi").setLevel(logging.NOTSET)
    log = get_logger("ommi.core.test")
    log.debug("test.debug", detail=1)
    log.warning("test.warning", detail=2)
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_logging_reaches_stdlib_when_configured(caplog: pytest.LogCaptureFixture) -> None:
    """With stdlib logging configured, events arrive as key-value records under ommi.*."""
    from ommi._logging import get_logger

    with caplog.at_level(logging.DEBUG, logger="ommi"):
        get_logger("ommi.core.test").debug("query.execute.complete", rows=3)
    assert any("query.execute.complete" in r.getMessage() and "rows=3" in r.getMessage() for r in caplog.records)


async def test_concurrent_first_operations_open_the_driver_once() -> None:
    """Two tasks starting at once on an unopened Ommi open its driver a single time."""
    import asyncio

    from ommi import Ommi
    from ommi_testkit import ReferenceDriver

    class CountingDriver(ReferenceDriver):
        opened = 0

        async def open(self) -> None:
            type(self).opened += 1
            await asyncio.sleep(0.01)
            await super().open()

    db = Ommi(CountingDriver())
    await asyncio.gather(db.open(), db.open(), db.open())
    assert CountingDriver.opened == 1
    await db.close()


async def test_related_conditions_need_the_capability() -> None:
    """A query with a join on a driver without related_conditions fails before any I/O, naming it."""
    from dataclasses import dataclass
    from typing import Annotated

    from ommi import ModelCollection, Ommi, ReferenceTo, UnsupportedFeature, ommi_model
    from ommi.drivers import Capabilities
    from ommi_testkit import ReferenceDriver

    local = ModelCollection("capability_check")

    @ommi_model(collection=local)
    @dataclass
    class Shelf:
        label: str
        id: int | None = None

    @ommi_model(collection=local)
    @dataclass
    class Box:
        shelf_id: Annotated[int, ReferenceTo(Shelf.id)]
        id: int | None = None

    class NoJoins(ReferenceDriver):
        capabilities = Capabilities(related_conditions=False)

    async with Ommi(NoJoins(), allow_implicit_model_setup=False) as db:
        result = await db.find(Box, Shelf.label == "top").count
        assert isinstance(result.exception, UnsupportedFeature)
        assert "related_conditions" in str(result.exception)
