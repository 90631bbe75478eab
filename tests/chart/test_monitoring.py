"""The chart's alerts and dashboard (metrics.prometheusRule, metrics.grafanaDashboard): promtool
checks and unit-tests the rendered PrometheusRule, every alert has a runbook, the dashboard
ConfigMap holds sound JSON with valid PromQL, and every metric they use is one Strata exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, ROOT, Render, RenderFn

RULES_FILE = CHART / "files" / "prometheus-rules.yaml"
DASHBOARD_FILE = CHART / "files" / "grafana-dashboard.json"
RULES_TEST = Path(__file__).parent / "monitoring" / "prometheus-rules.test.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
DEFAULT_RUNBOOKS = "https://github.com/strata/strata/blob/main/docs/runbooks.md"
RULE_ON = ("metrics.prometheusRule.enabled=true",)
DASHBOARD_ON = ("metrics.grafanaDashboard.enabled=true",)

#: Alerts the issues asked for: error rate, latency, readiness, pool saturation, stores down,
#: Patroni, backups.
REQUIRED_ALERTS = {
    "StrataHighErrorRate",
    "StrataHighLatency",
    "StrataServiceNotReady",
    "StrataDatabasePoolSaturated",
    "StrataPostgreSQLDown",
    "StrataRedisDown",
    "StrataPostgreSQLNoLeader",
    "StrataPostgreSQLReplicationLag",
    "StrataBackupTooOld",
    "StrataBackupMissing",
    "StrataWALArchivingFailing",
    "StrataBackupRepositoryUnreachable",
    "StrataPostgreSQLExporterDown",
    "StrataPostgreSQLConnectionsNearMax",
    "StrataRedisExporterDown",
    "StrataRedisMemoryNearMax",
    "StrataRedisEvictions",
    "StrataRedisRejectedConnections",
}
#: Metric names the exporter sidecars really emit: captured by running the Debian packages'
#: binaries (the ones the images install) against a real PostgreSQL 15 primary and replica and
#: a real Redis 7 (tests/chart/monitoring/*.metrics).
EXPORTER_METRICS = {
    "postgres": Path(__file__).parent / "monitoring" / "postgres-exporter-0.11.1.metrics",
    "redis": Path(__file__).parent / "monitoring" / "redis-exporter-1.45.0.metrics",
}

PROMQL_WORDS = {
    "sum", "by", "rate", "histogram_quantile", "and", "or", "topk", "count", "without",
    "le", "on", "ignoring", "group_left", "group_right", "unless", "avg", "max", "min",
    "increase", "offset", "bool",
}  # fmt: skip


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not installed (Debian package `prometheus`: apt-get install -y prometheus)"
        )
    return path


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def only(r: Render, kind: str) -> dict[str, Any]:
    (obj,) = r.kind(kind)
    return obj


def rendered_groups(r: Render) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = only(r, "PrometheusRule")["spec"]["groups"]
    return groups


def alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for g in groups for rule in g["rules"] if "alert" in rule]


def test_the_rules_file_itself_passes_promtool() -> None:
    """The one copy stays a plain rules file: its placeholders are valid label values."""
    proc = run_promtool("check", "rules", str(RULES_FILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_checks_and_unit_tests_the_rendered_rules(
    render: RenderFn, tmp_path: Path
) -> None:
    """What Prometheus loads is the rendered PrometheusRule: promtool's unit tests run on it."""
    groups = rendered_groups(render(None, sets=RULE_ON))
    (tmp_path / "prometheus-rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    check = run_promtool("check", "rules", "prometheus-rules.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alerts(groups))} rules found" in check.stdout + check.stderr
    unit = run_promtool("test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m]\n"
    )
    assert run_promtool("check", "rules", str(bad)).returncode != 0


def test_every_alert_fires_in_a_unit_test() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    names = {a["alert"] for a in alerts(yaml.safe_load(RULES_FILE.read_text())["groups"])}
    assert names == fired, f"never fired in {RULES_TEST.name}: {names - fired}"


def test_the_rendered_groups_are_the_file_scoped_to_the_release(render: RenderFn) -> None:
    """The PrometheusRule holds exactly the promtool-tested groups, with this release's
    namespace and names in the selectors and a runbook per alert, and nothing else."""
    r = render(None, sets=RULE_ON, release="shop")
    text = RULES_FILE.read_text().replace("__NAMESPACE__", "strata")
    expected = yaml.safe_load(text.replace("__FULLNAME__", "shop-strata"))["groups"]
    for alert in alerts(expected):
        alert["annotations"]["runbook_url"] = f"{DEFAULT_RUNBOOKS}#{alert['alert'].lower()}"
    groups = rendered_groups(r)
    assert groups == expected
    assert not re.search(r"__[A-Z]+__", json.dumps(groups))
    exprs = "\n".join(a["expr"] for a in alerts(groups))
    assert 'deployment=~"shop-strata-(critical|ml|cache)"' in exprs


