"""redis.mode=sentinel and external Sentinels: the rendered objects (charts/strata/README.md,
"Redis Sentinel")."""

from __future__ import annotations

import shlex
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHART, Render, RenderFn, pod_spec, refusal, run_helm

SENTINEL = str(CHART / "ci" / "sentinel-values.yaml")
EXTERNAL = str(CHART / "ci" / "external-sentinel-values.yaml")
DOMAIN = "strata-redis-hl.strata.svc.cluster.local"
PODS = [f"strata-redis-{i}.{DOMAIN}" for i in range(3)]
FIND_MASTER = (CHART / "files" / "redis-find-master.sh").read_text().rstrip()


def containers(r: Render) -> dict[str, dict[str, Any]]:
    spec = pod_spec(r.get("StatefulSet", "strata-redis"))
    return {c["name"]: c for c in spec["containers"]}


def cache_config(r: Render) -> dict[str, str]:
    data: dict[str, str] = r.get("ConfigMap", "strata-cache")["data"]
    return data


def test_statefulset_keeps_standalones_identity(render: RenderFn) -> None:
    """Same name, serviceName, selector and volume claims: a release can switch in place."""
    standalone = render(None).get("StatefulSet", "strata-redis")["spec"]
    sentinel = render(SENTINEL).get("StatefulSet", "strata-redis")["spec"]
    assert sentinel["replicas"] == 3 and standalone["replicas"] == 1
    for field in ("serviceName", "selector", "volumeClaimTemplates"):
        assert sentinel[field] == standalone[field], field
    assert sentinel.get("podManagementPolicy") == standalone.get("podManagementPolicy")


def test_redis_and_sentinel_containers(render: RenderFn) -> None:
    r = render(SENTINEL)
    c = containers(r)
    assert set(c) == {"redis", "sentinel", "redis-exporter"}  # metrics.redisExporter
    redis, sentinel = c["redis"]["command"][2], c["sentinel"]["command"][2]
    for script in (redis, sentinel):
        # stable names, never pod IPs; the master decided from Sentinel, the volume, pod 0
        assert f'me="${{HOSTNAME:-$(hostname)}}.{DOMAIN}"' in script
        # files/redis-find-master.sh decides, in a subshell (tests/integration/cache/
        # test_find_master.py runs it): the Sentinels of the two other pods, the volume, pod 0
        finder = script.split("master=$(\n", 1)[1].split("\n)\n", 1)[0]
        assert finder.endswith(textwrap.indent(FIND_MASTER, "  "))
        assert 'export FIND_SELF="$me 6379"' in finder
        assert f'FIND_FIRST="{PODS[0]} 6379"' in finder
        assert "for i in $(seq 0 2)" in finder
        assert '[ "$host" = "$me" ] || FIND_SENTINELS="$FIND_SENTINELS $host:26379"' in finder
        # bounded wait: twice failover-timeout
        assert 'FIND_MASTER="mymaster" FIND_WAIT=40' in finder
        assert "FIND_SENTINEL_CONF=/data/sentinel/sentinel.conf" in finder
        assert 'FIND_SENTINEL_AUTH="$spw"' in finder
        assert "REDISCLI_AUTH" not in script.replace(finder, ""), "only inside the subshell"
    assert 'echo "replica-announce-ip $me"' in redis
    assert 'echo "requirepass $pwq"' in redis and 'echo "masterauth $pwq"' in redis
    assert 'if [ "$master" != "$me 6379" ]; then echo "replicaof $master"; fi' in redis
    assert "min-replicas-to-write 0" in redis
    assert redis.rstrip().endswith('exec redis-server "$conf" "$@"')
    assert " ".join(c["redis"]["args"]).count("--appendonly yes --appendfsync everysec") == 1
    for line in (
        "sentinel resolve-hostnames yes",
        "sentinel announce-hostnames yes",
        "sentinel announce-ip $me",
        "requirepass $spwq",
        "sentinel monitor mymaster $master 2",
        "sentinel auth-pass mymaster $pwq",
        "sentinel down-after-milliseconds mymaster 5000",
    ):
        assert f'echo "{line}"' in sentinel, line
    assert sentinel.rstrip().endswith('exec redis-server "$conf" --sentinel')
    assert c["sentinel"]["ports"] == [
        {"name": "sentinel", "containerPort": 26379, "protocol": "TCP"}
    ]
    mounts = {m["mountPath"] for m in c["sentinel"]["volumeMounts"]}
    assert "/data" in mounts, "Sentinel rewrites its config: it lives on the volume"


