"""TLS to the stores in the chart (postgresqlCritical.tls, postgresqlMl.tls, redis.tls): what the
defaults leave alone, the bundled servers serving TLS from a Secret, the clients' sslmode and CA
bundle from a Secret or ConfigMap, and the refusals of validateValues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    CHART,
    Render,
    RenderFn,
    all_containers,
    pod_spec,
    projected_items,
    refusal,
)

TLS_VALUES = str(CHART / "ci" / "tls-values.yaml")
MOUNT = "/var/run/secrets/strata"
SERVER_DIR = "/etc/strata-tls"
TIERS = {"critical": "strata-postgresql-critical", "ml": "strata-postgresql-ml"}


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in all_containers(spec) if c["name"] == name]
    return found


def sources(spec: dict[str, Any], volume: str) -> dict[str, tuple[str, str, str]]:
    """path -> (kind, name, key) of a projected volume's items."""
    (vol,) = [v for v in spec["volumes"] if v["name"] == volume]
    return projected_items(vol)


def patroni_parameters(r: Render, tier: str) -> dict[str, Any]:
    config = yaml.safe_load(r.get("ConfigMap", f"{tier}-patroni")["data"]["patroni.yaml"])
    params: dict[str, Any] = config["postgresql"]["parameters"]
    return params


def test_the_defaults_render_no_tls(render: RenderFn) -> None:
    """Off by default: an upgrade with the defaults renders what it rendered before."""
    r = render(None)
    for svc, tier in TIERS.items():
        data = r.get("ConfigMap", f"strata-{svc}")["data"]
        assert not any("SSL" in k for k in data)
        spec = pod_spec(r.get("Deployment", f"strata-{svc}"))
        for c in all_containers(spec):
            assert not any("SSL" in k for k in env_of(c))
        assert "database-ca.crt" not in sources(spec, "secrets")
        assert "ssl" not in patroni_parameters(r, tier)
        sts = pod_spec(r.get("StatefulSet", tier))
        assert "server-tls" not in {v["name"] for v in sts["volumes"]}
    assert r.get("ConfigMap", "strata-cache")["data"]["STRATA_CACHE_REDIS_URL"] == (
        "redis://strata-redis:6379/0"
    )
    redis = pod_spec(r.get("StatefulSet", "strata-redis"))
    args = container(redis, "redis")["args"]
    assert args[:2] == ["--port", "6379"] and "--tls-port" not in args
    assert env_of(container(redis, "redis-exporter"))["REDIS_ADDR"] == "redis://127.0.0.1:6379"


@pytest.mark.parametrize("svc", ["critical", "ml"])
def test_bundled_postgresql_serves_tls_from_its_secret(render: RenderFn, svc: str) -> None:
    r = render(TLS_VALUES)
    tier = TIERS[svc]
    params = patroni_parameters(r, tier)
    assert params["ssl"] == "on"
    assert params["ssl_cert_file"] == f"{SERVER_DIR}/tls.crt"
    assert params["ssl_key_file"] == f"{SERVER_DIR}/tls.key"
    spec = pod_spec(r.get("StatefulSet", tier))
    (volume,) = [v for v in spec["volumes"] if v["name"] == "server-tls"]
    assert volume["secret"] == {
        "secretName": f"{tier}-tls",
        "defaultMode": 0o440,  # root-owned, group-readable: PostgreSQL accepts the key so
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
    }
    mounts = {m["name"]: m for m in container(spec, "postgresql")["volumeMounts"]}
    assert mounts["server-tls"] == {"name": "server-tls", "mountPath": SERVER_DIR, "readOnly": True}
    # Only the server has the key: no other container mounts it.
    others = [c for c in all_containers(spec) if c["name"] != "postgresql"]
    assert all("server-tls" not in {m["name"] for m in c.get("volumeMounts", [])} for c in others)


