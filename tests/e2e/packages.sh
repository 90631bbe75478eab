#!/usr/bin/env bash
# The one installer of Debian packages for the e2e targets and .ci/run.
#
#   bash tests/e2e/packages.sh [--dry-run] SPEC...
#   source tests/e2e/packages.sh; need_packages SPEC...
#
# SPEC is PACKAGE (needed unless dpkg says it is installed) or PACKAGE:COMMAND (needed unless
# COMMAND is on PATH, whoever installed it: a runner's docker-ce provides `dockerd` without
# Debian's docker.io, which would conflict with it; a NodeSource nodejs brings its own npm).
#
# Nothing missing: exit 0, silently. As root: apt-get update and install the missing ones,
# with a policy-rc.d that keeps their maintainer scripts from starting services (dockerd,
# etcd, postgresql, docker-registry: every harness starts its own, on its own ports).
# Not root: print the exact packages and the command to install them, exit 2.
# --dry-run (or STRATA_PACKAGES_DRY_RUN=1): print "would install: ..." and change nothing.
# STRATA_PACKAGES_POLICY_RC_D: the policy-rc.d path (default /usr/sbin/policy-rc.d; tests).
# Exit codes: 0 all present (or installed, or dry run), 1 apt-get failed, 2 missing, not root.

_pkg_log() { printf 'packages.sh: %s\n' "$*" >&2; }

# missing_packages SPEC... -> the package names still needed, one per line
missing_packages() {
    local spec pkg cmd
    for spec in "$@"; do
        pkg=${spec%%:*}
        if [[ $spec == *:* ]]; then
            cmd=${spec#*:}
            # sbin too: a non-root PATH on Debian lacks it, and dockerd lives there
            PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 ||
                echo "$pkg"
        elif ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            echo "$pkg"
        fi
    done
}

# need_packages [--dry-run] SPEC...: make sure the packages are there (see the header)
need_packages() {
    local dry=${STRATA_PACKAGES_DRY_RUN:-0}
    if [[ ${1:-} == --dry-run ]]; then
        dry=1
        shift
    fi
    local missing=() p
    while IFS= read -r p; do [[ -n $p ]] && missing+=("$p"); done < <(missing_packages "$@")
    ((${#missing[@]})) || return 0
    if [[ $dry == 1 ]]; then
        echo "would install: ${missing[*]}"
        return 0
    fi
    if [[ $(id -u) != 0 ]]; then
        _pkg_log "missing Debian packages: ${missing[*]}"
        _pkg_log "install them as root: apt-get install -y --no-install-recommends ${missing[*]}"
        return 2
    fi
    _pkg_log "installing: ${missing[*]}"
    # An existing policy-rc.d (Docker-made machines have one) is left as it is.
    local policy=${STRATA_PACKAGES_POLICY_RC_D:-/usr/sbin/policy-rc.d} created_policy=0 st=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >&2 || st=1
    ((created_policy)) && rm -f "$policy"
    ((st == 0)) || _pkg_log "apt-get install ${missing[*]} failed"
    return "$st"
}

# Run (also as `bash -s` from stdin), not sourced: `return` fails outside a sourced file.
if ! (return 0 2>/dev/null); then
    set -uo pipefail
    need_packages "$@"
    exit $?
fi
