"""One way for every driver to turn its client's exceptions into :mod:`ommi.errors` ones.

A driver describes its translation once, as an ordered mapping from the
client's exception classes to either an :class:`~ommi.errors.OmmiError`
subclass or a function that builds the Ommi exception (or returns ``None`` to
let the original through), and wraps each call into the client in
:func:`map_exceptions`::

    exceptions = {
        psycopg.errors.UniqueViolation: IntegrityError,
        psycopg.Error: lambda exc: translate(exc, where),
    }
    with map_exceptions(exceptions):
        await cursor.execute(sql, params)

The first entry whose class matches wins, so list the most specific classes
first. The translation is raised ``from`` the original, and an Ommi exception
raised inside the block passes through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeAlias, TypeVar, cast

from ommi.errors import OmmiError

__all__ = ["ExceptionMap", "map_exceptions", "translated"]

E = TypeVar("E", bound=BaseException)

Translation: TypeAlias = type[OmmiError] | Callable[[E], OmmiError | None]
"""An Ommi exception class, or a function building the Ommi exception from the client's (``None``: not ours)."""

ExceptionMap: TypeAlias = Mapping[type[BaseException], Translation[BaseException]]
"""Client exception class -> Ommi exception class, or a function building the Ommi exception (``None``: not ours).

:func:`map_exceptions` also takes a mapping keyed by the client's own base
class (``dict[type[sqlite3.Error], ...]``): its key type is a type variable,
since a ``Mapping`` is invariant in its key.
"""


def translated(exc: BaseException, mapping: Mapping[type[E], Translation[E]]) -> OmmiError | None:
    """The Ommi exception ``mapping`` gives for ``exc``, or ``None`` when none of its entries claims it."""
    if isinstance(exc, OmmiError):
        return None
    for kind, translation in mapping.items():
        if isinstance(exc, kind):
            if isinstance(translation, type) and issubclass(translation, OmmiError):
                return translation(str(exc) or type(exc).__name__)
            return cast("Callable[[E], OmmiError | None]", translation)(exc)
    return None


@contextmanager
def map_exceptions(mapping: Mapping[type[E], Translation[E]]) -> Iterator[None]:
    """Re-raise exceptions of the block that ``mapping`` translates, chained to the original.

    ``mapping`` may be keyed by any exception classes (``dict[type[sqlite3.Error], ...]``
    included); a function it holds receives an exception of its key's class.
    """
    try:
        yield
    except Exception as exc:
        mapped = translated(exc, mapping)
        if mapped is None:
            raise
        raise mapped from exc
