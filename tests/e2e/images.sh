#!/usr/bin/env bash
# Build Strata's container images on a machine without an image registry. Idempotent.
#
#   bash tests/e2e/images.sh                 # everything, in this order:
#   bash tests/e2e/images.sh base postgres redis postgresql critical ml cache
#
#   base      local/python-base:bookworm  Debian bookworm + python3.11 + venv, made with
#                                         debootstrap (no registry to pull from); built only
#                                         when missing (STRATA_REBUILD_BASE=1 forces it)
#   critical  strata-critical:0.1.0       Dockerfile.critical
#   ml        strata-ml:0.1.0             Dockerfile.ml
#   cache     strata-cache:0.1.0          Dockerfile.cache
#   postgres  strata-test/postgres:15     tests/e2e/docker/postgres (Debian's PostgreSQL 15,
#                                         the official image's env, PGDATA and uid 999)
#   redis     strata-test/redis:7         tests/e2e/docker/redis (Debian's Redis 7, the official
#                                         image's command, /data and uid 999)
#   postgresql strata-postgresql:15-patroni4.1.5  k8s/postgres: the chart's PostgreSQL (Debian's
#                                         PostgreSQL 15 + pgBackRest, Patroni from PyPI, pinned)
#
# Docker's layer cache makes a second run fast; the service images rebuild only the layers
# whose inputs changed (dependencies are one layer keyed on pyproject.toml, code another).
# Prints one line per image with its build time and size.
#
# Environment:
#   DOCKER               client (default /usr/bin/docker: Debian's, with BuildKit)
#   STRATA_BASE_IMAGE    base for every image (default local/python-base:bookworm; set it to
#                        python:3.12-slim-bookworm where a registry is reachable, and the
#                        debootstrap step is skipped)
#   STRATA_TEST_BASE_IMAGE  base for the PostgreSQL/Redis test images (default: STRATA_BASE_IMAGE;
#                        debian:bookworm-slim works too)
#   STRATA_DEBIAN_MIRROR mirror for debootstrap (default: the one apt uses, else deb.debian.org)
#   STRATA_CA_BUNDLE     CA bundle handed to pip as a build secret (default: the system bundle)
#   STRATA_IMAGE_TAG     service image tag (default: version from pyproject.toml); also the
#                        suffix of the PostgreSQL image's tag (15-patroni<version>-<tag>)
#   STRATA_POSTGRESQL_IMAGE  the PostgreSQL image's full name (overrides the above)
#   STRATA_IMAGE_SOURCE  org.opencontainers.image.source (default: git remote origin, if any)
#   STRATA_REBUILD_BASE=1  rebuild the debootstrap base even if it exists
#   STRATA_NO_CACHE=1    docker build --no-cache
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/e2e/docker"
DOCKER=${DOCKER:-/usr/bin/docker}
[[ -x $DOCKER ]] || DOCKER=$(command -v docker)
export DOCKER_BUILDKIT=1

BASE_IMAGE=${STRATA_BASE_IMAGE:-local/python-base:bookworm}
TEST_BASE_IMAGE=${STRATA_TEST_BASE_IMAGE:-$BASE_IMAGE}
CA_BUNDLE=${STRATA_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)
TAG=${STRATA_IMAGE_TAG:-$VERSION}
# The chart's PostgreSQL image: its tag names what it runs (k8s/postgres/requirements.txt).
PATRONI_VERSION=$(sed -n 's/^patroni\[kubernetes\]==//p' "$ROOT/k8s/postgres/requirements.txt")
# With STRATA_IMAGE_TAG it carries that tag as a suffix, like the service images take it.
POSTGRESQL_IMAGE=${STRATA_POSTGRESQL_IMAGE:-strata-postgresql:15-patroni$PATRONI_VERSION${STRATA_IMAGE_TAG:+-$STRATA_IMAGE_TAG}}
# Read-only git queries: the revision label and the source URL.
REVISION=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ $REVISION != unknown ]] && [[ -n $(git -C "$ROOT" --no-optional-locks status --porcelain -- services pyproject.toml 'Dockerfile.*' 2>/dev/null) ]]; then
    REVISION="$REVISION-dirty"
fi
SOURCE=${STRATA_IMAGE_SOURCE:-$(git -C "$ROOT" remote get-url origin 2>/dev/null || echo "unknown")}

log() { printf 'images.sh: %s\n' "$*" >&2; }
SUMMARY=()

size_mb() { # image -> size in MB (10^6 bytes, as docker prints it)
    "$DOCKER" image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f", $1 / 1000000}'
}

record() { # image seconds note
    SUMMARY+=("$(printf '%-28s %7s MB  %4ss  %s' "$1" "$(size_mb "$1")" "$2" "$3")")
}

