"""A worker connects to PostgreSQL before it takes requests, and starts even when it cannot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.devstack.ports import free_port
from services.devstack.postgres import PostgresServer
from services.ml.store.schema import migrate
from tests.integration.ml.conftest import create_database, ml_env, settings_for
from tests.support.observe import wait_for
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration


def test_each_worker_connects_before_it_serves(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    """Both workers hold a connection although no request came (start() polls /livez,
    which touches no database): no client's request pays for the first connect."""
    create_database(own_postgres, "strata_ml_warm")
    env = ml_env(own_postgres, "strata_ml_warm")
    asyncio.run(migrate(settings_for(env)))
    service = ServiceProcess("ml", env, tmp_path, workers=2).start()

    def connections() -> int:
        return int(
            own_postgres.psql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = 'strata_ml_warm' AND application_name = 'strata-ml'"
            ).strip()
        )

    try:
        wait_for(lambda: connections() == 2, timeout=30, what="one connection per worker")
    finally:
        service.stop()


def test_a_worker_starts_unready_when_the_database_is_unreachable(tmp_path: Path) -> None:
    env = {
        "STRATA_ML_DATABASE_HOST": "127.0.0.1",
        "STRATA_ML_DATABASE_PORT": str(free_port()),  # nothing listens there
        "STRATA_ML_DATABASE_PASSWORD": "unused",
        "STRATA_ML_CONNECT_TIMEOUT": "1",
        "STRATA_ML_READINESS_TIMEOUT": "1",
        "STRATA_ML_LOG_LEVEL": "WARNING",
    }
    service = ServiceProcess("ml", env, tmp_path, workers=1).start()
    try:
        assert httpx.get(f"{service.base_url}/readyz", timeout=10).status_code == 503
        assert "store not reachable at start-up: " in service.log()
    finally:
        service.stop()
