"""NetworkPolicy proofs (run by proofs.py where the cluster enforces NetworkPolicies).

The chart denies all traffic to and from its pods, then allows: DNS; each service to its own
store; the ingress controller, monitoring and the helm test pod to the services. These proofs
open TCP connections from real pods and check each against that intent:

- refused: a pod without the chart's labels cannot reach PostgreSQL, Redis or a service; ml
  and cache cannot reach the critical database; critical cannot reach Redis or ml; monitoring
  may scrape the services but not the stores;
- allowed: each service reaches its store; monitoring reaches the services; the probe pod
  itself is not restricted (it resolves names and reaches kube-dns), so its refusals are not a
  broken pod;
- the policy decides: one extra policy lets the probe reach the critical database, and the
  refusal comes back when it is removed.

A refused connection times out (the policy drops the SYN); an allowed one opens. Every
attempt is bounded by CONNECT_TIMEOUT; the attempts from one pod run concurrently in a
single ``kubectl exec``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters import ClusterAdapter
    from proofs import Cluster

MONITORING_NS = "monitoring"  # what the chart's networkPolicy.monitoring selects by default
PROBE = "e2e-netpol-probe"
CONNECT_TIMEOUT = 3.0
SERVICES = ("critical", "ml", "cache")
STORE_OF = {"critical": "postgresql-critical", "ml": "postgresql-ml", "cache": "redis"}
OPEN, REFUSED = "open", "timeout"

# Runs inside a pod (any image with python3): connect to every HOST:PORT at once, print a JSON
# object {"host:port": "open" | "timeout" | "refused" | "dns" | "error <errno>"}.
CONNECT_SCRIPT = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
timeout, targets = float(sys.argv[1]), sys.argv[2:]
def attempt(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
        return "open"
    except socket.gaierror:
        return "dns"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return f"error {e.errno}"
with ThreadPoolExecutor(len(targets)) as ex:
    print(json.dumps(dict(zip(targets, ex.map(attempt, targets)))))
"""


def harness_policy(cluster: Cluster, components: Iterable[str], cidr: str) -> dict[str, Any]:
    """A NetworkPolicy that lets the proofs' HTTP traffic (from ``cidr``) reach the services.

    NetworkPolicies only add up: this one opens the services' http port to the harness and
    changes nothing the chart's policies decide for pods.
    """
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "e2e-allow-harness", "labels": {"strata-e2e": "harness"}},
        "spec": {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": cluster.release},
                "matchExpressions": [
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": sorted(components),
                    }
                ],
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": cidr}}],
                    "ports": [{"protocol": "TCP", "port": "http"}],
                }
            ],
        },
    }


class NetpolFailed(AssertionError):  # noqa: N818  (reads better in the report)
    """A connection did not get the verdict the policies intend."""


def main_service(items: Sequence[dict[str, Any]], component: str) -> dict[str, Any]:
    """The Service clients use among a component's Services: ``<fullname>-<component>``.

    A Patroni tier also has ``-ro`` (replicas), ``-hl`` (headless) and ``-config`` Services,
    Redis a headless one; the primary Service (Endpoints kept on the leader by Patroni) is
    the one the services connect to, so the one whose policy verdicts matter.
    """
    named = [s for s in items if s["metadata"]["name"].endswith(f"-{component}")]
    if len(named) != 1:
        names = [s["metadata"]["name"] for s in items]
        raise NetpolFailed(f"expected one Service named *-{component}, found {names}")
    return named[0]


