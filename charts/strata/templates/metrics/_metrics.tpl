{{/*
Monitoring with the Prometheus Operator and Grafana (README: Metrics). Each object is behind
its own flag under `metrics`:

  serviceMonitor    a ServiceMonitor per service (its Service, port `http`) and per bundled
                    PostgreSQL tier (Patroni on the members' headless Service, port `patroni`;
                    the pgbackrest sidecars on `<tier>-backup-metrics`, port `backup-metrics`)
  podMonitor        the same targets found through the pods instead (PodMonitors): one or the
                    other, never both (every series would be scraped twice)
  prometheusRule    the alerts of files/prometheus-rules.yaml, scoped to this release, each
                    with a runbook_url (docs/runbooks.md)
  grafanaDashboard  files/grafana-dashboard.json in a ConfigMap for Grafana's sidecar

Every /metrics port is admitted by the NetworkPolicies from networkPolicy.monitoring only.
*/}}

{{/* Namespace of a monitoring object. Call with (dict "root" $ "values" .Values.metrics.<kind>). */}}
{{- define "strata.metrics.namespace" -}}
{{- .values.namespace | default .root.Release.Namespace -}}
{{- end -}}

{{/*
Labels of a monitoring object: the component's labels and the user's `labels` (which a
Prometheus' serviceMonitorSelector / podMonitorSelector / ruleSelector looks for, e.g.
release: kube-prometheus-stack); the user's win on a clash. Call with
(dict "root" $ "component" <component> "values" .Values.metrics.<kind>).
*/}}
{{- define "strata.metrics.labels" -}}
{{- $own := include "strata.componentLabels" . | fromYaml -}}
{{- toYaml (merge (deepCopy (.values.labels | default dict)) $own) -}}
{{- end -}}

{{/*
A ServiceMonitor or PodMonitor. Call with (dict "root" $ "component" <component> "kind"
"ServiceMonitor"|"PodMonitor" "selector" <LabelSelector> "endpoints" <list>), each endpoint a
dict with "port" (a port name of the Service or the pod) and, for the three services' own
Services, "serviceLabel" true (see below).
*/}}
{{- define "strata.metrics.monitor" -}}
{{- $service := eq .kind "ServiceMonitor" -}}
{{- $m := index .root.Values.metrics (ternary "serviceMonitor" "podMonitor" $service) -}}
apiVersion: monitoring.coreos.com/v1
kind: {{ .kind }}
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ include "strata.metrics.namespace" (dict "root" .root "values" $m) | quote }}
  labels:
    {{- include "strata.metrics.labels" (dict "root" .root "component" .component "values" $m) | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  selector:
    {{- toYaml .selector | nindent 4 }}
  namespaceSelector:
    matchNames:
      - {{ .root.Release.Namespace | quote }}
  {{ ternary "endpoints" "podMetricsEndpoints" $service }}:
    {{- range $ep := .endpoints }}
    - port: {{ $ep.port }}
      path: /metrics
      {{- with $m.interval }}
      interval: {{ . }}
      {{- end }}
      {{- with $m.scrapeTimeout }}
      scrapeTimeout: {{ . }}
      {{- end }}
      {{- /* The services label every series service="critical|ml|cache" (the rules and the
           dashboard select on it), and a ServiceMonitor's targets get a `service` label too:
           the Kubernetes Service's name, which would rename theirs to exported_service. Their
           own label is kept (honorLabels), and the target label set to the same value for a
           Prometheus that overrides honorLabels. */}}
      {{- $relabelings := list }}
      {{- if $ep.serviceLabel }}
      honorLabels: true
      {{- $relabelings = append $relabelings (dict "sourceLabels" (list "__meta_kubernetes_service_label_app_kubernetes_io_component") "targetLabel" "service") }}
      {{- end }}
      {{- with (concat $relabelings ($m.relabelings | default list)) }}
      relabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $m.metricRelabelings }}
      metricRelabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
{{- end -}}

