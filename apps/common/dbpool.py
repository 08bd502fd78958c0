"""A cheap health check for the database pool's connections (project/settings.py)."""

import select

from psycopg_pool import ConnectionPool

_full_check = ConnectionPool.check_connection


def check_connection_if_server_spoke(connection) -> None:
    """Raise if the idle `connection` is dead. The server speaks to an idle connection
    only to say goodbye (or with a notice), so a socket with nothing to read is taken as
    alive at the cost of one poll(); one with something to read gets the full check."""
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    if readable:
        _full_check(connection)
