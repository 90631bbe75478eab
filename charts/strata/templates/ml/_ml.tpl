{{/* Secret files of the ml server: JWT and the runtime role's password only. */}}
{{- define "strata.ml.secretFiles" -}}
{{ include "strata.app.jwtSecretFile" . }}
{{ include "strata.ml.databasePasswordFile" . }}
{{ include "strata.ml.caFile" . }}
{{- end -}}

{{/* The CA bundle ml verifies PostgreSQL with (strata.tls.caFile), "" when none. */}}
{{- define "strata.ml.caFile" -}}
{{- $db := .root.Values.postgresqlMl -}}
{{- include "strata.tls.caFile" (dict "values" $db "bundled" $db.enabled "env" "STRATA_ML_DATABASE_SSLROOTCERT" "path" "database-ca.crt") -}}
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
{{ include "strata.ml.caFile" . }}
{{- end -}}
