"""The proofs of issue 7 against a real cluster: the single-node cluster of up.sh
(`--adapter host`) or a kind cluster (`--adapter kind`, tests/e2e/kind.sh).

Run with the project's .venv python (httpx). Every HTTP request goes to NodePorts that this
harness creates next to the chart's Services (kube-proxy routes them exactly like the
ClusterIPs), at the node address the cluster adapter names (adapters.py); `guard()` refuses
any other address. Every request loop is bounded in count and time. Each proof is a named
check; the process exits non-zero if any check failed, and appends
"phase<TAB>status<TAB>seconds" lines to $PHASE_FILE for the runner's timing table. Where the
cluster enforces NetworkPolicies, the proofs of netpol.py run too.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adapters
import httpx
import netpol
import proof_backup
import proof_ingress
import proof_monitoring
import proof_oci
import proof_patroni
from proof_sentinel import p_sentinel

HERE = Path(__file__).resolve().parent

#: Proofs that run only when asked for (STRATA_E2E_ONLY=<number>), with the reason: the
#: place for a proof that is not yet reliable enough to gate every CI run (none today).
OPT_IN_PROOFS: dict[str, str] = {}
REPO = HERE.parents[2]
# where guard() lets HTTP traffic go: set from the cluster adapter in main()
ALLOWED: list[adapters.Network] = [ipaddress.ip_network("127.0.0.0/8")]
COMPONENTS = ("critical", "ml", "cache")
SCOPES = {
    "critical": "accounts:read accounts:write transfers:write ledger:admin",
    "ml": "docs:read docs:write collections:admin",
    "cache": "cache:read cache:write",
}
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class CheckFailed(Exception):  # noqa: N818  (reads better in the report)
    pass


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def guard(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname or ""
    ip = ipaddress.ip_address(host)
    if not any(ip in n for n in ALLOWED):
        raise RuntimeError(f"refusing to send traffic to {host}: not the node's address")
    return url


# ---------------------------------------------------------------------------------------
# kubectl / helm


def image_tag_sets(this_chart: bool) -> list[str]:
    """``--set`` arguments for the image tags run.sh built and imported (STRATA_IMAGE_TAG).

    The service images always; the PostgreSQL image (members, pgBackRest repository host and
    backup Jobs) only for this tree's chart (the previous chart of the upgrade proof runs its
    own PostgreSQL image, named by its own values).
    """
    sets = []
    tag = os.environ.get("STRATA_E2E_IMAGE_TAG")
    if tag:
        sets += [f"{c}.image.tag={tag}" for c in COMPONENTS]
    pg_tag = os.environ.get("STRATA_E2E_POSTGRESQL_TAG")
    if pg_tag and this_chart:
        # The repository host and the backup Jobs run pgBackRest from the PostgreSQL image.
        sets += [
            f"{c}.image.tag={pg_tag}" for c in ("postgresqlCritical", "postgresqlMl", "backup")
        ]
    return [a for s in sets for a in ("--set", s)]


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        self.ns = args.namespace
        self.release = args.release
        self.kubeconfig = args.kubeconfig
        self.helm = args.helm
        self.kubectl = args.kubectl
        self.chart = args.chart
        self.values: list[str] = args.values or [str(HERE / "values-e2e.yaml")]
        self.busybox = args.busybox_image

    def run(
        self, cmd: list[str], timeout: float = 120, check_rc: bool = True, input: str | None = None
    ) -> str:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, input=input
        )
        if check_rc and p.returncode != 0:
            raise CheckFailed(
                f"{' '.join(cmd[:4])} ... failed ({p.returncode}): {(p.stderr or p.stdout)[-2000:]}"
            )
        return str(p.stdout)

    def k(
        self, *a: str, timeout: float = 120, check_rc: bool = True, input: str | None = None
    ) -> str:
        return self.run(
            [self.kubectl, "-n", self.ns, *a], timeout=timeout, check_rc=check_rc, input=input
        )

    def kj(self, *a: str) -> Any:
        return json.loads(self.k(*a, "-o", "json"))

    def kn(self, namespace: str, *a: str, timeout: float = 120, check_rc: bool = True) -> str:
        """kubectl in another namespace."""
        return self.run([self.kubectl, "-n", namespace, *a], timeout=timeout, check_rc=check_rc)

    def h(self, *a: str, timeout: float = 600) -> str:
        install = a[:1] in (("install",), ("upgrade",))
        extra = image_tag_sets(a[2:3] == (self.chart,)) if install else []
        return self.run([self.helm, "-n", self.ns, *a, *extra], timeout=timeout)

    def sel(self, component: str | None = None) -> str:
        s = f"app.kubernetes.io/instance={self.release}"
        return s + (f",app.kubernetes.io/component={component}" if component else "")

    def deployments(self) -> dict[str, Any]:
        items = self.kj("get", "deployments", "-l", self.sel())["items"]
        return {
            d["metadata"]["labels"].get("app.kubernetes.io/component", d["metadata"]["name"]): d
            for d in items
        }

    def pods(self, component: str) -> list[Any]:
        return [
            p
            for p in self.kj("get", "pods", "-l", self.sel(component))["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]

    def ready_pod_names(self, component: str) -> set[str]:
        out = set()
        for p in self.pods(component):
            conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
            if conds.get("Ready") == "True":
                out.add(p["metadata"]["name"])
        return out

    def service(self, component: str) -> Any:
        items = self.kj("get", "svc", "-l", self.sel(component))["items"]
        items = [s for s in items if s["spec"].get("clusterIP") not in (None, "None")]
        check(
            len(items) == 1, f"expected one ClusterIP Service for {component}, found {len(items)}"
        )
        return items[0]

    def statefulset_pod(self, component: str) -> str:
        names = [p["metadata"]["name"] for p in self.pods(component)]
        check(len(names) == 1, f"expected one {component} pod, found {names}")
        return str(names[0])


# ---------------------------------------------------------------------------------------
# HTTP clients through NodePorts


class Api:
    """One service reached through a harness-owned NodePort Service on the node."""

    def __init__(self, component: str, base: str, token: str) -> None:
        self.component = component
        self.base = guard(base)
        self.token = token
        # A new connection per request: every request is routed afresh by kube-proxy, as
        # a client behind a load balancer would be. Keep-alive would pin one pod.
        self.client = httpx.Client(
            timeout=httpx.Timeout(10.0, connect=3.0),
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        )

    def req(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, guard(self.base + path), **kw)

    def close(self) -> None:
        self.client.close()


def jwt_secrets(values_files: list[str]) -> dict[str, str]:
    """Each service's own HS256 secret, from the values files the chart is installed with.

    As with helm's ``-f``, a later file's secret wins over an earlier one's.
    """
    import yaml

    found: dict[str, str] = {}
    for f in values_files:
        auth = (yaml.safe_load(Path(f).read_text()) or {}).get("auth") or {}
        found.update(
            {c: auth[c]["secret"] for c in COMPONENTS if (auth.get(c) or {}).get("secret")}
        )
    missing = [c for c in COMPONENTS if c not in found]
    if missing:
        raise SystemExit(f"no auth.<service>.secret for {missing} in {values_files}")
    return found


def mint_token(component: str, secret: str) -> str:
    cli = REPO / ".venv" / "bin" / "strata"
    # the CLI signs with STRATA_JWT_SECRET (the dev default otherwise); STRATA_DEV_JWT_SECRET is
    # set too for older CLIs
    env = dict(os.environ, STRATA_JWT_SECRET=secret, STRATA_DEV_JWT_SECRET=secret)
    p = subprocess.run(
        [
            str(cli),
            "token",
            "--service",
            component,
            "--scope",
            SCOPES[component],
            "--ttl",
            "3600",
            "--subject",
            "e2e-cluster",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    check(p.returncode == 0, f"strata token --service {component} failed: {p.stderr[-1000:]}")
    lines = [ln.strip() for ln in p.stdout.splitlines() if ln.strip()]
    check(
        bool(lines) and lines[-1].count(".") == 2,
        f"strata token printed no JWT: {p.stdout[-300:]!r}",
    )
    return lines[-1]


# ---------------------------------------------------------------------------------------
# Request streams


@dataclass
class Stream:
    name: str
    op: Callable[[int], tuple[bool, str, Any]]
    interval: float
    max_requests: int
    max_seconds: float
    total: int = 0
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    acked: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Stream:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        end = time.monotonic() + self.max_seconds
        i = 0
        while not self._stop.is_set() and i < self.max_requests and time.monotonic() < end:
            i += 1
            self.total += 1
            try:
                good, detail, ack = self.op(i)
            except Exception as e:  # connection refused/reset, timeout ...
                good, detail, ack = False, f"{type(e).__name__}: {e}", None
            if good:
                self.ok += 1
                if ack is not None:
                    self.acked.append(ack)
            else:
                self.failed += 1
                if len(self.errors) < 20:
                    self.errors.append(f"t={time.monotonic() - T0:.1f}s #{i}: {detail}")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def summary(self) -> str:
        return f"{self.name}: {self.total} requests, {self.ok} ok, {self.failed} failed"


# ---------------------------------------------------------------------------------------
# The proofs


class Proofs:
    def __init__(self, args: argparse.Namespace, adapter: adapters.ClusterAdapter) -> None:
        self.args = args
        self.adapter = adapter
        self.c = Cluster(args)
        self.api: dict[str, Api] = {}
        self.results: list[tuple[str, str, float, str]] = []
        self.state: dict[str, Any] = {}
        self.stream_reports: list[str] = []

    # -- bookkeeping
    def phase(self, name: str, fn: Callable[[], str | None]) -> bool:
        log(f"== {name} ...")
        t = time.monotonic()
        try:
            detail = fn() or ""
            status = "ok"
        except (
            CheckFailed,
            subprocess.TimeoutExpired,
            httpx.HTTPError,
            AssertionError,
            KeyError,
            RuntimeError,  # a node command of the adapter failed
        ) as e:
            detail, status = f"{type(e).__name__}: {e}", "FAILED"
        dt = time.monotonic() - t
        log(f"== {name}: {status} ({dt:.1f}s) {detail}")
        self.results.append((name, status, dt, detail))
        pf = os.environ.get("PHASE_FILE")
        if pf:
            with open(pf, "a") as f:
                f.write(f"{name}\t{status}\t{dt:.1f}\n")
        return status == "ok"

    # -- setup helpers
    def values_args(self) -> list[str]:
        return [a for v in self.c.values for a in ("-f", v)]

    def helm_install(self) -> None:
        self.c.h(
            "install",
            self.c.release,
            self.c.chart,
            "--create-namespace",
            *self.values_args(),
            "--wait",
            "--timeout",
            "6m",
        )

    def expose(self) -> None:
        """NodePort twins of the chart's Services (same selector), reachable from this host.

        Where NetworkPolicies are enforced, the chart lets only the ingress controller,
        monitoring and its test pod in; one more policy lets the harness's own traffic in.
        """
        docs: list[dict[str, Any]] = []
        for comp in COMPONENTS:
            svc = self.c.service(comp)
            port = svc["spec"]["ports"][0]
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"e2e-{comp}-np", "labels": {"strata-e2e": "nodeport"}},
                    "spec": {
                        "type": "NodePort",
                        "selector": svc["spec"]["selector"],
                        "ports": [
                            {"name": "http", "port": port["port"], "targetPort": port["targetPort"]}
                        ],
                    },
                }
            )
        if self.adapter.enforces_network_policy:
            docs.append(netpol.harness_policy(self.c, COMPONENTS, self.adapter.harness_cidr()))
        self.c.k(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )
        node = self.adapter.node_address()
        for comp in COMPONENTS:
            np = self.c.kj("get", "svc", f"e2e-{comp}-np")["spec"]["ports"][0]["nodePort"]
            if comp in self.api:
                self.api[comp].close()
            self.api[comp] = Api(comp, f"http://{node}:{np}", self.tokens[comp])
        # kube-proxy programs the rules within a moment; wait until each answers /readyz.
        for api in self.api.values():
            self.wait_ready(api)

    def wait_ready(self, api: Api, timeout: float = 120) -> float:
        t = time.monotonic()
        last = ""
        while time.monotonic() - t < timeout:
            try:
                r = api.req("GET", "/readyz")
                if r.status_code == 200:
                    return time.monotonic() - t
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.5)
        raise CheckFailed(f"{api.component} /readyz not 200 within {timeout}s: {last}")

    # -- proof 1
    def p_install(self) -> str:
        self.helm_install()
        rev = json.loads(self.c.h("status", self.c.release, "-o", "json"))
        check(rev["info"]["status"] == "deployed", f"release status {rev['info']['status']}")
        deps = self.c.deployments()
        check(set(COMPONENTS) <= set(deps), f"Deployments found: {sorted(deps)}")
        for comp, d in deps.items():
            st = d.get("status", {})
            check(
                st.get("readyReplicas", 0) == d["spec"]["replicas"], f"{comp} not fully ready: {st}"
            )
        return f"release revision {rev['version']}, deployments {sorted(deps)}"

    def p_helm_test(self) -> str:
        # No --logs: the chart's hook-delete-policy removes a passing test pod before helm
        # could read its logs. A failing one is kept, so its logs are fetched here.
        try:
            out = self.c.h("test", self.c.release, "--timeout", "5m")
        except CheckFailed as e:
            logs = self.c.k("logs", "-l", self.c.sel("test"), "--tail=50", check_rc=False)
            raise CheckFailed(f"{e}; test pod logs: {logs[-1500:]}") from None
        suites = [
            ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("TEST SUITE:")
        ]
        check("Succeeded" in out, f"helm test output: {out[-1500:]}")
        return f"helm test passed: {', '.join(suites)}"

    # -- proof 2
    def p_api(self) -> str:
        self.expose()
        cr, ml, ca = self.api["critical"], self.api["ml"], self.api["cache"]
        # critical: accounts, deposits, one transfer
        acc = {}
        for name in ("keep-a", "keep-b", "stream-a", "stream-b"):
            r = cr.req("POST", "/v1/accounts", json={"owner": f"e2e-{name}", "currency": "EUR"})
            check(r.status_code == 201, f"create account -> {r.status_code} {r.text[:300]}")
            acc[name] = r.json()["id"]
        for name, amount in (("keep-a", 100_000), ("stream-a", 1_000_000), ("stream-b", 1_000_000)):
            r = cr.req(
                "POST",
                f"/v1/accounts/{acc[name]}/deposits",
                json={"amount": amount, "reference": f"e2e-seed-{name}"},
            )
            check(r.status_code == 201, f"deposit -> {r.status_code} {r.text[:300]}")
        key = str(uuid.uuid4())
        body = {
            "from_account": acc["keep-a"],
            "to_account": acc["keep-b"],
            "amount": 2_500,
            "currency": "EUR",
            "reference": "e2e-first-transfer",
        }
        r = cr.req("POST", "/v1/transfers", json=body, headers={"Idempotency-Key": key})
        check(r.status_code == 201, f"transfer -> {r.status_code} {r.text[:300]}")
        r2 = cr.req("POST", "/v1/transfers", json=body, headers={"Idempotency-Key": key})
        check(
            r2.status_code == 201 and r2.json()["id"] == r.json()["id"],
            "idempotent replay did not return the original",
        )
        bal = self.balances(acc["keep-a"], acc["keep-b"])
        check(bal == [97_500, 2_500], f"balances after transfer: {bal}")
        self.state["accounts"] = acc
        self.state["keep_balances"] = bal
        # ml: collection, bulk ingest, export
        r = ml.req("PUT", "/v1/collections/e2e")
        check(r.status_code in (200, 201), f"create collection -> {r.status_code} {r.text[:300]}")
        r = ml.req("PUT", "/v1/collections/e2e-stream")
        check(r.status_code in (200, 201), f"create collection -> {r.status_code} {r.text[:300]}")
        n = 2000
        nd = (
            "\n".join(json.dumps({"i": i, "split": "train" if i % 5 else "test"}) for i in range(n))
            + "\n"
        )
        r = ml.req(
            "POST",
            "/v1/collections/e2e/documents:bulk",
            content=nd.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        check(
            r.status_code == 201 and r.json().get("inserted") == n,
            f"bulk -> {r.status_code} {r.text[:300]}",
        )
        ids = set(r.json()["ids"])
        exported = self.export("e2e")
        check(
            {d["id"] for d in exported} == ids,
            f"export returned {len(exported)} docs, ingest {len(ids)}",
        )
        check(sorted(d["data"]["i"] for d in exported) == list(range(n)), "exported data differs")
        self.state["ml_count"] = n
        # cache: put/get
        r = ca.req("PUT", "/v1/kv/e2e-persist", json={"value": {"hello": "cluster"}})
        check(r.status_code == 200, f"kv put -> {r.status_code} {r.text[:300]}")
        r = ca.req("GET", "/v1/kv/e2e-persist")
        check(
            r.status_code == 200 and r.json()["value"] == {"hello": "cluster"},
            f"kv get -> {r.status_code} {r.text[:300]}",
        )
        return (
            f"transfer ok (balances {bal}); bulk ingest {n} + export {len(exported)}; kv put/get ok"
        )

    def balances(self, *ids: str) -> list[int]:
        out = []
        for i in ids:
            r = self.api["critical"].req("GET", f"/v1/accounts/{i}")
            check(r.status_code == 200, f"GET account {i} -> {r.status_code} {r.text[:200]}")
            out.append(r.json()["balance"])
        return out

    def export(self, coll: str) -> list[Any]:
        r = self.api["ml"].req("GET", f"/v1/collections/{coll}/export")
        check(r.status_code == 200, f"export -> {r.status_code} {r.text[:300]}")
        return [json.loads(ln) for ln in r.text.splitlines() if ln.strip()]

    def p_metrics(self) -> str:
        # The scraper runs where Prometheus would: in the namespace the chart's NetworkPolicies
        # let scrape the services (networkPolicy.monitoring, "monitoring" by default).
        pod, ns = "e2e-scraper", netpol.MONITORING_NS
        self.c.run(
            [self.c.kubectl, "apply", "-f", "-"],
            input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        self.c.kn(
            ns,
            "delete",
            "pod",
            pod,
            "--ignore-not-found",
            "--wait=true",
            "--grace-period=0",
            "--force",
            check_rc=False,
        )
        spec = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "labels": {"strata-e2e": "scraper"}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": False,
                "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "runAsNonRoot": True},
                "containers": [
                    {
                        "name": "scraper",
                        "image": self.c.busybox,
                        "imagePullPolicy": "Never",
                        "command": ["/bin/busybox", "sleep", "3600"],
                    }
                ],
            },
        }
        self.c.run([self.c.kubectl, "-n", ns, "apply", "-f", "-"], input=json.dumps(spec))
        self.c.kn(ns, "wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=60s")
        out = []
        for comp in COMPONENTS:
            svc = self.c.service(comp)
            url = f"http://{svc['metadata']['name']}.{self.c.ns}.svc.cluster.local:{svc['spec']['ports'][0]['port']}/metrics"
            text = self.c.kn(
                ns, "exec", pod, "--", "/bin/busybox", "wget", "-q", "-O-", url, timeout=30
            )
            check(
                "http_requests_total" in text,
                f"{comp} /metrics lacks http_requests_total: {text[:300]!r}",
            )
            samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
            out.append(f"{comp}: {len(samples)} samples")
        self.c.kn(ns, "delete", "pod", pod, "--wait=false", check_rc=False)
        return f"scraped from a pod in namespace {ns} by Service DNS name: " + ", ".join(out)

    # -- streams used by proofs 3 and 5
    def make_streams(self, tag: str, max_seconds: float) -> list[Stream]:
        acc = self.state["accounts"]
        cr, ml, ca = self.api["critical"], self.api["ml"], self.api["cache"]

        def critical_op(i: int) -> tuple[bool, str, Any]:
            if i % 3 == 0:
                r = cr.req("GET", f"/v1/accounts/{acc['stream-a']}")
                return r.status_code == 200, f"GET account {r.status_code} {r.text[:120]}", None
            a, b = (
                (acc["stream-a"], acc["stream-b"]) if i % 2 else (acc["stream-b"], acc["stream-a"])
            )
            r = cr.req(
                "POST",
                "/v1/transfers",
                headers={"Idempotency-Key": f"{tag}-{i}-{uuid.uuid4().hex[:8]}"},
                json={
                    "from_account": a,
                    "to_account": b,
                    "amount": 1,
                    "currency": "EUR",
                    "reference": f"{tag}-{i}",
                },
            )
            ok = r.status_code == 201
            return ok, f"transfer {r.status_code} {r.text[:120]}", (r.json()["id"] if ok else None)

        def ml_op(i: int) -> tuple[bool, str, Any]:
            if i % 3 == 0:
                r = ml.req("GET", "/v1/collections/e2e-stream/documents:count")
                return r.status_code == 200, f"count {r.status_code} {r.text[:120]}", None
            r = ml.req(
                "POST", "/v1/collections/e2e-stream/documents", json={"data": {"tag": tag, "i": i}}
            )
            ok = r.status_code == 201
            return ok, f"insert {r.status_code} {r.text[:120]}", (r.json()["id"] if ok else None)

        def cache_op(i: int) -> tuple[bool, str, Any]:
            key = f"{tag}-{i}"
            if i % 3 == 0:
                r = ca.req("GET", f"/v1/kv/{tag}-{i - 1}")
                return r.status_code in (200, 404), f"get {r.status_code} {r.text[:120]}", None
            r = ca.req("PUT", f"/v1/kv/{key}", json={"value": i})
            ok = r.status_code == 200
            return ok, f"put {r.status_code} {r.text[:120]}", ((key, i) if ok else None)

        def mk(n: str, op: Callable[[int], tuple[bool, str, Any]]) -> Stream:
            return Stream(f"{tag}/{n}", op, self.args.interval, self.args.max_requests, max_seconds)

        return [mk("critical", critical_op), mk("ml", ml_op), mk("cache", cache_op)]

    def verify_acked(self, streams: list[Stream]) -> str:
        cr, ml, ca = self.api["critical"], self.api["ml"], self.api["cache"]
        lost = []
        counts = []
        for s in streams:
            comp = s.name.split("/")[1]
            for ack in s.acked:
                if comp == "critical":
                    r = cr.req("GET", f"/v1/transfers/{ack}")
                    good = r.status_code == 200
                elif comp == "ml":
                    r = ml.req("GET", f"/v1/collections/e2e-stream/documents/{ack}")
                    good = r.status_code == 200
                else:
                    r = ca.req("GET", f"/v1/kv/{ack[0]}")
                    good = r.status_code == 200 and r.json().get("value") == ack[1]
                if not good:
                    lost.append(f"{comp}:{ack} -> {r.status_code}")
            counts.append(f"{comp} {len(s.acked)}")
        check(not lost, f"{len(lost)} acknowledged writes lost: {lost[:10]}")
        a, b = self.balances(self.state["accounts"]["stream-a"], self.state["accounts"]["stream-b"])
        check(a + b == 2_000_000, f"money not conserved: stream accounts hold {a}+{b}")
        return "acknowledged writes all readable (" + ", ".join(counts) + "); money conserved"

    def under_stream(
        self, tag: str, action: Callable[[], str], settle: float = 3.0
    ) -> tuple[list[Stream], str]:
        streams = [s.start() for s in self.make_streams(tag, self.args.stream_seconds)]
        time.sleep(2)
        try:
            detail = action()
            time.sleep(settle)
        finally:
            for s in streams:
                s.stop()
        for s in streams:
            rep = s.summary()
            self.stream_reports.append(rep)
            log(rep + ("" if not s.errors else f"; first errors: {s.errors[:5]}"))
        return streams, detail

    # -- proof 3
    def rolled(self, before: dict[str, set[str]]) -> None:
        for comp in COMPONENTS:
            now = self.c.ready_pod_names(comp)
            check(
                not (now & before[comp]),
                f"{comp}: pods {sorted(now & before[comp])} were not replaced",
            )
            check(len(now) >= 1, f"{comp}: no ready pods after the rollout")

    def snapshot_pods(self) -> dict[str, set[str]]:
        return {c: self.c.ready_pod_names(c) for c in COMPONENTS}

    def p_upgrade(self) -> str:
        before = self.snapshot_pods()
        self.state["secrets_before"] = self.secrets()

        def act() -> str:
            t = time.monotonic()
            roll = ",".join(f"{c}.podAnnotations.strata-e2e/rollout=upgrade" for c in COMPONENTS)
            self.c.h(
                "upgrade",
                self.c.release,
                self.c.chart,
                *self.values_args(),
                "--set",
                roll,
                "--wait",
                "--timeout",
                "6m",
            )
            return f"helm upgrade --wait {time.monotonic() - t:.1f}s"

        streams, detail = self.under_stream("upgrade", act)
        self.rolled(before)
        self.no_failed_requests(streams, "upgrade")
        return f"{detail}; every Deployment rolled; " + "; ".join(s.summary() for s in streams)

    def no_failed_requests(self, streams: list[Stream], what: str) -> None:
        """CheckFailed naming the failures, with the warnings the failing services' pods
        logged (the pods a rollout replaced are gone with their logs)."""
        failed = sum(s.failed for s in streams)
        if failed == 0:
            return
        logged = []
        for s in streams:
            component = s.name.rpartition("/")[2]
            if s.failed and component in COMPONENTS:
                out = self.c.k(
                    "logs", "-l", self.c.sel(component), "--prefix", "--tail=300",
                    check_rc=False, timeout=60,
                )  # fmt: skip
                lines = [ln for ln in out.splitlines() if re.search(r"warn|error", ln, re.I)]
                logged.append(f"{component} pods' warnings: {lines[-20:]}")
        raise CheckFailed(
            f"{failed} failed requests during the {what}: {[s.errors[:3] for s in streams]}; "
            + "; ".join(logged)
        )

    def p_rollback(self) -> str:
        before = self.snapshot_pods()

        def act() -> str:
            t = time.monotonic()
            self.c.h("rollback", self.c.release, "1", "--wait", "--timeout", "6m")
            return f"helm rollback --wait {time.monotonic() - t:.1f}s"

        streams, detail = self.under_stream("rollback", act)
        self.rolled(before)
        self.no_failed_requests(streams, "rollback")
        return f"{detail}; every Deployment rolled; " + "; ".join(s.summary() for s in streams)

    # -- proof 4
    def secrets(self) -> dict[str, Any]:
        items = self.c.kj("get", "secrets", "-l", self.c.sel())["items"]
        return {
            s["metadata"]["name"]: s.get("data", {}) for s in items if s.get("type") == "Opaque"
        }

    def p_data_survives(self) -> str:
        acc = self.state["accounts"]
        bal = self.balances(acc["keep-a"], acc["keep-b"])
        check(
            bal == self.state["keep_balances"],
            f"balances changed: {bal} != {self.state['keep_balances']}",
        )
        sec = self.secrets()
        check(
            sec == self.state["secrets_before"], "generated Secrets changed across upgrade/rollback"
        )
        check(len(sec) >= 3, f"expected the chart's generated Secrets, found {sorted(sec)}")
        r = self.api["ml"].req("GET", "/v1/collections/e2e/documents:count")
        check(
            r.status_code == 200 and r.json()["count"] == self.state["ml_count"],
            f"ml count {r.text[:200]}",
        )
        return f"balances {bal} unchanged; {len(sec)} Secrets unchanged; ml documents intact"

    def p_pg_restart(self) -> str:
        pod = f"{self.c.release}-postgresql-critical-0"  # a Patroni member (any role)
        uid = self.c.kj("get", "pod", pod)["metadata"]["uid"]
        restarts_before = self.restarts("critical")
        t = time.monotonic()
        self.c.k("delete", "pod", pod, "--wait=true", "--timeout=120s")
        end = time.monotonic() + 180
        while time.monotonic() < end:
            p = (
                self.c.kj("get", "pod", pod)
                if self.c.k("get", "pod", pod, "--ignore-not-found", "-o", "name").strip()
                else None
            )
            if (
                p
                and p["metadata"]["uid"] != uid
                and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions", [])
                )
            ):
                break
            time.sleep(1)
        else:
            raise CheckFailed(f"{pod} did not come back Ready within 180s")
        pg_ready = time.monotonic() - t
        # The critical service must recover by itself: readyz 200 again, then the data.
        rec = self.wait_ready(self.api["critical"], timeout=120)
        acc = self.state["accounts"]
        end = time.monotonic() + 60
        while True:
            try:
                bal = self.balances(acc["keep-a"], acc["keep-b"])
                break
            except CheckFailed:
                if time.monotonic() > end:
                    raise
                time.sleep(1)
        check(bal == self.state["keep_balances"], f"balances after PostgreSQL restart: {bal}")
        r = self.api["critical"].req(
            "POST",
            "/v1/transfers",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "from_account": acc["stream-a"],
                "to_account": acc["stream-b"],
                "amount": 1,
                "currency": "EUR",
                "reference": "after-pg-restart",
            },
        )
        check(
            r.status_code == 201,
            f"transfer after PostgreSQL restart -> {r.status_code} {r.text[:200]}",
        )
        r = self.api["critical"].req(
            "POST",
            "/v1/transfers",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "from_account": acc["stream-b"],
                "to_account": acc["stream-a"],
                "amount": 1,
                "currency": "EUR",
                "reference": "after-pg-restart-back",
            },
        )
        check(
            r.status_code == 201,
            f"transfer after PostgreSQL restart -> {r.status_code} {r.text[:200]}",
        )
        after = self.restarts("critical")
        check(
            after == restarts_before, f"critical containers restarted: {after} vs {restarts_before}"
        )
        return (
            f"{pod} back Ready in {pg_ready:.1f}s, critical ready again {rec:.1f}s later "
            f"without restarts; balances {bal} intact"
        )

    def restarts(self, component: str) -> dict[str, int]:
        return {
            p["metadata"]["name"]: sum(
                c.get("restartCount", 0) for c in p["status"].get("containerStatuses", [])
            )
            for p in self.c.pods(component)
        }

    # -- proof 5
    def p_kill_pods(self) -> str:
        killed = []

        def act() -> str:
            for comp in COMPONENTS:
                pods = sorted(self.c.ready_pod_names(comp))
                check(bool(pods), f"no ready {comp} pod to kill")
                pod = self.c.kj("get", "pod", pods[0])
                cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
                # A crash, not a graceful stop: SIGKILL the container's process from the node.
                self.adapter.kill_container(cid)
                killed.append(f"{comp}:{pods[0]}")
            time.sleep(2)
            # let the restarted containers come back before the streams stop
            end = time.monotonic() + 120
            while time.monotonic() < end:
                if all(len(self.c.ready_pod_names(c)) >= 2 for c in COMPONENTS):
                    break
                time.sleep(1)
            else:
                raise CheckFailed("killed pods did not become Ready again within 120s")
            return "SIGKILLed " + ", ".join(killed)

        streams, detail = self.under_stream("kill", act, settle=3.0)
        verified = self.verify_acked(streams)
        failed = sum(s.failed for s in streams)
        return f"{detail}; {failed} requests failed in flight (allowed); {verified}"

    # -- proof 6
    def p_reinstall(self) -> str:
        sec_before = self.secrets()
        pvcs_before = {
            p["metadata"]["name"]: p["spec"].get("volumeName")
            for p in self.c.kj("get", "pvc", "-l", self.c.sel())["items"]
        }
        check(len(pvcs_before) >= 3, f"expected PVCs of the 3 StatefulSets, found {pvcs_before}")
        self.c.k("delete", "svc", "-l", "strata-e2e=nodeport", "--wait=true")
        self.c.h("uninstall", self.c.release, "--wait", "--timeout", "3m")
        end = time.monotonic() + 120
        while True:
            left = self.c.k(
                "get", "deploy,sts,rs,job,pod", "-l", self.c.sel(), "-o", "name"
            ).split()
            if not left:
                break
            check(time.monotonic() < end, f"workloads left after helm uninstall: {left}")
            time.sleep(1)
        check(self.secrets() == sec_before, "Secrets were not kept on uninstall")
        pvcs_after = {
            p["metadata"]["name"]: p["spec"].get("volumeName")
            for p in self.c.kj("get", "pvc", "-l", self.c.sel())["items"]
        }
        check(pvcs_after == pvcs_before, f"PVCs not retained: {pvcs_after} vs {pvcs_before}")
        t = time.monotonic()
        self.helm_install()
        inst = time.monotonic() - t
        check(self.secrets() == sec_before, "reinstall changed the Secrets")
        pvcs_new = {
            p["metadata"]["name"]: p["spec"].get("volumeName")
            for p in self.c.kj("get", "pvc", "-l", self.c.sel())["items"]
        }
        check(pvcs_new == pvcs_before, f"reinstall did not reuse the volumes: {pvcs_new}")
        self.expose()
        acc = self.state["accounts"]
        bal = self.balances(acc["keep-a"], acc["keep-b"])
        check(bal == self.state["keep_balances"], f"balances after reinstall: {bal}")
        r = self.api["ml"].req("GET", "/v1/collections/e2e/documents:count")
        check(
            r.status_code == 200 and r.json()["count"] == self.state["ml_count"],
            f"ml count after reinstall {r.text[:200]}",
        )
        r = self.api["cache"].req("GET", "/v1/kv/e2e-persist")
        check(
            r.status_code == 200 and r.json()["value"] == {"hello": "cluster"},
            f"kv after reinstall {r.status_code} {r.text[:200]}",
        )
        return (
            f"uninstall left no workload; {len(sec_before)} Secrets and "
            f"PVCs {sorted(pvcs_before)} kept; "
            f"reinstall {inst:.1f}s reused them and sees the old accounts, documents and keys"
        )

    def ensure_main_release(self) -> str:
        """The main release, installed again over its kept volumes when it is gone (proof 11
        uninstalls it to free the node); the NodePort twins exposed again with it."""
        c = self.c
        status = c.run([c.helm, "-n", c.ns, "status", c.release, "-o", "json"], check_rc=False)
        deployed = False
        with contextlib.suppress(ValueError, KeyError):
            deployed = json.loads(status)["info"]["status"] == "deployed"
        note = "main release up"
        if not deployed:
            t = time.monotonic()
            self.helm_install()
            took = time.monotonic() - t
            note = f"main release installed again over its kept volumes in {took:.0f}s"
        if "critical" not in self.api or not deployed:
            self.expose()
        return note

    def p_sentinel(self) -> str:
        # The upgrade to sentinel mode needs the main release, which proof 11 uninstalled.
        note = self.ensure_main_release()
        return f"{note}; {p_sentinel(self)}"  # tests/e2e/cluster/proof_sentinel.py

    def p_ingress(self) -> str:
        note = self.ensure_main_release()
        return f"{note}; {proof_ingress.p_ingress(self, guard)}"

    def p_monitoring(self) -> str:
        note = self.ensure_main_release()
        return f"{note}; {proof_monitoring.p_monitoring(self, guard)}"

    def server_version(self) -> str:
        try:
            v = json.loads(self.c.run([self.c.kubectl, "version", "-o", "json"]))
            return f"Kubernetes server {v['serverVersion']['gitVersion']}"
        except (CheckFailed, KeyError, ValueError) as e:
            return f"Kubernetes server version unknown ({e})"

    def steps(self, np: netpol.NetpolProofs) -> list[tuple[str, Callable[[], str | None], bool]]:
        """(name, proof, essential) in order: the same list on every cluster adapter, plus the
        NetworkPolicy proofs where the cluster enforces NetworkPolicies."""
        patroni = proof_patroni.steps(self)
        steps: list[tuple[str, Callable[[], str | None], bool]] = [
            ("proof 1: helm install --wait", self.p_install, True),
            ("proof 1: helm test", self.p_helm_test, False),
            ("proof 2: API through Services", self.p_api, True),
            ("proof 2: /metrics from inside", self.p_metrics, False),
        ]
        if self.adapter.enforces_network_policy:
            steps += [
                ("netpol: what the policies forbid is refused", np.p_refused, False),
                ("netpol: what the policies allow works", np.p_allowed, False),
                ("netpol: a refusal is the policy's doing", np.p_policy_decides, False),
            ]
        steps += [
            ("proof 3: upgrade under load", self.p_upgrade, False),
            ("proof 3: rollback under load", self.p_rollback, False),
            ("proof 4: data+secrets survive", self.p_data_survives, False),
            ("proof 4: critical PG pod deleted", self.p_pg_restart, False),
            ("proof 5: kill pods under load", self.p_kill_pods, False),
            ("proof 6: uninstall + reinstall", self.p_reinstall, False),
            *patroni[:-1],
            ("proof 12: Redis Sentinel, master pod deleted under load", self.p_sentinel, False),
        ]
        if os.environ.get("STRATA_E2E_TRAEFIK_IMAGE"):  # kind.sh builds the add-ons
            steps += [
                (
                    "proof 15: clients through Traefik (Ingress, Gateway API, TLS)",
                    self.p_ingress,
                    False,
                ),
                (
                    "proof 16: Prometheus Operator: targets, rules, dashboard, an alert",
                    self.p_monitoring,
                    False,
                ),
            ]
        else:
            log("proofs 15 and 16 not listed: no add-on images (tests/e2e/kind/build-addons.sh)")
        steps += [
            *proof_backup.steps(self),
            # Proof 11 uninstalls the main release (the previous chart needs the node): last.
            patroni[-1],
        ]
        if self.adapter.name == "kind":  # the registry is reached through kind's network
            steps.append(
                (
                    "proof 17: helm install oci:// with images pulled from a registry",
                    lambda: proof_oci.p_oci_install(self),
                    False,
                )
            )
        return steps

    def run(self) -> int:
        log(f"cluster: {self.adapter.describe()}; {self.server_version()}")
        secrets = jwt_secrets(self.c.values)  # one key per service: never one for all
        self.tokens = {c: mint_token(c, secrets[c]) for c in COMPONENTS}
        np = netpol.NetpolProofs(self.c, self.adapter)
        steps = self.steps(np)
        only = set(self.args.only.split(",")) if self.args.only else None
        for i, (name, fn, essential) in enumerate(steps, 1):
            # by proof number ("proof 7: ..." -> 7) or label ("netpol: ..."), never by position:
            # the NetworkPolicy proofs shift the positions on clusters that enforce them
            number = name.split(":")[0].split()[-1]
            if only and number not in only:
                continue
            if not only and number in OPT_IN_PROOFS:
                log(f"== {name}: not run by default ({OPT_IN_PROOFS[number]})")
                continue
            if not self.phase(name, fn) and essential:
                log("an essential step failed: skipping the rest")
                for rest, _, _ in steps[i:]:
                    self.results.append((rest, "SKIPPED", 0.0, "after an essential failure"))
                break
        for a in self.api.values():
            a.close()
        print("\nProofs:")
        for name, status, dt, detail in self.results:
            print(f"  {status:8s} {dt:6.1f}s  {name}: {detail}")
        if self.stream_reports:
            print("Request streams:")
            for rep in self.stream_reports:
                print(f"  {rep}")
        if np.checks:
            print("NetworkPolicy checks (source -> destination: expected, observed):")
            for line in np.checks:
                print(f"  {line}")
        failed = [r for r in self.results if r[1] != "ok"]
        print(f"{len(self.results) - len(failed)} passed, {len(failed)} failed")
        return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--helm", required=True)
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--chart", default=str(REPO / "charts" / "strata"))
    ap.add_argument(
        "--values",
        action="append",
        help="values file, repeatable (default: values-e2e.yaml next to this script)",
    )
    ap.add_argument("--namespace", default="strata-e2e")
    ap.add_argument("--release", default="strata")
    ap.add_argument("--busybox-image", required=True)
    adapters.add_arguments(ap)
    ap.add_argument(
        "--interval", type=float, default=0.02, help="pause between requests of one stream"
    )
    ap.add_argument("--max-requests", type=int, default=20000, help="per stream")
    ap.add_argument("--stream-seconds", type=float, default=420, help="hard stop of one stream")
    ap.add_argument("--only", default="", help="comma-separated proof numbers (debugging)")
    args = ap.parse_args()
    adapter = adapters.from_args(args)
    ALLOWED[:] = adapter.allowed_networks()
    return Proofs(args, adapter).run()


if __name__ == "__main__":
    sys.exit(main())
