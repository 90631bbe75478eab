"""``migrate``: bring the schema to head and (re)grant the runtime role, safely in parallel.

Runs as the owner role. A session-level advisory lock serialises concurrent runs (two
pods starting at once): the second waits, then finds nothing left to do. The runtime
role is created or its password updated, and given DML only: no DDL (it owns nothing)
and no UPDATE or DELETE on the audit, entries and transfers tables.
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

_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE ON accounts TO {role}",
    "GRANT SELECT, INSERT ON transfers, entries, audit_log TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON idempotency_keys TO {role}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, entries, transfers FROM {role}",
    "REVOKE DELETE, TRUNCATE ON accounts, idempotency_keys FROM {role}",
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
