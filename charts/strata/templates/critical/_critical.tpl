{{/* Secret files of the critical server: JWT and the runtime role's password only. */}}
{{- define "strata.critical.secretFiles" -}}
{{ include "strata.app.jwtSecretFile" . }}
- env: STRATA_CRITICAL_DATABASE_PASSWORD_FILE
  secret: {{ include "strata.postgresqlCritical.secretName" .root }}
  key: {{ .root.Values.postgresqlCritical.auth.secretKeys.appPasswordKey }}
  path: database-password
{{- end -}}

{{/* Secret files of `migrate`: both passwords (it sets the runtime role's), no JWT. */}}
{{- define "strata.critical.migrateSecretFiles" -}}
- env: STRATA_CRITICAL_DATABASE_PASSWORD_FILE
  secret: {{ include "strata.postgresqlCritical.secretName" .root }}
  key: {{ .root.Values.postgresqlCritical.auth.secretKeys.appPasswordKey }}
  path: database-password
- env: STRATA_CRITICAL_MIGRATION_PASSWORD_FILE
  secret: {{ include "strata.postgresqlCritical.secretName" .root }}
  key: {{ .root.Values.postgresqlCritical.auth.secretKeys.ownerPasswordKey }}
  path: migration-password
{{- end -}}

{{- define "strata.critical.initVolumes" -}}
{{ include "strata.secretFiles.volume" (dict "name" "migrate-secrets" "files" (include "strata.critical.migrateSecretFiles" . | fromYamlArray)) }}
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
    {{- include "strata.secretFiles.env" (include "strata.critical.migrateSecretFiles" . | fromYamlArray) | nindent 4 }}
    - name: STRATA_CRITICAL_MIGRATION_USER
      value: {{ .root.Values.postgresqlCritical.auth.ownerUsername | quote }}
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
    {{- include "strata.secretFiles.mount" "migrate-secrets" | nindent 4 }}
{{- end -}}
