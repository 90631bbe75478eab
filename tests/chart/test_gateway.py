"""Gateway API: the HTTPRoutes (gateway.enabled) publish exactly the Ingress' API paths on the
user's Gateway, to the Services the chart renders, valid against the real Gateway API CRDs;
the optional ReferenceGrant for the listener's certificate; the NetworkPolicies' data-plane peer.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from . import gateway_crd
from .conftest import CHART, Render, RenderFn, run_helm

GATEWAY_CI = str(CHART / "ci" / "gateway-values.yaml")
#: The smallest configuration that renders HTTPRoutes, with an Ingress to compare them with.
ON = (
    "gateway.enabled=true",
    "gateway.parentRefs[0].name=public",
    "ingress.enabled=true",
    "ingress.host=api.example.com",
)
#: Gateway API's names for the Ingress path types the chart uses.
PATH_TYPES = {"Prefix": "PathPrefix", "Exact": "Exact"}


def ingress_paths(r: Render) -> set[tuple[str, str, str, int]]:
    """(path, Gateway API match type, Service, port) of every path of the rendered Ingress."""
    (ing,) = r.kind("Ingress")
    (rule,) = ing["spec"]["rules"]
    return {
        (
            p["path"],
            PATH_TYPES[p["pathType"]],
            p["backend"]["service"]["name"],
            p["backend"]["service"]["port"]["number"],
        )
        for p in rule["http"]["paths"]
    }


def route_paths(r: Render) -> set[tuple[str, str, str, int]]:
    """The same tuples for every match of every rendered HTTPRoute rule (one backend each)."""
    out = set()
    for route in r.kind("HTTPRoute"):
        for rule in route["spec"]["rules"]:
            (backend,) = rule["backendRefs"]
            for match in rule["matches"]:
                path = match["path"]
                out.add((path["value"], path["type"], backend["name"], backend["port"]))
    return out


def test_off_by_default(render: RenderFn) -> None:
    r = render(None)
    assert r.kind("HTTPRoute") == []
    assert r.kind("ReferenceGrant") == []


def test_routes_are_the_ingress_paths_to_the_rendered_services(render: RenderFn) -> None:
    r = render(None, sets=ON)
    routes = r.kind("HTTPRoute")
    assert {x["metadata"]["name"] for x in routes} == {
        "strata-critical",
        "strata-ml",
        "strata-cache",
    }
    got = route_paths(r)
    assert got == ingress_paths(r), "the HTTPRoutes and the Ingress publish different paths"
    # Every backend is a Service the chart rendered, on one of its ports, in the release.
    for route in routes:
        assert route["metadata"]["namespace"] == "strata"
        for rule in route["spec"]["rules"]:
            for backend in rule["backendRefs"]:
                assert set(backend) == {"name", "port"}, "a core Service in the same namespace"
                service = r.get("Service", backend["name"])
                assert backend["port"] in [p["port"] for p in service["spec"]["ports"]]
                component = route["metadata"]["labels"]["app.kubernetes.io/component"]
                assert service["metadata"]["labels"]["app.kubernetes.io/component"] == component
    # The batch endpoints are Exact matches with their ':' (Gateway API allows it in paths).
    assert {p for p, t, _, _ in got if ":" in p and t == "Exact"} == {
        "/v1/kv:mget",
        "/v1/kv:mset",
    }
    for value, kind, _, _ in got:
        assert "metrics" not in value
        assert not value.startswith(("/livez", "/readyz", "/openapi"))
        broken, evaluated = gateway_crd.path_rule_violations({"type": kind, "value": value})
        assert evaluated >= 5, "the CRD's CEL path rules were not found: refresh the parser"
        assert broken == [], (value, broken)


def test_batch_paths_stay_exact_with_the_ingress_fallback(render: RenderFn) -> None:
    """ingress.batchPathType=ImplementationSpecific is an ingress-nginx workaround: the routes
    still match the batch endpoints exactly, and cover every path of the Ingress."""
    r = render(GATEWAY_CI)
    (ing,) = r.kind("Ingress")
    ingress = {p["path"] for p in ing["spec"]["rules"][0]["http"]["paths"]}
    routed = {(value, kind) for value, kind, _, _ in route_paths(r)}
    assert {value for value, _ in routed} == ingress | {"/v1/kv:mget", "/v1/kv:mset"}
    assert ("/v1/kv:mget", "Exact") in routed
    assert ("/v1/kv", "PathPrefix") in routed


def test_parent_refs_hostnames_labels_and_annotations_land_as_configured(
    render: RenderFn,
) -> None:
    r = render(GATEWAY_CI)
    for route in r.kind("HTTPRoute"):
        spec = route["spec"]
        assert spec["parentRefs"] == [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": "public",
                "namespace": "gateway-system",
                "sectionName": "https",
            }
        ]
        assert spec["hostnames"] == ["api.strata.example.com", "strata.example.com"]
        labels = route["metadata"]["labels"]
        assert labels["example.com/exposure"] == "public"
        assert labels["app.kubernetes.io/instance"] == "strata"
        assert route["metadata"]["annotations"] == {"example.com/owner": "platform"}


def test_hostnames_default_to_the_ingress_host_else_none(render: RenderFn) -> None:
    (route, *_) = render(None, sets=ON).kind("HTTPRoute")
    assert route["spec"]["hostnames"] == ["api.example.com"]
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}
    ], "no namespace: the route's own; no sectionName: every listener that admits it"
    bare = render(None, sets=ON[:2])
    assert bare.kind("Ingress") == []
    for route in bare.kind("HTTPRoute"):
        assert "hostnames" not in route["spec"], "the listener's host names"


def test_every_gateway_object_is_valid_against_the_real_crds(render: RenderFn) -> None:
    r = render(GATEWAY_CI)
    objects = [d for d in r.docs if (d["apiVersion"], d["kind"]) in gateway_crd.KINDS]
    assert sorted(d["kind"] for d in objects) == ["HTTPRoute"] * 3 + ["ReferenceGrant"]
    for obj in objects:
        gateway_crd.validate(obj)


def test_crd_validation_catches_a_typo_and_a_bad_value(render: RenderFn) -> None:
    (route, *_) = render(GATEWAY_CI).kind("HTTPRoute")
    typo = copy.deepcopy(route)
    typo["spec"]["parentRefs"][0]["sectionNme"] = typo["spec"]["parentRefs"][0].pop("sectionName")
    bad_type = copy.deepcopy(route)
    bad_type["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"  # the Ingress' word
    bad_port = copy.deepcopy(route)
    bad_port["spec"]["rules"][0]["backendRefs"][0]["port"] = 70000
    for bad in (typo, bad_type, bad_port):
        with pytest.raises(jsonschema.ValidationError):
            gateway_crd.validate(bad)
    broken, _ = gateway_crd.path_rule_violations({"type": "Exact", "value": "/v1//kv"})
    assert broken


def test_vendored_crds_are_the_pinned_release() -> None:
    for kind, (name, digest) in gateway_crd.CRD_FILES.items():
        assert gateway_crd.file_digest(kind) == digest, f"{name} differs from the vendored one"
        crd = gateway_crd.crd(kind)
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == (
            gateway_crd.GATEWAY_API_VERSION
        )
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"
    assert ("gateway.networking.k8s.io/v1", "HTTPRoute") in gateway_crd.KINDS
    readme = (gateway_crd.CRDS / "README.md").read_text()
    assert f"**{gateway_crd.GATEWAY_API_VERSION}**" in readme
    assert "Apache License" in (gateway_crd.CRDS / "LICENSE").read_text()


def test_reference_grant_covers_one_secret_for_the_other_namespaces(render: RenderFn) -> None:
    r = render(GATEWAY_CI)
    (grant,) = r.kind("ReferenceGrant")
    assert grant["metadata"]["namespace"] == "strata", "a grant lives beside the Secret"
    assert grant["spec"]["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "gateway-system"}
    ]
    assert grant["spec"]["to"] == [{"group": "", "kind": "Secret", "name": "strata-tls"}]
    named = render(
        GATEWAY_CI,
        sets=("ingress.tls.secretName=api-cert", "gateway.parentRefs[1].name=other"),
    )
    (grant,) = named.kind("ReferenceGrant")
    assert grant["spec"]["to"][0]["name"] == "api-cert"
    assert len(grant["spec"]["from"]) == 1, "a Gateway of the release namespace needs no grant"


def _fails(helm: str, *sets: str) -> str:
    args = ["template", "strata", str(CHART), "--namespace", "strata"]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode != 0, "rendered without error"
    return proc.stderr


def test_validation_needs_parent_refs(helm: str) -> None:
    err = _fails(helm, "gateway.enabled=true")
    assert "VALUES VALIDATION" in err
    assert "gateway.enabled needs gateway.parentRefs" in err


def test_validation_of_the_reference_grant(helm: str) -> None:
    err = _fails(helm, *ON, "gateway.tlsReferenceGrant.enabled=true")
    assert "needs no ReferenceGrant" in err, err
    err = _fails(helm, "gateway.tlsReferenceGrant.enabled=true")
    assert "gateway.tlsReferenceGrant.enabled needs gateway.enabled" in err


def test_parent_refs_are_closed_in_the_values_schema(helm: str) -> None:
    err = _fails(helm, *ON, "gateway.parentRefs[0].sectionNme=https")
    assert "sectionNme" in err


def _service_peers(r: Render, svc: str) -> list[dict[str, Any]]:
    np = r.get("NetworkPolicy", f"strata-{svc}")
    (rule,) = np["spec"]["ingress"]
    peers: list[dict[str, Any]] = rule["from"]
    return peers


def test_network_policies_admit_the_gateway_data_plane(render: RenderFn) -> None:
    controller = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
    }
    envoy = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}
        },
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "envoy",
                "gateway.envoyproxy.io/owning-gateway-name": "public",
            }
        },
    }
    separate = render(GATEWAY_CI)
    shared = render(None, sets=ON)  # networkPolicy.gateway empty: the controller's pods
    off = render(None)
    for svc in ("critical", "ml", "cache"):
        peers = _service_peers(separate, svc)
        assert controller in peers and envoy in peers, svc
        shared_peers = _service_peers(shared, svc)
        assert controller in shared_peers
        assert shared_peers == _service_peers(off, svc), "no extra peer, never {} (everyone)"
        for peer in peers:
            assert peer.get("namespaceSelector") != {"matchLabels": {}}, peer
    # Only the services take client traffic: the stores admit their own service only.
    assert "envoy" not in str(separate.get("NetworkPolicy", "strata-redis"))


def test_notes_mention_the_routes(helm: str, tmp_path: Path) -> None:
    from .test_objects import render_notes

    notes = render_notes(
        helm,
        tmp_path,
        "gateway.enabled=true",
        "gateway.parentRefs[0].name=public",
        "gateway.parentRefs[0].namespace=gateway-system",
        "gateway.parentRefs[0].sectionName=https",
        "gateway.hostnames[0]=api.example.com",
        "gateway.tlsReferenceGrant.enabled=true",
    )
    assert "HTTPRoutes strata-critical, strata-ml, strata-cache" in notes
    assert "Gateway gateway-system/public (listener https)" in notes
    assert "for api.example.com" in notes
    assert "ReferenceGrant strata-gateway-tls" in notes
    assert "no Ingress" not in notes
