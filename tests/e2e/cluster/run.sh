#!/usr/bin/env bash
# `make e2e-cluster`: prepare (cached), build the images, bring up a single-node Kubernetes
# v1.20.2 on this host, prove the chart on it (proofs.py), print the phase timings, and
# always tear the cluster down. Exits non-zero on any failed check.
#
#   STRATA_E2E_SKIP_IMAGES=1   reuse the images already in the Docker engine
#   STRATA_E2E_KEEP=1          leave the cluster up at the end (teardown.sh removes it)
#   STRATA_E2E_ONLY=1,2        run only these proofs (debugging)
#   STRATA_IMAGE_TAG=<name>    build, import and install the images under this tag (below)
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"
export PHASE_FILE; PHASE_FILE="$(mktemp /tmp/strata-e2e-phases.XXXXXX)"
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$REPO_ROOT/pyproject.toml" | head -n1)"
# STRATA_IMAGE_TAG (images.sh's tag for the service images) keeps this run's images apart from
# other checkouts' builds on a shared Docker engine: the PostgreSQL image gets it as a suffix,
# and proofs.py installs the chart with those tags (--set <component>.image.tag).
TAG="${STRATA_IMAGE_TAG:-$VERSION}"
# (images.sh names the PostgreSQL image the same way; exported so both agree.)
PG_TAG="15-patroni$(sed -n 's/^patroni\[kubernetes\]==//p' "$REPO_ROOT/k8s/postgres/requirements.txt")${STRATA_IMAGE_TAG:+-$STRATA_IMAGE_TAG}"
export STRATA_POSTGRESQL_IMAGE="strata-postgresql:$PG_TAG"
if [ -n "${STRATA_IMAGE_TAG:-}" ]; then
  export STRATA_E2E_IMAGE_TAG="$TAG" STRATA_E2E_POSTGRESQL_TAG="$PG_TAG"
fi
IMAGES="strata-critical:$TAG strata-ml:$TAG strata-cache:$TAG strata-test/postgres:15 strata-test/redis:7 $STRATA_POSTGRESQL_IMAGE"
# Patroni members (3 critical + 2 ml), Redis (3 in Sentinel mode), the pgBackRest repository,
# the upgrade proof's second release and the restore proof's third one (members, Redis,
# repository each) need more volumes; a deleted claim's volume is not bound again.
export STRATA_K8S_PV_COUNT="${STRATA_K8S_PV_COUNT:-24}"
DOCKER="${DOCKER:-/usr/bin/docker}"; [ -x "$DOCKER" ] || DOCKER="$(command -v docker || true)"
rc=0

table() {
  echo
  echo "Phase timings (seconds):"
  awk -F'\t' '{printf "  %-56s %-10s %8s\n", $1, $2, $3; t += $3} END {printf "  %-56s %-10s %8.1f\n", "total", "", t}' "$PHASE_FILE"
}
finish() {
  local st=$?
  [ "$rc" = 0 ] && rc=$st
  trap - EXIT INT TERM
  if [ "${STRATA_E2E_KEEP:-0}" = 1 ]; then
    log "STRATA_E2E_KEEP=1: cluster left up (KUBECONFIG=$KUBECONFIG_FILE; bash $HERE/teardown.sh removes it)"
  else
    bash "$HERE/teardown.sh" || rc=1
  fi
  table
  rm -f "$PHASE_FILE"
  if [ "$rc" = 0 ]; then log "e2e-cluster: PASSED"; else log "e2e-cluster: FAILED (exit $rc)"; fi
  exit "$rc"
}
trap finish EXIT
trap 'log "interrupted"; rc=130; exit 130' INT TERM

step() { # name cmd...: run one top-level step; stop the run when it fails
  local name="$1"; shift
  if ! "$@"; then log "step failed: $name"; rc=1; exit 1; fi
}

if [ "$(id -u)" != 0 ]; then
  # Name what root would install (packages.sh prints the missing packages and the command).
  bash "$REPO_ROOT/tests/e2e/packages.sh" "${CLUSTER_PACKAGES[@]}" || true
  log "run as root (the harness installs those packages, configures the host network and runs the kubelet)"
  trap - EXIT; rm -f "$PHASE_FILE"; exit 2  # nothing was set up: no teardown to run
fi
step prepare bash "$HERE/prepare.sh"
step "Docker engine" bash "$REPO_ROOT/tests/e2e/docker/dockerd.sh"

phase_start "images: tests/e2e/images.sh"
if [ "${STRATA_E2E_SKIP_IMAGES:-0}" = 1 ]; then
  phase_end skipped
elif [ ! -f "$REPO_ROOT/tests/e2e/images.sh" ]; then
  phase_end MISSING; log "tests/e2e/images.sh is not in the tree"; rc=1; exit 1
elif ! bash "$REPO_ROOT/tests/e2e/images.sh"; then
  phase_end FAILED; log "tests/e2e/images.sh failed (see its output above)"; rc=1; exit 1
else
  phase_end ok
fi
for img in $IMAGES; do
  "$DOCKER" image inspect "$img" >/dev/null 2>&1 || { log "image $img is not in the Docker engine"; rc=1; exit 1; }
done

export STRATA_K8S_IMAGES="$IMAGES"
step bring-up bash "$HERE/up.sh"
step smoke bash "$HERE/smoke.sh"

[ -d "$REPO_ROOT/charts/strata" ] || { log "charts/strata is not in the tree"; rc=1; exit 1; }
[ -x "$REPO_ROOT/.venv/bin/python" ] || { log ".venv is missing: run make venv"; rc=1; exit 1; }
"$REPO_ROOT/.venv/bin/python" "$HERE/proofs.py" \
  --kubeconfig "$KUBECONFIG_FILE" --helm "$TOOLS_DIR/helm" --kubectl "$TOOLS_DIR/kubectl" \
  --busybox-image "$SMOKE_IMAGE" --containerd-sock "$CONTAINERD_SOCK" \
  ${STRATA_E2E_ONLY:+--only "$STRATA_E2E_ONLY"} || rc=1
exit "$rc"
