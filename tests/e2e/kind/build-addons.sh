#!/usr/bin/env bash
# Build the images of the proofs' cluster add-ons on the local Docker engine, without a
# registry (issue 18): Traefik (Ingress and Gateway API controller), Prometheus, the Prometheus
# Operator with its config reloader and kube-state-metrics, each from its pinned Go module
# (static binaries in an image FROM scratch). Debian's prometheus package cannot stand in: it
# is built without Kubernetes service discovery. Each image is tagged
# strata-kind/<name>:<version>-<key>, key being a hash of its inputs, and reused when present.
#
#   bash tests/e2e/kind/build-addons.sh     # prints NAME=image lines on stdout
#
# Builds the binaries (build-binaries.sh, PROOF_MODULES in lib.sh) when they are missing.
set -euo pipefail
# shellcheck source=tests/e2e/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
go_env
export DOCKER_BUILDKIT=1

bash "$KIND_DIR/build-binaries.sh" "${PROOF_MODULES[@]}" >&2

# scratch_image NAME VERSION COMPONENT BINARY... -> prints the image; one static binary or more
# from the component's build directory in /bin of an empty image.
scratch_image() {
    local name=$1 ver=$2 comp=$3 dir key image ctx b
    shift 3
    dir=$(bash "$KIND_DIR/build-binaries.sh" --dir "$comp")
    key=$(printf '%s\n' "$dir" "$@" | sha256sum | cut -c1-12)
    image="$IMAGE_PREFIX/$name:$ver-$key"
    if ! image_exists "$image"; then
        ctx=$(mktemp -d /tmp/strata-addon.XXXXXX)
        {
            echo "FROM scratch"
            for b in "$@"; do echo "COPY $b /bin/$b"; done
            echo "USER 65532:65532"
            echo "ENTRYPOINT [\"/bin/$1\"]"
        } >"$ctx/Dockerfile"
        for b in "$@"; do cp "$dir/$b" "$ctx/$b"; done
        "$DOCKER" build -q -t "$image" "$ctx" >/dev/null || die "docker build $image failed"
        rm -rf "$ctx"
        log "addons: built $image"
    fi
    echo "$image"
}

echo "TRAEFIK_IMAGE=$(scratch_image traefik "$TRAEFIK_VERSION" traefik traefik)"
echo "OPERATOR_IMAGE=$(scratch_image prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" prometheus-operator operator prometheus-config-reloader)"
echo "KSM_IMAGE=$(scratch_image kube-state-metrics "$KUBE_STATE_METRICS_VERSION" kube-state-metrics kube-state-metrics)"
echo "PROMETHEUS_IMAGE=$(scratch_image prometheus "$PROMETHEUS_VERSION" prometheus prometheus)"
echo "PROMETHEUS_VERSION=$PROMETHEUS_VERSION"
# The CRDs, from the same pinned modules: the Gateway API release Traefik is built against
# (standard channel) and the operator's own.
module_dir() { (cd "$KIND_DIR/go/$1" && go mod download -json "$2" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'); }
echo "GATEWAY_CRDS=$(module_dir traefik sigs.k8s.io/gateway-api)/config/crd/standard"
echo "OPERATOR_CRDS=$(module_dir prometheus-operator github.com/prometheus-operator/prometheus-operator)/example/prometheus-operator-crd"