def test_critical_verifies_with_its_servers_ca_by_default(render: RenderFn) -> None:
    """No sslmode and no CA source named: the server Secret's ca.crt, verify-full."""
    r = render(TLS_VALUES)
    assert r.get("ConfigMap", "strata-critical")["data"]["STRATA_CRITICAL_DATABASE_SSLMODE"] == (
        "verify-full"
    )
    spec = pod_spec(r.get("Deployment", "strata-critical"))
    for name, volume in (("migrate", "migrate-secrets"), ("critical", "secrets")):
        env = env_of(container(spec, name))
        assert env["STRATA_CRITICAL_DATABASE_SSLROOTCERT"] == f"{MOUNT}/database-ca.crt"
        assert sources(spec, volume)["database-ca.crt"] == (
            "secret",
            "strata-postgresql-critical-tls",
            "ca.crt",
        )


def test_ml_takes_its_mode_and_a_ca_bundle_from_a_configmap(render: RenderFn) -> None:
    r = render(TLS_VALUES)
    assert r.get("ConfigMap", "strata-ml")["data"]["STRATA_ML_DATABASE_SSLMODE"] == "verify-ca"
    spec = pod_spec(r.get("Deployment", "strata-ml"))
    for name, volume in (("migrate", "migrate-secrets"), ("ml", "secrets")):
        assert env_of(container(spec, name))["STRATA_ML_DATABASE_SSLROOTCERT"] == (
            f"{MOUNT}/database-ca.crt"
        )
        assert sources(spec, volume)["database-ca.crt"] == (
            "configMap",
            "strata-database-ca",
            "ca-bundle.crt",
        )


def test_bundled_redis_serves_tls_only_and_the_cache_uses_rediss(render: RenderFn) -> None:
    r = render(TLS_VALUES)
    data = r.get("ConfigMap", "strata-cache")["data"]
    assert data["STRATA_CACHE_REDIS_URL"] == "rediss://strata-redis:6379/0"
    cache = pod_spec(r.get("Deployment", "strata-cache"))
    assert env_of(container(cache, "cache"))["STRATA_CACHE_REDIS_TLS_CA_FILE"] == (
        f"{MOUNT}/redis-ca.crt"
    )
    assert sources(cache, "secrets")["redis-ca.crt"] == ("secret", "strata-redis-tls", "ca.crt")

    spec = pod_spec(r.get("StatefulSet", "strata-redis"))
    redis = container(spec, "redis")
    args = redis["args"]
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert pairs["--port"] == "0"  # no plain-text port at all
    assert pairs["--tls-port"] == "6379"
    assert pairs["--tls-cert-file"] == f"{SERVER_DIR}/tls.crt"
    assert pairs["--tls-key-file"] == f"{SERVER_DIR}/tls.key"
    assert pairs["--tls-auth-clients"] == "no"
    probe = redis["readinessProbe"]["exec"]["command"][-1]
    assert "redis-cli --no-auth-warning --tls --insecure -h 127.0.0.1 -p 6379 ping" in probe
    assert {m["name"] for m in redis["volumeMounts"]} >= {"server-tls"}
    exporter = env_of(container(spec, "redis-exporter"))
    assert exporter["REDIS_ADDR"] == "rediss://127.0.0.1:6379"
    assert exporter["REDIS_EXPORTER_SKIP_TLS_VERIFICATION"] == "true"
    init = container(spec, "redis-exporter-auth")["command"][-1]
    assert '"rediss://127.0.0.1:6379"' in init  # the password file is keyed by that address


