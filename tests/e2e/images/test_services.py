"""Each service image, run as the chart runs it, answers over HTTP with real work done."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.e2e.images.conftest import ServiceSetup
from tests.e2e.images.dockerlib import Container

TIMEOUT = 10


def _metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


@pytest.mark.parametrize("service", ["critical", "ml", "cache"])
def test_probes_and_metrics(service: str, request: pytest.FixtureRequest) -> None:
    container: Container = request.getfixturevalue(service)
    live = requests.get(f"{container.url}/livez", timeout=TIMEOUT)
    assert live.status_code == 200, live.text
    assert live.json()["status"] == "ok"
    ready = requests.get(f"{container.url}/readyz", timeout=TIMEOUT)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"
    assert requests.get(f"{container.url}/openapi.json", timeout=TIMEOUT).json()["openapi"]
    metrics = requests.get(f"{container.url}/metrics", timeout=TIMEOUT)
    assert metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    build = _metric_lines(metrics.text, "strata_build_info")
    assert any(f'service="{service}"' in line and 'version="0.1.0"' in line for line in build), (
        build
    )
    # The revision baked in at build time reaches the metric (STRATA_REVISION in the image).
    labels = container.inspect()["Config"]["Labels"]
    revision = labels["org.opencontainers.image.revision"]
    assert any(f'revision="{revision}"' in line for line in build), (revision, build)


@pytest.mark.parametrize("service", ["critical", "ml", "cache"])
def test_rejects_missing_and_foreign_tokens(service: str, request: pytest.FixtureRequest) -> None:
    container: Container = request.getfixturevalue(service)
    path = {"critical": "/v1/accounts", "ml": "/v1/collections", "cache": "/v1/kv/x"}[service]
    missing = requests.get(f"{container.url}{path}", timeout=TIMEOUT)
    assert missing.status_code == 401
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    # A token signed with another key (e.g. the development secret) is refused in production.
    from services.common.auth import mint_token
    from services.common.settings import DEV_JWT_SECRET

    forged = mint_token(key=DEV_JWT_SECRET, audience=f"strata-{service}", scopes=["x"])
    resp = requests.get(
        f"{container.url}{path}", headers={"Authorization": f"Bearer {forged}"}, timeout=TIMEOUT
    )
    assert resp.status_code == 401


def test_critical_deposit_and_transfer(critical: Container, critical_setup: ServiceSetup) -> None:
    url = critical.url
    writer = critical_setup.auth("accounts:write", "accounts:read", "transfers:write")
    admin = critical_setup.auth("ledger:admin")
    accounts = []
    for owner in ("alice", "bob"):
        resp = requests.post(
            f"{url}/v1/accounts",
            json={"owner": owner, "currency": "EUR"},
            headers=writer,
            timeout=TIMEOUT,
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["balance"] == 0
        accounts.append(resp.json()["id"])
    alice, bob = accounts

    deposit = requests.post(
        f"{url}/v1/accounts/{alice}/deposits",
        json={"amount": 10_000, "reference": "e2e seed"},
        headers=admin,
        timeout=TIMEOUT,
    )
    assert deposit.status_code == 201, deposit.text

    key = f"e2e-{uuid.uuid4()}"
    body = {"from_account": alice, "to_account": bob, "amount": 2_500, "currency": "EUR",
            "reference": "e2e transfer"}  # fmt: skip
    first = requests.post(
        f"{url}/v1/transfers",
        json=body,
        headers={**writer, "Idempotency-Key": key},
        timeout=TIMEOUT,
    )
    assert first.status_code == 201, first.text
    transfer = first.json()
    assert transfer["amount"] == 2_500
    assert transfer["from_account"] == alice and transfer["to_account"] == bob

    replay = requests.post(
        f"{url}/v1/transfers",
        json=body,
        headers={**writer, "Idempotency-Key": key},
        timeout=TIMEOUT,
    )
    assert replay.status_code == 201
    assert replay.json()["id"] == transfer["id"]

    balances = {}
    for account in (alice, bob):
        resp = requests.get(f"{url}/v1/accounts/{account}", headers=writer, timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text
        balances[account] = resp.json()["balance"]
    assert balances == {alice: 7_500, bob: 2_500}

    # Without the admin scope a deposit is forbidden.
    forbidden = requests.post(
        f"{url}/v1/accounts/{alice}/deposits",
        json={"amount": 1, "reference": "x"},
        headers=writer,
        timeout=TIMEOUT,
    )
    assert forbidden.status_code == 403

    metrics = requests.get(f"{url}/metrics", timeout=TIMEOUT).text
    transfers = [
        line
        for line in _metric_lines(metrics, "http_requests_total")
        if 'route="/v1/transfers"' in line and 'status="201"' in line
    ]
    assert transfers and float(transfers[0].rsplit(" ", 1)[1]) >= 2, transfers


def test_ml_bulk_ingest_and_export(ml: Container, ml_setup: ServiceSetup) -> None:
    url = ml.url
    headers = ml_setup.auth("docs:read", "docs:write", "collections:admin")
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    created = requests.put(f"{url}/v1/collections/{name}", headers=headers, timeout=TIMEOUT)
    assert created.status_code == 201, created.text

    docs = [{"i": i, "split": "train" if i % 4 else "test", "x": [i, i * 2]} for i in range(500)]
    ndjson = "".join(json.dumps(d) + "\n" for d in docs)
    bulk = requests.post(
        f"{url}/v1/collections/{name}/documents:bulk",
        data=ndjson.encode(),
        headers={**headers, "Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    assert bulk.status_code == 201, bulk.text
    assert bulk.json()["inserted"] == 500
    ids = bulk.json()["ids"]

    bad = requests.post(
        f"{url}/v1/collections/{name}/documents:bulk",
        data=b'{"ok": 1}\nnot json\n',
        headers={**headers, "Content-Type": "application/x-ndjson"},
        timeout=TIMEOUT,
    )
    assert bad.status_code == 422, bad.text

    export = requests.get(
        f"{url}/v1/collections/{name}/export", headers=headers, timeout=30, stream=True
    )
    assert export.status_code == 200, export.text
    assert export.headers["Content-Type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in export.iter_lines() if line]
    assert len(rows) == 500
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert sorted(r["data"]["i"] for r in rows) == list(range(500))

    flt = json.dumps({"split": "test"})
    filtered = requests.get(
        f"{url}/v1/collections/{name}/export",
        params={"filter": flt},
        headers=headers,
        timeout=30,
    )
    assert filtered.status_code == 200
    assert len([line for line in filtered.text.splitlines() if line]) == 125


def test_cache_put_get_and_counter(cache: Container, cache_setup: ServiceSetup) -> None:
    url = cache.url
    headers = cache_setup.auth("cache:read", "cache:write")
    key = f"e2e:{uuid.uuid4().hex}"
    value = {"model": "m1", "scores": [0.5, 0.25], "nested": {"ok": True}}
    put = requests.put(
        f"{url}/v1/kv/{key}", json={"value": value, "ttl": 120}, headers=headers, timeout=TIMEOUT
    )
    assert put.status_code == 200, put.text
    got = requests.get(f"{url}/v1/kv/{key}", headers=headers, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    assert got.json()["value"] == value
    assert 0 < got.json()["ttl"] <= 120

    missing = requests.get(f"{url}/v1/kv/{key}-nope", headers=headers, timeout=TIMEOUT)
    assert missing.status_code == 404

    counter = f"e2e-counter-{uuid.uuid4().hex[:8]}"
    for expected in (1, 2, 3):
        incr = requests.post(
            f"{url}/v1/counters/{counter}:incr",
            json={"by": 1},
            headers=headers,
            timeout=TIMEOUT,
        )
        assert incr.status_code == 200, incr.text
        assert incr.json()["value"] == expected

    reader = cache_setup.auth("cache:read")
    denied = requests.put(f"{url}/v1/kv/{key}", json={"value": 1}, headers=reader, timeout=TIMEOUT)
    assert denied.status_code == 403


@pytest.mark.parametrize("service", ["critical", "ml", "cache"])
def test_root_filesystem_is_read_only_and_tmp_writable(
    service: str, request: pytest.FixtureRequest
) -> None:
    container: Container = request.getfixturevalue(service)
    denied = container.exec(
        "sh", "-c", "touch /app/x || touch /opt/venv/x || touch /x", check=False
    )
    assert denied.returncode != 0
    assert "Read-only file system" in denied.stderr
    assert container.exec("sh", "-c", "touch /tmp/x && rm /tmp/x", check=False).returncode == 0
    # Every process of the service runs as 10001 with no capabilities.
    status = container.exec(
        "sh", "-c", "grep -h -E '^(Uid|Gid|CapEff):' /proc/[0-9]*/status"
    ).stdout
    uids = {line.split()[1] for line in status.splitlines() if line.startswith("Uid:")}
    caps = {line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")}
    assert uids == {"10001"}, status
    assert caps == {"0000000000000000"}, status
    # The Prometheus multiprocess directory lives on the tmpfs.
    listing = container.exec("sh", "-c", "ls /tmp/prometheus | head -n 3", check=False)
    assert listing.returncode == 0 and listing.stdout.strip(), listing.stderr
