#!/usr/bin/env bash
# Prove the bare cluster works before any chart is involved: a 2-replica Deployment behind a
# ClusterIP Service and a NodePort Service, reached from the node (ClusterIP, 127.0.0.1
# NodePort) and from another pod by DNS name; kubectl logs/exec/port-forward; a PVC bound to
# a hostPath PV written by a non-root pod. Cleans up after itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_FILE"
RUN_ID="$(date +%s)"
NS="strata-smoke-$RUN_ID"
PV="strata-e2e-smoke-$RUN_ID"
BB=/bin/busybox
# host-side HTTP GET. Debian's static busybox 1.35 `wget -T` segfaults on this kernel, so
# the host uses python and pods use busybox wget without -T (bounded by timeout instead).
hget() { /usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())' "$1"; }

phase_start "smoke: trivial workload"
trap 'kubectl delete ns "$NS" --wait=false >/dev/null 2>&1; kubectl delete pv "$PV" --wait=false >/dev/null 2>&1 || true' EXIT
kubectl create ns "$NS" >/dev/null
mkdir -p "$STATE_DIR/pv/smoke-$RUN_ID"; chmod 0777 "$STATE_DIR/pv/smoke-$RUN_ID"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: $PV, labels: {strata-e2e-smoke: "$RUN_ID"}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  hostPath: {path: "$STATE_DIR/pv/smoke-$RUN_ID", type: Directory}
YAML
kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsUser: 10001, runAsGroup: 10001, runAsNonRoot: true}
      containers:
      - name: web
        image: $SMOKE_IMAGE
        imagePullPolicy: Never
        command: ["$BB", "sh", "-c", "$BB mkdir -p /tmp/www && $BB hostname > /tmp/www/index.html && echo serving && exec $BB httpd -f -p 8080 -h /tmp/www"]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
        volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  selector: {matchLabels: {strata-e2e-smoke: "$RUN_ID"}}
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 10001, runAsGroup: 10001, runAsNonRoot: true}
  containers:
  - name: client
    image: $SMOKE_IMAGE
    imagePullPolicy: Never
    command: ["$BB", "sh", "-c", "echo hello > /data/hello && exec $BB sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
YAML
kubectl -n "$NS" rollout status deploy/web --timeout=90s >/dev/null || die "web deployment not ready"
kubectl -n "$NS" wait --for=condition=Ready pod/client --timeout=60s >/dev/null || die "client pod not ready"
cip="$(kubectl -n "$NS" get svc web -o jsonpath='{.spec.clusterIP}')"
np="$(kubectl -n "$NS" get svc web-np -o jsonpath='{.spec.ports[0].nodePort}')"
names=""
for _ in $(seq 1 40); do
  names+="$(hget "http://$cip/")"$'\n'
  [ "$(printf '%s' "$names" | sort -u | grep -c .)" = 2 ] && break
  sleep 0.25
done
[ "$(printf '%s' "$names" | sort -u | grep -c .)" = 2 ] || die "ClusterIP $cip did not reach both replicas in 40 requests"
log "node -> ClusterIP $cip: both replicas answered"
hget "http://127.0.0.1:$np/" >/dev/null || die "NodePort 127.0.0.1:$np unreachable"
log "node -> 127.0.0.1:$np (NodePort): ok"
out="$(timeout 20 kubectl -n "$NS" exec client -- $BB wget -q -O- http://web/)" || die "pod -> web by DNS failed"
out2="$(timeout 20 kubectl -n "$NS" exec client -- $BB wget -q -O- "http://web.$NS.svc.$CLUSTER_DOMAIN/")" || die "pod -> FQDN failed"
log "pod -> Service by DNS (short and FQDN): ok ($out, $out2)"
[ "$(kubectl -n "$NS" exec client -- $BB cat /data/hello)" = hello ] || die "PVC not writable by non-root"
kubectl -n "$NS" get pvc data -o jsonpath='{.status.phase}' | grep -qx Bound || die "PVC not Bound"
log "PVC bound to a hostPath PV and writable by uid 10001: ok"
kubectl -n "$NS" logs deploy/web 2>/dev/null | grep -q serving || die "kubectl logs failed"
pod="$(kubectl -n "$NS" get pod -l app=web -o jsonpath='{.items[0].metadata.name}')"
kubectl -n "$NS" port-forward "pod/$pod" 18080:8080 >/dev/null 2>&1 & pf=$!
ok=0; for _ in $(seq 1 30); do hget http://127.0.0.1:18080/ >/dev/null 2>&1 && { ok=1; break; }; sleep 0.2; done
kill "$pf" 2>/dev/null; wait "$pf" 2>/dev/null || true
[ $ok = 1 ] || die "kubectl port-forward failed"
log "kubectl logs/exec/port-forward: ok"
# pod deletion takes ~10 s in this kubelet: do not wait for it (teardown removes the PV dir)
kubectl delete ns "$NS" --wait=false >/dev/null
kubectl delete pv "$PV" --wait=false >/dev/null
trap - EXIT
phase_end ok
