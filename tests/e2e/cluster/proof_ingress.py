"""Proof 15 (issue 18): clients reach Strata through a real ingress controller, by the chart's
Ingress and by its Gateway API HTTPRoutes, over TLS signed by a test CA.

Traefik (built from its pinned Go module, addons/traefik.yaml) serves both APIs. The Gateway
API CRDs are applied from the pinned ``sigs.k8s.io/gateway-api`` module (standard channel), so
the API server validates the chart's HTTPRoutes. The release is upgraded in place
(``--reset-then-reuse-values``: the chart's defaults, the release's values, then these) with
values-ingress.yaml: the Ingress on one host name, HTTPRoutes on a second one attached to a
Gateway in Traefik's namespace whose HTTPS listener reads the certificate Secret of the
release namespace through the chart's ReferenceGrant, and the NetworkPolicies admitting
Traefik's pods. Then, through each front door in turn: accounts, a deposit and a transfer with
its idempotent replay; an ml collection, an NDJSON bulk ingest and the streamed export of it;
kv put/get, the ``:mset``/``:mget`` batch paths (Exact paths with a colon) and a counter.
``/metrics`` is never routed (404 from Traefik), and a client that trusts another CA is
refused (TLS verification fails).

Needs STRATA_E2E_TRAEFIK_IMAGE and STRATA_E2E_GATEWAY_CRDS (tests/e2e/kind/build-addons.sh
prints them; kind.sh exports them). Uses only what proofs.py's ``Proofs`` object offers.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from proof_addons import need, wait_until

HERE = Path(__file__).resolve().parent
ADDONS = HERE / "addons"
INGRESS_HOST = "api.strata.test"
GATEWAY_HOST = "gw.strata.test"
TLS_SECRET = "strata-e2e-tls"
GATEWAY = "strata-e2e"
TRAEFIK_NS = "traefik"


def make_pki(work: Path, hosts: list[str]) -> tuple[Path, Path, Path, Path]:
    """A test CA, a server certificate for ``hosts`` signed by it, and a second, unrelated CA.

    Returns (ca.crt, server.crt, server.key, other-ca.crt).
    """

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)

    # a fresh P-256 key, unencrypted
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    for ca in ("ca", "other-ca"):
        ossl("req", "-x509", *key, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
             "-subj", f"/CN=strata-e2e-{ca}")  # fmt: skip
    ossl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={hosts[0]}")
    (work / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join('DNS:' + h for h in hosts)}\n"
    )
    ossl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-sha256",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    )
    return work / "ca.crt", work / "server.crt", work / "server.key", work / "other-ca.crt"


class FrontDoor:
    """HTTPS to Traefik's NodePort with the host name in SNI and Host, as a client resolving
    ``host`` to the load balancer would send it."""

    def __init__(
        self, guard: Callable[[str], str], base: str, host: str, ca: Path, token: str
    ) -> None:
        self.guard, self.base, self.host = guard, base, host
        self.client = httpx.Client(
            verify=ssl.create_default_context(cafile=str(ca)),
            timeout=httpx.Timeout(30.0, connect=5.0),
            headers={"Authorization": f"Bearer {token}", "Host": host},
        )

    def req(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(
            method,
            self.guard(self.base + path),
            headers=headers,
            extensions={"sni_hostname": self.host},
            **kw,
        )

    def close(self) -> None:
        self.client.close()


def _expect(r: httpx.Response, status: int | tuple[int, ...], what: str) -> Any:
    ok = (status,) if isinstance(status, int) else status
    assert r.status_code in ok, f"{what} -> {r.status_code} {r.text[:300]}"
    json_body = r.headers.get("content-type", "").startswith("application/json")
    return r.json() if r.content and json_body else None


def exercise(door: FrontDoor, tokens: dict[str, str], tag: str) -> str:
    """Every client path of the proof through one front door; a one-line summary."""
    cr, ml, ca = tokens["critical"], tokens["ml"], tokens["cache"]
    acc = [
        _expect(
            door.req("POST", "/v1/accounts", cr, json={"owner": f"{tag}-{i}", "currency": "EUR"}),
            201,
            "create account",
        )["id"]
        for i in range(2)
    ]
    _expect(
        door.req(
            "POST",
            f"/v1/accounts/{acc[0]}/deposits",
            cr,
            json={"amount": 10_000, "reference": f"{tag}-seed"},
        ),
        201,
        "deposit",
    )
    body = {
        "from_account": acc[0],
        "to_account": acc[1],
        "amount": 1_234,
        "currency": "EUR",
        "reference": f"{tag}-transfer",
    }
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = _expect(door.req("POST", "/v1/transfers", cr, json=body, headers=key), 201, "transfer")
    replay = door.req("POST", "/v1/transfers", cr, json=body, headers=key)
    assert replay.status_code == 201 and replay.json()["id"] == first["id"], (
        f"idempotent replay through the front door: {replay.status_code} {replay.text[:200]}"
    )
    balances = [
        _expect(door.req("GET", f"/v1/accounts/{a}", cr), 200, "get account")["balance"]
        for a in acc
    ]
    assert balances == [8_766, 1_234], f"balances after the transfer: {balances}"

    coll = f"{tag}-docs"
    _expect(door.req("PUT", f"/v1/collections/{coll}", ml), (200, 201), "create collection")
    n = 3000
    nd = "".join(json.dumps({"i": i, "tag": tag}) + "\n" for i in range(n)).encode()
    bulk = _expect(
        door.req(
            "POST",
            f"/v1/collections/{coll}/documents:bulk",
            ml,
            content=nd,
            headers={"Content-Type": "application/x-ndjson"},
        ),
        201,
        "bulk ingest",
    )
    assert bulk["inserted"] == n, f"bulk inserted {bulk['inserted']} of {n}"
    r = door.req("GET", f"/v1/collections/{coll}/export", ml)
    _expect(r, 200, "export")
    rows = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    assert sorted(d["data"]["i"] for d in rows) == list(range(n)), (
        f"export through the front door returned {len(rows)} rows of {n}"
    )

    _expect(door.req("PUT", f"/v1/kv/{tag}-k", ca, json={"value": {"via": tag}}), 200, "kv put")
    got = _expect(door.req("GET", f"/v1/kv/{tag}-k", ca), 200, "kv get")
    assert got["value"] == {"via": tag}, f"kv get returned {got}"
    items = {f"{tag}-m{i}": i for i in range(5)}
    _expect(door.req("POST", "/v1/kv:mset", ca, json={"items": items}), 200, "kv:mset (Exact path)")
    values = _expect(
        door.req("POST", "/v1/kv:mget", ca, json={"keys": [*items, f"{tag}-none"]}),
        200,
        "kv:mget (Exact path)",
    )["values"]
    assert values == {**items, f"{tag}-none": None}, f"kv:mget returned {values}"
    incr = _expect(door.req("POST", f"/v1/counters/{tag}-c:incr", ca, json={"by": 3}), 200, "incr")
    assert incr["value"] == 3, f"counter after one incr by 3: {incr}"

    etag = door.req("GET", f"/v1/kv/{tag}-k", ca).headers["etag"]
    held = door.req("GET", f"/v1/kv/{tag}-k", ca, headers={"If-None-Match": etag})
    assert held.status_code == 304, f"If-None-Match through {door.host}: {held.status_code}"
    docs = reference_pages(door)

    for path in ("/metrics", "/readyz", "/openapi.json"):
        r = door.req("GET", path, cr)
        assert r.status_code == 404, f"{path} is routed through {door.host}: {r.status_code}"
    return (
        f"{door.host}: transfer+replay, bulk {n} + export {len(rows)}, kv/mset/mget/incr ok,"
        f" 304 on If-None-Match, {docs}"
    )


def reference_pages(door: FrontDoor) -> str:
    """Each service's /docs/<service>/ page, its openapi.json and Swagger UI, with no token."""
    for service in ("critical", "ml", "cache"):
        base = f"/docs/{service}/"
        page = door.req("GET", base, headers={"Authorization": ""})
        assert page.status_code == 200, f"{base} through {door.host}: {page.status_code}"
        assert 'src="swagger-ui-bundle.js"' in page.text, f"{base} is not the reference page"
        spec = _expect(door.req("GET", base + "openapi.json"), 200, f"{base}openapi.json")
        assert spec["openapi"].startswith("3.") and spec["paths"], f"{base}openapi.json: {spec}"
        bundle = door.req("GET", base + "swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
        assert bundle.status_code == 200, f"{base}swagger-ui-bundle.js: {bundle.status_code}"
        assert bundle.headers.get("content-encoding") == "gzip", "the bundle came uncompressed"
    return "/docs/{critical,ml,cache}/ with openapi.json and Swagger UI"


def _conditions_true(obj: dict[str, Any], *types: str) -> bool | str:
    conds = {c["type"]: c["status"] for c in obj.get("conditions", [])}
    missing = [t for t in types if conds.get(t) != "True"]
    return True if not missing else f"{missing} not True in {conds}"


def install_traefik(p: Any) -> None:
    c = p.c
    crds = Path(need("STRATA_E2E_GATEWAY_CRDS"))
    files = sorted(crds.glob("*.yaml"))
    assert files, f"no CRDs in {crds}"
    for f in files:
        c.run([c.kubectl, "apply", "--server-side", "-f", str(f)])
    c.run([c.kubectl, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"])
    manifest = (
        (ADDONS / "traefik.yaml").read_text().replace("__IMAGE__", need("STRATA_E2E_TRAEFIK_IMAGE"))
    )
    c.run([c.kubectl, "apply", "-f", "-"], input=manifest)
    c.kn(TRAEFIK_NS, "rollout", "status", "deployment/traefik", "--timeout=120s", timeout=150)


def gateway_manifest(release_ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": TRAEFIK_NS},
        "spec": {
            "gatewayClassName": "traefik",
            "listeners": [
                {
                    # Traefik binds a listener to the entry point of the same port.
                    "name": "https",
                    "protocol": "HTTPS",
                    "port": 8443,
                    "hostname": GATEWAY_HOST,
                    "tls": {
                        "mode": "Terminate",
                        "certificateRefs": [
                            {"kind": "Secret", "name": TLS_SECRET, "namespace": release_ns}
                        ],
                    },
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    }


def _routed(door: FrontDoor) -> bool | str:
    # Strata answers problem+json; Traefik's own 404 for a route it does not have yet is text.
    r = door.req("GET", "/v1/accounts/00000000-0000-0000-0000-000000000000")
    return "problem+json" in r.headers.get("content-type", "") or f"{r.status_code} from Traefik"


def p_ingress(p: Any, guard: Callable[[str], str]) -> str:
    c = p.c
    t0 = time.monotonic()
    install_traefik(p)
    installed = time.monotonic() - t0
    with tempfile.TemporaryDirectory(prefix="strata-e2e-pki.") as tmp:
        ca, crt, key, other_ca = make_pki(Path(tmp), [INGRESS_HOST, GATEWAY_HOST])
        secret = c.k(
            "create",
            "secret",
            "tls",
            TLS_SECRET,
            f"--cert={crt}",
            f"--key={key}",
            "--dry-run=client",
            "-o",
            "json",
        )
        c.k("apply", "-f", "-", input=secret)
        c.run([c.kubectl, "apply", "-f", "-"], input=json.dumps(gateway_manifest(c.ns)))
        c.h(
            "upgrade",
            c.release,
            c.chart,
            "--reset-then-reuse-values",
            "-f",
            str(ADDONS / "values-ingress.yaml"),
            "--wait",
            "--timeout",
            "6m",
        )

        gw = lambda: _conditions_true(  # noqa: E731
            c.kj("get", "gateway", GATEWAY, "-n", TRAEFIK_NS).get("status", {}), "Programmed"
        )
        wait_until("Gateway Programmed", gw, 120)
        routes = c.kj("get", "httproute", "-l", c.sel())["items"]
        assert len(routes) == 3, f"expected 3 HTTPRoutes, found {len(routes)}"

        def routes_accepted() -> bool | str:
            for r in c.kj("get", "httproute", "-l", c.sel())["items"]:
                parents = r.get("status", {}).get("parents", [])
                if not parents:
                    return f"{r['metadata']['name']}: no parent status yet"
                state = _conditions_true(parents[0], "Accepted", "ResolvedRefs")
                if state is not True:
                    return f"{r['metadata']['name']}: {state}"
            return True

        wait_until("HTTPRoutes Accepted with ResolvedRefs", routes_accepted, 120)

        node = p.adapter.node_address()
        ports = {
            x["name"]: x["nodePort"]
            for x in c.kj("get", "svc", "traefik", "-n", TRAEFIK_NS)["spec"]["ports"]
        }
        base = f"https://{node}:{ports['websecure']}"
        out = [f"Traefik {installed:.0f}s"]
        for host in (INGRESS_HOST, GATEWAY_HOST):
            door = FrontDoor(guard, base, host, ca, p.tokens["critical"])
            try:
                # Traefik picks the routes up from its watch: wait for the first answer.
                wait_until(f"{host} routed", lambda d=door: _routed(d), 120)
                # a fresh name per run: a rerun on a kept cluster finds the last run's data
                tag = f"e2e-{host.split('.')[0]}-{uuid.uuid4().hex[:8]}"
                out.append(exercise(door, p.tokens, tag))
            finally:
                door.close()

        wrong = FrontDoor(guard, base, INGRESS_HOST, other_ca, p.tokens["cache"])
        refusal = ""
        try:
            wrong.req("GET", "/v1/kv/x")
        except httpx.ConnectError as e:
            refusal = str(e)
        finally:
            wrong.close()
        assert "CERTIFICATE_VERIFY_FAILED" in refusal, (
            f"a client trusting another CA was not refused for its CA: {refusal or 'served'}"
        )
        out.append("a client trusting another CA is refused")
    return "; ".join(out)
