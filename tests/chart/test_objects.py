"""Assertions on the rendered objects of every ci/ scenario."""

from __future__ import annotations

import json
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
SECRETS_DIR = "/var/run/secrets/strata"


def workloads(r: Render) -> list[dict[str, Any]]:
    return [d for k in WORKLOAD_KINDS for d in r.kind(k)]


def pods(r: Render) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every workload and bare (helm test) pod."""
    out = [(d["metadata"]["name"], pod_spec(d)) for d in workloads(r)]
    out += [(d["metadata"]["name"], d["spec"]) for d in r.kind("Pod")]
    out += [(d["metadata"]["name"], pod_spec(d)) for d in r.kind("CronJob")]
    return out


STORE_VALUES = {
    "postgresql-critical": "postgresqlCritical",
    "postgresql-ml": "postgresqlMl",
    "redis": "redis",
}


def bundled(rendered: Render, store: str) -> bool:
    """Whether the scenario runs ``store`` in the chart (its ``enabled``, default true)."""
    path = Path(rendered.values_file)
    scenario = yaml.safe_load(path.read_text()) or {} if path.is_file() else {}
    return bool(scenario.get(STORE_VALUES[store], {}).get("enabled", True))


def test_three_services_and_their_stores(rendered: Render) -> None:
    assert rendered.names("Deployment") == {f"strata-{s}" for s in SERVICES}
    values = load_values()  # defaults; scenarios that turn stores off have fewer StatefulSets
    assert all(values[key]["enabled"] for key in STORE_VALUES.values())
    effective = effective_values(rendered)
    # The pgBackRest repository host: backups are on by default, to a PVC, for bundled tiers.
    repo_host = (
        effective["backup"]["enabled"]
        and effective["backup"]["repository"]["type"] == "pvc"
        and any(
            bundled(rendered, store) and effective[key]["backup"]["enabled"]
            for store, key in STORE_VALUES.items()
            if store.startswith("postgresql-")
        )
    )
    assert rendered.names("StatefulSet") == {
        *(f"strata-{store}" for store in STORE_VALUES if bundled(rendered, store)),
        *(["strata-pgbackrest"] if repo_host else []),
    }


def test_every_container_has_probes_resources_and_security(rendered: Render) -> None:
    for name, spec in pods(rendered):
        sc = spec.get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, name
        # Service links would inject e.g. STRATA_CRITICAL_PORT=tcp://... for the Service
        # "strata-critical", colliding with the services' own STRATA_<SVC>_* settings.
        assert spec.get("enableServiceLinks") is False, name
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        # Only the Patroni members talk to the Kubernetes API (their consensus store).
        patroni = name in {d["metadata"]["name"] for d in rendered.kind("StatefulSet")} and (
            name.startswith("strata-postgresql-")
        )
        assert spec.get("automountServiceAccountToken") is patroni, name
        if patroni:
            assert spec["serviceAccountName"] == name
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
        if name.startswith("strata-test") or name in rendered.names("CronJob"):
            continue  # helm test pods and backup Jobs run to completion: no probes
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
        graceful = int(env[PREFIX[svc] + "GRACEFUL_SECONDS"])
        assert drain > 0
        assert sleep > 0
        assert graceful == 20  # the one shutdown rule's default, gunicorn and Sanic alike
        # preStop sleep + drain + in-flight allowance + 5 s to exit fit in the grace period.
        assert spec["terminationGracePeriodSeconds"] >= sleep + drain + graceful + 5
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert mounts == {"/tmp": "tmp", SECRETS_DIR: "secrets"}
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
    # ServiceMonitors select Services, with matchExpressions: resolved in test_monitors.
    for kind in ("Service", "PodDisruptionBudget", "PodMonitor"):
        for obj in rendered.kind(kind):
            sel = obj["spec"].get("selector")
            if sel is None:  # Patroni's primary and config Services: Endpoints by Patroni
                assert obj["metadata"]["labels"]["strata.io/postgresql-service"] in (
                    "primary",
                    "patroni-config",
                )
                continue
            sel = sel.get("matchLabels", sel) if kind != "Service" else sel
            # The read-only Service adds Patroni's role label, which Patroni sets at runtime.
            sel = {k: v for k, v in sel.items() if k != "role"}
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
        if "selector" not in svc["spec"]:
            continue  # Patroni's Endpoints carry the port names (test_postgresql_ha)
        sel = {k: v for k, v in svc["spec"]["selector"].items() if k != "role"}
        (target,) = [ports for lbl, ports in ports_by_pod.values() if sel.items() <= lbl.items()]
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in target, f"{svc['metadata']['name']}: {port}"


def _documented_existing_secrets(
    values_file: str = str(CHART / "ci" / "existing-secret-values.yaml"),
) -> set[str]:
    text = Path(values_file).read_text()
    # Made outside the chart: existingSecrets, another release's TLS Secret, and
    # existingConfigMaps (a CA bundle).
    return set(re.findall(r"(?:existingSecret|existingConfigMap|tlsSecret): (\S+)", text))


def test_secret_and_configmap_references_resolve(rendered: Render) -> None:
    secrets = rendered.names("Secret")
    configmaps = rendered.names("ConfigMap")
    external = (
        _documented_existing_secrets(rendered.values_file)
        if rendered.values_file.endswith(".yaml")
        else set()
    )
    readme = (CHART / "README.md").read_text()
    for name in external:
        assert name not in secrets, f"{name} is an existingSecret: the chart must not create it"
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
            for src in vol.get("projected", {}).get("sources", []):
                kind = "Secret" if "secret" in src else "ConfigMap"
                source = src["secret"] if "secret" in src else src["configMap"]
                for item in source["items"]:
                    refs.append((kind, source["name"], item["key"]))
    assert refs
    for kind, name, key in refs:
        if name in external:
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


#: One of these tells each service where its token key comes from (never the key itself).
KEY_SOURCES = {"JWT_SECRET_FILE", "JWT_PUBLIC_KEY_FILE", "JWT_JWKS_URL"}


def test_env_is_exactly_the_documented_contract(rendered: Render) -> None:
    documented = documented_variables()
    assert documented["common"] >= {
        "ENVIRONMENT",
        "JWT_ALGORITHMS",
        *KEY_SOURCES,
        "WORKERS",
        "DRAIN_SECONDS",
        "GRACEFUL_SECONDS",
    }
    for svc in SERVICES:
        prefix = PREFIX[svc]
        allowed = {prefix + n for n in documented["common"] | documented[svc]}
        # "Any secret may instead be given as a file: `<NAME>_FILE=/path`" (configuration.md)
        allowed |= {name + "_FILE" for name in allowed}
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
        for required in (
            "ENVIRONMENT",
            "JWT_ALGORITHMS",
            "WORKERS",
            "DRAIN_SECONDS",
            "GRACEFUL_SECONDS",
        ):
            assert prefix + required in names, f"{svc} lacks {prefix}{required}"
        sources = {n.removeprefix(prefix) for n in names} & KEY_SOURCES
        assert len(sources) == 1, f"{svc} must get exactly one token key source: {sources}"
        assert config_env(rendered, svc)[prefix + "ENVIRONMENT"] == "production"
        assert config_env(rendered, svc)["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"


def mounted_secret_files(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Path -> Secret (or ConfigMap: a CA bundle) key of every secret file the container can
    read."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        vol = volumes.get(mount["name"], {})  # volumeClaimTemplates are not listed
        for src in vol.get("projected", {}).get("sources", []):
            for item in (src.get("secret") or src["configMap"])["items"]:
                files[f"{mount['mountPath']}/{item['path']}"] = item["key"]
        for item in vol.get("secret", {}).get("items", []):
            files[f"{mount['mountPath']}/{item['path']}"] = item["key"]
        assert "secret" not in vol or "items" in vol["secret"], "mount only the keys needed"
    return files


def test_critical_runtime_gets_only_runtime_credentials(rendered: Render) -> None:
    main = container_env(rendered, "critical")
    assert "STRATA_CRITICAL_DATABASE_PASSWORD_FILE" in main
    assert not {n for n in main if "MIGRATION" in n}
    migrate = container_env(rendered, "critical", "migrate")
    assert {
        "STRATA_CRITICAL_MIGRATION_USER",
        "STRATA_CRITICAL_MIGRATION_PASSWORD_FILE",
        "STRATA_CRITICAL_DATABASE_PASSWORD_FILE",
    } <= migrate
    assert not {n for n in migrate if "JWT" in n}, "migrate verifies no tokens"
    assert config_env(rendered, "critical")["STRATA_CRITICAL_DATABASE_USER"] == "strata_app"
    # The files each container can read, not only the variables naming them.
    spec = pod_spec(rendered.get("Deployment", "strata-critical"))
    keys = effective_values(rendered)["postgresqlCritical"]["auth"]["secretKeys"]
    (server,) = spec["containers"]
    jwks = bool(effective_values(rendered)["auth"]["critical"]["jwksUrl"])
    token_key = set() if jwks else {f"{SECRETS_DIR}/jwt-secret"}  # a JWKS needs no key file
    # With TLS to the database (ci/tls-values.yaml) both also read the CA bundle.
    tls = effective_values(rendered)["postgresqlCritical"]["tls"]
    ca = (
        {f"{SECRETS_DIR}/database-ca.crt": tls["ca"]["key"]}
        if "STRATA_CRITICAL_DATABASE_SSLROOTCERT" in main
        else {}
    )
    assert set(mounted_secret_files(spec, server)) == {
        *token_key,
        f"{SECRETS_DIR}/database-password",
        *ca,
    }
    files = mounted_secret_files(spec, server)
    assert files[f"{SECRETS_DIR}/database-password"] == keys["appPasswordKey"]
    (migrate_c,) = [c for c in spec["initContainers"] if c["name"] == "migrate"]
    assert mounted_secret_files(spec, migrate_c) == {
        f"{SECRETS_DIR}/database-password": keys["appPasswordKey"],
        f"{SECRETS_DIR}/migration-password": keys["ownerPasswordKey"],
        **ca,
    }
    (wait,) = [c for c in spec["initContainers"] if c["name"] == "wait-for-database"]
    assert mounted_secret_files(spec, wait) == {}


def test_secrets_are_read_only_files_not_environment(rendered: Render) -> None:
    """Every Strata container and the Redis server get secrets as files: read-only, mode
    0440 (group = the pod's fsGroup), only the keys they need; *_FILE names an existing file.
    The PostgreSQL members too: their entrypoint hands the files to Patroni."""
    for name, spec in pods(rendered):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        secret_vols = {n for n, v in volumes.items() if "projected" in v or "secret" in v}
        for vol in secret_vols:
            mode = (volumes[vol].get("projected") or volumes[vol].get("secret"))["defaultMode"]
            assert mode & 0o037 == 0 and mode & 0o400, f"{name}/{vol}: mode {oct(mode)}"
        if secret_vols:
            assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
        for c in all_containers(spec):
            where = f"{name}/{c['name']}"
            env = c.get("env", [])
            assert not [e for e in env if "secretKeyRef" in e.get("valueFrom", {})], where
            assert not [s for s in c.get("envFrom", []) if "secretRef" in s], where
            for mount in c.get("volumeMounts", []):
                if mount["name"] in secret_vols:
                    assert mount.get("readOnly") is True, where
            files = mounted_secret_files(spec, c)
            for e in env:
                if e["name"].endswith("_FILE") and e["value"].startswith(SECRETS_DIR):
                    assert e["value"] in files, f"{where}: {e['name']} names no mounted file"
    # No two containers share a secrets volume: each mounts exactly what it needs.
    for name, spec in pods(rendered):
        users: dict[str, list[str]] = {}
        for c in all_containers(spec):
            for m in c.get("volumeMounts", []):
                if m["mountPath"] == SECRETS_DIR:
                    users.setdefault(m["name"], []).append(c["name"])
        assert all(len(u) == 1 for u in users.values()), f"{name}: {users}"


def test_ml_runtime_gets_only_runtime_credentials(rendered: Render) -> None:
    auth = effective_values(rendered)["postgresqlMl"]["auth"]
    keys = auth["secretKeys"]
    spec = pod_spec(rendered.get("Deployment", "strata-ml"))

    def container(name: str) -> dict[str, Any]:
        (c,) = [c for c in all_containers(spec) if c["name"] == name]
        return c

    def file_keys(name: str) -> dict[str, str]:
        """Env var -> Secret key of the file it names."""
        c = container(name)
        files = mounted_secret_files(spec, c)
        return {e["name"]: files[e["value"]] for e in c.get("env", []) if e.get("value") in files}

    main = container_env(rendered, "ml")
    assert not {n for n in main if "MIGRATION" in n}
    assert file_keys("ml")["STRATA_ML_DATABASE_PASSWORD_FILE"] == keys["appPasswordKey"]
    assert keys["passwordKey"] not in file_keys("ml").values(), "the owner's password stays out"
    migrate = container_env(rendered, "ml", "migrate")
    assert "STRATA_ML_MIGRATION_USER" in migrate
    assert not {n for n in migrate if "JWT" in n}, "migrate verifies no tokens"
    ca_key = effective_values(rendered)["postgresqlMl"]["tls"]["ca"]["key"]
    ca = (
        {"STRATA_ML_DATABASE_SSLROOTCERT": ca_key}
        if "STRATA_ML_DATABASE_SSLROOTCERT" in main
        else {}
    )
    assert file_keys("migrate") == {
        "STRATA_ML_DATABASE_PASSWORD_FILE": keys["appPasswordKey"],
        "STRATA_ML_MIGRATION_PASSWORD_FILE": keys["passwordKey"],
        **ca,
    }
    owner = {e["name"]: e for e in container("migrate")["env"]}
    assert owner["STRATA_ML_MIGRATION_USER"]["value"] == auth["username"]
    assert config_env(rendered, "ml")["STRATA_ML_DATABASE_USER"] == auth["appUsername"]
    assert auth["appUsername"] != auth["username"]


def test_bundled_ml_database_bootstraps_the_owner_and_both_passwords(render: RenderFn) -> None:
    r = render(None)
    server = pod_spec(r.get("StatefulSet", "strata-postgresql-ml"))["containers"][0]
    env = {e["name"]: e for e in server["env"]}
    # The cluster's superuser (Patroni's bootstrap) is ml's owner role; the runtime role is
    # migrate's to create.
    assert env["PATRONI_SUPERUSER_USERNAME"]["value"] == "strata_ml"
    files = mounted_secret_files(pod_spec(r.get("StatefulSet", "strata-postgresql-ml")), server)
    assert files[env["STRATA_PG_SUPERUSER_PASSWORD_FILE"]["value"]] == "password"
    assert set(r.get("Secret", "strata-postgresql-ml")["data"]) == {"password", "app-password"}
    config = config_env(r, "ml")
    assert config["STRATA_ML_DATABASE_USER"] == "strata_ml_app"
    assert config["STRATA_ML_EXPORT_MAX_CONCURRENT"] == "2"
    assert config["STRATA_ML_PAGE_MAX_BYTES"] == "4194304"


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
    """(replicas or HPA max) + surge, x workers x (pool_size + max_overflow + held) <
    max_connections, held being ml's export snapshot holders (outside the pool)."""
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
        per_worker += int(env.get(prefix + "EXPORT_SNAPSHOTS_MAX", 0))
        budget = (replicas + surge) * workers * per_worker
        sts = [
            s for s in rendered.kind("StatefulSet") if s["metadata"]["name"] == f"strata-{store}"
        ]
        if sts:
            dynamic = json.loads(
                rendered.get("ConfigMap", f"strata-{store}-patroni")["data"]["dynamic.json"]
            )
            max_conn = int(dynamic["postgresql"]["parameters"]["max_connections"])
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
    for svc, expected in (("critical", 30), ("ml", 42)):
        s = v[svc]
        budget = (
            (s["replicaCount"] + s["rollingUpdate"]["maxSurge"])
            * s["workers"]
            * (
                s["database"]["poolSize"]
                + s["database"]["maxOverflow"]
                + s.get("exportSnapshotsMax", 0)
            )
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
#: apiDocs.enabled (the default): each service's reference and its openapi.json copy.
DOCS_PATHS = {
    ("/docs/critical", "Prefix", "critical"),
    ("/docs/ml", "Prefix", "ml"),
    ("/docs/cache", "Prefix", "cache"),
}


def test_ingress_routes_exactly_the_api_roots(rendered: Render) -> None:
    ingress = effective_values(rendered)["ingress"]
    if not ingress["enabled"]:
        assert rendered.kind("Ingress") == []
        return
    (ing,) = rendered.kind("Ingress")
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == ingress["host"], "an Ingress always names its host"
    if ingress["tls"]["enabled"]:
        (tls,) = ing["spec"]["tls"]
        assert tls["hosts"] == [ingress["host"]]
        assert tls["secretName"] == (ingress["tls"]["secretName"] or "strata-tls")
    else:
        assert "tls" not in ing["spec"]
    # Controller-neutral: nothing but what the values ask for.
    assert ing["metadata"].get("annotations", {}) == ingress["annotations"]
    got = {
        (p["path"], p["pathType"], p["backend"]["service"]["name"].removeprefix("strata-"))
        for p in rule["http"]["paths"]
    }
    expected = set(API_PATHS)
    if ingress["batchPathType"] == "ImplementationSpecific":  # no ':' path; /v1/kv a string prefix
        expected = {p for p in API_PATHS if not p[0].startswith("/v1/kv")}
        expected |= {("/v1/kv", "ImplementationSpecific", "cache")}
    if effective_values(rendered)["apiDocs"]["enabled"]:
        expected |= DOCS_PATHS
    assert got == expected
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


def test_ingress_is_off_by_default_and_tls_when_on(render: RenderFn) -> None:
    """No Ingress without a host; once enabled with one, TLS is on with <fullname>-tls."""
    assert render(None).kind("Ingress") == []
    r = render(None, sets=("ingress.enabled=true", "ingress.host=api.example.com"))
    (ing,) = r.kind("Ingress")
    assert ing["spec"]["tls"] == [{"hosts": ["api.example.com"], "secretName": "strata-tls"}]
    assert "ingressClassName" not in ing["spec"], "the cluster's default class"


def test_ingress_without_colon_paths(render: RenderFn) -> None:
    """ingress.batchPathType=ImplementationSpecific: no ':' anywhere, /v1/kv a string prefix."""
    r = render(
        None,
        sets=(
            "ingress.enabled=true",
            "ingress.host=api.example.com",
            "ingress.batchPathType=ImplementationSpecific",
        ),
    )
    (ing,) = r.kind("Ingress")
    paths = {(p["path"], p["pathType"]) for p in ing["spec"]["rules"][0]["http"]["paths"]}
    assert ("/v1/kv", "ImplementationSpecific") in paths
    assert not [p for p, _ in paths if ":" in p]
    assert {p for p, _ in paths} == {p for p, _, _ in API_PATHS | DOCS_PATHS if ":" not in p}


def test_api_docs_routed_and_served_unless_turned_off(render: RenderFn) -> None:
    """apiDocs.enabled=false drops the /docs routes and tells each service not to serve them."""
    on = ("ingress.enabled=true", "ingress.host=api.example.com")
    for enabled, served in (("true", "true"), ("false", "false")):
        r = render(None, sets=(*on, f"apiDocs.enabled={enabled}"))
        (ing,) = r.kind("Ingress")
        docs = {p["path"] for p in ing["spec"]["rules"][0]["http"]["paths"]} & {
            p for p, _, _ in DOCS_PATHS
        }
        assert docs == ({p for p, _, _ in DOCS_PATHS} if enabled == "true" else set())
        for component, prefix in (("critical", "CRITICAL"), ("ml", "ML"), ("cache", "CACHE")):
            config = r.get("ConfigMap", f"strata-{component}")["data"]
            assert config[f"STRATA_{prefix}_API_DOCS"] == served
            assert config[f"STRATA_{prefix}_GZIP_MIN_BYTES"] == "1024"


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
    for svc, store in stores.items():
        external = not bundled(rendered, store)
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
        sin = store_np["ingress"][0]
        (src,) = sin["from"]
        assert src["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == svc
        # each store is reachable by its own service only (and by its own Patroni members)
        for other in set(stores) - {svc}:
            assert f"'{other}'" not in str(store_np)
        if store != "redis":
            assert len(store_np["ingress"]) == 3, store
            assert store_np["policyTypes"] == ["Ingress", "Egress"]


def test_scrape_annotations_follow_the_values(rendered: Render) -> None:
    """Pods carry prometheus.io/* annotations unless metrics.scrapeAnnotations is off (the
    monitors themselves: test_monitors)."""
    annotate = effective_values(rendered)["metrics"]["scrapeAnnotations"]
    for svc in SERVICES:
        ann = rendered.get("Deployment", f"strata-{svc}")["spec"]["template"]["metadata"][
            "annotations"
        ]
        assert re.fullmatch(r"[0-9a-f]{64}", ann["checksum/config"])
        assert re.fullmatch(r"[0-9a-f]{64}", ann["checksum/secret"])
        if annotate:
            assert ann["prometheus.io/scrape"] == "true"
            assert ann["prometheus.io/port"] == "8000"
            assert ann["prometheus.io/path"] == "/metrics"
        else:
            assert "prometheus.io/scrape" not in ann


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


def test_stores_keep_the_previous_volumes_and_ids(render: RenderFn) -> None:
    """What `helm upgrade` from the single-server chart relies on: same StatefulSet shape."""
    r = render(None)
    for store, user, db in (
        ("postgresql-critical", "strata_owner", "strata_critical"),
        ("postgresql-ml", "strata_ml", "strata_ml"),
    ):
        sts = r.get("StatefulSet", f"strata-{store}")
        assert sts["spec"]["serviceName"] == f"strata-{store}-hl"
        assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
        spec = pod_spec(sts)
        c = spec["containers"][0]
        assert c["name"] == "postgresql"
        assert c["image"] == "strata-postgresql:15-patroni4.1.5"
        env = {e["name"]: e for e in c["env"]}
        assert env["PATRONI_SUPERUSER_USERNAME"]["value"] == user
        assert env["STRATA_PG_DATABASE"]["value"] == db
        assert env["PGDATA"]["value"] == "/var/lib/postgresql/data/pgdata"
        # The superuser's password (the owner's) is a file, for Patroni and for replication.
        files = mounted_secret_files(spec, c)
        owner_key = {"strata_owner": "owner-password", "strata_ml": "password"}[user]
        for var in ("STRATA_PG_SUPERUSER_PASSWORD_FILE", "STRATA_PG_REPLICATION_PASSWORD_FILE"):
            assert files[env[var]["value"]] == owner_key
        assert files[env["STRATA_PG_RESTAPI_PASSWORD_FILE"]["value"]] == "restapi-password"
        assert not [e for e in c["env"] if "PASSWORD" in e["name"] and "valueFrom" in e]
        assert spec["securityContext"]["runAsUser"] == 999
        assert c["lifecycle"]["preStop"]["exec"]["command"][-1] == "prestop"
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounts
        (vct,) = sts["spec"]["volumeClaimTemplates"]
        assert vct["metadata"]["name"] == "data"
        assert vct["spec"]["resources"]["requests"]["storage"] == "8Gi"
        assert "storageClassName" not in vct["spec"], "default StorageClass unless set"
    redis = pod_spec(r.get("StatefulSet", "strata-redis"))["containers"][0]
    assert redis["image"] == "redis:7-bookworm"
    assert redis["command"][:2] == ["sh", "-c"]
    assert redis["command"][2].rstrip().endswith('exec redis-server "$conf" "$@"')
    args = " ".join(redis["args"])
    assert "--appendonly yes" in args
    assert "--dir /data" in args
    assert {m["mountPath"] for m in redis["volumeMounts"]} >= {"/data"}


@pytest.mark.parametrize("auth", [True, False])
def test_redis_password_is_on_no_command_line_and_in_no_environment(
    render: RenderFn, auth: bool
) -> None:
    """The password reaches redis-server through a generated config file and the probe
    through REDISCLI_AUTH, both read from the mounted Secret file (tests/e2e/images runs
    this StatefulSet's container and checks the processes)."""
    r = render(None, sets=(f"redis.auth.enabled={str(auth).lower()}",))
    spec = pod_spec(r.get("StatefulSet", "strata-redis"))
    (c,) = [x for x in spec["containers"] if x["name"] == "redis"]
    assert "env" not in c and "envFrom" not in c
    script = c["command"][2]
    assert "--requirepass" not in " ".join(c["command"] + c["args"])
    assert "REDIS_PASSWORD" not in json.dumps(c)
    probe = c["readinessProbe"]["exec"]["command"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    config = {v["name"]: v for v in spec["volumes"]}[mounts["/run/redis"]["name"]]
    assert config["emptyDir"]["medium"] == "Memory", "the generated config stays off disk"
    if auth:
        assert f"cat {SECRETS_DIR}/redis-password" in script
        assert "requirepass" in script
        assert f"cat {SECRETS_DIR}/redis-password" in probe[2]
        assert 'export REDISCLI_AUTH="$pw"' in probe[2]
        assert set(mounted_secret_files(spec, c)) == {f"{SECRETS_DIR}/redis-password"}
        assert "--protected-mode" not in c["args"]
    else:
        assert "requirepass" not in script
        assert "REDISCLI_AUTH" not in probe[2]
        assert SECRETS_DIR not in mounts
        assert c["args"][-2:] == ["--protected-mode", "no"]


def test_every_image_is_overridable(render: RenderFn) -> None:
    r = render(str(CHART / "ci" / "local-images-values.yaml"))
    images = {c["image"]: c["imagePullPolicy"] for _, spec in pods(r) for c in all_containers(spec)}
    assert images == {
        "local/strata-critical:e2e": "Never",
        "local/strata-ml:e2e": "Never",
        "local/strata-cache:e2e": "Never",
        "local/strata-postgresql:15-patroni4.1.5": "Never",
        "local/redis:7-bookworm": "Never",
    }
    reg = render(
        None,
        sets=("global.imageRegistry=registry.example.com", "redis.image.digest=sha256:" + "a" * 64),
    )
    got = {c["image"] for _, spec in pods(reg) for c in all_containers(spec)}
    assert "registry.example.com/strata-critical:0.1.0" in got
    assert "registry.example.com/strata-postgresql:15-patroni4.1.5" in got
    assert "registry.example.com/redis:7-bookworm@sha256:" + "a" * 64 in got


def test_every_image_can_be_pinned_by_digest(render: RenderFn) -> None:
    """ci/digests: every container of every pod (init, test pod included) runs by digest;
    a tag set in the values stays beside the digest, the appVersion guess does not."""
    r = render(str(CHART / "ci" / "digests-values.yaml"))
    values = yaml.safe_load((CHART / "ci" / "digests-values.yaml").read_text())
    images = {c["image"] for _, spec in pods(r) for c in all_containers(spec)}
    assert all(re.search(r"@sha256:[0-9a-f]{64}$", i) for i in images), images
    digest = {k: v["image"]["digest"] for k, v in values.items() if "image" in v}
    assert images == {
        f"registry.example.com/strata-critical@{digest['critical']}",
        f"registry.example.com/strata-ml@{digest['ml']}",
        f"registry.example.com/strata-cache@{digest['cache']}",
        f"registry.example.com/strata-postgresql:15-patroni4.1.5@{digest['postgresqlCritical']}",
        f"registry.example.com/redis:7-bookworm@{digest['redis']}",
        "registry.example.com/oliver006/redis_exporter:v1.45.0@"
        + values["metrics"]["redisExporter"]["image"]["digest"],
    }
    for _, spec in pods(r):
        for c in all_containers(spec):
            assert c["imagePullPolicy"] == "IfNotPresent"
    tagged = render(None, sets=("cache.image.tag=1.2.3", "cache.image.digest=sha256:" + "b" * 64))
    (cache,) = pod_spec(tagged.get("Deployment", "strata-cache"))["containers"]
    assert cache["image"] == "strata-cache:1.2.3@sha256:" + "b" * 64


def api_test_pod(r: Render) -> dict[str, Any]:
    """The helm test pod that calls the three services (others check archiving: test_backup)."""
    return r.get("Pod", "strata-test-api")


def test_helm_test_pod(rendered: Render) -> None:
    pod = api_test_pod(rendered)
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
    assert not [e for e in c["env"] if "valueFrom" in e], "keys come as files, not env"
    compile(script, "helm-test", "exec")
    # It holds the secret of every HS256 service (to mint a token for each), nothing else.
    values = effective_values(rendered)
    hs256 = [s for s in SERVICES if values["auth"][s]["algorithms"] == ["HS256"]]
    volumes = {v["name"]: v for v in spec["volumes"]}
    if not hs256:
        assert "jwt" not in volumes
        return
    sources = volumes["jwt"]["projected"]["sources"]
    assert [src["secret"]["items"][0]["path"] for src in sources] == hs256
    for src in sources:
        svc = src["secret"]["items"][0]["path"]
        own = values["auth"][svc]["existingSecret"] or f"strata-{svc}-jwt"
        assert src["secret"]["name"] == own


def _mint_from_test_script(script: str) -> Any:
    """The test pod's ``mint`` function, compiled from its script."""
    block = re.search(r"^( *def mint\(.*?return jwt\.encode\([^)]*\))", script, re.S | re.M)
    assert block, "token minting code not found"
    import jwt

    ns: dict[str, Any] = {"time": time, "jwt": jwt}
    exec(compile(textwrap.dedent(block.group(1)), "t", "exec"), ns)  # noqa: S102
    return ns["mint"]


def test_helm_test_script_mints_a_token_the_services_accept(render: RenderFn) -> None:
    """Run the token part of the test pod's script against the services' own verifier."""
    auth = pytest.importorskip("services.common.auth")
    pod = api_test_pod(render(None))
    mint = _mint_from_test_script(pod["spec"]["containers"][0]["command"][2])
    secret = "s" * 40
    for name, scope in (("critical", "accounts:read"), ("cache", "cache:read")):
        for issuer in (None, "https://idp.example"):
            verifier = auth.TokenVerifier.hs256(secret, f"strata-{name}", issuer=issuer)
            principal = verifier.verify(mint(name, scope, secret, issuer))
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
    notes = render_notes(helm, tmp_path, "ingress.enabled=true", "ingress.host=api.example.com")
    assert "https://api.example.com/v1/..." in notes
    assert "TLS certificate from Secret strata-tls" in notes
    assert "WARNING" not in notes
    assert "kubectl port-forward -n strata svc/strata-critical 8000:8000" in notes
    assert "helm test strata -n strata" in notes
    assert "meant for development" in notes  # HS256 in production: the guide is named
    commands = re.findall(r"TOKEN=\$\(python3 -c '([^']+)'\)", notes)
    assert len(commands) == 3, notes
    for svc, command in zip(SERVICES, commands, strict=True):
        assert (
            f"kubectl get secret -n strata strata-{svc}-jwt -o jsonpath='{{.data.jwt-secret}}'"
            in notes
        )
        secret = f"{svc[0]}" * 40
        proc = subprocess.run(
            [sys.executable, "-c", command],
            env={**os.environ, "STRATA_JWT_SECRET": secret},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        verifier = auth.TokenVerifier.hs256(secret, f"strata-{svc}")
        assert verifier.verify(proc.stdout.strip()).scopes


def test_notes_with_existing_secret_point_at_it(helm: str, tmp_path: Path) -> None:
    notes = render_notes(
        helm, tmp_path, "auth.critical.existingSecret=mine", "auth.critical.existingSecretKey=hs"
    )
    assert "kubectl get secret -n strata mine -o jsonpath='{.data.hs}'" in notes


def test_notes_warn_when_the_ingress_has_no_tls(helm: str, tmp_path: Path) -> None:
    notes = render_notes(
        helm,
        tmp_path,
        "ingress.enabled=true",
        "ingress.host=api.example.com",
        "ingress.tls.enabled=false",
    )
    assert "http://api.example.com/v1/..." in notes
    assert "WARNING: ingress.tls.enabled=false" in notes
    assert "clear text" in notes
    without = render_notes(helm, tmp_path / "off")
    assert "no Ingress" in without
    assert "WARNING" not in without
    assert "kubectl get secret -n strata strata-ml-jwt -o jsonpath='{.data.jwt-secret}'" in notes


def test_notes_for_an_identity_provider(helm: str, tmp_path: Path) -> None:
    notes = render_notes(
        helm,
        tmp_path,
        "auth.critical.algorithms={RS256}",
        "auth.critical.jwksUrl=https://idp.example/jwks",
        "auth.ml.algorithms={ES256}",
        "auth.ml.existingSecret=idp-key",
    )
    assert "critical: RS256 tokens from your identity provider, verified with its JWKS" in notes
    assert "ml: ES256 tokens from your identity provider, verified with the public key" in notes
    assert "strata token --service cache" in notes
    assert "strata-critical-jwt" not in notes


def test_critical_slow_client_settings_reach_the_service(render: RenderFn) -> None:
    """The chart's defaults are the service's, and each value lands in its variable."""
    from services.critical.settings import CriticalSettings

    fields = CriticalSettings.model_fields
    defaults = config_env(render(None), "critical")
    assert (
        float(defaults["STRATA_CRITICAL_REQUEST_READ_TIMEOUT"])
        == fields["request_read_timeout"].default
    )
    assert (
        int(defaults["STRATA_CRITICAL_WORKER_CONNECTIONS"]) == fields["worker_connections"].default
    )
    assert (
        int(defaults["STRATA_CRITICAL_REQUEST_BUFFER_BYTES"])
        == fields["request_buffer_bytes"].default
    )
    assert defaults["STRATA_CRITICAL_FORWARDED_ALLOW_IPS"] == fields["forwarded_allow_ips"].default
    custom = config_env(
        render(
            None,
            sets=(
                "critical.requestReadTimeoutSeconds=3",
                "critical.workerConnections=100000",
                "critical.requestBufferBytes=67108864",
                "critical.forwardedAllowIps=10.0.0.0/8",
            ),
        ),
        "critical",
    )
    assert custom["STRATA_CRITICAL_REQUEST_READ_TIMEOUT"] == "3"
    assert custom["STRATA_CRITICAL_WORKER_CONNECTIONS"] == "100000"
    assert custom["STRATA_CRITICAL_REQUEST_BUFFER_BYTES"] == "67108864"
    assert custom["STRATA_CRITICAL_FORWARDED_ALLOW_IPS"] == "10.0.0.0/8"
    # What the chart renders, the service accepts (the key comes from its file in a pod).
    given = {k.removeprefix("STRATA_CRITICAL_").lower(): v for k, v in custom.items()}
    accepted = CriticalSettings(
        **{k: v for k, v in given.items() if k in fields}, jwt_secret="x" * 32
    )
    assert accepted.worker_connections == 100000
