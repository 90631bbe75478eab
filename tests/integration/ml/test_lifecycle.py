"""SIGTERM drain (an export in flight completes), migrate under concurrency."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import BIG_ROWS
from tests.support.process import ROOT, ServiceProcess

pytestmark = pytest.mark.integration


def test_sigterm_drains_an_export_in_flight(
    ml_db: dict[str, str], big_collection: str, tmp_path: Path, token: str
) -> None:
    env = {**ml_db, "STRATA_ML_DRAIN_SECONDS": "2"}
    service = ServiceProcess("ml", env, tmp_path, workers=2).start()
    # identity: gzip (httpx's default) would shrink the export enough to be sent before
    # the signal, and the drain would have nothing in flight to wait for.
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    try:
        with (
            httpx.Client(base_url=service.base_url, headers=headers, timeout=60) as client,
            client.stream("GET", f"/v1/collections/{big_collection}/export") as response,
        ):
            assert response.status_code == 200
            chunks = response.iter_bytes()
            received = next(chunks)
            service.signal(signal.SIGTERM)
            # While draining, readiness fails but the server still answers.
            deadline = time.monotonic() + 10
            ready = 200
            while ready == 200 and time.monotonic() < deadline:
                with httpx.Client(base_url=service.base_url) as probe:
                    ready = probe.get("/readyz").status_code
            assert ready == 503
            lines = received.count(b"\n") + sum(chunk.count(b"\n") for chunk in chunks)
        assert lines == BIG_ROWS
        assert service.process is not None
        assert service.process.wait(timeout=60) == 0
    finally:
        service.stop()


def test_migrate_is_idempotent_and_safe_concurrently(
    postgres_server: PostgresServer, ml_database: str, ml_db: dict[str, str]
) -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.ml", "migrate"],
            cwd=ROOT,
            env={**ml_db, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    for run in runs:
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0, out.decode()
        assert b"ml schema ready" in out
    indexes = postgres_server.psql(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'ml_documents' ORDER BY 1", ml_database
    )
    assert "USING gin (data jsonb_path_ops)" in indexes
    assert "(collection_id, created_at, id)" in indexes


def test_unknown_command_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.ml", "nope"], cwd=ROOT, capture_output=True, check=False
    )
    assert result.returncode == 2
    assert b"usage" in result.stderr
