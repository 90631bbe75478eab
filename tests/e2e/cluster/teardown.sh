#!/usr/bin/env bash
# Undo everything up.sh did to this host. Best effort at every step, safe to run twice and
# on a half-started cluster. Touches only this harness's processes (by pid file, checked
# against /proc/PID/cmdline), KUBE-*/CNI-* iptables chains and the rules that jump to them,
# its own links, cni-* network namespaces, mounts under its own dirs, and the sysctls it
# recorded. Exit status 1 if something it owns is still left afterwards.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

stop_pids() { # name=pattern ...: TERM them all, wait up to 10 s, then KILL the rest.
  # Only a pid whose /proc/PID/cmdline still matches its pattern is signalled.
  local spec name pat pf pid pids=()
  for spec in "$@"; do
    name="${spec%%=*}"; pat="${spec#*=}"; pf="$RUN_DIR/$name.pid"
    [ -s "$pf" ] || continue
    pid="$(cat "$pf")"; rm -f "$pf"
    if [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *"$pat"* ]]; then
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    fi
  done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  return 0
}

phase_start "teardown"
BIN="$(k8s_bin_dir)"
CTR=(ctr -a "$CONTAINERD_SOCK" -n k8s.io)

# 1. Stop the controllers so nothing is recreated, then let the kubelet remove every pod
#    properly (CNI DEL undoes the per-pod network and iptables state).
stop_pids kube-controller-manager=kube-controller-manager kube-scheduler=kube-scheduler
if [ -s "$KUBECONFIG_FILE" ] && timeout 5 kubectl --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz >/dev/null 2>&1 \
   && [ -s "$RUN_DIR/kubelet.pid" ] && kill -0 "$(cat "$RUN_DIR/kubelet.pid")" 2>/dev/null; then
  timeout 20 kubectl --kubeconfig "$KUBECONFIG_FILE" delete pods --all -A --grace-period=0 --force --wait=false >/dev/null 2>&1
  # Give the kubelet a few seconds; whatever is left is removed by force below (step 2),
  # and its network state by steps 3-4.
  for _ in $(seq 1 16); do
    n="$(timeout 5 "${CTR[@]}" tasks ls -q 2>/dev/null | wc -l)"; [ "${n:-0}" = 0 ] && break; sleep 0.5
  done
fi
log "teardown: pods removed or given up on"
stop_pids dns-watcher=dns_watcher.py dnsmasq=dnsmasq kubelet=kubelet kube-proxy=kube-proxy
stop_pids kube-apiserver=kube-apiserver
stop_pids etcd=etcd

log "teardown: cluster processes stopped"
# 2. Whatever containers remain: kill and delete them through our containerd, then stop it
#    and any shim it left (matched by our socket path).
if [ -S "$CONTAINERD_SOCK" ]; then
  for t in $(timeout 10 "${CTR[@]}" tasks ls -q 2>/dev/null); do
    timeout 10 "${CTR[@]}" tasks kill -s KILL "$t" >/dev/null 2>&1
    timeout 10 "${CTR[@]}" tasks delete -f "$t" >/dev/null 2>&1
  done
  for c in $(timeout 10 "${CTR[@]}" containers ls -q 2>/dev/null); do
    timeout 10 "${CTR[@]}" containers delete "$c" >/dev/null 2>&1
  done
fi
stop_pids "containerd=containerd --config $STATE_DIR/containerd.toml"
cmdline_of() { tr '\0' ' ' 2>/dev/null <"$1/cmdline"; }
for p in /proc/[0-9]*; do
  c="$(cmdline_of "$p")"
  [[ "$c" == *containerd-shim*"-address $CONTAINERD_SOCK"* ]] && kill -KILL "${p#/proc/}" 2>/dev/null
done