def test_a_stopping_master_hands_over(render: RenderFn) -> None:
    """The redis container's preStop runs files/redis-handover.sh as the integration test
    runs it (tests/integration/cache/test_handover.py), with this pod's inputs."""
    hook = containers(render(SENTINEL))["redis"]["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[:2] == ["sh", "-c"]
    script = hook[2]
    assert script.rstrip().endswith((CHART / "files" / "redis-handover.sh").read_text().rstrip())
    for line in (
        'export REDISCLI_AUTH="$pw"',
        'export HANDOVER_SENTINEL_AUTH="$spw"',
        f'me="${{HOSTNAME:-$(hostname)}}.{DOMAIN}"',
        'export HANDOVER_SELF="$me 6379" HANDOVER_PORT=6379',
        'export HANDOVER_MASTER="mymaster" HANDOVER_TIMEOUT=10',
        'case $addr in "$me":*) ;; *) HANDOVER_SENTINELS="$HANDOVER_SENTINELS $addr" ;; esac',
    ):
        assert line in script, line
    assert ",".join(f"{pod}:26379" for pod in PODS) in script
    # The hook's write pause must end before the kubelet's deadline, with time to shut down.
    spec = pod_spec(render(SENTINEL).get("StatefulSet", "strata-redis"))
    assert spec["terminationGracePeriodSeconds"] >= 10 + 10
    off = render(SENTINEL, sets=("redis.sentinel.handover.enabled=false",))
    assert "lifecycle" not in containers(off)["redis"]
    assert "lifecycle" not in containers(off)["sentinel"]


def test_passwords_are_files_only(render: RenderFn) -> None:
    r = render(SENTINEL)
    spec = pod_spec(r.get("StatefulSet", "strata-redis"))
    for c in spec["containers"] + spec["initContainers"]:
        if c["name"] == "redis-exporter":
            # Plain settings only: its password is a file (REDIS_PASSWORD_FILE).
            assert {e["name"]: set(e) for e in c["env"]} == {
                "REDIS_ADDR": {"name", "value"},
                "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": {"name", "value"},
                "REDIS_PASSWORD_FILE": {"name", "value"},
            }
            continue
        assert "env" not in c and "envFrom" not in c
        cmd = " ".join(c["command"] + c.get("args", []))
        assert "--requirepass" not in cmd and "--masterauth" not in cmd
    keys = {
        item["key"]
        for v in spec["volumes"]
        if "projected" in v
        for src in v["projected"]["sources"]
        for item in src["secret"]["items"]
    }
    assert keys == {"password", "sentinel-password"}
    secret = r.get("Secret", "strata-redis")
    assert set(secret["data"]) == {"password", "sentinel-password"}
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_services_pdb_and_anti_affinity(render: RenderFn) -> None:
    r = render(SENTINEL)
    svc = r.get("Service", "strata-redis")["spec"]
    assert [p["port"] for p in svc["ports"]] == [26379], "never route to a replica's Redis"
    hl = r.get("Service", "strata-redis-hl")["spec"]
    assert hl["clusterIP"] == "None" and hl["publishNotReadyAddresses"] is True
    assert sorted(p["port"] for p in hl["ports"]) == [6379, 26379]
    pdb = r.get("PodDisruptionBudget", "strata-redis")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
    affinity = pod_spec(r.get("StatefulSet", "strata-redis"))["affinity"]["podAntiAffinity"]
    (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    hard = render(SENTINEL, sets=("redis.sentinel.podAntiAffinity=hard",))
    spec = pod_spec(hard.get("StatefulSet", "strata-redis"))
    assert "requiredDuringSchedulingIgnoredDuringExecution" in spec["affinity"]["podAntiAffinity"]
    assert "PodDisruptionBudget" not in {
        d["kind"] for d in render(None).docs if d["metadata"]["name"] == "strata-redis"
    }


def test_network_policies_for_the_sentinel_port(render: RenderFn) -> None:
    nps = {n["metadata"]["name"]: n["spec"] for n in render(SENTINEL).kind("NetworkPolicy")}
    ports = sorted(p["port"] for p in nps["strata-cache"]["egress"][0]["ports"])
    assert ports == [6379, 26379]
    rule, scrape = nps["strata-redis"]["ingress"]
    assert sorted(p["port"] for p in rule["ports"]) == [6379, 26379]
    assert [p["port"] for p in scrape["ports"]] == [9121]  # redis-exporter, from monitoring
    peers = nps["strata-redis-peers"]
    for direction, key in (("ingress", "from"), ("egress", "to")):
        (rule,) = peers[direction]
        (peer,) = rule[key]
        assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
        assert sorted(p["port"] for p in rule["ports"]) == [6379, 26379]
    ext = {n["metadata"]["name"]: n["spec"] for n in render(EXTERNAL).kind("NetworkPolicy")}
    (egress,) = ext["strata-cache"]["egress"]
    assert sorted(p["port"] for p in egress["ports"]) == [6380, 26379, 26380]
    assert "strata-redis-peers" not in ext


def test_cache_finds_the_master_through_sentinel(render: RenderFn) -> None:
    config = cache_config(render(SENTINEL))
    assert config["STRATA_CACHE_REDIS_SENTINELS"] == ",".join(f"{p}:26379" for p in PODS)
    assert config["STRATA_CACHE_REDIS_SENTINEL_MASTER"] == "mymaster"
    env = {e["name"]: e["value"] for e in containers_of_cache(render(SENTINEL))}
    assert env["STRATA_CACHE_REDIS_SENTINEL_PASSWORD_FILE"].endswith("/sentinel-password")
    ext = cache_config(render(EXTERNAL))
    assert ext["STRATA_CACHE_REDIS_SENTINELS"] == (
        "sentinel-a.redis.example.internal:26379,sentinel-b.redis.example.internal:26379,"
        "sentinel-c.redis.example.internal:26380"
    )
    assert ext["STRATA_CACHE_REDIS_SENTINEL_MASTER"] == "strata-cache"
    assert "STRATA_CACHE_REDIS_SENTINELS" not in cache_config(render(None))
    no_sentinel_auth = render(SENTINEL, sets=("redis.auth.sentinelEnabled=false",))
    env = {e["name"] for e in containers_of_cache(no_sentinel_auth)}
    assert "STRATA_CACHE_REDIS_SENTINEL_PASSWORD_FILE" not in env
    script = containers(no_sentinel_auth)["sentinel"]["command"][2]
    assert "requirepass" not in script and 'spw=""' in script


def containers_of_cache(r: Render) -> list[dict[str, str]]:
    (c,) = pod_spec(r.get("Deployment", "strata-cache"))["containers"]
    return [e for e in c.get("env", []) if "value" in e]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["redis.mode=sentinel", "redis.sentinel.quorum=4"],
            "cannot exceed redis.sentinel.replicas",
        ),
        (
            ["redis.mode=sentinel", "redis.sentinel.minReplicasToWrite=3"],
            "minReplicasToWrite (3) must be below redis.sentinel.replicas (3)",
        ),
        (
            ["redis.mode=sentinel", "redis.terminationGracePeriodSeconds=19"],
            "must be at least redis.sentinel.handover.timeoutSeconds + 10 s to shut down (20)",
        ),
        (
            ["redis.enabled=false", "redis.external.sentinels={s:26379}"],
            "external Sentinels with auth.sentinelEnabled need redis.auth.sentinelPassword",
        ),
    ],
)
def test_validation(helm: str, sets: list[str], message: str) -> None:
    assert message in refusal(helm, sets)