def test_required_alerts_exist_with_severity_and_docs(render: RenderFn) -> None:
    found = alerts(rendered_groups(render(None, sets=RULE_ON)))
    assert {a["alert"] for a in found} >= REQUIRED_ALERTS
    for alert in found:
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["description"], alert["alert"]
        assert re.fullmatch(r"\d+[mh]", alert["for"]), alert["alert"]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """Anchor -> text of every `### ` section of docs/runbooks.md."""
    parts = re.split(r"^### (.+)$", RUNBOOKS.read_text(), flags=re.M)
    return {github_anchor(h): body for h, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_alert_links_its_runbook_and_every_runbook_an_alert(render: RenderFn) -> None:
    sections = runbook_sections()
    found = alerts(rendered_groups(render(None, sets=RULE_ON)))
    for alert in found:
        url = alert["annotations"]["runbook_url"]
        base, anchor = url.split("#")
        assert base == DEFAULT_RUNBOOKS
        assert anchor in sections, f"{alert['alert']}: no section #{anchor} in {RUNBOOKS.name}"
        for part in ("**Meaning.**", "**First checks.**", "**Fixes.**"):
            assert part in sections[anchor], f"{alert['alert']}: its runbook lacks {part}"
    assert set(sections) == {a["alert"].lower() for a in found}, "a runbook of no alert"


def test_rule_labels_runbook_url_labels_and_namespace(render: RenderFn) -> None:
    r = render(
        None,
        sets=(
            *RULE_ON,
            "metrics.prometheusRule.namespace=monitoring",
            "metrics.prometheusRule.labels.release=kube-prometheus-stack",
            "metrics.prometheusRule.ruleLabels.team=payments",
            "metrics.prometheusRule.ruleLabels.severity=info",
            "metrics.prometheusRule.runbookUrl=https://wiki.example/strata",
        ),
    )
    rule = only(r, "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for alert in alerts(rule["spec"]["groups"]):
        assert alert["labels"]["team"] == "payments"
        assert alert["labels"]["severity"] in {"warning", "critical"}  # its own label wins
        assert alert["annotations"]["runbook_url"] == (
            f"https://wiki.example/strata#{alert['alert'].lower()}"
        )
        # Another namespace for the object, the release's namespace in the selectors.
        assert 'namespace="strata"' in alert["expr"], alert["alert"]
    none = render(None, sets=(*RULE_ON, "metrics.prometheusRule.runbookUrl="))
    assert all("runbook_url" not in a["annotations"] for a in alerts(rendered_groups(none)))


def test_dashboard_configmap_for_the_sidecar(render: RenderFn) -> None:
    cm = render(None, sets=DASHBOARD_ON).get("ConfigMap", "strata-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "annotations" not in cm["metadata"]  # no folder by default
    assert json.loads(cm["data"]["strata-services.json"]) == json.loads(DASHBOARD_FILE.read_text())
    custom = render(
        None,
        sets=(
            *DASHBOARD_ON,
            "metrics.grafanaDashboard.namespace=grafana",
            "metrics.grafanaDashboard.sidecarLabel=grafana.com/dashboard",
            "metrics.grafanaDashboard.sidecarLabelValue=strata",
            "metrics.grafanaDashboard.folderAnnotation=k8s-sidecar-target-directory",
            "metrics.grafanaDashboard.folder=Payments",
            "metrics.grafanaDashboard.labels.team=payments",
            "metrics.grafanaDashboard.annotations.owner=payments",
            "commonAnnotations.cost-center=finance",
        ),
    ).get("ConfigMap", "strata-grafana-dashboard")
    meta = custom["metadata"]
    assert meta["namespace"] == "grafana"
    assert meta["labels"]["grafana.com/dashboard"] == "strata"
    assert "grafana_dashboard" not in meta["labels"]
    assert meta["labels"]["team"] == "payments"
    assert meta["labels"]["app.kubernetes.io/instance"] == "strata"
    assert meta["annotations"] == {
        "k8s-sidecar-target-directory": "Payments",
        "owner": "payments",
        "cost-center": "finance",
    }


def dashboard(r: Render) -> dict[str, Any]:
    """The dashboard as the ConfigMap carries it."""
    cm = r.get("ConfigMap", "strata-grafana-dashboard")
    data: dict[str, Any] = json.loads(cm["data"]["strata-services.json"])
    return data


def dashboard_exprs(dash: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_dashboard_is_sound(render: RenderFn) -> None:
    dash = dashboard(render(None, sets=DASHBOARD_ON))
    assert dash["uid"] == "strata-services"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "namespace", "service"} <= variables
    cells = set()
    for p in dash["panels"]:
        if p["type"] == "row":  # a section heading, no query
            assert "targets" not in p and p["gridPos"]["w"] == 24, p["title"]
        else:
            assert p["datasource"]["uid"] == "${datasource}"
            assert p["targets"], p["title"]
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
    exprs = "\n".join(dashboard_exprs(dash))
    for service_metric in ("http_requests_total", "http_request_duration_seconds_bucket"):
        assert service_metric in exprs


def test_every_dashboard_query_is_valid_promql(render: RenderFn, tmp_path: Path) -> None:
    """promtool parses each panel's query (Grafana's variables replaced by plain values)."""
    grafana_vars = {
        "$__rate_interval": "5m",
        "$namespace": "strata",
        "$service": "critical",
    }
    rules = []
    for i, expr in enumerate(dashboard_exprs(dashboard(render(None, sets=DASHBOARD_ON)))):
        for var, value in grafana_vars.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"panel:query:{i}", "expr": expr})
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    proc = run_promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # selectors
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|on|ignoring|group_left|group_right) ?\([^)]*\)", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in PROMQL_WORDS and not n.startswith("$")}


