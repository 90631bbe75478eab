"""Connections PostgreSQL drops under a warm pool: never a 500 (the pool does not ping).

``pg_terminate_backend`` kills every pooled connection of a running service, as a restart
or a failover does. GET one document then retries once on a new connection (200); a
write answers 503 store-unavailable (problem+json) or succeeds, and the pool recovers by
itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack.postgres import PostgresServer
from services.ml.store.schema import migrate
from tests.integration.ml.conftest import create_database, ml_env, settings_for, slug
from tests.support.backends import terminate_all
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
APP = "strata-ml"


@pytest.fixture
def client(own_postgres: PostgresServer, tmp_path: Path, token: str) -> Iterator[httpx.Client]:
    """One worker (its pool is the one whose connections die), a pool of three."""
    create_database(own_postgres, "strata_ml_drop")
    env = ml_env(own_postgres, "strata_ml_drop", STRATA_ML_POOL_SIZE="3")
    asyncio.run(migrate(settings_for(env)))
    service = ServiceProcess("ml", env, tmp_path, workers=1).start()
    with httpx.Client(
        base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        yield http
    service.stop()


def test_reads_retry_once_and_writes_answer_503_or_succeed(
    own_postgres: PostgresServer, client: httpx.Client
) -> None:
    assert client.put("/v1/collections/drop").status_code == 201
    doc = client.post("/v1/collections/drop/documents", json={"data": {"a": 1}}).json()
    one = f"/v1/collections/drop/documents/{doc['id']}"
    for _ in range(6):  # a warm pool
        assert client.get(one).status_code == 200

    terminate_all(own_postgres, APP)
    for _ in range(4):
        read = client.get(one)
        assert read.status_code == 200, read.text
        assert read.json() == doc
        assert read.headers["etag"] == '"1"'
    assert slug(client.get("/v1/collections/drop/documents/nope")) == "document-not-found"
    assert slug(client.get("/v1/collections/gone/documents/nope")) == "collection-not-found"

    terminate_all(own_postgres, APP)
    statuses = []
    for i in range(4):
        write = client.post("/v1/collections/drop/documents", json={"data": {"i": i}})
        statuses.append(write.status_code)
        assert write.status_code in (201, 503), write.text
        if write.status_code == 503:
            assert slug(write) == "store-unavailable"
            assert write.headers["retry-after"]
    assert statuses[-1] == 201, statuses  # the pool renewed itself
    assert 'status="500"' not in client.get("/metrics").text
