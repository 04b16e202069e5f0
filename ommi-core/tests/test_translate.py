"""``ommi.drivers.map_exceptions``: the one exception-translation helper drivers share."""

from __future__ import annotations

import pytest
from ommi import errors
from ommi.drivers import map_exceptions


class ClientError(Exception):
    pass


class ClientLocked(ClientError):
    pass


MAPPING = {
    ClientLocked: errors.TimeoutError,
    ClientError: lambda exc: None if "ignore" in str(exc) else errors.OperationalError(f"client said: {exc}"),
}


def test_most_specific_entry_first_and_chained() -> None:
    original = ClientLocked("busy")
    with pytest.raises(errors.TimeoutError, match="busy") as info, map_exceptions(MAPPING):
        raise original
    assert info.value.__cause__ is original


def test_a_function_builds_the_error() -> None:
    with pytest.raises(errors.OperationalError, match="client said: boom"), map_exceptions(MAPPING):
        raise ClientError("boom")


def test_unclaimed_exceptions_pass_through() -> None:
    with pytest.raises(ClientError, match="ignore me"), map_exceptions(MAPPING):
        raise ClientError("ignore me")
    with pytest.raises(KeyError), map_exceptions(MAPPING):
        raise KeyError("x")


def test_ommi_errors_pass_untouched() -> None:
    mapping = {Exception: errors.OperationalError}
    raised = errors.IntegrityError("dup")
    with pytest.raises(errors.IntegrityError) as info, map_exceptions(mapping):
        raise raised
    assert info.value is raised
