"""The Patroni PostgreSQL tiers: Services and their selectors, RBAC, replication settings,
disruption budget, spreading, NetworkPolicies, metrics, read replicas and the values schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from .conftest import CHART, Render, RenderFn, pod_spec, run_helm

TIERS = ("postgresql-critical", "postgresql-ml")


def patroni_config(r: Render, tier: str) -> tuple[dict[str, Any], dict[str, Any]]:
    data = r.get("ConfigMap", f"strata-{tier}-patroni")["data"]
    return yaml.safe_load(data["patroni.yaml"]), json.loads(data["dynamic.json"])


def postgresql_container(sts: dict[str, Any]) -> dict[str, Any]:
    """The member's PostgreSQL (Patroni) container; the others are the pgbackrest and
    metrics exporter sidecars."""
    containers = {c["name"]: c for c in pod_spec(sts)["containers"]}
    assert set(containers) <= {"postgresql", "pgbackrest", "postgres-exporter"}
    return containers["postgresql"]


def env_of(r: Render, tier: str) -> dict[str, Any]:
    c = postgresql_container(r.get("StatefulSet", f"strata-{tier}"))
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def pod_labels(r: Render, tier: str) -> dict[str, str]:
    labels: dict[str, str] = r.get("StatefulSet", f"strata-{tier}")["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def test_default_members(render: RenderFn) -> None:
    r = render(None)
    assert r.get("StatefulSet", "strata-postgresql-critical")["spec"]["replicas"] == 3
    assert r.get("StatefulSet", "strata-postgresql-ml")["spec"]["replicas"] == 1


@pytest.mark.parametrize("tier", TIERS)
def test_services_route_to_patroni_roles(render: RenderFn, tier: str) -> None:
    r = render(None)
    name = f"strata-{tier}"
    config, _ = patroni_config(r, tier)
    env = env_of(r, tier)
    labels = pod_labels(r, tier)
    assert config["scope"] == name == env["PATRONI_SCOPE"]
    assert config["kubernetes"]["use_endpoints"] is True
    # Patroni selects its pods and objects by its labels plus cluster-name=<scope>.
    patroni_labels = json.loads(env["PATRONI_KUBERNETES_LABELS"])
    assert patroni_labels.items() <= labels.items()
    assert labels["cluster-name"] == name
    # Primary: no selector, so the Endpoints Patroni writes (the leader) are the only route;
    # its port name is the one Patroni puts in those Endpoints.
    primary = r.get("Service", name)
    assert "selector" not in primary["spec"]
    assert [p["name"] for p in primary["spec"]["ports"]] == [
        p["name"] for p in config["kubernetes"]["ports"]
    ]
    assert primary["spec"]["ports"][0]["port"] == 5432
    # Replicas: Patroni's role label on top of the tier's pod labels.
    ro = r.get("Service", f"{name}-ro")
    assert ro["spec"]["selector"] == {**patroni_labels, "cluster-name": name, "role": "replica"}
    # Headless Services: the StatefulSet's, and the one that keeps <scope>-config alive.
    hl = r.get("Service", f"{name}-hl")
    assert hl["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in hl["spec"]["ports"]} == {5432, 8008}
    cfg = r.get("Service", f"{name}-config")
    assert cfg["spec"] == {"type": "ClusterIP", "clusterIP": "None"}
    # The services reach the primary Service by name.
    app = "critical" if tier.endswith("critical") else "ml"
    cm = r.get("ConfigMap", f"strata-{app}")["data"]
    assert cm[f"STRATA_{app.upper()}_DATABASE_HOST"] == name


@pytest.mark.parametrize("tier", TIERS)
def test_rbac_is_least_privilege(render: RenderFn, tier: str) -> None:
    r = render(None)
    name = f"strata-{tier}"
    sts = r.get("StatefulSet", name)
    replicas = sts["spec"]["replicas"]
    sa = r.get("ServiceAccount", name)
    assert sa["automountServiceAccountToken"] is False  # only the members mount it
    spec = pod_spec(sts)
    assert spec["serviceAccountName"] == name
    assert spec["automountServiceAccountToken"] is True
    binding = r.get("RoleBinding", name)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": name,
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "strata"}]
    rules = r.get("Role", name)["rules"]
    assert rules == [
        {
            "apiGroups": [""],
            "resources": ["endpoints"],
            "verbs": ["get", "list", "watch", "create"],
        },
        {
            "apiGroups": [""],
            "resources": ["endpoints"],
            "resourceNames": [name, f"{name}-config", f"{name}-sync", f"{name}-failover"],
            "verbs": ["patch", "update"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "resourceNames": [f"{name}-{i}" for i in range(replicas)],
            "verbs": ["patch", "update"],
        },
    ]
    # Nothing cluster-wide, no Secrets, no delete.
    assert not r.kind("ClusterRole") and not r.kind("ClusterRoleBinding")
    assert "secrets" not in json.dumps(rules) and "delete" not in json.dumps(rules)


def test_rbac_names_every_member(render: RenderFn) -> None:
    r = render(None, sets=("postgresqlMl.replicas=4",))
    pods = r.get("Role", "strata-postgresql-ml")["rules"][3]["resourceNames"]
    assert pods == [f"strata-postgresql-ml-{i}" for i in range(4)]


def test_critical_commits_are_on_two_servers(render: RenderFn) -> None:
    r = render(None)
    config, dynamic = patroni_config(r, "postgresql-critical")
    assert config["bootstrap"]["dcs"] == dynamic
    assert dynamic["synchronous_mode"] == "quorum"
    assert dynamic["synchronous_mode_strict"] is True
    assert dynamic["synchronous_node_count"] == 1
    assert dynamic["primary_start_timeout"] == 0  # fail over at once: nothing acked is lost
    assert dynamic["postgresql"]["parameters"]["synchronous_commit"] == "on"
    assert dynamic["postgresql"]["use_pg_rewind"] is True
    # Replication connects as the superuser (no role to add to an adopted data directory).
    env = env_of(r, "postgresql-critical")
    assert env["PATRONI_REPLICATION_USERNAME"] == env["PATRONI_SUPERUSER_USERNAME"]
    assert "host replication strata_owner 0.0.0.0/0 scram-sha-256" in config["postgresql"]["pg_hba"]
    assert not [h for h in config["postgresql"]["pg_hba"] if "trust" in h]


@pytest.mark.parametrize(
    ("sets", "mode", "strict"),
    [
        ((), False, False),  # ml default: one member, nothing to be synchronous with
        (("postgresqlMl.replicas=2",), True, False),
        (
            ("postgresqlMl.replicas=3", "postgresqlMl.patroni.synchronousMode=quorum"),
            "quorum",
            False,
        ),
        (
            ("postgresqlMl.replicas=2", "postgresqlMl.patroni.synchronousModeStrict=true"),
            True,
            True,
        ),
        (("postgresqlMl.replicas=2", "postgresqlMl.patroni.synchronousMode=async"), False, False),
    ],
)
def test_synchronous_mode_follows_members(
    render: RenderFn, sets: tuple[str, ...], mode: Any, strict: bool
) -> None:
    _, dynamic = patroni_config(render(None, sets=sets), "postgresql-ml")
    assert dynamic["synchronous_mode"] == mode
    assert dynamic["synchronous_mode_strict"] is strict


def test_single_member_critical_is_not_strict(render: RenderFn) -> None:
    """replicas: 1 must work: a strict synchronous mode would block every commit."""
    r = render(None, sets=("postgresqlCritical.replicas=1",))
    _, dynamic = patroni_config(r, "postgresql-critical")
    assert dynamic["synchronous_mode"] is False
    assert dynamic["synchronous_mode_strict"] is False


def test_parameters_and_extra_args_reach_every_member(render: RenderFn) -> None:
    r = render(
        None,
        sets=(
            "postgresqlCritical.parameters.work_mem=8MB",
            "postgresqlCritical.extraArgs={log_min_duration_statement=250}",
            "postgresqlCritical.maxConnections=150",
        ),
    )
    _, dynamic = patroni_config(r, "postgresql-critical")
    params = dynamic["postgresql"]["parameters"]
    assert params["work_mem"] == "8MB"
    assert params["log_min_duration_statement"] == "250"
    assert params["max_connections"] == 150
    # The pods roll when the configuration changes.
    before = render(None).get("StatefulSet", "strata-postgresql-critical")
    after = r.get("StatefulSet", "strata-postgresql-critical")
    key = "checksum/config"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][key]
        != after["spec"]["template"]["metadata"]["annotations"][key]
    )


@pytest.mark.parametrize("tier", TIERS)
def test_probes_hooks_and_budget(render: RenderFn, tier: str) -> None:
    r = render(None)
    sts = r.get("StatefulSet", f"strata-{tier}")
    c = postgresql_container(sts)
    assert c["startupProbe"]["httpGet"] == {"path": "/liveness", "port": "patroni"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/liveness", "port": "patroni"}
    assert c["readinessProbe"]["exec"]["command"] == ["/usr/local/bin/strata-patroni-ready"]
    assert c["lifecycle"]["preStop"]["exec"]["command"][-1] == "prestop"
    assert c["lifecycle"]["postStart"]["exec"]["command"][-1] == "apply-config"
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    pdb = r.get("PodDisruptionBudget", f"strata-{tier}")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(r, tier).items()


@pytest.mark.parametrize(
    ("preset", "key"),
    [
        ("preferred", "preferredDuringSchedulingIgnoredDuringExecution"),
        ("required", "requiredDuringSchedulingIgnoredDuringExecution"),
    ],
)
def test_members_spread_over_nodes(render: RenderFn, preset: str, key: str) -> None:
    r = render(None, sets=(f"postgresqlCritical.podAntiAffinity={preset}",))
    anti = pod_spec(r.get("StatefulSet", "strata-postgresql-critical"))["affinity"][
        "podAntiAffinity"
    ]
    (term,) = anti[key]
    term = term.get("podAffinityTerm", term)
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "postgresql-critical"
    )
    none = render(None, sets=("postgresqlCritical.podAntiAffinity=none",))
    assert "affinity" not in pod_spec(none.get("StatefulSet", "strata-postgresql-critical"))


def test_network_policies_let_members_and_patroni_talk(render: RenderFn) -> None:
    r = render(None)
    for tier in TIERS:
        np = r.get("NetworkPolicy", f"strata-{tier}")["spec"]
        assert np["policyTypes"] == ["Ingress", "Egress"]
        members = np["ingress"][1]
        assert (
            members["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == tier
        )
        assert {p["port"] for p in members["ports"]} == {5432, 8008}
        # monitoring: Patroni and the postgres-exporter sidecar
        assert {p["port"] for p in np["ingress"][2]["ports"]} == {8008, 9187}
        to_members, to_api = np["egress"]
        assert {p["port"] for p in to_members["ports"]} == {5432, 8008}
        assert to_api["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
        assert {p["port"] for p in to_api["ports"]} == {443, 6443}
    # Redis stays ingress-only.
    assert r.get("NetworkPolicy", "strata-redis")["spec"]["policyTypes"] == ["Ingress"]
    narrow = render(None, sets=("networkPolicy.kubeAPIServer.cidr=10.0.0.1/32",))
    api = narrow.get("NetworkPolicy", "strata-postgresql-critical")["spec"]["egress"][1]
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]


def test_patroni_metrics_are_scraped(render: RenderFn) -> None:
    r = render(None)
    ann = r.get("StatefulSet", "strata-postgresql-critical")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert ann["prometheus.io/port"] == "8008"
    assert ann["prometheus.io/path"] == "/metrics"
    assert r.kind("PodMonitor") == []
    assert r.kind("ServiceMonitor") == []
    # Patroni's metrics and the pgbackrest sidecar's (test_backup), through the members'
    # Services or their pods (every target resolved against the render: test_monitors).
    sm = render(str(CHART / "ci" / "servicemonitor-values.yaml"))
    pm = render(None, sets=("metrics.podMonitor.enabled=true",))
    for kind, endpoints, monitors in (
        ("ServiceMonitor", "endpoints", sm),
        ("PodMonitor", "podMetricsEndpoints", pm),
    ):
        for tier in TIERS:
            monitor = monitors.get(kind, f"strata-{tier}")
            ep, backup, exporter = monitor["spec"][endpoints]
            assert exporter["port"] == "pg-exporter" and exporter["path"] == "/metrics"
            assert ep["port"] == "patroni" and ep["path"] == "/metrics"
            assert backup["port"] == "backup-metrics" and backup["path"] == "/metrics"


def test_external_postgresql_renders_no_patroni(render: RenderFn) -> None:
    r = render(str(CHART / "ci" / "external-databases-values.yaml"))
    for kind in ("StatefulSet", "Role", "RoleBinding", "ServiceAccount", "PodDisruptionBudget"):
        assert not [o for o in r.kind(kind) if "postgresql" in o["metadata"]["name"]], kind
    assert not [s for s in r.names("Secret") if s.endswith("-patroni")]


def test_ml_read_replicas(render: RenderFn, helm: str) -> None:
    r = render(None, sets=("ml.readReplicas=true", "postgresqlMl.replicas=2"))
    cm = r.get("ConfigMap", "strata-ml")["data"]
    assert cm["STRATA_ML_READ_DATABASE_HOST"] == "strata-postgresql-ml-ro"
    assert render(None).get("ConfigMap", "strata-ml")["data"]["STRATA_ML_READ_DATABASE_HOST"] == ""
    proc = run_helm(helm, "template", "strata", str(CHART), "--set", "ml.readReplicas=true")
    assert proc.returncode != 0
    assert "ml.readReplicas needs the bundled PostgreSQL with postgresqlMl.replicas >= 2" in (
        proc.stderr
    )


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["postgresqlCritical.replicas=0"], "postgresqlCritical.replicas: Must be greater than"),
        (["postgresqlMl.patroni.synchronousMode=on"], "postgresqlMl.patroni.synchronousMode"),
        (["postgresqlCritical.parameters.Bad-Name=1"], "postgresqlCritical.parameters"),
        (["postgresqlCritical.podAntiAffinity=sometimes"], "postgresqlCritical.podAntiAffinity"),
        (["postgresqlCritical.patroni.ttl=1"], "postgresqlCritical.patroni.ttl"),
        (["networkPolicy.kubeAPIServer.ports={0}"], "Must be greater than or equal to 1"),
        (["ml.readReplicas=yes"], "ml.readReplicas: Invalid type"),
    ],
)
def test_schema_rejects_bad_ha_values(helm: str, sets: list[str], message: str) -> None:
    args = ["template", "strata", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode != 0, f"{sets} was accepted"
    assert message in proc.stderr, proc.stderr
