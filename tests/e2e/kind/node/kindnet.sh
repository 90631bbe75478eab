#!/bin/bash
# The pod network agent of the locally built kind node (k8s/kind/node/default-cni.yaml explains
# why it replaces kindnetd). Runs in a hostNetwork pod with NET_ADMIN; every 10 s it makes sure
#   1. /etc/cni/net.d/10-kindnet.conflist exists: ptp + host-local IPAM on this node's podCIDR
#      (from the API server) + portmap — the node turns Ready once it is there;
#   2. pod traffic to destinations outside the pod network and the node is masqueraded;
#   3. the first packet of every new connection from or to a pod goes to NFQUEUE $NFQUEUE_ID,
#      where kube-network-policies accepts or drops it. Root-owned sockets on the node (kubelet
#      probes) and established connections skip the queue, as in kube-network-policies' own
#      rules; --queue-bypass lets packets through while nothing listens (fail open).
# Environment: NODE_NAME, POD_SUBNET, CONTROL_PLANE_ENDPOINT (host:port, added by kind),
# NFQUEUE_ID; KINDNET_ONCE=1 does one round and exits (tests), CNI_CONF_DIR and SA_DIR move the
# CNI config and the service account files (tests).
set -euo pipefail

SA=${SA_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
CONF=${CNI_CONF_DIR:-/etc/cni/net.d}/10-kindnet.conflist
CHAIN_MASQ=STRATA-KINDNET-MASQ
CHAIN_NP=STRATA-KINDNET-NETPOL
: "${NODE_NAME:?}" "${POD_SUBNET:?}" "${CONTROL_PLANE_ENDPOINT:?}" "${NFQUEUE_ID:=100}"

log() { printf '%s kindnet: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

pod_cidr() { # this node's spec.podCIDR, empty until the controller-manager assigned it
    curl -fsS --max-time 5 --cacert "$SA/ca.crt" -H "Authorization: Bearer $(cat "$SA/token")" \
        "https://$CONTROL_PLANE_ENDPOINT/api/v1/nodes/$NODE_NAME" | jq -r '.spec.podCIDR // empty'
}

write_conf() { # podCIDR
    local tmp
    tmp=$(mktemp "$(dirname "$CONF")/.kindnet.XXXXXX")
    jq -n --arg cidr "$1" '{
        cniVersion: "0.4.0", name: "kindnet",
        plugins: [
          {type: "ptp", ipMasq: false, mtu: 1500,
           ipam: {type: "host-local", dataDir: "/run/cni-ipam-state",
                  routes: [{dst: "0.0.0.0/0"}], ranges: [[{subnet: $cidr}]]}},
          {type: "portmap", capabilities: {portMappings: true}}]}' >"$tmp"
    if ! cmp -s "$tmp" "$CONF"; then
        chmod 0644 "$tmp" && mv "$tmp" "$CONF"
        log "wrote $CONF for podCIDR $1"
    else
        rm -f "$tmp"
    fi
}

ensure_rule() { # table chain rule...: append the rule unless it is there
    local table=$1 chain=$2
    shift 2
    iptables -w 5 -t "$table" -C "$chain" "$@" 2>/dev/null || iptables -w 5 -t "$table" -A "$chain" "$@"
}

ensure_chain() { # table chain
    iptables -w 5 -t "$1" -nL "$2" >/dev/null 2>&1 || iptables -w 5 -t "$1" -N "$2"
}

ensure_rules() {
    ensure_chain nat "$CHAIN_MASQ"
    ensure_rule nat "$CHAIN_MASQ" -d "$POD_SUBNET" -j RETURN
    ensure_rule nat "$CHAIN_MASQ" -j MASQUERADE
    ensure_rule nat POSTROUTING -s "$POD_SUBNET" -m addrtype ! --dst-type LOCAL -j "$CHAIN_MASQ"

    # mangle/POSTROUTING sees forwarded and local traffic after DNAT and before SNAT, like the
    # postrouting hook kube-network-policies' own nftables rules use.
    ensure_chain mangle "$CHAIN_NP"
    ensure_rule mangle "$CHAIN_NP" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
    ensure_rule mangle "$CHAIN_NP" -m owner --uid-owner 0 -j RETURN
    ensure_rule mangle "$CHAIN_NP" -s "$POD_SUBNET" -j NFQUEUE --queue-num "$NFQUEUE_ID" --queue-bypass
    ensure_rule mangle "$CHAIN_NP" -d "$POD_SUBNET" -j NFQUEUE --queue-num "$NFQUEUE_ID" --queue-bypass
    ensure_rule mangle POSTROUTING -j "$CHAIN_NP"
}

log "node $NODE_NAME, pod subnet $POD_SUBNET, API $CONTROL_PLANE_ENDPOINT, NFQUEUE $NFQUEUE_ID"
trap 'log "stopping"; exit 0' TERM INT
while true; do
    cidr=$(pod_cidr || true)
    if [[ -n $cidr ]]; then
        write_conf "$cidr"
        ensure_rules
    else
        log "waiting for the podCIDR of node $NODE_NAME"
    fi
    [[ ${KINDNET_ONCE:-0} != 1 ]] || exit 0
    # poll fast until the node has its CNI config, then every 10 s
    sleep "$([[ -e $CONF ]] && echo 10 || echo 1)" &
    wait $! || true
done
