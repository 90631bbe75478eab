#!/usr/bin/env bash
# Certificates for the throwaway cluster: one CA, the apiserver serving cert, one admin client
# cert (system:masters) used by every component and by kubectl, the apiserver->kubelet client
# cert, and the service-account key pair. Written to $PKI; removed by teardown.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$PKI"; cd "$PKI"
umask 077
ossl() { openssl "$@" 2>/dev/null; }
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
ossl req -x509 -new -nodes -key ca.key -sha256 -days 2 -subj "/CN=strata-e2e-ca" -out ca.crt
sign() { # name subject extfile-content
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
  ossl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" >"$1.ext"
  ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 \
    -extfile "$1.ext" -out "$1.crt"
}
sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,IP:127.0.0.1,IP:$KUBE_API_SVC_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost"
sign admin "/O=system:masters/CN=strata-e2e-admin" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
sign kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sa.key
ossl pkey -in sa.key -pubout -out sa.pub
rm -f ./*.csr ./*.ext ca.srl
cat >"$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: strata-e2e
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: strata-e2e
  context: {cluster: strata-e2e, user: admin, namespace: default}
current-context: strata-e2e
KC
