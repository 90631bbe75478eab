#!/usr/bin/env bash
# Build every binary of the kind end-to-end run from Go modules (and pause from its C source in
# the k8s.io/kubernetes module), each into CACHE/bin/<component>/<version>-<key>/, where key is
# a hash of the component's go.mod, go.sum, sources and build settings. A finished directory
# holds a .complete marker and is reused; a changed input builds a new one.
#
#   bash tests/e2e/kind/build-binaries.sh              # all components
#   bash tests/e2e/kind/build-binaries.sh k8s kind     # some
#
# Prints one line per component: where the binaries are and whether they were cached.
# Downloads are checked against tests/e2e/kind/go/*/go.sum (GOFLAGS=-mod=readonly).
set -euo pipefail
# shellcheck source=tests/e2e/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
go_env

# bin_dir COMPONENT VERSION EXTRA... -> the cache directory for these inputs
bin_dir() {
    local comp=$1 ver=$2
    shift 2
    local key
    key=$( { cat "$KIND_DIR/go/$comp/go.mod" "$KIND_DIR/go/$comp/go.sum"
             cat "$KIND_DIR/go/$comp"/*.go 2>/dev/null || true
             printf '%s\n' "$@" "$(go env GOVERSION)"; } | sha256sum | cut -c1-12)
    echo "$CACHE/bin/$comp/$ver-$key"
}

# go_build COMPONENT VERSION "LDFLAGS" "TAGS" CGO PACKAGE[=NAME]...
# Builds each package into the component's directory (NAME overrides the binary name).
go_build() {
    local comp=$1 ver=$2 ldflags=$3 tags=$4 cgo=$5
    shift 5
    local out
    out=$(bin_dir "$comp" "$ver" "$ldflags" "$tags" "$cgo" "$@")
    if ((DIR_ONLY)); then echo "$out"; return; fi
    if [[ -e $out/.complete ]]; then
        printf '%-24s %-10s cached  %s\n' "$comp" "$ver" "$out"
        return
    fi
    local start=$SECONDS spec pkg name
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    for spec in "$@"; do
        pkg=${spec%%=*}
        name=${spec#*=}
        [[ $spec == *=* ]] || name=$(basename "$pkg")
        # (the go command announces every module it downloads: hundreds of lines)
        (cd "$KIND_DIR/go/$comp" &&
            CGO_ENABLED=$cgo go build -trimpath -tags "$tags" -ldflags "$ldflags" \
                -o "$out.tmp/$name" "$pkg" 2> >(grep -v '^go: downloading ' >&2)) ||
            die "go build $pkg ($comp) failed"
    done
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    printf '%-24s %-10s built in %ss  %s\n' "$comp" "$ver" $((SECONDS - start)) "$out"
}

k8s_ldflags() {
    local v=$KUBERNETES_VERSION minor flags="-s -w" kv
    minor=$(echo "$v" | cut -d. -f2)
    for kv in "gitVersion=$v" gitMajor=1 "gitMinor=$minor" gitTreeState=clean \
        "gitCommit=$v" buildDate=1970-01-01T00:00:00Z; do
        flags+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
    echo "$flags"
}

build_k8s() {
    local pkgs=() c
    for c in "${K8S_COMMANDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    # One `go build` per command shares the compiled packages through GOCACHE.
    go_build k8s "$KUBERNETES_VERSION" "$(k8s_ldflags)" "" 0 "${pkgs[@]}"
}

build_pause() {
    # The pause container's C source ships in the k8s.io/kubernetes module (build/pause).
    local src out
    src=$(cd "$KIND_DIR/go/k8s" && go mod download -json k8s.io/kubernetes |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/build/pause/linux/pause.c
    [[ -f $src ]] || die "no pause.c in the k8s.io/kubernetes module ($src)"
    out="$CACHE/bin/pause/$PAUSE_VERSION-$(hash_of "$src")"
    if ((DIR_ONLY)); then echo "$out"; return; fi
    if [[ -e $out/.complete ]]; then
        printf '%-24s %-10s cached  %s\n' pause "$PAUSE_VERSION" "$out"
        return
    fi
    mkdir -p "$out"
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-strata" -o "$out/pause" "$src" ||
        die "gcc pause.c failed (apt-get install gcc libc6-dev)"
    strip "$out/pause"
    touch "$out/.complete"
    printf '%-24s %-10s built  %s\n' pause "$PAUSE_VERSION" "$out"
}

build_component() {
    case $1 in
    k8s) build_k8s ;;
    pause) build_pause ;;
    kind) go_build kind "$KIND_VERSION" "-s -w" "" 0 sigs.k8s.io/kind ;;
    containerd)
        local v=github.com/containerd/containerd/v2/version
        go_build containerd "$CONTAINERD_VERSION" \
            "-s -w -X $v.Version=$CONTAINERD_VERSION -X $v.Revision=$CONTAINERD_VERSION -X $v.Package=github.com/containerd/containerd/v2" \
            "no_aufs no_zfs no_btrfs no_devmapper urfave_cli_no_docs" 0 \
            github.com/containerd/containerd/v2/cmd/{containerd,ctr,containerd-shim-runc-v2}
        ;;
    runc)
        # cgo for libseccomp, linked statically as runc's own `make static` does.
        go_build runc "$RUNC_VERSION" \
            "-s -w -X main.version=${RUNC_VERSION#v} -X main.gitCommit=$RUNC_VERSION -extldflags -static" \
            "seccomp urfave_cli_no_docs netgo osusergo" 1 github.com/opencontainers/runc
        ;;
    crictl)
        go_build crictl "$CRICTL_VERSION" "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
            "" 0 sigs.k8s.io/cri-tools/cmd/crictl
        ;;
    cni-plugins)
        go_build cni-plugins "$CNI_PLUGINS_VERSION" \
            "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
            "" 0 github.com/containernetworking/plugins/plugins/{main/ptp,ipam/host-local,main/loopback,meta/portmap}
        ;;
    etcd) go_build etcd "$ETCD_VERSION" "-s -w" "" 0 .=etcd ;;
    coredns)
        go_build coredns "$COREDNS_VERSION" "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
            "" 0 .=coredns
        ;;
    local-path-provisioner)
        go_build local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" \
            "-s -w -X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" "" 0 github.com/rancher/local-path-provisioner
        ;;
    kube-network-policies)
        go_build kube-network-policies "$KUBE_NETWORK_POLICIES_VERSION" "-s -w" "" 0 \
            sigs.k8s.io/kube-network-policies/cmd=kube-network-policies
        ;;
    traefik)
        go_build traefik "$TRAEFIK_VERSION" \
            "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION -X github.com/traefik/traefik/v3/pkg/version.Codename=strata" \
            "" 0 github.com/traefik/traefik/v3/cmd/traefik
        ;;
    prometheus-operator)
        local v=github.com/prometheus/common/version
        go_build prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" \
            "-s -w -X $v.Version=${PROMETHEUS_OPERATOR_VERSION#v} -X $v.Revision=$PROMETHEUS_OPERATOR_VERSION -X $v.Branch=release" \
            "" 0 github.com/prometheus-operator/prometheus-operator/cmd/{operator,prometheus-config-reloader}
        ;;
    prometheus)
        local v=github.com/prometheus/common/version
        go_build prometheus "$PROMETHEUS_VERSION" \
            "-s -w -X $v.Version=${PROMETHEUS_VERSION#v} -X $v.Revision=$PROMETHEUS_MODULE_VERSION -X $v.Branch=release" \
            "" 0 github.com/prometheus/prometheus/cmd/prometheus
        ;;
    kube-state-metrics)
        local v=github.com/prometheus/common/version
        go_build kube-state-metrics "$KUBE_STATE_METRICS_VERSION" \
            "-s -w -X $v.Version=$KUBE_STATE_METRICS_VERSION -X $v.Revision=$KUBE_STATE_METRICS_VERSION -X $v.Branch=release" \
            "" 0 k8s.io/kube-state-metrics/v2=kube-state-metrics
        ;;
    *) die "unknown component $1" ;;
    esac
}

# --dir COMPONENT: print where its binaries are (or will be) for the current inputs.
DIR_ONLY=0
if [[ ${1:-} == --dir ]]; then
    DIR_ONLY=1
    build_component "$2"
    exit 0
fi

# Download the modules of the later components while the first ones compile (the go command
# locks the module cache, so this is safe); `go list -deps` fetches only what the build needs.
prefetch() {
    local c
    for c in "$@"; do
        [[ $c != pause ]] || continue
        if compgen -G "$KIND_DIR/go/$c/*.go" >/dev/null; then
            (cd "$KIND_DIR/go/$c" && go list -deps . >/dev/null 2>&1) || true
        else
            (cd "$KIND_DIR/go/$c" && go list -deps tool >/dev/null 2>&1) || true
        fi
    done
}

comps=("$@")
((${#comps[@]})) || comps=("${GO_MODULES[@]}" pause)
if ((${#comps[@]} == 1)); then
    build_component "${comps[0]}"
    exit 0
fi
# Two lines of work: the first component (Kubernetes, the largest) and the others in turn.
# Each go build compiles on every core, but links single-threaded; the second line keeps the
# other core busy meanwhile. The module and build caches are safe for concurrent use.
prefetch "${comps[@]:1}" &
PREFETCH=$!
build_component "${comps[0]}" &
FIRST=$!
trap 'kill $PREFETCH $FIRST 2>/dev/null || true' EXIT
for c in "${comps[@]:1}"; do build_component "$c"; done
wait "$FIRST" || die "building ${comps[0]} failed"
