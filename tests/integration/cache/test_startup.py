"""A worker connects to Redis before it takes requests, and starts even when it cannot.

Without this, the worker that readiness did not ping opened its first connection for a
client's request; in a rollout on a starved node that connect outlasted the connect
timeout and a PUT answered 503 (the cluster upgrade proof, twice).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from services.devstack.ports import free_port
from services.devstack.redis import RedisServer
from tests.integration.cache.conftest import cache_env
from tests.support.observe import wait_for
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration


def test_each_worker_connects_before_it_serves(redis_server: RedisServer, tmp_path: Path) -> None:
    """Both workers hold a connection although no request came (start() polls /livez,
    which touches no store): no client's request pays for the first connect."""
    watcher = redis.Redis(port=redis_server.port, password=redis_server.password)
    mine = int(watcher.client_id())

    def connections() -> int:
        return sum(1 for c in watcher.client_list() if int(c["id"]) != mine)

    before = connections()
    service = ServiceProcess("cache", cache_env(redis_server), tmp_path, workers=2).start()
    try:
        wait_for(lambda: connections() == before + 2, timeout=30, what="one connection per worker")
    finally:
        service.stop()
        watcher.close()


def test_a_worker_starts_unready_when_redis_is_unreachable(tmp_path: Path) -> None:
    env = {
        "STRATA_CACHE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens
        "STRATA_CACHE_REDIS_CONNECT_TIMEOUT": "1",
        "STRATA_CACHE_LOG_LEVEL": "WARNING",
    }
    service = ServiceProcess("cache", env, tmp_path, workers=1).start()
    try:
        assert httpx.get(f"{service.base_url}/readyz", timeout=10).status_code == 503
        assert "store not reachable at start-up: ConnectionError" in service.log()
    finally:
        service.stop()