@pytest.mark.parametrize(
    "sets",
    [("redis.mode=cluster",), ("redis.mode=sentinel", "redis.sentinel.replicas=2")],
)
def test_schema_refuses(helm: str, sets: tuple[str, ...]) -> None:
    args = ["template", "strata", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(helm, *args)
    assert proc.returncode != 0 and "schema" in proc.stderr, proc.stderr


def carried_over(script: str, old_conf: str, master: str, tmp: Path) -> list[str]:
    """What the Sentinel's start script carries over from its previous ``sentinel.conf``
    when ``master`` ("<host> <port>") is master: the rendered fragment, run by ``sh`` and
    ``awk``."""
    start = script.index('if [ -f "$conf" ]; then')
    fragment = script[start : script.index("fi\n", start) + 3]
    conf = tmp / "sentinel.conf"
    conf.write_text(old_conf)
    done = subprocess.run(
        ["sh", "-c", f"set -eu\nconf={shlex.quote(str(conf))}\nmaster={shlex.quote(master)}\n"
         + fragment],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def test_a_restarted_sentinel_never_knows_the_master_as_a_replica(
    render: RenderFn, tmp_path: Path
) -> None:
    """The file of a pod that was master lists the others as its replicas. After a
    failover the new master must not be carried over as a known replica: that Sentinel
    then sent the master REPLICAOF itself (proof 15 on kind: writes refused, a second
    failover)."""
    script = containers(render(SENTINEL))["sentinel"]["command"][2]
    old = "\n".join(
        [
            "sentinel myid 0123456789abcdef0123456789abcdef01234567",
            "sentinel current-epoch 3",
            f"sentinel monitor mymaster {PODS[0]} 6379 2",
            "sentinel config-epoch mymaster 2",
            "sentinel leader-epoch mymaster 3",
            f"sentinel known-replica mymaster {PODS[1]} 6379",
            f"sentinel known-replica mymaster {PODS[2]} 6379",
            f"sentinel known-sentinel mymaster {PODS[1]} 26379 abcd",
            "sentinel known-replica other-master 10.0.0.9 6379",
            "port 26379",
        ]
    )
    kept = carried_over(script, old + "\n", f"{PODS[1]} 6379", tmp_path)
    assert kept == [
        "sentinel myid 0123456789abcdef0123456789abcdef01234567",
        "sentinel current-epoch 3",
        "sentinel config-epoch mymaster 2",
        "sentinel leader-epoch mymaster 3",
        f"sentinel known-replica mymaster {PODS[2]} 6379",
        f"sentinel known-sentinel mymaster {PODS[1]} 26379 abcd",
    ]
    # With the master unchanged every replica it knew is kept.
    assert f"sentinel known-replica mymaster {PODS[1]} 6379" in carried_over(
        script, old + "\n", f"{PODS[0]} 6379", tmp_path
    )
