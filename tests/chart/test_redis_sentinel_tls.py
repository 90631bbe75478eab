"""redis.mode=sentinel with redis.tls.server: every Redis and Sentinel port serves TLS only, every
connection in the pods (replication, Sentinel, probes, scripts, exporter) is TLS, and the cache
uses rediss:// and TLS to the Sentinels (charts/strata/README.md, "TLS to the stores")."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from services.devstack.tls import ServerTls
from tests.support.sentinel import tls_lines

from .conftest import (
    CHART,
    Render,
    RenderFn,
    all_containers,
    pod_spec,
    projected_items,
    refusal,
)

SENTINEL = str(CHART / "ci" / "sentinel-values.yaml")
SENTINEL_TLS = str(CHART / "ci" / "sentinel-tls-values.yaml")
TLS_DIR = "/etc/strata-tls"
CLI_TLS = f"--tls --cacert {TLS_DIR}/ca.crt"
MOUNT = "/var/run/secrets/strata"
HANDOVER = (CHART / "files" / "redis-handover.sh").read_text().rstrip()
FIND_MASTER = (CHART / "files" / "redis-find-master.sh").read_text().rstrip()
#: Every redis-cli call of a script, with the options that follow it.
CLI_CALL = re.compile(r"redis-cli\b[^\n|)]*")


def redis_pod(r: Render) -> dict[str, Any]:
    return pod_spec(r.get("StatefulSet", "strata-redis"))


def by_name(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in all_containers(spec)}


def scripts(c: dict[str, Any]) -> list[str]:
    """The shell scripts a container runs: command, probes and preStop (handover file left out:
    it takes its TLS from HANDOVER_TLS_CA, checked on its own)."""
    found = [c["command"][2]] if c.get("command", [])[:2] == ["sh", "-c"] else []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        cmd = c.get(probe, {}).get("exec", {}).get("command", [])
        found += cmd[-1:]
    hook = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    found += [script.replace(HANDOVER, "") for script in hook[-1:]]
    return found


def as_directives(args: list[str]) -> list[str]:
    """redis-server's ``--name value`` arguments as config-file lines."""
    return [f"{name[2:]} {value}" for name, value in zip(args[::2], args[1::2], strict=True)]


def chart_tls() -> ServerTls:
    return ServerTls(
        cert_file=f"{TLS_DIR}/tls.crt", key_file=f"{TLS_DIR}/tls.key", ca_file=f"{TLS_DIR}/ca.crt"
    )


def unquoted(lines: list[str]) -> list[str]:
    """tests/support/sentinel.py hex-quotes file names; the chart's are plain."""
    out = []
    for line in lines:
        name, _, value = line.partition(" ")
        if value.startswith('"'):
            value = bytes.fromhex(value.strip('"').replace("\\x", "")).decode()
        out.append(f"{name} {value}")
    return out


def test_redis_serves_tls_only_and_replicates_over_it(render: RenderFn) -> None:
    """The directives are exactly those the integration tests run real servers with
    (tests/support/sentinel.py tls_lines: tests/integration/cache/test_tls.py, test_handover.py)."""
    redis = by_name(redis_pod(render(SENTINEL_TLS)))["redis"]
    lines = as_directives(redis["args"])
    tls = [line for line in lines if line.startswith(("port ", "tls-"))]
    assert tls == unquoted(tls_lines(chart_tls(), 6379))
    assert "port 6379" not in lines  # no plain-text port at all
    assert redis["ports"] == [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}]


def test_sentinel_serves_tls_only_and_reaches_its_peers_over_it(render: RenderFn) -> None:
    script = by_name(redis_pod(render(SENTINEL_TLS)))["sentinel"]["command"][2]
    echoed = re.findall(r'^\s*echo "((?:port|tls-)[^"]*)"$', script, re.M)
    assert echoed == unquoted(tls_lines(chart_tls(), 26379))
    assert 'echo "port 26379"' not in script
    # Written afresh at every start: none of it is carried over from the file Sentinel rewrote.
    assert "tls" not in script.rsplit("awk -v name=", 1)[1]


def test_every_redis_cli_in_the_pod_speaks_tls(render: RenderFn) -> None:
    pod = by_name(redis_pod(render(SENTINEL_TLS)))
    # files/redis-find-master.sh in both containers takes its TLS options from FIND_TLS_CA.
    embedded = textwrap.indent(FIND_MASTER, "  ")
    for name in ("redis", "sentinel"):
        script = pod[name]["command"][2]
        assert f"  export FIND_TLS_CA={TLS_DIR}/ca.crt\n{embedded}\n)" in script, name
    body = FIND_MASTER.split("ask() {", 1)[1].split("\n}", 1)[0]
    assert 'set -- --tls --cacert "$FIND_TLS_CA" "$@"' in body
    # Every other call is written out: the two readiness probes.
    calls = [
        call
        for name in ("redis", "sentinel")
        for script in scripts(pod[name])
        for call in CLI_CALL.findall(script.replace(embedded, ""))
    ]
    assert len(calls) == 2, calls
    for call in calls:
        assert call.startswith(f"redis-cli {CLI_TLS} "), call
    hook = pod["redis"]["lifecycle"]["preStop"]["exec"]["command"][-1]
    assert f"export HANDOVER_TLS_CA={TLS_DIR}/ca.crt\n" in hook
    assert hook.rstrip().endswith(HANDOVER)
    # The handover's own calls take their TLS options from HANDOVER_TLS_CA.
    for fn in ("local_cli() {", "sentinel_cli() ("):
        body = HANDOVER.split(fn, 1)[1].split("\n}" if fn.endswith("{") else "\n)", 1)[0]
        assert 'set -- --tls --cacert "$HANDOVER_TLS_CA" "$@"' in body, fn
    # Liveness and startup stay TCP connects: they need no handshake.
    for name in ("redis", "sentinel"):
        for probe in ("startupProbe", "livenessProbe"):
            assert "tcpSocket" in pod[name][probe]


