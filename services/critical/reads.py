"""Hot reads outside any transaction: one statement, one round trip, retried once.

The pool does not ping a connection at checkout (that was a ``SELECT 1`` per request);
a read that meets a connection PostgreSQL dropped (a restart, a failover,
``pg_terminate_backend``) runs once more on a fresh one, which is safe because it changes
nothing. If that fails too, the error goes on to the app's handler: 503
``store-unavailable``. A single SELECT needs no BEGIN/COMMIT around it: its snapshot is
consistent by itself, so it runs in autocommit.

Measured (issue 15): the ORM path made four round trips per GET (``SELECT 1``, BEGIN,
SELECT, COMMIT) and spent half its time in ``Session.get``; this makes one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from services.critical.autocommit import driver_autocommit
from services.critical.db import ENGINE
from services.critical.errors import AccountNotFoundError
from services.critical.models import Account
from services.critical.schemas import AccountOut

T = TypeVar("T")
logger = logging.getLogger(__name__)

_accounts = Account.__table__
_TABLE: str = Account.__tablename__
# Only customer accounts are addressable; the columns are exactly the API's fields. Sent
# as the driver's SQL (no statement compilation or type processing per request): the
# table's own column names, checked at import, and the id cast by PostgreSQL.
_COLUMNS = ", ".join(_accounts.c[name].name for name in AccountOut.model_fields)
_ACCOUNT = (
    f"SELECT {_COLUMNS} FROM {_TABLE} "  # noqa: S608 - names from the model
    "WHERE id = CAST(%(id)s AS uuid) AND kind = 'customer'"
)


def run_read(work: Callable[[Connection], T]) -> T:
    """``work`` on a pooled connection in autocommit, once more if the connection was dead."""
    engine: Engine = current_app.extensions[ENGINE]
    try:
        return _on_connection(engine, work)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        logger.warning("read retried on a fresh connection: the pooled one was dropped")
    return _on_connection(engine, work)


def _on_connection(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn, driver_autocommit(conn):
        return work(conn)


def account(conn: Connection, account_id: uuid.UUID) -> dict[str, Any]:
    """A customer account as the API shows it (AccountNotFoundError otherwise)."""
    row = conn.exec_driver_sql(_ACCOUNT, {"id": str(account_id)}).mappings().first()
    if row is None:
        raise AccountNotFoundError(account_id)
    return AccountOut.model_validate(row).model_dump(mode="json")
