"""Assertions on the rendered objects of every ci/ scenario."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    CHART,
    ROOT,
    WORKLOAD_KINDS,
    Render,
    RenderFn,
    all_containers,
    load_values,
    pod_spec,
    run_helm,
)

SERVICES = ("critical", "ml", "cache")
PREFIX = {s: f"STRATA_{s.upper()}_" for s in SERVICES}


def workloads(r: Render) -> list[dict[str, Any]]:
    return [d for k in WORKLOAD_KINDS for d in r.kind(k)]


def pods(r: Render) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every workload and bare (helm test) pod."""
    out = [(d["metadata"]["name"], pod_spec(d)) for d in workloads(r)]
    out += [(d["metadata"]["name"], d["spec"]) for d in r.kind("Pod")]
    return out


def test_three_services_and_their_stores(rendered: Render) -> None:
    assert rendered.names("Deployment") == {f"strata-{s}" for s in SERVICES}
    values = load_values()  # defaults; scenarios that turn stores off have fewer StatefulSets
    if "external" in rendered.values_file:
        assert rendered.kind("StatefulSet") == []
    else:
        assert values["postgresqlCritical"]["enabled"]
        assert rendered.names("StatefulSet") == {
            "strata-postgresql-critical",
            "strata-postgresql-ml",
            "strata-redis",
        }


def test_every_container_has_probes_resources_and_security(rendered: Render) -> None:
    for name, spec in pods(rendered):
        sc = spec.get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, name
        # Service links would inject e.g. STRATA_CRITICAL_PORT=tcp://... for the Service
        # "strata-critical", colliding with the services' own STRATA_<SVC>_* settings.
        assert spec.get("enableServiceLinks") is False, name
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in all_containers(spec):
            where = f"{name}/{c['name']}"
            csc = c["securityContext"]
            assert csc["readOnlyRootFilesystem"] is True, where
            assert csc["allowPrivilegeEscalation"] is False, where
            assert csc["capabilities"]["drop"] == ["ALL"], where
            assert csc["runAsNonRoot"] is True, where
            assert csc["seccompProfile"]["type"] == "RuntimeDefault", where
            res = c["resources"]
            assert res["requests"]["cpu"], where
            assert res["requests"]["memory"], where
            assert res["limits"]["memory"], where
        if name.startswith("strata-test"):
            continue  # a helm test pod runs to completion: no probes
        for c in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{name}/{c['name']} lacks {probe}"


