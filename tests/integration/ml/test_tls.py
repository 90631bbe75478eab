"""ml over TLS to a real PostgreSQL (``ssl=on``) with a CA made by the test run.

verify-full with the right CA migrates and serves (SQLAlchemy's path and the asyncpg
connection beneath it: export), every connection encrypted; the wrong CA fails closed
(readiness 503, requests 503 problem+json, not one connection opened); and
``sslmode=require`` against a server without TLS fails rather than going on in plain text.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack.postgres import PostgresServer
from services.ml.store.schema import migrate
from tests.integration.ml.conftest import create_database, ml_env, settings_for
from tests.support.databases import tls_backends
from tests.support.process import ServiceProcess
from tests.support.testca import TestCa
from tests.support.unavailable import assert_store_unavailable

pytestmark = pytest.mark.integration


def tls_env(ca_file: str, mode: str = "verify-full") -> dict[str, str]:
    """The service's TLS variables."""
    return {"STRATA_ML_DATABASE_SSLMODE": mode, "STRATA_ML_DATABASE_SSLROOTCERT": ca_file}


@pytest.fixture(scope="module")
def tls_database(postgres_tls_server: PostgresServer, test_ca: TestCa) -> Iterator[str]:
    """An ml database on the TLS server, migrated over verify-full."""
    name = f"ml_tls_{uuid.uuid4().hex[:8]}"
    create_database(postgres_tls_server, name)
    env = ml_env(postgres_tls_server, name, **tls_env(test_ca.ca_file))
    asyncio.run(migrate(settings_for(env)))
    yield name
    postgres_tls_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _serve(env: dict[str, str], tmp: Path) -> ServiceProcess:
    return ServiceProcess("ml", {**env, "STRATA_ML_CONNECT_TIMEOUT": "2"}, tmp).start()


def _assert_store_unavailable(service: ServiceProcess, token: str) -> None:
    assert_store_unavailable(
        service.base_url,
        "postgres",
        ("PUT", f"/v1/collections/tls-{uuid.uuid4().hex[:8]}"),
        headers={"Authorization": f"Bearer {token}"},
    )


def test_verify_full_serves_with_every_connection_encrypted(
    postgres_tls_server: PostgresServer, tls_database: str, test_ca: TestCa, tmp_path, token
) -> None:
    env = ml_env(postgres_tls_server, tls_database, **tls_env(test_ca.ca_file))
    with (
        _serve(env, tmp_path) as service,
        httpx.Client(
            base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        assert client.get("/readyz").status_code == 200
        assert client.put("/v1/collections/tls").status_code == 201
        made = client.post("/v1/collections/tls/documents", json={"data": {"a": 1}})
        assert made.status_code == 201, made.text
        got = client.get(f"/v1/collections/tls/documents/{made.json()['id']}")
        assert got.status_code == 200
        exported = client.get("/v1/collections/tls/export")  # the raw asyncpg path
        assert exported.status_code == 200
        assert exported.text.count("\n") == 1
        total, encrypted = tls_backends(postgres_tls_server, tls_database, "ml")
        assert total > 0
        assert encrypted == total


def test_wrong_ca_fails_closed(
    postgres_tls_server: PostgresServer, tls_database: str, wrong_ca: TestCa, tmp_path, token
) -> None:
    env = ml_env(postgres_tls_server, tls_database, **tls_env(wrong_ca.ca_file))
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(migrate(settings_for(env)))
    with _serve(env, tmp_path) as service:
        _assert_store_unavailable(service, token)
        # Not one session reached the database: nothing fell back to plain text.
        assert tls_backends(postgres_tls_server, tls_database, "ml") == (0, 0)


def test_require_against_a_server_without_tls_fails(
    postgres_server: PostgresServer, ml_database: str, tmp_path, token
) -> None:
    env = ml_env(postgres_server, ml_database, STRATA_ML_DATABASE_SSLMODE="require")
    with _serve(env, tmp_path) as service:
        _assert_store_unavailable(service, token)
        assert tls_backends(postgres_server, ml_database, "ml") == (0, 0)