debian_mirror() {
    if [[ -n ${STRATA_DEBIAN_MIRROR:-} ]]; then
        echo "$STRATA_DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
    local image=local/python-base:bookworm start=$SECONDS
    if [[ $BASE_IMAGE != "$image" ]]; then
        log "base: using $BASE_IMAGE (no debootstrap)"
        return
    fi
    if [[ ${STRATA_REBUILD_BASE:-0} != 1 ]] && "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
        record "$image" 0 "cached (STRATA_REBUILD_BASE=1 rebuilds it)"
        return
    fi
    command -v debootstrap >/dev/null || {
        log "debootstrap is not installed (apt-get install -y debootstrap)"
        exit 1
    }
    local mirror work
    mirror=$(debian_mirror)
    work=$(mktemp -d /tmp/strata-base.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    log "base: debootstrap bookworm from $mirror (about a minute)"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    fi
    # What the official slim images do: the apt sources with security updates, no docs,
    # man pages or locales (also for packages installed later by derived images).
    cat >"$work/rootfs/etc/apt/sources.list" <<EOF
deb ${mirror%/} bookworm main
deb ${mirror%/} bookworm-updates main
deb ${mirror%/}-security bookworm-security main
EOF
    cat >"$work/rootfs/etc/dpkg/dpkg.cfg.d/strata-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat >"$work/rootfs/etc/apt/apt.conf.d/strata-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    find "$work/rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
    find "$work/rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$work/rootfs"/usr/share/{man,info,locale,lintian}/* \
        "$work/rootfs"/var/cache/apt/* "$work/rootfs"/var/lib/apt/lists/* \
        "$work/rootfs"/var/log/* "$work/rootfs"/debootstrap
    local raw=local/python-base:bookworm-raw
    tar -C "$work/rootfs" -c . | "$DOCKER" import - "$raw" >/dev/null
    # Apply the security and point-release updates, then flatten to one layer.
    local cid
    cid=$("$DOCKER" create "$raw" sh -c 'set -e
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get upgrade -y -qq >/dev/null
        apt-get clean
        rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old')
    if ! "$DOCKER" start -a "$cid" >&2; then
        "$DOCKER" rm -f "$cid" >/dev/null
        log "base: apt-get upgrade in the base failed"
        exit 1
    fi
    "$DOCKER" export "$cid" | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        --message "debootstrap bookworm minbase + python3 python3-venv ca-certificates" \
        - "$image" >/dev/null
    "$DOCKER" rm -f "$cid" >/dev/null
    "$DOCKER" rmi "$raw" >/dev/null
    rm -rf "$work"
    trap - EXIT
    record "$image" $((SECONDS - start)) "debootstrap ($("$DOCKER" run --rm "$image" python3 -V))"
}

build() { # image context dockerfile [build args...]
    local image=$1 context=$2 dockerfile=$3 start=$SECONDS
    shift 3
    local args=(--file "$dockerfile" --tag "$image" --progress "${STRATA_PROGRESS:-plain}")
    [[ ${STRATA_NO_CACHE:-0} == 1 ]] && args+=(--no-cache)
    log "building $image"
    local out
    out=$(mktemp /tmp/strata-build.XXXXXX)
    if ! "$DOCKER" build "${args[@]}" "$@" "$context" >"$out" 2>&1; then
        tail -n 60 "$out" >&2
        rm -f "$out"
        log "FAILED: $image"
        exit 1
    fi
    # BuildKit's plain progress names each Dockerfile step "#N [stage i/n] ..." and prints
    # "#N CACHED" when it reused the layer.
    local steps hits
    steps=$(grep -cE '^#[0-9]+ \[[^]]*[0-9]+/[0-9]+\]' "$out" || true)
    hits=$(grep -cE '^#[0-9]+ CACHED' "$out" || true)
    rm -f "$out"
    record "$image" $((SECONDS - start)) "$hits/$steps steps cached"
}

service() { # critical|ml|cache
    local svc=$1
    [[ -f $ROOT/services/$svc/__init__.py ]] || {
        log "services/$svc is not in the tree; cannot build strata-$svc"
        exit 1
    }
    local secret=()
    # pip trusts this CA bundle (the machine's, which may hold a TLS-intercepting proxy's CA).
    [[ -s $CA_BUNDLE ]] && secret=(--secret "id=ca,src=$CA_BUNDLE")
    build "strata-$svc:$TAG" "$ROOT" "$ROOT/Dockerfile.$svc" "${secret[@]}" \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --build-arg "VERSION=$VERSION" \
        --build-arg "REVISION=$REVISION" \
        --build-arg "SOURCE=$SOURCE"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(base postgres redis postgresql critical ml cache)
total=$SECONDS
bash "$HERE/dockerd.sh"
for t in "${targets[@]}"; do
    case $t in
    base) build_base ;;
    critical | ml | cache)
        [[ $BASE_IMAGE != local/python-base:bookworm ]] || "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || build_base
        service "$t"
        ;;
    postgresql)
        [[ $BASE_IMAGE != local/python-base:bookworm ]] || "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || build_base
        pg_secret=()
        [[ -s $CA_BUNDLE ]] && pg_secret=(--secret "id=ca,src=$CA_BUNDLE")
        build "$POSTGRESQL_IMAGE" "$ROOT/k8s/postgres" "$ROOT/k8s/postgres/Dockerfile" "${pg_secret[@]}" \
            --build-arg "BASE_IMAGE=$BASE_IMAGE"
        ;;
    postgres | redis)
        [[ $TEST_BASE_IMAGE != local/python-base:bookworm ]] || "$DOCKER" image inspect "$TEST_BASE_IMAGE" >/dev/null 2>&1 || build_base
        major=15
        [[ $t == redis ]] && major=7
        build "strata-test/$t:$major" "$HERE/$t" "$HERE/$t/Dockerfile" \
            --build-arg "BASE_IMAGE=$TEST_BASE_IMAGE"
        ;;
    *)
        log "unknown target: $t (base, postgres, redis, postgresql, critical, ml, cache)"
        exit 2
        ;;
    esac
done
printf '%s\n' "images.sh: built in $((SECONDS - total))s (image, size, build seconds):"
printf '  %s\n' "${SUMMARY[@]}"
