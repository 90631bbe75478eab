#!/usr/bin/env bash
# End-to-end run of the Strata chart on kind (`make e2e-kind`):
#
#   1. create a kind cluster from k8s/kind/cluster.yaml (ingress-ready node, host ports 80/443)
#   2. build the three service images and `kind load docker-image` them
#   3. install ingress-nginx (kind provider manifest, pinned), allowing ':' in Ingress paths
#   4. helm upgrade --install --wait the chart with the loaded images (pullPolicy Never) and the
#      Ingress on for a host, with TLS (the chart's default) from a self-signed test certificate
#   5. helm test
#   6. through the Ingress, over HTTPS: a transfer on critical, a bulk ingest + export on ml, a put/get and
#      mget on cache; /metrics must not be routed
#   7. helm upgrade --wait with a changed value (rolls every Deployment), data still there
#   8. helm rollback --wait to the first revision, data still there, helm test again
#
# It needs a machine with a container registry: kind pulls its node image, ingress-nginx,
# postgres and redis images, and the service images build FROM python:3.12-slim-bookworm.
# Strata's CI machines have no registry, so this cannot run there: CI installs the chart on a
# real single-node cluster instead (`make e2e-cluster`), and .github/workflows/kind-e2e.yml
# runs this script on a hosted runner.
#
# Environment: KIND_CLUSTER_NAME (strata-e2e), NAMESPACE (strata), RELEASE (strata),
# IMAGE_TAG (e2e), KEEP_CLUSTER=1 keeps the cluster afterwards, REUSE_CLUSTER=1 reuses an
# existing cluster of that name, SKIP_BUILD=1 loads already built images, HELM/KIND/KUBECTL/
# DOCKER/PYTHON override the tools (PYTHON needs PyJWT: the project's .venv by default).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${KIND_CLUSTER_NAME:-strata-e2e}
NAMESPACE=${NAMESPACE:-strata}
RELEASE=${RELEASE:-strata}
TAG=${IMAGE_TAG:-e2e}
HELM=${HELM:-helm}
KIND=${KIND:-kind}
KUBECTL=${KUBECTL:-kubectl}
DOCKER=${DOCKER:-docker}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
if [[ ! -x $PYTHON ]]; then PYTHON=python3; fi
INGRESS_NGINX_MANIFEST=https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.12.1/deploy/static/provider/kind/deploy.yaml
# The chart's Ingress needs a host and serves TLS by default: a throwaway self-signed
# certificate for a name curl resolves to the kind node's port 443 (--resolve, no DNS).
INGRESS_HOST=strata.kind.test
BASE_URL=https://$INGRESS_HOST
SERVICES=(critical ml cache)

cat >&2 <<'NOTE'
NOTE: tests/e2e/kind.sh needs a machine with access to a container registry (kind node
image, ingress-nginx, postgres, redis, python base images). It cannot run on Strata's CI
machines, which have none; there `make e2e-cluster` installs the chart on a real cluster
built from Debian packages. The workflow .github/workflows/kind-e2e.yml runs this script.
NOTE

