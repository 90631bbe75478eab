{{- define "strata.ml.secretEnv" -}}
{{ include "strata.app.jwtEnv" . }}
- name: STRATA_ML_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "strata.postgresqlMl.secretName" .root }}
      key: {{ .root.Values.postgresqlMl.auth.secretKeys.passwordKey }}
{{- end -}}

{{/* wait-for-database, then `migrate` (creates tables/indexes if missing, under an advisory lock). */}}
{{- define "strata.ml.initContainers" -}}
{{ include "strata.app.waitForPort" (dict "root" .root "values" .values "host" (include "strata.postgresqlMl.host" .root) "port" (include "strata.postgresqlMl.port" .root)) }}
- name: migrate
  image: {{ include "strata.image" (dict "root" .root "image" .values.image "defaultTag" .root.Chart.AppVersion) }}
  imagePullPolicy: {{ .values.image.pullPolicy }}
  command:
    {{- toYaml .values.migration.command | nindent 4 }}
  envFrom:
    - configMapRef:
        name: {{ include "strata.componentName" . }}
  env:
    {{- include "strata.ml.secretEnv" . | nindent 4 }}
    {{- with .values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end -}}
