"""Ommi's ConnectionError and TimeoutError are also the builtins of the same name."""

from __future__ import annotations

import builtins
import pickle

import pytest
from ommi import errors


@pytest.mark.parametrize(
    ("ommi_class", "builtin"),
    [
        (errors.TimeoutError, builtins.TimeoutError),
        (errors.ConnectionError, builtins.ConnectionError),
        (errors.DatabaseClosedError, builtins.ConnectionError),
    ],
)
def test_except_the_builtin_catches_ommis(ommi_class: type[errors.OmmiError], builtin: type[Exception]) -> None:
    with pytest.raises(builtin) as info:
        raise ommi_class("the pool is exhausted")
    assert isinstance(info.value, errors.DatabaseError)
    assert str(info.value) == "the pool is exhausted"  # not OSError's "[Errno ...]" form
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ommi_class and str(copy) == "the pool is exhausted"


def test_two_arguments_keep_exceptions_form() -> None:
    error = errors.TimeoutError("waited", 5)
    assert str(error) == "('waited', 5)"
    assert error.args == ("waited", 5)
