"""Exports cannot starve the rest of the service, and a client that stops reading is cut off.

A dedicated one-worker server per test (so every connection meets the same budget) on the
module's database: pool of 5, at most 2 exports at once, a 6 s send deadline. The export
read here is the 200,000-document collection (~110 MB), far more than socket buffers hold.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import open_transactions, slug, wait_until
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
POOL = 5
EXPORTS = 2
SEND_TIMEOUT = 6.0
RETRY_AFTER = "7"
PROMPT = 5.0  # seconds: an ordinary request waiting for a pooled connection would get 503


@pytest.fixture
def budget_service(
    ml_db: dict[str, str], big_collection: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A fresh server per test: an export another test's client left can hold a slot (and
    be counted as stalled) for up to the send deadline after its transaction ended, and
    each test counts refusals and stalls from zero."""
    env = {
        **ml_db,
        "STRATA_ML_POOL_SIZE": str(POOL),
        "STRATA_ML_EXPORT_MAX_CONCURRENT": str(EXPORTS),
        "STRATA_ML_EXPORT_SEND_TIMEOUT": str(SEND_TIMEOUT),
        "STRATA_ML_EXPORT_RETRY_AFTER": RETRY_AFTER,
    }
    tmp: Path = tmp_path_factory.mktemp("ml-budget")
    service = ServiceProcess("ml", env, tmp, workers=1).start()
    yield service
    service.stop()


class SlowReader(threading.Thread):
    """Reads an export at a slow but steady pace (64 KiB every 20 ms) until told to stop."""

    def __init__(self, base_url: str, token: str, path: str) -> None:
        super().__init__(daemon=True)
        # identity: httpx asks for gzip by default, and the export of this filler compresses
        # so well that it would fit in the socket buffers and never hold its slot.
        self.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
            timeout=60,
        )
        self.path = path
        self.status: int | None = None
        self.answered = threading.Event()
        self.stop = threading.Event()
        self.received = 0

    def run(self) -> None:
        try:
            with self.client.stream("GET", self.path) as response:
                self.status = response.status_code
                self.retry_after = response.headers.get("retry-after")
                self.answered.set()
                for chunk in response.iter_bytes(65536):
                    self.received += len(chunk)
                    if self.stop.wait(0.02):  # the client's pace, not a synchronisation
                        return
        finally:
            self.answered.set()
            self.client.close()


