"""tests/e2e/kind.sh cannot run here (no registry), so run it against stand-in tools.

docker, kind, kubectl and helm are stubs that log their arguments; curl is a small fake of the
three services' API that checks each token's audience and signature. This proves the script's
flow and its checks (a wrong balance must fail it) without a cluster.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

SCRIPT = ROOT / "tests" / "e2e" / "kind.sh"
SECRET = "k" * 48

LOGGING_STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0") $*" in
  "kind get clusters"*) exit 0 ;;
  "kubectl get secret"*)  # each service's own secret: <STUB_SECRET>-<service>
    for svc in critical ml cache; do
      case "$*" in *"-$svc-jwt "*) printf '%s-%s' "$STUB_SECRET" "$svc" | base64 -w0; exit 0 ;; esac
    done
    exit 1 ;;
esac
exit 0
"""

FAKE_CURL = """
import base64, hashlib, hmac, json, os, re, sys, time

args = sys.argv[1:]
out = method = body = url = None
headers = {}
i = 0
while i < len(args):
    a = args[i]
    if a in ("-o", "-w", "-X", "--max-time", "-H", "--data-binary"):
        v = args[i + 1]
        if a == "-o": out = v
        elif a == "-X": method = v
        elif a == "-H":
            k, _, val = v.partition(": ")
            headers[k.lower()] = val
        elif a == "--data-binary": body = v
        i += 2
    elif a.startswith("-"):
        i += 1
    else:
        url = a
        i += 1
path = re.sub(r"^https?://[^/]+", "", url)
state_file = os.environ["STUB_STATE"]
state = json.load(open(state_file)) if os.path.exists(state_file) else {
    "accounts": {}, "keys": [], "docs": {}, "kv": {}}

def reply(status, payload=None, raw=None):
    with open(out, "w") as fh:
        fh.write(raw if raw is not None else json.dumps(payload or {}))
    json.dump(state, open(state_file, "w"))
    sys.stdout.write(str(status))
    sys.exit(0)

service = ("critical" if path.startswith(("/v1/accounts", "/v1/transfers")) else
           "ml" if path.startswith("/v1/collections") else
           "cache" if path.startswith(("/v1/kv", "/v1/counters")) else None)
if service is None:
    reply(404, raw="404 page not found")
auth = headers.get("authorization", "")
if not auth.startswith("Bearer "):
    reply(401, {"type": "urn:strata:problem:unauthorized"})
def b64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
head, payload, sig = auth[7:].split(".")
own = f"{os.environ['STUB_SECRET']}-{service}".encode()  # signed with this service's key only
want = hmac.new(own, f"{head}.{payload}".encode(), hashlib.sha256)
assert hmac.compare_digest(b64(sig), want.digest()), "bad signature"
assert json.loads(b64(head))["alg"] == "HS256"
claims = json.loads(b64(payload))
assert claims["aud"] == "strata-" + service, claims
assert claims["exp"] > time.time() and claims["sub"], claims
data = json.loads(body) if body and headers.get("content-type") == "application/json" else None
accounts = state["accounts"]
skew = int(os.environ.get("STUB_SKEW", "0"))
if method == "GET" and path.startswith("/v1/accounts?"):
    reply(200, {"items": [], "next_cursor": None})
if method == "POST" and path == "/v1/accounts":
    acc = "acc-%d" % len(accounts)
    accounts[acc] = 0
    reply(201, {"id": acc, "balance": 0})
m = re.fullmatch(r"/v1/accounts/([^/]+)/deposits", path)
if method == "POST" and m:
    accounts[m.group(1)] += data["amount"]
    reply(201, {})
if method == "POST" and path == "/v1/transfers":
    key = headers["idempotency-key"]
    if key not in state["keys"]:
        state["keys"].append(key)
        accounts[data["from_account"]] -= data["amount"]
        accounts[data["to_account"]] += data["amount"] + skew
    reply(201, {"id": key})
m = re.fullmatch(r"/v1/accounts/([^/]+)", path)
if method == "GET" and m:
    reply(200, {"id": m.group(1), "balance": accounts[m.group(1)]})
m = re.fullmatch(r"/v1/collections/([^/]+)", path)
if method == "PUT" and m:
    state["docs"].setdefault(m.group(1), [])
    reply(201, {"name": m.group(1)})
m = re.fullmatch(r"/v1/collections/([^/]+)/documents:bulk", path)
if method == "POST" and m:
    assert headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(x) for x in body.splitlines() if x.strip()]
    state["docs"][m.group(1)] += lines
    reply(201, {"inserted": len(lines), "ids": list(range(len(lines)))})
m = re.fullmatch(r"/v1/collections/([^/]+)/export", path)
if method == "GET" and m:
    reply(200, raw="".join(json.dumps({"data": d}) + "\\n" for d in state["docs"][m.group(1)]))
m = re.fullmatch(r"/v1/kv/(.+)", path)
if m and method == "PUT":
    state["kv"][m.group(1)] = data["value"]
    reply(200, {"key": m.group(1), "value": data["value"], "ttl": None})
if m and method == "GET":
    reply(200, {"key": m.group(1), "value": state["kv"][m.group(1)], "ttl": None})
if method == "POST" and path == "/v1/kv:mget":
    reply(200, {"values": {k: state["kv"].get(k) for k in data["keys"]}})
reply(404, {"type": "urn:strata:problem:not-found"})
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def stub_env(tmp_path: Path) -> dict[str, str]:
    pytest.importorskip("jwt")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("docker", "kind", "kubectl", "helm", "git"):
        _write(bindir / tool, LOGGING_STUB)
    _write(bindir / "curl", f"#!{sys.executable}\n{textwrap.dedent(FAKE_CURL)}")
    return {
        **{k: v for k, v in os.environ.items() if k not in {"HELM", "KUBECTL", "KIND", "DOCKER"}},
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "STUB_LOG": str(tmp_path / "calls.log"),
        "STUB_STATE": str(tmp_path / "state.json"),
        "STUB_SECRET": SECRET,
    }


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_kind_script_flow_with_stand_in_tools(stub_env: dict[str, str]) -> None:
    proc = run_script(stub_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cannot run on Strata's CI" in proc.stderr
    assert "critical: balances 750/250" in proc.stderr
    assert "kind end-to-end passed" in proc.stderr
    calls = Path(stub_env["STUB_LOG"]).read_text().splitlines()
    order = [
        next(i for i, c in enumerate(calls) if c.startswith(prefix))
        for prefix in (
            "kind create cluster --name strata-e2e --config",
            "docker build -f",
            "kind load docker-image strata-critical:e2e",
            "kubectl apply -f https://raw.githubusercontent.com/kubernetes/ingress-nginx/",
            "kubectl patch configmap ingress-nginx-controller",
            "kubectl rollout restart deployment ingress-nginx-controller",
            "kubectl create secret tls strata-tls -n strata",
            "helm upgrade --install strata",
            "helm test strata",
            "helm upgrade strata",
            "helm rollback strata 1 --namespace strata --wait",
            "kind delete cluster --name strata-e2e",
        )
    ]
    assert order == sorted(order), calls
    install = next(c for c in calls if c.startswith("helm upgrade --install"))
    words = shlex.split(install)
    assert "--wait" in words
    # The Ingress needs a host; TLS stays on (the chart's default) with the test certificate.
    assert {"ingress.enabled=true", "ingress.host=strata.kind.test"} <= set(words)
    assert not [w for w in words if w.startswith("ingress.tls")]
    for svc in ("critical", "ml", "cache"):
        assert f"{svc}.image.pullPolicy=Never" in words
        assert f"kind load docker-image strata-{svc}:e2e --name strata-e2e" in calls
    patch = next(c for c in calls if c.startswith("kubectl patch configmap"))
    assert "path-additional-allowed-chars" in patch
    assert ":" in patch.split("path-additional-allowed-chars")[1]
    upgrade = next(c for c in calls if c.startswith("helm upgrade strata"))
    assert "logLevel=DEBUG" in upgrade
    assert sum(c.startswith("helm test") for c in calls) == 2


def test_kind_script_fails_when_money_goes_missing(stub_env: dict[str, str]) -> None:
    proc = run_script({**stub_env, "STUB_SKEW": "1"})
    assert proc.returncode != 0
    assert "balances are 750/251, expected 750/250" in proc.stderr
    calls = Path(stub_env["STUB_LOG"]).read_text()
    assert "kind delete cluster --name strata-e2e" in calls, "the cluster is removed on failure"


def test_kind_cluster_config() -> None:
    cfg = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    assert cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = cfg["nodes"]
    assert {(p["containerPort"], p["hostPort"]) for p in node["extraPortMappings"]} == {
        (80, 80),
        (443, 443),
    }
    assert "ingress-ready=true" in node["kubeadmConfigPatches"][0]


def test_workflow_runs_the_kind_script() -> None:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "kind-e2e.yml").read_text())
    steps = wf["jobs"]["kind"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert "make e2e-kind" in runs
    assert any("setup-helm" in s.get("uses", "") for s in steps)
    assert wf["jobs"]["kind"]["timeout-minutes"] <= 60
