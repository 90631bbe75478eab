{{/* Secrets the critical container gets: JWT and the runtime role's password only. */}}
{{- define "strata.critical.secretEnv" -}}
{{ include "strata.app.jwtEnv" . }}
- name: STRATA_CRITICAL_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "strata.postgresqlCritical.secretName" .root }}
      key: {{ .root.Values.postgresqlCritical.auth.secretKeys.appPasswordKey }}
{{- end -}}

{{/*
wait-for-database, then `migrate` as the owner role (advisory lock: concurrent pods are safe);
migrate creates/updates the runtime role, whose password it needs too.
*/}}
{{- define "strata.critical.initContainers" -}}
{{ include "strata.app.waitForPort" (dict "root" .root "values" .values "host" (include "strata.postgresqlCritical.host" .root) "port" (include "strata.postgresqlCritical.port" .root)) }}
- name: migrate
  image: {{ include "strata.image" (dict "root" .root "image" .values.image "defaultTag" .root.Chart.AppVersion) }}
  imagePullPolicy: {{ .values.image.pullPolicy }}
  command:
    {{- toYaml .values.migration.command | nindent 4 }}
  envFrom:
    - configMapRef:
        name: {{ include "strata.componentName" . }}
  env:
    # No JWT secret: `migrate` verifies no tokens (MigrationSettings).
    - name: STRATA_CRITICAL_DATABASE_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ include "strata.postgresqlCritical.secretName" .root }}
          key: {{ .root.Values.postgresqlCritical.auth.secretKeys.appPasswordKey }}
    - name: STRATA_CRITICAL_MIGRATION_USER
      value: {{ .root.Values.postgresqlCritical.auth.ownerUsername | quote }}
    - name: STRATA_CRITICAL_MIGRATION_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ include "strata.postgresqlCritical.secretName" .root }}
          key: {{ .root.Values.postgresqlCritical.auth.secretKeys.ownerPasswordKey }}
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
