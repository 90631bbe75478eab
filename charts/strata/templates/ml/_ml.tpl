{{/* Secret files of the ml server: JWT and the runtime role's password only. */}}
{{- define "strata.ml.secretFiles" -}}
{{ include "strata.app.jwtSecretFile" . }}
{{ include "strata.ml.databasePasswordFile" . }}
{{- end -}}

{{- define "strata.ml.databasePasswordFile" -}}
- env: STRATA_ML_DATABASE_PASSWORD_FILE
  secret: {{ include "strata.postgresqlMl.secretName" .root }}
  key: {{ .root.Values.postgresqlMl.auth.secretKeys.appPasswordKey }}
  path: database-password
{{- end -}}

{{/*
`migrate` verifies no tokens (MlDatabaseSettings): it connects as the owner and sets the
runtime role's password, so it gets both database passwords and no JWT key.
*/}}
{{- define "strata.ml.migrateSecretFiles" -}}
{{ include "strata.ml.databasePasswordFile" . }}
- env: STRATA_ML_MIGRATION_PASSWORD_FILE
  secret: {{ include "strata.postgresqlMl.secretName" .root }}
  key: {{ .root.Values.postgresqlMl.auth.secretKeys.passwordKey }}
  path: migration-password
{{- end -}}

{{- define "strata.ml.initVolumes" -}}
{{ include "strata.secretFiles.volume" (dict "name" "migrate-secrets" "files" (include "strata.ml.migrateSecretFiles" . | fromYamlArray)) }}
{{- end -}}

{{/*
wait-for-database, then `migrate` as the owner role (advisory lock: concurrent pods are safe):
tables and indexes if missing, then the runtime role created or its password updated, and
granted rows only; so it needs the runtime role's password too.
*/}}
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
    {{- include "strata.secretFiles.env" (include "strata.ml.migrateSecretFiles" . | fromYamlArray) | nindent 4 }}
    - name: STRATA_ML_MIGRATION_USER
      value: {{ .root.Values.postgresqlMl.auth.username | quote }}
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
