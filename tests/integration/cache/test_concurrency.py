"""Set-if-absent under concurrent callers: exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.cache.conftest import ClientFactory

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("round_", range(3))
def test_exactly_one_set_if_absent_wins(new_client: ClientFactory, key: str, round_: int) -> None:
    callers = 24
    clients = [new_client() for _ in range(callers)]
    for client in clients:  # connect first, so the PUTs race rather than the handshakes
        client.get("/livez")
    start = threading.Barrier(callers)

    def attempt(i: int) -> int:
        start.wait()
        response = clients[i].put(
            f"/v1/kv/{key}", json={"value": i}, headers={"If-None-Match": "*"}
        )
        return response.status_code

    with ThreadPoolExecutor(callers) as pool:
        statuses = list(pool.map(attempt, range(callers)))
    assert sorted(statuses) == [200] + [412] * (callers - 1)
    winner = statuses.index(200)
    assert clients[0].get(f"/v1/kv/{key}").json()["value"] == winner
