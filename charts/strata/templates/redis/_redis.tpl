{{/* The Redis password as a file of the redis container (no env: see the StatefulSet). */}}
{{- define "strata.redis.secretFiles" -}}
- secret: {{ include "strata.redis.secretName" . }}
  key: {{ .Values.redis.auth.secretKeys.passwordKey }}
  path: redis-password
{{- end -}}

{{/*
sh that sets $pw from the password file, without surrounding whitespace (a Secret made with
`kubectl create secret --from-file` often ends in a newline): the services strip it the same
way (services/common/settings.py), so both sides agree on the password.
*/}}
{{- define "strata.redis.readPassword" -}}
pw=$(cat {{ include "strata.secretFiles.dir" nil }}/redis-password)
pw=${pw#"${pw%%[![:space:]]*}"}
pw=${pw%"${pw##*[![:space:]]}"}
{{- end -}}
