{{/*
The three services share one shape; each templates/<component>/ file calls these with
(dict "root" $ "component" "critical" "values" .Values.critical "prefix" "STRATA_CRITICAL_").
Component-specific parts are the named templates strata.<component>.secretFiles (the server
container's secret files), strata.<component>.initContainers and strata.<component>.initVolumes
(the init containers' own secret volumes).
*/}}

{{- define "strata.app.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := include "strata.componentName" . -}}
{{- $files := include (printf "strata.%s.secretFiles" .component) . | fromYamlArray -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" $root) }}{{ . | nindent 2 }}{{ end }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: {{ $v.rollingUpdate.maxSurge }}
      maxUnavailable: {{ $v.rollingUpdate.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "strata.componentSelectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "strata.componentSelectorLabels" . | nindent 8 }}
        app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "strata.checksum" (dict "root" $root "files" (list (printf "%s/configmap.yaml" .component))) }}
        checksum/secret: {{ include "strata.secretInputsChecksum" $root }}
        {{- if $root.Values.metrics.scrapeAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: "8000"
        prometheus.io/path: /metrics
        {{- end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with (include "strata.imagePullSecrets" $root) }}{{ . | nindent 6 }}{{ end }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- $init := include (printf "strata.%s.initContainers" .component) . | trim }}
      {{- if $init }}
      initContainers:
        {{- $init | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "strata.image" (dict "root" $root "image" $v.image "defaultTag" $root.Chart.AppVersion) }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ $name }}
          {{- if or $files $v.extraEnv }}
          env:
            {{- include "strata.secretFiles.env" $files | nindent 12 }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
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
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $files }}
            {{- include "strata.secretFiles.mount" "secrets" | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- if $files }}
        {{- include "strata.secretFiles.volume" (dict "name" "secrets" "files" $files) | nindent 8 }}
        {{- end }}
        {{- with (include (printf "strata.%s.initVolumes" .component) . | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- if $v.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: {{ $v.topologySpread.maxSkew }}
          topologyKey: {{ $v.topologySpread.topologyKey }}
          whenUnsatisfiable: {{ $v.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "strata.componentSelectorLabels" . | nindent 14 }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
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

{{- define "strata.app.serviceMonitor" -}}
{{- $sm := .root.Values.metrics.serviceMonitor -}}
{{- if $sm.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  selector:
    matchLabels:
      {{- include "strata.componentSelectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .root.Release.Namespace | quote }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
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
PROMETHEUS_MULTIPROC_DIR: "/tmp/prometheus"
{{- end -}}

{{- define "strata.app.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
data:
  {{- include "strata.app.commonConfig" . | nindent 2 }}
  {{- .extra | nindent 2 }}
{{- end -}}

{{/*
Secrets reach containers as files, never as environment variables (which leak into `ps e`,
crash dumps and child processes). A container's secret files are a YAML list of
(dict "env" <variable naming the file> "secret" <Secret> "key" <key> "path" <file name>);
the services read <PREFIX><NAME>_FILE (services/common/settings.py).
*/}}
{{- define "strata.secretFiles.dir" -}}/var/run/secrets/strata{{- end -}}

{{/*
The service's own token key (strata.jwt.*): its HS256 secret or its PEM public key, as
<PREFIX>JWT_SECRET_FILE or <PREFIX>JWT_PUBLIC_KEY_FILE. Nothing with a JWKS URL (no key to hold).
*/}}
{{- define "strata.app.jwtSecretFile" -}}
{{- $file := include "strata.jwt.file" . -}}
{{- if $file }}
- env: {{ .prefix }}{{ ternary "JWT_SECRET_FILE" "JWT_PUBLIC_KEY_FILE" (eq $file "jwt-secret") }}
  secret: {{ include "strata.jwt.secretName" . }}
  key: {{ include "strata.jwt.secretKey" . }}
  path: {{ $file }}
{{- end }}
{{- end -}}

{{/* env entries pointing at the files (entries without .env: a file read by its path). Call
with the list. */}}
{{- define "strata.secretFiles.env" -}}
{{- $dir := include "strata.secretFiles.dir" nil -}}
{{- $out := list -}}
{{- range . -}}
{{- if .env -}}
{{- $out = append $out (printf "- name: %s\n  value: %s" .env (printf "%s/%s" $dir .path | quote)) -}}
{{- end -}}
{{- end -}}
{{- join "\n" $out -}}
{{- end -}}

{{/* The read-only mount of a container's own secrets volume. Call with the volume name. */}}
{{- define "strata.secretFiles.mount" -}}
- name: {{ . }}
  mountPath: {{ include "strata.secretFiles.dir" nil }}
  readOnly: true
{{- end -}}

{{/*
One projected volume per container with only the keys that container needs. Mode 0440
(288): owner root, group the pod's fsGroup, no world access. Call with
(dict "name" <volume> "files" <list>).
*/}}
{{- define "strata.secretFiles.volume" -}}
- name: {{ .name }}
  projected:
    defaultMode: 288
    sources:
      {{- range .files }}
      - secret:
          name: {{ .secret }}
          items:
            - key: {{ .key }}
              path: {{ .path }}
      {{- end }}
{{- end -}}
