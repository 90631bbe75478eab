{{- define "strata.cache.secretEnv" -}}
{{ include "strata.app.jwtEnv" . }}
{{- if .root.Values.redis.auth.enabled }}
- name: STRATA_CACHE_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "strata.redis.secretName" .root }}
      key: {{ .root.Values.redis.auth.secretKeys.passwordKey }}
{{- end }}
{{- end -}}

{{/* cache needs no migration; /readyz reports Redis until it answers. */}}
{{- define "strata.cache.initContainers" -}}
{{- end -}}
