"""Faults end in a clean, documented state: database outage and recovery, SIGTERM drain."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from services.critical.migrate import migrate
from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings, service_env
from tests.support.process import ServiceProcess

CONNECT_TIMEOUT = 2
POOL_TIMEOUT = 1.0


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL this test may stop and start."""
    server = PostgresServer().start()
    yield server
    server.stop()


def _serve(pg: PostgresServer, tmp_path, **extra: str) -> ServiceProcess:
    create_database(pg, "strata_critical")
    settings = critical_settings(pg, "strata_critical")
    migrate(settings)
    env = {
        **service_env(settings),
        "STRATA_CRITICAL_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "STRATA_CRITICAL_POOL_TIMEOUT": str(POOL_TIMEOUT),
        **extra,
    }
    return ServiceProcess("critical", env, tmp_path).start()


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not {what} within {timeout}s")


def test_database_outage_gives_503_quickly_and_recovers(own_postgres, tmp_path, auth) -> None:
    server = _serve(own_postgres, tmp_path)
    try:
        base = server.base_url
        created = requests.post(
            f"{base}/v1/accounts", json={"owner": "o", "currency": "EUR"}, headers=auth()
        )
        assert created.status_code == 201
        assert requests.get(f"{base}/readyz").status_code == 200

        own_postgres.stop(remove=False)
        bound = CONNECT_TIMEOUT + POOL_TIMEOUT + 3  # the configured waits plus slack
        for _ in range(3):
            started = time.monotonic()
            response = requests.get(
                f"{base}/v1/accounts/{created.json()['id']}", headers=auth(), timeout=30
            )
            elapsed = time.monotonic() - started
            assert response.status_code == 503
            assert response.json()["type"] == "urn:strata:problem:store-unavailable"
            assert response.headers["Retry-After"]
            assert "psycopg2" not in response.text
            assert "SELECT" not in response.text
            assert elapsed < bound, elapsed
        ready = requests.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok"
        assert requests.get(f"{base}/livez").status_code == 200  # liveness never checks the DB

        own_postgres.restart_stopped()
        _wait_until(lambda: requests.get(f"{base}/readyz").status_code == 200, 30, "ready again")
        again = requests.get(f"{base}/v1/accounts/{created.json()['id']}", headers=auth())
        assert again.status_code == 200
        assert again.json()["id"] == created.json()["id"]
    finally:
        server.stop()


def test_sigterm_fails_readiness_first_then_drains_without_errors(
    own_postgres, tmp_path, auth
) -> None:
    server = _serve(own_postgres, tmp_path, STRATA_CRITICAL_DRAIN_SECONDS="2")
    base = server.base_url
    headers = auth()
    a = requests.post(
        f"{base}/v1/accounts", json={"owner": "d", "currency": "EUR"}, headers=headers
    ).json()
    b = requests.post(
        f"{base}/v1/accounts", json={"owner": "d", "currency": "EUR"}, headers=headers
    ).json()
    requests.post(
        f"{base}/v1/accounts/{a['id']}/deposits", json={"amount": 10_000}, headers=headers
    )
    stop = threading.Event()
    outcomes: list[str] = []
    accepted: list[str] = []

    def transfer() -> requests.Response:
        return requests.post(
            f"{base}/v1/transfers",
            json={"from_account": a["id"], "to_account": b["id"], "amount": 1, "currency": "EUR"},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )

    def load() -> None:
        # Like a load balancer: new requests stop once readiness has failed.
        while not stop.is_set():
            try:
                response = transfer()
            except requests.ConnectionError as exc:
                outcomes.append(f"broken: {exc}")
                continue
            outcomes.append(str(response.status_code))
            if response.status_code == 201:
                accepted.append(response.json()["id"])

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    _wait_until(lambda: len(outcomes) > 20, 30, "under load")
    server.signal(signal.SIGTERM)
    _wait_until(lambda: requests.get(f"{base}/readyz").status_code == 503, 5, "draining")
    stop.set()
    for worker in workers:
        worker.join(30)
    # Still serving while the endpoint is being removed (the drain window).
    late = transfer()
    assert late.status_code == 201
    accepted.append(late.json()["id"])
    assert server.process is not None
    code = server.process.wait(60)
    assert code == 0
    assert outcomes and set(outcomes) == {"201"}, [o for o in outcomes if o != "201"][:3]
    # Every acknowledged transfer is in the ledger, and nothing else moved money.
    ids = own_postgres.psql(
        f"SELECT id FROM transfers WHERE to_account = '{b['id']}'", database="strata_critical"
    ).split()
    assert sorted(ids) == sorted(accepted)


def test_a_killed_worker_is_replaced_and_counters_never_go_back(own_postgres, tmp_path, auth):
    import psutil

    server = _serve(own_postgres, tmp_path)
    try:
        base = server.base_url
        for _ in range(30):
            assert requests.get(f"{base}/v1/accounts?limit=1", headers=auth()).status_code == 200

        def total() -> float:
            text = requests.get(f"{base}/metrics", timeout=10).text
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("http_requests_total{") and 'route="/v1/accounts"' in line
            )

        before = total()
        assert before >= 30
        assert server.process is not None
        master = psutil.Process(server.process.pid)
        victim = master.children()[0]
        victim.kill()
        victim.wait(10)
        _wait_until(
            lambda: (
                len([c for c in master.children() if c.is_running()]) == 2
                and victim.pid not in [c.pid for c in master.children()]
            ),
            30,
            "worker replaced",
        )
        for _ in range(10):
            assert requests.get(f"{base}/v1/accounts?limit=1", headers=auth()).status_code == 200
        assert total() >= before + 10  # the dead worker's counts are still in the sum
    finally:
        server.stop()
