"""A cheap health check for the database pool's connections (project/settings.py)."""

import select

from psycopg_pool import ConnectionPool

_full_check = ConnectionPool.check_connection


def check_connection_if_server_spoke(connection) -> None:
    """Raise if the idle `connection` is dead. The server speaks to an idle connection
    only to say goodbye (or with a notice), so a socket with nothing to read is taken as
    alive at the cost of one poll(); one with something to read gets the full check.

    A dead connection found at a checkout also has the pool check all its other idle
    connections, with this same check, before the checkout tries again: after a restart
    of PostgreSQL every one of them is dead. A checkout pauses 0.5 s after each failed
    check but the first (AttemptWithBackoff, project/settings.py), so one that met them
    one by one, four or so, ran out of its 1.5 s timeout, and the first request after a
    quick restart got a 503. Now it meets one, and the pool replaces the rest at once."""
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    if not readable:
        return
    try:
        _full_check(connection)
    except Exception:
        # psycopg_pool sets `_pool` while the connection is out of the pool; it is None
        # in `pool.check()` itself, which must not start another one.
        pool = getattr(connection, "_pool", None)
        if pool is not None:
            pool.check()
        raise
