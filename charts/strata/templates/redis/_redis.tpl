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

{{/* "true" when the bundled Redis runs in sentinel mode. */}}
{{- define "strata.redis.sentinelMode" -}}
{{- if and .Values.redis.enabled (eq .Values.redis.mode "sentinel") }}true{{ end -}}
{{- end -}}

{{/* "true" when the cache finds its master through Sentinel (bundled or external). */}}
{{- define "strata.redis.usesSentinel" -}}
{{- if or (include "strata.redis.sentinelMode" .) (and (not .Values.redis.enabled) .Values.redis.external.sentinels) }}true{{ end -}}
{{- end -}}

{{/* "true" when Sentinel requires a password (and the Secret carries one). */}}
{{- define "strata.redis.sentinelAuth" -}}
{{- if and (include "strata.redis.usesSentinel" .) .Values.redis.auth.enabled .Values.redis.auth.sentinelEnabled }}true{{ end -}}
{{- end -}}

{{/* "true" when the bundled Redis serves TLS only (standalone or sentinel mode). */}}
{{- define "strata.redis.serverTls" -}}
{{- if and .Values.redis.enabled .Values.redis.tls.server.enabled }}true{{ end -}}
{{- end -}}

{{/*
redis-cli's TLS options inside a sentinel-mode pod (" --tls --cacert <ca>", or "" in plain
text): the chain is verified against the mounted CA; redis-cli checks no host name, so pod
DNS names and 127.0.0.1 need no SAN of their own for these calls.
*/}}
{{- define "strata.redis.cliTls" -}}
{{- if include "strata.redis.serverTls" . }} --tls --cacert {{ include "strata.tls.serverDir" nil }}/ca.crt{{ end -}}
{{- end -}}

{{/* DNS domain of the Redis pods: <pod>.<this> is what Redis and Sentinel announce. */}}
{{- define "strata.redis.podDomain" -}}
{{- $name := include "strata.componentName" (dict "root" . "component" "redis") -}}
{{- printf "%s-hl.%s.svc.%s" $name .Release.Namespace .Values.redis.sentinel.clusterDomain -}}
{{- end -}}

{{/* DNS name of Redis pod N. Call with (dict "root" $ "index" N). */}}
{{- define "strata.redis.podHost" -}}
{{- $name := include "strata.componentName" (dict "root" .root "component" "redis") -}}
{{- printf "%s-%d.%s" $name (int .index) (include "strata.redis.podDomain" .root) -}}
{{- end -}}

{{/* STRATA_CACHE_REDIS_SENTINELS: every bundled pod's Sentinel, or the external list. */}}
{{- define "strata.redis.sentinelAddresses" -}}
{{- if include "strata.redis.sentinelMode" . -}}
{{- $out := list -}}
{{- range $i := until (int .Values.redis.sentinel.replicas) -}}
{{- $out = append $out (printf "%s:26379" (include "strata.redis.podHost" (dict "root" $ "index" $i))) -}}
{{- end -}}
{{- join "," $out -}}
{{- else -}}
{{- join "," .Values.redis.external.sentinels -}}
{{- end -}}
{{- end -}}

{{- define "strata.redis.sentinelMaster" -}}
{{- if include "strata.redis.sentinelMode" . }}{{ .Values.redis.sentinel.masterName }}{{ else }}{{ .Values.redis.external.sentinelMaster }}{{ end -}}
{{- end -}}

{{/* Secret files of the sentinel-mode pods: the Redis password and Sentinel's. */}}
{{- define "strata.redis.sentinelSecretFiles" -}}
{{ include "strata.redis.secretFiles" . }}
{{- if include "strata.redis.sentinelAuth" . }}
- secret: {{ include "strata.redis.secretName" . }}
  key: {{ .Values.redis.auth.secretKeys.sentinelPasswordKey }}
  path: sentinel-password
{{- end }}
{{- end -}}

