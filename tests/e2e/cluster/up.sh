#!/usr/bin/env bash
# Bring up a single-node Kubernetes v1.20.2 on this host: veth node IP, etcd, kube-apiserver,
# controller-manager, scheduler, containerd (private socket and root), kubelet, kube-proxy,
# dnsmasq cluster DNS, a default StorageClass with hostPath PVs. Needs prepare.sh first.
# Everything it changes is recorded under $STATE_DIR/host and undone by teardown.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BIN="$(k8s_bin_dir)"
[ -n "$BIN" ] && [ -e "$BIN/.complete" ] || die "no cached kubernetes binaries: run prepare.sh"
VDIR="$(dirname "$BIN")"
PV_COUNT="${STRATA_K8S_PV_COUNT:-12}"

if [ -e "$STATE_DIR/host" ] || [ -e "$RUN_DIR" ]; then
  log "leftovers of an earlier cluster found: tearing them down first"
  bash "$HARNESS_DIR/teardown.sh"
fi

start_bg() { # name cmd... : start detached, pid in $RUN_DIR/name.pid, log in $LOG_DIR/name.log
  local name="$1"; shift
  setsid "$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}
wait_for() { # seconds description command...
  local secs="$1" what="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.3
  done
}
alive() { kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null || die "$1 exited: $(tail -5 "$LOG_DIR/$1.log")"; }

phase_start "bring-up: host network"
mkdir -p "$STATE_DIR/host" "$RUN_DIR" "$LOG_DIR"
# Record what we are about to change so teardown can put it back.
: >"$STATE_DIR/host/sysctl"
for k in net/ipv4/conf/all/route_localnet net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables \
         vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
         kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  [ -e "/proc/sys/$k" ] && echo "$k $(cat "/proc/sys/$k")" >>"$STATE_DIR/host/sysctl"
done
for d in /var/log/pods /var/log/containers; do
  [ -e "$d" ] || echo "$d" >>"$STATE_DIR/host/created-dirs"
done
touch "$STATE_DIR/host/created-dirs"
ip link add "$VETH_HOST" type veth peer name "$VETH_PEER"
ip addr add "$NODE_IP/24" dev "$VETH_HOST"
ip link set "$VETH_HOST" up; ip link set "$VETH_PEER" up
ip route add "$SERVICE_CIDR" dev "$VETH_HOST" src "$NODE_IP"
echo 1 >/proc/sys/net/ipv4/ip_forward
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
phase_end ok

phase_start "bring-up: pki"
bash "$HARNESS_DIR/pki.sh"
phase_end ok

phase_start "bring-up: containerd (image import in background)"
mkdir -p "$STATE_DIR/containerd" "$STATE_DIR/cni/net.d" "$STATE_DIR/cni/networks" "$RUN_DIR/containerd"
cat >"$STATE_DIR/containerd.toml" <<TOML
version = 2
root = "$STATE_DIR/containerd"
state = "$RUN_DIR/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE_DIR/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
TOML
cat >"$STATE_DIR/cni/net.d/10-strata.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "strata-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": true,
     "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]],
              "dataDir": "$STATE_DIR/cni/networks"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
JSON
start_bg containerd containerd --config "$STATE_DIR/containerd.toml"
wait_for 30 containerd ctr -a "$CONTAINERD_SOCK" version
ctr -a "$CONTAINERD_SOCK" -n k8s.io images import "$VDIR/pause-image.tar" >/dev/null
ctr -a "$CONTAINERD_SOCK" -n k8s.io images import "$CACHE_ROOT/busybox-image.tar" >/dev/null
# docker save | ctr import of the chart's images runs while the control plane starts.
IMPORT_PIDS=()
if [ -n "${STRATA_K8S_IMAGES:-}" ]; then
  for img in $STRATA_K8S_IMAGES; do
    ( set -o pipefail
      "${DOCKER:-/usr/bin/docker}" save "$img" | ctr -a "$CONTAINERD_SOCK" -n k8s.io images import - >/dev/null \
        || { echo "import of $img into containerd failed" >&2; exit 1; } ) >>"$LOG_DIR/image-import.log" 2>&1 &
    IMPORT_PIDS+=("$!")
  done
fi
phase_end ok

phase_start "bring-up: etcd + control plane"
start_bg etcd etcd --name strata-e2e --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "strata-e2e=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
  --quota-backend-bytes 2147483648 --log-level warn
wait_for 30 etcd bash -c "exec 3<>/dev/tcp/127.0.0.1/$ETCD_CLIENT_PORT"
start_bg kube-apiserver "$BIN/kube-apiserver" \
  --advertise-address="$NODE_IP" --bind-address="$NODE_IP" --secure-port="$API_PORT" --insecure-port=0 \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --service-cluster-ip-range="$SERVICE_CIDR" --service-node-port-range=30000-32767 \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/kubelet-client.crt" --kubelet-client-key="$PKI/kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --authorization-mode=Node,RBAC --allow-privileged=true \
  --enable-admission-plugins=NodeRestriction --profiling=false --event-ttl=10m
wait_for 60 "kube-apiserver /readyz" kc get --raw /readyz
start_bg kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_FILE" --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --bind-address=127.0.0.1 --secure-port=10257 --port=0 --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
  --controllers='*,-nodeipam,-cloud-node-lifecycle,-route,-service' --node-monitor-period=2s \
  --concurrent-deployment-syncs=5 --profiling=false
start_bg kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_FILE" --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --bind-address=127.0.0.1 --secure-port=10259 --port=0 --leader-elect=false --profiling=false
phase_end ok

phase_start "bring-up: wait for image imports"
for p in "${IMPORT_PIDS[@]}"; do wait "$p" || die "$(cat "$LOG_DIR/image-import.log")"; done
[ -z "${STRATA_K8S_IMAGES:-}" ] || log "imported: $STRATA_K8S_IMAGES"
phase_end ok

phase_start "bring-up: kubelet + kube-proxy"
mkdir -p "$STATE_DIR/kubelet" "$STATE_DIR/kubelet-plugins"
start_bg kubelet "$BIN/kubelet" \
  --kubeconfig="$KUBECONFIG_FILE" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --address="$NODE_IP" \
  --root-dir="$STATE_DIR/kubelet" --volume-plugin-dir="$STATE_DIR/kubelet-plugins" --cert-dir="$STATE_DIR/kubelet/pki" \
  --tls-cert-file="$PKI/kubelet.crt" --tls-private-key-file="$PKI/kubelet.key" \
  --container-runtime=remote --container-runtime-endpoint="unix://$CONTAINERD_SOCK" --runtime-request-timeout=5m \
  --pod-infra-container-image="$PAUSE_IMAGE" --cgroup-driver=cgroupfs \
  --cgroups-per-qos=false --enforce-node-allocatable= --fail-swap-on=false \
  --anonymous-auth=false --client-ca-file="$PKI/ca.crt" --authorization-mode=AlwaysAllow --read-only-port=0 \
  --healthz-bind-address=127.0.0.1 \
  --cluster-dns="$DNS_SVC_IP" --cluster-domain="$CLUSTER_DOMAIN" \
  --node-status-update-frequency=2s --sync-frequency=5s \
  --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
  --eviction-hard='memory.available<100Mi,nodefs.available<1%,imagefs.available<1%' \
  --serialize-image-pulls=false --max-pods=60 --v=1
start_bg kube-proxy "$BIN/kube-proxy" \
  --kubeconfig="$KUBECONFIG_FILE" --hostname-override="$NODE_NAME" --proxy-mode=iptables \
  --cluster-cidr="$POD_CIDR" --bind-address="$NODE_IP" \
  --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249 \
  --nodeport-addresses=127.0.0.0/8,"$NODE_CIDR" \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --iptables-sync-period=30s --iptables-min-sync-period=0s --v=1
wait_for 60 "node $NODE_NAME Ready" bash -c \
  "kubectl --kubeconfig '$KUBECONFIG_FILE' get node '$NODE_NAME' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
alive kubelet; alive kube-proxy; alive containerd
phase_end ok

phase_start "bring-up: cluster DNS + storage"
mkdir -p "$STATE_DIR/dns"; : >"$STATE_DIR/dns/hosts"
start_bg dnsmasq dnsmasq --keep-in-foreground --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
  --listen-address="$NODE_IP" --bind-interfaces --port=53 --addn-hosts="$STATE_DIR/dns/hosts" \
  --local="/$CLUSTER_DOMAIN/" --domain-needed --cache-size=0 --pid-file= --user=root
sleep 0.3; alive dnsmasq
start_bg dns-watcher /usr/bin/python3 "$HARNESS_DIR/dns_watcher.py" --kubeconfig "$KUBECONFIG_FILE" \
  --hosts "$STATE_DIR/dns/hosts" --dnsmasq-pid "$(cat "$RUN_DIR/dnsmasq.pid")" --domain "$CLUSTER_DOMAIN"
{
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_SVC_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
subsets:
- addresses: [{ip: $NODE_IP}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
YAML
  for i in $(seq -w 1 "$PV_COUNT"); do
    mkdir -p "$STATE_DIR/pv/pv$i"; chmod 0777 "$STATE_DIR/pv/pv$i"
    cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: strata-e2e-pv$i, labels: {strata-e2e: "true"}}
spec:
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  hostPath: {path: "$STATE_DIR/pv/pv$i", type: DirectoryOrCreate}
YAML
  done
} | kc apply -f - >/dev/null
wait_for 30 "default service account" kc get serviceaccount default
phase_end ok
log "cluster up: export KUBECONFIG=$KUBECONFIG_FILE"
