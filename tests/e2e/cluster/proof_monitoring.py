"""Proof 16 (issue 18): a real Prometheus, run by the Prometheus Operator, finds and scrapes
every Strata target from the chart's own ServiceMonitors, loads the chart's PrometheusRule,
answers every query of the chart's Grafana dashboard while load runs, and fires an alert when
its condition is caused.

Prometheus, the operator, its config reloader and kube-state-metrics are built from their
pinned Go modules (addons/monitoring.yaml; tests/e2e/kind/build-addons.sh builds the images);
the operator's CRDs come from its module. The release is upgraded in place
(``--reset-then-reuse-values``: the chart's defaults, the release's values, then these) with
values-monitoring.yaml: ServiceMonitors, PrometheusRule and the dashboard ConfigMap, labelled
as the Prometheus selects them. Checked:

- every active target of the release's namespace and kube-state-metrics is ``up``, with at
  least one target per chart ServiceMonitor, and the data tier's exporters report their
  store up (``pg_up`` per PostgreSQL member, ``redis_up`` per Redis pod);
- every alerting rule of the rendered PrometheusRule is loaded and evaluates without error;
- under a request stream on the three services, every PromQL expression of every panel of the
  dashboard, as rendered into its ConfigMap, returns at least one series;
- the critical database made unreachable (the chart's NetworkPolicy of the critical pods
  stripped of its egress rules, the pods replaced) fires ``StrataServiceUnavailable`` for the
  critical Deployment; with the policy restored the service is ready again.

Needs STRATA_E2E_OPERATOR_IMAGE, STRATA_E2E_PROMETHEUS_IMAGE, STRATA_E2E_PROMETHEUS_VERSION,
STRATA_E2E_KSM_IMAGE and STRATA_E2E_OPERATOR_CRDS (build-addons.sh prints them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from proof_addons import need, wait_until

HERE = Path(__file__).resolve().parent
ADDONS = HERE / "addons"
CHART_VALUES = HERE.parents[2] / "charts" / "strata" / "values.yaml"
NS = "monitoring"
ALERT = "StrataServiceUnavailable"


class Prom:
    """The Prometheus HTTP API through its NodePort."""

    def __init__(self, base: str, guard: Callable[[str], str]) -> None:
        self.base, self.guard = base, guard
        self.client = httpx.Client(timeout=httpx.Timeout(20.0, connect=3.0))

    def get(self, path: str, **params: str) -> Any:
        r = self.client.get(self.guard(self.base + path), params=params)
        r.raise_for_status()
        body = r.json()
        assert body.get("status") == "success", f"{path}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[Any]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def close(self) -> None:
        self.client.close()


def install_stack(p: Any) -> None:
    c = p.c
    crds = sorted(Path(need("STRATA_E2E_OPERATOR_CRDS")).glob("*.yaml"))
    assert crds, "no Prometheus Operator CRDs found"
    for f in crds:
        c.run([c.kubectl, "apply", "--server-side", "-f", str(f)], timeout=120)
    c.run([c.kubectl, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"])
    manifest = (ADDONS / "monitoring.yaml").read_text()
    for key in ("OPERATOR_IMAGE", "PROMETHEUS_IMAGE", "PROMETHEUS_VERSION", "KSM_IMAGE"):
        manifest = manifest.replace(f"__{key}__", need(f"STRATA_E2E_{key}"))
    c.run([c.kubectl, "apply", "-f", "-"], input=manifest)
    for d in ("prometheus-operator", "kube-state-metrics"):
        c.kn(NS, "rollout", "status", f"deployment/{d}", "--timeout=180s", timeout=200)

    def prometheus_ready() -> bool | str:
        sts = json.loads(
            c.kn(NS, "get", "statefulset", "prometheus-strata", "-o", "json", check_rc=False)
            or "{}"
        )
        ready = sts.get("status", {}).get("readyReplicas", 0)
        return ready >= 1 or f"prometheus-strata ready replicas: {ready}"

    wait_until("the operator's Prometheus StatefulSet ready", prometheus_ready, 240, every=2)


def dashboard_exprs(p: Any) -> list[tuple[str, str]]:
    """(panel title, expression) of every panel target of the dashboard ConfigMap, with the
    dashboard's variables bound to this release."""
    c = p.c
    dashboard = yaml.safe_load(CHART_VALUES.read_text())["metrics"]["grafanaDashboard"]
    label = f"{dashboard['sidecarLabel']}={dashboard['sidecarLabelValue']}"
    dash = c.kj("get", "configmap", "-l", f"{c.sel()},{label}")["items"]
    assert len(dash) == 1, f"expected one ConfigMap labelled {label}, found {len(dash)}"
    board = json.loads(next(v for k, v in dash[0]["data"].items() if k.endswith(".json")))
    panels = list(board.get("panels", []))
    for row in board.get("panels", []):
        panels += row.get("panels", [])  # collapsed rows keep their panels inside
    out = []
    for panel in panels:
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            bound = (
                expr.replace("$__rate_interval", "1m")
                .replace("$namespace", c.ns)  # [a-z0-9-]: nothing for RE2 to escape
                .replace("$service", ".*")
            )
            assert "$" not in bound.replace("$labels", ""), f"unbound variable in {bound!r}"
            out.append((panel.get("title", "?"), bound))
    return out