class NetpolProofs:
    """The NetworkPolicy proofs against one installed release."""

    def __init__(self, cluster: Cluster, adapter: ClusterAdapter) -> None:
        self.c = cluster
        self.adapter = adapter
        self.checks: list[str] = []  # the report: one line per connection attempt

    # -- cluster helpers
    def target(self, component: str) -> str:
        """host:port of a component's main Service, by its full DNS name."""
        items = self.c.kj("get", "svc", "-l", self.c.sel(component))["items"]
        svc = main_service(items, component)
        host = f"{svc['metadata']['name']}.{self.c.ns}.svc.cluster.local"
        return f"{host}:{svc['spec']['ports'][0]['port']}"

    def dns_target(self) -> str:
        svc = json.loads(
            self.c.run([self.c.kubectl, "-n", "kube-system", "get", "svc", "-o", "json"])
        )
        names = [
            s["metadata"]["name"]
            for s in svc["items"]
            if s["metadata"].get("labels", {}).get("k8s-app") == "kube-dns"
        ]
        if not names:
            raise NetpolFailed("no kube-dns Service in kube-system")
        return f"{names[0]}.kube-system.svc.cluster.local:53"

    def pod_of(self, component: str) -> tuple[str, str, str]:
        """(namespace, pod, container) of a ready pod of a chart component."""
        ready = sorted(self.c.ready_pod_names(component))
        if not ready:
            raise NetpolFailed(f"no ready {component} pod")
        pod = self.c.kj("get", "pod", ready[0])
        return self.c.ns, ready[0], pod["spec"]["containers"][0]["name"]

    def ensure_probe(self, namespace: str) -> tuple[str, str, str]:
        """A pod without the chart's labels in ``namespace``, running the critical image."""
        image_spec = self.c.deployments()["critical"]["spec"]["template"]["spec"]["containers"][0]
        spec = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": PROBE, "labels": {"strata-e2e": "probe"}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": False,
                "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "runAsNonRoot": True},
                "containers": [
                    {
                        "name": "probe",
                        "image": image_spec["image"],
                        "imagePullPolicy": image_spec.get("imagePullPolicy", "IfNotPresent"),
                        "command": ["python3", "-c", "import time; time.sleep(86400)"],
                    }
                ],
            },
        }
        self.c.run(
            [self.c.kubectl, "apply", "-f", "-"],
            input=json.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            ),
        )
        self.c.run([self.c.kubectl, "-n", namespace, "apply", "-f", "-"], input=json.dumps(spec))
        self.c.run(
            [
                self.c.kubectl,
                "-n",
                namespace,
                "wait",
                "--for=condition=Ready",
                f"pod/{PROBE}",
                "--timeout=90s",
            ]
        )
        return namespace, PROBE, "probe"

    def connect(self, source: tuple[str, str, str], targets: Sequence[str]) -> dict[str, str]:
        ns, pod, container = source
        out = self.c.run(
            [
                self.c.kubectl,
                "-n",
                ns,
                "exec",
                pod,
                "-c",
                container,
                "--",
                "python3",
                "-c",
                CONNECT_SCRIPT,
                str(CONNECT_TIMEOUT),
                *targets,
            ],
            timeout=60,
        )
        result: dict[str, str] = json.loads(out.strip().splitlines()[-1])
        return result

    def verdicts(self, expectations: Sequence[tuple[str, tuple[str, str, str], str, str]]) -> str:
        """Run (label, source, target, expected) attempts, one exec per source, all at once."""
        by_source: dict[tuple[str, str, str], list[str]] = {}
        for _, src, tgt, _ in expectations:
            by_source.setdefault(src, [])
            if tgt not in by_source[src]:
                by_source[src].append(tgt)
        with ThreadPoolExecutor(len(by_source)) as ex:
            results = dict(
                zip(
                    by_source,
                    ex.map(lambda s: self.connect(s, by_source[s]), by_source),
                    strict=True,
                )
            )
        wrong = []
        for label, src, tgt, expected in expectations:
            got = results[src][tgt]
            line = f"{label}: expected {expected}, observed {got}"
            self.checks.append(("ok       " if got == expected else "MISMATCH ") + line)
            if got != expected:
                wrong.append(line)
        if wrong:
            raise NetpolFailed("; ".join(wrong))
        return f"{len(expectations)} connections, each {expectations[0][3]} as the policies intend"

    # -- the proofs
    def p_refused(self) -> str:
        probe = self.ensure_probe(self.c.ns)
        monitor = self.ensure_probe(MONITORING_NS)
        crit, ml, cache = (self.pod_of(c) for c in SERVICES)
        pg_crit, pg_ml, redis = (self.target(STORE_OF[c]) for c in SERVICES)
        return self.verdicts(
            [
                ("unlabelled pod -> postgresql-critical", probe, pg_crit, REFUSED),
                ("unlabelled pod -> postgresql-ml", probe, pg_ml, REFUSED),
                ("unlabelled pod -> redis", probe, redis, REFUSED),
                ("unlabelled pod -> critical service", probe, self.target("critical"), REFUSED),
                ("ml -> postgresql-critical", ml, pg_crit, REFUSED),
                ("ml -> redis", ml, redis, REFUSED),
                ("cache -> postgresql-critical", cache, pg_crit, REFUSED),
                ("critical -> redis", crit, redis, REFUSED),
                ("critical -> ml service", crit, self.target("ml"), REFUSED),
                (f"pod in {MONITORING_NS} -> postgresql-critical", monitor, pg_crit, REFUSED),
            ]
        )

    def p_allowed(self) -> str:
        probe = self.ensure_probe(self.c.ns)
        monitor = self.ensure_probe(MONITORING_NS)
        crit, ml, cache = (self.pod_of(c) for c in SERVICES)
        return self.verdicts(
            [
                ("critical -> postgresql-critical", crit, self.target("postgresql-critical"), OPEN),
                ("ml -> postgresql-ml", ml, self.target("postgresql-ml"), OPEN),
                ("cache -> redis", cache, self.target("redis"), OPEN),
                (
                    f"pod in {MONITORING_NS} -> critical service",
                    monitor,
                    self.target("critical"),
                    OPEN,
                ),
                (f"pod in {MONITORING_NS} -> ml service", monitor, self.target("ml"), OPEN),
                (f"pod in {MONITORING_NS} -> cache service", monitor, self.target("cache"), OPEN),
                (
                    "unlabelled pod -> kube-dns (it is not restricted)",
                    probe,
                    self.dns_target(),
                    OPEN,
                ),
            ]
        )

    def wait_for(self, source: tuple[str, str, str], target: str, want: str, limit: float) -> float:
        t = time.monotonic()
        got = ""
        while time.monotonic() - t < limit:
            got = self.connect(source, [target])[target]
            if got == want:
                return time.monotonic() - t
            time.sleep(0.5)
        raise NetpolFailed(f"{source[1]} -> {target} still {got} after {limit:.0f}s (want {want})")

    def p_policy_decides(self) -> str:
        probe = self.ensure_probe(self.c.ns)
        pg = self.target("postgresql-critical")
        port = int(pg.rsplit(":", 1)[1])
        extra = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "e2e-allow-probe", "labels": {"strata-e2e": "netpol"}},
            "spec": {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/instance": self.c.release,
                        "app.kubernetes.io/component": "postgresql-critical",
                    }
                },
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"strata-e2e": "probe"}}}],
                        "ports": [{"protocol": "TCP", "port": port}],
                    }
                ],
            },
        }
        self.c.k("apply", "-f", "-", input=json.dumps(extra))
        try:
            opened = self.wait_for(probe, pg, OPEN, 30)
        finally:
            self.c.k("delete", "networkpolicy", "e2e-allow-probe", "--ignore-not-found")
        closed = self.wait_for(probe, pg, REFUSED, 30)
        self.checks.append(
            f"ok       unlabelled pod -> postgresql-critical: open {opened:.1f}s after an extra "
            f"policy allowed it, refused again {closed:.1f}s after it was deleted"
        )
        for ns in (self.c.ns, MONITORING_NS):
            self.c.run(
                [
                    self.c.kubectl,
                    "-n",
                    ns,
                    "delete",
                    "pod",
                    PROBE,
                    "--wait=false",
                    "--ignore-not-found",
                ]
            )
        return (
            f"extra policy: probe -> postgresql-critical open after {opened:.1f}s; "
            f"deleted: refused again after {closed:.1f}s"
        )
