"""The chart's sentinel-mode redis-cli calls (redis.tls.server) run against real TLS-only servers.

The start scripts as a whole need what only a pod has: its own address for the fixed ports
6379 and 26379 (they bind every address), the cluster DNS names Redis and Sentinel announce,
and /data, /run/redis and /etc/strata-tls; they run in the cluster proof. What the pod sends
to Redis and Sentinel runs here: every redis-cli call written out in the rendered redis and
sentinel containers (the readiness probes), with the pod's CA path, host and ports mapped
onto a loopback set serving TLS only with the same directives
(tests/chart/test_redis_sentinel_tls.py pins them). Each call gets its answer with the CA the
pod mounts, and none without it or in plain text. The start scripts' questions to the other
pods' Sentinels are files/redis-find-master.sh, embedded verbatim with FIND_TLS_CA set to
the pod's CA: test_find_master.py runs that file over TLS, with the right CA and a wrong one.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.chart.helm_binary import find_helm
from tests.support.sentinel import SentinelSet
from tests.support.testca import TestCa

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[3] / "charts" / "strata"
CA_IN_POD = "/etc/strata-tls/ca.crt"
CLI_CALL = re.compile(r"redis-cli\b[^\n|)]*")
FIND_MASTER = (CHART / "files" / "redis-find-master.sh").read_text().rstrip()


def rendered_calls() -> list[str]:
    """Every redis-cli call written out in the redis and sentinel containers' scripts and
    probes (the embedded files/redis-find-master.sh aside)."""
    args = [find_helm(), "template", "strata", str(CHART), "--namespace", "strata"]
    args += ["-f", str(CHART / "ci" / "sentinel-tls-values.yaml")]
    args += ["--show-only", "templates/redis/statefulset-sentinel.yaml"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    (sts,) = [d for d in yaml.safe_load_all(proc.stdout) if d]
    calls = []
    for c in sts["spec"]["template"]["spec"]["containers"]:
        if c["name"] in ("redis", "sentinel"):
            scripts = [c["command"][2], c["readinessProbe"]["exec"]["command"][-1]]
            embedded = textwrap.indent(FIND_MASTER, "  ")
            calls += [call for s in scripts for call in CLI_CALL.findall(s.replace(embedded, ""))]
    return calls


@pytest.fixture(scope="module")
def tls_set(test_ca: TestCa) -> Iterator[SentinelSet]:
    servers = SentinelSet(replicas=1, tls=test_ca.issue("chart-calls"), sentinel_tls=True).start()
    try:
        yield servers
    finally:
        servers.stop()


def run(call: str, servers: SentinelSet, ca: str | None) -> subprocess.CompletedProcess[str]:
    """``call`` as the pod runs it, on the loopback set: the master for 6379, Sentinel 0 for
    26379, ``ca`` for the pod's CA file (None: the TLS options dropped, plain text)."""
    sentinel = "-p 26379" in call
    port = servers.sentinel_ports[0] if sentinel else servers.master_port()
    local = call.replace('"$host"', "127.0.0.1").replace("-p 26379", f"-p {port}")
    local = local.replace("-p 6379", f"-p {port}")
    local = (
        local.replace(CA_IN_POD, ca) if ca else local.replace(f" --tls --cacert {CA_IN_POD}", "")
    )
    env = {
        **os.environ,
        "REDISCLI_AUTH": servers.sentinel_password if sentinel else servers.password,
    }
    return subprocess.run(
        ["sh", "-c", local], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_every_call_is_answered_over_tls_with_the_pods_ca(
    tls_set: SentinelSet, wrong_ca: TestCa
) -> None:
    calls = rendered_calls()
    assert len(calls) == 2, calls  # the two readiness probes
    assert tls_set.tls is not None
    for call in calls:
        done = run(call, tls_set, tls_set.tls.ca_file)
        assert done.returncode == 0, (call, done.stderr)
        if " ping" in call:
            assert done.stdout.strip() == "PONG", call
        else:
            raise AssertionError(f"a call this test does not know: {call}")
        for ca in (wrong_ca.ca_file, None):  # an unknown CA, or plain text: no answer
            refused = run(call, tls_set, ca)
            assert "PONG" not in refused.stdout and "127.0.0.1" not in refused.stdout, call
