#!/usr/bin/env bash
# Prepare this host for the kind run (as root on Debian 12; idempotent).
#
#   bash tests/e2e/kind/host.sh packages   # the Debian packages the build and the run need
#   bash tests/e2e/kind/host.sh runtime    # make privileged containers start; prints the
#                                          # directory to put first on kind's PATH, if needed
#
# runtime: Docker gives a privileged container every capability; where this host's bounding
# set lacks some (CAP_SYS_RESOURCE on the CI machines), runc cannot start it. Then the
# strata-kind-runc runtime (runtime/strata_kind_runc.py) is installed at $RUNTIME_PATH,
# registered in /etc/docker/daemon.json ("runtimes", which dockerd reloads on SIGHUP), and
# runtime/docker — the `docker` kind will call — adds it to kind's `docker run --privileged`.
set -euo pipefail
# shellcheck source=tests/e2e/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNTIME_NAME=strata-kind-runc
RUNTIME_PATH=/usr/local/sbin/strata-kind-runc
DAEMON_JSON=${STRATA_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
# debootstrap + docker.io: images without a registry; gcc, libc6-dev, libseccomp-dev,
# pkg-config: runc (cgo, static libseccomp) and pause (C); busybox-static: the proofs' helper
# image; npm (below): the pinned helm; python3-venv: the proofs' venv; curl, jq, iptables: the host
# side of the kind network; docker-registry: proof 17's registry (chart and images from oci://).
PACKAGES=(docker.io:dockerd debootstrap gcc libc6-dev libseccomp-dev pkg-config busybox-static
    python3-venv ca-certificates curl jq iptables git docker-registry)

packages() { # tests/e2e/packages.sh: installs as root, names the missing ones otherwise
    # Debian's npm only where there is none (a NodeSource nodejs brings its own and conflicts)
    bash "$REPO_ROOT/tests/e2e/packages.sh" "${PACKAGES[@]}" npm:npm || return
    [[ -x /usr/local/go/bin/go ]] || command -v go >/dev/null ||
        die "Go is not installed (the CI machines have it at /usr/local/go)"
}

missing_capabilities() { # the CAP_* of the kernel this process's bounding set lacks
    python3 - "$KIND_DIR/runtime" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from strata_kind_runc import CAPABILITIES, held_capabilities
last = int(open("/proc/sys/kernel/cap_last_cap").read())
held = held_capabilities(open("/proc/self/status").read())
print(" ".join(f"CAP_{c}" for c in CAPABILITIES[: last + 1] if f"CAP_{c}" not in held))
PY
}

runtime() {
    local missing
    missing=$(missing_capabilities)
    if [[ ${STRATA_KIND_RUNTIME:-} == docker ]]; then
        log "host: STRATA_KIND_RUNTIME=docker: kind runs with Docker's own runtime"
        return
    fi
    if [[ -z $missing ]]; then
        log "host: every capability is available; kind runs with Docker's own runtime"
        return
    fi
    log "host: this host withholds $missing: kind's privileged nodes run with $RUNTIME_NAME"
    install -m 0755 "$KIND_DIR/runtime/strata_kind_runc.py" "$RUNTIME_PATH"
    mkdir -p "$(dirname "$DAEMON_JSON")"
    python3 - "$DAEMON_JSON" "$RUNTIME_NAME" "$RUNTIME_PATH" <<'PY'
import json, os, sys
path, name, exe = sys.argv[1:]
cfg = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
if cfg.get("runtimes", {}).get(name, {}).get("path") != exe:
    cfg.setdefault("runtimes", {})[name] = {"path": exe}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(tmp, path)
PY
    local loaded="\"$RUNTIME_NAME\":{\"path\":\"$RUNTIME_PATH\""
    if ! "$DOCKER" info --format '{{json .Runtimes}}' 2>/dev/null | grep -qF "$loaded"; then
        # dockerd re-reads "runtimes" from daemon.json on SIGHUP (a reload, not a restart)
        local pid
        pid=$(cat /var/run/strata-dockerd.pid 2>/dev/null || pidof dockerd || true)
        [[ $pid =~ ^[0-9]+$ ]] || die "cannot find the dockerd to reload (pid '$pid')"
        kill -HUP "$pid"
        local i
        for i in $(seq 50); do
            "$DOCKER" info --format '{{json .Runtimes}}' | grep -qF "$loaded" && break
            sleep 0.2
        done
        "$DOCKER" info --format '{{json .Runtimes}}' | grep -qF "$loaded" ||
            die "dockerd did not load the $RUNTIME_NAME runtime from $DAEMON_JSON"
    fi
    echo "$KIND_DIR/runtime"
}

case ${1:-} in
packages) packages ;;
runtime) runtime ;;
*) die "usage: host.sh packages|runtime" ;;
esac
