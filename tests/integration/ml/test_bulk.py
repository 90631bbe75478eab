"""Bulk ingest: all or nothing, the line named on failure, limits, and a full batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.ml.conftest import ClientFactory, slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
NDJSON = {"content-type": "application/x-ndjson"}


def bulk(name: str) -> str:
    return f"/v1/collections/{name}/documents:bulk"


def count(client: httpx.Client, name: str) -> int:
    return int(client.get(f"/v1/collections/{name}/documents:count").json()["count"])


def test_mixed_batch_with_one_bad_line_writes_nothing(
    client: httpx.Client, collection: str
) -> None:
    lines = [json.dumps({"i": i}) for i in range(500)]
    lines[316] = '{"i": 316, "broken": '  # line 317, 1-based
    response = client.post(bulk(collection), content="\n".join(lines).encode(), headers=NDJSON)
    assert response.status_code == 422
    assert slug(response) == "validation-failed"
    body = response.json()
    assert "line 317" in body["detail"]
    assert body["errors"] == [{"loc": ["body", "line", 317], "msg": body["errors"][0]["msg"]}]
    assert count(client, collection) == 0


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[1, 2]", "object"),
        ('"text"', "object"),
        ("null", "object"),
        ('{"s": "nul\\u0000"}', "NUL"),
    ],
)
def test_non_object_or_unstorable_lines(
    client: httpx.Client, collection: str, line: str, reason: str
) -> None:
    body = f'{{"ok": 1}}\n\n{line}\n{{"ok": 2}}\n'.encode()
    response = client.post(bulk(collection), content=body, headers=NDJSON)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "line", 3]
    assert reason in response.json()["errors"][0]["msg"]
    assert count(client, collection) == 0


def test_json_array_body(client: httpx.Client, collection: str) -> None:
    response = client.post(bulk(collection), json=[{"a": 1}, {"a": 2}, {"b": {"c": [3]}}])
    assert response.status_code == 201
    body = response.json()
    assert body["inserted"] == 3
    stored = [
        client.get(f"/v1/collections/{collection}/documents/{i}").json()["data"]
        for i in body["ids"]
    ]
    assert stored == [{"a": 1}, {"a": 2}, {"b": {"c": [3]}}]
    bad = client.post(bulk(collection), json=[{"a": 1}, 2])
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "item", 1]
    assert count(client, collection) == 3


def test_ten_thousand_lines_land_completely(client: httpx.Client, collection: str) -> None:
    lines = "\n".join(
        json.dumps({"i": i, "features": [i % 7, i % 11], "label": i % 2}) for i in range(10_000)
    )
    response = client.post(bulk(collection), content=lines.encode(), headers=NDJSON)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["inserted"] == 10_000
    assert len(set(body["ids"])) == 10_000
    assert count(client, collection) == 10_000
    one = client.get(f"/v1/collections/{collection}/documents/{body['ids'][1234]}").json()
    assert one["data"] == {"i": 1234, "features": [1234 % 7, 1234 % 11], "label": 0}


@pytest.mark.parametrize(
    ("content", "content_type", "status", "expected"),
    [
        (b"", "application/x-ndjson", 400, "malformed-json"),
        (b"[1, 2", "application/json", 400, "malformed-json"),
        (b'{"a": 1}', "application/json", 422, "validation-failed"),
        (b'{"a": 1}', "text/csv", 415, "unsupported-media-type"),
    ],
)
def test_bad_bulk_bodies(
    client: httpx.Client,
    collection: str,
    content: bytes,
    content_type: str,
    status: int,
    expected: str,
) -> None:
    response = client.post(
        bulk(collection), content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert slug(response) == expected


@pytest.fixture(scope="module")
def small(
    ml_db: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A server with tiny limits, so limit tests send tiny bodies."""
    env = {
        **ml_db,
        "STRATA_ML_BULK_MAX_DOCUMENTS": "5",
        "STRATA_ML_BULK_MAX_BYTES": "4096",
        "STRATA_ML_MAX_DOCUMENT_BYTES": "256",
        "STRATA_ML_MAX_BODY_BYTES": "1024",
    }
    tmp: Path = tmp_path_factory.mktemp("ml-small")
    service = ServiceProcess("ml", env, tmp, workers=1).start()
    yield service
    service.stop()


def test_limits(small: ServiceProcess, new_client: ClientFactory, collection: str) -> None:
    client = new_client(base_url=small.base_url)
    six = b"\n".join(b'{"i": %d}' % i for i in range(6))
    too_many = client.post(bulk(collection), content=six, headers=NDJSON)
    assert too_many.status_code == 413
    assert slug(too_many) == "payload-too-large"
    # Bigger than the ordinary body limit (1024) but within the bulk limit (4096): accepted.
    five = b"\n".join(b'{"pad": "%s"}' % (b"x" * 230) for _ in range(5))
    assert 1024 < len(five) < 4096
    assert client.post(bulk(collection), content=five, headers=NDJSON).status_code == 201
    huge = b'{"pad": "' + b"x" * 5000 + b'"}'
    assert slug(client.post(bulk(collection), content=huge, headers=NDJSON)) == (
        "payload-too-large"
    )
    oversize_line = b'{"a": 1}\n{"pad": "' + b"x" * 300 + b'"}\n'
    response = client.post(bulk(collection), content=oversize_line, headers=NDJSON)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "line", 2]
    doc = client.post(f"/v1/collections/{collection}/documents", json={"data": {"pad": "x" * 300}})
    assert doc.status_code == 413
    assert "document" in doc.json()["detail"]
    body = client.post(
        f"/v1/collections/{collection}/documents", json={"data": {}, "pad": "x" * 3000}
    )
    assert body.status_code == 413
    assert count(client, collection) == 5


def test_collection_order_is_insertion_order(client: httpx.Client, collection: str) -> None:
    first = client.post(bulk(collection), json=[{"n": i} for i in range(50)]).json()["ids"]
    single = client.post(f"/v1/collections/{collection}/documents", json={"data": {"n": 50}})
    export = client.get(f"/v1/collections/{collection}/export").content.splitlines()
    assert [json.loads(line)["id"] for line in export] == [*first, single.json()["id"]]
    assert [json.loads(line)["data"]["n"] for line in export] == list(range(51))
