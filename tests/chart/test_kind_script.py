"""The kind end-to-end run's configuration and scripts (tests/e2e/kind*, k8s/kind/).

`make e2e-kind` needs Docker, Go and many minutes; these tests check what can break silently
without it: every version pinned once and the Go modules built from it, the cluster and node
configuration, the OCI runtime wrapper that lets privileged nodes start on the CI machines,
the docker shim that selects it, and the pod network agent's CNI config and netfilter rules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT

KIND = ROOT / "tests" / "e2e" / "kind"
RUNTIME = KIND / "runtime"
sys.path.insert(0, str(RUNTIME))
import strata_kind_runc as runc_wrapper  # noqa: E402

#: component dir under tests/e2e/kind/go -> (upstream module, versions.env variable)
UPSTREAM = {
    "k8s": ("k8s.io/kubernetes", "KUBERNETES_VERSION"),
    "kind": ("sigs.k8s.io/kind", "KIND_VERSION"),
    "containerd": ("github.com/containerd/containerd/v2", "CONTAINERD_VERSION"),
    "runc": ("github.com/opencontainers/runc", "RUNC_VERSION"),
    "crictl": ("sigs.k8s.io/cri-tools", "CRICTL_VERSION"),
    "cni-plugins": ("github.com/containernetworking/plugins", "CNI_PLUGINS_VERSION"),
    "etcd": ("go.etcd.io/etcd/server/v3", "ETCD_VERSION"),
    "coredns": ("github.com/coredns/coredns", "COREDNS_VERSION"),
    "local-path-provisioner": (
        "github.com/rancher/local-path-provisioner",
        "LOCAL_PATH_PROVISIONER_VERSION",
    ),
    "kube-network-policies": (
        "sigs.k8s.io/kube-network-policies",
        "KUBE_NETWORK_POLICIES_VERSION",
    ),
}


def versions() -> dict[str, str]:
    out = {}
    for line in (KIND / "versions.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def bash_array(script: Path, name: str) -> list[str]:
    """The words of a bash array assignment NAME=(...) in a script."""
    m = re.search(rf"^{name}=\((.*?)\)", script.read_text(), re.M | re.S)
    assert m, f"{name} not found in {script}"
    return m.group(1).split()


def requires(gomod: str) -> dict[str, str]:
    """module -> version of every require line of a go.mod."""
    reqs = re.findall(r"^\s*(?:require\s+)?([\w.\-/]+\.[\w.\-/]+)\s+(v\S+)", gomod, re.M)
    return dict(reqs)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# ----------------------------------------------------------------------------------------
# versions and Go modules


def test_every_go_module_is_pinned_to_versions_env() -> None:
    v = versions()
    modules = bash_array(KIND / "lib.sh", "GO_MODULES")
    assert sorted(modules) == sorted(UPSTREAM)
    for comp in modules:
        gomod = (KIND / "go" / comp / "go.mod").read_text()
        module, var = UPSTREAM[comp]
        assert requires(gomod).get(module) == v[var], f"go/{comp}/go.mod: {module} != {v[var]}"
        gosum = (KIND / "go" / comp / "go.sum").read_text()
        assert f"{module} {v[var]} h1:" in gosum, f"go/{comp}/go.sum lacks {module} {v[var]}"


def test_k8s_module_pins_every_staging_module_to_the_matching_release() -> None:
    v = versions()
    _major, minor, patch = v["KUBERNETES_VERSION"].lstrip("v").split(".")
    assert v["KUBERNETES_STAGING_VERSION"] == f"v0.{minor}.{patch}"
    assert int(minor) >= 34, "the issue asks for Kubernetes 1.34 or newer"
    gomod = (KIND / "go" / "k8s" / "go.mod").read_text()
    replaces = re.findall(r"^\s*(k8s\.io/\S+) => (k8s\.io/\S+) (v\S+)$", gomod, re.M)
    assert len(replaces) >= 25, "every k8s.io staging module is replaced"
    for old, new, ver in replaces:
        assert old == new and ver == v["KUBERNETES_STAGING_VERSION"], (old, new, ver)
    for needed in ("k8s.io/api", "k8s.io/client-go", "k8s.io/kubelet", "k8s.io/kubectl"):
        assert needed in {r[0] for r in replaces}
    tools = re.findall(r"^tool (\S+)$", gomod, re.M)
    commands = bash_array(KIND / "lib.sh", "K8S_COMMANDS")
    assert tools == [f"k8s.io/kubernetes/cmd/{c}" for c in commands]
    assert {"kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-proxy"} <= set(commands)


def test_kind_is_a_supported_version() -> None:
    minor = int(versions()["KIND_VERSION"].split(".")[1])
    assert minor >= 30, "kind v0.30+ (node images from binaries, NetworkPolicies)"


def test_debian_lock_records_checksums_of_the_node_packages() -> None:
    lines = [ln for ln in (KIND / "debian.lock").read_text().splitlines() if not ln.startswith("#")]
    assert lines == sorted(lines)
    names = {ln.split("_", 1)[0] for ln in lines}
    for pkg in bash_array(KIND / "build-images.sh", "DEBIAN_PACKAGES"):
        assert pkg in names, f"{pkg} has no recorded .deb"
    for ln in lines:
        deb, digest = ln.split()
        assert deb.endswith(".deb") and re.fullmatch(r"[0-9a-f]{64}", digest), ln


# ----------------------------------------------------------------------------------------
# cluster and node configuration


def test_cluster_config() -> None:
    cfg = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane"]
    assert "extraPortMappings" not in cfg["nodes"][0], "proofs use NodePorts, no host ports"
    (patch,) = cfg["containerdConfigPatches"]
    cri = tomllib.loads(patch)["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    # proof 17 (proof_oci.py) writes a hosts.toml for its registry there
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"


def render_like_kind(text: str, pod_subnet: str = "10.244.0.0/16") -> str:
    """What kind's installcni action does to the manifest's template (Go text/template)."""
    assert "would you kindly template this file" in text
    out = text.replace("{{ .PodSubnet }}", pod_subnet)
    assert "{{" not in out, "no other template actions"
    return out


def placeholders_filled_by_build_images() -> set[str]:
    return set(re.findall(r"s#(__[A-Z_]+__)#", (KIND / "build-images.sh").read_text()))


def test_cni_manifest() -> None:
    text = (ROOT / "k8s" / "kind" / "node" / "default-cni.yaml").read_text()
    assert "would you kindly patch this file" in text  # kind adds CONTROL_PLANE_ENDPOINT
    docs = [d for d in yaml.safe_load_all(render_like_kind(text)) if d]
    assert set(re.findall(r"__[A-Z_]+__", text)) <= placeholders_filled_by_build_images()
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    agent, knp = pod["containers"]
    # kind's patch appends CONTROL_PLANE_ENDPOINT to containers[0]: the agent needs it
    assert agent["name"] == "kindnet" and agent["command"] == ["/usr/local/bin/kindnet.sh"]
    env = {e["name"]: e.get("value") for e in agent["env"]}
    assert env["POD_SUBNET"] == "10.244.0.0/16"
    assert f"--nfqueue-id={env['NFQUEUE_ID']}" in knp["command"]
    assert "--fail-open" in knp["command"]
    for c in (agent, knp):
        assert set(c["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    granted = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"nodes", "pods", "namespaces", "networkpolicies"} <= granted


def test_storage_manifest() -> None:
    text = (ROOT / "k8s" / "kind" / "node" / "default-storage.yaml").read_text()
    assert set(re.findall(r"__[A-Z_]+__", text)) <= placeholders_filled_by_build_images()
    docs = [d for d in yaml.safe_load_all(text) if d]
    (sc,) = [d for d in docs if d["kind"] == "StorageClass"]
    assert sc["metadata"]["name"] == "standard"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert 'mkdir -m 0777 -p "$VOL_DIR"' in cm["data"]["setup"], "non-root pods can write"


def test_node_holds_images_under_the_names_kubeadm_asks_for() -> None:
    script = (KIND / "build-images.sh").read_text()
    func = re.search(r"^node_image_names\(\) \{.*?^\}", script, re.M | re.S)
    assert func
    v = versions()
    code = (
        f"{func.group(0)}\ndeclare -A IMG=([kindnet]=p/kindnet:1 [kube-network-policies]=p/knp:1"
        " [local-path-provisioner]=p/lpp:1 [local-path-helper]=p/debian:1)\nnode_image_names"
    )
    out = subprocess.run(
        ["bash", "-c", code], env={**os.environ, **v}, capture_output=True, text=True, check=True
    ).stdout
    names = dict(line.split() for line in out.splitlines())
    k = v["KUBERNETES_VERSION"]
    assert names["kube-apiserver"] == f"registry.k8s.io/kube-apiserver:{k}"
    assert names["kube-proxy"] == f"registry.k8s.io/kube-proxy:{k}"
    assert names["etcd"] == f"registry.k8s.io/etcd:{v['ETCD_VERSION'].lstrip('v')}-0"
    assert names["coredns"] == f"registry.k8s.io/coredns/coredns:{v['COREDNS_VERSION']}"
    assert names["pause"] == f"registry.k8s.io/pause:{v['PAUSE_VERSION']}"
    assert names["kindnet"] == "docker.io/p/kindnet:1"


# ----------------------------------------------------------------------------------------
# the runtime wrapper and the docker shim

STATUS = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n"


def test_held_capabilities_reads_the_bounding_set() -> None:
    held = runc_wrapper.held_capabilities(STATUS)
    assert "CAP_SYS_ADMIN" in held and "CAP_CHECKPOINT_RESTORE" in held
    assert "CAP_SYS_RESOURCE" not in held  # bit 24 is clear in 0x1fffeffffff
    with pytest.raises(ValueError, match="CapBnd"):
        runc_wrapper.held_capabilities("Name:\tx\n")


def test_strip_process_drops_only_what_is_not_held() -> None:
    process: dict[str, Any] = {
        "capabilities": {
            "bounding": ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_FUTURE_THING"],
            "effective": ["CAP_SYS_RESOURCE"],
        }
    }
    dropped = runc_wrapper.strip_process(process, {"CAP_SYS_ADMIN"})
    assert dropped == ["CAP_SYS_RESOURCE"]
    # capabilities unknown to the wrapper are left to runc (it ignores unknown ones)
    assert process["capabilities"] == {
        "bounding": ["CAP_SYS_ADMIN", "CAP_FUTURE_THING"],
        "effective": [],
    }
    assert runc_wrapper.strip_process({}, set()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--root", "/r", "create", "--bundle", "/b", "id"], ("/b/config.json", True)),
        (["run", "-b=/b", "id"], ("/b/config.json", True)),
        (["create", "id"], ("./config.json", True)),
        (["exec", "--process", "/tmp/p.json", "--detach", "id"], ("/tmp/p.json", False)),
        (["exec", "-t", "id", "sh"], None),
        (["--log", "/l", "kill", "id", "9"], None),
        (["delete", "--force", "id"], None),
    ],
)
def test_spec_file_of_a_runc_command_line(
    args: list[str], expected: tuple[str, bool] | None
) -> None:
    assert runc_wrapper.spec_file(args) == expected


def own_capabilities() -> set[str]:
    return runc_wrapper.held_capabilities(Path("/proc/self/status").read_text())


def test_wrapper_edits_the_spec_then_runs_runc(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    wanted = ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    (bundle / "config.json").write_text(
        json.dumps({"ociVersion": "1.0.2", "process": {"capabilities": {"bounding": wanted}}})
    )
    fake = _write(
        tmp_path / "runc",
        '#!/bin/sh\necho "args: $*"\ncat "$3/config.json"\n',
    )
    proc = subprocess.run(
        [sys.executable, str(RUNTIME / "strata_kind_runc.py"), "create", "--bundle", str(bundle)],
        env={**os.environ, "STRATA_KIND_RUNC": str(fake)},
        capture_output=True,
        text=True,
        check=True,
    )
    first, spec = proc.stdout.split("\n", 1)
    assert first == f"args: create --bundle {bundle}"
    kept = json.loads(spec)["process"]["capabilities"]["bounding"]
    assert kept == [c for c in wanted if c in own_capabilities()]
    assert json.loads(spec)["ociVersion"] == "1.0.2", "the rest of the spec is kept"


def test_docker_shim_adds_the_runtime_to_privileged_runs_only(tmp_path: Path) -> None:
    real = _write(tmp_path / "docker", '#!/bin/sh\necho "$*"\n')
    env = {**os.environ, "STRATA_KIND_REAL_DOCKER": str(real)}

    def shim(*args: str) -> str:
        out = subprocess.run(
            [str(RUNTIME / "docker"), *args], env=env, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    assert shim("run", "--name", "n", "--privileged", "img") == (
        "run --runtime=strata-kind-runc --name n --privileged img"
    )
    assert shim("run", "--rm", "img", "true") == "run --rm img true"
    assert shim("exec", "--privileged", "n", "ctr") == "exec --privileged n ctr"
    assert shim("inspect", "n") == "inspect n"


# ----------------------------------------------------------------------------------------
# the pod network agent


@pytest.fixture
def agent(tmp_path: Path) -> dict[str, Any]:
    if not shutil.which("jq"):
        pytest.skip("jq is not installed (tests/e2e/kind/host.sh installs it)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "sa").mkdir()
    (tmp_path / "sa" / "token").write_text("tok")
    (tmp_path / "sa" / "ca.crt").write_text("ca")
    (tmp_path / "net.d").mkdir()
    _write(
        bindir / "curl",
        '#!/bin/sh\necho "$*" >> "$STUB_DIR/curl.log"\n'
        'printf \'{"spec": {"podCIDR": "%s"}}\' "$STUB_CIDR"\n',
    )
    # iptables: remembers chains (-N) and rules (-A); -C/-nL fail for what it has not seen
    _write(
        bindir / "iptables",
        """#!/bin/bash