def test_plain_sentinel_mode_has_no_tls(render: RenderFn) -> None:
    r = render(SENTINEL)
    spec = redis_pod(r)
    pod = by_name(spec)
    assert as_directives(pod["redis"]["args"])[0] == "port 6379"
    assert 'echo "port 26379"' in pod["sentinel"]["command"][2]
    embedded = textwrap.indent(FIND_MASTER, "  ")  # plain text unless FIND_TLS_CA is set
    for name in ("redis", "sentinel"):
        for s in scripts(pod[name]):
            s = s.replace(embedded, "")
            assert "--tls" not in s and "tls-" not in s and "HANDOVER_TLS_CA" not in s
            assert "FIND_TLS_CA" not in s
    assert "server-tls" not in {v["name"] for v in spec["volumes"]}
    data = r.get("ConfigMap", "strata-cache")["data"]
    assert data["STRATA_CACHE_REDIS_URL"] == "redis://strata-redis:6379/0"
    assert "STRATA_CACHE_REDIS_SENTINEL_TLS" not in data


def volume(spec: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [v for v in spec["volumes"] if v["name"] == name]
    return found


@pytest.mark.parametrize(
    ("sets", "ca"),
    [
        ((), ("secret", "strata-redis-tls", "ca.crt")),  # the Secret's ca.crt (cert-manager)
        (("redis.tls.ca.existingConfigMap=redis-ca",), ("configMap", "redis-ca", "ca.crt")),
        (
            ("redis.tls.ca.existingSecret=my-ca", "redis.tls.ca.key=bundle.pem"),
            ("secret", "my-ca", "bundle.pem"),
        ),
    ],
)
def test_key_pair_and_ca_are_mounted_in_redis_and_sentinel_only(
    render: RenderFn, sets: tuple[str, ...], ca: tuple[str, str, str]
) -> None:
    r = render(SENTINEL_TLS, sets=sets)
    spec = redis_pod(r)
    vol = volume(spec, "server-tls")
    assert vol["projected"]["defaultMode"] == 0o440
    assert projected_items(vol) == {
        "tls.crt": ("secret", "strata-redis-tls", "tls.crt"),
        "tls.key": ("secret", "strata-redis-tls", "tls.key"),
        "ca.crt": ca,
    }
    for name, c in by_name(spec).items():
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        if name in ("redis", "sentinel"):
            assert mounts["server-tls"] == {
                "name": "server-tls",
                "mountPath": TLS_DIR,
                "readOnly": True,
            }
        else:
            assert "server-tls" not in mounts, name
    # The cache verifies with the same CA.
    cache = pod_spec(r.get("Deployment", "strata-cache"))
    assert projected_items(volume(cache, "secrets"))["redis-ca.crt"] == ca


def test_exporter_scrapes_over_tls(render: RenderFn) -> None:
    pod = by_name(redis_pod(render(SENTINEL_TLS)))
    env = {e["name"]: e["value"] for e in pod["redis-exporter"]["env"]}
    assert env["REDIS_ADDR"] == "rediss://127.0.0.1:6379"
    # Loopback: encrypted, its certificate (issued to the pod names) not checked, as standalone.
    assert env["REDIS_EXPORTER_SKIP_TLS_VERIFICATION"] == "true"
    assert '"rediss://127.0.0.1:6379"' in pod["redis-exporter-auth"]["command"][-1]


def test_cache_uses_rediss_and_tls_to_the_sentinels(
    render: RenderFn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the chart renders passes the cache's settings and turns TLS on for both the master
    connections and the Sentinel queries (services/cache/sentinel.py)."""
    from services.cache.settings import CacheSettings
    from tests.support.testca import make_ca

    r = render(SENTINEL_TLS)
    data = r.get("ConfigMap", "strata-cache")["data"]
    assert data["STRATA_CACHE_REDIS_URL"] == "rediss://strata-redis:6379/0"
    assert data["STRATA_CACHE_REDIS_SENTINEL_TLS"] == "true"
    (cache,) = pod_spec(r.get("Deployment", "strata-cache"))["containers"]
    env = {e["name"]: e["value"] for e in cache["env"] if "value" in e}
    assert env["STRATA_CACHE_REDIS_TLS_CA_FILE"] == f"{MOUNT}/redis-ca.crt"

    ca = make_ca(tmp_path / "ca").ca_file
    for name, value in {**data, **env}.items():
        if name.startswith("STRATA_CACHE_REDIS_") and not name.endswith("PASSWORD_FILE"):
            monkeypatch.setenv(name, ca if value.startswith(MOUNT) else value)
    settings = CacheSettings(environment="development")
    assert settings.redis_sentinel_tls is True and settings.redis_scheme == "rediss"
    sentinel = settings.sentinel_options()
    assert sentinel["ssl"] is True and sentinel["ssl_ca_certs"] == ca


def test_the_standalone_only_refusal_is_gone(helm: str, render: RenderFn) -> None:
    render(SENTINEL_TLS)  # renders: validateValues accepts it
    message = refusal(helm, ["redis.mode=sentinel", "redis.tls.server.enabled=true"])
    assert "redis.tls.server.enabled needs redis.tls.server.existingSecret" in message
    assert "standalone mode only" not in message
