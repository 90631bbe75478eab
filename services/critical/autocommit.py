"""One statement as its own transaction on a pooled connection, without extra round trips."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.engine import Connection


@contextlib.contextmanager
def driver_autocommit(conn: Connection) -> Iterator[None]:
    """psycopg2's own autocommit flag on ``conn`` for the block: no BEGIN, no COMMIT.

    Set and cleared client-side on the driver's connection. SQLAlchemy's
    ``isolation_level="AUTOCOMMIT"`` resets the level at check-in, which makes psycopg2 send
    ``SET default_transaction_isolation TO DEFAULT``: a second round trip per call.
    """
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.autocommit = True
    try:
        yield
    finally:
        if not raw.closed:  # an error may have invalidated (closed) it
            raw.autocommit = False
