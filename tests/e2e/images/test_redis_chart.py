"""Redis and cache exactly as the Helm chart runs them: the containers, commands, probes and
secret files come from `helm template`, the Secret files are mounted read-only with the mode
and group the kubelet gives them (0440, group = fsGroup).

Proves the chart keeps the Redis password off every command line and out of every process
environment, while redis-server, the readiness probe and the cache service (which reads
STRATA_CACHE_REDIS_PASSWORD_FILE) all authenticate with it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from services.common.auth import mint_token
from tests.chart.helm_binary import find_helm
from tests.e2e.images.dockerlib import (
    REDIS_IMAGE,
    ROOT,
    Container,
    Stack,
    docker,
    wait_for,
    wait_ready,
)

SECRETS_DIR = "/var/run/secrets/strata"
#: Quotes, a backslash, a space and shell syntax, plus the newline `kubectl create secret
#: --from-file` leaves: the start script must neither break on nor change any of it.
PASSWORD = 'pa ss"wo\\rd$(id)' + secrets.token_hex(4)


def _render(*templates: str) -> list[dict[str, Any]]:
    args = [find_helm(), "template", "strata", str(ROOT / "charts" / "strata")]
    repository, tag = REDIS_IMAGE.rsplit(":", 1)
    args += ["--namespace", "strata"]
    args += ["--set", f"redis.image.repository={repository}"]
    args += ["--set-string", f"redis.image.tag={tag}"]
    # redis-server overwrites its argv with a process title; keep the exec'd argv visible in
    # /proc/<pid>/cmdline so the test sees what `ps` would have shown without the title.
    args += ["--set-string", "redis.extraArgs={--set-proc-title,no}"]
    for template in templates:
        args += ["--show-only", template]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _secret_dir(tmp: Path, name: str, files: dict[str, str], gid: int) -> Path:
    """The files of a Secret volume as the kubelet makes them: root:fsGroup, mode 0440."""
    where = tmp / name
    where.mkdir()
    for file, content in files.items():
        path = where / file
        path.write_text(content)
        if os.geteuid() == 0:
            os.chown(path, 0, gid)
            path.chmod(0o440)
        else:  # cannot give the file to the container's group: readable by all instead
            path.chmod(0o444)
    return where


def _run_options(spec: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """docker run options for the pod's securityContext and volumes (emptyDirs as tmpfs)."""
    pod_sc, sc = spec["securityContext"], container["securityContext"]
    options = ["--user", f"{sc['runAsUser']}:{sc['runAsGroup']}"]
    options += ["--group-add", str(pod_sc["fsGroup"])]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    options += ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        if "emptyDir" in volumes.get(mount["name"], {}):
            options += ["--tmpfs", f"{mount['mountPath']}:rw,nosuid,nodev,mode=1777"]
    return options


def _processes(container: Container) -> str:
    """Command lines and environments of every process in the container."""
    script = 'for p in /proc/[0-9]*; do cat "$p/cmdline" "$p/environ" 2>/dev/null; echo; done'
    return container.exec("sh", "-c", script).stdout


def _cli(container: Container, *args: str, auth: str | None = None) -> str:
    env = ["-e", f"REDISCLI_AUTH={auth}"] if auth is not None else []
    proc = docker("exec", *env, container.name, "redis-cli", "--no-auth-warning", *args)
    return (proc.stdout + proc.stderr).strip()


def _redis_run(tmp: Path, password_file: str) -> tuple[str, list[str], list[str], list[str]]:
    """(image, args, docker options, readiness probe) of the chart's Redis container, with
    a Secret file holding ``password_file``."""
    (sts,) = _render("templates/redis/statefulset.yaml")
    spec = sts["spec"]["template"]["spec"]
    # the Redis container itself, not its exporter sidecar
    c = next(x for x in spec["containers"] if x["name"] == "redis")
    secret = {"redis-password": password_file}
    secrets_dir = _secret_dir(tmp, "secrets", secret, spec["securityContext"]["fsGroup"])
    options = _run_options(spec, c)
    options += ["-v", f"{secrets_dir}:{SECRETS_DIR}:ro", "--entrypoint", c["command"][0]]
    args = [*c["command"][1:], *c["args"]]
    return c["image"], args, options, c["readinessProbe"]["exec"]["command"]


