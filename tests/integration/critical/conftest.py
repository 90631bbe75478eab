"""The critical service against a real PostgreSQL: in-process (Flask client) and under gunicorn.

The ledger is migrated once per session into a template database; each test module gets
its own clone of it (tests/support/databases.py), and the app, engines and gunicorn of a
module use that clone only. A module's tests still make their own accounts: tests inside
a module run in any order (pytest-randomly).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.critical.app import create_app
from services.critical.db import ENGINE, SESSIONS
from services.critical.migrate import migrate
from services.critical.settings import CriticalSettings
from services.devstack.postgres import PostgresServer
from tests.support.databases import drop_database, module_database
from tests.support.process import ServiceProcess

OWNER_PASSWORD = "owner-test-password"
APP_PASSWORD = "app-test-password"
ALL = ("accounts:read", "accounts:write", "transfers:write", "ledger:admin")
TEMPLATE = "strata_critical_template"


def critical_settings(pg: PostgresServer, database: str, **overrides: Any) -> CriticalSettings:
    """Settings pointing at ``database`` on ``pg``."""
    values: dict[str, Any] = {
        "environment": "development",
        "database_host": "127.0.0.1",
        "database_port": pg.port,
        "database_name": database,
        "database_password": APP_PASSWORD,
        "migration_password": OWNER_PASSWORD,
        "workers": 2,
        **overrides,
    }
    return CriticalSettings(**values)


def create_database(pg: PostgresServer, database: str) -> None:
    """An owner role (as the chart's PostgreSQL makes it) and an empty database it owns."""
    exists = pg.psql("SELECT 1 FROM pg_roles WHERE rolname = 'strata_owner'").strip()
    if not exists:
        pg.psql(f"CREATE ROLE strata_owner LOGIN CREATEROLE PASSWORD '{OWNER_PASSWORD}'")
    pg.psql(f"CREATE DATABASE {database} OWNER strata_owner")


def service_env(settings: CriticalSettings) -> dict[str, str]:
    """The environment that gives a server process these settings."""
    return {
        "STRATA_CRITICAL_DATABASE_HOST": settings.database_host,
        "STRATA_CRITICAL_DATABASE_PORT": str(settings.database_port),
        "STRATA_CRITICAL_DATABASE_NAME": settings.database_name,
        "STRATA_CRITICAL_DATABASE_PASSWORD": APP_PASSWORD,
        "STRATA_CRITICAL_MIGRATION_PASSWORD": OWNER_PASSWORD,
    }


@pytest.fixture(scope="session")
def critical_template(postgres_server: PostgresServer) -> Iterator[str]:
    """The ledger database migrated once per session: the template of every module's own.

    Named per session, so that sessions sharing one server (``make mutation``) never meet.
    """
    name = f"{TEMPLATE}_{uuid.uuid4().hex[:8]}"
    create_database(postgres_server, name)
    migrate(critical_settings(postgres_server, name))  # disposes its engine: no one stays
    yield name
    drop_database(postgres_server, name)


@pytest.fixture(scope="module")
def critical_settings_migrated(
    postgres_server: PostgresServer, critical_template: str, request: pytest.FixtureRequest
) -> Iterator[CriticalSettings]:
    """This module's own migrated ledger database (a clone of the template), dropped after."""
    with module_database(
        postgres_server, critical_template, request.module, prefix="crit", owner="strata_owner"
    ) as database:
        # The clone has the tables, rows and grants. Of the database's own ACL, which a
        # clone does not copy, migrate grants only CONNECT, which PUBLIC holds by default.
        yield critical_settings(postgres_server, database)


@pytest.fixture(scope="module")
def app(critical_settings_migrated: CriticalSettings) -> Iterator[Flask]:
    """The app, in process, on the runtime role."""
    application = create_app(critical_settings_migrated)
    yield application
    application.extensions["strata.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client (a fresh one per test)."""
    return app.test_client()


@contextmanager
def sql_statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements ``app``'s engine runs inside the block, in order, each with its
    whitespace collapsed to single spaces."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = app.extensions[ENGINE]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def ledger_session(app: Flask) -> Iterator[Session]:
    """A session from the app's own factory, for calling ``services.critical.ledger`` directly.

    For what no single HTTP request can set up: several writes in one transaction (so they
    share ``now()``), or a session that read a row before another request changed it.
    """
    with app.extensions[SESSIONS]() as session:
        yield session


@pytest.fixture(scope="module")
def owner_engine(critical_settings_migrated: CriticalSettings) -> Iterator[Engine]:
    """The owner role's engine, for reading the ledger behind the API's back."""
    engine = create_engine(critical_settings_migrated.url(migration=True))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def runtime_engine(critical_settings_migrated: CriticalSettings) -> Iterator[Engine]:
    """The runtime role's engine: what the service itself (or whoever holds it) may do."""
    engine = create_engine(critical_settings_migrated.url())
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def gunicorn(
    critical_settings_migrated: CriticalSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The service under gunicorn with two workers, on this module's database."""
    server = ServiceProcess(
        "critical", service_env(critical_settings_migrated), tmp_path_factory.mktemp("gunicorn")
    ).start()
    yield server
    server.stop()


@pytest.fixture
def auth(make_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Headers with a token carrying ``scopes`` (all scopes by default)."""

    def headers(*scopes: str, subject: str = "tester", **extra: str) -> dict[str, str]:
        token = make_token("critical", *(scopes or ALL), subject=subject)
        return {"Authorization": f"Bearer {token}", **extra}

    return headers


@pytest.fixture
def account(
    client: FlaskClient, auth: Callable[..., dict[str, str]]
) -> Callable[..., dict[str, Any]]:
    """Open an account, optionally funded by a deposit: ``account(balance=100, currency="EUR")``."""

    def make(balance: int = 0, currency: str = "EUR", owner: str | None = None) -> dict[str, Any]:
        created = client.post(
            "/v1/accounts",
            json={"owner": owner or f"owner-{uuid.uuid4().hex[:8]}", "currency": currency},
            headers=auth(),
        )
        assert created.status_code == 201, created.json
        body: dict[str, Any] = created.json  # type: ignore[assignment]
        if balance:
            funded = client.post(
                f"/v1/accounts/{body['id']}/deposits",
                json={"amount": balance, "reference": "seed"},
                headers=auth(),
            )
            assert funded.status_code == 201, funded.json
            body = client.get(f"/v1/accounts/{body['id']}", headers=auth()).json  # type: ignore[assignment]
        return body

    return make


def ledger_counts(engine: Engine) -> dict[str, int]:
    """Row counts of every ledger table (to prove a rejected request wrote nothing)."""
    with engine.connect() as conn:
        return {
            table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("accounts", "transfers", "entries", "idempotency_keys", "audit_log")
        }


@pytest.fixture
def counts(owner_engine: Engine) -> Callable[[], dict[str, int]]:
    """Snapshot the row counts of the ledger tables."""
    return lambda: ledger_counts(owner_engine)
