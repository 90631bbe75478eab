"""tracing.*: the standard OTEL_* variables in each service's ConfigMap, and egress to the
collector when NetworkPolicies are on; nothing of it by default."""

from __future__ import annotations

from .conftest import RenderFn, refusal

ON = (
    "tracing.enabled=true",
    "tracing.endpoint=http://otel-collector.observability:4318",
    "tracing.sampler=parentbased_traceidratio",
    "tracing.samplerArg=0.25",
)
PREFIX = {"critical": "CRITICAL", "ml": "ML", "cache": "CACHE"}


def test_off_by_default(render: RenderFn) -> None:
    r = render(None)
    for component in PREFIX:
        data = r.get("ConfigMap", f"strata-{component}")["data"]
        assert not [k for k in data if k.startswith("OTEL_")]
    assert not [n for n in r.names("NetworkPolicy") if n.endswith("-tracing")]


def test_enabled_sets_the_standard_variables(render: RenderFn) -> None:
    r = render(None, sets=ON)
    for component in PREFIX:
        data = r.get("ConfigMap", f"strata-{component}")["data"]
        assert data["OTEL_TRACES_EXPORTER"] == "otlp"
        assert data["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
        assert data["OTEL_SERVICE_NAME"] == f"strata-{component}"
        assert data["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert data["OTEL_TRACES_SAMPLER_ARG"] == "0.25"


def test_egress_to_the_collector_only_with_its_cidr(render: RenderFn) -> None:
    without = render(None, sets=(*ON, "networkPolicy.enabled=true"))
    assert not [n for n in without.names("NetworkPolicy") if n.endswith("-tracing")]
    r = render(None, sets=(*ON, "networkPolicy.enabled=true", "tracing.collectorCIDR=10.9.0.0/16"))
    for component in PREFIX:
        policy = r.get("NetworkPolicy", f"strata-{component}-tracing")
        (rule,) = policy["spec"]["egress"]
        assert rule["to"] == [{"ipBlock": {"cidr": "10.9.0.0/16"}}]
        assert rule["ports"] == [{"protocol": "TCP", "port": 4318}]
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector["app.kubernetes.io/component"] == component


def test_enabled_without_an_endpoint_is_refused(helm: str) -> None:
    assert "tracing.endpoint is required" in refusal(helm, ["tracing.enabled=true"])


def test_an_unknown_sampler_is_refused(helm: str) -> None:
    stderr = refusal(helm, ["tracing.sampler=sometimes"])
    assert "values don't meet the specifications of the schema" in stderr
