{{/*
Pieces the three service Deployments (templates/<component>/deployment.yaml) share, and the
objects every service has in the same shape (Service, PodDisruptionBudget, HPA,
ServiceMonitor, PodMonitor). Call each with the component's context:
(dict "root" $ "component" "critical" "values" .Values.critical "prefix" "STRATA_CRITICAL_").
*/}}

{{/* Pod annotations: roll pods when their ConfigMap or secret inputs change; scrape hints. */}}
{{- define "strata.app.podAnnotations" -}}
checksum/config: {{ include "strata.checksum" (dict "root" .root "files" (list (printf "%s/configmap.yaml" .component))) }}
checksum/secret: {{ include "strata.secretInputsChecksum" .root }}
{{- if .root.Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: "8000"
prometheus.io/path: /metrics
{{- end }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Probes and preStop of a server container: /livez for startup and liveness, /readyz for
readiness; preStop sleeps while endpoints stop routing to the pod (README: Shutdown).
*/}}
{{- define "strata.app.probes" -}}
{{- $v := .values -}}
startupProbe:
  httpGet:
    path: /livez
    port: http
  periodSeconds: {{ $v.startupProbe.periodSeconds }}
  timeoutSeconds: {{ $v.startupProbe.timeoutSeconds }}
  failureThreshold: {{ $v.startupProbe.failureThreshold }}
livenessProbe:
  httpGet:
    path: /livez
    port: http
  periodSeconds: {{ $v.livenessProbe.periodSeconds }}
  timeoutSeconds: {{ $v.livenessProbe.timeoutSeconds }}
  failureThreshold: {{ $v.livenessProbe.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: {{ $v.readinessProbe.periodSeconds }}
  timeoutSeconds: {{ $v.readinessProbe.timeoutSeconds }}
  failureThreshold: {{ $v.readinessProbe.failureThreshold }}
lifecycle:
  preStop:
    exec:
      command: ["/bin/sleep", "{{ $v.preStopSleepSeconds }}"]
{{- end -}}

{{/* Where a service's pods may run: spread over nodes, nodeSelector, tolerations, affinity. */}}
{{- define "strata.app.scheduling" -}}
{{- $v := .values -}}
{{- if $v.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ $v.topologySpread.maxSkew }}
    topologyKey: {{ $v.topologySpread.topologyKey }}
    whenUnsatisfiable: {{ $v.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "strata.componentSelectorLabels" . | nindent 8 }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Init container that waits (up to a limit) for a TCP port, using the service image's python. */}}
{{- define "strata.app.waitForPort" -}}
- name: wait-for-database
  image: {{ include "strata.image" (dict "root" .root "image" .values.image "defaultTag" .root.Chart.AppVersion) }}
  imagePullPolicy: {{ .values.image.pullPolicy }}
  command:
    - python
    - -c
    - |
      import os, socket, sys, time
      host, port = os.environ["WAIT_HOST"], int(os.environ["WAIT_PORT"])
      deadline = time.monotonic() + int(os.environ["WAIT_SECONDS"])
      while True:
          try:
              socket.create_connection((host, port), timeout=2).close()
              print(f"{host}:{port} is reachable", flush=True)
              sys.exit(0)
          except OSError as exc:
              if time.monotonic() > deadline:
                  sys.exit(f"gave up waiting for {host}:{port}: {exc}")
              print(f"waiting for {host}:{port}: {exc}", flush=True)
              time.sleep(2)
  env:
    - name: WAIT_HOST
      value: {{ .host | quote }}
    - name: WAIT_PORT
      value: {{ .port | quote }}
    - name: WAIT_SECONDS
      value: {{ .values.migration.waitForDatabaseSeconds | quote }}
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.containerSecurityContext | nindent 4 }}
{{- end -}}

{{- define "strata.app.service" -}}
{{- $v := .values -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- $ann := merge (dict) ($v.service.annotations | default dict) (.root.Values.commonAnnotations | default dict) }}
  {{- with $ann }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "strata.componentSelectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $v.service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{- define "strata.app.pdb" -}}
{{- if .values.pdb.enabled }}
apiVersion: {{ include "strata.pdb.apiVersion" .root }}
kind: PodDisruptionBudget
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "strata.componentSelectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "strata.app.hpa" -}}
{{- if .values.autoscaling.enabled }}
apiVersion: {{ include "strata.hpa.apiVersion" .root }}
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "strata.componentName" . }}
  minReplicas: {{ .values.autoscaling.minReplicas }}
  maxReplicas: {{ .values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .values.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end -}}

{{/* The service's /metrics (port http) for the Prometheus Operator (templates/metrics/_metrics.tpl). */}}
{{- define "strata.app.serviceMonitor" -}}
{{- if .root.Values.metrics.serviceMonitor.enabled }}
{{- $selector := dict "matchLabels" (include "strata.componentSelectorLabels" . | fromYaml) }}
{{- include "strata.metrics.monitor" (merge (dict "kind" "ServiceMonitor" "selector" $selector "endpoints" (list (dict "port" "http" "serviceLabel" true))) .) }}
{{- end }}
{{- end -}}

{{- define "strata.app.podMonitor" -}}
{{- if .root.Values.metrics.podMonitor.enabled }}
{{- $selector := dict "matchLabels" (include "strata.componentSelectorLabels" . | fromYaml) }}
{{- include "strata.metrics.monitor" (merge (dict "kind" "PodMonitor" "selector" $selector "endpoints" (list (dict "port" "http"))) .) }}
{{- end }}
{{- end -}}

{{/* Environment shared by the three services' ConfigMaps. */}}
{{- define "strata.app.commonConfig" -}}
{{- $p := .prefix -}}
{{ $p }}ENVIRONMENT: {{ .root.Values.environment | quote }}
{{ $p }}LOG_LEVEL: {{ .root.Values.logLevel | quote }}
{{ $p }}HOST: "0.0.0.0"
{{ $p }}PORT: "8000"
{{ $p }}WORKERS: {{ .values.workers | quote }}
{{ $p }}DRAIN_SECONDS: {{ .values.drainSeconds | quote }}
{{ $p }}GRACEFUL_SECONDS: {{ .values.gracefulShutdownSeconds | quote }}
{{ $p }}MAX_BODY_BYTES: {{ .values.maxBodyBytes | int64 | quote }}
{{- $auth := index .root.Values.auth .component }}
{{ $p }}JWT_ALGORITHMS: {{ join "," $auth.algorithms | quote }}
{{- with $auth.jwksUrl }}
{{ $p }}JWT_JWKS_URL: {{ . | quote }}
{{- end }}
{{- with $auth.issuer }}
{{ $p }}JWT_ISSUER: {{ . | quote }}
{{- end }}
{{- with .root.Values.corsAllowedOrigins }}
{{ $p }}CORS_ALLOWED_ORIGINS: {{ . | quote }}
{{- end }}
{{ $p }}API_DOCS: {{ .root.Values.apiDocs.enabled | quote }}
{{ $p }}GZIP_MIN_BYTES: {{ .root.Values.compression.minBytes | int64 | quote }}
{{ $p }}GZIP_LEVEL: {{ .root.Values.compression.level | int64 | quote }}
{{- with .root.Values.tracing }}
{{- if .enabled }}
{{- /* The standard OTel variables, read by the SDK itself (docs/configuration.md, "Tracing"). */}}
OTEL_TRACES_EXPORTER: "otlp"
OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf"
OTEL_EXPORTER_OTLP_ENDPOINT: {{ required "tracing.endpoint is required with tracing.enabled" .endpoint | quote }}
OTEL_SERVICE_NAME: {{ printf "%s-%s" (include "strata.fullname" $.root) $.component | quote }}
OTEL_TRACES_SAMPLER: {{ .sampler | quote }}
{{- with .samplerArg }}
OTEL_TRACES_SAMPLER_ARG: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
PROMETHEUS_MULTIPROC_DIR: "/tmp/prometheus"
{{- end -}}

{{/*
The service's HTTPRoute (gateway.enabled; README: Gateway API): the service's share of the
Ingress' API paths (strata.apiRoutes), attached to the user's Gateway(s). Gateway API allows ':'
in paths, so the batch endpoints are always Exact matches, whatever ingress.batchPathType says.
TLS is the Gateway listener's job: nothing here names a certificate.
*/}}
{{- define "strata.app.httpRoute" -}}
{{- $gw := .root.Values.gateway -}}
{{- if $gw.enabled }}
{{- $component := .component -}}
{{- $types := dict "Prefix" "PathPrefix" "Exact" "Exact" -}}
{{- $matches := list -}}
{{- $port := 0 -}}
{{- range (include "strata.apiRoutes" (dict "root" .root "batchPathType" "Exact") | fromJsonArray) -}}
{{- if eq .component $component -}}
{{- $matches = append $matches (dict "path" (dict "type" (get $types .type) "value" .path)) -}}
{{- $port = .port -}}
{{- end -}}
{{- end -}}
{{- $hostnames := $gw.hostnames | default (compact (list .root.Values.ingress.host)) -}}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabelsWith" (dict "root" .root "component" .component "labels" $gw.labels) | nindent 4 }}
  {{- $ann := merge (dict) ($gw.annotations | default dict) (.root.Values.commonAnnotations | default dict) }}
  {{- with $ann }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  parentRefs:
    {{- range $gw.parentRefs }}
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: {{ .name | quote }}
      {{- with .namespace }}
      namespace: {{ . | quote }}
      {{- end }}
      {{- with .sectionName }}
      sectionName: {{ . | quote }}
      {{- end }}
    {{- end }}
  {{- with $hostnames }}
  hostnames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    - matches:
        {{- toYaml $matches | nindent 8 }}
      backendRefs:
        - name: {{ include "strata.componentName" . }}
          port: {{ $port | int }}
{{- end }}
{{- end -}}
