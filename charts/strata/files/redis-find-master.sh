# Who is master when a Redis pod of sentinel mode starts (its redis and sentinel containers
# both run this before they write their config). Prints "<host> <port>" of the master on
# stdout (this node's own name when it is to be master), and why on stderr.
#
#   1. the running Sentinels of the other pods, when they agree (they know about failovers);
#   2. else the master this pod's own Sentinel last recorded on the volume (all pods
#      restarted at once: the last master stays master, and no acknowledged write is
#      dropped by resyncing it from a stale replica);
#   3. else the first pod (a first start).
#
# Starting as master while a failover of this very node is still under way is how writes get
# lost: the new master's promotion later makes this node its replica and discards what it
# acknowledged meanwhile (seen on kind: the master pod deleted, its Sentinels stalled and then
# in TILT for 30 s, the restarted pod took writes for 33 s and lost them). So when Sentinels
# name this node, it does not start as master while one of them counts it down, fails it
# over, has had no PING reply from it for over half of down-after-milliseconds (the count
# may end before this node answers), or is in TILT (it acts on nothing for 30 s, so its word
# is stale); while another Sentinel does not answer within 3 s (a stalled Sentinel may be the
# failover's leader); or while another names a different master. It waits instead, at most
# FIND_WAIT seconds; then a master some Sentinel names elsewhere wins, else this node.
# When no Sentinel names this node, it does not wait: when they name another node, this one
# starts as its replica at once (a wrong replica costs no acknowledged write, Sentinel
# corrects it; a wrong master does), and when none answers, the volume or pod 0 decide. Only
# if that makes this node master and a Sentinel is silent (it accepts, never answers) does it
# wait for that one too; a Sentinel that refuses, or whose name does not resolve, is not
# running and fails at once.
#
# Input, from the environment (the pod sets them; the tests set them for loopback servers):
#   FIND_SELF            this node as Sentinel names it: "<host> <port>"
#   FIND_FIRST           the first pod's node, "<host> <port>" (master of a first start)
#   FIND_SENTINELS       the other pods' Sentinels, "host:port" separated by spaces
#   FIND_MASTER          the master name Sentinel monitors
#   FIND_WAIT            longest wait, in seconds, for Sentinels that cannot vouch (one
#                        round of questions may add 3 s per question on top)
#   FIND_SENTINEL_CONF   this pod's Sentinel config file (may not exist)
#   FIND_SENTINEL_AUTH   the Sentinels' password ("" without auth)
#   FIND_TLS_CA          CA file when the Sentinels serve TLS only ("" = plain text)
# Needs sh, redis-cli, timeout, awk, tr, date and sleep (the Redis image has them). POSIX sh.
# Runs in a subshell of its caller ($(...)), so the exports, exits and set +e stay in here.
set +e
if [ -n "$FIND_SENTINEL_AUTH" ]; then export REDISCLI_AUTH="$FIND_SENTINEL_AUTH"; else unset REDISCLI_AUTH; fi
ask() { # host:port args... (timeout's status 124: no answer in time)
  _addr=$1; shift
  if [ -n "${FIND_TLS_CA:-}" ]; then set -- --tls --cacert "$FIND_TLS_CA" "$@"; fi
  timeout 3 redis-cli --no-auth-warning -e --raw -h "${_addr%:*}" -p "${_addr##*:}" "$@" 2>/dev/null
}
# Without an answer from any Sentinel: what this pod's own Sentinel last recorded (all pods
# restarted), else the first pod (a first start).
fallback=""
if [ -f "$FIND_SENTINEL_CONF" ]; then
  fallback=$(awk -v name="$FIND_MASTER" '$1 == "sentinel" && $2 == "monitor" && $3 == name { print $4, $5; exit }' "$FIND_SENTINEL_CONF")
fi
if [ -n "$fallback" ]; then
  why="no Sentinel answers; this pod's Sentinel last knew $fallback as master"
else
  fallback=$FIND_FIRST why="no Sentinel answers and none ran here before: first start, $FIND_FIRST is master"
fi
until=$(($(date +%s) + FIND_WAIT))
while :; do
  names_me="" elsewhere="" pending="" silent=""
  for addr in $FIND_SENTINELS; do
    reply=$(ask "$addr" SENTINEL get-master-addr-by-name "$FIND_MASTER"); rc=$?
    if [ "$rc" -eq 124 ]; then silent="$silent $addr: no answer in 3 s;"; continue; fi
    named=$(printf '%s\n' "$reply" | head -n 2 | tr '\n' ' ')
    named=${named% }
    # Not running (refused, no DNS name yet), or it does not monitor this master: no opinion.
    [ "$rc" -eq 0 ] && [ -n "$named" ] || continue
    if [ "$named" != "$FIND_SELF" ]; then
      [ -n "$elsewhere" ] || elsewhere="$named via $addr"
      continue
    fi
    names_me="$names_me $addr"
    # flags, ms since this node last answered its PING, down-after-milliseconds
    state=$(ask "$addr" SENTINEL master "$FIND_MASTER" | tr -d '\r' | awk '
      prev == "flags" { f = $0 } prev == "last-ok-ping-reply" { p = $0 }
      prev == "down-after-milliseconds" { d = $0 } { prev = $0 } END { if (f != "") print f, p + 0, d + 0 }')
    set -- $state
    flags=${1:-} silence=${2:-0} down_after=${3:-0}
    # No answer about the flags counts as pending too: fail towards waiting.
    case ",$flags," in
      ,,|*,s_down,*|*,o_down,*|*,failover_in_progress,*) pending="$pending $addr: ${flags:-no flags};" ;;
      *)
        # Not yet counted down, but silent for over half of down-after (and two PING
        # periods): the count may end, and a failover start, before this node answers.
        limit=$((down_after / 2)); [ "$limit" -ge 2000 ] || limit=2000
        [ "$silence" -le "$limit" ] || pending="$pending $addr: no PING reply for ${silence} ms;"
        ;;
    esac
    tilt=$(ask "$addr" INFO sentinel | tr -d '\r' | awk -F: '$1 == "sentinel_tilt" { print $2 }')
    case $tilt in
      0) ;;
      1) pending="$pending $addr: in TILT;" ;;
      *) pending="$pending $addr: no answer about TILT;" ;;
    esac
  done
  if [ -n "$names_me" ]; then
    pending="$pending$silent"
    [ -z "$elsewhere" ] || pending="$pending the Sentinels disagree (${names_me# } name this node, ${elsewhere});"
  elif [ -z "$elsewhere" ] && [ "$fallback" = "$FIND_SELF" ]; then
    pending=$silent # only silent Sentinels, and the fallback is this node: wait for them too
  else
    pending="" # no Sentinel names this node: see above
  fi
  if [ -n "$pending" ] && [ "$(date +%s)" -ge "$until" ]; then
    echo "redis: waited ${FIND_WAIT}s; still:${pending}" >&2
    pending=""
  fi
  if [ -z "$pending" ]; then
    if [ -n "$elsewhere" ]; then
      echo "redis: a Sentinel names ${elsewhere} as master" >&2; echo "${elsewhere% via *}"; exit 0
    fi
    if [ -n "$names_me" ]; then
      echo "redis: the Sentinels${names_me} name this node as master" >&2; echo "$FIND_SELF"; exit 0
    fi
    break
  fi
  echo "redis: not starting as master yet:${pending} waiting" >&2
  sleep 1
done
echo "redis: $why" >&2
echo "$fallback"
