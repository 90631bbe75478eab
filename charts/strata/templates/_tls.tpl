{{/*
TLS to the stores (docs/configuration.md, "TLS to the databases"). Per store, `tls.ca` names
the CA bundle a service verifies its store with (an existing Secret or ConfigMap, mounted as a
file through strata.secretFiles.*), and `tls.server` lets the bundled server serve TLS with the
key pair of an existing Secret. When the bundled server serves TLS and no CA source is named,
the clients trust the server Secret's `ca.crt` (cert-manager writes it). Everything here is
off by default and then renders nothing, so an upgrade with the defaults renders as before.
*/}}

{{/*
The CA bundle source of a store: (dict "secret" <name> "configMap" <name> "key" <key>), empty
values when there is none. Call with (dict "values" <store values> "bundled" <bool>).
*/}}
{{- define "strata.tls.caSource" -}}
{{- $t := .values.tls -}}
{{- $secret := $t.ca.existingSecret -}}
{{- if and (not $secret) (not $t.ca.existingConfigMap) .bundled $t.server.enabled -}}
{{- $secret = $t.server.existingSecret -}}
{{- end -}}
{{- toJson (dict "secret" ($secret | default "") "configMap" ($t.ca.existingConfigMap | default "") "key" $t.ca.key) -}}
{{- end -}}

{{/*
The CA bundle as a secret-files entry (a ConfigMap entry when it comes from one). Call with
(dict "values" <store values> "bundled" <bool> "env" <variable> "path" <file name>).
*/}}
{{- define "strata.tls.caFile" -}}
{{- $src := include "strata.tls.caSource" . | fromJson -}}
{{- if or $src.secret $src.configMap }}
- env: {{ .env }}
  {{- if $src.configMap }}
  configMap: {{ $src.configMap }}
  {{- else }}
  secret: {{ $src.secret }}
  {{- end }}
  key: {{ $src.key }}
  path: {{ .path }}
{{- end }}
{{- end -}}

{{/*
The sslmode a PostgreSQL client is given: tls.sslmode when set, else verify-full when a CA
bundle is mounted, else "" (nothing rendered: the service's default, prefer). Call with
(dict "values" <tier values> "bundled" <bool>).
*/}}
{{- define "strata.tls.sslmode" -}}
{{- $src := include "strata.tls.caSource" . | fromJson -}}
{{- if .values.tls.sslmode -}}
{{- .values.tls.sslmode -}}
{{- else if or $src.secret $src.configMap -}}
verify-full
{{- end -}}
{{- end -}}

{{/* Where a bundled server's key pair is mounted. */}}
{{- define "strata.tls.serverDir" -}}/etc/strata-tls{{- end -}}

{{/*
The bundled server's key pair volume: mode 0440 (288), owner root, group the pod's fsGroup
(PostgreSQL accepts a root-owned key readable by its group; Redis reads it as that group).
Call with the store values.
*/}}
{{- define "strata.tls.serverVolume" -}}
- name: server-tls
  secret:
    secretName: {{ .tls.server.existingSecret }}
    defaultMode: 288
    items:
      - key: {{ .tls.server.certKey }}
        path: tls.crt
      - key: {{ .tls.server.keyKey }}
        path: tls.key
{{- end -}}

{{/*
The key pair and the CA bundle as one projected volume (tls.crt, tls.key, ca.crt; mode 0440 as
strata.tls.serverVolume): a server that is also a TLS client of its peers verifies them with
the CA (Redis in sentinel mode: a replica its master, a Sentinel every node and the other
Sentinels; Redis refuses tls-replication without tls-ca-cert-file). The CA is the store's
strata.tls.caSource (tls.ca, else the server Secret's ca.crt). Call with the store values.
*/}}
{{- define "strata.tls.serverVolumeWithCa" -}}
{{- $src := include "strata.tls.caSource" (dict "values" . "bundled" true) | fromJson -}}
- name: server-tls
  projected:
    defaultMode: 288
    sources:
      - secret:
          name: {{ .tls.server.existingSecret }}
          items:
            - key: {{ .tls.server.certKey }}
              path: tls.crt
            - key: {{ .tls.server.keyKey }}
              path: tls.key
      {{- if $src.configMap }}
      - configMap:
          name: {{ $src.configMap }}
      {{- else }}
      - secret:
          name: {{ $src.secret }}
      {{- end }}
          items:
            - key: {{ $src.key }}
              path: ca.crt
{{- end -}}

{{- define "strata.tls.serverMount" -}}
- name: server-tls
  mountPath: {{ include "strata.tls.serverDir" nil }}
  readOnly: true
{{- end -}}

{{/* validateValues' TLS rules, as a JSON list of messages. */}}
{{- define "strata.validateTls" -}}
{{- $errors := list -}}
{{- range $tier := list "postgresqlCritical" "postgresqlMl" "redis" -}}
{{- $v := index $.Values $tier -}}
{{- $t := $v.tls -}}
{{- if and $t.ca.existingSecret $t.ca.existingConfigMap -}}
{{- $errors = append $errors (printf "%s.tls.ca: set existingSecret or existingConfigMap, not both" $tier) -}}
{{- end -}}
{{- if and $t.server.enabled (not $v.enabled) -}}
{{- $errors = append $errors (printf "%s.tls.server.enabled is for the bundled server (%s.enabled=false): an external server's TLS is its own; set %s.tls.ca for the clients" $tier $tier $tier) -}}
{{- end -}}
{{- if and $t.server.enabled $v.enabled (not $t.server.existingSecret) -}}
{{- $errors = append $errors (printf "%s.tls.server.enabled needs %s.tls.server.existingSecret (a Secret with the server's certificate and key, e.g. from cert-manager)" $tier $tier) -}}
{{- end -}}
{{- end -}}
{{- range $tier := list "postgresqlCritical" "postgresqlMl" -}}
{{- $v := index $.Values $tier -}}
{{- $src := include "strata.tls.caSource" (dict "values" $v "bundled" $v.enabled) | fromJson -}}
{{- if and (or $src.secret $src.configMap) (has $v.tls.sslmode (list "disable" "allow" "prefer")) -}}
{{- $errors = append $errors (printf "%s.tls.sslmode=%s never verifies the server, yet a CA bundle is mounted: use require, verify-ca or verify-full (or \"\" for verify-full)" $tier $v.tls.sslmode) -}}
{{- end -}}
{{- end -}}
{{- $r := .Values.redis -}}
{{- $src := include "strata.tls.caSource" (dict "values" $r "bundled" $r.enabled) | fromJson -}}
{{- if and (or $src.secret $src.configMap) (not (hasPrefix "rediss://" (include "strata.redis.url" .))) -}}
{{- $errors = append $errors "redis.tls.ca needs TLS to Redis: a rediss:// redis.external.url, or redis.tls.server.enabled for the bundled Redis" -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
