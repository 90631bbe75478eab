"""values.yaml, values.schema.json and validateValues: complete, documented, and strict."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.ml.settings import MlSettings

from . import chart_docs
from .conftest import CHART, load_values, refusal, run_helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES_TEXT = (CHART / "values.yaml").read_text()

#: Kubernetes structures passed through verbatim (checked by the strict k8s schema tests).
K8S_PASSTHROUGH = {"nodeAffinity", "podAffinity", "podAntiAffinity"}


def schema_at(path: str) -> dict[str, Any]:
    node = SCHEMA
    for part in path.split("."):
        node = node["properties"][part]
    return node


def test_modeline_points_at_the_schema() -> None:
    assert VALUES_TEXT.startswith("# yaml-language-server: $schema=values.schema.json\n")


def test_readme_tables_and_schema_descriptions_are_generated_from_values(tmp_path: Path) -> None:
    """`make chart-docs` output is what is committed: values.yaml's ## @param lines are the one
    description of each value (the generator also fails on a value without one, or a line for
    a value that does not exist, and merge_descriptions on a value missing from the schema)."""
    why = chart_docs.node_tools_missing()
    if why:
        pytest.skip(f"readme-generator-for-helm needs node and npm: {why}")
    chart_docs.generate(tmp_path)
    for name in ("README.md", "values.schema.json"):
        committed = (CHART / name).read_text()
        assert (tmp_path / name).read_text() == committed, f"{name} is stale: run make chart-docs"


def test_every_parameter_has_a_type_in_the_schema() -> None:
    for path in re.findall(r"^## @param (\S+) ", VALUES_TEXT, re.M):
        node = schema_at(path)
        assert "type" in node or "anyOf" in node, path


def test_every_object_in_the_schema_is_closed() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                closed = node.get("additionalProperties", True) is not True
                passthrough = where.rsplit("/", 1)[-1] in K8S_PASSTHROUGH
                assert closed or passthrough, f"{where} accepts unknown keys"
            for key, child in node.items():
                walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{where}/{i}")

    walk(SCHEMA, "#")
    assert SCHEMA["additionalProperties"] is False


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["critical.imagePullPolcy=Never"],
            "critical: Additional property imagePullPolcy is not allowed",
        ),
        (["unknownTopLevel=1"], "Additional property unknownTopLevel is not allowed"),
        (
            ["critical.workers=two"],
            "critical.workers: Invalid type. Expected: integer, given: string",
        ),
        (["ml.replicaCount=-1"], "ml.replicaCount: Must be greater than or equal to 0"),
        (
            ["cache.image.pullPolicy=Sometimes"],
            "cache.image.pullPolicy: cache.image.pullPolicy must be one of the following",
        ),
        (["redis.appendfsync=sometimes"], "redis.appendfsync must be one of the following"),
        (["auth.critical.secret=short"], "auth.critical.secret: Does not match pattern"),
        (["auth.jwt.secret=" + "s" * 40], "auth: Additional property jwt is not allowed"),
        (["auth.ml.algorithms={HS384}"], "auth.ml.algorithms.0: auth.ml.algorithms.0 must be"),
        (["auth.ml.algorithms={RS256,RS256}"], "auth.ml.algorithms: array items[0,1] must be"),
        (["auth.cache.publicKey=not-a-pem"], "auth.cache.publicKey: Does not match pattern"),
        (["auth.cache.jwksUrl=ftp://idp/jwks"], "auth.cache.jwksUrl: Does not match pattern"),
        (
            ["ingress.enabled=maybe"],
            "ingress.enabled: Invalid type. Expected: boolean, given: string",
        ),
        (
            ["postgresqlCritical.maxConnections=5"],
            "postgresqlCritical.maxConnections: Must be greater than or equal to 10",
        ),
        (["critical.resources.requests.gpu=1"], "Additional property gpu is not allowed"),
        (["networkPolicy.dnsPorts={70000}"], "Must be less than or equal to 65535"),
        (
            ["postgresqlCritical.auth.appUsername=Robert'); DROP"],
            "postgresqlCritical.auth.appUsername: Does not match pattern",
        ),
        (["critical.image.digest=sha256:abc"], "critical.image.digest: Does not match pattern"),
        (
            ["redis.image.digest=1.2.3@sha256:" + "a" * 64],
            "redis.image.digest: Does not match pattern",
        ),
        (["ingress.host=http://api.example.com"], "ingress.host: Does not match pattern"),
        (["ingress.tls.secretName=My_TLS"], "ingress.tls.secretName: Does not match pattern"),
        (["metrics.podMonitor.interval=5"], "metrics.podMonitor.interval: Invalid type"),
        (
            ["metrics.serviceMonitor.scrapeTimeout=5 s"],
            "metrics.serviceMonitor.scrapeTimeout: Does not match pattern",
        ),
        (
            ["metrics.serviceMonitor.relabelings[0].action=rename"],
            "metrics.serviceMonitor.relabelings.0.action must be one of the following",
        ),
        (
            ["metrics.podMonitor.metricRelabelings[0].source_labels={a}"],
            "Additional property source_labels is not allowed",
        ),
        (
            ["metrics.prometheusRule.ruleLabels.alertname=x"],
            "metrics.prometheusRule.ruleLabels",
        ),
        (
            ["metrics.prometheusRule.runbookUrl=docs/runbooks.md"],
            "metrics.prometheusRule.runbookUrl: Does not match pattern",
        ),
        (
            ["metrics.grafanaDashboard.sidecarLabelValue=two words"],
            "metrics.grafanaDashboard.sidecarLabelValue: Does not match pattern",
        ),
        (["metrics.serviceMonitor.namespace=Monitoring"], "Does not match pattern"),
        (["metrics.serviceMonitor.release=x"], "Additional property release is not allowed"),
    ],
)
def test_schema_rejects_bad_values(helm: str, sets: list[str], message: str) -> None:
    stderr = refusal(helm, sets)
    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr, stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["postgresqlCritical.enabled=false"],
            "postgresqlCritical.enabled=false needs postgresqlCritical.external.host",
        ),
        (
            ["postgresqlCritical.enabled=false", "postgresqlCritical.external.host=db"],
            "an external critical PostgreSQL needs postgresqlCritical.auth.ownerPassword",
        ),
        (
            ["postgresqlMl.enabled=false"],
            "postgresqlMl.enabled=false needs postgresqlMl.external.host",
        ),
        (["redis.enabled=false"], "redis.enabled=false needs redis.external.url"),
        (
            ["ingress.enabled=true"],
            "ingress.enabled needs ingress.host, the DNS name clients use",
        ),
        (
            ["ingress.enabled=true", "ingress.tls.enabled=false"],
            "ingress.enabled needs ingress.host",
        ),
        (
            ["critical.terminationGracePeriodSeconds=10"],
            "critical.terminationGracePeriodSeconds (10) must be at least "
            "preStopSleepSeconds + drainSeconds + gracefulShutdownSeconds + 5 s to exit (33)",
        ),
        (
            # The in-flight allowance counts: 5 + 3 + 30 + 5 = 43 > the default 40.
            ["ml.gracefulShutdownSeconds=30"],
            "ml.terminationGracePeriodSeconds (40) must be at least "
            "preStopSleepSeconds + drainSeconds + gracefulShutdownSeconds + 5 s to exit (43)",
        ),
        (
            ["cache.terminationGracePeriodSeconds=32"],
            "cache.terminationGracePeriodSeconds (32) must be at least",
        ),
        (
            ["critical.autoscaling.enabled=true", "critical.autoscaling.maxReplicas=20"],
            "connection budget of critical is 210",
        ),
        # (3 + 1) x 8 x (5 + 0 + 2 snapshot holders)
        (["ml.workers=8", "ml.replicaCount=3"], "connection budget of ml is 224"),
        (
            # (2 + 1) x 6 x 5 = 90 pooled connections fit the 100 - 10 exactly; the 2
            # snapshot holders of each worker (36 more) do not.
            ["ml.workers=6"],
            "connection budget of ml is 126 ((replicas or autoscaling.maxReplicas) + "
            "rollingUpdate.maxSurge) x workers x (poolSize + maxOverflow + "
            "exportSnapshotsMax), over postgresqlMl.maxConnections - reservedConnections = 90",
        ),
        (
            ["ml.exportMaxConcurrent=5"],
            "ml.exportMaxConcurrent must be below ml.database.poolSize + ml.database.maxOverflow",
        ),
        (
            ["postgresqlMl.auth.appUsername=strata_ml"],
            "postgresqlMl.auth.appUsername must differ from postgresqlMl.auth.username",
        ),
        (
            [
                "cache.autoscaling.enabled=true",
                "cache.autoscaling.minReplicas=5",
                "cache.autoscaling.maxReplicas=3",
            ],
            "cache.autoscaling.minReplicas must not exceed maxReplicas",
        ),
    ],
)
def test_validate_values_fails_early_with_a_clear_message(
    helm: str, sets: list[str], message: str
) -> None:
    args = ["template", "strata", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode != 0, f"{sets} was accepted"
    assert "VALUES VALIDATION" in proc.stderr
    assert message in proc.stderr, proc.stderr


def test_the_ml_budget_counts_snapshot_holders_to_the_exact_limit(helm: str) -> None:
    """(2 + 1) x 5 x (5 + 0 + 1) = 90 fits 100 - 10; one more holder per worker does not."""
    base = ["ml.workers=5", "ml.exportSnapshotTtl=120", "ml.exportParquetRowGroupRows=4096"]
    args = ["template", "strata", str(CHART), "--show-only", "templates/ml/configmap.yaml"]
    for s in [*base, "ml.exportSnapshotsMax=1"]:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode == 0, proc.stderr
    (config,) = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert config["data"]["STRATA_ML_EXPORT_SNAPSHOTS_MAX"] == "1"
    assert config["data"]["STRATA_ML_EXPORT_SNAPSHOT_TTL"] == "120"
    assert config["data"]["STRATA_ML_EXPORT_PARQUET_ROW_GROUP_ROWS"] == "4096"
    refused = run_helm(
        helm, "template", "strata", str(CHART), *[f"--set={s}" for s in base],
        "--set=ml.exportSnapshotsMax=2",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "connection budget of ml is 105" in refused.stderr, refused.stderr


def test_the_ml_export_settings_reach_the_service_with_their_defaults(helm: str) -> None:
    proc = run_helm(
        helm, "template", "strata", str(CHART), "--show-only", "templates/ml/configmap.yaml"
    )
    assert proc.returncode == 0, proc.stderr
    (config,) = [d for d in yaml.safe_load_all(proc.stdout) if d]
    defaults = MlSettings.model_fields
    for variable, field in [
        ("STRATA_ML_EXPORT_SNAPSHOTS_MAX", "export_snapshots_max"),
        ("STRATA_ML_EXPORT_SNAPSHOT_TTL", "export_snapshot_ttl"),
        ("STRATA_ML_EXPORT_PARQUET_ROW_GROUP_ROWS", "export_parquet_row_group_rows"),
    ]:
        assert config["data"][variable] == str(defaults[field].default), variable


def test_the_shutdown_rule_accepts_its_exact_floor_and_passes_the_allowance_on(helm: str) -> None:
    # 5 + 3 + 12 + 5 = 25: the floor itself is enough, and the allowance reaches the env.
    sets = ["ml.gracefulShutdownSeconds=12", "ml.terminationGracePeriodSeconds=25"]
    args = ["template", "strata", str(CHART), "--show-only", "templates/ml/configmap.yaml"]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode == 0, proc.stderr
    (config,) = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert config["data"]["STRATA_ML_GRACEFUL_SECONDS"] == "12"
    assert config["data"]["STRATA_ML_DRAIN_SECONDS"] == "3"


def test_validate_values_reports_every_problem_at_once(helm: str) -> None:
    proc = run_helm(
        helm,
        "template",
        "strata",
        str(CHART),
        "--set",
        "redis.enabled=false",
        "--set",
        "ingress.enabled=true",
    )
    assert proc.returncode != 0
    assert "redis.enabled=false needs redis.external.url" in proc.stderr
    assert "ingress.enabled needs ingress.host" in proc.stderr


def test_defaults_budget_is_within_limits() -> None:
    v = load_values()
    for svc, pg in (("critical", "postgresqlCritical"), ("ml", "postgresqlMl")):
        s = v[svc]
        worst = (
            max(s["replicaCount"], s["autoscaling"]["maxReplicas"]) + s["rollingUpdate"]["maxSurge"]
        )
        budget = worst * s["workers"] * (s["database"]["poolSize"] + s["database"]["maxOverflow"])
        assert budget <= v[pg]["maxConnections"] - v[pg]["reservedConnections"], svc
