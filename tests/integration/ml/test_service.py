"""What every service has: metrics across workers, request ids, problems, OpenAPI."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration.ml.conftest import ClientFactory, slug

pytestmark = pytest.mark.integration


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_across_workers(new_client: ClientFactory, collection: str) -> None:
    scrape = new_client(token=None)
    route = "/v1/collections/<name:str>"
    before = metric(
        scrape.get("/metrics").text,
        "http_requests_total",
        route=route,
        method="GET",
        status="200",
        service="ml",
    )
    for _ in range(30):
        with new_client() as fresh:  # new connections, so both workers take some
            assert fresh.get(f"/v1/collections/{collection}").status_code == 200
    text = scrape.get("/metrics").text
    after = metric(text, "http_requests_total", route=route, method="GET", status="200")
    assert after - before == 30
    assert metric(text, "strata_build_info", service="ml") == 1
    assert "http_request_duration_seconds_bucket" in text
    assert metric(text, "strata_db_pool_connections_max", service="ml") >= 10  # 2 x 5


def test_document_counters(
    client: httpx.Client, new_client: ClientFactory, collection: str
) -> None:
    scrape = new_client(token=None)
    text = scrape.get("/metrics").text
    ingested = metric(text, "strata_ml_documents_ingested_total", service="ml")
    exported = metric(text, "strata_ml_documents_exported_total", service="ml")
    client.post(f"/v1/collections/{collection}/documents:bulk", json=[{"a": 1}] * 7)
    assert len(client.get(f"/v1/collections/{collection}/export").content.splitlines()) == 7
    text = scrape.get("/metrics").text
    assert metric(text, "strata_ml_documents_ingested_total", service="ml") - ingested == 7
    assert metric(text, "strata_ml_documents_exported_total", service="ml") - exported == 7


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    echoed = client.get("/v1/collections", headers={"X-Request-ID": "job-42.step-7"})
    assert echoed.headers["x-request-id"] == "job-42.step-7"
    generated = client.get("/v1/collections/Bad")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])


def test_unknown_route_and_wrong_method(client: httpx.Client, collection: str) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert slug(missing) == "not-found"
    wrong = client.post(f"/v1/collections/{collection}")
    assert wrong.status_code == 405
    assert slug(wrong) == "method-not-allowed"
    colon = client.get(f"/v1/collections/{collection}/documents:unknown")
    assert colon.status_code == 404


def test_probes(new_client: ClientFactory) -> None:
    anonymous = new_client(token=None)
    assert anonymous.get("/livez").json() == {"status": "ok"}
    assert anonymous.get("/readyz").json() == {"status": "ok", "checks": {"postgres": "ok"}}


def test_openapi_covers_every_route(new_client: ClientFactory) -> None:
    document = new_client(token=None).get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    expected = {
        "/livez": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
        "/openapi.json": {"get"},
        "/v1/collections": {"get"},
        "/v1/collections/{name}": {"get", "put", "delete"},
        "/v1/collections/{name}/documents": {"get", "post"},
        "/v1/collections/{name}/documents/{id}": {"get", "put", "patch", "delete"},
        "/v1/collections/{name}/documents:bulk": {"post"},
        "/v1/collections/{name}/documents:count": {"get"},
        "/v1/collections/{name}/documents:sample": {"get"},
        "/v1/collections/{name}/export": {"get"},
        "/v1/collections/{name}/export:snapshot": {"post"},
    }
    assert {path: set(ops) for path, ops in paths.items()} == expected
    bulk = paths["/v1/collections/{name}/documents:bulk"]["post"]
    assert bulk["security"] == [{"bearer": ["docs:write"]}]
    assert "422" in bulk["responses"]
