"""MongoDB transactions' errors and levels, as the driver classifies them (no replica set needed to check these).

A real write conflict needs a replica set; the wire-protocol test server is
standalone, so what is checked here is the translation of the errors PyMongo
raises (built as PyMongo builds them from a server reply) and the refusals.
"""

from __future__ import annotations

import pytest
from ommi import Ommi
from ommi.drivers import map_exceptions
from ommi.errors import ConnectionError as OmmiConnectionError
from ommi.errors import SerializationError, UnsupportedFeature
from ommi_mongodb import MongoDBDriver
from ommi_mongodb._errors import exceptions
from ommi_mongodb.driver import _READ_CONCERNS
from pymongo import errors as pm


def _translate(exc: BaseException) -> BaseException:
    with pytest.raises(Exception) as caught, map_exceptions(exceptions("update 'x'", "mongodb://127.0.0.1/db")):
        raise exc
    return caught.value


def test_transient_transaction_error_is_a_serialization_error() -> None:
    """A write conflict (code 112) labelled TransientTransactionError: SerializationError, rerun the transaction."""
    conflict = pm.OperationFailure(
        "WriteConflict error",
        code=112,
        details={"errmsg": "WriteConflict", "errorLabels": ["TransientTransactionError"]},
    )
    translated = _translate(conflict)
    assert isinstance(translated, SerializationError)
    assert "TransientTransactionError" in str(translated) and translated.__cause__ is conflict


def test_unknown_commit_result_is_never_a_serialization_error() -> None:
    """A network error at commit (UnknownTransactionCommitResult): the commit may have happened: not rerun."""
    lost = pm.AutoReconnect("connection closed")
    lost._add_error_label("UnknownTransactionCommitResult")
    translated = _translate(lost)
    assert isinstance(translated, OmmiConnectionError)
    assert not isinstance(translated, SerializationError)


def test_isolation_levels_map_to_read_concerns_and_serializable_is_not_offered() -> None:
    assert MongoDBDriver.supported_isolation_levels == {"read_committed", "repeatable_read"}
    assert _READ_CONCERNS == {"read_committed": "majority", "repeatable_read": "snapshot"}
    assert not MongoDBDriver.capabilities.savepoints


async def test_standalone_server_refuses_isolation_and_savepoints_with_the_reason(mongodb_url: str) -> None:
    """On the standalone test server transactions are absent, so any level is refused naming why."""
    async with Ommi(MongoDBDriver.connect(mongodb_url)) as db:
        if db.driver.capabilities.transactions:
            pytest.skip("this MongoDB server is a replica set member: transactions exist")
        assert not db.driver.capabilities.isolation_levels
        with pytest.raises(UnsupportedFeature, match="standalone"):
            db.transaction(isolation="read_committed")
        assert "no savepoints" in (db.driver.absent_reason("savepoints") or "")
