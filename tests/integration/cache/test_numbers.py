"""Integers stay exact: counters over the whole int64 range, values of any size."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.cache.conftest import slug

pytestmark = pytest.mark.integration
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


@pytest.mark.parametrize(
    "value", [2**53 + 1, 2**62 + 3, INT64_MAX, INT64_MIN, INT64_MIN + 1, -(2**53) - 1]
)
def test_counters_answer_exactly_across_int64(client: httpx.Client, key: str, value: int) -> None:
    response = client.post(f"/v1/counters/{key}:incr", json={"by": value})
    assert response.status_code == 200
    assert response.json() == {"key": key, "value": value}
    assert client.get(f"/v1/counters/{key}").json()["value"] == value


def test_increments_near_the_top_stay_exact(client: httpx.Client, key: str) -> None:
    client.post(f"/v1/counters/{key}:incr", json={"by": INT64_MAX - 5})
    for expected in range(INT64_MAX - 4, INT64_MAX + 1):
        assert client.post(f"/v1/counters/{key}:incr").json()["value"] == expected
    over = client.post(f"/v1/counters/{key}:incr")
    assert over.status_code == 409
    assert slug(over) == "counter-overflow"
    under = client.post(f"/v1/counters/{key}-neg:incr", json={"by": INT64_MIN})
    assert under.json()["value"] == INT64_MIN
    assert client.post(f"/v1/counters/{key}-neg:incr", json={"by": -1}).status_code == 409


@pytest.mark.parametrize("by", [INT64_MAX + 1, INT64_MIN - 1, 2**64, 10**30])
def test_increments_outside_int64_are_422_naming_the_range(
    client: httpx.Client, key: str, by: int
) -> None:
    response = client.post(
        f"/v1/counters/{key}:incr",
        content=json.dumps({"by": by}).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["loc"] == ["body", "by"]
    assert "9223372036854775" in error["msg"]  # "less/greater than or equal to ..."
    assert client.get(f"/v1/counters/{key}").status_code == 404


BIG = {"a": 2**53 + 1, "b": 2**64, "c": -(2**63) - 1, "d": [10**40, 1.5, 1e20]}


def test_values_keep_integers_of_any_size(client: httpx.Client, key: str) -> None:
    raw = json.dumps({"value": BIG, "ttl": 60}).encode()
    put = client.put(f"/v1/kv/{key}", content=raw, headers={"content-type": "application/json"})
    assert put.status_code == 200
    assert put.json()["value"] == BIG
    assert client.get(f"/v1/kv/{key}").json()["value"] == BIG
    mset = json.dumps({"items": {f"{key}-2": BIG, f"{key}-3": 2**70}}).encode()
    stored = client.post("/v1/kv:mset", content=mset, headers={"content-type": "application/json"})
    assert stored.status_code == 200
    values = client.post("/v1/kv:mget", json={"keys": [key, f"{key}-2", f"{key}-3"]}).json()
    assert values["values"] == {key: BIG, f"{key}-2": BIG, f"{key}-3": 2**70}


@pytest.mark.parametrize("number", [b"1e400", b"9" * 310])
def test_numbers_beyond_a_double_are_400(client: httpx.Client, key: str, number: bytes) -> None:
    response = client.put(
        f"/v1/kv/{key}",
        content=b'{"value": ' + number + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "range of a double" in response.json()["detail"]


@pytest.mark.parametrize("levels", [129, 300, 1000])
def test_values_too_deep_to_serve_are_422(client: httpx.Client, key: str, levels: int) -> None:
    value = b"[" * levels + b"]" * levels
    for method, url, content in (
        ("PUT", f"/v1/kv/{key}", b'{"value": ' + value + b"}"),
        ("POST", "/v1/kv:mset", b'{"items": {"' + key.encode() + b'": ' + value + b"}}"),
    ):
        response = client.request(
            method, url, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (url, response.text)
        assert "128" in response.json()["errors"][0]["msg"]
    assert client.get(f"/v1/kv/{key}").status_code == 404
    ok = b"[" * 128 + b"]" * 128
    assert client.put(f"/v1/kv/{key}", content=b'{"value": ' + ok + b"}").status_code == 200
    assert client.get(f"/v1/kv/{key}").json()["value"] is not None