def exported_metric_names() -> str:
    """All Python source of the services and of the PostgreSQL image's pgbackrest sidecar
    (k8s/postgres): metric names are literals there."""
    sources = [*(ROOT / "services").rglob("*.py"), *(ROOT / "k8s" / "postgres").glob("*.py")]
    return "\n".join(p.read_text() for p in sources)


def _base(name: str) -> str:
    return re.sub(r"_(bucket|sum|count|total)$", "", name)


def test_rules_and_dashboard_use_metrics_the_services_export(render: RenderFn) -> None:
    r = render(None, sets=(*RULE_ON, *DASHBOARD_ON))
    exprs = [a["expr"] for a in alerts(rendered_groups(r))] + dashboard_exprs(dashboard(r))
    used = set().union(*(metric_names(e) for e in exprs))
    assert "http_requests_total" in used
    assert "strata_pgbackrest_up" in used
    source = exported_metric_names()
    exporters = exporter_metric_names()
    # kube-state-metrics and Patroni (the PostgreSQL members) export the others; `up` is
    # Prometheus' own (one per target).
    missing = sorted(
        n
        for n in used
        if not n.startswith(("kube_", "patroni_"))
        and n != "up"
        and n not in exporters
        and f'"{_base(n)}' not in source
    )
    assert not missing, f"metrics no service or exporter exports: {missing}"


def exporter_metric_names() -> set[str]:
    """Every metric name the two exporters were seen to emit."""
    names: set[str] = set()
    for path in EXPORTER_METRICS.values():
        lines = path.read_text().splitlines()
        names |= {n for n in lines if n and not n.startswith("#")}
    return names


def test_exporter_rows_and_alerts_use_exporter_metrics(render: RenderFn) -> None:
    """The exporter panels and alerts name only series the exporters really emit (a renamed
    metric, e.g. pg_replication_lag, which 0.11 does not export by default, fails here)."""
    r = render(None, sets=(*RULE_ON, *DASHBOARD_ON))
    exprs = [a["expr"] for a in alerts(rendered_groups(r))] + dashboard_exprs(dashboard(r))
    used = set().union(*(metric_names(e) for e in exprs))
    seen = exporter_metric_names()
    exporter_used = {n for n in used if n.startswith(("pg_", "redis_"))}
    # strata's cache exports redis_command_* itself (services/cache): not the exporter's.
    exporter_used -= {n for n in exporter_used if n.startswith("redis_command_")}
    assert exporter_used - seen == set()
    for expected in (
        "pg_stat_activity_count",
        "pg_settings_max_connections",
        "pg_stat_replication_pg_wal_lsn_diff",
        "pg_stat_database_xact_commit",
        "pg_stat_database_deadlocks",
        "pg_up",
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_evicted_keys_total",
        "redis_connected_clients",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "redis_rejected_connections_total",
        "redis_up",
    ):
        assert expected in exporter_used, expected
    panels = {p["title"] for p in dashboard(r)["panels"]}
    assert {"PostgreSQL (postgres-exporter)", "Redis (redis-exporter)"} <= panels


def test_monitoring_objects_are_off_by_default(render: RenderFn) -> None:
    r = render(None)
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert r.kind(kind) == [], kind
    assert "strata-grafana-dashboard" not in r.names("ConfigMap")
