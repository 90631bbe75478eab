{{/* Secret files of the critical server: JWT and the runtime role's password only. */}}
{{- define "strata.critical.secretFiles" -}}
{{ include "strata.app.jwtSecretFile" . }}
- env: STRATA_CRITICAL_DATABASE_PASSWORD_FILE
  secret: {{ include "strata.postgresqlCritical.secretName" .root }}
  key: {{ .root.Values.postgresqlCritical.auth.secretKeys.appPasswordKey }}
  path: database-password
{{ include "strata.critical.caFile" . }}
{{- end -}}

{{/* The CA bundle critical verifies PostgreSQL with (strata.tls.caFile), "" when none. */}}
{{- define "strata.critical.caFile" -}}
{{- $db := .root.Values.postgresqlCritical -}}
{{- include "strata.tls.caFile" (dict "values" $db "bundled" $db.enabled "env" "STRATA_CRITICAL_DATABASE_SSLROOTCERT" "path" "database-ca.crt") -}}
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
{{ include "strata.critical.caFile" . }}
{{- end -}}
