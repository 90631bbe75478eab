"""helm lint --strict and helm template over every ci/ scenario; strict schema validation of
every rendered object against several Kubernetes versions (the Prometheus Operator's custom
resources against crd_schema); API versions chosen per version."""

from __future__ import annotations

import json

import jsonschema
import pytest

from . import crd_schema, gateway_crd, k8s_schema
from .conftest import (
    CHART,
    CI_VALUES,
    FLOOR_VERSION,
    LINT_VERSIONS,
    SCHEMA_VERSIONS,
    RenderFn,
    ci_id,
    run_helm,
)

#: Custom resources: no schema in kubernetes-validate; validated by crd_schema (the Prometheus
#: Operator's) and gateway_crd (the real Gateway API CRDs) instead.
CRD_KINDS = crd_schema.KINDS | gateway_crd.KINDS


@pytest.mark.parametrize("kube_version", LINT_VERSIONS)
def test_helm_lint_strict(lint_results, ci_values: str, kube_version: str) -> None:
    proc = lint_results[(ci_values, kube_version)]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("kube_version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("values_file", CI_VALUES, ids=ci_id)
def test_every_object_is_valid_strictly(render: RenderFn, values_file, kube_version: str) -> None:
    result = render(str(values_file), kube_version)
    assert result.docs, "nothing rendered"
    errors = []
    for doc in result.docs:
        try:
            if (doc["apiVersion"], doc["kind"]) in gateway_crd.KINDS:
                gateway_crd.validate(doc)
                continue
            if (doc["apiVersion"], doc["kind"]) in crd_schema.KINDS:
                crd_schema.validate(doc)
                continue
            k8s_schema.validate(doc, kube_version)
        except (jsonschema.ValidationError, k8s_schema.UnknownKindError) as exc:
            path = "/".join(str(p) for p in getattr(exc, "absolute_path", []))
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} {path}: {exc}".splitlines()[0])
    assert not errors, "\n".join(errors)


def test_schema_validation_catches_a_typo() -> None:
    """The strict validator is what catches misspelt fields: prove it does."""
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "x", "image": "x", "imagePullPolcy": "Never"}]},
    }
    for version in SCHEMA_VERSIONS:
        with pytest.raises(jsonschema.ValidationError, match="imagePullPolcy"):
            k8s_schema.validate(bad, version)


def test_crd_validation_catches_a_typo_and_a_bad_value() -> None:
    """Custom resources are validated as strictly: prove it on each kind's misspelt field."""
    sm = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x", "namespace": "strata"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "endpoints": [{"port": "http"}]},
    }
    crd_schema.validate(sm)
    sm["spec"]["endpoints"][0]["scrapeTimout"] = "5s"
    with pytest.raises(jsonschema.ValidationError, match="scrapeTimout"):
        crd_schema.validate(sm)
    pm = {**sm, "kind": "PodMonitor"}
    pm["spec"] = {"selector": {}, "podMetricsEndpoints": [{"port": "http"}]}
    with pytest.raises(jsonschema.ValidationError, match="should be non-empty"):
        crd_schema.validate(pm)  # an empty selector would pick every pod of the namespace
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x", "namespace": "strata"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "for": "5min"}]}]},
    }
    with pytest.raises(jsonschema.ValidationError, match="5min"):
        crd_schema.validate(rule)


def test_schema_versions_span_what_is_shipped() -> None:
    shipped = k8s_schema.shipped_versions()
    assert SCHEMA_VERSIONS[0] == min(shipped, key=lambda v: tuple(map(int, v.split("."))))
    assert SCHEMA_VERSIONS[-1] == max(shipped, key=lambda v: tuple(map(int, v.split("."))))


def _api(result, kind: str) -> set[str]:
    return {d["apiVersion"] for d in result.kind(kind)}


@pytest.mark.parametrize(
    ("kube_version", "pdb", "hpa", "retention"),
    [
        (FLOOR_VERSION, "policy/v1beta1", "autoscaling/v2beta2", False),
        ("1.22.0", "policy/v1", "autoscaling/v2beta2", False),
        ("1.25.0", "policy/v1", "autoscaling/v2", False),
        ("1.27.0", "policy/v1", "autoscaling/v2", True),
        ("1.37.0", "policy/v1", "autoscaling/v2", True),
    ],
)
def test_api_versions_follow_capabilities(
    render: RenderFn, kube_version: str, pdb: str, hpa: str, retention: bool
) -> None:
    result = render(str(CHART / "ci" / "hpa-values.yaml"), kube_version)
    assert _api(result, "PodDisruptionBudget") == {pdb}
    assert _api(result, "HorizontalPodAutoscaler") == {hpa}
    sts = result.kind("StatefulSet")
    assert len(sts) == 4  # PostgreSQL x2, Redis, the pgBackRest repository host
    cronjob = "batch/v1" if semver_at_least(kube_version, (1, 21)) else "batch/v1beta1"
    assert _api(result, "CronJob") == {cronjob}
    for s in sts:
        assert ("persistentVolumeClaimRetentionPolicy" in s["spec"]) is retention, s["metadata"][
            "name"
        ]


def semver_at_least(version: str, floor: tuple[int, int]) -> bool:
    major, minor = (int(x) for x in version.split(".")[:2])
    return (major, minor) >= floor


#: Every apiVersion/kind Kubernetes 1.20 serves that the chart may render (no 1.20 schemas are
#: published in kubernetes-validate, so the floor is checked by this list and the structure).
K8S_1_20 = {
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1beta1", "PodDisruptionBudget"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("batch/v1beta1", "CronJob"),
}


@pytest.mark.parametrize("values_file", CI_VALUES, ids=ci_id)
def test_floor_version_renders_only_apis_it_serves(render: RenderFn, values_file) -> None:
    result = render(str(values_file), FLOOR_VERSION)
    for doc in result.docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in CRD_KINDS:
            continue
        assert key in K8S_1_20, f"{key} is not served by Kubernetes 1.20"
    # Fields newer than 1.20 never appear: spec-level retention policy, matchLabelKeys,
    # minDomains/nodeAffinityPolicy on topology spread.
    text = json.dumps(result.docs)
    for newer in (
        "persistentVolumeClaimRetentionPolicy",
        "matchLabelKeys",
        "minDomains",
        "nodeAffinityPolicy",
        "nodeTaintsPolicy",
    ):
        assert newer not in text, newer


def test_chart_declares_its_floor(render: RenderFn, helm: str) -> None:
    chart = (CHART / "Chart.yaml").read_text()
    assert 'kubeVersion: ">=1.20.0-0"' in chart
    proc = run_helm(helm, "template", "x", str(CHART), "--kube-version", "1.19.16")
    assert proc.returncode != 0
    assert "kubeVersion" in proc.stderr or "incompatible" in proc.stderr, proc.stderr
