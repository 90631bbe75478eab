"""The chart's PostgreSQL image (k8s/postgres): what it contains, that Patroni accepts the
configuration the chart renders, and the helper's post-bootstrap step on a real server.

The Patroni cluster itself (Kubernetes DCS, failover, switchover) is proven by
`make e2e-cluster` (tests/e2e/cluster/proof_patroni.py): it needs a Kubernetes API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import CHART, helm, run_helm  # noqa: F401 (the helm fixture)
from tests.e2e.images.dockerlib import LABEL, POSTGRESQL_IMAGE, docker

IMAGE = POSTGRESQL_IMAGE
# Measured at 443 MB on the debootstrap base (PostgreSQL, pgBackRest, Python, Patroni).
SIZE_BUDGET_MB = 480
HARDENED_PG = (
    "--user", "999:999", "--read-only", "--network", "none",
    "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m",
    "--tmpfs", "/var/run/postgresql:rw,nosuid,nodev,mode=1777",
    "--tmpfs", "/var/lib/postgresql/data:rw,nosuid,nodev,uid=999,gid=999,mode=0700,size=256m",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--label", f"{LABEL}=1",
)  # fmt: skip


def run(*args: str, timeout: float = 120) -> str:
    return docker("run", "--rm", *HARDENED_PG, IMAGE, *args, timeout=timeout).stdout


def test_content_versions_and_user(images: dict[str, str]) -> None:
    out = run(
        "sh", "-c",
        "id -u; patroni --version; postgres --version; pgbackrest version; "
        "ls /opt/patroni/bin | grep -c '^pip' || true; command -v gcc cc || echo no-compiler",
    ).split("\n")  # fmt: skip
    assert out[0] == "999"
    assert out[1] == "patroni 4.1.5"
    assert out[2].startswith("postgres (PostgreSQL) 15.")
    assert out[3].startswith("pgBackRest 2.")
    assert out[4] == "0", "pip left in the image"
    assert out[5] == "no-compiler"
    size = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout) / 1e6
    assert size < SIZE_BUDGET_MB, f"{IMAGE} is {size:.0f} MB"


def _rendered(helm: str) -> tuple[dict[str, str], dict[str, str]]:  # noqa: F811
    proc = run_helm(helm, "template", "strata", str(CHART), "--namespace", "strata")
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    (cm,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap"
        and d["metadata"]["name"] == "strata-postgresql-critical-patroni"
    ]
    (sts,) = [
        d
        for d in docs
        if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "strata-postgresql-critical"
    ]
    env: dict[str, str] = {}
    for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]:
        value: Any = e.get("value", "from-a-secret-or-the-pod")
        env[e["name"]] = str(value).replace("$(PATRONI_KUBERNETES_POD_IP)", "10.0.0.5")
    env["PATRONI_NAME"] = "strata-postgresql-critical-0"
    env["PATRONI_KUBERNETES_NAMESPACE"] = "strata"
    env["PATRONI_KUBERNETES_POD_IP"] = "10.0.0.5"
    return cm["data"], env


def test_patroni_accepts_the_charts_configuration(
    images: dict[str, str],
    helm: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    data, env = _rendered(helm)
    conf, secrets = tmp_path / "patroni", tmp_path / "secrets"
    conf.mkdir()
    secrets.mkdir()
    for name, text in data.items():
        (conf / name).write_text(text)
    # The passwords as the chart mounts them (files named by STRATA_PG_*_FILE).
    for var in ("SUPERUSER", "REPLICATION", "RESTAPI", "MONITOR"):  # MONITOR: the exporter's
        path = env[f"STRATA_PG_{var}_PASSWORD_FILE"]
        assert path.startswith("/var/run/secrets/strata/")
        (secrets / Path(path).name).write_text(f"{var.lower()}-password-from-a-file\n")
    for d in (tmp_path, conf, secrets):
        d.chmod(0o755)
        for f in d.iterdir():
            if f.is_file():
                f.chmod(0o644)
    assert json.loads(data["dynamic.json"])["synchronous_mode"] == "quorum"
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    mounts = ("-v", f"{conf}:/etc/patroni:ro", "-v", f"{secrets}:/var/run/secrets/strata:ro")
    proc = docker(
        "run", "--rm", *HARDENED_PG, *mounts, *env_args,
        IMAGE, "patroni", "--validate-config", "/etc/patroni/patroni.yaml", check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The entrypoint hands the files to what it runs; the container's own env has none.
    proc = docker(
        "run", "--rm", *HARDENED_PG, *mounts, *env_args, IMAGE, "sh", "-c",
        'echo "$PATRONI_SUPERUSER_PASSWORD|$PATRONI_REPLICATION_PASSWORD|'
        '$PATRONI_RESTAPI_PASSWORD"', check=False,
    )  # fmt: skip
    assert proc.stdout.strip() == (
        "superuser-password-from-a-file|replication-password-from-a-file|"
        "restapi-password-from-a-file"
    ), proc.stdout + proc.stderr
    proc = docker(
        "run", "--rm", *HARDENED_PG, *mounts, *env_args, "--entrypoint", "sh", IMAGE, "-c",
        'env | grep -c "^PATRONI_.*PASSWORD=" || true', check=False,
    )  # fmt: skip
    assert proc.stdout.strip() == "0", proc.stdout + proc.stderr


def test_post_bootstrap_creates_the_database(images: dict[str, str]) -> None:
    """What Patroni runs after initdb, on a real server in the hardened container."""
    script = (
        "set -e; "
        "initdb -D $PGDATA -U strata_owner --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null; "
        "pg_ctl -D $PGDATA -o '-c listen_addresses= -k /var/run/postgresql' -w start >/dev/null; "
        "STRATA_PG_DATABASE=strata_critical strata-patroni post-bootstrap "
        "'host=/var/run/postgresql user=strata_owner dbname=postgres' >/dev/null; "
        "psql -h /var/run/postgresql -U strata_owner -d postgres -Atc "
        "\"select datname from pg_database where datname = 'strata_critical'\"; "
        "pg_ctl -D $PGDATA -m fast -w stop >/dev/null"
    )
    assert run("sh", "-c", script).strip() == "strata_critical"
