"""``/v1/collections``: create (idempotent), get with count, list (keyset), delete."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.ml.conftest import slug

pytestmark = pytest.mark.integration


def test_put_creates_then_is_idempotent(client: httpx.Client) -> None:
    name = f"p-{uuid.uuid4().hex[:10]}"
    first = client.put(f"/v1/collections/{name}")
    assert first.status_code == 201
    assert first.json()["name"] == name
    again = client.put(f"/v1/collections/{name}")
    assert again.status_code == 200
    assert again.json() == first.json()


def test_get_includes_count(client: httpx.Client, collection: str) -> None:
    assert client.get(f"/v1/collections/{collection}").json()["count"] == 0
    for i in range(3):
        client.post(f"/v1/collections/{collection}/documents", json={"data": {"i": i}})
    body = client.get(f"/v1/collections/{collection}").json()
    assert body["name"] == collection
    assert body["count"] == 3


def test_list_pages_by_name(client: httpx.Client) -> None:
    prefix = f"l{uuid.uuid4().hex[:8]}"
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for name in names:
        client.put(f"/v1/collections/{name}")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = client.get(
            "/v1/collections", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        assert len(page["items"]) <= 2
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [n for n in seen if n.startswith(prefix)] == names
    assert seen == sorted(seen)


def test_delete_removes_collection_and_documents(client: httpx.Client, collection: str) -> None:
    doc = client.post(f"/v1/collections/{collection}/documents", json={"data": {}}).json()
    assert client.delete(f"/v1/collections/{collection}").status_code == 204
    missing = client.get(f"/v1/collections/{collection}")
    assert missing.status_code == 404
    assert slug(missing) == "collection-not-found"
    gone = client.get(f"/v1/collections/{collection}/documents/{doc['id']}")
    assert slug(gone) == "collection-not-found"
    assert slug(client.delete(f"/v1/collections/{collection}")) == "collection-not-found"


@pytest.mark.parametrize("name", ["Upper", "9starts-with-digit", "has.dot", "a" * 64, "sp ace"])
def test_bad_collection_names(client: httpx.Client, name: str) -> None:
    for response in (
        client.put(f"/v1/collections/{name}"),
        client.get(f"/v1/collections/{name}"),
        client.get(f"/v1/collections/{name}/documents"),
        client.post(f"/v1/collections/{name}/documents", json={"data": {}}),
    ):
        assert response.status_code == 422, response.text
        assert slug(response) == "validation-failed"
        assert response.json()["errors"][0]["loc"] == ["path", "name"]


def test_unknown_collection_is_404_everywhere(client: httpx.Client) -> None:
    base = f"/v1/collections/nope-{uuid.uuid4().hex[:8]}"
    for response in (
        client.get(base),
        client.get(f"{base}/documents"),
        client.post(f"{base}/documents", json={"data": {}}),
        client.get(f"{base}/documents/x"),
        client.get(f"{base}/documents:count"),
        client.get(f"{base}/documents:sample"),
        client.get(f"{base}/export"),
        client.post(
            f"{base}/documents:bulk",
            content=b'{"a":1}\n',
            headers={"content-type": "application/x-ndjson"},
        ),
    ):
        assert response.status_code == 404, response.request.url
        assert slug(response) == "collection-not-found"


@pytest.mark.parametrize(
    ("params", "status", "expected"),
    [
        ({"limit": "0"}, 422, "validation-failed"),
        ({"limit": "1001"}, 422, "validation-failed"),
        ({"limit": "x"}, 422, "validation-failed"),
        ({"cursor": "!!!"}, 400, "invalid-cursor"),
        ({"cursor": "e30"}, 400, "invalid-cursor"),  # base64 of {} lacks the key
    ],
)
def test_bad_list_parameters(
    client: httpx.Client, params: dict[str, str], status: int, expected: str
) -> None:
    response = client.get("/v1/collections", params=params)
    assert response.status_code == status
    assert slug(response) == expected
