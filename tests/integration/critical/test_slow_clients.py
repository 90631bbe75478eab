"""Slow clients cannot take the ledger offline: 2,000 of them against the real gunicorn.

Before the intake worker, a client that sent one header line and then a byte now and then
held one of the 8 request threads for ever; 8 of them timed out every request, /livez
included. Now requests are received in each worker's event loop with deadlines and only
whole requests reach a thread.
"""

from __future__ import annotations

import re
import resource
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from services.critical.settings import CriticalSettings
from tests.integration.critical.conftest import service_env
from tests.support.observe import metric, wait_for
from tests.support.process import ServiceProcess
from tests.support.slowclients import SlowSwarm

READ_TIMEOUT = 15.0
HEADER_TRICKLERS = 1500
BODY_TRICKLERS = 500
SLOW = HEADER_TRICKLERS + BODY_TRICKLERS


def _nofile_at_least(wanted: int) -> None:
    """Raise this process's soft open-files limit (the swarm is in this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.fixture(scope="module")
def server(
    critical_settings_migrated: CriticalSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """gunicorn started with a soft open-files limit of 1,024, as some CI shells give.

    The master raises it for its workers (services/critical/fdlimit.py); without that, the
    workers could not hold the swarm's connections.
    """
    _nofile_at_least(SLOW + 1000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SLOW + 300:
        pytest.skip(f"the server needs {SLOW + 300} open files, the hard limit is {hard}")
    env = {
        **service_env(critical_settings_migrated),
        "STRATA_CRITICAL_REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
    }
    process = ServiceProcess("critical", env, tmp_path_factory.mktemp("slow"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    try:
        process.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    yield process
    process.stop()


def worker_rss_mib(server: ServiceProcess) -> list[float]:
    """Resident memory of each worker process (children of the gunicorn master)."""
    assert server.process is not None
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        sizes.append(round(kib / 1024, 1))
    return sizes


@pytest.fixture(scope="module")
def ops(server: ServiceProcess, make_token: Callable[..., str]) -> dict[str, Callable[[], int]]:
    """The requests a normal client makes, each on a new connection; returns its status."""
    token = make_token(  # valid for the whole module, however slow the machine
        "critical", "accounts:read", "accounts:write", "transfers:write", "ledger:admin", ttl=3600
    )
    auth = {"Authorization": f"Bearer {token}"}
    base = server.base_url
    ids = []
    for _ in range(2):
        made = requests.post(
            f"{base}/v1/accounts",
            json={"owner": f"slow-{uuid.uuid4().hex[:8]}", "currency": "EUR"},
            headers=auth,
            timeout=10,
        )
        assert made.status_code == 201
        ids.append(made.json()["id"])
    funded = requests.post(
        f"{base}/v1/accounts/{ids[0]}/deposits",
        json={"amount": 1_000_000, "reference": "seed"},
        headers=auth,
        timeout=10,
    )
    assert funded.status_code == 201

    def transfer() -> int:
        body = {"from_account": ids[0], "to_account": ids[1], "amount": 1, "currency": "EUR"}
        headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
        return requests.post(
            f"{base}/v1/transfers", json=body, headers=headers, timeout=5
        ).status_code

    return {
        "livez": lambda: requests.get(f"{base}/livez", timeout=5).status_code,
        "readyz": lambda: requests.get(f"{base}/readyz", timeout=5).status_code,
        "account": lambda: (
            requests.get(f"{base}/v1/accounts/{ids[1]}", headers=auth, timeout=5).status_code
        ),
        "transfer": transfer,
    }


def measure(ops: dict[str, Callable[[], int]], rounds: int) -> dict[str, list[float]]:
    """Latency of each operation, ``rounds`` times; every answer must be a success."""
    expected = {"livez": 200, "readyz": 200, "account": 200, "transfer": 201}
    seen: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            start = time.monotonic()
            assert op() == expected[name], name
            seen[name].append(time.monotonic() - start)
    return seen


def summary(latencies: dict[str, list[float]]) -> str:
    return ", ".join(
        f"{name} median {statistics.median(v) * 1000:.1f} ms max {max(v) * 1000:.1f} ms"
        for name, v in latencies.items()
    )


def test_two_thousand_slow_clients_leave_normal_clients_and_probes_served(
    server: ServiceProcess, ops: dict[str, Callable[[], int]]
) -> None:
    idle = measure(ops, rounds=10)
    rss_before = worker_rss_mib(server)
    body_head = (
        b"POST /v1/transfers HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
        b"Content-Length: 400\r\n\r\n{"
    )
    headers = SlowSwarm("127.0.0.1", server.port, HEADER_TRICKLERS).start()
    bodies = SlowSwarm("127.0.0.1", server.port, BODY_TRICKLERS, prefix=body_head).start()
    try:
        for swarm in (headers, bodies):
            swarm.wait_until(lambda r, s=swarm: r.opened == s.count, timeout=60)
        # The server itself holds every one of them, half-received, in its event loops.
        wait_for(
            lambda: metric(server.base_url, "strata_http_connections", state="reading") >= SLOW,
            timeout=30,
            what=f"{SLOW} connections reading",
        )
        loaded = measure(ops, rounds=10)
        rss_loaded = worker_rss_mib(server)
        # Still all connected: the requests above were served while they were.
        assert headers.report().open_now == HEADER_TRICKLERS
        assert bodies.report().open_now == BODY_TRICKLERS
        print(  # the figures the issue asks for (pytest -s shows them)
            f"\n0 slow clients: {summary(idle)}\n{SLOW} slow clients: {summary(loaded)}"
            f"\nworker RSS MiB: {rss_before} -> {rss_loaded}"
        )
        for name, values in loaded.items():
            assert max(values) < 2.0, (name, values)

        # Each is cut at its deadline with a 408 (or, if its last byte crossed our close,
        # a reset), READ_TIMEOUT after its first byte plus a loop turn.
        for swarm in (headers, bodies):
            report = swarm.wait_until(
                lambda r, s=swarm: r.closed_by_server == s.count, timeout=READ_TIMEOUT + 20
            )
            answered = report.status_lines.get("HTTP/1.1 408 Request Timeout", 0)
            assert answered >= 0.9 * swarm.count, report
        assert (
            metric(server.base_url, "strata_http_connections_cut_total", reason="read-timeout")
            >= SLOW
        )
        wait_for(
            lambda: metric(server.base_url, "strata_http_connections", state="reading") == 0,
            timeout=10,
            what="no connection left reading",
        )
    finally:
        headers.stop()
        bodies.stop()
    assert measure(ops, rounds=1)
