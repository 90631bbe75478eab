"""The data tier's exporter sidecars (metrics.postgresExporter, metrics.redisExporter): rendered
per flag, their images, least-privilege login and secret files, ports, Services and the
NetworkPolicy rules that admit Prometheus to them (and nothing else)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from .conftest import Render, RenderFn

TIERS = ("strata-postgresql-critical", "strata-postgresql-ml")
PG_OFF = "metrics.postgresExporter.enabled=false"
REDIS_OFF = "metrics.redisExporter.enabled=false"
SENTINEL = "redis.mode=sentinel"


def pod_spec(r: Render, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = r.get("StatefulSet", name)["spec"]["template"]["spec"]
    return spec


def container(spec: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = [c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name]
    return found[0] if found else None


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def projected(spec: dict[str, Any], volume: str) -> list[tuple[str, str, str]]:
    """(Secret, key, path) of a projected secrets volume."""
    (vol,) = [v for v in spec["volumes"] if v["name"] == volume]
    return [
        (s["secret"]["name"], item["key"], item["path"])
        for s in vol["projected"]["sources"]
        for item in s["secret"]["items"]
    ]


@pytest.mark.parametrize("tier", TIERS)
def test_postgres_exporter_sidecar_logs_in_as_the_monitor_role(render: RenderFn, tier: str) -> None:
    spec = pod_spec(render(None), tier)
    c = container(spec, "postgres-exporter")
    assert c is not None
    # The tier's own image (k8s/postgres/Dockerfile installs the exporter), its binary.
    pg = container(spec, "postgresql")
    assert pg is not None and c["image"] == pg["image"]
    assert c["command"] == ["prometheus-postgres-exporter"]
    assert "--web.listen-address=:9187" in c["args"]
    e = env(c)
    assert e["DATA_SOURCE_URI"] == "127.0.0.1:5432/postgres?sslmode=disable"
    assert e["DATA_SOURCE_USER"] == "strata_monitor"
    # The password is a mounted file of the tier's Patroni Secret: no superuser, no env value.
    assert e["DATA_SOURCE_PASS_FILE"] == "/var/run/secrets/strata/monitor-password"
    assert projected(spec, "exporter-secrets") == [
        (f"{tier}-patroni", "monitor-password", "monitor-password")
    ]
    assert "DATA_SOURCE_NAME" not in e and "PGPASSWORD" not in e
    assert c["ports"] == [{"name": "pg-exporter", "containerPort": 9187, "protocol": "TCP"}]
    sc = c["securityContext"]
    assert (
        sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
    )
    assert c["resources"]["limits"]["memory"]
    # The member keeps the role: its username and password file, and Patroni's callbacks.
    assert env(pg)["STRATA_PG_MONITOR_USERNAME"] == "strata_monitor"
    assert env(pg)["STRATA_PG_MONITOR_PASSWORD_FILE"] == "/var/run/secrets/strata/monitor-password"
    assert (f"{tier}-patroni", "monitor-password", "monitor-password") in projected(spec, "secrets")


@pytest.mark.parametrize("tier", TIERS)
def test_patroni_callbacks_keep_the_role_and_the_secret_holds_its_password(
    render: RenderFn, tier: str
) -> None:
    r = render(None)
    patroni = yaml.safe_load(r.get("ConfigMap", f"{tier}-patroni")["data"]["patroni.yaml"])
    callbacks = patroni["postgresql"]["callbacks"]
    assert callbacks == {
        "on_start": "/usr/local/bin/strata-patroni callback",
        "on_role_change": "/usr/local/bin/strata-patroni callback",
    }
    assert patroni["bootstrap"]["post_bootstrap"] == "/usr/local/bin/strata-patroni post-bootstrap"
    assert r.get("Secret", f"{tier}-patroni")["data"]["monitor-password"]
    off = render(None, sets=(PG_OFF,))
    patroni = yaml.safe_load(off.get("ConfigMap", f"{tier}-patroni")["data"]["patroni.yaml"])
    assert "callbacks" not in patroni["postgresql"]
    pg = container(pod_spec(off, tier), "postgresql")
    assert pg is not None and "STRATA_PG_MONITOR_USERNAME" not in env(pg)


def test_postgres_exporter_image_override_and_args(render: RenderFn) -> None:
    r = render(
        None,
        sets=(
            "metrics.postgresExporter.image.repository=quay.io/prometheuscommunity/postgres-exporter",
            "metrics.postgresExporter.image.tag=v0.11.1",
            "metrics.postgresExporter.command={/bin/postgres_exporter}",
            "metrics.postgresExporter.extraArgs={--no-collector.stat_bgwriter}",
            "metrics.postgresExporter.username=metrics",
        ),
    )
    c = container(pod_spec(r, TIERS[0]), "postgres-exporter")
    assert c is not None
    assert c["image"] == "quay.io/prometheuscommunity/postgres-exporter:v0.11.1"
    assert c["command"] == ["/bin/postgres_exporter"]
    assert c["args"][-1] == "--no-collector.stat_bgwriter"
    assert env(c)["DATA_SOURCE_USER"] == "metrics"


@pytest.mark.parametrize("mode", ["standalone", "sentinel"])
def test_redis_exporter_on_every_redis_pod(render: RenderFn, mode: str) -> None:
    spec = pod_spec(render(None, sets=(f"redis.mode={mode}",)), "strata-redis")
    c = container(spec, "redis-exporter")
    assert c is not None
    assert c["image"] == "oliver006/redis_exporter:v1.45.0"
    assert "command" not in c  # the image's entrypoint
    e = env(c)
    assert e["REDIS_ADDR"] == "redis://127.0.0.1:6379"
    assert e["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] == ":9121"
    assert e["REDIS_PASSWORD_FILE"] == "/run/redis-exporter/passwords.json"
    assert "REDIS_PASSWORD" not in e
    assert c["ports"] == [{"name": "redis-exporter", "containerPort": 9121, "protocol": "TCP"}]
    assert c["securityContext"]["readOnlyRootFilesystem"]
    # The init container turns the mounted Secret into the exporter's JSON password file.
    init = container(spec, "redis-exporter-auth")
    assert init is not None
    script = init["command"][2]
    assert "/var/run/secrets/strata/redis-password" in script
    assert "/run/redis-exporter/passwords.json" in script
    assert projected(spec, "exporter-secrets") == [("strata-redis", "password", "redis-password")]
    (vol,) = [v for v in spec["volumes"] if v["name"] == "exporter-auth"]
    assert vol["emptyDir"]["medium"] == "Memory"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["exporter-auth"]["readOnly"] is True
    assert "exporter-secrets" not in mounts  # the sidecar never sees the Secret itself


def test_redis_exporter_without_auth_and_with_the_strata_image(render: RenderFn) -> None:
    r = render(
        None,
        sets=(
            "redis.auth.enabled=false",
            "redis.image.repository=strata-test/redis",
            "redis.image.tag=7-exp",
            "metrics.redisExporter.image.repository=",
            "metrics.redisExporter.image.tag=",
            "metrics.redisExporter.command={prometheus-redis-exporter}",
        ),
    )
    spec = pod_spec(r, "strata-redis")
    c = container(spec, "redis-exporter")
    assert c is not None
    assert c["image"] == "strata-test/redis:7-exp"
    assert c["command"] == ["prometheus-redis-exporter"]
    assert "REDIS_PASSWORD_FILE" not in env(c)
    assert container(spec, "redis-exporter-auth") is None
    assert "initContainers" not in spec


def test_exporters_off(render: RenderFn) -> None:
    r = render(None, sets=(PG_OFF, REDIS_OFF))
    for name in (*TIERS, "strata-redis"):
        spec = pod_spec(r, name)
        assert container(spec, "postgres-exporter") is None
        assert container(spec, "redis-exporter") is None
        assert "exporter" not in json.dumps(spec["volumes"])
    assert not {f"{t}-metrics" for t in (*TIERS, "strata-redis")} & r.names("Service")


@pytest.mark.parametrize(
    ("service", "port", "name"),
    [
        ("strata-postgresql-critical-metrics", 9187, "pg-exporter"),
        ("strata-postgresql-ml-metrics", 9187, "pg-exporter"),
        ("strata-redis-metrics", 9121, "redis-exporter"),
    ],
)
def test_exporter_services_carry_the_scrape_annotations(
    render: RenderFn, service: str, port: int, name: str
) -> None:
    svc = render(None).get("Service", service)
    assert svc["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    assert svc["spec"]["ports"] == [
        {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
    ]
    assert svc["metadata"]["labels"]["strata.io/metrics"] == "exporter"
    off = render(None, sets=("metrics.scrapeAnnotations=false",)).get("Service", service)
    assert "annotations" not in off["metadata"]


def ingress_ports(r: Render, policy: str) -> list[tuple[str, set[int]]]:
    """(peer kind, ports) of each ingress rule of a NetworkPolicy."""
    out = []
    for rule in r.get("NetworkPolicy", policy)["spec"].get("ingress", []):
        peers = {"namespaceSelector" if "namespaceSelector" in p else "pod" for p in rule["from"]}
        out.append((",".join(sorted(peers)), {p["port"] for p in rule["ports"]}))
    return out


@pytest.mark.parametrize(
    ("policy", "port"),
    [
        ("strata-postgresql-critical", 9187),
        ("strata-postgresql-ml", 9187),
        ("strata-redis", 9121),
    ],
)
def test_network_policy_admits_the_exporter_port_from_monitoring_only(
    render: RenderFn, policy: str, port: int
) -> None:
    r = render(None, sets=("networkPolicy.monitoring.podSelector.app=prometheus",))
    rules = ingress_ports(r, policy)
    assert [peers for peers, ports in rules if port in ports] == ["namespaceSelector"]
    (rule,) = [
        rule
        for rule in r.get("NetworkPolicy", policy)["spec"]["ingress"]
        if port in {p["port"] for p in rule["ports"]}
    ]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert peer["podSelector"]["matchLabels"] == {"app": "prometheus"}
    off = render(None, sets=(PG_OFF, REDIS_OFF))
    assert all(port not in ports for _, ports in ingress_ports(off, policy))
