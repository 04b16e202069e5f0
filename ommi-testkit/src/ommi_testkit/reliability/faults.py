"""Fault injectors and resource probes for the workloads, per backend.

* :func:`postgresql_terminator`: an injector that terminates (``pg_terminate_backend``)
  the backends of the connections named by an ``application_name``, from an
  administrative connection of its own;
* :func:`postgresql_probe`: connections of a PostgreSQL driver's pool that
  are lent out or awaited (``driver.pool.stats()``);
* :class:`MongoPoolListener`: a PyMongo pool listener (give it to the driver
  as ``event_listeners=[listener]``) whose :meth:`~MongoPoolListener.probe`
  counts connections checked out and not yet checked in;
* :func:`reference_probe`: whether the reference driver's write lock is held.

The client libraries are imported only when one of these is used.
"""

from __future__ import annotations

from typing import Any

from ommi.drivers import Driver

from ommi_testkit.reliability.workloads import Injector, Probe

__all__ = ["MongoPoolListener", "postgresql_probe", "postgresql_terminator", "reference_probe"]


def postgresql_terminator(url: str, application_name: str, *, at_most: int = 3) -> tuple[Injector, Any]:
    """An injector terminating up to ``at_most`` random backends named ``application_name``.

    Returns:
        ``(inject, close)``: ``await inject()`` gives the number terminated;
        ``await close()`` closes the administrative connection.
    """
    import psycopg

    state: dict[str, Any] = {}

    async def connection() -> Any:
        conn = state.get("conn")
        if conn is None or conn.closed:
            conn = state["conn"] = await psycopg.AsyncConnection.connect(url, autocommit=True)
        return conn

    async def inject() -> int:
        conn = await connection()
        cursor = await conn.execute(
            # The timeout makes pg_terminate_backend wait until each backend has
            # exited, so no termination is still under way once inject() returns.
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM ("
            "  SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()"
            "  ORDER BY random() LIMIT %s) AS chosen",
            [application_name, at_most],
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def close() -> None:
        conn = state.pop("conn", None)
        if conn is not None:
            await conn.close()

    return inject, close


def postgresql_probe(driver: Driver) -> Probe:
    """Connections of a PostgreSQL driver's pool that are lent out, and requests waiting for one."""

    async def probe() -> dict[str, int]:
        stats = driver.pool.stats()  # type: ignore[attr-defined]
        # ommi-postgresql counts the connections tasks hold; psycopg_pool's own
        # figures also count connections still being reopened after a fault.
        lent = stats.get("connections_lent", int(stats.get("pool_size", 0)) - int(stats.get("pool_available", 0)))
        return {"lent": int(lent), "waiting": int(stats.get("requests_waiting", 0))}

    return probe


class MongoPoolListener:
    """Counts PyMongo connections checked out of the pool and not yet checked in.

    It implements PyMongo's ``ConnectionPoolListener`` interface by duck typing
    (PyMongo checks the methods, not the base class) so that importing this
    module never imports PyMongo.
    """

    def __init__(self) -> None:
        self.checked_out = 0

    def _base(self) -> Any:
        from pymongo import monitoring

        return monitoring.ConnectionPoolListener

    def as_listener(self) -> Any:
        """A ``pymongo.monitoring.ConnectionPoolListener`` forwarding to this counter."""
        counter = self

        class _Listener(self._base()):  # type: ignore[misc]
            def connection_checked_out(self, event: Any) -> None:
                counter.checked_out += 1

            def connection_checked_in(self, event: Any) -> None:
                counter.checked_out -= 1

            def pool_created(self, event: Any) -> None: ...
            def pool_ready(self, event: Any) -> None: ...
            def pool_cleared(self, event: Any) -> None: ...
            def pool_closed(self, event: Any) -> None: ...
            def connection_created(self, event: Any) -> None: ...
            def connection_ready(self, event: Any) -> None: ...
            def connection_closed(self, event: Any) -> None: ...
            def connection_check_out_started(self, event: Any) -> None: ...
            def connection_check_out_failed(self, event: Any) -> None: ...

        return _Listener()

    async def probe(self) -> dict[str, int]:
        return {"checked_out": self.checked_out}


def reference_probe(driver: Driver) -> Probe:
    """Whether the reference driver's write lock is still held (a transaction never ended)."""

    async def probe() -> dict[str, int]:
        lock = driver._store.lock  # type: ignore[attr-defined]
        return {"write_lock_held": int(lock is not None and lock.locked())}

    return probe
