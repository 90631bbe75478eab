"""critical over TLS to a real PostgreSQL (``ssl=on``) with a CA made by the test run.

verify-full with the right CA migrates and serves, every connection encrypted; the wrong CA
fails closed (readiness 503, requests 503 problem+json, not one connection opened); and
``sslmode=require`` against a server without TLS fails rather than going on in plain text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.exc import OperationalError

from services.critical.migrate import migrate
from services.critical.settings import CriticalSettings
from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings, service_env
from tests.support.databases import tls_backends
from tests.support.process import ServiceProcess
from tests.support.testca import TestCa
from tests.support.unavailable import assert_store_unavailable

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]


def tls_env(ca_file: str, mode: str = "verify-full") -> dict[str, str]:
    """The service's TLS variables."""
    return {
        "STRATA_CRITICAL_DATABASE_SSLMODE": mode,
        "STRATA_CRITICAL_DATABASE_SSLROOTCERT": ca_file,
    }


@pytest.fixture(scope="module")
def tls_database(postgres_tls_server: PostgresServer, test_ca: TestCa) -> Iterator[str]:
    """A ledger database on the TLS server, migrated over verify-full."""
    name = f"crit_tls_{uuid.uuid4().hex[:8]}"
    create_database(postgres_tls_server, name)
    migrate(critical_settings(postgres_tls_server, name, **_tls_values(test_ca.ca_file)))
    yield name
    postgres_tls_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tls_values(ca_file: str, mode: str = "verify-full") -> dict[str, str]:
    return {"database_sslmode": mode, "database_sslrootcert": ca_file}


def _serve(settings: CriticalSettings, tmp: Path, extra: dict[str, str]) -> ServiceProcess:
    env = {**service_env(settings), "STRATA_CRITICAL_CONNECT_TIMEOUT": "2", **extra}
    return ServiceProcess("critical", env, tmp).start()


def _assert_store_unavailable(service: ServiceProcess, auth: Auth) -> None:
    assert_store_unavailable(
        service.base_url,
        "database",
        ("POST", "/v1/accounts"),
        headers=auth(),
        json={"owner": "tls", "currency": "EUR"},
    )


def test_verify_full_serves_with_every_connection_encrypted(
    postgres_tls_server: PostgresServer, tls_database: str, test_ca: TestCa, tmp_path, auth: Auth
) -> None:
    settings = critical_settings(postgres_tls_server, tls_database)
    with _serve(settings, tmp_path, tls_env(test_ca.ca_file)) as service:
        base = service.base_url
        assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
        created = requests.post(
            f"{base}/v1/accounts", json={"owner": "tls", "currency": "EUR"}, headers=auth()
        )
        assert created.status_code == 201, created.text
        read = requests.get(f"{base}/v1/accounts/{created.json()['id']}", headers=auth())
        assert read.status_code == 200
        total, encrypted = tls_backends(postgres_tls_server, tls_database, "critical")
        assert total > 0
        assert encrypted == total


def test_wrong_ca_fails_closed(
    postgres_tls_server: PostgresServer, tls_database: str, wrong_ca: TestCa, tmp_path, auth: Auth
) -> None:
    settings = critical_settings(postgres_tls_server, tls_database)
    with pytest.raises(OperationalError):
        migrate(
            critical_settings(postgres_tls_server, tls_database, **_tls_values(wrong_ca.ca_file))
        )
    with _serve(settings, tmp_path, tls_env(wrong_ca.ca_file)) as service:
        _assert_store_unavailable(service, auth)
        # Not one session reached the database: nothing fell back to plain text.
        assert tls_backends(postgres_tls_server, tls_database, "critical") == (0, 0)


def test_require_against_a_server_without_tls_fails(
    postgres_server: PostgresServer, critical_settings_migrated: CriticalSettings, tmp_path, auth
) -> None:
    env = {"STRATA_CRITICAL_DATABASE_SSLMODE": "require"}
    with _serve(critical_settings_migrated, tmp_path, env) as service:
        _assert_store_unavailable(service, auth)
        assert tls_backends(
            postgres_server, critical_settings_migrated.database_name, "critical"
        ) == (0, 0)
