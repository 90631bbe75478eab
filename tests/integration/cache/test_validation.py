"""Bad input: keys, values, TTLs, bodies (this suite's server allows 1 KiB values)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.cache.conftest import slug

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "raw",
    ["a%20b", "tab%09x", "nl%0Ax", "nul%00x", "del%7Fx", "x" * 513, "%C3%A9" * 257, "%FF%FE",
     "nbsp%C2%A0x", "ls%E2%80%A8x"],
    ids=["space", "tab", "newline", "nul", "del", "513-bytes", "514-utf8-bytes", "not-utf8",
         "nbsp", "line-separator"],
)  # fmt: skip
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_bad_keys_are_422(client: httpx.Client, raw: str, method: str) -> None:
    body = {"value": 1} if method == "PUT" else None
    response = client.request(method, f"/v1/kv/{raw}", json=body)
    assert response.status_code == 422, response.text
    assert slug(response) == "validation-failed"
    assert response.json()["errors"][0]["loc"] == ["path", "key"]


@pytest.mark.parametrize("path", ["/v1/counters/a%20b:incr", "/v1/counters/a%20b"])
def test_bad_counter_keys_are_422(client: httpx.Client, path: str) -> None:
    response = client.request("POST" if path.endswith(":incr") else "GET", path)
    assert response.status_code == 422
    assert slug(response) == "validation-failed"


def test_512_byte_key_is_accepted(client: httpx.Client, key: str) -> None:
    name = key + "k" * (512 - len(key))
    assert client.put(f"/v1/kv/{name}", json={"value": 1}).status_code == 200
    assert client.get(f"/v1/kv/{name}").json()["key"] == name


def test_value_over_the_limit_is_413_value_too_large(client: httpx.Client, key: str) -> None:
    response = client.put(f"/v1/kv/{key}", json={"value": "x" * 1100})
    assert response.status_code == 413
    assert slug(response) == "value-too-large"
    assert client.get(f"/v1/kv/{key}").status_code == 404


def test_value_at_the_limit_is_accepted(client: httpx.Client, key: str) -> None:
    value = "x" * (1024 - 2)  # two quotes make 1024 bytes of JSON
    assert client.put(f"/v1/kv/{key}", json={"value": value}).status_code == 200


def test_body_over_the_body_limit_is_413(client: httpx.Client, key: str) -> None:
    response = client.put(
        f"/v1/kv/{key}", content=b'{"value": "' + b"x" * 1_100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 413
    assert slug(response) == "payload-too-large"


@pytest.mark.parametrize(
    "ttl", [0, -1, 31_536_001, 1.5, 60.0, "60", True, [60]], ids=lambda t: repr(t)
)
def test_bad_ttls_are_422(client: httpx.Client, key: str, ttl: Any) -> None:
    response = client.put(f"/v1/kv/{key}", json={"value": 1, "ttl": ttl})
    assert response.status_code == 422
    assert slug(response) == "validation-failed"
    assert response.json()["errors"][0]["loc"][:2] == ["body", "ttl"]
    assert client.get(f"/v1/kv/{key}").status_code == 404


@pytest.mark.parametrize("ttl", [1, 31_536_000])
def test_ttl_bounds_are_accepted(client: httpx.Client, key: str, ttl: int) -> None:
    assert client.put(f"/v1/kv/{key}", json={"value": 1, "ttl": ttl}).json()["ttl"] == ttl


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b'{"value": 1', 400, "malformed-json"),
        (b"", 400, "malformed-json"),
        (b"[1, 2]", 422, "validation-failed"),
        (b'{"ttl": 5}', 422, "validation-failed"),
        (b'{"value": 1, "extra": 2}', 422, "validation-failed"),
    ],
)
def test_bad_put_bodies(
    client: httpx.Client, key: str, body: bytes, status: int, expected: str
) -> None:
    response = client.put(
        f"/v1/kv/{key}", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert slug(response) == expected


@pytest.mark.parametrize("path", ["/v1/kv/k", "/v1/kv:mget", "/v1/kv:mset", "/v1/counters/k:incr"])
def test_malformed_json_is_400_everywhere(client: httpx.Client, path: str) -> None:
    method = "PUT" if path == "/v1/kv/k" else "POST"
    response = client.request(
        method, path, content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert slug(response) == "malformed-json"


def test_non_json_content_type_is_415(client: httpx.Client, key: str) -> None:
    response = client.put(
        f"/v1/kv/{key}", content=b'{"value": 1}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert slug(response) == "unsupported-media-type"


def test_unknown_route_is_404_and_wrong_method_405(client: httpx.Client) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert slug(missing) == "not-found"
    wrong = client.patch("/v1/kv/k", json={})
    assert wrong.status_code == 405
    assert slug(wrong) == "method-not-allowed"
