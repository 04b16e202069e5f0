"""The one place where PyMongo's exceptions become :mod:`ommi.errors`.

Every call into PyMongo runs inside ``ommi.drivers.map_exceptions`` with the
map :func:`exceptions` builds for it, which picks the most specific Ommi class
and chains the original (``raise ... from exc``):

======================================================  ==========================
PyMongo                                                 Ommi
======================================================  ==========================
DuplicateKeyError, write errors with code 11000         IntegrityError
any error labelled TransientTransactionError            SerializationError
(a write conflict, a transaction aborted by the
server: rerun the whole transaction)
ServerSelectionTimeoutError, AutoReconnect,             errors.ConnectionError
ConnectionFailure (the server cannot be reached),       ("refused" when every server
InvalidOperation of a client closed meanwhile           refused the connection)
NetworkTimeout, WaitQueueTimeoutError,                  errors.TimeoutError
ExecutionTimeout (code 50)
IndexOptionsConflict / IndexKeySpecsConflict (85, 86)   SchemaMismatchError
pymongo ConfigurationError, InvalidURI                  ConfigurationError
bson InvalidDocument, InvalidStringData                 ValidationError
OverflowError (an int beyond BSON's 64 bits)            ValidationError
any other PyMongoError                                  OperationalError
======================================================  ==========================

Under the driver's ``statement_timeout`` (PyMongo's client-side timeout, see
:class:`~ommi_mongodb.MongoDBSettings`) every timeout PyMongo reports (code 50
MaxTimeMSExpired from the server, the client's own "would exceed the time
limit", a socket read past the deadline, a server selection that ran out of
time) becomes an ``errors.TimeoutError`` naming ``statement_timeout`` and its
value; the exception map of such a call is built with that value.

PyMongo errors are told apart by the server's error codes where it gives them
(write errors and command failures), by class otherwise. A
ServerSelectionTimeoutError carries nothing but its text, which lists each
server's last error (``host:port: [Errno 111] ...``): when every one of them
is a refused connection the message says so, naming each ``host:port``,
instead of calling it a timeout (see :func:`refused_addresses`).
"""

from __future__ import annotations

import errno
import functools
import re
from collections.abc import Sequence
from typing import Any, cast

from bson.errors import BSONError, InvalidDocument, InvalidStringData
from ommi import errors
from ommi.drivers import ExceptionMap
from pymongo import errors as pm

__all__ = ["DUPLICATE_KEY", "exceptions", "is_duplicate_key", "is_refusal", "refused", "refused_addresses"]

DUPLICATE_KEY = 11000
_DUPLICATE_CODES = frozenset({DUPLICATE_KEY, 11001, 12582})
_INDEX_CONFLICT_CODES = frozenset({85, 86})
_TIMEOUT_CODES = frozenset({50, 202, 262})


_REFUSED = re.compile(rf"\[Errno {errno.ECONNREFUSED}\]|\[WinError 10061\]|refused", re.IGNORECASE)
"""A connection refused, as PyMongo words a server's error: the OSError's text (errno, or Windows' words)."""

_SERVER_ERROR = re.compile(r"(?:^|,)(?P<address>[^\s,()]+:\d+): ")
"""Where one server's error starts in a server selection error: ``host:port: ``."""

_SELECTION_TIMEOUT = re.compile(r", Timeout: (?P<seconds>[\d.]+)s, Topology Description: ")


def is_refusal(error: object) -> bool:
    """Whether a server's error (an exception or its text) is a refused connection."""
    return error is not None and _REFUSED.search(str(error)) is not None


def refused_addresses(errors_by_server: Sequence[tuple[str, object]]) -> list[str]:
    """The ``host:port`` of every server when each of them refused the connection; else empty.

    Args:
        errors_by_server: each server's ``host:port`` and its last error
            (``None`` when it has none yet).
    """
    if not errors_by_server or not all(is_refusal(error) for _, error in errors_by_server):
        return []
    return [address for address, _ in errors_by_server]


def _selection_errors(exc: pm.ServerSelectionTimeoutError) -> tuple[list[tuple[str, str]], str | None]:
    """Each server's ``host:port`` and error in a server selection error's text, and its timeout in seconds."""
    text = str(exc)
    timeout = _SELECTION_TIMEOUT.search(text)
    head = text[: timeout.start()] if timeout else text.split(", Topology Description: ", 1)[0]
    starts = list(_SERVER_ERROR.finditer(head))
    found = [
        (start.group("address"), head[start.end() : following.start() if following else len(head)])
        for start, following in zip(starts, [*starts[1:], None], strict=True)
    ]
    return found, (timeout.group("seconds") if timeout else None)


def refused(action: str, where: str, addresses: Sequence[str]) -> errors.ConnectionError:
    """The error for servers that all refused the connection.

    Args:
        action: what was being done (``"connect"``).
        where: the driver's description (its URL without secrets).
        addresses: each server's ``host:port``.
    """
    several = len(addresses) > 1
    return errors.ConnectionError(
        f"{action}: the connection{'s' if several else ''} to {', '.join(addresses)} "
        f"{'were' if several else 'was'} refused, so the MongoDB server at {where} cannot be reached: "
        f"nothing listens on {'those ports' if several else 'that port'}, or a firewall rejects the connection; "
        "check that the server runs and that the URL's host and port are right"
    )


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


