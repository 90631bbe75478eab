"""What differs between the clusters proofs.py runs against, behind one small interface.

proofs.py talks to every cluster through kubectl and helm; only three things depend on where
the node is: the address at which its NodePorts answer from this host, how a container's
process is SIGKILLed on the node (a crash, not a graceful stop), and whether NetworkPolicies
are enforced (then the harness's own traffic needs a policy that lets it in, and the
NetworkPolicy proofs run).

- ``host``: the single-node cluster of tests/e2e/cluster (the node is this host; NodePorts on
  127.0.0.1; ctr on the harness's containerd socket; NetworkPolicies not enforced).
- ``kind``: a kind node, a Docker container (NodePorts on its address on the kind network;
  ctr through ``docker exec``; NetworkPolicies enforced by the node's CNI).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
from dataclasses import dataclass
from typing import Protocol

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClusterAdapter(Protocol):
    """The node-specific operations the proofs need."""

    name: str
    enforces_network_policy: bool

    def node_address(self) -> str:
        """The address at which the node's NodePorts answer from this host."""
        ...

    def allowed_networks(self) -> list[Network]:
        """Where the proofs may send HTTP traffic (guard() refuses anything else)."""
        ...

    def harness_cidr(self) -> str:
        """The source range of the proofs' own traffic as the node's pods see it."""
        ...

    def kill_container(self, container_id: str) -> None:
        """SIGKILL the process of a container (its CRI id) on the node."""
        ...

    def describe(self) -> str:
        """One line for the report: which cluster this is."""
        ...


def _run(cmd: list[str], timeout: float = 60) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({p.returncode}): {p.stderr[-1000:]}")
    return p.stdout


@dataclass
class HostAdapter:
    """The node is this host (tests/e2e/cluster/up.sh)."""

    containerd_sock: str
    name: str = "host"
    enforces_network_policy: bool = False

    def node_address(self) -> str:
        return "127.0.0.1"

    def allowed_networks(self) -> list[Network]:
        return [ipaddress.ip_network("127.0.0.0/8")]

    def harness_cidr(self) -> str:
        return "127.0.0.0/8"

    def kill_container(self, container_id: str) -> None:
        ctr = ["ctr", "-a", self.containerd_sock, "-n", "k8s.io"]
        _run([*ctr, "tasks", "kill", "-s", "SIGKILL", container_id], timeout=30)

    def describe(self) -> str:
        return f"single-node cluster on this host (containerd {self.containerd_sock})"


@dataclass
class KindAdapter:
    """The node is the Docker container ``node`` of a kind cluster."""

    node: str
    docker: str = "docker"
    name: str = "kind"
    enforces_network_policy: bool = True

    def _inspect(self) -> dict[str, str]:
        """The node's address and its network's subnet (the first network it is on)."""
        out = _run([self.docker, "inspect", self.node])
        networks = json.loads(out)[0]["NetworkSettings"]["Networks"]
        net_name, net = next(iter(networks.items()))
        subnet = ""
        cfg = json.loads(_run([self.docker, "network", "inspect", net_name]))[0]["IPAM"]["Config"]
        for c in cfg:
            if ":" not in c.get("Subnet", ":"):
                subnet = c["Subnet"]
        return {"ip": net["IPAddress"], "subnet": subnet or f"{net['IPAddress']}/32"}

    def node_address(self) -> str:
        return self._inspect()["ip"]

    def allowed_networks(self) -> list[Network]:
        return [
            ipaddress.ip_network("127.0.0.0/8"),
            ipaddress.ip_network(f"{self.node_address()}/32"),
        ]

    def harness_cidr(self) -> str:
        # kube-proxy masquerades NodePort traffic only after the policy hook, so pods see the
        # host's address on the kind network.
        return self._inspect()["subnet"]

    def kill_container(self, container_id: str) -> None:
        ctr = [self.docker, "exec", self.node, "ctr", "-n", "k8s.io"]
        _run([*ctr, "tasks", "kill", "-s", "SIGKILL", container_id], timeout=30)

    def describe(self) -> str:
        return f"kind node {self.node} ({self.node_address()})"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The command-line options that choose and configure the adapter."""
    ap.add_argument("--adapter", choices=("host", "kind"), default="host")
    ap.add_argument("--containerd-sock", help="host adapter: the node's containerd socket")
    ap.add_argument("--kind-node", help="kind adapter: the node container's name")
    ap.add_argument("--docker", default="docker", help="kind adapter: the docker client")


def from_args(args: argparse.Namespace) -> ClusterAdapter:
    """The adapter the options describe."""
    if args.adapter == "kind":
        if not args.kind_node:
            raise SystemExit("--adapter kind needs --kind-node")
        return KindAdapter(node=args.kind_node, docker=args.docker)
    if not args.containerd_sock:
        raise SystemExit("--adapter host needs --containerd-sock")
    return HostAdapter(containerd_sock=args.containerd_sock)
