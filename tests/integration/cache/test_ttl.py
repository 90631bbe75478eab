"""TTLs observed for real with 1-second expiries (polled against a deadline, no fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

pytestmark = pytest.mark.integration

DEADLINE = 5.0  # Redis expires a 1 s key within ~1.1 s; the margin absorbs a loaded CI box


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE) -> float:
    """Poll ``condition`` until true; return the seconds it took or fail at the deadline."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_value_expires_after_its_ttl(client: httpx.Client, key: str) -> None:
    client.put(f"/v1/kv/{key}", json={"value": "soon gone", "ttl": 1})
    first = client.get(f"/v1/kv/{key}")
    assert first.status_code == 200
    assert first.json()["ttl"] in (0, 1)
    waited = wait_until(lambda: client.get(f"/v1/kv/{key}").status_code == 404)
    assert waited > 0.3  # it was there for a while, not gone at once


def test_value_without_ttl_outlives_a_ttl_value(client: httpx.Client, key: str) -> None:
    client.put(f"/v1/kv/{key}-short", json={"value": 1, "ttl": 1})
    client.put(f"/v1/kv/{key}-long", json={"value": 1})
    wait_until(lambda: client.get(f"/v1/kv/{key}-short").status_code == 404)
    assert client.get(f"/v1/kv/{key}-long").json()["ttl"] is None


def test_mset_ttl_expires_every_key(client: httpx.Client, key: str) -> None:
    names = [f"{key}-{i}" for i in range(3)]
    # 2 s, not 1: the checks below must see every key before any can expire.
    stored = client.post("/v1/kv:mset", json={"items": dict.fromkeys(names, 7), "ttl": 2})
    assert stored.status_code == 200, stored.text
    # Every key was written, with the batch's value and a TTL: gone later because it expired.
    for name in names:
        entry = client.get(f"/v1/kv/{name}")
        assert entry.status_code == 200, name
        assert entry.json()["value"] == 7
        assert entry.json()["ttl"] in (0, 1, 2)

    def all_gone() -> bool:
        values = client.post("/v1/kv:mget", json={"keys": names}).json()["values"]
        return all(v is None for v in values.values())

    wait_until(all_gone)


def test_counter_ttl_is_a_fixed_window(client: httpx.Client, key: str) -> None:
    url = f"/v1/counters/{key}:incr"
    assert client.post(url, json={"ttl": 1}).json()["value"] == 1
    # A later TTL does not extend the window: the counter still expires about 1 s after creation.
    assert client.post(url, json={"ttl": 100}).json()["value"] == 2
    wait_until(lambda: client.get(f"/v1/counters/{key}").status_code == 404)
    assert client.post(url).json()["value"] == 1


def test_set_if_absent_succeeds_again_after_expiry(client: httpx.Client, key: str) -> None:
    headers = {"If-None-Match": "*"}
    assert client.put(f"/v1/kv/{key}", json={"value": 1, "ttl": 1}, headers=headers).is_success
    assert client.put(f"/v1/kv/{key}", json={"value": 2}, headers=headers).status_code == 412
    wait_until(
        lambda: client.put(f"/v1/kv/{key}", json={"value": 3}, headers=headers).status_code == 200
    )
    assert client.get(f"/v1/kv/{key}").json()["value"] == 3
