"""Proof 17 (issue 19): a user's install, from a registry — the chart from ``oci://``, every
image pulled by the node.

Every other proof installs the chart from this tree's directory with images that kind.sh
loaded into the node. This one installs the way a user of the published chart does:

1. Debian's ``docker-registry`` serves one storage twice: on loopback, where this host pushes
   (the Docker engine speaks plain HTTP to 127.0.0.0/8 only, and helm is told ``--plain-http``),
   and on the kind network's gateway address, where the node pulls from.
2. The node's containerd is told that the gateway address is a plain-HTTP registry: a
   ``hosts.toml`` under ``/etc/containerd/certs.d/<addr>/``, read on each pull because
   ``k8s/kind/cluster.yaml`` sets the CRI registry's ``config_path``.
3. ``helm package`` and ``helm push`` (tests/chart/publish.py, as ``make chart-push``) put the
   chart in the registry; ``docker push`` puts beside it every image the chart renders with
   ``global.imageRegistry`` set (services, PostgreSQL/Patroni, Redis, exporters, the test pod).
4. ``helm install oci://<registry>/strata/strata --version <chart version>`` into a namespace
   of its own, with ``global.imageRegistry`` pointing at the gateway address and every pull
   policy ``IfNotPresent``, then ``helm test``.

The install also has the bundled stores serve TLS (issue 19), as a user with a TLS-only
policy sets it: a test CA signs one certificate naming both PostgreSQL primaries' and Redis's
Service names, given to the chart as an existing ``kubernetes.io/tls`` Secret with ``ca.crt``
(``*.tls.server``); the services then verify the servers (``verify-full`` for PostgreSQL,
``rediss://`` with the CA for Redis, which serves no plain port). Redis runs in sentinel
mode, so its replication, the Sentinels and the cache's questions to them are TLS too.

It checks that every container of the release runs an image named by the registry and that
the runtime's image id is the registry's digest (an image loaded by ``kind load`` carries no
registry digest), that ``helm test`` passes, and that every connection of critical's and ml's
runtime roles on every PostgreSQL member is encrypted (``pg_stat_ssl``). The release and its
namespace are removed afterwards. Runs last: the node is free once proof 11 has uninstalled
the main release.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import proof_ingress
import proof_patroni
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
if str(REPO) not in sys.path:  # tests.chart.publish and tests.support.oci_registry
    sys.path.insert(0, str(REPO))

from tests.chart.publish import chart_version, oci_ref, package, push  # noqa: E402
from tests.support.oci_registry import OciRegistry, registry_binary  # noqa: E402

NAMESPACE_SUFFIX = "-oci"
RELEASE = "strata"
CHART_PATH = "strata"
#: Image values whose pull policy the e2e values pin to Never (images loaded into the node).
PULLED = (
    "critical",
    "ml",
    "cache",
    "postgresqlCritical",
    "postgresqlMl",
    "backup",
    "redis",
)
#: The bundled stores serving TLS: (values key, the Service the certificate must name).
TLS_TIERS = (
    ("postgresqlCritical", "postgresql-critical"),
    ("postgresqlMl", "postgresql-ml"),
    ("redis", "redis"),
)
TLS_SECRET = "strata-e2e-oci-tls"
#: The runtime roles of critical and ml (the chart's defaults) and their databases.
APP_ROLES = {"postgresql-critical": "strata_app", "postgresql-ml": "strata_ml_app"}
#: A second release beside the proofs' own on one 2-CPU node, whose CPU requests the first
#: release and kind's control plane already take (98% seen): one pod per service, one ml
#: member, and token CPU requests (they steer scheduling only; the limits stay the chart's).
SMALL = [
    *[f"{s}.replicaCount=1" for s in ("critical", "ml", "cache")],
    "postgresqlMl.replicas=1",
    *[
        f"{s}.resources.requests.cpu=5m"
        for s in ("critical", "ml", "cache", "postgresqlCritical", "postgresqlMl", "redis")
    ],
    "redis.sentinel.resources.requests.cpu=5m",
    "tests.resources.requests.cpu=5m",
]


def _h(p: Any) -> ModuleType:
    """The proofs module (``__main__`` when run as a script) that owns the helpers."""
    return sys.modules[type(p).__module__]


def gateway_address(docker: str, node: str) -> str:
    """The IPv4 gateway of the Docker network the kind node is on (the host, seen from it)."""
    out = subprocess.run(
        [docker, "inspect", node], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    net_name, net = next(iter(json.loads(out)[0]["NetworkSettings"]["Networks"].items()))
    if net.get("Gateway"):  # set for a running container's network
        return str(net["Gateway"])
    out = subprocess.run(
        [docker, "network", "inspect", net_name],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for cfg in json.loads(out)[0]["IPAM"]["Config"]:
        gateway = cfg.get("Gateway", "")
        if gateway and ":" not in gateway:
            return str(gateway)
    raise RuntimeError(f"the Docker network {net_name} has no IPv4 gateway")


def free_port_on(address: str) -> int:
    """A TCP port nothing listens on at ``address`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def trust_plain_http(docker: str, node: str, registry: str) -> None:
    """Tell the node's containerd that ``registry`` (host:port) serves plain HTTP."""
    hosts = (
        f'server = "http://{registry}"\n\n'
        f'[host."http://{registry}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )
    directory = f"/etc/containerd/certs.d/{registry}"
    subprocess.run(
        [docker, "exec", "-i", node, "sh", "-c",
         f"mkdir -p '{directory}' && cat > '{directory}/hosts.toml'"],
        input=hosts, text=True, capture_output=True, timeout=60, check=True,
    )  # fmt: skip


def reachable_from_node(docker: str, node: str, registry: str) -> str:
    """ "" when the node reaches the registry's API, else why not (a host firewall would
    otherwise show only as a helm timeout, every pull failing)."""
    proc = subprocess.run(
        [docker, "exec", node, "curl", "-fsS", "-m", "10", f"http://{registry}/v2/"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return "" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()[-500:]


def rendered_images(p: Any, chart: str, values: list[str]) -> set[str]:
    """Every container image of ``helm template`` (hooks and test pods included)."""
    out = p.c.run([p.c.helm, "template", RELEASE, chart, *values, "--namespace", "x"], timeout=300)
    images: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                for container in node.get(key) or []:
                    if isinstance(container, dict) and container.get("image"):
                        images.add(str(container["image"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in yaml.safe_load_all(out):
        walk(doc)
    return images


def push_images(p: Any, images: set[str], pull_addr: str, push_addr: str) -> list[str]:
    """``docker push`` each image named ``<pull_addr>/<name>`` from the local ``<name>``."""
    pushed = []
    for image in sorted(images):
        _h(p).check(
            image.startswith(f"{pull_addr}/"),
            f"{image} is not named by the registry {pull_addr} (global.imageRegistry)",
        )
        local = image[len(pull_addr) + 1 :]
        target = f"{push_addr}/{local}"
        docker = p.adapter.docker
        p.c.run([docker, "tag", local, target], timeout=60)
        p.c.run([docker, "push", "-q", target], timeout=900)
        p.c.run([docker, "rmi", target], timeout=60, check_rc=False)  # keep the local tag only
        pushed.append(local)
    return pushed


def tls_names(namespace: str) -> list[str]:
    """The names clients reach the bundled stores by (the release is ``strata``)."""
    names = []
    for _, service in TLS_TIERS:
        name = f"{RELEASE}-{service}"
        names += [name, f"{name}.{namespace}", f"{name}.{namespace}.svc"]
        names.append(f"{name}.{namespace}.svc.cluster.local")
    return names


def tls_secret(c: Any, work: Path) -> None:
    """The namespace, and in it the stores' key pair and CA from a fresh test CA."""
    pki = work / "pki"
    pki.mkdir()
    ca, cert, key, _ = proof_ingress.make_pki(pki, tls_names(c.ns))
    manifest = c.run([c.kubectl, "create", "namespace", c.ns, "--dry-run=client", "-o", "json"])
    c.run([c.kubectl, "apply", "-f", "-"], input=manifest)  # left over from a kept cluster: fine
    files = {"tls.crt": cert, "tls.key": key, "ca.crt": ca}
    c.k(
        "create", "secret", "generic", TLS_SECRET, "--type=kubernetes.io/tls",
        *[f"--from-file={k}={path}" for k, path in files.items()],
    )  # fmt: skip


def overrides(work: Path, registry: str) -> Path:
    """Values of a user's install: images from the registry, pulled when absent; the
    bundled stores serving TLS with the key pair of :data:`TLS_SECRET`."""
    values: dict[str, Any] = {"global": {"imageRegistry": registry}}
    for component in PULLED:
        values[component] = {"image": {"pullPolicy": "IfNotPresent"}}
    values["metrics"] = {"redisExporter": {"image": {"pullPolicy": "IfNotPresent"}}}
    for tier, _ in TLS_TIERS:
        values[tier]["tls"] = {"server": {"enabled": True, "existingSecret": TLS_SECRET}}
    # Redis in sentinel mode: replication, Sentinel and the cache's Sentinel queries over TLS
    # too (standalone TLS is the same server options without them)
    values["redis"]["mode"] = "sentinel"
    path = work / "values-oci.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def pulled_from(c: Any, registry: str) -> tuple[int, list[str]]:
    """(containers whose image id is the registry's digest, the ones whose id is not)."""
    good, bad = 0, []
    for pod in c.kj("get", "pods", "-l", c.sel())["items"]:
        status = pod.get("status", {})
        for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
            named, pulled = cs.get("image", ""), cs.get("imageID", "")
            if named.startswith(f"{registry}/") and pulled.startswith(f"{registry}/"):
                good += 1
            else:
                bad.append(f"{pod['metadata']['name']}/{cs['name']}: {cs.get('imageID')}")
    return good, bad


def encrypted_connections(p: Any, c: Any) -> str:
    """Every connection of the runtime roles on every PostgreSQL member is TLS."""
    h = _h(p)
    found = []
    for component, role in APP_ROLES.items():
        total = 0
        for pod in c.pods(component):
            name = pod["metadata"]["name"]
            row = proof_patroni.psql(
                p, name, "postgres",
                "SELECT count(*) || ' ' || count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a "
                f"JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{role}'", c,
            )  # fmt: skip
            n, tls = (int(x) for x in row.split())
            h.check(n == tls, f"{name}: {n - tls} of {n} connections of {role} without TLS")
            total += n
        h.check(total > 0, f"no connection of {role} found on {component}")
        found.append(f"{component} {total}")
    return ", ".join(found)


def diagnose(p: Any, c: Any, registry: OciRegistry) -> None:
    """What a failed install leaves to read: the pods, the namespace's events, the registry's
    log (its directory goes with the proof)."""
    _h_log = _h(p).log
    pods = c.k("get", "pods", "-o", "wide", check_rc=False)
    events = c.k("get", "events", "--sort-by=.lastTimestamp", check_rc=False)
    _h_log(f"proof 17 diagnostics, pods:\n{pods}\nevents (last 40):")
    _h_log("\n".join(events.splitlines()[-40:]))
    _h_log(f"registry log (last 3000 characters):\n{registry.log()[-3000:]}")


def p_oci_install(p: Any) -> str:
    """Proof 17 (see the module's docstring); a failed command is a failed check."""
    try:
        return _oci_install(p)
    except (subprocess.CalledProcessError, OSError, ValueError, yaml.YAMLError) as e:
        raise _h(p).CheckFailed(f"{type(e).__name__}: {e}") from e


def _oci_install(p: Any) -> str:
    h = _h(p)
    binary = registry_binary()
    h.check(binary is not None, "docker-registry is not installed (tests/e2e/packages.sh)")
    assert binary is not None
    docker, node = p.adapter.docker, p.adapter.node
    gateway = gateway_address(docker, node)
    ns_args = argparse.Namespace(**vars(p.args))
    ns_args.namespace = f"{p.c.ns}{NAMESPACE_SUFFIX}"
    ns_args.release = RELEASE
    c = h.Cluster(ns_args)
    with tempfile.TemporaryDirectory(prefix="strata-oci-") as tmp:
        work = Path(tmp)
        (work / "pull").mkdir()
        (work / "push").mkdir()
        # the node's side only serves pulls: nothing on the kind network can push
        pull = OciRegistry(
            binary, work / "pull", addr=f"{gateway}:{free_port_on(gateway)}", read_only=True
        )
        loop = OciRegistry(binary, work / "push", storage=pull.storage)
        with pull, loop:
            trust_plain_http(docker, node, pull.host)
            unreachable = reachable_from_node(docker, node, pull.host)
            h.check(not unreachable, f"the node cannot reach {pull.host}: {unreachable}")
            try:
                tls_secret(c, work)
                values = [
                    *p.values_args(),
                    "-f", str(overrides(work, pull.host)),
                    *h.image_tag_sets(True),
                    *[a for s in SMALL for a in ("--set", s)],
                ]  # fmt: skip
                t = time.monotonic()
                images = rendered_images(p, p.c.chart, values)
                pushed = push_images(p, images, pull.host, loop.host)
                tgz = package(c.helm, work / "dist", Path(p.c.chart))
                push(c.helm, tgz, loop.host, CHART_PATH, plain_http=True, overwrite=True)
                publish_s = time.monotonic() - t
                version = chart_version(Path(p.c.chart))
                ref = f"{oci_ref(loop.host, CHART_PATH)}/strata"
                t = time.monotonic()
                c.h(
                    "install", RELEASE, ref, "--version", version, "--plain-http",
                    *values, "--wait", "--timeout", "10m", timeout=720,
                )  # fmt: skip
                install_s = time.monotonic() - t
                # `helm status -o json` leaves the chart out; `get metadata` names its version
                installed = json.loads(c.h("get", "metadata", RELEASE, "-o", "json"))
                h.check(
                    installed.get("version") == version,
                    f"installed chart version {installed.get('version')}, expected {version}",
                )
                good, bad = pulled_from(c, pull.host)
                h.check(not bad, f"containers not running a pulled image: {bad}")
                h.check(good > 0, "no container of the release found")
                t = time.monotonic()
                c.h("test", RELEASE, "--timeout", "5m", timeout=400)
                test_s = time.monotonic() - t
                tls = encrypted_connections(p, c)
            except Exception:
                diagnose(p, c, pull)
                raise
            finally:
                c.run(
                    [c.helm, "-n", c.ns, "uninstall", RELEASE, "--wait", "--timeout", "5m"],
                    timeout=400, check_rc=False,
                )  # fmt: skip
                c.run([c.kubectl, "delete", "namespace", c.ns, "--wait=false"], check_rc=False)
    return (
        f"chart {version} and {len(pushed)} images ({', '.join(pushed)}) pushed in "
        f"{publish_s:.0f}s; helm install {ref} --version {version} --wait in {install_s:.0f}s "
        f"pulling from {pull.host}; {good} containers run the registry's digests; "
        f"helm test passed in {test_s:.0f}s; PostgreSQL and Redis serving TLS from a test CA, "
        f"the services verifying them; TLS connections of the runtime roles: {tls}"
    )