log "teardown: containerd stopped"
# 3. iptables: kube-proxy's own cleanup, then any KUBE-*/CNI-* chain and every rule jumping
#    to one. Docker's chains and the FORWARD policy are left as they are.
[ -n "$BIN" ] && [ -x "$BIN/kube-proxy" ] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
# One `iptables-restore --noflush` transaction per table (hundreds of single iptables calls
# take half a minute); rule by rule only if that fails.
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle raw; do
    rules="$("$ipt" -t "$table" -S 2>/dev/null)" || continue
    jumps="$(grep -E '^-A ' <<<"$rules" | grep -E -- '-[jg] (KUBE-|CNI-)' | grep -Ev '^-A (KUBE-|CNI-)' || true)"
    chains="$(awk '/^-N (KUBE-|CNI-)/{print $2}' <<<"$rules")"
    [ -n "$jumps$chains" ] || continue
    script="*$table"$'\n'
    [ -n "$jumps" ] && script+="$(sed 's/^-A /-D /' <<<"$jumps")"$'\n'
    for c in $chains; do script+="-F $c"$'\n'; done
    for c in $chains; do script+="-X $c"$'\n'; done
    script+="COMMIT"$'\n'
    if ! "$ipt-restore" --noflush <<<"$script" 2>/dev/null; then
      [ -n "$jumps" ] && while IFS= read -r rule; do eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null; done <<<"$jumps"
      for c in $chains; do "$ipt" -t "$table" -F "$c" 2>/dev/null; done
      for c in $chains; do "$ipt" -t "$table" -X "$c" 2>/dev/null; done
    fi
  done
done
log "teardown: iptables cleaned"
conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1
conntrack -D -s "$POD_CIDR" >/dev/null 2>&1
conntrack -D -d "$POD_CIDR" >/dev/null 2>&1

# 4. network namespaces the CNI made, our links (the service route goes with the veth).
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null; done
for link in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
  ip link delete "$link" 2>/dev/null
done
ip link delete "$BRIDGE" 2>/dev/null
ip link delete "$VETH_HOST" 2>/dev/null
ip route del "$SERVICE_CIDR" 2>/dev/null

log "teardown: network namespaces and links removed"
# 5. mounts under our directories (secrets tmpfs, overlay rootfs, shm, netns binds).
for root in "$STATE_DIR" "$RUN_DIR"; do
  for m in $(awk -v r="$root" 'index($5, r"/") == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
done

log "teardown: mounts removed"
# 6. sysctls and directories we changed or created, then our own state.
if [ -s "$STATE_DIR/host/sysctl" ]; then
  while read -r k v; do [ -w "/proc/sys/$k" ] && echo "$v" >"/proc/sys/$k" 2>/dev/null; done <"$STATE_DIR/host/sysctl"
fi
if [ -s "$STATE_DIR/host/created-dirs" ]; then
  while read -r d; do case "$d" in /var/log/pods|/var/log/containers) rm -rf "$d" ;; esac; done <"$STATE_DIR/host/created-dirs"
fi
for cg in /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/k8s.io; do
  [ -d "$cg" ] && find "$cg" -depth -mindepth 0 -type d -exec rmdir {} \; 2>/dev/null
done
rm -rf "$STATE_DIR" "$RUN_DIR" 2>/dev/null

log "teardown: sysctls restored, state removed"
# 7. verify
left=()
for p in /proc/[0-9]*; do
  c="$(cmdline_of "$p")"
  [[ "$c" == *"$STATE_DIR"* || "$c" == *"$RUN_DIR/"* || "$c" == *"$CACHE_ROOT/"*/bin/kube* ]] && left+=("pid ${p#/proc/}: ${c:0:60}")
done
ip link show "$VETH_HOST" >/dev/null 2>&1 && left+=("link $VETH_HOST")
ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("link $BRIDGE")
for ipt in iptables ip6tables; do
  for table in filter nat mangle; do
    "$ipt" -t "$table" -S 2>/dev/null | grep -qE '^-N (KUBE-|CNI-)' && left+=("$ipt $table chains")
  done
done
[ -e "$STATE_DIR" ] && left+=("$STATE_DIR")
if [ ${#left[@]} -gt 0 ]; then
  phase_end "INCOMPLETE: ${left[*]}"; exit 1
fi
phase_end ok
