"""HTTP clients of a test server, closed when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

ClientFactory = Callable[..., httpx.Client]


@contextmanager
def client_factory(base_url: str, default_token: str, timeout: float) -> Iterator[ClientFactory]:
    """Yield ``make(token=default_token, base_url=base_url)``; ``token=None`` sends no header."""
    made: list[httpx.Client] = []

    def make(token: str | None = default_token, base_url: str = base_url) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            client.close()