START=$SECONDS
phase() { printf '\n==> [%4ss] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

for tool in "$DOCKER" "$KIND" "$KUBECTL" "$HELM" curl openssl "$PYTHON"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
"$PYTHON" -c 'import jwt' 2>/dev/null || die "$PYTHON lacks PyJWT (run make venv, or set PYTHON)"
"$DOCKER" info >/dev/null 2>&1 || die "the Docker engine does not answer"

CREATED=0
WORK=$(mktemp -d)
on_exit() {
    local rc=$?
    if ((rc != 0)) && "$KUBECTL" version >/dev/null 2>&1; then
        echo "---- diagnostics (exit $rc) ----" >&2
        "$KUBECTL" get all,pvc,ingress,secret -n "$NAMESPACE" -o wide >&2 || true
        "$KUBECTL" get events -n "$NAMESPACE" --sort-by=.lastTimestamp >&2 || true
        for pod in $("$KUBECTL" get pods -n "$NAMESPACE" -o name 2>/dev/null); do
            echo "---- $pod" >&2
            "$KUBECTL" logs -n "$NAMESPACE" "$pod" --all-containers --tail=50 >&2 || true
        done
    fi
    rm -rf "$WORK"
    if ((CREATED)) && [[ ${KEEP_CLUSTER:-0} != 1 ]]; then
        "$KIND" delete cluster --name "$CLUSTER" >&2 || true
    fi
    exit "$rc"
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------------
phase "kind cluster $CLUSTER"
if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    [[ ${REUSE_CLUSTER:-0} == 1 ]] || die "cluster $CLUSTER exists (REUSE_CLUSTER=1 to use it)"
else
    CREATED=1
    "$KIND" create cluster --name "$CLUSTER" --config "$ROOT/k8s/kind/cluster.yaml" --wait 180s
fi
"$KUBECTL" config use-context "kind-$CLUSTER" >/dev/null

# ---------------------------------------------------------------------------------------------
phase "images"
for svc in "${SERVICES[@]}"; do
    image="strata-$svc:$TAG"
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        DOCKER_BUILDKIT=1 "$DOCKER" build -f "$ROOT/Dockerfile.$svc" -t "$image" \
            --build-arg REVISION="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
            "$ROOT"
    fi
    "$KIND" load docker-image "$image" --name "$CLUSTER"
done

# ---------------------------------------------------------------------------------------------
phase "ingress-nginx"
"$KUBECTL" apply -f "$INGRESS_NGINX_MANIFEST"
"$KUBECTL" wait -n ingress-nginx --for=condition=complete job --all --timeout=180s
# ingress-nginx rejects ':' in paths by default; the chart routes /v1/kv:mget and /v1/kv:mset
# by Exact paths (API.md). Allow ':' and restart the controller so its webhook uses the setting.
"$KUBECTL" patch configmap ingress-nginx-controller -n ingress-nginx --type merge \
    -p '{"data":{"strict-validate-path-type":"false","path-additional-allowed-chars":"^%$[](){}*+?|:"}}'
"$KUBECTL" rollout restart deployment ingress-nginx-controller -n ingress-nginx
"$KUBECTL" rollout status deployment ingress-nginx-controller -n ingress-nginx --timeout=180s
"$KUBECTL" wait -n ingress-nginx --for=condition=ready pod \
    --selector=app.kubernetes.io/component=controller --timeout=180s

# ---------------------------------------------------------------------------------------------
phase "TLS certificate for $INGRESS_HOST"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$INGRESS_HOST" \
    -addext "subjectAltName=DNS:$INGRESS_HOST" -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
"$KUBECTL" create namespace "$NAMESPACE" --dry-run=client -o yaml | "$KUBECTL" apply -f -
"$KUBECTL" create secret tls "$RELEASE-tls" -n "$NAMESPACE" --cert "$WORK/tls.crt" \
    --key "$WORK/tls.key" --dry-run=client -o yaml | "$KUBECTL" apply -f -

HELM_ARGS=(
    --namespace "$NAMESPACE"
    --set ingress.enabled=true
    --set "ingress.host=$INGRESS_HOST"
    --set ingress.className=nginx
)
for svc in "${SERVICES[@]}"; do
    HELM_ARGS+=(
        --set "$svc.image.repository=strata-$svc"
        --set "$svc.image.tag=$TAG"
        --set "$svc.image.pullPolicy=Never"
    )
done

phase "helm upgrade --install --wait"
"$HELM" upgrade --install "$RELEASE" "$ROOT/charts/strata" --create-namespace --wait \
    --timeout 10m "${HELM_ARGS[@]}"

phase "helm test"
"$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 5m

# ---------------------------------------------------------------------------------------------
# Each service has its own generated HS256 secret (auth.<svc>): sign its tokens with that one.
declare -A JWT_SECRETS
for svc in "${SERVICES[@]}"; do
    JWT_SECRETS[$svc]=$("$KUBECTL" get secret -n "$NAMESPACE" "$RELEASE-$svc-jwt" \
        -o jsonpath='{.data.jwt-secret}' | base64 -d)
    [[ ${#JWT_SECRETS[$svc]} -ge 32 ]] || die "JWT secret not found in Secret $RELEASE-$svc-jwt"
done

token() { # SERVICE "SCOPES" -> an HS256 token the service accepts
    JWT_SECRET="${JWT_SECRETS[$1]}" "$PYTHON" - "$1" "$2" <<'PY'
import os, sys, time, jwt
now = int(time.time())
claims = {"sub": "kind-e2e", "aud": "strata-" + sys.argv[1], "scope": sys.argv[2],
          "iat": now, "nbf": now, "exp": now + 1800}
print(jwt.encode(claims, os.environ["JWT_SECRET"], algorithm="HS256"))
PY
}

json_get() { # FIELD < JSON -> value (a dotted path; numbers print as numbers)
    "$PYTHON" -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value if not isinstance(value, (dict, list)) else json.dumps(value))' "$1"
}

# call EXPECTED_STATUS METHOD PATH TOKEN [BODY [CONTENT_TYPE [EXTRA_HEADER]]] -> body on stdout
call() {
    local expected=$1 method=$2 path=$3 tok=$4 body=${5:-} ctype=${6:-application/json} extra=${7:-}
    local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$method" --max-time 30
        --resolve "$INGRESS_HOST:443:127.0.0.1" --cacert "$WORK/tls.crt")
    if [[ -n $tok ]]; then args+=(-H "Authorization: Bearer $tok"); fi
    if [[ -n $body ]]; then args+=(-H "Content-Type: $ctype" --data-binary "$body"); fi
    if [[ -n $extra ]]; then args+=(-H "$extra"); fi
    local status
    status=$(curl "${args[@]}" "$BASE_URL$path")
    if [[ $status != "$expected" ]]; then
        echo "$method $path -> $status (expected $expected): $(head -c 500 "$WORK/body")" >&2
        return 1
    fi
    cat "$WORK/body"
}

CRIT=$(token critical "accounts:read accounts:write transfers:write ledger:admin")
ML=$(token ml "docs:read docs:write collections:admin")
CACHE=$(token cache "cache:read cache:write")

phase "through the Ingress"
for _ in $(seq 60); do # the controller picks the Ingress up within seconds
    call 200 GET "/v1/accounts?limit=1" "$CRIT" >/dev/null 2>&1 && break
    sleep 2
done
call 200 GET "/v1/accounts?limit=1" "$CRIT" >/dev/null

RUN_ID=$(date +%s)
A=$(call 201 POST /v1/accounts "$CRIT" '{"owner":"kind-a","currency":"EUR"}' | json_get id)
B=$(call 201 POST /v1/accounts "$CRIT" '{"owner":"kind-b","currency":"EUR"}' | json_get id)
call 201 POST "/v1/accounts/$A/deposits" "$CRIT" "{\"amount\":1000,\"reference\":\"seed-$RUN_ID\"}" >/dev/null
TRANSFER="{\"from_account\":\"$A\",\"to_account\":\"$B\",\"amount\":250,\"currency\":\"EUR\",\"reference\":\"kind-$RUN_ID\"}"
call 201 POST /v1/transfers "$CRIT" "$TRANSFER" application/json "Idempotency-Key: kind-$RUN_ID" >/dev/null
# the replay moves no money and returns the original answer
call 201 POST /v1/transfers "$CRIT" "$TRANSFER" application/json "Idempotency-Key: kind-$RUN_ID" >/dev/null
check_balances() {
    local a b
    a=$(call 200 GET "/v1/accounts/$A" "$CRIT" | json_get balance)
    b=$(call 200 GET "/v1/accounts/$B" "$CRIT" | json_get balance)
    [[ $a == 750 && $b == 250 ]] || die "balances are $a/$b, expected 750/250"
    echo "critical: balances 750/250" >&2
}
check_balances

COLL="kind-$RUN_ID"
call 201 PUT "/v1/collections/$COLL" "$ML" >/dev/null
NDJSON=$'{"label":"cat","n":1}\n{"label":"dog","n":2}\n{"label":"cat","n":3}\n'
inserted=$(call 201 POST "/v1/collections/$COLL/documents:bulk" "$ML" "$NDJSON" application/x-ndjson | json_get inserted)
[[ $inserted == 3 ]] || die "bulk ingest inserted $inserted documents, expected 3"
check_export() {
    local lines
    lines=$(call 200 GET "/v1/collections/$COLL/export" "$ML" | grep -c .)
    [[ $lines == 3 ]] || die "export returned $lines lines, expected 3"
    echo "ml: export of 3 documents" >&2
}
check_export

call 200 PUT "/v1/kv/kind-$RUN_ID" "$CACHE" '{"value":{"hello":"kind"}}' >/dev/null
check_cache() {
    local v
    v=$(call 200 GET "/v1/kv/kind-$RUN_ID" "$CACHE" | json_get value.hello)
    [[ $v == kind ]] || die "cache GET returned $v"
    v=$(call 200 POST /v1/kv:mget "$CACHE" "{\"keys\":[\"kind-$RUN_ID\"]}" | json_get "values.kind-$RUN_ID.hello")
    [[ $v == kind ]] || die "cache mget returned $v"
    echo "cache: put/get/mget" >&2
}
check_cache

# /metrics, /livez, /openapi.json are not routed by the Ingress.
call 404 GET /metrics "" >/dev/null
call 401 GET "/v1/accounts?limit=1" "" >/dev/null

# ---------------------------------------------------------------------------------------------
phase "helm upgrade --wait (changed value rolls every Deployment)"
"$HELM" upgrade "$RELEASE" "$ROOT/charts/strata" --wait --timeout 10m "${HELM_ARGS[@]}" \
    --set logLevel=DEBUG
for svc in "${SERVICES[@]}"; do
    "$KUBECTL" rollout status -n "$NAMESPACE" "deployment/$RELEASE-$svc" --timeout=5m
done
check_balances
check_export
check_cache

phase "helm rollback --wait"
"$HELM" rollback "$RELEASE" 1 --namespace "$NAMESPACE" --wait --timeout 10m
for svc in "${SERVICES[@]}"; do
    "$KUBECTL" rollout status -n "$NAMESPACE" "deployment/$RELEASE-$svc" --timeout=5m
done
check_balances
check_export
check_cache
"$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 5m

phase "kind end-to-end passed"
