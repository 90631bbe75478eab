#!/usr/bin/env bash
# Build the kind node image and every image a node runs, on the local Docker engine, without a
# registry. Needs the binaries of build-binaries.sh. Each image is tagged
# strata-kind/<name>:<version>-<key>, key being a hash of its inputs, and reused when present.
#
#   debian        debootstrap of Debian (DEBIAN_SUITE) with the packages kind's base image
#                 installs; the base of the node and of the images that need a shell or iptables
#   base          the node base image: node/base.Dockerfile (kind's base image recipe) with
#                 kind's files from the kind module, containerd, runc, crictl, CNI plugins
#   kube-apiserver, kube-controller-manager, kube-scheduler, etcd, coredns, pause,
#   local-path-provisioner, kube-network-policies
#                 one static binary each, FROM scratch
#   kube-proxy, kindnet
#                 on the debian image (iptables, nftables, conntrack; kindnet.sh uses curl, jq)
#   node          the base image with kubeadm, kubelet and kubectl, /kind/version, the CNI and
#                 storage manifests (k8s/kind/node/) and all the images above imported into its
#                 containerd under the names kubeadm and the manifests use — what
#                 `kind build node-image` produces, assembled the same way (a container of the
#                 base image, containerd started inside it, `ctr images import`, docker commit),
#                 but from local images: kind's builder fetches the non-Kubernetes images from
#                 registries.
#
#   bash tests/e2e/kind/build-images.sh          # everything; prints the node image tag
#   bash tests/e2e/kind/build-images.sh debian   # only the debian image (run.sh starts it early)
#
# Prints the image tag on stdout (the last line); everything else goes to stderr.
set -euo pipefail
# shellcheck source=tests/e2e/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
go_env
export DOCKER_BUILDKIT=1

DEBIAN_PACKAGES=(systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod
    libseccomp2 pigz bash ca-certificates curl jq procps)
CTX_ROOT="$CACHE/ctx"
SUMMARY=()

bindir() { bash "$KIND_DIR/build-binaries.sh" --dir "$1"; }
image_id() { "$DOCKER" image inspect --format '{{.Id}}' "$1"; }
record() { SUMMARY+=("$(printf '%-58s %s' "$1" "$2")"); }

