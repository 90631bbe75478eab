"""Conditional GET (ETag, If-None-Match, 304), gzip of large JSON, and /docs on ml."""

from __future__ import annotations

import gzip

import httpx
import pytest

from services.common import apidocs
from tests.integration.ml.conftest import ClientFactory

pytestmark = pytest.mark.integration


def test_document_get_answers_304_until_it_changes(client: httpx.Client, collection: str) -> None:
    url = f"/v1/collections/{collection}/documents/d1"
    created = client.post(
        f"/v1/collections/{collection}/documents", json={"id": "d1", "data": {"label": "cat"}}
    )
    assert created.status_code == 201, created.text
    first = client.get(url)
    etag = first.headers["etag"]
    held = client.get(url, headers={"If-None-Match": etag})
    assert held.status_code == 304
    assert held.content == b""
    assert held.headers["etag"] == etag
    for header in (f"W/{etag}", f'"0", {etag}', "*"):
        assert client.get(url, headers={"If-None-Match": header}).status_code == 304
    merge = {"Content-Type": "application/merge-patch+json"}
    assert client.patch(url, json={"label": "dog"}, headers=merge).status_code == 200
    fresh = client.get(url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()["data"]["label"] == "dog"
    assert fresh.headers["etag"] != etag
    missing = client.get(url + "x", headers={"If-None-Match": "*"})
    assert missing.status_code == 404


def test_a_page_of_documents_is_gzipped_when_accepted(
    client: httpx.Client, collection: str
) -> None:
    rows = [{"n": i, "text": "lorem ipsum " * 8} for i in range(300)]
    loaded = client.post(f"/v1/collections/{collection}/documents:bulk", json=rows)
    assert loaded.status_code == 201, loaded.text
    url = f"/v1/collections/{collection}/documents?limit=300"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["vary"]
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.num_bytes_downloaded < len(plain.content) / 4
    assert packed.content == plain.content  # httpx decoded the gzip body
    assert len(packed.json()["items"]) == 300
    assert gzip.decompress(_raw_bytes(client, url)) == plain.content


def _raw_bytes(http: httpx.Client, url: str) -> bytes:
    with http.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        return b"".join(response.iter_raw())


def test_docs_served_from_the_image(new_client: ClientFactory) -> None:
    http = new_client(token=None)
    home = http.get("/docs", follow_redirects=False)
    assert home.status_code == 308
    assert home.headers["location"] == "/docs/ml/"
    page = http.get("/docs/ml/")
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="swagger-ui.css"' in page.text
    assert http.get("/docs/ml/openapi.json").json() == http.get("/openapi.json").json()
    for name in apidocs.asset_names():
        got = http.get(f"/docs/ml/{name}", headers={"Accept-Encoding": "identity"})
        assert got.status_code == 200, name
        assert got.content == apidocs.asset(name).body
    assert http.head("/docs/ml/swagger-ui-bundle.js").status_code == 200
    assert http.get("/docs/ml/other.js").status_code == 404
