# Handover of a stopping Redis master in sentinel mode (the redis container's preStop hook).
#
# A pod that is deleted, evicted or rolled is stopped on purpose: instead of leaving Sentinel
# to notice a dead master (down-after-milliseconds, then an election), a master hands over
# before it stops. It pauses client writes, waits until its replicas have every write it
# acknowledged, and asks a Sentinel of another pod for a failover. A write acknowledged
# before the pause is on the replica Sentinel promotes; a write sent during the pause is
# never acknowledged (it fails with READONLY once this node is a replica, or when it stops).
# A replica, a master without an online replica, or a failover that cannot be had in time
# stops as before: the script unpauses and exits 0 (a preStop hook must never block a stop).
#
# Input, from the environment (the pod sets them; the tests set them for loopback servers):
#   HANDOVER_SELF       this node as Sentinel names it: "<host> <port>"
#   HANDOVER_SENTINELS  the other pods' Sentinels, "host:port" separated by spaces
#   HANDOVER_MASTER     the master name Sentinel monitors
#   HANDOVER_PORT       this node's Redis port (127.0.0.1)
#   HANDOVER_TIMEOUT    seconds the handover may take once writes are paused
#   REDISCLI_AUTH       this node's password (unset or "" without auth)
#   HANDOVER_SENTINEL_AUTH  the Sentinels' password ("" without auth)
#   HANDOVER_TLS_CA     CA file when Redis and Sentinel serve TLS only (redis.tls.server;
#                       unset or "" = plain text): every redis-cli call then uses TLS
# The chart gives the pod HANDOVER_TIMEOUT + 10 s to stop: the pause is set that long, so it
# never lapses while this script can still make this node a replica.
# Needs sh, redis-cli, sed, date and sleep (the Redis image has them). POSIX sh.
set -u
# redis-cli sends AUTH whenever REDISCLI_AUTH is set, even empty: a server without a password
# refuses that, so an empty password must be no variable at all.
[ -n "${REDISCLI_AUTH:-}" ] || unset REDISCLI_AUTH
say() { echo "redis handover: $*" >&2; }
local_cli() {
  if [ -n "${HANDOVER_TLS_CA:-}" ]; then set -- --tls --cacert "$HANDOVER_TLS_CA" "$@"; fi
  redis-cli --no-auth-warning --raw -h 127.0.0.1 -p "$HANDOVER_PORT" "$@"
}
sentinel_cli() ( # host:port args... (a subshell: its REDISCLI_AUTH stays here)
  _addr=$1; shift
  if [ -n "$HANDOVER_SENTINEL_AUTH" ]; then export REDISCLI_AUTH="$HANDOVER_SENTINEL_AUTH"; else unset REDISCLI_AUTH; fi
  if [ -n "${HANDOVER_TLS_CA:-}" ]; then set -- --tls --cacert "$HANDOVER_TLS_CA" "$@"; fi
  exec timeout 3 redis-cli --no-auth-warning --raw -h "${_addr%:*}" -p "${_addr##*:}" "$@"
)
field() { sed -n "s/^$1:\\([^[:space:]]*\\).*/\\1/p"; } # INFO field value (CR stripped)
left() { echo $((deadline - $(date +%s))); }

info=$(local_cli INFO replication 2>/dev/null | tr -d '\r')
[ "$(printf '%s\n' "$info" | field role)" = master ] || exit 0
online=$(printf '%s\n' "$info" | grep -c '^slave[0-9]*:.*state=online' || true)
if [ "$online" -eq 0 ]; then say "master without an online replica: stopping without handover"; exit 0; fi

# A Sentinel of another pod that sees this node as master (this pod's own stops with it).
via=""
for addr in $HANDOVER_SENTINELS; do
  named=$(sentinel_cli "$addr" SENTINEL get-master-addr-by-name "$HANDOVER_MASTER" 2>/dev/null | tr '\n' ' ')
  if [ "$named" = "$HANDOVER_SELF " ]; then via=$addr; break; fi
done
if [ -z "$via" ]; then say "no other Sentinel names this node as master: stopping without handover"; exit 0; fi

# Writes wait from here (reads go on). The pause outlasts this script's deadline by 10 s, the
# time the pod has left to stop, so it cannot lapse before REPLICAOF; it ends by itself (or
# with the process) if this script dies.
[ "$(local_cli CLIENT PAUSE $(((HANDOVER_TIMEOUT + 10) * 1000)) WRITE 2>/dev/null)" = OK ] ||
  { say "CLIENT PAUSE failed: stopping without handover"; exit 0; }
deadline=$(($(date +%s) + HANDOVER_TIMEOUT))
unpause() { local_cli CLIENT UNPAUSE >/dev/null 2>&1; }
# Every online replica at this node's offset: the promoted one then has every acknowledged write.
while :; do
  info=$(local_cli INFO replication | tr -d '\r')
  offset=$(printf '%s\n' "$info" | field master_repl_offset)
  behind=$(printf '%s\n' "$info" | grep '^slave[0-9]*:.*state=online' | grep -vc "offset=$offset," || true)
  [ "$behind" -eq 0 ] && break
  if [ "$(left)" -le 0 ]; then say "replicas did not catch up in time: stopping without handover"; unpause; exit 0; fi
  sleep 0.05
done
answer=$(sentinel_cli "$via" SENTINEL FAILOVER "$HANDOVER_MASTER" 2>/dev/null)
if [ "$answer" != OK ]; then say "Sentinel $via refused the failover ($answer): stopping without handover"; unpause; exit 0; fi
while :; do
  named=$(sentinel_cli "$via" SENTINEL get-master-addr-by-name "$HANDOVER_MASTER" 2>/dev/null | tr '\n' ' ')
  if [ -n "$named" ] && [ "$named" != "$HANDOVER_SELF " ]; then break; fi
  if [ "$(left)" -le 0 ]; then
    # Sentinel may still promote: unpaused, this node could acknowledge writes the new master
    # never sees. The pause ends with the process, which stops next.
    say "no new master within ${HANDOVER_TIMEOUT}s: stopping with writes paused"
    exit 0
  fi
  sleep 0.1
done
# Become the new master's replica now rather than when Sentinel gets round to it (its next
# INFO, up to 10 s later): until then an unpaused old master would acknowledge writes that
# are discarded when it is converted. Paused writers then get READONLY and move on.
set -- $named
if [ "$(local_cli REPLICAOF "$1" "$2" 2>&1)" != OK ]; then
  say "REPLICAOF $1 $2 failed: stopping with writes paused"
  exit 0
fi
say "handed over to $1:$2 at offset $offset"
unpause
exit 0
