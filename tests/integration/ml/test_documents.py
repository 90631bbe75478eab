"""Single documents: create, get, replace, merge patch, delete, ``If-Match``, bad input."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.ml.conftest import slug

pytestmark = pytest.mark.integration
MERGE = {"content-type": "application/merge-patch+json"}


def docs(name: str) -> str:
    return f"/v1/collections/{name}/documents"


def test_create_generates_id_and_get_returns_it(client: httpx.Client, collection: str) -> None:
    created = client.post(docs(collection), json={"data": {"x": [1, 2], "y": {"z": "é"}}})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "collection", "data", "version", "created_at", "updated_at"}
    assert body["collection"] == collection
    assert body["version"] == 1
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == f"{docs(collection)}/{body['id']}"
    fetched = client.get(f"{docs(collection)}/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_create_with_id_and_duplicate(client: httpx.Client, collection: str) -> None:
    first = client.post(docs(collection), json={"id": "img-0001.png", "data": {"a": 1}})
    assert first.status_code == 201
    assert first.json()["id"] == "img-0001.png"
    again = client.post(docs(collection), json={"id": "img-0001.png", "data": {"a": 2}})
    assert again.status_code == 409
    assert slug(again) == "document-exists"
    assert client.get(f"{docs(collection)}/img-0001.png").json()["data"] == {"a": 1}


def test_missing_document(client: httpx.Client, collection: str) -> None:
    for response in (
        client.get(f"{docs(collection)}/absent"),
        client.put(f"{docs(collection)}/absent", json={"data": {}}),
        client.patch(f"{docs(collection)}/absent", content=b"{}", headers=MERGE),
        client.delete(f"{docs(collection)}/absent"),
    ):
        assert response.status_code == 404
        assert slug(response) == "document-not-found"


def test_replace_bumps_version_and_if_match(client: httpx.Client, collection: str) -> None:
    doc = client.post(docs(collection), json={"data": {"a": 1, "b": 2}}).json()
    url = f"{docs(collection)}/{doc['id']}"
    replaced = client.put(url, json={"data": {"c": 3}}, headers={"If-Match": '"1"'})
    assert replaced.status_code == 200
    assert replaced.json()["data"] == {"c": 3}
    assert replaced.json()["version"] == 2
    assert replaced.json()["updated_at"] >= doc["updated_at"]
    stale = client.put(url, json={"data": {"d": 4}}, headers={"If-Match": "1"})
    assert stale.status_code == 412
    assert slug(stale) == "version-mismatch"
    assert client.get(url).json()["data"] == {"c": 3}
    assert client.put(url, json={"data": {"d": 4}}).json()["version"] == 3


def test_merge_patch_rfc7396(client: httpx.Client, collection: str) -> None:
    data = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    doc = client.post(docs(collection), json={"data": data}).json()
    patch = (
        b'{"title": "Hello!", "phoneNumber": "+01-123-456-7890",'
        b' "author": {"familyName": null}, "tags": ["example"]}'
    )
    url = f"{docs(collection)}/{doc['id']}"
    patched = client.patch(url, content=patch, headers={**MERGE, "If-Match": "1"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"] == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }
    assert patched.json()["version"] == 2
    assert patched.headers["etag"] == '"2"'
    stale = client.patch(url, content=b'{"x": 1}', headers={**MERGE, "If-Match": "1"})
    assert stale.status_code == 412
    assert slug(stale) == "version-mismatch"


def test_merge_patch_must_be_an_object(client: httpx.Client, collection: str) -> None:
    doc = client.post(docs(collection), json={"data": {"a": 1}}).json()
    response = client.patch(f"{docs(collection)}/{doc['id']}", content=b"[1]", headers=MERGE)
    assert response.status_code == 422
    assert slug(response) == "validation-failed"


def test_delete_with_if_match(client: httpx.Client, collection: str) -> None:
    doc = client.post(docs(collection), json={"data": {}}).json()
    url = f"{docs(collection)}/{doc['id']}"
    stale = client.delete(url, headers={"If-Match": "7"})
    assert stale.status_code == 412
    assert slug(stale) == "version-mismatch"
    assert client.delete(url, headers={"If-Match": "1"}).status_code == 204
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("value", ["2147483648", '"9999999999"', 'W/"999999999999999999"'])
def test_if_match_beyond_any_version_is_412_on_every_write(
    client: httpx.Client, collection: str, value: str
) -> None:
    doc = client.post(docs(collection), json={"data": {"a": 1}}).json()
    url = f"{docs(collection)}/{doc['id']}"
    for response in (
        client.put(url, json={"data": {}}, headers={"If-Match": value}),
        client.patch(url, content=b"{}", headers={**MERGE, "If-Match": value}),
        client.delete(url, headers={"If-Match": value}),
    ):
        assert response.status_code == 412, response.text
        assert slug(response) == "version-mismatch"
        assert response.headers["etag"] == '"1"'
    gone = client.put(f"{docs(collection)}/absent", json={"data": {}}, headers={"If-Match": value})
    assert gone.status_code == 404


@pytest.mark.parametrize("value", ["abc", "-1", '"x"', "1.5", "²".encode(), "9" * 19])
def test_bad_if_match(client: httpx.Client, collection: str, value: str | bytes) -> None:
    doc = client.post(docs(collection), json={"data": {}}).json()
    response = client.put(
        f"{docs(collection)}/{doc['id']}", json={"data": {}}, headers={"If-Match": value}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "If-Match"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "expected"),
    [
        (b"{not json", "application/json", 400, "malformed-json"),
        (b"", "application/json", 400, "malformed-json"),
        (b'{"data": [1, 2]}', "application/json", 422, "validation-failed"),
        (b'{"data": "text"}', "application/json", 422, "validation-failed"),
        (b'{"data": null}', "application/json", 422, "validation-failed"),
        (b'{"nodata": {}}', "application/json", 422, "validation-failed"),
        (b'{"data": {}, "extra": 1}', "application/json", 422, "validation-failed"),
        (b'{"data": {}, "id": "bad id!"}', "application/json", 422, "validation-failed"),
        (b'{"data": {"s": "a\\u0000b"}}', "application/json", 422, "validation-failed"),
        (b'{"data": {}}', "text/plain", 415, "unsupported-media-type"),
    ],
)
def test_bad_document_bodies(
    client: httpx.Client,
    collection: str,
    content: bytes,
    content_type: str,
    status: int,
    expected: str,
) -> None:
    response = client.post(
        docs(collection), content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert slug(response) == expected
    assert client.get(f"/v1/collections/{collection}").json()["count"] == 0


def test_oversize_document_is_413(client: httpx.Client, collection: str) -> None:
    big = b'{"data": {"blob": "' + b"x" * (1024 * 1024 + 10) + b'"}}'
    response = client.post(
        docs(collection), content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert slug(response) == "payload-too-large"


@pytest.mark.parametrize("doc_id", ["has space", "-leading", "a" * 129, "slash%2Fin"])
def test_bad_document_ids(client: httpx.Client, collection: str, doc_id: str) -> None:
    response = client.get(f"{docs(collection)}/{doc_id}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "id"]
