"""POST /v1/kv:mget and /v1/kv:mset (this suite's server allows 50 keys per batch)."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.cache.conftest import slug

pytestmark = pytest.mark.integration


def test_mset_then_mget(client: httpx.Client, key: str) -> None:
    items = {f"{key}-a": {"x": 1}, f"{key}-b": "two", f"{key}-c": None}
    response = client.post("/v1/kv:mset", json={"items": items})
    assert response.status_code == 200
    assert response.json() == {"count": 3, "ttl": None}
    got = client.post("/v1/kv:mget", json={"keys": [*items, f"{key}-missing"]})
    assert got.status_code == 200
    assert got.json() == {"values": {**items, f"{key}-missing": None}}


def test_mget_of_duplicate_keys_answers_each_once(client: httpx.Client, key: str) -> None:
    client.put(f"/v1/kv/{key}", json={"value": 1})
    got = client.post("/v1/kv:mget", json={"keys": [key, key]})
    assert got.content.count(key.encode()) == 1
    assert got.json() == {"values": {key: 1}}


def test_mset_with_ttl_sets_it_on_every_key(client: httpx.Client, key: str) -> None:
    items = {f"{key}-{i}": i for i in range(5)}
    response = client.post("/v1/kv:mset", json={"items": items, "ttl": 100})
    assert response.json() == {"count": 5, "ttl": 100}
    for name in items:
        assert 98 <= client.get(f"/v1/kv/{name}").json()["ttl"] <= 100


def test_mset_is_all_or_nothing_when_one_item_is_invalid(client: httpx.Client, key: str) -> None:
    items = {f"{key}-ok": 1, f"{key} bad": 2}
    response = client.post("/v1/kv:mset", json={"items": items})
    assert response.status_code == 422
    assert slug(response) == "validation-failed"
    assert client.get(f"/v1/kv/{key}-ok").status_code == 404


def test_mset_value_over_limit_is_413_and_writes_nothing(client: httpx.Client, key: str) -> None:
    items = {f"{key}-ok": 1, f"{key}-big": "x" * 1100}
    response = client.post("/v1/kv:mset", json={"items": items})
    assert response.status_code == 413
    assert slug(response) == "value-too-large"
    assert response.json()["errors"][0]["loc"] == ["body", "items", f"{key}-big"]
    assert client.get(f"/v1/kv/{key}-ok").status_code == 404


@pytest.mark.parametrize("path", ["/v1/kv:mget", "/v1/kv:mset"])
def test_batch_over_the_limit_is_422(client: httpx.Client, key: str, path: str) -> None:
    names = [f"{key}-{i}" for i in range(51)]
    body = {"keys": names} if path.endswith("mget") else {"items": dict.fromkeys(names, 1)}
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert slug(response) == "validation-failed"
    assert response.json()["errors"][0]["loc"][0] == "body"


def test_batch_at_the_limit_is_accepted(client: httpx.Client, key: str) -> None:
    names = [f"{key}-{i}" for i in range(50)]
    assert client.post("/v1/kv:mset", json={"items": dict.fromkeys(names, 1)}).status_code == 200
    got = client.post("/v1/kv:mget", json={"keys": names})
    assert got.json() == {"values": dict.fromkeys(names, 1)}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/kv:mget", {"keys": []}),
        ("/v1/kv:mget", {"keys": "a"}),
        ("/v1/kv:mget", {"keys": ["ok", "has space"]}),
        ("/v1/kv:mget", {"keys": ["x" * 513]}),
        ("/v1/kv:mget", {}),
        ("/v1/kv:mset", {"items": {}}),
        ("/v1/kv:mset", {"items": [1, 2]}),
        ("/v1/kv:mset", {"items": {"a": 1}, "ttl": 0}),
        ("/v1/kv:mset", {"items": {"a": 1}, "extra": True}),
    ],
)
def test_bad_batches_are_422(client: httpx.Client, path: str, body: object) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert slug(response) == "validation-failed"
    assert response.json()["errors"]


@pytest.mark.parametrize("path", ["/v1/kv:mget", "/v1/kv:mset"])
def test_batch_endpoints_answer_only_post(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 405
    assert slug(response) == "method-not-allowed"


def test_lookalike_batch_path_is_404(client: httpx.Client) -> None:
    response = client.post("/v1/kv:mgetx", json={"keys": ["a"]})
    assert response.status_code == 404
    assert slug(response) == "not-found"
