"""k8s/monitoring: rules pass promtool, the PrometheusRule matches them, the dashboard is sound,
and every metric they use is one the services export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT

MONITORING = ROOT / "k8s" / "monitoring"
RULES = MONITORING / "strata-rules.yaml"
RULES_TEST = MONITORING / "strata-rules.test.yaml"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

#: Alerts the issue asks for: error rate, latency, readiness, pool saturation, stores down.
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


def test_promtool_check_rules() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_promtool_unit_tests_of_the_alerts() -> None:
    proc = subprocess.run(
        [promtool(), "test", "rules", RULES_TEST.name],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m]\n"
    )
    proc = subprocess.run(
        [promtool(), "check", "rules", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0


def rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["groups"]


def test_prometheus_rule_matches_the_rules_file() -> None:
    pr = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert pr["apiVersion"] == "monitoring.coreos.com/v1"
    assert pr["kind"] == "PrometheusRule"
    assert pr["metadata"]["name"]
    assert pr["spec"]["groups"] == rule_groups()


def test_required_alerts_exist_with_severity_and_docs() -> None:
    alerts = [r for g in rule_groups() for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} >= REQUIRED_ALERTS
    for alert in alerts:
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["description"], alert["alert"]
        assert re.fullmatch(r"\d+[mh]", alert["for"]), alert["alert"]


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # selectors
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|on|ignoring|group_left|group_right) ?\([^)]*\)", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in PROMQL_WORDS and not n.startswith("$")}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def exported_metric_names() -> str:
    """All Python source of the services and of the PostgreSQL image's pgbackrest sidecar
    (k8s/postgres): metric names are literals there."""
    sources = [*(ROOT / "services").rglob("*.py"), *(ROOT / "k8s" / "postgres").glob("*.py")]
    return "\n".join(p.read_text() for p in sources)


def _base(name: str) -> str:
    return re.sub(r"_(bucket|sum|count|total)$", "", name)


def test_rules_and_dashboard_use_metrics_the_services_export() -> None:
    source = exported_metric_names()
    exprs = [r["expr"] for g in rule_groups() for r in g["rules"]] + dashboard_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert "http_requests_total" in used
    # kube-state-metrics and Patroni (the PostgreSQL members) export the others.
    missing = sorted(
        n for n in used if not n.startswith(("kube_", "patroni_")) and f'"{_base(n)}' not in source
    )
    assert not missing, f"metrics no service exports: {missing}"


def test_dashboard_is_sound() -> None:
    dash = dashboard()
    assert dash["uid"] == "strata-services"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "namespace", "service"} <= variables
    cells = set()
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${datasource}"
        assert p["targets"], p["title"]
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
    exprs = "\n".join(dashboard_exprs())
    for service_metric in ("http_requests_total", "http_request_duration_seconds_bucket"):
        assert service_metric in exprs