def check_targets(p: Any, prom: Prom) -> str:
    c = p.c
    monitors = [
        m["metadata"]["name"] for m in c.kj("get", "servicemonitor", "-l", c.sel())["items"]
    ]
    assert monitors, "the chart rendered no ServiceMonitor"

    def all_up() -> bool | str:
        active = prom.get("/api/v1/targets", state="active")["activeTargets"]
        ours = [
            t
            for t in active
            if t["labels"].get("namespace") == c.ns
            or t["labels"].get("job") == "kube-state-metrics"
        ]
        down = [
            f"{t['scrapePool']} {t['labels'].get('pod')}: {t['health']} {t['lastError']}"
            for t in ours
            if t["health"] != "up"
        ]
        pools = {t["scrapePool"] for t in ours}
        missing = [m for m in monitors if not any(f"/{c.ns}/{m}/" in pool for pool in pools)]
        if down or missing or not ours:
            return f"down: {down[:5]}; ServiceMonitors without a target: {missing}"
        return True

    took = wait_until("every target up", all_up, 240, every=2)
    active = prom.get("/api/v1/targets", state="active")["activeTargets"]
    n = sum(1 for t in active if t["labels"].get("namespace") == c.ns)
    pg = prom.query(f'pg_up{{namespace="{c.ns}"}} == 1')
    members = sum(
        1
        for pod in c.kj("get", "pods", "-l", c.sel())["items"]
        if pod["metadata"]["labels"]
        .get("app.kubernetes.io/component", "")
        .startswith("postgresql-")
        and not pod["metadata"]["labels"]["app.kubernetes.io/component"].endswith("backup")
    )
    assert len(pg) == members, f"pg_up == 1 for {len(pg)} of {members} PostgreSQL members"
    redis = prom.query(f'redis_up{{namespace="{c.ns}"}} == 1')
    redis_pods = len(c.kj("get", "pods", "-l", c.sel("redis"))["items"])
    assert len(redis) == redis_pods, f"redis_up == 1 for {len(redis)} of {redis_pods} Redis pods"
    return (
        f"{n} targets up in {took:.0f}s ({len(monitors)} ServiceMonitors), "
        f"pg_up {len(pg)}/{members}, redis_up {len(redis)}/{redis_pods}"
    )


