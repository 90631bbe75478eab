"""Concurrent writers holding the same stale version: exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.ml.conftest import ClientFactory

pytestmark = pytest.mark.integration
ROUNDS = 15
MERGE = "application/merge-patch+json"


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_two_stale_writers_exactly_one_wins(
    new_client: ClientFactory, collection: str, method: str
) -> None:
    clients = [new_client(), new_client()]  # separate connections: both workers may serve
    for round_ in range(ROUNDS):
        url = f"/v1/collections/{collection}/documents/r{round_}"
        created = clients[0].post(
            f"/v1/collections/{collection}/documents", json={"id": f"r{round_}", "data": {"n": 0}}
        )
        assert created.status_code == 201
        barrier = threading.Barrier(2)

        def write(who: int, url: str = url, barrier: threading.Barrier = barrier) -> int:
            if method == "PATCH":
                body, ctype = b'{"writer": %d}' % who, MERGE
            else:
                body, ctype = b'{"data": {"writer": %d}}' % who, "application/json"
            barrier.wait()
            response = clients[who].request(
                method, url, content=body, headers={"If-Match": "1", "content-type": ctype}
            )
            return response.status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(write, [0, 1]))
        assert statuses == [200, 412], f"round {round_}: {statuses}"
        final = clients[0].get(url).json()
        assert final["version"] == 2
        assert final["data"]["writer"] in (0, 1)


def test_unconditional_patches_lose_no_update(client: httpx.Client, collection: str) -> None:
    """Without If-Match, concurrent merge patches of different keys all survive (row lock)."""
    created = client.post(
        f"/v1/collections/{collection}/documents", json={"id": "shared", "data": {}}
    )
    assert created.status_code == 201
    url = f"/v1/collections/{collection}/documents/shared"

    def patch(i: int) -> int:
        with httpx.Client(base_url=str(client.base_url), headers=client.headers) as own:
            return own.patch(
                url, content=b'{"k%d": %d}' % (i, i), headers={"content-type": MERGE}
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(patch, range(16))) == {200}
    final = client.get(url).json()
    assert final["version"] == 17
    assert final["data"] == {f"k{i}": i for i in range(16)}
