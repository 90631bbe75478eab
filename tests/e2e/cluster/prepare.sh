#!/usr/bin/env bash
# Prepare this host for the single-node cluster: Debian packages (CLUSTER_PACKAGES in lib.sh,
# through tests/e2e/packages.sh), Kubernetes v1.20.2 server binaries built from Debian's
# `kubernetes` source package (cached under
# $CACHE_ROOT/<source-version>/bin and reused), the pause image, and helm/kubectl.
# Idempotent; a second run with a warm cache takes a few seconds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

phase_start "prepare: apt packages"
# The source package's deb-src line first: packages.sh runs apt-get update only when something
# is missing, and a new deb-src line needs one of its own.
if [ ! -e /etc/apt/sources.list.d/strata-k8s-src.sources ] && ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ \
   && ! grep -qs '^deb-src .* bookworm ' /etc/apt/sources.list; then
  cat >/etc/apt/sources.list.d/strata-k8s-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
fi
[ -n "$(apt-cache showsrc "$K8S_SRC_PKG" 2>/dev/null | head -1)" ] || apt-get update -qq
# Installed with their services kept stopped (etcd, containerd, docker): the harness starts its own.
bash "$REPO_ROOT/tests/e2e/packages.sh" "${CLUSTER_PACKAGES[@]}" || die "Debian packages missing (above)"
phase_end ok

VERSION="$(k8s_src_version)"
[ -n "$VERSION" ] || die "apt-cache showsrc $K8S_SRC_PKG found nothing (deb-src line? apt-get update?)"
VDIR="$CACHE_ROOT/$VERSION"
mkdir -p "$VDIR"

phase_start "prepare: kubernetes $VERSION server binaries"
have_all=1
for b in "${K8S_BINS[@]}"; do [ -x "$VDIR/bin/$b" ] || have_all=0; done
if [ $have_all = 1 ] && [ -e "$VDIR/bin/.complete" ]; then
  phase_end "cached"
else
  BUILD="$VDIR/build"
  rm -rf "$BUILD"; mkdir -p "$BUILD"
  (cd "$BUILD" && apt-get source -qq "$K8S_SRC_PKG=$VERSION" >"$BUILD/apt-source.log" 2>&1) \
    || die "apt-get source failed: $(tail -5 "$BUILD/apt-source.log")"
  SRC="$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d -name "$K8S_SRC_PKG-*" | head -1)"
  [ -d "$SRC" ] || die "no source tree in $BUILD"
  log "building ${K8S_BINS[*]} in $SRC (about 7 min on 2 cores; log: $BUILD/make.log)"
  mkdir -p "$SRC/.go/src/k8s.io" "$BUILD/home"
  ln -sfn ../../.. "$SRC/.go/src/k8s.io/kubernetes"
  (cd "$SRC" && env HOME="$BUILD/home" GOPATH="$SRC/.go" GOCACHE="$BUILD/gocache" GOPROXY=off \
      GOFLAGS=-mod=vendor CGO_ENABLED=0 PATH="/usr/lib/go-1.19/bin:$PATH" \
      make WHAT="$(printf 'cmd/%s ' "${K8S_BINS[@]}")" >"$BUILD/make.log" 2>&1) \
    || die "kubernetes build failed: $(tail -20 "$BUILD/make.log")"
  mkdir -p "$VDIR/bin"
  for b in "${K8S_BINS[@]}"; do install -m 0755 "$SRC/_output/bin/$b" "$VDIR/bin/$b"; done
  # the pause container, from the same source tree
  gcc -Os -static -Wall -DVERSION=v3.2-strata -o "$VDIR/bin/pause" "$SRC/build/pause/linux/pause.c" \
    || die "pause build failed"
  "$VDIR/bin/kube-apiserver" --version | grep -q 'v1.20.2' || die "unexpected version: $("$VDIR/bin/kube-apiserver" --version)"
  touch "$VDIR/bin/.complete"
  [ "${STRATA_K8S_KEEP_BUILD:-0}" = 1 ] || rm -rf "$BUILD"
  phase_end "built"
fi
echo "$VERSION" >"$CACHE_ROOT/current-version"

phase_start "prepare: pause image"
if [ ! -s "$VDIR/pause-image.tar" ] || [ "$VDIR/bin/pause" -nt "$VDIR/pause-image.tar" ]; then
  /usr/bin/python3 "$HARNESS_DIR/mkimage.py" --binary "$VDIR/bin/pause" --path /pause \
    --entrypoint /pause --tag "$PAUSE_IMAGE" --out "$VDIR/pause-image.tar.tmp"
  mv "$VDIR/pause-image.tar.tmp" "$VDIR/pause-image.tar"
  phase_end built
else
  phase_end cached
fi

phase_start "prepare: busybox image (smoke test)"
if [ ! -s "$CACHE_ROOT/busybox-image.tar" ] || [ /bin/busybox -nt "$CACHE_ROOT/busybox-image.tar" ]; then
  /usr/bin/python3 "$HARNESS_DIR/mkimage.py" --binary /bin/busybox --path /bin/busybox \
    --entrypoint /bin/busybox --tag "$SMOKE_IMAGE" --out "$CACHE_ROOT/busybox-image.tar.tmp"
  mv "$CACHE_ROOT/busybox-image.tar.tmp" "$CACHE_ROOT/busybox-image.tar"
  phase_end built
else
  phase_end cached
fi

phase_start "prepare: helm and kubectl"
bash "$HARNESS_DIR/get-helm.sh"
phase_end ok