def test_exports_have_their_own_budget(
    budget_service: ServiceProcess,
    postgres_server: PostgresServer,
    ml_database: str,
    big_collection: str,
    token: str,
) -> None:
    # More slow exporters than the pool has connections: without a budget they would hold
    # every connection and everything else would wait, then fail with 503.
    readers = [
        SlowReader(budget_service.base_url, token, f"/v1/collections/{big_collection}/export")
        for _ in range(POOL + 1)
    ]
    try:
        for reader in readers:
            reader.start()
            assert reader.answered.wait(60)
        statuses = sorted(r.status or 0 for r in readers)
        assert statuses == [200] * EXPORTS + [429] * (POOL + 1 - EXPORTS)
        assert {r.retry_after for r in readers if r.status == 429} == {RETRY_AFTER}
        wait_until(
            lambda: open_transactions(postgres_server, ml_database) == EXPORTS, 30, "exports open"
        )

        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=budget_service.base_url, headers=headers, timeout=30) as c:
            name = f"b-{uuid.uuid4().hex[:12]}"
            docs = f"/v1/collections/{name}/documents"
            merge = {"content-type": "application/merge-patch+json"}
            for method, path, kwargs, expected in [
                ("GET", "/readyz", {}, 200),
                ("PUT", f"/v1/collections/{name}", {}, 201),
                ("POST", docs, {"json": {"id": "d1", "data": {"a": 1}}}, 201),
                ("GET", f"{docs}/d1", {}, 200),
                ("PATCH", f"{docs}/d1", {"content": b'{"b": 2}', "headers": merge}, 200),
                ("GET", docs, {"params": {"limit": 10}}, 200),
                ("GET", f"/v1/collections/{big_collection}/documents:count",
                 {"params": {"filter": '{"i": 7}'}}, 200),
                ("GET", f"/v1/collections/{big_collection}/documents",
                 {"params": {"limit": 100}}, 200),
                ("POST", f"{docs}:bulk", {"content": b'{"x": 1}\n{"x": 2}\n'}, 201),
                ("DELETE", f"{docs}/d1", {}, 204),
                ("DELETE", f"/v1/collections/{name}", {}, 204),
            ]:  # fmt: skip
                started = time.monotonic()
                response = c.request(method, path, **kwargs)
                elapsed = time.monotonic() - started
                assert response.status_code == expected, (method, path, response.text)
                assert elapsed < PROMPT, (method, path, elapsed)

            # One more export while both are streaming: refused at once, with Retry-After.
            refused = c.get(f"/v1/collections/{big_collection}/export")
            assert refused.status_code == 429
            assert slug(refused) == "too-many-exports"
            assert refused.headers["retry-after"] == RETRY_AFTER
            # the refusal took none
            assert open_transactions(postgres_server, ml_database) == EXPORTS
            metrics = c.get("/metrics").text
            assert 'strata_ml_exports_refused_total{service="ml"} 5.0' in metrics
        assert all(r.is_alive() for r in readers if r.status == 200), "readers still streaming"
    finally:
        for reader in readers:
            reader.stop.set()
        for reader in readers:
            reader.join(30)
    # Both slots come back once their clients go.
    wait_until(lambda: open_transactions(postgres_server, ml_database) == 0, 30, "exports released")
    again = [
        SlowReader(budget_service.base_url, token, f"/v1/collections/{big_collection}/export")
        for _ in range(EXPORTS)
    ]
    for reader in again:
        reader.start()
        assert reader.answered.wait(60)
    for reader in again:
        reader.stop.set()
        reader.join(30)
    assert [r.status for r in again] == [200] * EXPORTS


def test_a_client_that_stops_reading_is_cut_off(
    budget_service: ServiceProcess,
    postgres_server: PostgresServer,
    ml_database: str,
    big_collection: str,
    token: str,
) -> None:
    wait_until(
        lambda: open_transactions(postgres_server, ml_database) == 0, 30, "no export running"
    )
    request = (
        f"GET /v1/collections/{big_collection}/export HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", budget_service.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(request)
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        stopped = time.monotonic()  # from here on the client reads nothing
        assert open_transactions(postgres_server, ml_database) == 1, "the export is in flight"
        # Once the socket buffers are full the export waits on the client; after the send
        # deadline it is aborted and its snapshot and connection are released.
        waited = wait_until(
            lambda: open_transactions(postgres_server, ml_database) == 0,
            SEND_TIMEOUT + 30,
            "the stalled export's transaction ended",
        )
        assert time.monotonic() - stopped >= SEND_TIMEOUT - 0.5, "cut off before the deadline"
        assert waited <= SEND_TIMEOUT + 30
        # The socket was reset: whatever was buffered, the stream never completes.
        received = len(head)
        sock.settimeout(30)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 100_000_000, "the export did not complete"
    # httpx's default 5 s read timeout is no claim of this test (a loaded machine took
    # longer to the first byte of a 110 MB export): only that the slot is free again.
    with httpx.Client(
        base_url=budget_service.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as c:
        assert 'strata_ml_exports_stalled_total{service="ml"} 1.0' in c.get("/metrics").text
        # Its slot is free again: two exports start.
        for _ in range(EXPORTS):
            with c.stream("GET", f"/v1/collections/{big_collection}/export") as response:
                assert response.status_code == 200
                assert next(response.iter_lines()).startswith('{"id"')
    log = budget_service.log()
    assert "export aborted: the client stopped reading" in log
    assert '"level":"error"' not in log, "an abort is not an error"
