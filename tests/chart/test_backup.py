"""Backups and point-in-time recovery (pgBackRest): the repository host, the members'
archiving, sidecar and restore settings, the backup CronJobs, TLS, encryption, object stores,
NetworkPolicies, the archiving helm test, and the values' validation."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, Render, RenderFn, pod_spec, run_helm

TIERS = ("postgresql-critical", "postgresql-ml")
#: The metrics sidecar of every member (metrics.postgresExporter).
EXPORTER = "postgres-exporter"
OBJECT_STORE = str(CHART / "ci" / "backup-object-store-values.yaml")
RESTORE = str(CHART / "ci" / "restore-values.yaml")


def ini(text: str) -> dict[str, list[tuple[str, str]]]:
    """pgBackRest's configuration: section -> (option, value) in order (options may repeat)."""
    out: dict[str, list[tuple[str, str]]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, [])
            continue
        key, value = line.split("=", 1)
        out[section].append((key, value))
    return out


def options(text: str, section: str = "global") -> dict[str, str]:
    return dict(ini(text)[section])


def pgbackrest_config(r: Render, tier: str, key: str) -> str:
    data: dict[str, str] = r.get("ConfigMap", f"strata-{tier}-pgbackrest")["data"]
    return data[key]


def containers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod_spec(obj)["containers"]}


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def secret_files(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Mounted path -> (Secret, key) of every secret file the container can read."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        for src in volumes.get(mount["name"], {}).get("projected", {}).get("sources", []):
            for item in src["secret"]["items"]:
                files[f"{mount['mountPath']}/{item['path']}"] = (src["secret"]["name"], item["key"])
    return files


def file_env(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """STRATA_*_FILE variable -> (Secret, key) of the file it names (it must be mounted)."""
    files = secret_files(spec, container)
    return {name: files[value] for name, value in env(container).items() if name.endswith("_FILE")}


def patroni_yaml(r: Render, tier: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        r.get("ConfigMap", f"strata-{tier}-patroni")["data"]["patroni.yaml"]
    )
    return config


def test_repository_host_owns_the_volume_and_serves_it_over_tls(render: RenderFn) -> None:
    r = render(None)
    sts = r.get("StatefulSet", "strata-pgbackrest")
    assert sts["spec"]["replicas"] == 1
    (vct,) = sts["spec"]["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == "repository"
    assert vct["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert vct["spec"]["resources"]["requests"]["storage"] == "20Gi"
    (c,) = pod_spec(sts)["containers"]
    # Through the image's entrypoint (no command): it reads the secret files first.
    assert "command" not in c and c["args"][-1].endswith("exec pgbackrest server")
    assert {p["containerPort"] for p in c["ports"]} == {8432}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts["/var/lib/pgbackrest"] == "repository"
    assert "env" not in c, "no passphrase without encryption"
    svc = r.get("Service", "strata-pgbackrest")
    assert svc["spec"]["clusterIP"] == "None"
    assert [p["port"] for p in svc["spec"]["ports"]] == [8432]
    conf = r.get("ConfigMap", "strata-pgbackrest")["data"]["pgbackrest.conf"]
    g = options(conf)
    assert g["repo1-path"] == "/var/lib/pgbackrest/repo"
    assert g["lock-path"] == "/var/lib/pgbackrest/lock"
    assert g["tls-server-cert-file"] == "/etc/pgbackrest-tls/tls.crt"
    # Each tier's certificate (CN = its stanza) may use that stanza only.
    auth = [v for k, v in ini(conf)["global"] if k == "tls-server-auth"]
    assert auth == [
        "strata-postgresql-critical=strata-postgresql-critical",
        "strata-postgresql-ml=strata-postgresql-ml",
    ]
    tls = next(v for v in pod_spec(sts)["volumes"] if v["name"] == "tls")["secret"]
    assert tls["secretName"] == "strata-pgbackrest-tls"
    assert {i["key"]: i["path"] for i in tls["items"]} == {
        "ca.crt": "ca.crt",
        "repository.crt": "tls.crt",
        "repository.key": "tls.key",
    }
    assert tls["defaultMode"] == 0o440  # pgBackRest refuses a root-owned key above 0640


@pytest.mark.parametrize("tier", TIERS)
def test_members_archive_and_restore_through_the_repository(render: RenderFn, tier: str) -> None:
    r = render(None)
    stanza = f"strata-{tier}"
    patroni = patroni_yaml(r, tier)
    params = patroni["postgresql"]["parameters"]
    # Member-level settings (patroni.yaml): a restarted member starts with them at once.
    assert params["archive_mode"] == "on"
    assert params["archive_command"] == f'pgbackrest --stanza={stanza} archive-push "%p"'
    assert params["archive_timeout"] == 60
    restore = patroni["postgresql"]["recovery_conf"]["restore_command"]
    # The image's wrapper of pgbackrest archive-get (declines dead timelines' history files).
    assert restore == f'strata-pgbackrest archive-get {stanza} %f "%p"'
    assert patroni["postgresql"]["create_replica_methods"] == ["pgbackrest", "basebackup"]
    method = patroni["postgresql"]["pgbackrest"]
    assert method["no_params"] is True
    assert f"--stanza={stanza} --type=standby" in method["command"]
    assert "method" not in patroni["bootstrap"], "initdb unless restoring"
    # The primary Service also routes 8432 to the leader (Patroni writes both ports).
    assert {p["name"]: p["port"] for p in patroni["kubernetes"]["ports"]} == {
        "postgresql": 5432,
        "pgbackrest": 8432,
    }
    primary = r.get("Service", stanza)
    assert [(p["name"], p["port"]) for p in primary["spec"]["ports"]] == [
        ("postgresql", 5432),
        ("pgbackrest", 8432),
    ]
    conf = pgbackrest_config(r, tier, "pgbackrest.conf")
    g = options(conf)
    assert g["repo1-host"] == "strata-pgbackrest"
    assert g["repo1-host-type"] == "tls"
    assert g["archive-async"] == "y"
    assert g["spool-path"].startswith("/tmp/")
    assert g["tls-server-auth"] == f"{stanza}={stanza}"
    assert "repo1-cipher-type" not in g
    assert options(conf, stanza) == {
        "pg1-path": "/var/lib/postgresql/data/pgdata",
        "pg1-port": "5432",
        "pg1-socket-path": "/var/run/postgresql",
        "pg1-user": "strata_owner" if tier.endswith("critical") else "strata_ml",
    }


@pytest.mark.parametrize("tier", TIERS)
def test_members_run_the_pgbackrest_sidecar(render: RenderFn, tier: str) -> None:
    r = render(None)
    sts = r.get("StatefulSet", f"strata-{tier}")
    cs = containers(sts)
    # (postgres-exporter: metrics.postgresExporter, tests/chart/test_exporters.py)
    assert list(cs) == ["postgresql", "pgbackrest", "postgres-exporter"]
    side = cs["pgbackrest"]
    assert "command" not in side, "the image's entrypoint reads the password file first"
    assert side["args"] == ["strata-pgbackrest", "sidecar"]
    assert side["image"] == cs["postgresql"]["image"], "same pgBackRest as archive_command"
    e = env(side)
    assert e["STRATA_PGBACKREST_STANZA"] == f"strata-{tier}"
    assert e["PGHOST"] == "/var/run/postgresql"
    # The superuser's password as a file (PGPASSWORD of the sidecar's process), nothing else.
    secret, key = (
        ("strata-postgresql-critical", "owner-password")
        if tier.endswith("critical")
        else ("strata-postgresql-ml", "password")
    )
    assert file_env(pod_spec(sts), side) == {"STRATA_PGPASSWORD_FILE": (secret, key)}
    assert "PGPASSWORD" not in e
    assert {p["name"]: p["containerPort"] for p in side["ports"]} == {
        "pgbackrest": 8432,
        "backup-metrics": 9854,
    }
    mounts = {m["mountPath"] for m in side["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp", "/etc/pgbackrest"} <= mounts
    pg_mounts = {m["mountPath"] for m in cs["postgresql"]["volumeMounts"]}
    assert {"/etc/pgbackrest", "/etc/pgbackrest-tls"} <= pg_mounts
    template = sts["spec"]["template"]["metadata"]
    assert template["labels"]["pgbackrest.strata.io/strata-pgbackrest"] == "client"
    assert "checksum/pgbackrest" in template["annotations"]
    metrics = r.get("Service", f"strata-{tier}-backup-metrics")
    assert metrics["metadata"]["annotations"]["prometheus.io/port"] == "9854"
    assert metrics["spec"]["selector"].items() <= template["labels"].items()


def test_backup_cronjobs_per_tier_with_their_own_schedule_and_retention(render: RenderFn) -> None:
    r = render(None)
    jobs = {j["metadata"]["name"]: j for j in r.kind("CronJob")}
    assert set(jobs) == {
        "strata-postgresql-critical-backup-full",
        "strata-postgresql-critical-backup-diff",
        "strata-postgresql-ml-backup-full",
        "strata-postgresql-ml-backup-diff",
    }
    assert jobs["strata-postgresql-critical-backup-full"]["spec"]["schedule"] == "0 1 * * 0"
    assert jobs["strata-postgresql-critical-backup-diff"]["spec"]["schedule"] == "0 1 * * 1-6"
    assert jobs["strata-postgresql-ml-backup-full"]["spec"]["schedule"] == "30 1 * * 0"
    for name, job in jobs.items():
        tier = name.removeprefix("strata-").rsplit("-backup-", 1)[0]
        kind = name.rsplit("-", 1)[1]
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        spec = pod_spec(job)
        assert spec["restartPolicy"] == "Never"
        (c,) = spec["containers"]
        assert "command" not in c  # the image's entrypoint runs it (secret files first)
        assert c["args"] == ["pgbackrest", f"--stanza=strata-{tier}", f"--type={kind}", "backup"]
        assert file_env(spec, c) == {}, "no secret without encryption or an object store"
        # The repository is local: same node as the repository host, same volume.
        (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "pgbackrest"
        claim = next(v for v in spec["volumes"] if v["name"] == "repository")
        assert claim["persistentVolumeClaim"]["claimName"] == "repository-strata-pgbackrest-0"
        tls = next(v for v in spec["volumes"] if v["name"] == "tls")["secret"]
        assert {i["key"] for i in tls["items"]} == {"ca.crt", f"{tier}.crt", f"{tier}.key"}
        labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == f"{tier}-backup"
    critical = options(pgbackrest_config(r, "postgresql-critical", "job.conf"))
    ml = options(pgbackrest_config(r, "postgresql-ml", "job.conf"))
    assert (critical["repo1-retention-full"], critical["repo1-retention-diff"]) == ("2", "7")
    assert (ml["repo1-retention-full"], ml["repo1-retention-diff"]) == ("1", "6")
    assert critical["repo1-path"] == "/var/lib/pgbackrest/repo"
    assert critical["lock-path"] == "/var/lib/pgbackrest/lock", "shared: backups never overlap"
    stanza = options(
        pgbackrest_config(r, "postgresql-critical", "job.conf"), "strata-postgresql-critical"
    )
    assert stanza["pg1-host"] == "strata-postgresql-critical"  # the primary Service
    assert stanza["pg1-host-type"] == "tls"
    custom = render(
        None,
        sets=("postgresqlMl.backup.schedule.diff=", "postgresqlMl.backup.schedule.incr=15 * * * *"),
    )
    assert {
        j["metadata"]["name"] for j in custom.kind("CronJob") if "-ml-" in j["metadata"]["name"]
    } == {
        "strata-postgresql-ml-backup-full",
        "strata-postgresql-ml-backup-incr",
    }


def test_archiving_helm_test_per_tier(render: RenderFn) -> None:
    r = render(None)
    for tier in TIERS:
        pod = r.get("Pod", f"strata-test-archiving-{tier}")
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        (c,) = pod["spec"]["containers"]
        assert f"pgbackrest --stanza=strata-{tier} check" in c["args"][-1]
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == f"{tier}-backup"


def _openssl(*args: str, data: bytes | None = None) -> str:
    return subprocess.run(
        ["openssl", *args], input=data, capture_output=True, check=True, timeout=30
    ).stdout.decode()


def test_tls_certificates_from_one_ca(render: RenderFn, tmp_path: Path) -> None:
    secret = render(None).get("Secret", "strata-pgbackrest-tls")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(data) == {
        "ca.crt", "ca.key", "repository.crt", "repository.key",
        "postgresql-critical.crt", "postgresql-critical.key",
        "postgresql-ml.crt", "postgresql-ml.key",
    }  # fmt: skip
    ca = tmp_path / "ca.crt"
    ca.write_bytes(data["ca.crt"])
    for pair, cn, host in (
        ("repository", "strata-pgbackrest", "strata-pgbackrest"),
        ("postgresql-critical", "strata-postgresql-critical", "strata-postgresql-critical"),
        ("postgresql-ml", "strata-postgresql-ml", "strata-postgresql-ml"),
    ):
        cert = tmp_path / f"{pair}.crt"
        cert.write_bytes(data[f"{pair}.crt"])
        assert "OK" in _openssl("verify", "-CAfile", str(ca), str(cert))
        text = _openssl("x509", "-noout", "-text", "-in", str(cert))
        assert f"CN = {cn}" in text or f"CN={cn}" in text
        for name in (
            host,
            f"{host}.strata",
            f"{host}.strata.svc",
            f"{host}.strata.svc.cluster.local",
        ):
            assert f"DNS:{name}" in text, (pair, name)
        # One pair is a tier's server (its members) and client (to the repository host).
        assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" in text
        key_mod = _openssl("pkey", "-pubout", data=data[f"{pair}.key"])
        assert key_mod == _openssl("x509", "-noout", "-pubkey", "-in", str(cert))


def test_encryption_passphrase_where_the_repository_is_local(render: RenderFn) -> None:
    r = render(None, sets=("backup.encryption.enabled=true",))
    secret = r.get("Secret", "strata-pgbackrest-encryption")
    assert len(base64.b64decode(secret["data"]["passphrase"])) == 40
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    host = r.get("StatefulSet", "strata-pgbackrest")
    repo_host = containers(host)["pgbackrest"]
    assert file_env(pod_spec(host), repo_host) == {
        "STRATA_PGBACKREST_REPO1_CIPHER_PASS_FILE": ("strata-pgbackrest-encryption", "passphrase")
    }
    assert (
        options(r.get("ConfigMap", "strata-pgbackrest")["data"]["pgbackrest.conf"])[
            "repo1-cipher-type"
        ]
        == "aes-256-cbc"
    )
    for job in r.kind("CronJob"):
        (c,) = pod_spec(job)["containers"]
        assert file_env(pod_spec(job), c) == {
            "STRATA_PGBACKREST_REPO1_CIPHER_PASS_FILE": (
                "strata-pgbackrest-encryption",
                "passphrase",
            )
        }
    # The members reach the repository through its host, which encrypts: no passphrase there.
    for tier in TIERS:
        sts = r.get("StatefulSet", f"strata-{tier}")
        for c in containers(sts).values():
            assert "strata-pgbackrest-encryption" not in {
                secret for secret, _ in secret_files(pod_spec(sts), c).values()
            }
    given = render(
        None,
        sets=("backup.encryption.enabled=true", "backup.encryption.existingSecret=vault-backup",
              "backup.encryption.existingSecretKey=key"),
    )  # fmt: skip
    assert "strata-pgbackrest-encryption" not in given.names("Secret")
    host = given.get("StatefulSet", "strata-pgbackrest")
    repo_host = containers(host)["pgbackrest"]
    assert file_env(pod_spec(host), repo_host) == {
        "STRATA_PGBACKREST_REPO1_CIPHER_PASS_FILE": ("vault-backup", "key")
    }


@pytest.mark.parametrize(
    ("sets", "option", "files"),
    [
        (
            ("backup.repository.type=gcs", "backup.repository.gcs.bucket=b",
             "backup.repository.gcs.existingSecret=gcs-sa",
             "backup.repository.gcs.keyFileKey=k.json"),
            ("repo1-gcs-key", "/var/run/secrets/strata/gcs-key"),
            {"/var/run/secrets/strata/gcs-key": ("gcs-sa", "k.json")},
        ),
        (
            ("backup.repository.type=azure", "backup.repository.azure.account=a",
             "backup.repository.azure.container=c", "backup.repository.azure.existingSecret=az"),
            ("repo1-azure-key-type", "shared"),
            {"/var/run/secrets/strata/azure-key": ("az", "key")},
        ),
    ],
)  # fmt: skip
def test_object_store_credentials_are_files(
    render: RenderFn, sets: tuple[str, ...], option: tuple[str, str], files: dict[str, Any]
) -> None:
    """GCS's key file is read by pgBackRest from its path; Azure's key through the entrypoint
    (STRATA_PGBACKREST_REPO1_AZURE_KEY_FILE). Members, their sidecars and the Jobs get them."""
    r = render(None, sets=sets)
    for key in ("pgbackrest.conf", "job.conf"):
        conf = options(pgbackrest_config(r, "postgresql-critical", key))
        assert conf[option[0]] == option[1]
    sts = r.get("StatefulSet", "strata-postgresql-critical")
    job = r.get("CronJob", "strata-postgresql-critical-backup-full")
    # Every container that runs pgBackRest (not the metrics exporter).
    pods = [(pod_spec(sts), c) for c in pod_spec(sts)["containers"] if c["name"] != EXPORTER]
    pods += [(pod_spec(job), c) for c in pod_spec(job)["containers"]]
    for spec, c in pods:
        assert files.items() <= secret_files(spec, c).items(), c["name"]
        if "azure-key" in next(iter(files)):
            assert file_env(spec, c)["STRATA_PGBACKREST_REPO1_AZURE_KEY_FILE"] == ("az", "key")


def test_object_store_needs_no_repository_host(render: RenderFn) -> None:
    r = render(OBJECT_STORE)
    assert "strata-pgbackrest" not in r.names("StatefulSet")
    assert "strata-pgbackrest" not in r.names("ConfigMap")
    for key in ("pgbackrest.conf", "job.conf"):
        g = options(pgbackrest_config(r, "postgresql-critical", key))
        assert g["repo1-type"] == "s3"
        assert g["repo1-path"] == "/strata/strata"
        assert g["repo1-s3-bucket"] == "strata-backups"
        assert g["repo1-s3-uri-style"] == "path"
        assert g["repo1-storage-port"] == "9000"
        assert g["repo1-cipher-type"] == "aes-256-cbc"
        assert g["compress-type"] == "zst" and g["compress-level"] == "3"
    sts = r.get("StatefulSet", "strata-postgresql-critical")
    for name, c in containers(sts).items():
        if name == EXPORTER:  # the metrics exporter runs no pgBackRest
            continue
        files = file_env(pod_spec(sts), c)
        # The members write the object store themselves: credentials and passphrase.
        assert files["STRATA_PGBACKREST_REPO1_S3_KEY_FILE"] == (
            "strata-minio-credentials",
            "access-key",
        )
        assert files["STRATA_PGBACKREST_REPO1_S3_KEY_SECRET_FILE"] == (
            "strata-minio-credentials",
            "secret-key",
        )
        assert files["STRATA_PGBACKREST_REPO1_CIPHER_PASS_FILE"] == (
            "strata-pgbackrest-encryption",
            "passphrase",
        )
    assert (
        "pgbackrest.strata.io/strata-pgbackrest"
        not in sts["spec"]["template"]["metadata"]["labels"]
    )
    jobs = {j["metadata"]["name"]: j for j in r.kind("CronJob")}
    assert set(jobs) == {
        "strata-postgresql-critical-backup-full",
        "strata-postgresql-critical-backup-diff",
        "strata-postgresql-critical-backup-incr",
    }, "ml is not backed up in this scenario"
    spec = pod_spec(jobs["strata-postgresql-critical-backup-incr"])
    assert "affinity" not in spec and not [v for v in spec["volumes"] if v["name"] == "repository"]
    job_conf = options(pgbackrest_config(r, "postgresql-critical", "job.conf"))
    assert job_conf["repo1-retention-full"] == "4" and "repo1-retention-diff" not in job_conf
    # The ml tier has no backups: no sidecar, no archiving.
    assert list(containers(r.get("StatefulSet", "strata-postgresql-ml"))) == [
        "postgresql",
        EXPORTER,
    ]
    assert "archive_mode" not in patroni_yaml(r, "postgresql-ml")["postgresql"]["parameters"]
    egress = r.get("NetworkPolicy", "strata-postgresql-critical-pgbackrest")["spec"]["egress"]
    assert egress == [
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"protocol": "TCP", "port": 9000}]}
    ]


def test_restore_from_another_release(render: RenderFn) -> None:
    r = render(RESTORE)
    for tier in TIERS:
        patroni = patroni_yaml(r, tier)
        assert patroni["bootstrap"]["method"] == "pgbackrest"
        assert patroni["bootstrap"]["pgbackrest"] == {
            "command": "/usr/local/bin/strata-pgbackrest restore",
            "keep_existing_recovery_conf": True,
            "no_params": True,
        }
        sts = r.get("StatefulSet", f"strata-{tier}")
        e = env(containers(sts)["postgresql"])
        assert e["STRATA_RESTORE_STANZA"] == f"strata-prod-{tier}"
        assert e["STRATA_RESTORE_CONFIG"] == "/etc/pgbackrest-restore/pgbackrest.conf"
        target = "2026-12-01 17:30:00+00" if tier.endswith("critical") else ""
        assert e["STRATA_RESTORE_TARGET_TIME"] == target
        conf = pgbackrest_config(r, tier, "restore.conf")
        g = options(conf)
        assert g["repo1-host"] == "strata-prod-pgbackrest"
        assert g["repo1-host-cert-file"] == "/etc/pgbackrest-restore-tls/tls.crt"
        assert options(conf, f"strata-prod-{tier}")["pg1-path"] == "/var/lib/postgresql/data/pgdata"
        source = next(v for v in pod_spec(sts)["volumes"] if v["name"] == "pgbackrest-restore-tls")
        assert source["secret"]["secretName"] == "strata-prod-pgbackrest-tls"
        labels = sts["spec"]["template"]["metadata"]["labels"]
        assert labels["pgbackrest.strata.io/strata-prod-pgbackrest"] == "client"
        egress = r.get("NetworkPolicy", f"strata-{tier}-pgbackrest")["spec"]["egress"]
        assert {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "pgbackrest",
                "app.kubernetes.io/instance": "strata-prod"}}} in egress[0]["to"]  # fmt: skip
        # The restored cluster archives into its own stanza, in its own repository.
        assert options(pgbackrest_config(r, tier, "pgbackrest.conf"))["repo1-host"] == (
            "strata-pgbackrest"
        )
    # replicas: 1 works: no synchronous replication to wait for.
    dcs = json.loads(
        r.get("ConfigMap", "strata-postgresql-critical-patroni")["data"]["dynamic.json"]
    )
    assert dcs["synchronous_mode"] is False
    # The defaults derive every name from fromRelease; the own repository when it is empty.
    derived = render(None, sets=("postgresqlCritical.restore.enabled=true",
                                 "postgresqlCritical.restore.fromRelease=old"))  # fmt: skip
    sts = derived.get("StatefulSet", "strata-postgresql-critical")
    source = next(v for v in pod_spec(sts)["volumes"] if v["name"] == "pgbackrest-restore-tls")
    assert source["secret"]["secretName"] == "old-strata-pgbackrest-tls"
    assert env(containers(sts)["postgresql"])["STRATA_RESTORE_STANZA"] == (
        "old-strata-postgresql-critical"
    )
    own = render(None, sets=("postgresqlCritical.restore.enabled=true",))
    conf = pgbackrest_config(own, "postgresql-critical", "restore.conf")
    assert options(conf)["repo1-host"] == "strata-pgbackrest"
    assert "strata-postgresql-critical" in ini(conf)


def test_backups_off_renders_nothing_of_them(render: RenderFn) -> None:
    r = render(None, sets=("backup.enabled=false",))
    assert r.kind("CronJob") == []
    assert "strata-pgbackrest" not in r.names("StatefulSet")
    assert not [n for n in r.names("Secret") if "pgbackrest" in n]
    assert not [n for n in r.names("ConfigMap") if "pgbackrest" in n]
    assert not [p for p in r.kind("Pod") if "archiving" in p["metadata"]["name"]]
    for tier in TIERS:
        assert list(containers(r.get("StatefulSet", f"strata-{tier}"))) == ["postgresql", EXPORTER]
        patroni = patroni_yaml(r, tier)
        assert "archive_command" not in patroni["postgresql"]["parameters"]
        assert "create_replica_methods" not in patroni["postgresql"]
        assert [p["port"] for p in r.get("Service", f"strata-{tier}")["spec"]["ports"]] == [5432]


def test_network_policies_of_backups(render: RenderFn) -> None:
    r = render(None)
    host = r.get("NetworkPolicy", "strata-pgbackrest")["spec"]
    assert host["policyTypes"] == ["Ingress"]
    (rule,) = host["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"pgbackrest.strata.io/strata-pgbackrest": "client"}}}
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8432}]
    for tier in TIERS:
        members = r.get("NetworkPolicy", f"strata-{tier}-pgbackrest")["spec"]
        from_jobs, from_monitoring = members["ingress"]
        assert from_jobs["from"][0]["podSelector"]["matchLabels"][
            "app.kubernetes.io/component"
        ] == (f"{tier}-backup")
        assert from_jobs["ports"] == [{"protocol": "TCP", "port": 8432}]
        assert from_monitoring["ports"] == [{"protocol": "TCP", "port": 9854}]
        (to_host,) = members["egress"]
        assert to_host["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
            "pgbackrest"
        )
        jobs = r.get("NetworkPolicy", f"strata-{tier}-backup")["spec"]
        assert jobs["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == f"{tier}-backup"
        (to_members,) = jobs["egress"]
        assert (
            to_members["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == tier
        )
        assert "ingress" not in jobs  # nothing reaches a backup Job
    off = render(str(CHART / "ci" / "networkpolicy-off-values.yaml"))
    assert off.kind("NetworkPolicy") == []


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["backup.repository.type=s3"], "needs backup.repository.s3.bucket, endpoint and region"),
        (
            ["backup.repository.type=s3", "backup.repository.s3.bucket=b",
             "backup.repository.s3.endpoint=e", "backup.repository.s3.region=r"],
            "needs backup.repository.s3.existingSecret",
        ),
        (["backup.repository.type=gcs"], "needs backup.repository.gcs.bucket"),
        (["backup.repository.type=azure"], "needs backup.repository.azure.account"),
        (
            ["postgresqlCritical.restore.enabled=true", "postgresqlCritical.enabled=false",
             "postgresqlCritical.external.host=db", "postgresqlCritical.auth.ownerPassword=x"],
            "postgresqlCritical.restore needs the bundled PostgreSQL",
        ),
        (
            ["postgresqlMl.restore.enabled=true", "postgresqlMl.restore.fromRelease=strata"],
            "postgresqlMl.restore.fromRelease names this release",
        ),
        (
            ["postgresqlMl.restore.enabled=true", "postgresqlMl.backup.enabled=false"],
            "postgresqlMl.restore from this release's own repository needs backups on",
        ),
    ],
)  # fmt: skip
def test_validation_of_backup_values(helm: str, sets: list[str], message: str) -> None:
    args = ["template", "strata", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (["postgresqlCritical.backup.schedule.full=every sunday"], "full"),
        (["postgresqlCritical.restore.targetTime=yesterday"], "targetTime"),
        (["postgresqlCritical.restore.targetTime=2026-12-01 17:30"], "targetTime"),
        (["backup.compression.type=xz"], "type"),
        (["backup.repository.pvc.accessModes={ReadWriteOncePod}"], "accessModes"),
        (["backup.repository.type=nfs"], "type"),
        (["postgresqlCritical.backup.retention.full=0"], "full"),
        (["backup.metrics.port=8432"], "port"),
    ],
)
def test_schema_rejects_bad_backup_values(helm: str, sets: list[str], field: str) -> None:
    args = ["template", "strata", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode != 0, sets
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert field in proc.stderr


def test_every_backup_value_is_documented() -> None:
    """The generic checks (test_values) cover backup.*; the README explains the design."""
    readme = (CHART / "README.md").read_text()
    for heading in (
        "## Backups and point-in-time recovery",
        "### Restore to a point in time",
        "### Why a repository host",
    ):
        assert heading in readme, heading
