"""How the worker's event loop receives requests: deadlines, limits, 100-continue, pipelining.

Over raw sockets against gunicorn, with a short read timeout so each deadline shows fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from services.critical.settings import CriticalSettings
from tests.integration.critical.conftest import service_env
from tests.support.observe import metric, wait_for
from tests.support.process import ServiceProcess
from tests.support.rawhttp import RawConnection
from tests.support.slowclients import SlowSwarm

READ_TIMEOUT = 2.0
KEEPALIVE = 5.0  # gunicorn_conf.keepalive: how long a connection may wait for a first byte
BUDGET = 1_200_000  # barely more than one whole request (1 MiB body + 64 KiB head)


@pytest.fixture(scope="module")
def server(
    critical_settings_migrated: CriticalSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """gunicorn with one worker, a 2 s read timeout and a small buffer budget."""
    env = {
        **service_env(critical_settings_migrated),
        "STRATA_CRITICAL_REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
        "STRATA_CRITICAL_REQUEST_BUFFER_BYTES": str(BUDGET),
    }
    process = ServiceProcess("critical", env, tmp_path_factory.mktemp("intake"), workers=1)
    yield process.start()
    process.stop()


@pytest.fixture
def connect(server: ServiceProcess) -> Iterator[type[RawConnection]]:
    opened: list[RawConnection] = []

    class Tracked(RawConnection):
        def __init__(self, timeout: float = 10.0) -> None:
            super().__init__(server.port, timeout)
            opened.append(self)

    yield Tracked
    for conn in opened:
        conn.close()


LIVEZ = b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n"


def _livez_is_prompt(server: ServiceProcess) -> None:
    start = time.monotonic()
    assert requests.get(f"{server.base_url}/livez", timeout=5).status_code == 200
    assert time.monotonic() - start < 1.0


def test_a_kept_alive_connection_that_trickles_its_next_request_gets_408(connect) -> None:
    conn = connect()
    conn.send(LIVEZ)
    assert conn.response().status == 200
    conn.send(b"GET /livez HTTP/1.1\r\nHost: t\r\n")
    started = time.monotonic()
    answer = conn.response()
    waited = time.monotonic() - started
    assert answer.status == 408
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:strata:problem:request-timeout"
    assert answer.headers["connection"] == "close"
    assert answer.headers["x-request-id"]
    assert READ_TIMEOUT - 0.1 <= waited <= READ_TIMEOUT + 2.5
    assert conn.closed_by_server()


def test_a_body_that_does_not_arrive_in_time_gets_408(connect) -> None:
    conn = connect()
    conn.send(b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{")
    assert conn.response().status == 408
    assert conn.closed_by_server()


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(connect) -> None:
    conn = connect(timeout=KEEPALIVE + 5)
    started = time.monotonic()
    assert conn.closed_by_server()
    assert conn.pending == b""
    assert KEEPALIVE - 0.1 <= time.monotonic() - started <= KEEPALIVE + 2.5


def test_clients_that_never_close_after_connection_close_do_not_stall_the_server(
    server: ServiceProcess, connect
) -> None:
    # gunicorn lingers up to 2 s per closing connection for the client's FIN, in its event
    # loop: 40 clients that never close would have stalled every other client for 80 s.
    lingering = [connect() for _ in range(40)]
    for conn in lingering:
        conn.send(b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    for conn in lingering:
        assert conn.response().status == 200
    _livez_is_prompt(server)
    # ... and the server closes them itself once the linger is over.
    for conn in lingering:
        assert conn.closed_by_server()


def test_expect_100_continue_gets_one_interim_answer_before_the_body(connect, make_token) -> None:
    token = make_token("critical", "accounts:write")
    body = b'{"owner": "continue", "currency": "EUR"}'
    conn = connect()
    conn.send(
        b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nExpect: 100-continue\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    assert conn.response().status == 100  # before any byte of the body
    conn.send(body)
    assert conn.response().status == 201
    assert conn.pending == b""  # no second 100 Continue


def test_pipelined_requests_are_all_answered_in_order(connect) -> None:
    conn = connect()
    conn.send(LIVEZ + b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n" + LIVEZ)
    assert [conn.response().status for _ in range(3)] == [200, 404, 200]


def test_a_head_over_64_kib_is_431(connect) -> None:
    conn = connect()
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 8000) for i in range(9))
    conn.send(b"GET /livez HTTP/1.1\r\nHost: t\r\n" + pad)
    answer = conn.response()
    assert answer.status == 431
    assert answer.json()["type"] == "urn:strata:problem:header-fields-too-large"
    assert answer.headers["connection"] == "close"


def test_buffered_bytes_over_the_budget_are_503_server_busy(server, connect) -> None:
    head = b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"
    first = connect()
    first.send(head + b"a" * 700_000)
    wait_for(
        lambda: metric(server.base_url, "strata_http_request_buffer_bytes") >= 700_000,
        timeout=10,
        what="the first body buffered",
    )
    second = connect()
    second.send(head + b"a" * 700_000)
    answer = second.response()
    assert answer.status == 503
    assert answer.json()["type"] == "urn:strata:problem:server-busy"
    assert answer.headers["retry-after"] == "1"
    # The first is unharmed: its body completes and the application answers it.
    first.send(b"a" * 300_000)
    assert first.response().status in {401, 415}


def test_sigterm_closes_slow_clients_and_stops_within_the_linger(
    critical_settings_migrated: CriticalSettings, tmp_path
) -> None:
    # Their deadline (60 s) is far; the stop must not wait for it, nor for the 20 s
    # graceful timeout: half-received requests get 408 once the linger (2 s) is over.
    env = {
        **service_env(critical_settings_migrated),
        "STRATA_CRITICAL_REQUEST_READ_TIMEOUT": "60",
    }
    server = ServiceProcess("critical", env, tmp_path, workers=1).start()
    swarm = SlowSwarm("127.0.0.1", server.port, 200).start()
    try:
        swarm.wait_until(lambda r: r.opened == 200, timeout=30)
        wait_for(
            lambda: metric(server.base_url, "strata_http_connections", state="reading") >= 200,
            timeout=10,
            what="200 connections reading",
        )
        started = time.monotonic()
        assert server.stop(timeout=15) == 0
        assert time.monotonic() - started < 8
        report = swarm.wait_until(lambda r: r.closed_by_server == 200, timeout=5)
        assert report.status_lines.get("HTTP/1.1 408 Request Timeout", 0) >= 180, report
    finally:
        swarm.stop()
        server.stop()