{{/*
The alert rule groups of files/prometheus-rules.yaml for this release: __NAMESPACE__ and
__FULLNAME__ in their selectors become the release's, every alert gets a runbook_url
annotation (metrics.prometheusRule.runbookUrl#<alert in lower case>: its section of
docs/runbooks.md) and the ruleLabels (an alert's own labels, e.g. severity, win).
*/}}
{{- define "strata.metrics.ruleGroups" -}}
{{- $pr := .Values.metrics.prometheusRule -}}
{{- $text := .Files.Get "files/prometheus-rules.yaml" | replace "__NAMESPACE__" .Release.Namespace | replace "__FULLNAME__" (include "strata.fullname" .) -}}
{{- $file := fromYaml $text -}}
{{- range $group := $file.groups -}}
{{- range $rule := $group.rules -}}
{{- if $rule.alert -}}
{{- if $pr.runbookUrl -}}
{{- $_ := set $rule "annotations" (merge (dict "runbook_url" (printf "%s#%s" $pr.runbookUrl (lower $rule.alert))) ($rule.annotations | default dict)) -}}
{{- end -}}
{{- with $pr.ruleLabels -}}
{{- $_ := set $rule "labels" (merge ($rule.labels | default dict) (deepCopy .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
groups:
  {{- toYaml $file.groups | nindent 2 }}
{{- end -}}

{{/* A label map as `key=value,key=value` (NOTES.txt). Call with the map. */}}
{{- define "strata.metrics.selectorText" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
Image of an exporter sidecar: its own image when metrics.<exporter>.image.repository is set,
else the data tier's (whose Dockerfile installs the exporter). Call with (dict "root" $
"image" .Values.metrics.<exporter>.image "tierImage" <the tier's image> "defaultTag" <tag>).
*/}}
{{- define "strata.metrics.exporterImage" -}}
{{- if .image.repository -}}
{{- include "strata.image" (dict "root" .root "image" .image "defaultTag" "latest") -}}
{{- else -}}
{{- $img := deepCopy .tierImage -}}
{{- range $k := list "registry" "tag" "digest" -}}
{{- with index $.image $k }}{{ $_ := set $img $k . }}{{ end -}}
{{- end -}}
{{- include "strata.image" (dict "root" .root "image" $img "defaultTag" .defaultTag) -}}
{{- end -}}
{{- end -}}

{{/*
A headless Service over a component's pods exposing one exporter port, for ServiceMonitors and
for Prometheus' annotation-based Service discovery (the pods' own prometheus.io annotations
name their main metrics port). Call with (dict "root" $ "component" <component> "port" <n>
"portName" <name> "labels" <extra labels>).
*/}}
{{- define "strata.metrics.exporterService" -}}
{{- $root := .root -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "strata.componentName" . }}-metrics
  namespace: {{ $root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
    {{- with .labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or $root.Values.metrics.scrapeAnnotations $root.Values.commonAnnotations }}
  annotations:
    {{- if $root.Values.metrics.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $root.Values.commonAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  type: ClusterIP
  clusterIP: None
  selector:
    {{- include "strata.componentSelectorLabels" . | nindent 4 }}
  ports:
    - name: {{ .portName }}
      port: {{ .port }}
      targetPort: {{ .portName }}
      protocol: TCP
{{- end -}}

{{/* An exporter's probes: its landing page answers while it runs (a failing scrape of the
store is pg_up / redis_up 0, not a dead or unready exporter, so the store's pod stays Ready
and routed while its store is reachable). Call with the port name. */}}
{{- define "strata.metrics.exporterProbe" -}}
startupProbe:
  httpGet:
    path: /
    port: {{ . }}
  periodSeconds: 2
  timeoutSeconds: 2
  failureThreshold: 30
readinessProbe:
  httpGet:
    path: /
    port: {{ . }}
  periodSeconds: 10
  timeoutSeconds: 5
livenessProbe:
  httpGet:
    path: /
    port: {{ . }}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}