def test_external_servers_with_a_managed_ca(render: RenderFn) -> None:
    """Managed PostgreSQL with a private CA (RDS, Cloud SQL) and one with a public CA (Azure:
    verify-full against the system's store, nothing mounted); Redis over rediss:// with a CA."""
    r = render(
        str(CHART / "ci" / "external-databases-values.yaml"),
        sets=(
            "postgresqlCritical.tls.ca.existingSecret=rds-ca",
            "postgresqlMl.tls.sslmode=verify-full",
            "redis.tls.ca.existingConfigMap=redis-ca",
        ),
    )
    assert r.get("ConfigMap", "strata-critical")["data"]["STRATA_CRITICAL_DATABASE_SSLMODE"] == (
        "verify-full"
    )
    critical = pod_spec(r.get("Deployment", "strata-critical"))
    assert sources(critical, "secrets")["database-ca.crt"] == ("secret", "rds-ca", "ca.crt")
    assert r.get("ConfigMap", "strata-ml")["data"]["STRATA_ML_DATABASE_SSLMODE"] == "verify-full"
    ml = pod_spec(r.get("Deployment", "strata-ml"))
    assert "STRATA_ML_DATABASE_SSLROOTCERT" not in env_of(container(ml, "ml"))
    cache = pod_spec(r.get("Deployment", "strata-cache"))
    assert sources(cache, "secrets")["redis-ca.crt"] == ("configMap", "redis-ca", "ca.crt")


def test_external_sentinels_may_use_rediss(render: RenderFn) -> None:
    r = render(
        str(CHART / "ci" / "external-sentinel-values.yaml"),
        sets=("redis.external.url=rediss://ignored:6379/2", "redis.tls.ca.existingSecret=ca"),
    )
    data = r.get("ConfigMap", "strata-cache")["data"]
    assert data["STRATA_CACHE_REDIS_URL"].startswith("rediss://")
    assert data["STRATA_CACHE_REDIS_SENTINELS"]


def test_the_services_accept_what_the_chart_renders(
    render: RenderFn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The rendered TLS variables, with the mounted CA as a real file, pass each service's
    settings validation (a mode the chart renders that a service refuses fails here)."""
    from services.cache.settings import CacheSettings
    from services.critical.settings import CriticalSettings
    from services.ml.settings import MlSettings
    from tests.support.testca import make_ca

    ca = make_ca(tmp_path / "ca").ca_file
    r = render(TLS_VALUES)
    for svc in ("critical", "ml", "cache"):
        data = r.get("ConfigMap", f"strata-{svc}")["data"]
        env = env_of(container(pod_spec(r.get("Deployment", f"strata-{svc}")), svc))
        for name, value in {**data, **env}.items():
            if "SSL" in name or "TLS" in name or name.endswith("REDIS_URL"):
                monkeypatch.setenv(name, ca if value.startswith(MOUNT) else value)
    assert CriticalSettings(environment="development").database_root_cert == ca
    assert MlSettings(environment="development").asyncpg_ssl() is not None
    assert CacheSettings(environment="development").redis_options()["ssl_ca_certs"] == ca


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["postgresqlCritical.tls.sslmode=prefer", "postgresqlCritical.tls.ca.existingSecret=a"],
            "postgresqlCritical.tls.sslmode=prefer never verifies the server",
        ),
        (
            ["postgresqlMl.tls.ca.existingSecret=a", "postgresqlMl.tls.ca.existingConfigMap=b"],
            "postgresqlMl.tls.ca: set existingSecret or existingConfigMap, not both",
        ),
        (
            ["postgresqlMl.tls.server.enabled=true"],
            "postgresqlMl.tls.server.enabled needs postgresqlMl.tls.server.existingSecret",
        ),
        (
            [
                "postgresqlCritical.enabled=false",
                "postgresqlCritical.external.host=db",
                "postgresqlCritical.auth.ownerPassword=p",
                "postgresqlCritical.tls.server.enabled=true",
            ],
            "postgresqlCritical.tls.server.enabled is for the bundled server",
        ),
        (["redis.tls.ca.existingSecret=a"], "redis.tls.ca needs TLS to Redis"),
    ],
)
def test_validate_values_refuses(helm: str, sets: list[str], message: str) -> None:
    assert message in refusal(helm, sets)


@pytest.mark.parametrize(
    "setting",
    [
        "postgresqlCritical.tls.sslmode=verify",
        "redis.tls.server.certKey=",
        "postgresqlMl.tls.ca.existingSecret=Not_A_Name",
    ],
)
def test_schema_refuses(helm: str, setting: str) -> None:
    assert "schema" in refusal(helm, [setting])
