"""Probes, OpenAPI, and metrics summed across the two worker processes."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.cache.conftest import ClientFactory
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def per_worker_requests(directory: Path, tmp: Path, route: str) -> dict[str, float]:
    """``http_requests_total`` for ``route`` as each worker's own file counts it."""
    counts: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        alone = tmp / path.stem
        alone.mkdir()
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(alone))  # type: ignore[no-untyped-call]
        counts[path.stem] = sum(
            s.value
            for m in registry.collect()
            for s in m.samples
            if s.name == "http_requests_total" and s.labels.get("route") == route
        )
    return counts


def test_livez_and_readyz(client: httpx.Client) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"redis": "ok"}}


def test_openapi_lists_every_endpoint(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) == {
        "/v1/kv/{key}", "/v1/kv:mget", "/v1/kv:mset",
        "/v1/counters/{key}:incr", "/v1/counters/{key}",
        "/livez", "/readyz", "/metrics", "/openapi.json",
    }  # fmt: skip
    assert set(paths["/v1/kv/{key}"]) == {"get", "put", "delete"}
    assert "503" in paths["/v1/kv/{key}"]["get"]["responses"]


def test_metrics_add_up_across_both_workers(
    new_client: ClientFactory, cache_service: ServiceProcess, key: str, tmp_path: Path
) -> None:
    route = "/v1/counters/<key:path>"
    labels = {"route": route, "method": "GET", "status": "404"}
    before = sample(new_client().get("/metrics").text, "http_requests_total", **labels)
    requests, threads = 120, 12

    def read(_: int) -> None:
        # A new connection per request, so the kernel spreads them over both workers.
        with new_client() as client:
            for _ in range(requests // threads):
                response = client.get(f"/v1/counters/{key}", headers={"Connection": "close"})
                assert response.status_code == 404

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(read, range(threads)))

    directory = Path(cache_service.env["PROMETHEUS_MULTIPROC_DIR"])
    per_worker = per_worker_requests(directory, tmp_path, route)
    assert len([v for v in per_worker.values() if v > 0]) == 2, per_worker
    for _ in range(6):  # whichever worker answers the scrape, it reports the sum of both
        text = new_client(token=None).get("/metrics").text
        total = sample(text, "http_requests_total", **labels)
        assert total - before == requests
    assert sample(text, "redis_command_duration_seconds_count", command="counter_get") >= requests
    assert sample(text, "strata_build_info", service="cache") == 1
