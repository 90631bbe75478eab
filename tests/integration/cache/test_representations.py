"""Conditional GET (a weak ETag of the value, If-None-Match, 304), gzip, /docs on cache."""

from __future__ import annotations

import httpx
import pytest

from services.common import apidocs
from tests.integration.cache.conftest import ClientFactory

pytestmark = pytest.mark.integration


def test_value_get_answers_304_until_the_value_changes(client: httpx.Client, key: str) -> None:
    url = f"/v1/kv/{key}"
    stored = client.put(url, json={"value": {"a": 1}, "ttl": 300})
    etag = stored.headers["etag"]
    assert etag.startswith('W/"')
    got = client.get(url)
    assert got.headers["etag"] == etag  # the value's tag, whatever the ttl says now
    held = client.get(url, headers={"If-None-Match": etag})
    assert held.status_code == 304
    assert held.content == b""
    assert held.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304
    client.put(url, json={"value": {"a": 2}})
    fresh = client.get(url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()["value"] == {"a": 2}
    assert fresh.headers["etag"] != etag
    # The same value stored again carries the same tag: it names the value.
    client.put(url, json={"value": {"a": 1}})
    assert client.get(url).headers["etag"] == etag
    client.delete(url)
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 404


def test_a_large_value_is_gzipped_when_accepted(client: httpx.Client, key: str) -> None:
    url = f"/v1/kv/{key}"
    put = client.put(url, json={"value": ["a fairly repetitive string"] * 34})
    assert put.status_code == 200, put.text  # at most 1024 bytes of value in these tests
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert len(plain.content) >= 1024  # the default gzip_min_bytes
    assert "content-encoding" not in plain.headers
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["etag"] == plain.headers["etag"]  # already weak
    assert packed.num_bytes_downloaded < len(plain.content) / 3
    assert packed.content == plain.content
    small = f"/v1/kv/{key}-small"
    client.put(small, json={"value": 1})
    assert "content-encoding" not in client.get(small, headers={"Accept-Encoding": "gzip"}).headers


def test_docs_served_from_the_image(new_client: ClientFactory) -> None:
    http = new_client(token=None)
    assert http.get("/docs").headers["location"] == "/docs/cache/"
    page = http.get("/docs/cache/")
    assert page.status_code == 200
    assert 'src="init.js"' in page.text
    assert http.get("/docs/cache/openapi.json").json() == http.get("/openapi.json").json()
    init = http.get("/docs/cache/init.js")
    assert init.content == apidocs.asset("init.js").body
    assert b'url: "openapi.json"' in init.content
