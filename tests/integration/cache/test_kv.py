"""PUT/GET/DELETE /v1/kv/{key}: the contract, endpoint by endpoint."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.integration.cache.conftest import slug

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


def put(client: httpx.Client, key: str, body: Any, **headers: str) -> httpx.Response:
    return client.put(f"/v1/kv/{quote(key, safe='')}", json=body, headers=headers)


@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2, {"b": None}]}, "text é ✓", 42, -1.5, True, None, [], {}],
    ids=["object", "string", "int", "float", "bool", "null", "list", "empty-object"],
)
def test_put_then_get_round_trips_any_json_value(
    client: httpx.Client, key: str, value: Any
) -> None:
    response = put(client, key, {"value": value})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"key": key, "value": value, "ttl": None}
    got = client.get(f"/v1/kv/{key}")
    assert got.status_code == 200
    assert got.json() == {"key": key, "value": value, "ttl": None}
    assert got.headers["x-request-id"]


def test_put_with_ttl_reports_the_ttl_and_get_the_remaining_seconds(
    client: httpx.Client, key: str
) -> None:
    response = put(client, key, {"value": "v", "ttl": 100})
    assert response.json() == {"key": key, "value": "v", "ttl": 100}
    remaining = client.get(f"/v1/kv/{key}").json()["ttl"]
    assert 98 <= remaining <= 100


def test_put_replaces_value_and_ttl(client: httpx.Client, key: str) -> None:
    put(client, key, {"value": 1, "ttl": 100})
    assert put(client, key, {"value": 2}).status_code == 200
    assert client.get(f"/v1/kv/{key}").json() == {"key": key, "value": 2, "ttl": None}


def test_get_missing_key_is_404_key_not_found(client: httpx.Client, key: str) -> None:
    response = client.get(f"/v1/kv/{key}")
    assert response.status_code == 404
    assert slug(response) == "key-not-found"


def test_delete_is_204_then_404(client: httpx.Client, key: str) -> None:
    put(client, key, {"value": 1})
    deleted = client.delete(f"/v1/kv/{key}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get(f"/v1/kv/{key}").status_code == 404
    again = client.delete(f"/v1/kv/{key}")
    assert again.status_code == 404
    assert slug(again) == "key-not-found"


def test_if_none_match_star_sets_only_when_absent(client: httpx.Client, key: str) -> None:
    first = put(client, key, {"value": "first"}, **{"If-None-Match": "*"})
    assert first.status_code == 200
    second = put(client, key, {"value": "second"}, **{"If-None-Match": "*"})
    assert second.status_code == 412
    assert slug(second) == "key-exists"
    assert client.get(f"/v1/kv/{key}").json()["value"] == "first"


@pytest.mark.parametrize(
    "suffix", ["a/b/c", "with:colon", "q?x=1#frag", "100%", "ünïcödé-✓", "x:incr", "kv:mget"]
)
def test_keys_with_reserved_and_unicode_characters(
    client: httpx.Client, key: str, suffix: str
) -> None:
    name = f"{key}-{suffix}"
    assert put(client, name, {"value": suffix}).status_code == 200
    got = client.get(f"/v1/kv/{quote(name, safe='')}")
    assert got.status_code == 200
    assert got.json()["key"] == name
    assert got.json()["value"] == suffix


def test_slash_in_key_works_unencoded_too(client: httpx.Client, key: str) -> None:
    assert put(client, f"{key}/x/y", {"value": 1}).status_code == 200
    assert client.get(f"/v1/kv/{key}/x/y").json()["key"] == f"{key}/x/y"


def test_body_without_content_type_is_read_as_json(client: httpx.Client, key: str) -> None:
    response = client.put(f"/v1/kv/{key}", content=b'{"value": 7}')
    assert response.status_code == 200
    assert response.json()["value"] == 7


def test_request_id_is_echoed(client: httpx.Client, key: str) -> None:
    response = client.get(f"/v1/kv/{key}", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
