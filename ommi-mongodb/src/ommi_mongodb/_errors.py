"""The one place where PyMongo's exceptions become :mod:`ommi.errors`.

Every call into PyMongo runs inside ``ommi.drivers.map_exceptions`` with the
map :func:`exceptions` builds for it, which picks the most specific Ommi class
and chains the original (``raise ... from exc``):

======================================================  ==========================
PyMongo                                                 Ommi
======================================================  ==========================
DuplicateKeyError, write errors with code 11000         IntegrityError
ServerSelectionTimeoutError, AutoReconnect,             errors.ConnectionError
ConnectionFailure (the server cannot be reached),
InvalidOperation of a client closed meanwhile
NetworkTimeout, WaitQueueTimeoutError,                  errors.TimeoutError
ExecutionTimeout (code 50)
IndexOptionsConflict / IndexKeySpecsConflict (85, 86)   SchemaMismatchError
pymongo ConfigurationError, InvalidURI                  ConfigurationError
bson InvalidDocument, InvalidStringData                 ValidationError
OverflowError (an int beyond BSON's 64 bits)            ValidationError
any other PyMongoError                                  OperationalError
======================================================  ==========================

PyMongo errors are told apart by the server's error codes where it gives them
(write errors and command failures), by class otherwise.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from bson.errors import BSONError, InvalidDocument, InvalidStringData
from ommi import errors
from ommi.drivers import ExceptionMap
from pymongo import errors as pm

__all__ = ["DUPLICATE_KEY", "exceptions", "is_duplicate_key"]

DUPLICATE_KEY = 11000
_DUPLICATE_CODES = frozenset({DUPLICATE_KEY, 11001, 12582})
_INDEX_CONFLICT_CODES = frozenset({85, 86})
_TIMEOUT_CODES = frozenset({50, 202, 262})


def _write_error_codes(exc: pm.PyMongoError) -> set[int]:
    details: Any = getattr(exc, "details", None)
    codes: set[int] = set()
    if isinstance(exc, pm.OperationFailure) and exc.code is not None:
        codes.add(exc.code)
    if isinstance(details, dict):
        for error in details.get("writeErrors", ()) or ():
            if isinstance(error, dict) and isinstance(error.get("code"), int):
                codes.add(error["code"])
    return codes


def is_duplicate_key(exc: BaseException) -> bool:
    """Whether ``exc`` reports a duplicate key (``_id`` or a unique index)."""
    return isinstance(exc, pm.PyMongoError) and bool(_write_error_codes(exc) & _DUPLICATE_CODES)


def _first_message(exc: pm.PyMongoError) -> str:
    details: Any = getattr(exc, "details", None)
    if isinstance(details, dict):
        for error in details.get("writeErrors", ()) or ():
            if isinstance(error, dict) and error.get("errmsg"):
                return str(error["errmsg"])
        if details.get("errmsg"):
            return str(details["errmsg"])
    text = str(exc)
    # PyMongo appends the whole server reply ("full error: {...}"): keep the message.
    return text.split(", full error:", 1)[0]


def _pymongo_error(exc: pm.PyMongoError, action: str, where: str) -> errors.OmmiError:
    """The Ommi exception for a PyMongo one: by the server's error codes first, then by class."""
    message = _first_message(exc)
    codes = _write_error_codes(exc)
    if codes & _DUPLICATE_CODES:
        return errors.IntegrityError(f"{action} on {where} failed: duplicate key ({message})")
    if isinstance(exc, (pm.ConfigurationError, pm.InvalidURI)):
        return errors.ConfigurationError(f"MongoDB settings for {where} are not usable: {message}")
    if isinstance(exc, (pm.NetworkTimeout, pm.WaitQueueTimeoutError, pm.ExecutionTimeout)) or codes & _TIMEOUT_CODES:
        return errors.TimeoutError(
            f"{action} on {where} timed out: {message}; raise the client timeouts "
            "(socketTimeoutMS, waitQueueTimeoutMS, maxPoolSize) if the server is just slow"
        )
    if isinstance(exc, pm.InvalidOperation) and "after close" in message:
        return errors.ConnectionError(f"{action} on {where}: the driver was closed while this ran ({message})")
    if isinstance(exc, pm.ConnectionFailure):
        return errors.ConnectionError(
            f"{action}: the MongoDB server at {where} cannot be reached ({message}); "
            "check that it runs and that the URL is right"
        )
    if codes & _INDEX_CONFLICT_CODES:
        return errors.SchemaMismatchError(f"{action} on {where}: an existing index conflicts: {message}")
    return errors.OperationalError(f"{action} on {where} failed: {message}")


@functools.lru_cache(maxsize=512)
def exceptions(action: str, where: str) -> ExceptionMap:
    """The exception map (for ``ommi.drivers.map_exceptions``) of one call into PyMongo.

    Cached: operations ask for the same few maps over and over, and a map
    built afresh for each call (a dict and four closures) would cost the hot
    path more than the old context manager did.

    Args:
        action: what was being done (``"insert into 'user'"``).
        where: the database, as safe to print (``mongodb://host:27017/app``).
    """

    def unstorable(exc: BaseException) -> errors.OmmiError:
        return errors.ValidationError(f"{action} on {where}: a value cannot be stored in a document: {exc}")

    def too_large(exc: BaseException) -> errors.OmmiError:
        return errors.ValidationError(
            f"{action} on {where}: a number is too large for MongoDB, whose integers have 64 bits ({exc})"
        )

    def unreadable(exc: BaseException) -> errors.OmmiError:
        return errors.OperationalError(f"{action} on {where}: a document could not be read: {exc}")

    def pymongo_error(exc: BaseException) -> errors.OmmiError:
        return _pymongo_error(cast("pm.PyMongoError", exc), action, where)

    return {
        InvalidDocument: unstorable,
        InvalidStringData: unstorable,
        OverflowError: too_large,
        BSONError: unreadable,
        pm.PyMongoError: pymongo_error,
    }
