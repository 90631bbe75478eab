"""PostgreSQL goes away: 503 store-unavailable quickly, /readyz 503, then recovery by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from services.devstack.postgres import PostgresServer
from services.ml.store.schema import migrate
from tests.integration.ml.conftest import create_database, ml_env, settings_for, slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
# Pool checkout (1 s) + connect (1 s) + margin for a loaded CI machine; never "hangs".
ANSWER_WITHIN = 10.0


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_database_outage_and_recovery(
    own_postgres: PostgresServer, tmp_path: Path, token: str
) -> None:
    create_database(own_postgres, "strata_ml_it")
    env = ml_env(
        own_postgres,
        "strata_ml_it",
        STRATA_ML_POOL_TIMEOUT="1",
        STRATA_ML_CONNECT_TIMEOUT="1",
        STRATA_ML_STATEMENT_TIMEOUT_MS="2000",
        STRATA_ML_READINESS_TIMEOUT="1",
    )
    asyncio.run(migrate(settings_for(env)))
    service = ServiceProcess("ml", env, tmp_path, workers=2).start()
    client = httpx.Client(
        base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    try:
        assert client.put("/v1/collections/outage").status_code == 201
        doc = client.post("/v1/collections/outage/documents", json={"data": {"a": 1}}).json()
        assert client.get("/readyz").status_code == 200

        own_postgres.stop(remove=False)
        for path in (
            "/v1/collections/outage",
            f"/v1/collections/outage/documents/{doc['id']}",
            "/v1/collections/outage/export",
        ):
            started = time.monotonic()
            response = client.get(path)
            assert time.monotonic() - started < ANSWER_WITHIN
            assert response.status_code == 503, response.text
            assert slug(response) == "store-unavailable"
            assert response.headers["retry-after"]
            assert "sql" not in response.text.lower()
        posted = client.post("/v1/collections/outage/documents", json={"data": {}})
        assert slug(posted) == "store-unavailable"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"] != "ok"
        assert client.get("/livez").status_code == 200

        own_postgres.restart_stopped()
        assert wait_for(lambda: client.get("/readyz").status_code == 200, 30)
        # Every worker's pool recovers (pre-ping drops the dead connections).
        for _ in range(6):
            with httpx.Client(
                base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}
            ) as fresh:
                again = fresh.get(f"/v1/collections/outage/documents/{doc['id']}")
                assert again.status_code == 200, again.text
                assert again.json()["data"] == {"a": 1}
    finally:
        client.close()
        service.stop()
