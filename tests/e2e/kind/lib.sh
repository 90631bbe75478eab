# shellcheck shell=bash disable=SC2034
# Shared settings and helpers of the kind end-to-end run (sourced, not run).
#
# Everything built lives under CACHE (default /var/cache/strata-kind), keyed by version and by
# a hash of the inputs (go.mod, go.sum, Dockerfiles, scripts), so a bump or an edited input
# rebuilds exactly what changed. Docker images are tagged strata-kind/*:<version>-<key>.
set -o pipefail

KIND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KIND_DIR/../../.." && pwd)"
# shellcheck source=tests/e2e/kind/versions.env
source "$KIND_DIR/versions.env"

CACHE="${STRATA_KIND_CACHE:-/var/cache/strata-kind}"
GO_MODULES=(k8s kind containerd runc crictl cni-plugins etcd coredns local-path-provisioner
    kube-network-policies)
# The controllers of the ingress and monitoring proofs (run in the cluster, not in the node).
PROOF_MODULES=(traefik prometheus prometheus-operator kube-state-metrics)
K8S_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl)
IMAGE_PREFIX="${STRATA_KIND_IMAGE_PREFIX:-strata-kind}"
DOCKER="${DOCKER:-/usr/bin/docker}"
[[ -x $DOCKER ]] || DOCKER="$(command -v docker || echo docker)"

_now_ms() { local t="${EPOCHREALTIME/./}"; echo $((t / 1000)); }
_T0_MS="${_T0_MS:-$(_now_ms)}"
export _T0_MS
_fmt_ms() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
log() { printf '[%7ss] %s\n' "$(_fmt_ms $(($(_now_ms) - _T0_MS)))" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Phase timing: phase_start NAME / phase_end [status]. Appends "name<TAB>status<TAB>secs" to
# $PHASE_FILE when set (run.sh prints the table at the end).
phase_start() { _PHASE_NAME="$1"; _PHASE_T="$(_now_ms)"; log "== $1 ..."; }
phase_end() {
    local st="${1:-ok}" dt
    dt="$(_fmt_ms $(($(_now_ms) - _PHASE_T)))"
    log "== $_PHASE_NAME: $st (${dt}s)"
    if [[ -n ${PHASE_FILE:-} ]]; then printf '%s\t%s\t%s\n' "$_PHASE_NAME" "$st" "$dt" >>"$PHASE_FILE"; fi
}

# Go: our own module and build caches under CACHE (a cold run removes them with the rest), the
# installed toolchain unless a go.mod asks for a newer one (then the go command fetches it from
# the proxy into the module cache), and no VCS stamping (the module cache has no .git).
go_env() {
    export PATH="/usr/local/go/bin:$PATH"
    export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOPATH="$CACHE/go/path"
    export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOFLAGS="-mod=readonly -buildvcs=false"
    export GOPROXY="${GOPROXY:-https://proxy.golang.org}" GOSUMDB="${GOSUMDB:-sum.golang.org}"
    command -v go >/dev/null || die "no Go toolchain (install Go 1.24+ at /usr/local/go)"
}

# hash_of FILE... -> short sha256 over the files' contents (the cache key of a build step)
hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# The Debian mirror apt uses (debootstrap needs one).
debian_mirror() {
    if [[ -n ${STRATA_DEBIAN_MIRROR:-} ]]; then echo "$STRATA_DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