echo "$*" >> "$STUB_DIR/iptables.log"
shift 2  # -w 5
table=$2; op=$3; shift 3
case $op in
  -nL) grep -qxF "chain $table $1" "$STUB_DIR/state" 2>/dev/null ;;
  -N) echo "chain $table $1" >> "$STUB_DIR/state" ;;
  -C) grep -qxF "rule $table $*" "$STUB_DIR/state" 2>/dev/null ;;
  -A) echo "rule $table $*" >> "$STUB_DIR/state" ;;
esac
""",
    )
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "STUB_DIR": str(tmp_path),
        "STUB_CIDR": "10.244.0.0/24",
        "NODE_NAME": "n1",
        "POD_SUBNET": "10.244.0.0/16",
        "CONTROL_PLANE_ENDPOINT": "n1:6443",
        "KINDNET_ONCE": "1",
        "SA_DIR": str(tmp_path / "sa"),
        "CNI_CONF_DIR": str(tmp_path / "net.d"),
    }
    return {"env": env, "dir": tmp_path}


def run_agent(env: dict[str, str]) -> None:
    subprocess.run(
        ["bash", str(KIND / "node" / "kindnet.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_agent_writes_the_cni_config_for_the_nodes_pod_cidr(agent: dict[str, Any]) -> None:
    run_agent(agent["env"])
    conf = json.loads((agent["dir"] / "net.d" / "10-kindnet.conflist").read_text())
    ptp, portmap = conf["plugins"]
    assert ptp["type"] == "ptp" and portmap["type"] == "portmap"
    assert ptp["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24"}]]
    curl = (agent["dir"] / "curl.log").read_text()
    assert "https://n1:6443/api/v1/nodes/n1" in curl and "Bearer tok" in curl


def test_agent_queues_new_pod_connections_for_the_policy_controller(
    agent: dict[str, Any],
) -> None:
    run_agent(agent["env"])
    rules = [
        ln.removeprefix("rule ")
        for ln in (agent["dir"] / "state").read_text().splitlines()
        if ln.startswith("rule mangle STRATA-KINDNET-NETPOL")
    ]
    chain = [r.removeprefix("mangle STRATA-KINDNET-NETPOL ") for r in rules]
    # established traffic and root's own sockets on the node (kubelet probes) skip the queue,
    # then every new connection from or to a pod goes to queue 100, failing open
    assert chain == [
        "-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
        "-m owner --uid-owner 0 -j RETURN",
        "-s 10.244.0.0/16 -j NFQUEUE --queue-num 100 --queue-bypass",
        "-d 10.244.0.0/16 -j NFQUEUE --queue-num 100 --queue-bypass",
    ]
    state = (agent["dir"] / "state").read_text()
    assert "rule mangle POSTROUTING -j STRATA-KINDNET-NETPOL" in state
    assert "rule nat STRATA-KINDNET-MASQ -d 10.244.0.0/16 -j RETURN" in state


def test_agent_is_idempotent(agent: dict[str, Any]) -> None:
    run_agent(agent["env"])
    before = (agent["dir"] / "state").read_text()
    run_agent(agent["env"])
    assert (agent["dir"] / "state").read_text() == before, "no rule is added twice"


def test_agent_waits_for_the_pod_cidr(agent: dict[str, Any]) -> None:
    run_agent({**agent["env"], "STUB_CIDR": ""})
    assert not (agent["dir"] / "net.d" / "10-kindnet.conflist").exists()
    assert not (agent["dir"] / "iptables.log").exists()


# ----------------------------------------------------------------------------------------
# the hosted-runner workflow


def test_workflow_runs_the_same_script_with_the_published_images() -> None:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "kind-e2e.yml").read_text())
    job = wf["jobs"]["kind"]
    steps = job["steps"]
    run = next(s for s in steps if s.get("run") == "make e2e-kind")
    assert run["env"]["STRATA_KIND_NODE_IMAGE"] == "published"
    kind = next(s for s in steps if "kind-action" in s.get("uses", ""))
    assert kind["with"]["version"] == versions()["KIND_VERSION"]
    assert job["timeout-minutes"] <= 60


# ----------------------------------------------------------------------------------------
# the flow of tests/e2e/kind.sh (hosted-runner mode) against stand-in tools

STUB = """#!/bin/bash
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0") $1 $2" in
  "docker image inspect") [[ $3 == --format ]] && echo 1000000; exit 0 ;;
  "kind create cluster")
    while (($#)); do [[ $1 == --kubeconfig ]] && echo "apiVersion: v1" > "$2"; shift; done ;;
  "kind version"*) echo "kind v0.30.0 stub" ;;
  "kubectl version -o") echo '{"serverVersion": {"gitVersion": "v1.34.0"},
                                "clientVersion": {"gitVersion": "v1.34.0"}}' ;;
  "python "*)
    echo "proofs env: $STRATA_E2E_IMAGE_TAG $STRATA_E2E_POSTGRESQL_TAG" >> "$STUB_LOG"
    exit "${STUB_PROOFS_RC:-0}" ;;
