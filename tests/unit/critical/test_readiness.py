"""``/readyz`` answers within its deadline even when the database never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from services.critical.app import create_app
from services.critical.settings import CriticalSettings


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes TCP connections (into the backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_readiness_times_out_on_a_silent_database(silent_port: int) -> None:
    settings = CriticalSettings(
        environment="development",
        database_host="127.0.0.1",
        database_port=silent_port,
        connect_timeout=5,  # the driver alone would wait this long
        readiness_timeout=0.3,
    )
    client = create_app(settings).test_client()
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json == {
        "status": "unavailable",
        "checks": {"database": "timeout after 0.3s"},
    }
    assert elapsed < 2.0, elapsed