def test_services_probe_livez_and_readyz_and_drain(rendered: Render) -> None:
    for svc in SERVICES:
        dep = rendered.get("Deployment", f"strata-{svc}")
        spec = pod_spec(dep)
        (c,) = spec["containers"]
        assert c["startupProbe"]["httpGet"]["path"] == "/livez"
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["lifecycle"]["preStop"]["exec"]["command"][0] == "/bin/sleep"
        sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        env = config_env(rendered, svc)
        drain = int(env[PREFIX[svc] + "DRAIN_SECONDS"])
        assert drain > 0
        assert sleep > 0
        # preStop sleep + drain + a graceful shutdown all fit in the grace period.
        assert spec["terminationGracePeriodSeconds"] >= sleep + drain + 10
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert mounts == {"/tmp": "tmp"}
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in spec["volumes"]
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["runAsGroup"] == 10001
        assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_selectors_match_pod_labels(rendered: Render) -> None:
    pod_labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in workloads(rendered)
    }
    for d in workloads(rendered):
        selector = d["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), d["metadata"]["name"]
        assert "helm.sh/chart" not in selector
        assert "app.kubernetes.io/version" not in selector
    for kind in ("Service", "PodDisruptionBudget", "ServiceMonitor"):
        for obj in rendered.kind(kind):
            sel = obj["spec"]["selector"]
            sel = sel.get("matchLabels", sel) if kind != "Service" else sel
            if kind == "ServiceMonitor":
                matched = [
                    s
                    for s in rendered.kind("Service")
                    if sel.items() <= s["metadata"]["labels"].items()
                ]
            else:
                matched = [n for n, lbl in pod_labels.items() if sel.items() <= lbl.items()]
            assert len(matched) == 1, f"{kind}/{obj['metadata']['name']} selects {matched}"
    for hpa in rendered.kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["name"] in rendered.names(target["kind"])
        assert "replicas" not in rendered.get("Deployment", target["name"])["spec"]
    for sts in rendered.kind("StatefulSet"):
        headless = rendered.get("Service", sts["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None"


def test_service_ports_name_container_ports(rendered: Render) -> None:
    ports_by_pod = {
        d["metadata"]["name"]: (
            d["spec"]["template"]["metadata"]["labels"],
            {p["name"]: p["containerPort"] for c in pod_spec(d)["containers"] for p in c["ports"]},
        )
        for d in workloads(rendered)
    }
    for svc in rendered.kind("Service"):
        sel = svc["spec"]["selector"]
        (target,) = [ports for lbl, ports in ports_by_pod.values() if sel.items() <= lbl.items()]
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in target, f"{svc['metadata']['name']}: {port}"


def _documented_existing_secrets() -> set[str]:
    text = (CHART / "ci" / "existing-secret-values.yaml").read_text()
    return set(re.findall(r"existingSecret: (\S+)", text))


def test_secret_and_configmap_references_resolve(rendered: Render) -> None:
    secrets = rendered.names("Secret")
    configmaps = rendered.names("ConfigMap")
    external = (
        _documented_existing_secrets() if "existing-secret" in rendered.values_file else set()
    )
    readme = (CHART / "README.md").read_text()
    for name in external:
        assert name not in secrets, f"{name} is an existingSecret: the chart must not create it"
        assert name in (CHART / "ci" / "existing-secret-values.yaml").read_text()
    assert "existingSecret" in readme
    refs: list[tuple[str, str, str | None]] = []
    for _owner, spec in pods(rendered):
        for c in all_containers(spec):
            for env in c.get("env", []):
                vf = env.get("valueFrom", {})
                if "secretKeyRef" in vf:
                    refs.append(("Secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"]))
                if "configMapKeyRef" in vf:
                    refs.append(
                        ("ConfigMap", vf["configMapKeyRef"]["name"], vf["configMapKeyRef"]["key"])
                    )
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    refs.append(("ConfigMap", src["configMapRef"]["name"], None))
                if "secretRef" in src:
                    refs.append(("Secret", src["secretRef"]["name"], None))
        for vol in spec.get("volumes", []):
            if "secret" in vol:
                refs.append(("Secret", vol["secret"]["secretName"], None))
            if "configMap" in vol:
                refs.append(("ConfigMap", vol["configMap"]["name"], None))
    assert refs
    for kind, name, key in refs:
        if kind == "Secret" and name in external:
            continue
        pool = secrets if kind == "Secret" else configmaps
        assert name in pool, f"{kind} {name} is referenced but not rendered"
        if key is not None:
            data = rendered.get(kind, name).get("data", {})
            assert key in data, f"{kind} {name} has no key {key}"


def test_generated_secrets_are_kept(rendered: Render) -> None:
    for secret in rendered.kind("Secret"):
        ann = secret["metadata"].get("annotations", {})
        assert ann.get("helm.sh/resource-policy") == "keep", secret["metadata"]["name"]
        for value in secret["data"].values():
            assert value, secret["metadata"]["name"]


def config_env(r: Render, svc: str) -> dict[str, str]:
    return dict(r.get("ConfigMap", f"strata-{svc}")["data"])


def container_env(r: Render, svc: str, container: str | None = None) -> set[str]:
    spec = pod_spec(r.get("Deployment", f"strata-{svc}"))
    (c,) = [c for c in all_containers(spec) if c["name"] == (container or svc)]
    return {e["name"] for e in c.get("env", [])}


def documented_variables() -> dict[str, set[str]]:
    """Variable names per prefix from docs/configuration.md (the services' contract)."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    out: dict[str, set[str]] = {"common": set(), **{s: set() for s in SERVICES}}
    for section in sections:
        title = section.splitlines()[0] if section else ""
        key = next((s for s in SERVICES if f"STRATA_{s.upper()}_" in title), None)
        if title.startswith("Common variables"):
            key = "common"
        if key is None:
            continue
        for line in section.splitlines():
            if line.startswith("| `"):
                first_cell = line.split("|")[1]
                out[key].update(re.findall(r"`([A-Z_]+)`", first_cell))
    return out


def test_env_is_exactly_the_documented_contract(rendered: Render) -> None:
    documented = documented_variables()
    assert documented["common"] >= {"ENVIRONMENT", "JWT_SECRET", "WORKERS", "DRAIN_SECONDS"}
    for svc in SERVICES:
        prefix = PREFIX[svc]
        allowed = {prefix + n for n in documented["common"] | documented[svc]}
        allowed.add("PROMETHEUS_MULTIPROC_DIR")
        names = set(config_env(rendered, svc)) | container_env(rendered, svc)
        spec = pod_spec(rendered.get("Deployment", f"strata-{svc}"))
        for init in spec.get("initContainers", []):
            if init["name"] == "migrate":
                names |= container_env(rendered, svc, "migrate")
        undocumented = names - allowed
        assert not undocumented, (
            f"{svc} sets variables docs/configuration.md does not list: {undocumented}"
        )
        for required in ("ENVIRONMENT", "JWT_SECRET", "WORKERS", "DRAIN_SECONDS"):
            assert prefix + required in names, f"{svc} lacks {prefix}{required}"
        assert config_env(rendered, svc)[prefix + "ENVIRONMENT"] == "production"
        assert config_env(rendered, svc)["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"


def test_critical_runtime_gets_only_runtime_credentials(rendered: Render) -> None:
    main = container_env(rendered, "critical")
    assert "STRATA_CRITICAL_DATABASE_PASSWORD" in main
    assert not {n for n in main if "MIGRATION" in n}
    migrate = container_env(rendered, "critical", "migrate")
    assert {
        "STRATA_CRITICAL_MIGRATION_USER",
        "STRATA_CRITICAL_MIGRATION_PASSWORD",
        "STRATA_CRITICAL_DATABASE_PASSWORD",
    } <= migrate
    assert "STRATA_CRITICAL_JWT_SECRET" not in migrate, "migrate verifies no tokens"
    assert config_env(rendered, "critical")["STRATA_CRITICAL_DATABASE_USER"] == "strata_app"


def test_migrations_run_as_init_containers(rendered: Render) -> None:
    for svc in ("critical", "ml"):
        spec = pod_spec(rendered.get("Deployment", f"strata-{svc}"))
        inits = spec["initContainers"]
        assert [c["name"] for c in inits] == ["wait-for-database", "migrate"]
        image = spec["containers"][0]["image"]
        assert all(c["image"] == image for c in inits), "migrate runs from the service's own image"
        assert inits[1]["command"] == ["python", "-m", f"services.{svc}", "migrate"]
    assert "initContainers" not in pod_spec(rendered.get("Deployment", "strata-cache"))
    # No hook Jobs: migrations never depend on hook ordering under --wait.
    assert rendered.kind("Job") == []


def effective_values(r: Render) -> dict[str, Any]:
    """values.yaml overlaid with the scenario's values file (what helm computed)."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                out[key] = merge(base[key], value)
            else:
                out[key] = value
        return out

    if r.values_file == "<defaults>":
        return load_values()
    return merge(load_values(), yaml.safe_load(Path(r.values_file).read_text()) or {})


def test_connection_budget_under_max_connections(rendered: Render) -> None:
    """(replicas or HPA max) + surge, x workers x (pool_size + max_overflow) < max_connections."""
    values = effective_values(rendered)
    for svc, store in (("critical", "postgresql-critical"), ("ml", "postgresql-ml")):
        dep = rendered.get("Deployment", f"strata-{svc}")
        env = config_env(rendered, svc)
        prefix = PREFIX[svc]
        hpas = [
            h
            for h in rendered.kind("HorizontalPodAutoscaler")
            if h["metadata"]["name"] == f"strata-{svc}"
        ]
        replicas = hpas[0]["spec"]["maxReplicas"] if hpas else dep["spec"]["replicas"]
        surge = dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        workers = int(env[prefix + "WORKERS"])
        per_worker = int(env[prefix + "POOL_SIZE"]) + int(env[prefix + "MAX_OVERFLOW"])
        budget = (replicas + surge) * workers * per_worker
        sts = [
            s for s in rendered.kind("StatefulSet") if s["metadata"]["name"] == f"strata-{store}"
        ]
        if sts:
            args = sts[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            (max_conn,) = [int(a.split("=")[1]) for a in args if a.startswith("max_connections=")]
        else:
            key = "postgresqlCritical" if svc == "critical" else "postgresqlMl"
            max_conn = values[key]["maxConnections"]
        reserved = values["postgresqlCritical" if svc == "critical" else "postgresqlMl"][
            "reservedConnections"
        ]
        assert budget + reserved <= max_conn, f"{svc}: {budget} + {reserved} > {max_conn}"


def test_connection_budget_default_sums() -> None:
    """The sums the chart README documents."""
    v = load_values()
    for svc, expected in (("critical", 30), ("ml", 30)):
        s = v[svc]
        budget = (
            (s["replicaCount"] + s["rollingUpdate"]["maxSurge"])
            * s["workers"]
            * (s["database"]["poolSize"] + s["database"]["maxOverflow"])
        )
        assert budget == expected
        assert f"| {svc} | {budget} |" in (CHART / "README.md").read_text().replace("`", "")


#: The API roots of API.md and how the Ingress must match them.
API_PATHS = {
    ("/v1/accounts", "Prefix", "critical"),
    ("/v1/transfers", "Prefix", "critical"),
    ("/v1/collections", "Prefix", "ml"),
    ("/v1/kv", "Prefix", "cache"),
    ("/v1/kv:mget", "Exact", "cache"),
    ("/v1/kv:mset", "Exact", "cache"),
    ("/v1/counters", "Prefix", "cache"),
}


def test_ingress_routes_exactly_the_api_roots(rendered: Render) -> None:
    (ing,) = rendered.kind("Ingress")
    (rule,) = ing["spec"]["rules"]
    got = {
        (p["path"], p["pathType"], p["backend"]["service"]["name"].removeprefix("strata-"))
        for p in rule["http"]["paths"]
    }
    assert got == API_PATHS
    for p in rule["http"]["paths"]:
        assert "metrics" not in p["path"]
        assert "/livez" not in p["path"]
        backend = rendered.get("Service", p["backend"]["service"]["name"])
        assert p["backend"]["service"]["port"]["number"] in [
            x["port"] for x in backend["spec"]["ports"]
        ]


def test_ingress_paths_cover_every_api_root_of_api_md() -> None:
    api = ROOT.parent / "shared" / "API.md"
    if not api.exists():
        pytest.skip(f"{api} is not present on this machine")
    roots = set(
        re.findall(
            r"`(?:GET|PUT|POST|PATCH|DELETE|GET\|PUT\|DELETE)? ?(/v1/[a-z]+(?::[a-z]+)?)",
            api.read_text(),
        )
    )
    routed = {p for p, _, _ in API_PATHS}
    for root in roots:
        assert any(root == p or root.startswith(p + "/") for p in routed), root


def test_ingress_without_colon_paths(render: RenderFn) -> None:
    """ingress.batchPathType=ImplementationSpecific: no ':' anywhere, /v1/kv a string prefix."""
    r = render(None, sets=("ingress.batchPathType=ImplementationSpecific",))
    (ing,) = r.kind("Ingress")
    paths = {(p["path"], p["pathType"]) for p in ing["spec"]["rules"][0]["http"]["paths"]}
    assert ("/v1/kv", "ImplementationSpecific") in paths
    assert not [p for p, _ in paths if ":" in p]
    assert {p for p, _ in paths} == {p for p, _, _ in API_PATHS if ":" not in p}


def test_ingress_tls(render: RenderFn) -> None:
    r = render(str(CHART / "ci" / "ingress-tls-values.yaml"))
    (ing,) = r.kind("Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [
        {"hosts": ["api.strata.example.com"], "secretName": "strata-api-tls"}
    ]
    assert ing["spec"]["rules"][0]["host"] == "api.strata.example.com"


def test_network_policies(rendered: Render) -> None:
    nps = {n["metadata"]["name"]: n["spec"] for n in rendered.kind("NetworkPolicy")}
    if "networkpolicy-off" in rendered.values_file:
        assert nps == {}
        return
    deny = nps["strata-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    assert deny["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "strata",
        "app.kubernetes.io/instance": "strata",
    }
    dns = nps["strata-allow-dns"]["egress"]
    assert {(p["protocol"], p["port"]) for p in dns[0]["ports"]} == {("UDP", 53), ("TCP", 53)}
    stores = {"critical": "postgresql-critical", "ml": "postgresql-ml", "cache": "redis"}
    external = "external" in rendered.values_file
    for svc, store in stores.items():
        np = nps[f"strata-{svc}"]
        (rule,) = np["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]
        peers = rule["from"]
        assert any("ingress-nginx" in str(p) for p in peers), "ingress controller"
        assert any("monitoring" in str(p.get("namespaceSelector")) for p in peers), "monitoring"
        (egress,) = np["egress"]
        if external:
            assert egress["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
            continue
        (peer,) = egress["to"]
        assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == store
        store_np = nps[f"strata-{store}"]
        (sin,) = store_np["ingress"]
        (src,) = sin["from"]
        assert src["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == svc
        # each store is reachable by its own service only
        for other in set(stores) - {svc}:
            assert f"'{other}'" not in str(store_np)


def test_scrape_annotations_and_service_monitor(rendered: Render) -> None:
    sms = rendered.kind("ServiceMonitor")
    for svc in SERVICES:
        ann = rendered.get("Deployment", f"strata-{svc}")["spec"]["template"]["metadata"][
            "annotations"
        ]
        assert re.fullmatch(r"[0-9a-f]{64}", ann["checksum/config"])
        assert re.fullmatch(r"[0-9a-f]{64}", ann["checksum/secret"])
        if "servicemonitor" in rendered.values_file:
            assert "prometheus.io/scrape" not in ann
        else:
            assert ann["prometheus.io/scrape"] == "true"
            assert ann["prometheus.io/path"] == "/metrics"
    if "servicemonitor" not in rendered.values_file:
        assert sms == []
        return
    assert {s["metadata"]["name"] for s in sms} == {f"strata-{s}" for s in SERVICES}
    for sm in sms:
        assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        (ep,) = sm["spec"]["endpoints"]
        assert ep == {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}


def test_config_change_rolls_pods(render: RenderFn) -> None:
    a = render(None)
    b = render(None, sets=("critical.database.poolSize=4",))

    def ann(r: Render, svc: str) -> dict[str, str]:
        return r.get("Deployment", f"strata-{svc}")["spec"]["template"]["metadata"]["annotations"]

    assert ann(a, "critical")["checksum/config"] != ann(b, "critical")["checksum/config"]
    assert ann(a, "ml")["checksum/config"] == ann(b, "ml")["checksum/config"]
    # generated secrets do not change the checksum between renders (no roll on every upgrade)
    assert (
        ann(a, "critical")["checksum/secret"]
        == ann(render(None, "1.37.0"), "critical")["checksum/secret"]
    )


def test_stores_follow_the_official_images(render: RenderFn) -> None:
    r = render(None)
    for store, user, db in (
        ("postgresql-critical", "strata_owner", "strata_critical"),
        ("postgresql-ml", "strata_ml", "strata_ml"),
    ):
        sts = r.get("StatefulSet", f"strata-{store}")
        spec = pod_spec(sts)
        (c,) = spec["containers"]
        assert c["image"] == "postgres:16-bookworm"
        env = {e["name"]: e for e in c["env"]}
        assert env["POSTGRES_USER"]["value"] == user
        assert env["POSTGRES_DB"]["value"] == db
        assert env["PGDATA"]["value"] == "/var/lib/postgresql/data/pgdata"
        assert "secretKeyRef" in env["POSTGRES_PASSWORD"]["valueFrom"]
        assert spec["securityContext"]["runAsUser"] == 999
        stop = c["lifecycle"]["preStop"]["exec"]["command"]
        assert stop[:4] == ["pg_ctl", "stop", "-m", "fast"]
        assert int(stop[-1]) < spec["terminationGracePeriodSeconds"]
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounts
        (vct,) = sts["spec"]["volumeClaimTemplates"]
        assert vct["spec"]["resources"]["requests"]["storage"] == "8Gi"
        assert "storageClassName" not in vct["spec"], "default StorageClass unless set"
    redis = pod_spec(r.get("StatefulSet", "strata-redis"))["containers"][0]
    assert redis["image"] == "redis:7-bookworm"
    assert redis["args"][0] == "redis-server"
    args = " ".join(redis["args"])
    assert "--appendonly yes" in args
    assert "--dir /data" in args
    assert "--requirepass $(REDIS_PASSWORD)" in args
    assert {m["mountPath"] for m in redis["volumeMounts"]} >= {"/data"}


def test_every_image_is_overridable(render: RenderFn) -> None:
    r = render(str(CHART / "ci" / "local-images-values.yaml"))
    images = {c["image"]: c["imagePullPolicy"] for _, spec in pods(r) for c in all_containers(spec)}
    assert images == {
        "local/strata-critical:e2e": "Never",
        "local/strata-ml:e2e": "Never",
        "local/strata-cache:e2e": "Never",
        "local/postgres:16-bookworm": "Never",
        "local/redis:7-bookworm": "Never",
    }
    reg = render(
        None,
        sets=("global.imageRegistry=registry.example.com", "redis.image.digest=sha256:" + "a" * 64),
    )
    got = {c["image"] for _, spec in pods(reg) for c in all_containers(spec)}
    assert "registry.example.com/strata-critical:0.1.0" in got
    assert "registry.example.com/postgres:16-bookworm" in got
    assert "registry.example.com/redis@sha256:" + "a" * 64 in got


def test_helm_test_pod(rendered: Render) -> None:
    (pod,) = rendered.kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsUser"] == 10001
    (c,) = spec["containers"]
    script = c["command"][2]
    for path in ("/readyz", "/v1/accounts", "/v1/collections", "/v1/kv/"):
        assert path in script
    assert "jwt.encode" in script
    assert "Bearer" in script
    env = {e["name"]: e for e in c["env"]}
    assert env["CRITICAL_URL"]["value"] == "http://strata-critical:8000"
    compile(script, "helm-test", "exec")


def test_helm_test_script_mints_a_token_the_services_accept(render: RenderFn) -> None:
    """Run the token part of the test pod's script against the services' own verifier."""
    auth = pytest.importorskip("services.common.auth")
    jwt = pytest.importorskip("jwt")
    (pod,) = render(None).kind("Pod")
    script = pod["spec"]["containers"][0]["command"][2]
    block = re.search(
        r"(^ *now = int\(time\.time\(\)\).*?algorithm=\"HS256\"\))", script, re.S | re.M
    )
    assert block, "token minting code not found"
    secret = "s" * 40
    for name, scope in (("critical", "accounts:read"), ("cache", "cache:read")):
        ns: dict[str, Any] = {
            "time": time,
            "jwt": jwt,
            "name": name,
            "scope": scope,
            "os": type("os", (), {"environ": {"JWT_SECRET": secret}}),
        }
        exec(compile(textwrap.dedent(block.group(1)), "t", "exec"), ns)  # noqa: S102
        verifier = auth.TokenVerifier(key=secret, algorithm="HS256", audience=f"strata-{name}")
        principal = verifier.verify(ns["token"])
        assert scope in principal.scopes


def render_notes(helm: str, tmp_path: Path, *sets: str) -> str:
    """NOTES.txt rendered by helm (`helm template` skips it: render a copy as a template)."""
    chart = tmp_path / "strata"
    shutil.copytree(CHART, chart)
    body = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_body.tpl").write_text(
        '{{- define "test.notes" -}}\n' + body + "\n{{- end -}}\n"
    )
    (chart / "templates" / "notes-as-configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ include "test.notes" . | quote }}\n'
    )
    args = ["template", "strata", str(chart), "--namespace", "strata"]
    args += ["--show-only", "templates/notes-as-configmap.yaml"]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["data"]["notes"]


def test_notes_show_how_to_reach_the_api_and_mint_a_working_token(
    helm: str, tmp_path: Path
) -> None:
    auth = pytest.importorskip("services.common.auth")
    notes = render_notes(helm, tmp_path, "ingress.host=api.example.com")
    assert "http://api.example.com/v1/..." in notes
    assert "kubectl port-forward -n strata svc/strata-critical 8000:8000" in notes
    assert "kubectl get secret -n strata strata-jwt -o jsonpath='{.data.jwt-secret}'" in notes
    assert "helm test strata -n strata" in notes
    match = re.search(r"TOKEN=\$\(python3 -c '([^']+)'\)", notes)
    assert match, notes
    secret = "n" * 40
    proc = subprocess.run(
        [sys.executable, "-c", match.group(1)],
        env={**os.environ, "STRATA_JWT_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    verifier = auth.TokenVerifier(key=secret, algorithm="HS256", audience="strata-critical")
    principal = verifier.verify(proc.stdout.strip())
    assert {"accounts:read", "accounts:write"} <= principal.scopes


def test_notes_with_existing_secret_point_at_it(helm: str, tmp_path: Path) -> None:
    notes = render_notes(
        helm, tmp_path, "auth.jwt.existingSecret=mine", "auth.jwt.existingSecretKey=hs"
    )
    assert "kubectl get secret -n strata mine -o jsonpath='{.data.hs}'" in notes
