"""What a service whose store cannot be reached answers: the same for every service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

PROBLEM_PREFIX = "urn:strata:problem:"


def assert_store_unavailable(
    base_url: str,
    check: str,
    write: tuple[str, str],
    *,
    headers: Mapping[str, str],
    json: Any = None,
) -> None:
    """``/readyz`` is 503 with ``check`` not ok, and ``write`` a 503 store-unavailable problem.

    ``write`` is ``(method, path)`` of a request that needs the store, sent with ``json``
    and ``headers`` (its credentials): a service that cannot reach its store must say so, not hang
    or answer 500.
    """
    with httpx.Client(base_url=base_url, headers=dict(headers), timeout=30) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"][check] != "ok", ready.text
        method, path = write
        answer = client.request(method, path, json=json)
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        body = answer.json()
        assert body["status"] == 503
        assert body["type"] == PROBLEM_PREFIX + "store-unavailable", body
