"""Graceful shutdown: ``docker stop`` while a stream of requests runs.

A dedicated container of each service (the shared ones stay up for the other tests) gets a
steady stream of authenticated GETs from a load generator in another container on the same
network, which behaves like kube-proxy in front of a pod: it keeps sending for LAG seconds
after ``/readyz`` turns 503, then stops sending (see loadgen.py). ``docker stop`` sends
SIGTERM to PID 1. The service must turn ``/readyz`` to 503 at once, keep serving for its
drain time (STRATA_<SVC>_DRAIN_SECONDS > LAG), answer every request, and exit 0 well inside
the stop timeout (no SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.images.conftest import SHUTDOWN_REPORT, ServiceSetup, StartService
from tests.e2e.images.dockerlib import HARDENED, Container, Stack, docker, wait_for

LOADGEN = (Path(__file__).parent / "loadgen.py").read_text(encoding="utf-8")
STOP_TIMEOUT = 30  # docker stop -t: SIGKILL after this
# STRATA_E2E_DRAIN_SECONDS=0 shows the test failing: the service then stops serving at SIGTERM.
DRAIN_SECONDS = float(os.environ.get("STRATA_E2E_DRAIN_SECONDS", "2"))
LAG_SECONDS = 1.0  # endpoint-removal lag the load generator simulates (< DRAIN_SECONDS)
MAX_SHUTDOWN_SECONDS = 15  # "well inside" the stop timeout, drain included


def _resource(service: str, container: Container, setup: ServiceSetup) -> tuple[str, str]:
    """Create something to read through the shared container; return (path, scope)."""
    if service == "critical":
        headers = setup.auth("accounts:write")
        resp = requests.post(
            f"{container.url}/v1/accounts",
            json={"owner": "shutdown", "currency": "EUR"},
            headers=headers,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return f"/v1/accounts/{resp.json()['id']}", "accounts:read"
    if service == "ml":
        headers = setup.auth("docs:write", "collections:admin")
        name = f"stop_{uuid.uuid4().hex[:8]}"
        assert (
            requests.put(
                f"{container.url}/v1/collections/{name}", headers=headers, timeout=10
            ).status_code
            == 201
        )
        resp = requests.post(
            f"{container.url}/v1/collections/{name}/documents",
            json={"data": {"k": 1}},
            headers=headers,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return f"/v1/collections/{name}/documents/{resp.json()['id']}", "docs:read"
    headers = setup.auth("cache:write")
    key = f"stop-{uuid.uuid4().hex[:8]}"
    resp = requests.put(
        f"{container.url}/v1/kv/{key}",
        json={"value": {"k": 1}, "ttl": 600},
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return f"/v1/kv/{key}", "cache:read"


def _progress(container: Container) -> dict[str, Any]:
    lines = [line for line in container.logs(tail=3).splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


@pytest.mark.parametrize("service", ["critical", "ml", "cache"])
def test_docker_stop_under_load_loses_nothing(
    service: str, request: pytest.FixtureRequest, stack: Stack, start_service: StartService
) -> None:
    shared: Container = request.getfixturevalue(service)
    setup: ServiceSetup = request.getfixturevalue(f"{service}_setup")
    path, scope = _resource(service, shared, setup)

    prefix = f"STRATA_{service.upper()}_"
    target = start_service(
        setup, f"{service}-stop", **{f"{prefix}DRAIN_SECONDS": f"{DRAIN_SECONDS:g}"}
    )
    ip = target.ip(stack.network)
    token = setup.token(scope, ttl=600)
    load = stack.run(
        f"{service}-load",
        setup.image,
        ["-c", LOADGEN, ip, "8000", path, f"Bearer {token}", "200", "8", "90", str(LAG_SECONDS)],
        options=(*HARDENED, "--entrypoint", "/opt/venv/bin/python"),
    )
    wait_for(
        "the load generator's first 200 successes",
        lambda: _progress(load).get("ok", 0) >= 200 or load.assert_running(),
        deadline=60,
    )
    before = _progress(load)
    assert before.get("failed") == 0, load.logs()

    # docker stop in a thread, while /readyz is watched through the published port.
    stopped: dict[str, float] = {}

    def stop() -> None:
        stopped["at"] = time.time()
        docker("stop", "-t", str(STOP_TIMEOUT), target.name, timeout=STOP_TIMEOUT + 30)
        stopped["done"] = time.time()

    thread = threading.Thread(target=stop)
    thread.start()
    readyz: set[int] = set()
    while thread.is_alive():
        with contextlib.suppress(requests.RequestException):
            readyz.add(requests.get(f"{target.url}/readyz", timeout=0.5).status_code)
        time.sleep(0.05)
    thread.join()
    elapsed = stopped["done"] - stopped["at"]
    state = target.state()

    code = int(docker("wait", load.name, timeout=120).stdout.strip())
    finals = [line for line in load.logs(tail=5).splitlines() if '"final"' in line]
    assert finals, f"no summary from the load generator:\n{load.logs()}"
    final = json.loads(finals[-1])
    # Successes in the 100 ms slots that start after SIGTERM was sent.
    first_slot = int((stopped["at"] - final["begin"]) * 10) + 1
    served_after_sigterm = sum(final["ok_per_100ms"][first_slot:])
    SHUTDOWN_REPORT.append(
        f"{service}: docker stop took {elapsed:.2f}s (drain {DRAIN_SECONDS}s, timeout "
        f"{STOP_TIMEOUT}s), exit {state['ExitCode']}; requests ok={final['ok']} "
        f"(of which {served_after_sigterm} after SIGTERM), failed={final['failed_count']}; "
        f"/readyz seen {sorted(readyz)}"
    )
    logs = target.logs(tail=60)
    print(f"--- last log lines of {target.name} ---\n{logs}")  # shown by pytest on failure
    assert code == 0, load.logs()
    assert final["failed_count"] == 0, (final["failed"], logs)
    assert state["ExitCode"] == 0 and not state["OOMKilled"], (state, logs)
    assert elapsed < MAX_SHUTDOWN_SECONDS, (elapsed, logs)
    assert elapsed >= DRAIN_SECONDS - 0.5, f"exited after {elapsed:.2f}s, before its drain time"
    assert served_after_sigterm > 0, "nothing was served during the drain"
    assert 503 in readyz, f"/readyz never answered 503 while draining: {readyz}"
    stack.remove(target)
    stack.remove(load)