esac
exit 0
"""


@pytest.fixture
def flow(tmp_path: Path) -> dict[str, Any]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("docker", "kind", "kubectl", "helm", "python"):
        _write(bindir / tool, STUB)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"KIND", "KUBECTL", "HELM"}},
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "STUB_LOG": str(tmp_path / "calls.log"),
        "DOCKER": str(bindir / "docker"),
        "PYTHON": str(bindir / "python"),
        "STRATA_KIND_NODE_IMAGE": "published",
        "STRATA_KIND_RUNTIME": "docker",
        "STRATA_BASE_IMAGE": "python:3.12-slim-bookworm",
        "STRATA_IMAGE_TAG": "t1",
        "STRATA_BUSYBOX": "/bin/sh",
        "STRATA_KIND_CACHE": str(tmp_path / "cache"),
        # the add-ons are Go builds of many minutes (build-addons.sh); not in this flow
        "STRATA_KIND_ADDONS": "none",
    }
    return {"env": env, "log": tmp_path / "calls.log"}


def run_kind_sh(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "tests" / "e2e" / "kind.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kind_script_flow(flow: dict[str, Any]) -> None:
    proc = run_kind_sh(flow["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "e2e-kind: PASSED" in proc.stderr
    assert "Phase timings (seconds):" in proc.stdout + proc.stderr
    calls = flow["log"].read_text().splitlines()

    def first(prefix: str) -> int:
        return next(i for i, c in enumerate(calls) if c.startswith(prefix))

    order = [
        first("docker build"),  # tests/e2e/images.sh
        first("kind create cluster --name strata-e2e --config"),
        first("kind load docker-image --name strata-e2e"),
        first("python "),
        first("kind delete cluster --name strata-e2e"),
    ]
    assert order == sorted(order), calls
    create = calls[first("kind create cluster")]
    assert f"--config {ROOT}/k8s/kind/cluster.yaml" in create
    assert "--image" not in create, "published mode: kind's own node image"
    load = calls[first("kind load docker-image")].split()
    for image in ("strata-critical:t1", "strata-ml:t1", "strata-cache:t1"):
        assert image in load
    assert "strata-test/postgres:15" in load and "strata-test/redis:7" in load
    # the chart's Patroni image, named as images.sh names it for STRATA_IMAGE_TAG=t1
    pg_tag = "15-patroni" + re.search(
        r"^patroni\[kubernetes\]==(\S+)$",
        (ROOT / "k8s" / "postgres" / "requirements.txt").read_text(),
        re.MULTILINE,
    ).group(1)  # type: ignore[union-attr]
    assert f"strata-postgresql:{pg_tag}-t1" in load
    # ... and the tags proofs.py installs this tree's chart with
    assert f"proofs env: t1 {pg_tag}-t1" in calls
    proofs = calls[first("python ")].split()
    assert proofs[1].endswith("tests/e2e/cluster/proofs.py")
    assert proofs[proofs.index("--adapter") + 1] == "kind"
    assert proofs[proofs.index("--kind-node") + 1] == "strata-e2e-control-plane"
    values = [proofs[i + 1] for i, a in enumerate(proofs) if a == "--values"]
    assert values[0].endswith("tests/e2e/cluster/values-e2e.yaml") and len(values) == 2
    # each service's own JWT secret comes from the values files, never one for all
    assert not [a for a in proofs if a.startswith("--jwt")]


def test_kind_script_fails_and_still_deletes_the_cluster(flow: dict[str, Any]) -> None:
    proc = run_kind_sh({**flow["env"], "STUB_PROOFS_RC": "1"})
    assert proc.returncode == 1
    assert "e2e-kind: FAILED" in proc.stderr
    assert "---- diagnostics" in proc.stderr
    assert "kind delete cluster --name strata-e2e" in flow["log"].read_text()


def test_kind_script_can_keep_the_cluster(flow: dict[str, Any]) -> None:
    proc = run_kind_sh({**flow["env"], "STRATA_KIND_KEEP": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kind delete cluster" not in flow["log"].read_text()
    assert "left up" in proc.stderr
