"""The cluster-agnostic parts of the real-cluster proofs (tests/e2e/cluster/adapters.py,
netpol.py): the adapters' node commands against stand-in tools, and the NetworkPolicy proofs'
policy and verdict logic. The proofs themselves run in `make e2e-cluster` / `make e2e-kind`.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "e2e" / "cluster"))
import adapters
import netpol


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_docker(tmp_path: Path) -> Path:
    """A docker client that answers inspect/network inspect and logs exec calls."""
    inspect = [{"NetworkSettings": {"Networks": {"kind": {"IPAddress": "172.18.0.2"}}}}]
    network = [
        {"IPAM": {"Config": [{"Subnet": "fc00:f853:ccd:e793::/64"}, {"Subnet": "172.18.0.0/16"}]}}
    ]
    return _write(
        tmp_path / "docker",
        f"""#!/bin/sh
echo "$*" >> {tmp_path}/docker.log
case "$1 $2" in
  "inspect strata-e2e-control-plane") echo '{json.dumps(inspect)}' ;;
  "network inspect") echo '{json.dumps(network)}' ;;
  "exec strata-e2e-control-plane") exit 0 ;;
  *) echo "unexpected: $*" >&2; exit 3 ;;
esac
""",
    )


def test_kind_adapter_reaches_the_node_on_the_kind_network(fake_docker: Path) -> None:
    a = adapters.KindAdapter(node="strata-e2e-control-plane", docker=str(fake_docker))
    assert a.enforces_network_policy
    assert a.node_address() == "172.18.0.2"
    assert a.harness_cidr() == "172.18.0.0/16", "the IPv4 subnet, not the IPv6 one"
    assert ipaddress.ip_address("172.18.0.2") in a.allowed_networks()[1]
    assert ipaddress.ip_address("172.18.0.3") not in a.allowed_networks()[1]
    a.kill_container("abc123")
    log = (fake_docker.parent / "docker.log").read_text().splitlines()
    assert log[-1] == "exec strata-e2e-control-plane ctr -n k8s.io tasks kill -s SIGKILL abc123"


def test_kind_adapter_reports_a_failing_node_command(fake_docker: Path) -> None:
    a = adapters.KindAdapter(node="gone", docker=str(fake_docker))
    with pytest.raises(RuntimeError, match="failed"):
        a.node_address()


def test_host_adapter_kills_through_the_harness_containerd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "ctr", f'#!/bin/sh\necho "$*" > {tmp_path}/ctr.log\n')
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    a = adapters.HostAdapter(containerd_sock="/run/x.sock")
    assert not a.enforces_network_policy
    assert a.node_address() == "127.0.0.1"
    a.kill_container("c1")
    assert (tmp_path / "ctr.log").read_text().split() == (
        ["-a", "/run/x.sock", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", "c1"]
    )


def test_adapter_from_arguments() -> None:
    ap = argparse.ArgumentParser()
    adapters.add_arguments(ap)
    host = adapters.from_args(ap.parse_args(["--containerd-sock", "/s"]))
    assert isinstance(host, adapters.HostAdapter)
    kind = adapters.from_args(ap.parse_args(["--adapter", "kind", "--kind-node", "n"]))
    assert isinstance(kind, adapters.KindAdapter) and kind.node == "n"
    with pytest.raises(SystemExit):
        adapters.from_args(ap.parse_args(["--adapter", "kind"]))
    with pytest.raises(SystemExit):
        adapters.from_args(ap.parse_args([]))


class FakeCluster:
    release = "strata"
    ns = "strata-e2e"


def test_harness_policy_opens_only_the_services_http_port() -> None:
    pol = netpol.harness_policy(FakeCluster(), ["ml", "critical", "cache"], "172.18.0.0/16")  # type: ignore[arg-type]
    spec = pol["spec"]
    assert spec["policyTypes"] == ["Ingress"], "egress of the pods is untouched"
    assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "strata"}
    (expr,) = spec["podSelector"]["matchExpressions"]
    assert expr["values"] == ["cache", "critical", "ml"], "never the stores"
    (rule,) = spec["ingress"]
    assert rule == {
        "from": [{"ipBlock": {"cidr": "172.18.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": "http"}],
    }


def verdict_proofs(observed: dict[str, dict[str, str]]) -> netpol.NetpolProofs:
    np = netpol.NetpolProofs(FakeCluster(), adapters.HostAdapter("/s"))  # type: ignore[arg-type]

    def connect(source: tuple[str, str, str], targets: Any) -> dict[str, str]:
        return {t: observed[source[1]][t] for t in targets}

    np.connect = connect  # type: ignore[method-assign]
    return np


def test_verdicts_pass_when_every_connection_matches() -> None:
    a, b = ("ns", "pod-a", "c"), ("ns", "pod-b", "c")
    np = verdict_proofs(
        {"pod-a": {"pg:5432": "timeout", "redis:6379": "timeout"}, "pod-b": {"pg:5432": "timeout"}}
    )
    detail = np.verdicts(
        [
            ("a -> pg", a, "pg:5432", "timeout"),
            ("a -> redis", a, "redis:6379", "timeout"),
            ("b -> pg", b, "pg:5432", "timeout"),
        ]
    )
    assert detail == "3 connections, each timeout as the policies intend"
    assert all(line.startswith("ok ") for line in np.checks) and len(np.checks) == 3


def test_verdicts_fail_on_an_open_connection_that_should_be_refused() -> None:
    a = ("ns", "pod-a", "c")
    np = verdict_proofs({"pod-a": {"pg:5432": "open", "redis:6379": "timeout"}})
    with pytest.raises(netpol.NetpolFailed, match="a -> pg: expected timeout, observed open"):
        np.verdicts(
            [("a -> pg", a, "pg:5432", "timeout"), ("a -> redis", a, "redis:6379", "timeout")]
        )
    assert np.checks[0].startswith("MISMATCH") and np.checks[1].startswith("ok")


def test_connect_script_classifies_open_and_refused(tmp_path: Path) -> None:
    """The script that runs inside the pods, run here against local sockets."""
    import socket
    import subprocess

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: the kernel refuses
    try:
        open_t = f"127.0.0.1:{srv.getsockname()[1]}"
        refused_t = f"127.0.0.1:{closed.getsockname()[1]}"
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                netpol.CONNECT_SCRIPT,
                "2",
                open_t,
                refused_t,
                "no-such-host.invalid:1",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    finally:
        srv.close()
        closed.close()
    assert json.loads(out) == {
        open_t: "open",
        refused_t: "refused",
        "no-such-host.invalid:1": "dns",
    }


# ----------------------------------------------------------------------------------------
# what proofs.py runs on each cluster, and the values it reads


def proofs_on(adapter: adapters.ClusterAdapter, values: list[str] | None = None) -> Any:
    import proofs

    args = argparse.Namespace(
        namespace="strata-e2e",
        release="strata",
        kubeconfig="/k",
        helm="helm",
        kubectl="kubectl",
        chart=str(ROOT / "charts" / "strata"),
        values=values,
        busybox_image="bb",
    )
    return proofs.Proofs(args, adapter)


def test_kind_runs_the_host_proofs_plus_the_networkpolicy_proofs() -> None:
    host = proofs_on(adapters.HostAdapter("/s"))
    kind = proofs_on(adapters.KindAdapter(node="n"))
    host_names = [name for name, _, _ in host.steps(netpol.NetpolProofs(host.c, host.adapter))]
    kind_names = [name for name, _, _ in kind.steps(netpol.NetpolProofs(kind.c, kind.adapter))]
    numbers = {name.split(":")[0] for name in host_names}
    assert {f"proof {n}" for n in range(1, 13)} <= numbers, "proofs 1-12 (Patroni, Sentinel)"
    # kind adds the NetworkPolicy proofs and proof 17 (its registry is on kind's network)
    assert [n for n in kind_names if not n.startswith(("netpol:", "proof 17:"))] == host_names
    netpol_steps = [n for n in kind_names if n.startswith("netpol:")]
    assert len(netpol_steps) == 3
    # right after the API is up (proof 2), before the rollouts change the pods
    first = kind_names.index(netpol_steps[0])
    assert kind_names[first - 1].startswith("proof 2:")
    assert kind_names[first + 3].startswith("proof 3:")
    # proof 11 uninstalls the release the others work on: nothing may come after it but
    # proof 17, which installs a release of its own on the node proof 11 freed
    assert host_names[-1].startswith("proof 11:") and kind_names[-2].startswith("proof 11:")
    assert kind_names[-1].startswith("proof 17:")


def test_the_user_path_proofs_run_where_their_add_ons_were_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kind = proofs_on(adapters.KindAdapter(node="n"))
    np = netpol.NetpolProofs(kind.c, kind.adapter)
    monkeypatch.delenv("STRATA_E2E_TRAEFIK_IMAGE", raising=False)
    without = [name.split(":")[0] for name, _, _ in kind.steps(np)]
    assert "proof 15" not in without and "proof 16" not in without
    monkeypatch.setenv("STRATA_E2E_TRAEFIK_IMAGE", "strata-kind/traefik:x")
    names = [name.split(":")[0] for name, _, _ in kind.steps(np)]
    # after the Sentinel upgrade (their --reuse-values keep it), before the backup proofs
    # and proof 11's uninstall
    assert names.index("proof 15") == names.index("proof 12") + 1
    assert names.index("proof 16") == names.index("proof 15") + 1
    assert names.index("proof 13") > names.index("proof 16")
    assert names[-2:] == ["proof 11", "proof 17"]


def test_jwt_secrets_follow_the_values_files_in_order(tmp_path: Path) -> None:
    import proofs

    e2e = str(ROOT / "tests" / "e2e" / "cluster" / "values-e2e.yaml")
    base = proofs.jwt_secrets([e2e])
    assert len(set(base.values())) == 3, "one key per service"
    extra = tmp_path / "extra.yaml"
    extra.write_text("auth: {ml: {secret: other}}\ncache: {redisClient: {socketTimeout: 2}}\n")
    assert proofs.jwt_secrets([e2e, str(extra)]) == {**base, "ml": "other"}
    with pytest.raises(SystemExit):
        proofs.jwt_secrets([str(extra)])


def test_sentinel_bound_follows_the_cache_redis_timeouts(tmp_path: Path) -> None:
    import proof_sentinel

    # the chart's defaults (0.5 s each): queue + connect + socket timeout + slack
    assert proof_sentinel.request_bound([]) == pytest.approx(3.5)
    e2e = str(ROOT / "tests" / "e2e" / "cluster" / "values-e2e.yaml")  # widens both to 2 s
    assert proof_sentinel.request_bound([e2e]) == pytest.approx(8.0)
    later = tmp_path / "values-later.yaml"  # a later file wins, key by key
    later.write_text("cache: {redisClient: {socketTimeout: 3}}\n")
    assert proof_sentinel.request_bound([e2e, str(later)]) == pytest.approx(3 + 2 + 3 + 2)


def test_main_service_is_the_primary_of_a_patroni_tier() -> None:
    names = [
        "strata-postgresql-critical",
        "strata-postgresql-critical-ro",
        "strata-postgresql-critical-hl",
        "strata-postgresql-critical-config",
    ]
    items = [{"metadata": {"name": n}} for n in names]
    assert netpol.main_service(items, "postgresql-critical")["metadata"]["name"] == names[0]
    redis = [{"metadata": {"name": "strata-redis-hl"}}, {"metadata": {"name": "strata-redis"}}]
    assert netpol.main_service(redis, "redis")["metadata"]["name"] == "strata-redis"
    with pytest.raises(netpol.NetpolFailed):
        netpol.main_service(items[1:], "postgresql-critical")
