"""ServiceMonitors and PodMonitors (metrics.serviceMonitor, metrics.podMonitor): resolved against
the Services, pods and NetworkPolicies the chart renders, so that a renamed port or label, a
missing target, a target scraped twice or a scrape the policies refuse fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHART, WORKLOAD_KINDS, Render, RenderFn, load_values, pod_spec, run_helm
from .test_objects import effective_values, render_notes

SERVICES = ("critical", "ml", "cache")
#: Every port that serves /metrics: the services' HTTP port, Patroni's REST API, the sidecar's.
#: Every /metrics port: the services, Patroni, the pgbackrest and exporter sidecars.
METRICS_PORTS = {"http", "patroni", "backup-metrics", "pg-exporter", "redis-exporter"}
SERVICE_MONITORS = str(CHART / "ci" / "servicemonitor-values.yaml")
POD_MONITORS = str(CHART / "ci" / "podmonitor-values.yaml")
SM_ON = "metrics.serviceMonitor.enabled=true"
PM_ON = "metrics.podMonitor.enabled=true"

#: (values file, --set) scenarios with monitors: both ci files, and the defaults' variants.
SCENARIOS = [
    pytest.param(SERVICE_MONITORS, (), id="servicemonitor-ci"),
    pytest.param(POD_MONITORS, (), id="podmonitor-ci"),
    pytest.param(None, (SM_ON, "backup.enabled=false"), id="servicemonitor-no-backups"),
    pytest.param(None, (PM_ON, "postgresqlCritical.replicas=1"), id="podmonitor-one-member"),
    pytest.param(
        str(CHART / "ci" / "external-databases-values.yaml"), (SM_ON,), id="servicemonitor-ext"
    ),
    pytest.param(None, (SM_ON, "fullnameOverride=shop"), id="servicemonitor-fullname"),
    pytest.param(None, (SM_ON, "redis.mode=sentinel"), id="servicemonitor-sentinel"),
    pytest.param(None, (PM_ON, "redis.mode=sentinel"), id="podmonitor-sentinel"),
    pytest.param(
        None,
        (SM_ON, "metrics.postgresExporter.enabled=false", "metrics.redisExporter.enabled=false"),
        id="servicemonitor-no-exporters",
    ),
]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes' LabelSelector semantics (matchLabels and matchExpressions)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def pods(r: Render) -> dict[str, dict[str, Any]]:
    """Workload name -> (pod labels, {container port name: number})."""
    out = {}
    for kind in WORKLOAD_KINDS:
        for w in r.kind(kind):
            ports = {
                p["name"]: p["containerPort"]
                for c in pod_spec(w)["containers"]
                for p in c.get("ports", [])
            }
            out[w["metadata"]["name"]] = {
                "labels": w["spec"]["template"]["metadata"]["labels"],
                "ports": ports,
            }
    return out


def service_targets(r: Render, sm: dict[str, Any]) -> set[tuple[str, str]]:
    """(workload, container port name) of every target of a ServiceMonitor."""
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["strata"]}
    selected = [
        s for s in r.kind("Service") if selects(sm["spec"]["selector"], s["metadata"]["labels"])
    ]
    targets = set()
    for ep in sm["spec"]["endpoints"]:
        via = [(s, p) for s in selected for p in s["spec"]["ports"] if p.get("name") == ep["port"]]
        assert via, f"ServiceMonitor/{sm['metadata']['name']}: no selected Service has port {ep}"
        for svc, port in via:
            backing = [
                (name, pod)
                for name, pod in pods(r).items()
                if selects({"matchLabels": svc["spec"]["selector"]}, pod["labels"])
            ]
            assert len(backing) == 1, f"Service/{svc['metadata']['name']} selects {backing}"
            ((name, pod),) = backing
            assert port["targetPort"] in pod["ports"], f"{name} has no port {port['targetPort']}"
            targets.add((name, port["targetPort"]))
    return targets


def pod_targets(r: Render, pm: dict[str, Any]) -> set[tuple[str, str]]:
    """(workload, container port name) of every target of a PodMonitor."""
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["strata"]}
    selected = {n: p for n, p in pods(r).items() if selects(pm["spec"]["selector"], p["labels"])}
    assert len(selected) == 1, f"PodMonitor/{pm['metadata']['name']} selects {list(selected)}"
    targets = set()
    for ep in pm["spec"]["podMetricsEndpoints"]:
        for name, pod in selected.items():
            assert ep["port"] in pod["ports"], f"{name} has no port {ep['port']}"
            targets.add((name, ep["port"]))
    return targets


def every_metrics_port(r: Render) -> set[tuple[str, str]]:
    return {(n, port) for n, p in pods(r).items() for port in p["ports"] if port in METRICS_PORTS}


@pytest.mark.parametrize(("values_file", "sets"), SCENARIOS)
def test_monitors_scrape_every_metrics_port_exactly_once(
    render: RenderFn, values_file: str | None, sets: tuple[str, ...]
) -> None:
    r = render(values_file, sets=sets)
    service = bool(r.kind("ServiceMonitor"))
    assert service != bool(r.kind("PodMonitor")), "one kind of monitor, never both"
    monitors = r.kind("ServiceMonitor") or r.kind("PodMonitor")
    found: list[tuple[str, str]] = []
    for m in monitors:
        found += sorted(service_targets(r, m) if service else pod_targets(r, m))
    assert len(found) == len(set(found)), f"scraped twice: {found}"
    assert set(found) == every_metrics_port(r)
    workloads = {n for n, _ in found}
    prefix = "shop" if "fullnameOverride=shop" in sets else "strata"
    assert {f"{prefix}-{s}" for s in SERVICES} <= workloads


@pytest.mark.parametrize(("values_file", "sets"), SCENARIOS)
def test_network_policies_admit_every_scrape_from_monitoring(
    render: RenderFn, values_file: str | None, sets: tuple[str, ...]
) -> None:
    """A Prometheus in networkPolicy.monitoring's namespace reaches every target's port."""
    r = render(values_file, sets=sets)
    monitoring = effective_values(r)["networkPolicy"]["monitoring"]
    peer = {
        "namespaceSelector": {"matchLabels": monitoring["namespaceSelector"]},
        "podSelector": {"matchLabels": monitoring["podSelector"] or {}},
    }
    targets = set().union(
        *(service_targets(r, m) for m in r.kind("ServiceMonitor")),
        *(pod_targets(r, m) for m in r.kind("PodMonitor")),
    )
    assert targets, "no monitor rendered"
    all_pods = pods(r)
    for workload, port_name in targets:
        pod = all_pods[workload]
        number = pod["ports"][port_name]
        admitted = [
            np["metadata"]["name"]
            for np in r.kind("NetworkPolicy")
            if selects(np["spec"]["podSelector"], pod["labels"])
            for rule in np["spec"].get("ingress", [])
            if peer in rule.get("from", [])
            and any(p.get("port") in (port_name, number) for p in rule.get("ports", []))
        ]
        assert admitted, f"no NetworkPolicy lets monitoring scrape {workload}:{port_name}"


def test_service_endpoints_keep_the_services_own_service_label(render: RenderFn) -> None:
    """The services' series carry service="critical|ml|cache" (what the rules and dashboard
    select on); a ServiceMonitor's `service` target label (the Service's name) must not
    replace it: honorLabels keeps it, and the relabeling sets the target label to the same
    value for a Prometheus with overrideHonorLabels."""
    r = render(SERVICE_MONITORS)
    for svc in SERVICES:
        sm = r.get("ServiceMonitor", f"strata-{svc}")
        (ep,) = sm["spec"]["endpoints"]
        assert ep["honorLabels"] is True
        relabel = ep["relabelings"][0]
        assert relabel["targetLabel"] == "service"
        (source,) = relabel["sourceLabels"]
        label = source.removeprefix("__meta_kubernetes_service_label_")
        service_labels = r.get("Service", f"strata-{svc}")["metadata"]["labels"]
        # Prometheus' meta label names: every character outside [a-zA-Z0-9_] becomes "_".
        meta = {re.sub(r"\W", "_", k): v for k, v in service_labels.items()}
        assert meta[label] == svc
    for tier in ("postgresql-critical", "postgresql-ml"):
        for ep in r.get("ServiceMonitor", f"strata-{tier}")["spec"]["endpoints"]:
            assert "honorLabels" not in ep  # Patroni's and the sidecar's series have no such label


def test_monitor_settings_land_on_every_endpoint(render: RenderFn) -> None:
    values = load_values()["metrics"]
    assert values["serviceMonitor"]["labels"] == {} == values["podMonitor"]["labels"]
    r = render(POD_MONITORS)
    pms = r.kind("PodMonitor")
    assert {m["metadata"]["name"] for m in pms} == {
        *(f"strata-{s}" for s in SERVICES),
        "strata-postgresql-critical",
        "strata-postgresql-ml",
        "strata-redis",  # the Redis exporter sidecars
    }
    for pm in pms:
        assert pm["metadata"]["namespace"] == "monitoring"
        assert pm["metadata"]["labels"]["prometheus"] == "platform"
        assert "release" not in pm["metadata"]["labels"]
        for ep in pm["spec"]["podMetricsEndpoints"]:
            assert ep["path"] == "/metrics"
            assert (ep["interval"], ep["scrapeTimeout"]) == ("1m", "20s")
            assert ep["relabelings"] == [
                {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}
            ]
            assert ep["metricRelabelings"][0]["action"] == "drop"
    sm = render(SERVICE_MONITORS).get("ServiceMonitor", "strata-ml")
    assert sm["metadata"]["namespace"] == "strata"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (ep,) = sm["spec"]["endpoints"]
    assert (ep["interval"], ep["scrapeTimeout"]) == ("15s", "5s")
    unset = ("metrics.serviceMonitor.interval=", "metrics.serviceMonitor.scrapeTimeout=")
    bare = render(None, sets=(SM_ON, *unset))
    for m in bare.kind("ServiceMonitor"):
        for ep in m["spec"]["endpoints"]:
            assert "interval" not in ep and "scrapeTimeout" not in ep  # the Prometheus' own


def test_both_kinds_of_monitor_at_once_are_refused(helm: str) -> None:
    proc = run_helm(helm, "template", "strata", str(CHART), "--set", SM_ON, "--set", PM_ON)
    assert proc.returncode != 0
    assert "every series would be scraped twice" in proc.stderr


def test_notes_name_the_monitoring_objects_and_who_may_scrape(helm: str, tmp_path: Path) -> None:
    notes = render_notes(
        helm,
        tmp_path,
        SM_ON,
        "metrics.serviceMonitor.labels.release=kps",
        "metrics.prometheusRule.enabled=true",
        "metrics.grafanaDashboard.enabled=true",
    )
    assert "ServiceMonitors in namespace strata, labelled release=kps" in notes
    assert "kubectl get servicemonitors -n strata -l app.kubernetes.io/instance=strata" in notes
    assert "PrometheusRule strata in namespace strata" in notes
    assert "docs/runbooks.md" in notes
    assert "ConfigMap strata-grafana-dashboard in namespace strata (grafana_dashboard=1)" in notes
    assert "namespaces labelled kubernetes.io/metadata.name=monitoring" in notes
    assert "WARNING" not in notes
    quiet = render_notes(
        helm,
        tmp_path / "quiet",
        "metrics.prometheusRule.enabled=true",
        "metrics.scrapeAnnotations=false",
    )
    assert "WARNING: no ServiceMonitor, PodMonitor or scrape annotation" in quiet
    assert "Monitoring" not in render_notes(helm, tmp_path / "off")
