"""Metrics through gunicorn with two workers: one scrape sums every worker."""

from __future__ import annotations

import pathlib
import re
import time

import psutil
import requests

from tests.support.process import ServiceProcess


def _value(text: str, route: str, status: str, method: str = "GET") -> float:
    pattern = (
        r'^http_requests_total\{(?=[^}]*method="'
        + method
        + r'")(?=[^}]*route="'
        + re.escape(route)
        + r'")(?=[^}]*status="'
        + status
        + r'")[^}]*\} ([0-9.e+]+)$'
    )
    found = re.findall(pattern, text, flags=re.M)
    return float(found[0]) if found else 0.0


def test_scrape_sums_all_workers_with_route_templates(gunicorn: ServiceProcess, auth) -> None:
    base = gunicorn.base_url
    route = "/v1/accounts/<account_id>"
    before = _value(requests.get(f"{base}/metrics").text, route, "404")
    n = 60
    for _ in range(n):
        # A new connection each time, so the kernel spreads them over both workers.
        with requests.Session() as s:
            response = s.get(
                f"{base}/v1/accounts/00000000-0000-0000-0000-000000000001", headers=auth()
            )
            assert response.status_code == 404
    scrapes = [requests.get(f"{base}/metrics").text for _ in range(4)]
    for text in scrapes:
        assert _value(text, route, "404") - before == n
        assert "/v1/accounts/00000000" not in text  # never the raw path
    assert "strata_build_info" in scrapes[0]
    assert 'strata_db_pool_connections_max{service="critical"}' in scrapes[0]
    assert "http_request_duration_seconds_bucket" in scrapes[0]


def test_metrics_files_come_from_more_than_one_worker(gunicorn: ServiceProcess) -> None:
    """Every worker writes its own files into the shared multiprocess directory.

    Which worker accepts a connection is the kernel's choice (often the same one on an idle
    machine), so requests cannot be steered to both. Each worker's event loop publishes its
    connection gauges within a second of starting, request or not: wait for a file of each
    worker's pid.
    """
    assert gunicorn.process is not None
    workers = {child.pid for child in psutil.Process(gunicorn.process.pid).children()}
    assert len(workers) == 2, workers
    directory = pathlib.Path(gunicorn.env["PROMETHEUS_MULTIPROC_DIR"])

    def writers() -> set[int]:
        # <type>[_<mode>]_<pid>.db, e.g. gauge_livesum_1234.db
        return {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("*.db")}

    deadline = time.monotonic() + 15
    while not workers <= writers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers <= writers(), (workers, sorted(p.name for p in directory.iterdir()))


def test_a_client_gone_mid_body_is_counted_as_499_not_5xx(gunicorn: ServiceProcess, auth) -> None:
    """Aborted requests are recorded apart (499), so they cannot fire the 5xx alert."""
    import socket

    base = gunicorn.base_url
    route = "/v1/accounts"
    before = _value(requests.get(f"{base}/metrics").text, route, "499", "POST")
    token = auth()["Authorization"]
    head = (
        f"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"owner":'
    )
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=5) as sock:
        sock.sendall(head.encode())
        sock.shutdown(socket.SHUT_WR)  # 90 promised bytes never come
        sock.recv(65536)  # whatever the server does, wait until it is done with us
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = requests.get(f"{base}/metrics").text
        if _value(text, route, "499", "POST") > before:
            break
        time.sleep(0.1)
    assert _value(text, route, "499", "POST") == before + 1
    assert 'status="5' not in "\n".join(
        line for line in text.splitlines() if f'route="{route}"' in line
    )
