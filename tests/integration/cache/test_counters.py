"""POST /v1/counters/{key}:incr and GET /v1/counters/{key}."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.cache.conftest import ClientFactory, slug

pytestmark = pytest.mark.integration


def test_incr_defaults_to_one_and_creates_the_counter(client: httpx.Client, key: str) -> None:
    first = client.post(f"/v1/counters/{key}:incr")
    assert first.status_code == 200
    assert first.json() == {"key": key, "value": 1}
    assert client.post(f"/v1/counters/{key}:incr", json={}).json()["value"] == 2
    assert client.get(f"/v1/counters/{key}").json() == {"key": key, "value": 2}


def test_incr_by_any_signed_amount(client: httpx.Client, key: str) -> None:
    assert client.post(f"/v1/counters/{key}:incr", json={"by": 10}).json()["value"] == 10
    assert client.post(f"/v1/counters/{key}:incr", json={"by": -15}).json()["value"] == -5


def test_missing_counter_is_404(client: httpx.Client, key: str) -> None:
    response = client.get(f"/v1/counters/{key}")
    assert response.status_code == 404
    assert slug(response) == "key-not-found"


def test_counters_and_values_do_not_share_keys(client: httpx.Client, key: str) -> None:
    client.put(f"/v1/kv/{key}", json={"value": "text"})
    assert client.post(f"/v1/counters/{key}:incr").json()["value"] == 1
    assert client.get(f"/v1/kv/{key}").json()["value"] == "text"


def test_overflow_is_409(client: httpx.Client, key: str) -> None:
    client.post(f"/v1/counters/{key}:incr", json={"by": 2**63 - 1})
    response = client.post(f"/v1/counters/{key}:incr", json={"by": 1})
    assert response.status_code == 409
    assert slug(response) == "counter-overflow"
    assert client.get(f"/v1/counters/{key}").json()["value"] == 2**63 - 1


def test_a_key_ending_in_incr_can_be_read(client: httpx.Client, key: str) -> None:
    client.post(f"/v1/counters/{key}:incr:incr")
    assert client.get(f"/v1/counters/{key}:incr").json() == {"key": f"{key}:incr", "value": 1}


def test_post_without_incr_suffix_is_405(client: httpx.Client, key: str) -> None:
    response = client.post(f"/v1/counters/{key}")
    assert response.status_code == 405
    assert slug(response) == "method-not-allowed"
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "body",
    [{"by": 1.5}, {"by": "1"}, {"by": True}, {"by": 2**63}, {"ttl": 0}, {"ttl": 31_536_001},
     {"ttl": -1}, {"ttl": 1.0}, {"other": 1}, [1], "x"],
)  # fmt: skip
def test_bad_increments_are_422(client: httpx.Client, key: str, body: object) -> None:
    response = client.post(f"/v1/counters/{key}:incr", json=body)
    assert response.status_code == 422, response.text
    assert slug(response) == "validation-failed"
    assert client.get(f"/v1/counters/{key}").status_code == 404


def test_concurrent_increments_sum_exactly(new_client: ClientFactory, key: str) -> None:
    threads, each = 16, 25

    def hammer(_: int) -> list[int]:
        with new_client() as client:  # one connection per thread: both workers take part
            return [
                client.post(f"/v1/counters/{key}:incr", json={"by": 2}).status_code
                for _ in range(each)
            ]

    with ThreadPoolExecutor(threads) as pool:
        statuses = [s for batch in pool.map(hammer, range(threads)) for s in batch]
    assert statuses == [200] * threads * each
    with new_client() as client:
        assert client.get(f"/v1/counters/{key}").json()["value"] == 2 * threads * each
