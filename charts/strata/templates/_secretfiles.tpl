{{/*
Secrets reach containers as files, never as environment variables (which leak into `ps e`,
crash dumps and child processes). A container's secret files are a YAML list of
(dict "env" <variable naming the file> "secret" <Secret> "key" <key> "path" <file name>);
the services read <PREFIX><NAME>_FILE (services/common/settings.py).
*/}}
{{- define "strata.secretFiles.dir" -}}/var/run/secrets/strata{{- end -}}

{{/*
The service's own token key (strata.jwt.*): its HS256 secret or its PEM public key, as
<PREFIX>JWT_SECRET_FILE or <PREFIX>JWT_PUBLIC_KEY_FILE. Nothing with a JWKS URL (no key to hold).
*/}}
{{- define "strata.app.jwtSecretFile" -}}
{{- $file := include "strata.jwt.file" . -}}
{{- if $file }}
- env: {{ .prefix }}{{ ternary "JWT_SECRET_FILE" "JWT_PUBLIC_KEY_FILE" (eq $file "jwt-secret") }}
  secret: {{ include "strata.jwt.secretName" . }}
  key: {{ include "strata.jwt.secretKey" . }}
  path: {{ $file }}
{{- end }}
{{- end -}}

{{/* env entries pointing at the files (entries without .env: a file read by its path). Call
with the list. */}}
{{- define "strata.secretFiles.env" -}}
{{- $dir := include "strata.secretFiles.dir" nil -}}
{{- $out := list -}}
{{- range . -}}
{{- if .env -}}
{{- $out = append $out (printf "- name: %s\n  value: %s" .env (printf "%s/%s" $dir .path | quote)) -}}
{{- end -}}
{{- end -}}
{{- join "\n" $out -}}
{{- end -}}

{{/* The read-only mount of a container's own secrets volume. Call with the volume name. */}}
{{- define "strata.secretFiles.mount" -}}
- name: {{ . }}
  mountPath: {{ include "strata.secretFiles.dir" nil }}
  readOnly: true
{{- end -}}

{{/*
One projected volume per container with only the keys that container needs. Mode 0440
(288): owner root, group the pod's fsGroup, no world access. Call with
(dict "name" <volume> "files" <list>). An entry with .configMap instead of .secret is taken
from that ConfigMap (a CA bundle, which is no secret: strata.tls.caFile).
*/}}
{{- define "strata.secretFiles.volume" -}}
- name: {{ .name }}
  projected:
    defaultMode: 288
    sources:
      {{- range .files }}
      {{- if .configMap }}
      - configMap:
          name: {{ .configMap }}
      {{- else }}
      - secret:
          name: {{ .secret }}
      {{- end }}
          items:
            - key: {{ .key }}
              path: {{ .path }}
      {{- end }}
{{- end -}}
