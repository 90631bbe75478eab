"""Hot reads outside any transaction: one statement, one round trip, retried once.

The pool does not ping a connection at checkout (that was a ``SELECT 1`` per request);
a read that meets a connection PostgreSQL dropped (a restart, a failover,
``pg_terminate_backend``) runs once more on a fresh one, which is safe because it changes
nothing. If that fails too, the error goes on to the app's handler: 503
``store-unavailable``. A single SELECT needs no BEGIN/COMMIT around it: its snapshot is
consistent by itself, so it runs in autocommit.

Measured (issue 15): the ORM path made four round trips per GET (``SELECT 1``, BEGIN,
SELECT, COMMIT) and spent half its time in ``Session.get``; this makes one. The statement
then runs on the pooled connection's own psycopg2 cursor (:func:`fetch_one`): SQLAlchemy's
execution context and result objects were a third of a read's CPU, for one row read by key.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, current_app
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import DBAPIError

from services.critical.autocommit import driver_autocommit
from services.critical.db import ENGINE
from services.critical.errors import AccountNotFoundError
from services.critical.models import Account
from services.critical.schemas import AccountOut

T = TypeVar("T")
logger = logging.getLogger(__name__)
#: ``app.extensions`` flag: reads may bypass SQLAlchemy's execution (see :func:`use_driver_cursor`).
DRIVER_CURSOR = "strata.reads.driver_cursor"

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


def use_driver_cursor(app: Flask, enabled: bool) -> None:
    """Let :func:`fetch_one` run on the driver's cursor in ``app`` (or not).

    Off when SQL spans are traced: they come from SQLAlchemy's cursor events, which the
    driver's cursor does not fire.
    """
    app.extensions[DRIVER_CURSOR] = enabled


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


def fetch_one(
    conn: Connection, sql: str, params: Mapping[str, Any]
) -> RowMapping | dict[str, Any] | None:
    """The first row of the driver-level ``sql`` as a mapping of column names, or None.

    Runs on the psycopg2 cursor of ``conn``'s pooled connection. A driver error is left to
    SQLAlchemy as if it had run the statement: after a dropped connection the statement
    runs again through ``conn``, where it fails again at once and SQLAlchemy does what it
    always did (invalidates the pool, raises with ``connection_invalidated``, which
    :func:`run_read` retries); any other error is raised as SQLAlchemy's
    :class:`~sqlalchemy.exc.DBAPIError`, which the app maps like any other store error
    (not run again: a statement timeout must not be waited for twice). Cursor events do
    not fire here; :func:`use_driver_cursor` turns this off where they are needed.
    """
    if not current_app.extensions.get(DRIVER_CURSOR, False):
        return conn.exec_driver_sql(sql, params).mappings().first()
    raw = conn.connection.dbapi_connection
    assert raw is not None
    dialect = conn.dialect
    cursor = None
    try:
        cursor = raw.cursor()
        cursor.execute(sql, params)
        row = cursor.fetchone()
        names = [column[0] for column in cursor.description]
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, raw, None):
            return conn.exec_driver_sql(sql, params).mappings().first()
        raise DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=conn.engine.hide_parameters,
            dialect=dialect,
        ) from exc
    except Exception:
        raise
    except BaseException:
        # Interrupted mid-statement (worker exit): never hand the connection back to the
        # pool in that state, as SQLAlchemy would not.
        conn.invalidate()
        raise
    finally:
        if cursor is not None:
            cursor.close()
    return None if row is None else dict(zip(names, row, strict=True))


def account(conn: Connection, account_id: uuid.UUID) -> dict[str, Any]:
    """A customer account as the API shows it (AccountNotFoundError otherwise)."""
    row = fetch_one(conn, _ACCOUNT, {"id": str(account_id)})
    if row is None:
        raise AccountNotFoundError(account_id)
    return AccountOut.model_validate(row).model_dump(mode="json")