# ----------------------------------------------------------------------------------------
build_debian() { # -> sets DEBIAN_IMAGE
    local key
    key=$(printf '%s\n' "$DEBIAN_SUITE" "${DEBIAN_PACKAGES[@]}" "$(declare -f build_debian)" | sha256sum | cut -c1-12)
    DEBIAN_IMAGE="$IMAGE_PREFIX/debian:$DEBIAN_SUITE-$key"
    if image_exists "$DEBIAN_IMAGE"; then record "$DEBIAN_IMAGE" cached; return; fi
    command -v debootstrap >/dev/null || die "debootstrap is not installed"
    local start=$SECONDS work mirror
    work=$(mktemp -d /tmp/strata-kind-debian.XXXXXX)
    mirror=$(debian_mirror)
    log "debian: debootstrap $DEBIAN_SUITE from $mirror with ${#DEBIAN_PACKAGES[@]} packages"
    if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${DEBIAN_PACKAGES[*]}")" \
        "$DEBIAN_SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        rm -rf "$work"
        die "debootstrap failed"
    fi
    # What was installed, with the sha256 of each .deb (apt checked them against the signed
    # archive index); compared with tests/e2e/kind/debian.lock by check_debian_lock.
    mkdir -p "$CACHE/debian"
    (cd "$work/rootfs/var/cache/apt/archives" && sha256sum ./*.deb) |
        sed 's#  \./# #' | awk '{print $2, $1}' | sort >"$CACHE/debian/$key.lock"
    rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
        "$work/rootfs"/usr/share/{doc,man,info,locale}/* "$work/rootfs"/var/log/* "$work/rootfs"/debootstrap
    tar -C "$work/rootfs" -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --message "debootstrap --variant=minbase $DEBIAN_SUITE + ${DEBIAN_PACKAGES[*]}" \
        - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$work"
    record "$DEBIAN_IMAGE" "built in $((SECONDS - start))s"
}

# Warn (STRATA_KIND_DEBIAN_LOCK=strict: fail) when the packages debootstrap installed differ from
# the ones recorded in the repository; STRATA_KIND_DEBIAN_LOCK=update rewrites the record.
check_debian_lock() {
    local key=${DEBIAN_IMAGE##*-} want="$KIND_DIR/debian.lock" got
    got="$CACHE/debian/$key.lock"
    [[ -f $got ]] || { log "debian: no package record for $DEBIAN_IMAGE (built before this cache)"; return; }
    if [[ ${STRATA_KIND_DEBIAN_LOCK:-warn} == update ]]; then
        { echo "# Debian packages of the kind node images (.deb file, sha256), written by"
          echo "# STRATA_KIND_DEBIAN_LOCK=update bash tests/e2e/kind/build-images.sh"
          cat "$got"; } >"$want"
        log "debian: wrote $want"
        return
    fi
    if [[ ! -f $want ]]; then
        log "debian: no $want (STRATA_KIND_DEBIAN_LOCK=update writes it)"
    elif ! diff -q <(grep -v '^#' "$want") "$got" >/dev/null; then
        log "debian: the installed packages differ from tests/e2e/kind/debian.lock (a Debian point release?):"
        diff <(grep -v '^#' "$want") "$got" | grep '^[<>]' | head -n 20 >&2 || true
        [[ ${STRATA_KIND_DEBIAN_LOCK:-warn} != strict ]] || die "Debian packages differ from the lock"
    else
        log "debian: $(wc -l <"$got") packages match tests/e2e/kind/debian.lock"
    fi
}

# ----------------------------------------------------------------------------------------
kind_module_dir() {
    (cd "$KIND_DIR/go/kind" && go mod download -json sigs.k8s.io/kind |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
}

build_base() { # -> sets BASE_IMAGE
    local containerd runc crictl cni key ctx start=$SECONDS kindmod
    containerd=$(bindir containerd) runc=$(bindir runc) crictl=$(bindir crictl) cni=$(bindir cni-plugins)
    key=$(printf '%s\n' "$(image_id "$DEBIAN_IMAGE")" "$containerd" "$runc" "$crictl" "$cni" \
        "$KIND_VERSION" | cat - "$KIND_DIR/node/base.Dockerfile" | sha256sum | cut -c1-12)
    BASE_IMAGE="$IMAGE_PREFIX/base:$KIND_VERSION-$key"
    if image_exists "$BASE_IMAGE"; then record "$BASE_IMAGE" cached; return; fi
    kindmod=$(kind_module_dir)
    ctx="$CTX_ROOT/base"
    rm -rf "$ctx" && mkdir -p "$ctx/bin/cni"
    # kind's node files, made writable and given the modes kind's Dockerfile sets
    cp -r "$kindmod/images/base/files" "$ctx/files"
    chmod -R u+w,go-w "$ctx/files"
    find "$ctx/files" -type f -exec chmod 0644 {} +
    chmod 0755 "$ctx/files/usr/local/bin/"* "$ctx/files/kind/bin/"*
    cp "$containerd"/{containerd,ctr,containerd-shim-runc-v2} "$runc/runc" "$crictl/crictl" "$ctx/bin/"
    cp "$cni"/{ptp,host-local,loopback,portmap} "$ctx/bin/cni/"
    cp "$KIND_DIR/node/base.Dockerfile" "$ctx/Dockerfile"
    build_in "$ctx" "$BASE_IMAGE" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE"
    record "$BASE_IMAGE" "built in $((SECONDS - start))s"
}

build_in() { # context tag [docker build args]
    local ctx=$1 tag=$2 out
    shift 2
    out=$(mktemp /tmp/strata-kind-build.XXXXXX)
    if ! "$DOCKER" build --progress plain --tag "$tag" "$@" "$ctx" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        rm -f "$out"
        die "docker build of $tag failed"
    fi
    rm -f "$out"
}

# small_image NAME VERSION FROM ENTRYPOINT SRC=DEST... -> sets IMG[NAME]
declare -A IMG
small_image() {
    local name=$1 ver=$2 from=$3 entry=$4 spec src dest key ctx start=$SECONDS
    shift 4
    ctx="$CTX_ROOT/$name"
    rm -rf "$ctx" && mkdir -p "$ctx/rootfs"
    for spec in "$@"; do
        src=${spec%%=*} dest=${spec#*=}
        mkdir -p "$ctx/rootfs$(dirname "$dest")"
        cp "$src" "$ctx/rootfs$dest"
        chmod 0755 "$ctx/rootfs$dest"
    done
    {
        echo "FROM $from"
        echo "COPY rootfs/ /"
        echo "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        [[ -z $entry ]] || echo "ENTRYPOINT [\"$entry\"]"
    } >"$ctx/Dockerfile"
    key=$( { cat "$ctx/Dockerfile"; [[ $from == scratch ]] || image_id "$from"
             (cd "$ctx/rootfs" && find . -type f -exec sha256sum {} + | sort); } | sha256sum | cut -c1-12)
    IMG[$name]="$IMAGE_PREFIX/$name:$ver-$key"
    if image_exists "${IMG[$name]}"; then record "${IMG[$name]}" cached; return; fi
    build_in "$ctx" "${IMG[$name]}"
    record "${IMG[$name]}" "built in $((SECONDS - start))s"
}

build_components() {
    local k8s etcd coredns pause lpp knp
    k8s=$(bindir k8s) etcd=$(bindir etcd) coredns=$(bindir coredns) pause=$(bindir pause)
    lpp=$(bindir local-path-provisioner) knp=$(bindir kube-network-policies)
    local c
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
        small_image "$c" "$KUBERNETES_VERSION" scratch "" "$k8s/$c=/usr/local/bin/$c"
    done
    small_image kube-proxy "$KUBERNETES_VERSION" "$DEBIAN_IMAGE" "" "$k8s/kube-proxy=/usr/local/bin/kube-proxy"
    small_image etcd "$ETCD_VERSION" scratch "" "$etcd/etcd=/usr/local/bin/etcd"
    small_image coredns "$COREDNS_VERSION" scratch /coredns "$coredns/coredns=/coredns"
    small_image pause "$PAUSE_VERSION" scratch /pause "$pause/pause=/pause"
    small_image local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" scratch "" \
        "$lpp/local-path-provisioner=/usr/local/bin/local-path-provisioner"
    small_image kube-network-policies "$KUBE_NETWORK_POLICIES_VERSION" scratch "" \
        "$knp/kube-network-policies=/usr/local/bin/kube-network-policies"
    small_image kindnet "$KUBE_NETWORK_POLICIES_VERSION" "$DEBIAN_IMAGE" "" \
        "$KIND_DIR/node/kindnet.sh=/usr/local/bin/kindnet.sh"
    # the storage helper pods only need a shell: the debian image itself
    IMG[local-path-helper]=$DEBIAN_IMAGE
}

# ----------------------------------------------------------------------------------------
# The names under which the node's containerd holds each image (kubeadm's for the control
# plane, kind's containerd config for pause, the manifests' for the rest).
node_image_names() {
    local minor
    echo "kube-apiserver registry.k8s.io/kube-apiserver:$KUBERNETES_VERSION"
    echo "kube-controller-manager registry.k8s.io/kube-controller-manager:$KUBERNETES_VERSION"
    echo "kube-scheduler registry.k8s.io/kube-scheduler:$KUBERNETES_VERSION"
    echo "kube-proxy registry.k8s.io/kube-proxy:$KUBERNETES_VERSION"
    echo "etcd registry.k8s.io/etcd:${ETCD_VERSION#v}-0"
    echo "coredns registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
    echo "pause registry.k8s.io/pause:$PAUSE_VERSION"
    for minor in kindnet kube-network-policies local-path-provisioner local-path-helper; do
        echo "$minor docker.io/${IMG[$minor]}"
    done
}

render_manifest() { # file -> stdout with the image names filled in
    sed -e "s#__KINDNET_IMAGE__#docker.io/${IMG[kindnet]}#" \
        -e "s#__KUBE_NETWORK_POLICIES_IMAGE__#docker.io/${IMG[kube-network-policies]}#" \
        -e "s#__LOCAL_PATH_PROVISIONER_IMAGE__#docker.io/${IMG[local-path-provisioner]}#" \
        -e "s#__LOCAL_PATH_HELPER_IMAGE__#docker.io/${IMG[local-path-helper]}#" "$1"
}

build_node() { # -> sets NODE_IMAGE
    local k8s key start=$SECONDS cid name target
    k8s=$(bindir k8s)
    key=$( { image_id "$BASE_IMAGE"; for name in "${!IMG[@]}"; do echo "$name $(image_id "${IMG[$name]}")"; done | sort
             sha256sum "$k8s"/{kubeadm,kubelet,kubectl}
             render_manifest "$REPO_ROOT/k8s/kind/node/default-cni.yaml"
             render_manifest "$REPO_ROOT/k8s/kind/node/default-storage.yaml"
             declare -f build_node node_image_names; } | sha256sum | cut -c1-12)
    NODE_IMAGE="$IMAGE_PREFIX/node:$KUBERNETES_VERSION-$key"
    if image_exists "$NODE_IMAGE"; then record "$NODE_IMAGE" cached; return; fi
    log "node: assembling $NODE_IMAGE"
    cid=$("$DOCKER" run -d --entrypoint=sleep --security-opt seccomp=unconfined "$BASE_IMAGE" infinity)
    # shellcheck disable=SC2064
    trap "'$DOCKER' rm -f -v '$cid' >/dev/null 2>&1 || true" EXIT
    for name in kubeadm kubelet kubectl; do
        "$DOCKER" cp "$k8s/$name" "$cid:/usr/bin/$name"
    done
    "$DOCKER" exec "$cid" sh -c 'chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl &&
        chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl && mkdir -p /kind/manifests'
    echo "$KUBERNETES_VERSION" | "$DOCKER" exec -i "$cid" sh -c 'cat >/kind/version'
    render_manifest "$REPO_ROOT/k8s/kind/node/default-cni.yaml" |
        "$DOCKER" exec -i "$cid" sh -c 'cat >/kind/manifests/default-cni.yaml'
    render_manifest "$REPO_ROOT/k8s/kind/node/default-storage.yaml" |
        "$DOCKER" exec -i "$cid" sh -c 'cat >/kind/manifests/default-storage.yaml'
    "$DOCKER" exec -d "$cid" sh -c 'containerd >/tmp/containerd.log 2>&1'
    "$DOCKER" exec "$cid" sh -c 'for i in $(seq 100); do
        [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done
        cat /tmp/containerd.log; exit 1' >&2 || die "containerd did not start in the build container"
    while read -r name target; do
        "$DOCKER" save "${IMG[$name]}" | "$DOCKER" exec -i "$cid" ctr --namespace=k8s.io images import \
            --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null ||
            die "importing ${IMG[$name]} into the node failed"
        if [[ $target != "docker.io/${IMG[$name]}" ]]; then
            "$DOCKER" exec "$cid" ctr --namespace=k8s.io images tag --force "docker.io/${IMG[$name]}" "$target" >/dev/null
            "$DOCKER" exec "$cid" ctr --namespace=k8s.io images rm "docker.io/${IMG[$name]}" >/dev/null
        fi
        log "node: $target <- ${IMG[$name]}"
    done < <(node_image_names)
    # the same check as kind's builder: every image kubeadm needs is there
    "$DOCKER" exec "$cid" sh -c "kubeadm config images list --kubernetes-version $KUBERNETES_VERSION 2>/dev/null |
        grep -v pause | while read -r i; do ctr -n k8s.io images ls -q | grep -qx \"\$i\" || { echo \"missing \$i\"; exit 1; }; done" >&2 ||
        die "the node lacks an image kubeadm needs"
    "$DOCKER" exec "$cid" sh -c 'pkill containerd; for i in $(seq 50); do pgrep containerd >/dev/null || exit 0; sleep 0.2; done; exit 1' ||
        die "containerd did not stop in the build container"
    "$DOCKER" commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'CMD []' \
        "$cid" "$NODE_IMAGE" >/dev/null
    "$DOCKER" rm -f -v "$cid" >/dev/null
    trap - EXIT
    record "$NODE_IMAGE" "assembled in $((SECONDS - start))s"
}

bash "$REPO_ROOT/tests/e2e/docker/dockerd.sh" >&2 || die "no Docker engine"
mkdir -p "$CTX_ROOT"
build_debian
check_debian_lock
if [[ ${1:-} == debian ]]; then echo "$DEBIAN_IMAGE"; exit 0; fi # (to build it early)
build_base
build_components
build_node
{
    echo "build-images.sh: node image and the images inside it:"
    printf '  %s\n' "${SUMMARY[@]}"
} >&2
echo "$NODE_IMAGE"