def _statement_timeout_error(
    exc: pm.PyMongoError, message: str, action: str, where: str, seconds: float
) -> errors.OmmiError | None:
    """The error for a PyMongo timeout under ``statement_timeout``; ``None`` when ``exc`` is no timeout."""
    if isinstance(exc, pm.ServerSelectionTimeoutError):
        servers, _ = _selection_errors(exc)
        addresses = refused_addresses(servers)
        if addresses:
            return refused(action, where, addresses)
        reasons = "; ".join(f"{address}: {error.strip()}" for address, error in servers) or message
        # Under PyMongo's client-side timeout, server selection waits at most the time left.
        return errors.TimeoutError(
            f"statement_timeout={seconds:g}s exceeded: {action} on {where} found no usable MongoDB server in "
            f"time: the server may be unreachable ({reasons}), or statement_timeout is too short for it"
        )
    codes = _write_error_codes(exc)
    if not (exc.timeout or codes & _TIMEOUT_CODES):
        return None
    return errors.TimeoutError(
        f"statement_timeout={seconds:g}s exceeded: {action} on {where} was stopped ({message}); raise "
        "statement_timeout (the driver setting, or db.transaction(statement_timeout=...)) if it is just slow"
    )


def _pymongo_error(
    exc: pm.PyMongoError, action: str, where: str, statement_timeout: float | None = None
) -> errors.OmmiError:
    """The Ommi exception for a PyMongo one: by the server's error codes first, then by class."""
    message = _first_message(exc)
    codes = _write_error_codes(exc)
    if codes & _DUPLICATE_CODES:
        return errors.IntegrityError(f"{action} on {where} failed: duplicate key ({message})")
    if exc.has_error_label("TransientTransactionError"):
        return errors.SerializationError(
            f"{action} on {where}: the transaction conflicted with another or was aborted by the server "
            f"({message}; error label TransientTransactionError); rerun the whole transaction "
            "(db.with_transaction does)"
        )
    if isinstance(exc, (pm.ConfigurationError, pm.InvalidURI)):
        return errors.ConfigurationError(f"MongoDB settings for {where} are not usable: {message}")
    if statement_timeout is not None:
        timed_out = _statement_timeout_error(exc, message, action, where, statement_timeout)
        if timed_out is not None:
            return timed_out
    if isinstance(exc, (pm.NetworkTimeout, pm.WaitQueueTimeoutError, pm.ExecutionTimeout)) or codes & _TIMEOUT_CODES:
        return errors.TimeoutError(
            f"{action} on {where} timed out: {message}; raise the client timeouts "
            "(socketTimeoutMS, waitQueueTimeoutMS, maxPoolSize) if the server is just slow"
        )
    if isinstance(exc, pm.InvalidOperation) and "after close" in message:
        return errors.ConnectionError(f"{action} on {where}: the driver was closed while this ran ({message})")
    if isinstance(exc, pm.ServerSelectionTimeoutError):
        servers, seconds = _selection_errors(exc)
        addresses = refused_addresses(servers)
        if addresses:
            return refused(action, where, addresses)
        reasons = "; ".join(f"{address}: {error.strip()}" for address, error in servers) or message
        waited = f" after {seconds} s" if seconds else ""
        return errors.ConnectionError(
            f"{action}: the MongoDB server at {where} cannot be reached: server selection timed out{waited} "
            f"({reasons}); check that it runs and that the URL is right, or raise serverSelectionTimeoutMS "
            "if it is just slow to answer"
        )
    if isinstance(exc, pm.ConnectionFailure):
        return errors.ConnectionError(
            f"{action}: the MongoDB server at {where} cannot be reached ({message}); "
            "check that it runs and that the URL is right"
        )
    if codes & _INDEX_CONFLICT_CODES:
        return errors.SchemaMismatchError(f"{action} on {where}: an existing index conflicts: {message}")
    return errors.OperationalError(f"{action} on {where} failed: {message}")


@functools.lru_cache(maxsize=512)
def exceptions(action: str, where: str, statement_timeout: float | None = None) -> ExceptionMap:
    """The exception map (for ``ommi.drivers.map_exceptions``) of one call into PyMongo.

    Cached: operations ask for the same few maps over and over, and a map
    built afresh for each call (a dict and four closures) would cost the hot
    path more than the old context manager did.

    Args:
        action: what was being done (``"insert into 'user'"``).
        where: the database, as safe to print (``mongodb://host:27017/app``).
        statement_timeout: the seconds the call runs bounded by (PyMongo's
            client-side timeout), named by the ``TimeoutError`` of its expiry;
            ``None``: not bounded by it.
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
        return _pymongo_error(cast("pm.PyMongoError", exc), action, where, statement_timeout)

    return {
        InvalidDocument: unstorable,
        InvalidStringData: unstorable,
        OverflowError: too_large,
        BSONError: unreadable,
        pm.PyMongoError: pymongo_error,
    }