@pytest.fixture(scope="module")
def chart_redis(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Container:
    image, args, options, probe = _redis_run(tmp_path_factory.mktemp("redis"), PASSWORD + "\n")
    # the StatefulSet's Service name: the cache ConfigMap's URL points at it
    container = stack.run("chart-redis", image, args, options=options, alias="strata-redis")

    def ready() -> bool:
        container.assert_running()
        return container.exec(*probe, check=False).returncode == 0

    wait_for("the chart's Redis readiness probe", ready, deadline=60)
    return container


def test_redis_password_in_no_command_line_or_environment(chart_redis: Container) -> None:
    config = chart_redis.inspect()["Config"]
    assert PASSWORD not in json.dumps([config["Cmd"], config["Entrypoint"], config["Env"]])
    processes = _processes(chart_redis)
    assert "redis-server" in processes
    assert PASSWORD not in processes
    # The generated config holds it hex-escaped, readable by redis only, in memory.
    listing = chart_redis.exec("ls", "-l", "/run/redis/redis.conf").stdout
    assert listing.startswith("-rw-------"), listing
    assert PASSWORD not in chart_redis.exec("cat", "/run/redis/redis.conf").stdout


def test_redis_refuses_to_start_with_an_empty_password_file(stack: Stack, tmp_path: Path) -> None:
    image, args, options, _ = _redis_run(tmp_path, " \n")
    code, logs = stack.run_to_completion("chart-redis-empty", image, args, options=options)
    assert code != 0
    assert "the password file is empty" in logs


def test_redis_requires_exactly_the_secret_file_password(chart_redis: Container) -> None:
    assert "NOAUTH" in _cli(chart_redis, "set", "k", "v")
    assert "WRONGPASS" in _cli(chart_redis, "ping", auth=PASSWORD + "x")
    assert "WRONGPASS" in _cli(chart_redis, "ping", auth=PASSWORD + "\n")
    assert _cli(chart_redis, "set", "k", "v", auth=PASSWORD) == "OK"
    assert _cli(chart_redis, "config", "get", "appendonly", auth=PASSWORD).split() == [
        "appendonly",
        "yes",
    ]


def test_cache_reads_its_secrets_from_files(
    stack: Stack,
    chart_redis: Container,
    images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The cache Deployment's container: ConfigMap env, *_FILE env, mounted Secret files."""
    docs = _render("templates/cache/configmap.yaml", "templates/cache/deployment.yaml")
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    env = {**configmap["data"], **{e["name"]: e["value"] for e in c["env"]}}
    assert not [k for k in env if k.endswith(("_SECRET", "_PASSWORD"))], env
    jwt_secret = secrets.token_urlsafe(36)
    files = {"jwt-secret": jwt_secret + "\n", "redis-password": PASSWORD + "\n"}
    assert {v.rsplit("/", 1)[1] for k, v in env.items() if k.endswith("_FILE")} == set(files)
    secrets_dir = _secret_dir(
        tmp_path_factory.mktemp("cache"), "secrets", files, spec["securityContext"]["fsGroup"]
    )
    options = [*_run_options(spec, c), "-v", f"{secrets_dir}:{SECRETS_DIR}:ro"]
    cache = stack.run("chart-cache", images["cache"], env=env, options=options, publish=True)
    wait_ready(cache)  # /readyz pings Redis with the password from the file
    assert jwt_secret not in _processes(cache) and PASSWORD not in _processes(cache)
    token = mint_token(
        key=jwt_secret, audience="strata-cache", scopes=("cache:read", "cache:write"), subject="t"
    )
    headers = {"Authorization": f"Bearer {token}"}
    put = requests.put(
        f"{cache.url}/v1/kv/chart-file-secrets", json={"value": 1}, headers=headers, timeout=10
    )
    assert put.status_code == 200, put.text
    assert _cli(chart_redis, "dbsize", auth=PASSWORD) != "0"
