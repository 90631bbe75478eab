"""``migrate``: bring the schema to head and (re)grant the runtime role, safely in parallel.

Runs as the owner role. A session-level advisory lock serialises concurrent runs (two
pods starting at once): the second waits, then finds nothing left to do. The runtime
role is created or its password updated, and given column-level DML only: no DDL (it
owns nothing), no DELETE anywhere, no UPDATE on the audit, entries and transfers tables,
and on accounts only status, version and updated_at (never the balance).
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from psycopg2 import sql
from sqlalchemy import Connection, text

from services.critical.db import make_engine
from services.critical.settings import CriticalSettings

logger = logging.getLogger(__name__)

#: Arbitrary but fixed: every migrate run of this service contends for the same lock.
ADVISORY_LOCK_KEY = 0x5752A7A1

_TABLES = "accounts, transfers, entries, audit_log, idempotency_keys"
TRANSFER_FUNCTION = "ledger_transfer(text, text, text, uuid, uuid, bigint, text, text, text)"
# Revoked and regranted in one transaction on every run, so an older, wider grant (table
# UPDATE on accounts before revision 0002) cannot survive. Column lists keep timestamps,
# identities and balances to the database: balances change only through the entries
# trigger (SECURITY DEFINER, owned by the owner role), never by the runtime role's UPDATE.
_GRANTS = (
    f"REVOKE ALL ON {_TABLES} FROM {{role}}",
    f"GRANT SELECT ON {_TABLES} TO {{role}}",
    "GRANT INSERT (id, owner, currency, kind) ON accounts TO {role}",
    "GRANT UPDATE (status, version, updated_at) ON accounts TO {role}",
    "GRANT INSERT (id, from_account, to_account, amount, currency, reference, kind) "
    "ON transfers TO {role}",
    "GRANT INSERT (account_id, transfer_id, amount, balance_after) ON entries TO {role}",
    "GRANT INSERT (actor, action, resource, request_id, details) ON audit_log TO {role}",
    "GRANT INSERT (subject, key, request_hash, status_code, response) "
    "ON idempotency_keys TO {role}",
    "GRANT UPDATE (status_code, response) ON idempotency_keys TO {role}",
    # The one-call transfer (migration 0003): SECURITY INVOKER, so EXECUTE adds no power.
    f"GRANT EXECUTE ON FUNCTION {TRANSFER_FUNCTION} TO {{role}}",
    "GRANT USAGE ON SCHEMA public TO {role}",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "REVOKE CREATE ON SCHEMA public FROM {role}",
)


def alembic_config(connection: Connection) -> Config:
    """An Alembic config pointing at this package's migrations, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


def ensure_runtime_role(connection: Connection, settings: CriticalSettings) -> None:
    """Create the runtime role or update its password, then grant exactly what it needs."""
    role = settings.database_user
    password = settings.database_password.get_secret_value()
    if role == settings.migration_user:
        raise SystemExit("runtime and migration roles must differ")
    raw = connection.connection.dbapi_connection
    assert raw is not None
    exists = connection.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).scalar()
    # Only a superuser may even restate NOSUPERUSER, so ALTER touches login and password only.
    template = (
        "ALTER ROLE {role} LOGIN"
        if exists
        else "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
    )
    if password:
        template += " PASSWORD {pw}"
    rendered = sql.SQL(template).format(role=sql.Identifier(role), pw=sql.Literal(password))
    cursor = raw.cursor()
    try:
        cursor.execute(rendered)
        cursor.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {db} TO {role}").format(
                db=sql.Identifier(settings.database_name), role=sql.Identifier(role)
            )
        )
        for grant in _GRANTS:
            cursor.execute(sql.SQL(grant).format(role=sql.Identifier(role)))
    finally:
        cursor.close()


def migrate(settings: CriticalSettings) -> None:
    """Upgrade to head under the advisory lock, then set up the runtime role."""
    engine = make_engine(settings, migration=True)
    try:
        with engine.connect() as connection:
            connection.execute(text("SET statement_timeout = 0"))
            connection.execute(text("SET lock_timeout = 0"))
            logger.info("waiting for the migration lock")
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            connection.commit()
            try:
                command.upgrade(alembic_config(connection), "head")
                connection.commit()
                ensure_runtime_role(connection, settings)
                connection.commit()
            finally:
                connection.rollback()  # a failed step leaves the transaction aborted
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                connection.commit()
        logger.info("migrations at head; runtime role %s granted", settings.database_user)
    finally:
        engine.dispose()
