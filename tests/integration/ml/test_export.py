"""Export: complete, ordered, constant worker memory, and clean on client disconnect."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import BIG_ROWS, RssSampler, open_transactions, slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
RSS_GROWTH_LIMIT = 64 * 1024 * 1024  # the export is ~110 MB; buffering it would blow this


def test_export_is_complete_ordered_and_memory_bounded(
    ml_service: ServiceProcess, client: httpx.Client, big_collection: str
) -> None:
    # Warm both workers' code paths so the baseline is not pre-import memory.
    for _ in range(4):
        client.get(f"/v1/collections/{big_collection}/export", params={"filter": '{"i": 1}'})
    sampler = RssSampler(ml_service)
    sampler.start()
    count, previous = 0, ("", "")
    try:
        with client.stream("GET", f"/v1/collections/{big_collection}/export") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            for line in response.iter_lines():
                if not line:
                    continue
                doc = orjson.loads(line)
                key = (doc["created_at"], doc["id"])
                assert key > previous, f"out of order at line {count + 1}"
                assert doc["id"] == f"d{doc['data']['i']:07d}"
                assert doc["collection"] == big_collection
                previous = key
                count += 1
    finally:
        sampler.done.set()
        sampler.join()
    assert count == BIG_ROWS
    assert previous[1] == f"d{BIG_ROWS - 1:07d}"
    assert sampler.growth() < RSS_GROWTH_LIMIT, f"worker RSS grew by {sampler.growth()} bytes"


def test_export_filter_and_fields(client: httpx.Client, big_collection: str) -> None:
    response = client.get(
        f"/v1/collections/{big_collection}/export",
        params={"filter": '{"group": 3, "i": 123}', "fields": "i,group"},
    )
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert [line["data"] for line in lines] == [{"i": 123, "group": 3}]


def test_export_errors(client: httpx.Client, collection: str) -> None:
    assert client.get(f"/v1/collections/{collection}/export").content == b""
    bad = client.get(f"/v1/collections/{collection}/export", params={"filter": "[]"})
    assert bad.status_code == 422
    assert slug(bad) == "validation-failed"
    cursor = client.get(f"/v1/collections/{collection}/export", params={"cursor": "e30"})
    assert cursor.status_code in (400, 422)


def test_disconnect_leaves_no_open_transaction(
    postgres_server: PostgresServer, ml_service: ServiceProcess, token: str, big_collection: str
) -> None:
    assert open_transactions(postgres_server) == 0
    client = httpx.Client(
        base_url=ml_service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    response = client.send(
        client.build_request("GET", f"/v1/collections/{big_collection}/export"), stream=True
    )
    lines = response.iter_lines()
    first = [next(lines) for _ in range(10)]
    assert all(line.startswith('{"id"') for line in first)
    # The export really is in flight: its snapshot transaction is open right now.
    assert open_transactions(postgres_server) == 1
    response.close()
    client.close()
    deadline = time.monotonic() + 20
    while open_transactions(postgres_server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_transactions(postgres_server) == 0
    # The worker is healthy afterwards and its pool still works.
    with httpx.Client(
        base_url=ml_service.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as again:
        for _ in range(4):
            ok = again.get(
                f"/v1/collections/{big_collection}/documents:count", params={"filter": '{"i": 5}'}
            )
            assert ok.json() == {"count": 1}
