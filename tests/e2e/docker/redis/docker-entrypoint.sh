#!/usr/bin/env bash
# Entrypoint with the official redis image's behaviour (a compatible subset): see Dockerfile.
set -euo pipefail

# `docker run image --appendonly yes` or `docker run image /path/redis.conf` mean redis-server.
if [[ ${1:-} == -* || ${1:-} == *.conf ]]; then
    set -- redis-server "$@"
fi

if [[ ${1:-} == redis-server ]]; then
    if [[ $(id -u) == 0 ]]; then
        find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
        exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
    fi
    # The official image compiles protected mode off; Debian's binary has it on. Match the
    # official default unless the arguments or a config file decide.
    protected=""
    for arg in "$@"; do
        [[ $arg == --protected-mode || $arg == *.conf ]] && protected=1
    done
    [[ -n $protected ]] || set -- "$@" --protected-mode no
    umask 0077
fi

exec "$@"