def check_rules(p: Any, prom: Prom) -> str:
    c = p.c
    rules = c.kj("get", "prometheusrule", "-l", c.sel())["items"]
    assert len(rules) == 1, f"expected one PrometheusRule, found {len(rules)}"
    wanted = {r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"] if "alert" in r}

    def loaded() -> bool | str:
        groups = prom.get("/api/v1/rules", type="alert")["groups"]
        seen = {r["name"]: r for g in groups for r in g["rules"]}
        missing = sorted(wanted - set(seen))
        bad = [
            f"{n}: {seen[n].get('lastError')}"
            for n in wanted & set(seen)
            if seen[n].get("health") != "ok"
        ]
        return True if not missing and not bad else f"missing {missing}; unhealthy {bad}"

    took = wait_until("the chart's alerting rules loaded and evaluated", loaded, 180, every=2)
    return f"{len(wanted)} alerting rules loaded, all healthy, in {took:.0f}s"


def check_dashboard(p: Any, prom: Prom) -> str:
    exprs = dashboard_exprs(p)
    streams = [s.start() for s in p.make_streams("monitoring", max_seconds=150)]
    try:

        def every_panel() -> bool | str:
            empty = [title for title, expr in exprs if not prom.query(expr)]
            return True if not empty else f"no series for: {empty}"

        took = wait_until("every dashboard query answering", every_panel, 120, every=2)
    finally:
        for s in streams:
            s.stop()
        p.stream_reports += [f"proof 16 load: {s.summary()}" for s in streams]
    return f"{len(exprs)} dashboard queries return series ({took:.0f}s into the load)"


def cause_alert(p: Any, prom: Prom) -> str:
    c = p.c
    deployment = c.deployments()["critical"]["metadata"]["name"]
    policy = deployment  # the chart names a component's policy like its workload
    egress = c.kj("get", "networkpolicy", policy)["spec"].get("egress")
    assert egress, f"{policy} has no egress rules to take away"
    patch = json.dumps([{"op": "replace", "path": "/spec/egress", "value": []}])
    c.k("patch", "networkpolicy", policy, "--type=json", "-p", patch)
    try:
        c.k("delete", "pod", "-l", c.sel("critical"), "--wait=false")

        def firing() -> bool | str:
            alerts = prom.get("/api/v1/alerts")["alerts"]
            mine = [
                a
                for a in alerts
                if a["labels"].get("alertname") == ALERT
                and a["labels"].get("deployment") == deployment
            ]
            states = [a["state"] for a in mine]
            return "firing" in states or f"{ALERT} states: {states}"

        took = wait_until(f"{ALERT} firing for {deployment}", firing, 420, every=2)
    finally:
        c.k(
            "patch",
            "networkpolicy",
            policy,
            "--type=json",
            "-p",
            json.dumps([{"op": "replace", "path": "/spec/egress", "value": egress}]),
        )
    recovered = p.wait_ready(p.api["critical"], timeout=240)
    return (
        f"critical database unreachable: {ALERT} firing after {took:.0f}s; "
        f"critical ready {recovered:.0f}s after the policy came back"
    )


def p_monitoring(p: Any, guard: Callable[[str], str]) -> str:
    c = p.c
    t0 = time.monotonic()
    install_stack(p)
    installed = time.monotonic() - t0
    c.h(
        "upgrade",
        c.release,
        c.chart,
        "--reset-then-reuse-values",
        "-f",
        str(ADDONS / "values-monitoring.yaml"),
        "--wait",
        "--timeout",
        "6m",
    )
    port = c.kj("get", "svc", "prometheus-np", "-n", NS)["spec"]["ports"][0]["nodePort"]
    prom = Prom(f"http://{p.adapter.node_address()}:{port}", guard)
    try:
        out = [
            f"operator, Prometheus {need('STRATA_E2E_PROMETHEUS_VERSION')} and "
            f"kube-state-metrics up in {installed:.0f}s"
        ]
        out.append(check_targets(p, prom))
        out.append(check_rules(p, prom))
        out.append(check_dashboard(p, prom))
        out.append(cause_alert(p, prom))
    finally:
        prom.close()
    return "; ".join(out)
