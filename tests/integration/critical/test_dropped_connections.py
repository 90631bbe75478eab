"""Connections PostgreSQL drops under a warm pool: never a 500 (the pool does not ping).

``pg_terminate_backend`` kills every pooled connection of a running service, as a restart
or a failover does. A read then retries once on a new connection (200); a write answers
503 store-unavailable (problem+json) or succeeds, and the pool recovers by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from services.critical.migrate import migrate
from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings, service_env
from tests.support.backends import terminate_all
from tests.support.process import ServiceProcess

APP = "strata-critical"
STORE_UNAVAILABLE = "urn:strata:problem:store-unavailable"


@pytest.fixture
def server(own_postgres: PostgresServer, tmp_path: Path) -> Iterator[ServiceProcess]:
    """One worker (its pool is the one whose connections die), a pool of three."""
    create_database(own_postgres, "strata_critical")
    settings = critical_settings(own_postgres, "strata_critical")
    migrate(settings)
    env = {**service_env(settings), "STRATA_CRITICAL_POOL_SIZE": "3"}
    process = ServiceProcess("critical", env, tmp_path, workers=1).start()
    yield process
    process.stop()


def test_reads_retry_once_and_writes_answer_503_or_succeed(
    own_postgres: PostgresServer, server: ServiceProcess, auth
) -> None:
    base = server.base_url
    created = requests.post(
        f"{base}/v1/accounts", json={"owner": "o", "currency": "EUR"}, headers=auth()
    )
    assert created.status_code == 201
    account = f"{base}/v1/accounts/{created.json()['id']}"
    for _ in range(6):  # a warm pool
        assert requests.get(account, headers=auth()).status_code == 200

    terminate_all(own_postgres, APP)
    for _ in range(4):
        read = requests.get(account, headers=auth())
        assert read.status_code == 200, read.text
        assert read.json()["id"] == created.json()["id"]
    missing = requests.get(f"{base}/v1/accounts/{uuid.uuid4()}", headers=auth())
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:strata:problem:account-not-found"

    terminate_all(own_postgres, APP)
    statuses = []
    for i in range(4):
        write = requests.post(
            f"{base}/v1/accounts", json={"owner": f"w{i}", "currency": "EUR"}, headers=auth()
        )
        statuses.append(write.status_code)
        assert write.status_code in (201, 503), write.text
        if write.status_code == 503:
            assert write.headers["Content-Type"] == "application/problem+json"
            assert write.json()["type"] == STORE_UNAVAILABLE
            assert write.headers["Retry-After"]
    assert statuses[-1] == 201, statuses  # the pool renewed itself
    metrics = requests.get(f"{base}/metrics").text
    assert 'status="500"' not in metrics
