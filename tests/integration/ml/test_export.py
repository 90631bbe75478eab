"""Export: complete, ordered, constant worker memory, and clean on client disconnect."""

from __future__ import annotations

import io
import time

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import BIG_ROWS, RssSampler, open_transactions, slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
RSS_GROWTH_LIMIT = 64 * 1024 * 1024  # the export is ~110 MB; buffering it would blow this


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_export_is_complete_ordered_and_memory_bounded(
    ml_service: ServiceProcess, client: httpx.Client, big_collection: str, encoding: str
) -> None:
    # Warm both workers' code paths so the baseline is not pre-import memory.
    for _ in range(4):
        client.get(f"/v1/collections/{big_collection}/export", params={"filter": '{"i": 1}'})
    sampler = RssSampler(ml_service)
    sampler.start()
    count, previous = 0, ("", "")
    try:
        with client.stream(
            "GET",
            f"/v1/collections/{big_collection}/export",
            headers={"Accept-Encoding": encoding},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            assert response.headers.get("content-encoding", "identity") == encoding
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


def test_parquet_export_is_complete_and_memory_bounded(
    ml_service: ServiceProcess, client: httpx.Client, big_collection: str
) -> None:
    """200,000 rows in row groups (of 16,384 rows or 4 MiB): read back with pyarrow, RSS flat."""
    path = f"/v1/collections/{big_collection}/export"
    client.get(path, params={"format": "parquet", "filter": '{"i": 1}', "fields": "i"})
    body = bytearray()
    with (
        RssSampler(ml_service) as sampler,
        client.stream(
            "GET", path, params={"format": "parquet", "fields": "i,group,pad"}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.apache.parquet"
        for chunk in response.iter_bytes():
            body += chunk
    file = pq.ParquetFile(io.BytesIO(bytes(body)))
    assert file.metadata.num_rows == BIG_ROWS
    assert file.metadata.num_row_groups >= 4
    table = file.read(columns=["id", "data.i", "data.group"])
    assert table.schema.field("data.i").type == pa.int64()
    assert table.column("data.i").to_pylist() == list(range(BIG_ROWS))
    assert table.column("id")[BIG_ROWS - 1].as_py() == f"d{BIG_ROWS - 1:07d}"
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
    # The export takes no cursor, even a perfectly valid one from a listing: 422, not a
    # partial export (nor a 400 for a cursor it would otherwise have read).
    docs = f"/v1/collections/{collection}/documents"
    for i in range(3):
        assert client.post(docs, json={"id": f"d{i}", "data": {"i": i}}).status_code == 201
    page = client.get(docs, params={"limit": 1}).json()
    assert page["next_cursor"]
    export = f"/v1/collections/{collection}/export"
    cursor = client.get(export, params={"cursor": page["next_cursor"]})
    assert cursor.status_code == 422, cursor.text
    assert slug(cursor) == "validation-failed"
    assert [e["loc"] for e in cursor.json()["errors"]] == [["query", "cursor"]]


def test_disconnect_leaves_no_open_transaction(
    postgres_server: PostgresServer,
    ml_database: str,
    ml_service: ServiceProcess,
    token: str,
    big_collection: str,
) -> None:
    assert open_transactions(postgres_server, ml_database) == 0
    # identity: a gzip export (httpx's default) of this filler is small enough to be sent
    # whole, its transaction over, before the check below.
    client = httpx.Client(
        base_url=ml_service.base_url,
        headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
        timeout=30,
    )
    response = client.send(
        client.build_request("GET", f"/v1/collections/{big_collection}/export"), stream=True
    )
    lines = response.iter_lines()
    first = [next(lines) for _ in range(10)]
    assert all(line.startswith('{"id"') for line in first)
    # The export really is in flight: its snapshot transaction is open right now.
    assert open_transactions(postgres_server, ml_database) == 1
    response.close()
    client.close()
    deadline = time.monotonic() + 20
    while open_transactions(postgres_server, ml_database) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_transactions(postgres_server, ml_database) == 0
    # The worker is healthy afterwards and its pool still works.
    with httpx.Client(
        base_url=ml_service.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as again:
        for _ in range(4):
            ok = again.get(
                f"/v1/collections/{big_collection}/documents:count", params={"filter": '{"i": 5}'}
            )
            assert ok.json() == {"count": 1}
