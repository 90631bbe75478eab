{{/*
Names and labels. Selectors never carry the chart version.
*/}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "strata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of a component's objects: <fullname>-<component>. Call with (dict "root" $ "component" "critical"). */}}
{{- define "strata.componentName" -}}
{{- printf "%s-%s" (include "strata.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "strata.labels" -}}
helm.sh/chart: {{ include "strata.chart" . }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: strata
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of a component. Call with (dict "root" $ "component" "critical"). */}}
{{- define "strata.componentLabels" -}}
{{ include "strata.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
A component's labels plus extra ones (e.g. gateway.labels). The chart's own labels win a clash:
they identify the release's objects. Call with (dict "root" $ "component" "critical" "labels" <map>).
*/}}
{{- define "strata.componentLabelsWith" -}}
{{- $own := include "strata.componentLabels" . | fromYaml -}}
{{- toYaml (merge $own (deepCopy (.labels | default dict))) -}}
{{- end -}}

{{- define "strata.componentSelectorLabels" -}}
{{ include "strata.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The ServiceAccount the three services run under (serviceAccount.*). */}}
{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Metadata annotations (commonAnnotations). Renders nothing when empty. */}}
{{- define "strata.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Image reference of every container the chart renders (services, their init containers, the
test pod, the stores). Call with (dict "root" $ "image" .Values.critical.image "defaultTag" .Chart.AppVersion).
With a digest the image is pulled by digest: `repo:tag@sha256:...` when the values set a tag
(kept for people reading `kubectl get pods`; the runtime resolves the digest only), else
`repo@sha256:...` (defaultTag is a guess that might not name the digested image).
*/}}
{{- define "strata.image" -}}
{{- $registry := .image.registry | default .root.Values.global.imageRegistry -}}
{{- $repo := .image.repository -}}
{{- if $registry }}{{ $repo = printf "%s/%s" $registry .image.repository }}{{ end -}}
{{- if and .image.digest .image.tag -}}
{{- printf "%s:%s@%s" $repo (toString .image.tag) .image.digest -}}
{{- else if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.image.tag | default .defaultTag | toString) -}}
{{- end -}}
{{- end -}}

{{- define "strata.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* StorageClass line of a volumeClaimTemplate. Call with (dict "root" $ "persistence" ...). */}}
{{- define "strata.storageClass" -}}
{{- $sc := .persistence.storageClass | default .root.Values.global.storageClass -}}
{{- if $sc }}
{{- if eq "-" $sc }}
storageClassName: ""
{{- else }}
storageClassName: {{ $sc | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
API versions chosen by the cluster's capabilities. A real cluster's discovery decides; for
`helm template` the --kube-version also counts (helm's built-in API list is always recent).
*/}}
{{- define "strata.pdb.apiVersion" -}}
{{- if and (.Capabilities.APIVersions.Has "policy/v1") (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end -}}

{{- define "strata.hpa.apiVersion" -}}
{{- if and (.Capabilities.APIVersions.Has "autoscaling/v2") (semverCompare ">=1.23-0" .Capabilities.KubeVersion.Version) -}}
autoscaling/v2
{{- else -}}
autoscaling/v2beta2
{{- end -}}
{{- end -}}

{{/* StatefulSet persistentVolumeClaimRetentionPolicy is beta (on by default) from 1.27. */}}
{{- define "strata.supportsPVCRetentionPolicy" -}}
{{- if semverCompare ">=1.27-0" .Capabilities.KubeVersion.Version -}}true{{- end -}}
{{- end -}}

{{/*
Secrets: names, and values generated once and kept. A generated value is read back from the
live Secret with `lookup` on upgrade, so `helm upgrade` never churns a password.
Call with (dict "root" $ "name" <secret name> "key" <key> "value" <user value>).
*/}}
{{- define "strata.secretValue" -}}
{{- if .value -}}
{{- .value | toString | b64enc -}}
{{- else -}}
{{- $live := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $live $live.data (hasKey $live.data .key) -}}
{{- index $live.data .key -}}
{{- else -}}
{{- randAlphaNum 40 | b64enc -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Token verification, one key per service (auth.<component>). Call each with
(dict "root" $ "component" "critical"). HS256: the service's own secret, generated unless given.
RS256/ES256: the identity provider's public key (from values or an existingSecret) or its JWKS
URL. Whatever key material a service gets is in a Secret of its own, mounted only into it.
*/}}
{{- define "strata.jwt.asymmetric" -}}
{{- $a := index .root.Values.auth .component -}}
{{- if or (has "RS256" $a.algorithms) (has "ES256" $a.algorithms) }}true{{ end -}}
{{- end -}}

{{/* The file the service reads: jwt-secret (HS256) or public-key.pem; "" with a JWKS URL. */}}
{{- define "strata.jwt.file" -}}
{{- $a := index .root.Values.auth .component -}}
{{- if not (include "strata.jwt.asymmetric" .) }}jwt-secret{{ else if not $a.jwksUrl }}public-key.pem{{ end -}}
{{- end -}}

{{- define "strata.jwt.secretName" -}}
{{- $a := index .root.Values.auth .component -}}
{{- $a.existingSecret | default (printf "%s-jwt" (include "strata.componentName" .)) -}}
{{- end -}}

{{- define "strata.jwt.secretKey" -}}
{{- $a := index .root.Values.auth .component -}}
{{- $a.existingSecretKey | default (include "strata.jwt.file" .) -}}
{{- end -}}

{{/* Whether the chart makes the service's Secret: no existingSecret, and a secret or a PEM to hold. */}}
{{- define "strata.jwt.createsSecret" -}}
{{- $a := index .root.Values.auth .component -}}
{{- if and (not $a.existingSecret) (include "strata.jwt.file" .) }}true{{ end -}}
{{- end -}}


{{- define "strata.postgresqlCritical.secretName" -}}
{{- .Values.postgresqlCritical.auth.existingSecret | default (include "strata.componentName" (dict "root" . "component" "postgresql-critical")) -}}
{{- end -}}

{{- define "strata.postgresqlMl.secretName" -}}
{{- .Values.postgresqlMl.auth.existingSecret | default (include "strata.componentName" (dict "root" . "component" "postgresql-ml")) -}}
{{- end -}}

{{- define "strata.redis.secretName" -}}
{{- .Values.redis.auth.existingSecret | default (include "strata.componentName" (dict "root" . "component" "redis")) -}}
{{- end -}}

{{/* Where each service finds its store. */}}
{{- define "strata.postgresqlCritical.host" -}}
{{- if .Values.postgresqlCritical.enabled -}}
{{- include "strata.componentName" (dict "root" . "component" "postgresql-critical") -}}
{{- else -}}
{{- .Values.postgresqlCritical.external.host -}}
{{- end -}}
{{- end -}}

{{- define "strata.postgresqlCritical.port" -}}
{{- if .Values.postgresqlCritical.enabled }}5432{{ else }}{{ .Values.postgresqlCritical.external.port }}{{ end -}}
{{- end -}}

{{- define "strata.postgresqlMl.host" -}}
{{- if .Values.postgresqlMl.enabled -}}
{{- include "strata.componentName" (dict "root" . "component" "postgresql-ml") -}}
{{- else -}}
{{- .Values.postgresqlMl.external.host -}}
{{- end -}}
{{- end -}}

{{- define "strata.postgresqlMl.port" -}}
{{- if .Values.postgresqlMl.enabled }}5432{{ else }}{{ .Values.postgresqlMl.external.port }}{{ end -}}
{{- end -}}

{{- define "strata.redis.url" -}}
{{- if .Values.redis.enabled -}}
{{- $scheme := ternary "rediss" "redis" (.Values.redis.tls.server.enabled | default false) -}}
{{- printf "%s://%s:6379/0" $scheme (include "strata.componentName" (dict "root" . "component" "redis")) -}}
{{- else -}}
{{- .Values.redis.external.url -}}
{{- end -}}
{{- end -}}

{{/*
Connection budget of one PostgreSQL: (most replicas + rollout surge) x workers x (pool_size +
max_overflow + held), where held is what a worker keeps open outside its pool (ml: one
connection per export snapshot, exportSnapshotsMax; critical: none). Call with
(dict "values" <the service's values> "held" <connections per worker outside the pool>).
*/}}
{{- define "strata.connectionBudget" -}}
{{- $v := .values -}}
{{- $replicas := $v.replicaCount -}}
{{- if $v.autoscaling.enabled }}{{ $replicas = max $v.autoscaling.maxReplicas $v.replicaCount }}{{ end -}}
{{- mul (add $replicas $v.rollingUpdate.maxSurge) $v.workers (add $v.database.poolSize $v.database.maxOverflow .held) -}}
{{- end -}}

{{/* Checksum of rendered templates, so pods roll when their config or secrets change. */}}
{{- define "strata.checksum" -}}
{{- $root := .root -}}
{{- $out := list -}}
{{- range .files -}}
{{- $out = append $out (include (print $root.Template.BasePath "/" .) $root) -}}
{{- end -}}
{{- join "\n" $out | sha256sum -}}
{{- end -}}

{{/*
Checksum of the secret *inputs* (user-set values and existingSecret names), not of the rendered
Secrets: generated values are random on the first render and read back on upgrades, so hashing
them would roll every pod on the first `helm upgrade` after install.
*/}}
{{- define "strata.secretInputsChecksum" -}}
{{- toJson (list .Values.auth .Values.postgresqlCritical.auth .Values.postgresqlMl.auth .Values.redis.auth) | sha256sum -}}
{{- end -}}

{{/*
The API routes of API.md, shared by the Ingress and the HTTPRoutes so both publish the same
paths: a JSON list of {path, type, component, port}, type Prefix or Exact (Ingress pathType
names; Prefix matches per path element, so /v1/kv does not cover /v1/kv:mget and the batch
endpoints need Exact), or ImplementationSpecific for /v1/kv when batchPathType says so (the
ingress-nginx fallback, Ingress only: ingress.batchPathType), and with apiDocs.enabled each service's
/docs/<service> (its reference and a copy of its /openapi.json). /metrics, /livez, /readyz and
the root /openapi.json are never routed. Call with (dict "root" $ "batchPathType" "Exact").
*/}}
{{- define "strata.apiRoutes" -}}
{{- $v := .root.Values -}}
{{- $critical := $v.critical.service.port -}}
{{- $cache := $v.cache.service.port -}}
{{- $routes := list
  (dict "path" "/v1/accounts" "type" "Prefix" "component" "critical" "port" $critical)
  (dict "path" "/v1/transfers" "type" "Prefix" "component" "critical" "port" $critical)
  (dict "path" "/v1/collections" "type" "Prefix" "component" "ml" "port" $v.ml.service.port) -}}
{{- if eq .batchPathType "Exact" -}}
{{- $routes = concat $routes (list
  (dict "path" "/v1/kv" "type" "Prefix" "component" "cache" "port" $cache)
  (dict "path" "/v1/kv:mget" "type" "Exact" "component" "cache" "port" $cache)
  (dict "path" "/v1/kv:mset" "type" "Exact" "component" "cache" "port" $cache)) -}}
{{- else -}}
{{- /* ingress-nginx matches an ImplementationSpecific path as a plain string prefix: covers /v1/kv:mget and /v1/kv:mset. */ -}}
{{- $routes = append $routes (dict "path" "/v1/kv" "type" "ImplementationSpecific" "component" "cache" "port" $cache) -}}
{{- end -}}
{{- $routes = append $routes (dict "path" "/v1/counters" "type" "Prefix" "component" "cache" "port" $cache) -}}
{{- if $v.apiDocs.enabled -}}
{{- /* Each service's reference and its openapi.json live under /docs/<service>/ (relative links). */ -}}
{{- $routes = concat $routes (list
  (dict "path" "/docs/critical" "type" "Prefix" "component" "critical" "port" $critical)
  (dict "path" "/docs/ml" "type" "Prefix" "component" "ml" "port" $v.ml.service.port)
  (dict "path" "/docs/cache" "type" "Prefix" "component" "cache" "port" $cache)) -}}
{{- end -}}
{{- toJson $routes -}}
{{- end -}}

{{/* The certificate Secret gateway.tlsReferenceGrant covers: its secretName, else the Ingress' (ingress.tls.secretName or <fullname>-tls). */}}
{{- define "strata.gateway.tlsSecretName" -}}
{{- .Values.gateway.tlsReferenceGrant.secretName | default .Values.ingress.tls.secretName | default (printf "%s-tls" (include "strata.fullname" .)) -}}
{{- end -}}