{{/* sh that sets $spw like strata.redis.readPassword sets $pw ("" without Sentinel auth). */}}
{{- define "strata.redis.readSentinelPassword" -}}
{{- if include "strata.redis.sentinelAuth" . -}}
spw=$(cat {{ include "strata.secretFiles.dir" nil }}/sentinel-password)
spw=${spw#"${spw%%[![:space:]]*}"}
spw=${spw%"${spw##*[![:space:]]}"}
if [ -z "$spw" ]; then echo "the Sentinel password file is empty" >&2; exit 1; fi
{{- else -}}
spw=""
{{- end -}}
{{- end -}}

{{/*
sh shared by the redis and sentinel containers of sentinel mode: $me (this pod's DNS name),
hexq (a value as a double-quoted \xHH string: any byte is safe in redis.conf), and
$master ("<host> <port>"), decided the same way in both containers by
files/redis-find-master.sh: the Sentinels of the other pods when they agree and none may be
failing this pod over, else what this pod's own Sentinel last recorded on the volume, else
pod 0. It runs in a subshell so the Sentinel password never enters redis-server's
environment; with redis.tls.server it speaks TLS to the Sentinels.
*/}}
{{- define "strata.redis.findMaster" -}}
{{- $s := .Values.redis.sentinel -}}
{{- $name := include "strata.componentName" (dict "root" . "component" "redis") -}}
{{- $domain := include "strata.redis.podDomain" . -}}
me="${HOSTNAME:-$(hostname)}.{{ $domain }}"
hexq() {
  h=$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/../\\x&/g')
  # A missing tool empties the pipe (sh has no pipefail): never write an empty secret.
  if [ -z "$h" ]; then echo "redis: cannot encode a password (od, tr, sed)" >&2; exit 1; fi
  printf '"%s"' "$h"
}
master=$(
  export FIND_SELF="$me 6379" FIND_FIRST="{{ include "strata.redis.podHost" (dict "root" . "index" 0) }} 6379"
  FIND_SENTINELS=""
  for i in $(seq 0 {{ sub (int $s.replicas) 1 }}); do
    host="{{ $name }}-$i.{{ $domain }}"
    [ "$host" = "$me" ] || FIND_SENTINELS="$FIND_SENTINELS $host:26379"
  done
  # Twice failover-timeout (a failover Sentinel gave up on is retried after one), at most
  # 60 s: with a round of questions on top it must end well within the startup probes
  # (the sentinel container's 120 s), or a kubelet restart begins the wait again.
  export FIND_SENTINELS FIND_MASTER={{ $s.masterName | quote }} FIND_WAIT={{ min 60 (div (mul (int $s.failoverTimeout) 2) 1000) }}
  export FIND_SENTINEL_CONF=/data/sentinel/sentinel.conf FIND_SENTINEL_AUTH="$spw"
  {{- if include "strata.redis.serverTls" . }}
  export FIND_TLS_CA={{ include "strata.tls.serverDir" nil }}/ca.crt
  {{- end }}
  {{- .Files.Get "files/redis-find-master.sh" | trimSuffix "\n" | nindent 2 }}
)
{{- end -}}

{{/*
The prometheus-redis-exporter sidecar of a Redis pod (metrics.redisExporter), standalone or
sentinel mode: it scrapes the pod's own Redis (127.0.0.1:6379), so every pod reports its role
and memory. redis_exporter reads a password file only in its JSON form ({"<addr>": "<password>"}),
so the init container below writes one from the mounted Secret into a memory-backed volume:
the password is in no environment variable and on no command line (the image may have no shell).
*/}}
{{- define "strata.redis.exporterAddr" -}}
{{- if include "strata.redis.serverTls" . -}}
rediss://127.0.0.1:6379
{{- else -}}
redis://127.0.0.1:6379
{{- end -}}
{{- end -}}

{{- define "strata.redis.exporterInit" -}}
{{- $v := .Values.redis -}}
{{- $e := .Values.metrics.redisExporter -}}
{{- if $v.auth.enabled }}
- name: redis-exporter-auth
  image: {{ include "strata.image" (dict "root" . "image" $v.image "defaultTag" "7-bookworm") }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  command:
    - sh
    - -c
    - |
      set -eu
      umask 077
      {{- include "strata.redis.readPassword" . | nindent 6 }}
      case $pw in
        *[[:cntrl:]]*) echo "redis-exporter-auth: the password has control characters" >&2; exit 1 ;;
      esac
      # JSON string: backslashes and double quotes escaped.
      esc=$(printf '%s' "$pw" | sed 's/[\\"]/\\&/g')
      printf '{"%s": "%s"}\n' {{ include "strata.redis.exporterAddr" . | quote }} "$esc" > /run/redis-exporter/passwords.json
  resources:
    {{- toYaml $e.resources | nindent 4 }}
  securityContext:
    {{- toYaml $e.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: exporter-auth
      mountPath: /run/redis-exporter
    {{- include "strata.secretFiles.mount" "exporter-secrets" | nindent 4 }}
{{- end }}
{{- end -}}

{{- define "strata.redis.exporterSidecar" -}}
{{- $v := .Values.redis -}}
{{- $e := .Values.metrics.redisExporter -}}
- name: redis-exporter
  image: {{ include "strata.metrics.exporterImage" (dict "root" . "image" $e.image "tierImage" $v.image "defaultTag" "7-bookworm") }}
  imagePullPolicy: {{ $e.image.pullPolicy | default $v.image.pullPolicy }}
  {{- with $e.command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $e.extraArgs }}
  args:
    {{- range . }}
    - {{ . | quote }}
    {{- end }}
  {{- end }}
  env:
    - name: REDIS_ADDR
      value: {{ include "strata.redis.exporterAddr" . | quote }}
    - name: REDIS_EXPORTER_WEB_LISTEN_ADDRESS
      value: {{ printf ":%d" (int $e.port) | quote }}
    {{- if hasPrefix "rediss://" (include "strata.redis.exporterAddr" .) }}
    # Its own pod's Redis over loopback: encrypted, the certificate (issued to the Service
    # names, not 127.0.0.1) not checked.
    - name: REDIS_EXPORTER_SKIP_TLS_VERIFICATION
      value: "true"
    {{- end }}
    {{- if $v.auth.enabled }}
    - name: REDIS_PASSWORD_FILE
      value: /run/redis-exporter/passwords.json
    {{- end }}
  ports:
    - name: redis-exporter
      containerPort: {{ $e.port }}
      protocol: TCP
  {{- include "strata.metrics.exporterProbe" "redis-exporter" | nindent 2 }}
  resources:
    {{- toYaml $e.resources | nindent 4 }}
  securityContext:
    {{- toYaml $e.containerSecurityContext | nindent 4 }}
  {{- if $v.auth.enabled }}
  volumeMounts:
    - name: exporter-auth
      mountPath: /run/redis-exporter
      readOnly: true
  {{- end }}
{{- end -}}

{{/* Volumes of the exporter and its init container. */}}
{{- define "strata.redis.exporterVolumes" -}}
{{- if .Values.redis.auth.enabled }}
- name: exporter-auth
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- include "strata.secretFiles.volume" (dict "name" "exporter-secrets" "files" (include "strata.redis.secretFiles" . | fromYamlArray)) | nindent 0 }}
{{- end }}
{{- end -}}
