#!/usr/bin/env bash
# Make sure a Docker engine answers; start Debian's dockerd (package docker.io) if none does.
#
#   bash tests/e2e/docker/dockerd.sh          # idempotent; exits 0 once `docker info` answers
#   bash tests/e2e/docker/dockerd.sh stop     # stops the dockerd this script started (by pid)
#
# The engine is started with setsid so it outlives the calling shell (CI steps, pytest), with
# the overlay2 storage driver and its own containerd (under /var/run/docker/containerd, so it
# does not touch a system containerd at /run/containerd that a Kubernetes node may use).
# Exit codes: 0 engine answers, 2 no engine can be started here (not installed, not root, or it
# did not answer in time; the reason is printed on stderr).
#
# Environment: DOCKER (client, default /usr/bin/docker, Debian's, which has BuildKit),
# STRATA_DOCKERD_LOG (default /var/log/strata-dockerd.log), STRATA_DOCKERD_WAIT (seconds, 60).
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
[[ -x $DOCKER ]] || DOCKER=$(command -v docker || true)
LOG=${STRATA_DOCKERD_LOG:-/var/log/strata-dockerd.log}
WAIT=${STRATA_DOCKERD_WAIT:-60}
PIDFILE=${STRATA_DOCKERD_PIDFILE:-/var/run/strata-dockerd.pid}

if [[ ${1:-start} == stop ]]; then
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        echo "dockerd.sh: no dockerd started by this script is running" >&2
        rm -f "$PIDFILE"
        exit 0
    fi
    kill -TERM "$pid"
    deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "dockerd.sh: dockerd ($pid) did not stop within 30s" >&2
        exit 1
    fi
    rm -f "$PIDFILE"
    echo "dockerd.sh: dockerd ($pid) stopped" >&2
    exit 0
fi

if [[ -z $DOCKER ]]; then
    echo "dockerd.sh: no docker client found (apt-get install -y docker.io)" >&2
    exit 2
fi
if "$DOCKER" info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd.sh: the Docker engine is not installed (apt-get install -y docker.io)" >&2
    exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "dockerd.sh: no engine answers and only root can start dockerd here" >&2
    exit 2
fi

mkdir -p "$(dirname "$LOG")"
echo "dockerd.sh: starting dockerd (log: $LOG)" >&2
setsid dockerd --storage-driver=overlay2 >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"
deadline=$((SECONDS + WAIT))
until "$DOCKER" info >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
        echo "dockerd.sh: dockerd did not answer within ${WAIT}s; last log lines:" >&2
        tail -n 20 "$LOG" >&2 || true
        exit 2
    fi
    sleep 0.5
done
echo "dockerd.sh: engine ready ($("$DOCKER" version --format '{{.Server.Version}}'))" >&2
