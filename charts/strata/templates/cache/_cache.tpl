{{/* Secret files of the cache server: JWT and, with auth, the Redis (and Sentinel) password. */}}
{{- define "strata.cache.secretFiles" -}}
{{ include "strata.app.jwtSecretFile" . }}
{{- if .root.Values.redis.auth.enabled }}
- env: STRATA_CACHE_REDIS_PASSWORD_FILE
  secret: {{ include "strata.redis.secretName" .root }}
  key: {{ .root.Values.redis.auth.secretKeys.passwordKey }}
  path: redis-password
{{- end }}
{{- if include "strata.redis.sentinelAuth" .root }}
- env: STRATA_CACHE_REDIS_SENTINEL_PASSWORD_FILE
  secret: {{ include "strata.redis.secretName" .root }}
  key: {{ .root.Values.redis.auth.secretKeys.sentinelPasswordKey }}
  path: sentinel-password
{{- end }}
{{- $redis := .root.Values.redis }}
{{ include "strata.tls.caFile" (dict "values" $redis "bundled" $redis.enabled "env" "STRATA_CACHE_REDIS_TLS_CA_FILE" "path" "redis-ca.crt") }}
{{- end -}}
