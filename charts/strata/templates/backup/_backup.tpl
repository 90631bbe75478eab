{{/*
Backups and point-in-time recovery with pgBackRest (README: Backups and point-in-time recovery).

A tier context is (dict "root" $ "component" "postgresql-critical" "values" .Values.postgresqlCritical
"superuser" <role>); every helper below takes one.

  repository host   StatefulSet <fullname>-pgbackrest (PVC repositories only): `pgbackrest server`
                    (TLS) owning the repository volume; the members push and fetch WAL through it
  members           a `pgbackrest` sidecar: `pgbackrest server` (TLS) so that backups can read
                    the data directory, metrics on 9854, stanza creation on the primary
  backup Jobs       CronJobs running `pgbackrest backup` where the repository is local: on the
                    repository host's node with its volume mounted, or anywhere for object stores
*/}}

{{/* "true" when the tier archives WAL and is backed up. */}}
{{- define "strata.backup.enabled" -}}
{{- if and .root.Values.backup.enabled .values.enabled .values.backup.enabled -}}true{{- end -}}
{{- end -}}

{{/* "true" when the tier bootstraps from a backup (Patroni's pgbackrest bootstrap method). */}}
{{- define "strata.backup.restoring" -}}
{{- if and .values.enabled .values.restore.enabled -}}true{{- end -}}
{{- end -}}

{{/* "true" when any bundled tier is backed up. */}}
{{- define "strata.backup.any" -}}
{{- $root := . -}}
{{- range $t := list (dict "component" "postgresql-critical" "values" $root.Values.postgresqlCritical) (dict "component" "postgresql-ml" "values" $root.Values.postgresqlMl) -}}
{{- if include "strata.backup.enabled" (merge (dict "root" $root) $t) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- define "strata.backup.pvc" -}}
{{- if eq .Values.backup.repository.type "pvc" -}}true{{- end -}}
{{- end -}}

{{/* The tier's stanza: its own name (the Patroni scope) unless set. */}}
{{- define "strata.backup.stanza" -}}
{{- .values.backup.stanza | default (include "strata.componentName" .) -}}
{{- end -}}

{{- define "strata.backup.repoHostName" -}}
{{- printf "%s-pgbackrest" (include "strata.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.backup.tlsSecretName" -}}
{{- .Values.backup.tls.existingSecret | default (printf "%s-pgbackrest-tls" (include "strata.fullname" .)) -}}
{{- end -}}

{{- define "strata.backup.encryptionSecretName" -}}
{{- .Values.backup.encryption.existingSecret | default (printf "%s-pgbackrest-encryption" (include "strata.fullname" .)) -}}
{{- end -}}

{{- define "strata.backup.encryptionSecretKey" -}}
{{- if .Values.backup.encryption.existingSecret }}{{ .Values.backup.encryption.existingSecretKey }}{{ else }}passphrase{{ end -}}
{{- end -}}

{{/* The repository's claim: the StatefulSet's own, or an existing one. */}}
{{- define "strata.backup.claimName" -}}
{{- .Values.backup.repository.pvc.existingClaim | default (printf "repository-%s-0" (include "strata.backup.repoHostName" .)) -}}
{{- end -}}

{{/* Path of the repository: on the volume, or per release in an object store. */}}
{{- define "strata.backup.repoPath" -}}
{{- if include "strata.backup.pvc" . -}}
/var/lib/pgbackrest/repo
{{- else -}}
{{- .Values.backup.repository.path | default (printf "/%s/%s" .Release.Namespace (include "strata.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{/* Label a pod carries to be let into a repository host (by that host's name). */}}
{{- define "strata.backup.clientLabel" -}}
pgbackrest.strata.io/{{ . }}: client
{{- end -}}

{{/* Fullname of another release of this chart (no fullnameOverride there). */}}
{{- define "strata.backup.sourceFullname" -}}
{{- $name := default .root.Chart.Name .root.Values.nameOverride -}}
{{- $release := .values.restore.fromRelease -}}
{{- if contains $name $release -}}
{{- $release | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" $release $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The restore source: the stanza, and for PVC repositories the host and its TLS Secret. */}}
{{- define "strata.backup.restoreStanza" -}}
{{- $r := .values.restore -}}
{{- if $r.stanza -}}
{{- $r.stanza -}}
{{- else if $r.fromRelease -}}
{{- printf "%s-%s" (include "strata.backup.sourceFullname" .) .component | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "strata.backup.stanza" . -}}
{{- end -}}
{{- end -}}

{{- define "strata.backup.restoreRepoHost" -}}
{{- $r := .values.restore -}}
{{- if $r.repoHost -}}
{{- $r.repoHost -}}
{{- else if $r.fromRelease -}}
{{- printf "%s-pgbackrest" (include "strata.backup.sourceFullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "strata.backup.repoHostName" .root -}}
{{- end -}}
{{- end -}}

{{- define "strata.backup.restoreTlsSecret" -}}
{{- $r := .values.restore -}}
{{- if $r.tlsSecret -}}
{{- $r.tlsSecret -}}
{{- else if $r.fromRelease -}}
{{- printf "%s-pgbackrest-tls" (include "strata.backup.sourceFullname" .) -}}
{{- else -}}
{{- include "strata.backup.tlsSecretName" .root -}}
{{- end -}}
{{- end -}}

{{- define "strata.backup.restoreRepoPath" -}}
{{- $r := .values.restore -}}
{{- if $r.repoPath -}}
{{- $r.repoPath -}}
{{- else if $r.fromRelease -}}
{{- printf "/%s/%s" .root.Release.Namespace (include "strata.backup.sourceFullname" .) -}}
{{- else -}}
{{- include "strata.backup.repoPath" .root -}}
{{- end -}}
{{- end -}}

{{/* Repository options shared by every configuration (repo1-*); .local = the repository is
on this pod's volume (repository host, backup Jobs), else reached through the host. */}}
{{- define "strata.backup.repoOptions" -}}
{{- $b := .root.Values.backup -}}
{{- $repo := $b.repository -}}
{{- if eq $repo.type "pvc" }}
{{- if .local }}
repo1-path={{ .path | default (include "strata.backup.repoPath" .root) }}
{{- else }}
repo1-host={{ .host }}
repo1-host-type=tls
repo1-host-port=8432
repo1-host-ca-file={{ .tlsDir }}/ca.crt
repo1-host-cert-file={{ .tlsDir }}/tls.crt
repo1-host-key-file={{ .tlsDir }}/tls.key
{{- end }}
{{- else }}
repo1-type={{ $repo.type }}
repo1-path={{ .path | default (include "strata.backup.repoPath" .root) }}
{{- if eq $repo.type "s3" }}
repo1-s3-bucket={{ $repo.s3.bucket }}
repo1-s3-endpoint={{ $repo.s3.endpoint }}
repo1-s3-region={{ $repo.s3.region }}
repo1-s3-uri-style={{ $repo.s3.uriStyle }}
repo1-s3-key-type={{ $repo.s3.keyType }}
{{- with $repo.s3.port }}
repo1-storage-port={{ . }}
{{- end }}
repo1-storage-verify-tls={{ ternary "y" "n" $repo.s3.verifyTls }}
{{- else if eq $repo.type "gcs" }}
repo1-gcs-bucket={{ $repo.gcs.bucket }}
{{- with $repo.gcs.endpoint }}
repo1-gcs-endpoint={{ . }}
{{- end }}
repo1-gcs-key-type={{ $repo.gcs.keyType }}
{{- if eq $repo.gcs.keyType "service" }}
repo1-gcs-key={{ include "strata.secretFiles.dir" nil }}/gcs-key
{{- end }}
{{- else if eq $repo.type "azure" }}
repo1-azure-account={{ $repo.azure.account }}
repo1-azure-container={{ $repo.azure.container }}
repo1-azure-key-type={{ $repo.azure.keyType }}
{{- with $repo.azure.endpoint }}
repo1-azure-endpoint={{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $b.encryption.enabled (or .local (ne $repo.type "pvc")) }}
repo1-cipher-type=aes-256-cbc
{{- end }}
{{- end -}}

{{/* Options every pgBackRest process of the release shares. */}}
{{- define "strata.backup.commonOptions" -}}
{{- $b := .Values.backup }}
compress-type={{ $b.compression.type }}
{{- if not (kindIs "invalid" $b.compression.level) }}
compress-level={{ $b.compression.level }}
{{- end }}
process-max={{ $b.processMax }}
log-level-file=off
log-path=/tmp
{{- end -}}

{{/* The PostgreSQL side of a stanza (the data directory and how to reach PostgreSQL locally). */}}
{{- define "strata.backup.pgOptions" -}}
pg1-path=/var/lib/postgresql/data/pgdata
pg1-port=5432
pg1-socket-path=/var/run/postgresql
pg1-user={{ .superuser }}
{{- end -}}

{{/* /etc/pgbackrest/pgbackrest.conf of the members (postgresql and pgbackrest containers). */}}
{{- define "strata.backup.memberConfig" -}}
{{- $root := .root -}}
{{- $b := $root.Values.backup -}}
{{- $stanza := include "strata.backup.stanza" . -}}
[global]
{{- include "strata.backup.commonOptions" $root }}
{{- include "strata.backup.repoOptions" (dict "root" $root "local" false "host" (include "strata.backup.repoHostName" $root) "tlsDir" "/etc/pgbackrest-tls") }}
# WAL is pushed by a background process (archive-async) from a spool on the emptyDir /tmp:
# archive_command returns as soon as the segment is queued, and a lost spool only means
# segments are pushed again (pgBackRest accepts a segment it already holds, same checksum).
archive-async={{ ternary "y" "n" $b.archive.async }}
spool-path=/tmp/pgbackrest-spool
lock-path=/tmp/pgbackrest
{{- with $b.archive.pushQueueMax }}
archive-push-queue-max={{ . }}
{{- end }}
# archive_command output lands in PostgreSQL's log: warnings and errors only.
log-level-console=warn
log-level-stderr=off
# pgbackrest server (the sidecar): backup Jobs of this tier read the data directory here.
tls-server-address=*
tls-server-port=8432
tls-server-ca-file=/etc/pgbackrest-tls/ca.crt
tls-server-cert-file=/etc/pgbackrest-tls/tls.crt
tls-server-key-file=/etc/pgbackrest-tls/tls.key
tls-server-auth={{ $stanza }}={{ $stanza }}

[{{ $stanza }}]
{{ include "strata.backup.pgOptions" . }}
{{- end -}}

{{/* The configuration of the backup Jobs and helm test pods: the repository is local,
PostgreSQL is the tier's primary, reached through its Service. */}}
{{- define "strata.backup.jobConfig" -}}
{{- $root := .root -}}
{{- $b := $root.Values.backup -}}
{{- $stanza := include "strata.backup.stanza" . -}}
[global]
{{- include "strata.backup.commonOptions" $root }}
{{- include "strata.backup.repoOptions" (dict "root" $root "local" true) }}
{{- if include "strata.backup.pvc" $root }}
# Shared with every Job on the repository's volume: two backups of a stanza never overlap.
lock-path=/var/lib/pgbackrest/lock
{{- else }}
lock-path=/tmp/pgbackrest
{{- end }}
log-level-console=info
start-fast=y
repo1-retention-full={{ .values.backup.retention.full }}
{{- with .values.backup.retention.diff }}
repo1-retention-diff={{ . }}
{{- end }}

[{{ $stanza }}]
pg1-host={{ include "strata.componentName" . }}
pg1-host-type=tls
pg1-host-port=8432
pg1-host-ca-file=/etc/pgbackrest-tls/ca.crt
pg1-host-cert-file=/etc/pgbackrest-tls/tls.crt
pg1-host-key-file=/etc/pgbackrest-tls/tls.key
{{ include "strata.backup.pgOptions" . }}
{{- end -}}

{{/* /etc/pgbackrest-restore/pgbackrest.conf of the members: the repository to restore from. */}}
{{- define "strata.backup.restoreConfig" -}}
{{- $root := .root -}}
[global]
{{- include "strata.backup.commonOptions" $root }}
{{- include "strata.backup.repoOptions" (dict "root" $root "local" false "host" (include "strata.backup.restoreRepoHost" .) "tlsDir" "/etc/pgbackrest-restore-tls" "path" (include "strata.backup.restoreRepoPath" .)) }}
archive-async=y
spool-path=/tmp/pgbackrest-restore-spool
lock-path=/tmp/pgbackrest-restore
log-level-console=info
log-level-stderr=off

[{{ include "strata.backup.restoreStanza" . }}]
{{ include "strata.backup.pgOptions" . }}
{{- end -}}

{{/* The repository host's configuration: the repository on its volume, and who may use it. */}}
{{- define "strata.backup.repoHostConfig" -}}
{{- $root := . -}}
[global]
{{- include "strata.backup.commonOptions" $root }}
{{- include "strata.backup.repoOptions" (dict "root" $root "local" true) }}
lock-path=/var/lib/pgbackrest/lock
log-level-console=info
tls-server-address=*
tls-server-port=8432
tls-server-ca-file=/etc/pgbackrest-tls/ca.crt
tls-server-cert-file=/etc/pgbackrest-tls/tls.crt
tls-server-key-file=/etc/pgbackrest-tls/tls.key
# Each tier's certificate (CN = its stanza) may use its own stanza only.
{{- range $t := list (dict "component" "postgresql-critical" "values" $root.Values.postgresqlCritical) (dict "component" "postgresql-ml" "values" $root.Values.postgresqlMl) }}
{{- $ctx := merge (dict "root" $root) $t }}
{{- if include "strata.backup.enabled" $ctx }}
{{- $stanza := include "strata.backup.stanza" $ctx }}
tls-server-auth={{ $stanza }}={{ $stanza }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The repository's secrets of any container that reads or writes the repository itself (.local),
or of a member for object stores, as secret files (strata.secretFiles.*): the passphrase and
the object store's credentials. The image's entrypoint (strata-patroni, SECRET_FILES) hands each
STRATA_PGBACKREST_*_FILE to what it runs as the PGBACKREST_* option pgBackRest reads, so the
Secrets never appear in the pod's environment; the GCS key is a file pgBackRest reads itself.
Call with (dict "root" $ "local" <bool>).
*/}}
{{- define "strata.backup.secretFiles" -}}
{{- $b := .root.Values.backup -}}
{{- $repo := $b.repository -}}
{{- if and $b.encryption.enabled (or .local (ne $repo.type "pvc")) }}
- env: STRATA_PGBACKREST_REPO1_CIPHER_PASS_FILE
  secret: {{ include "strata.backup.encryptionSecretName" .root }}
  key: {{ include "strata.backup.encryptionSecretKey" .root }}
  path: pgbackrest-cipher-pass
{{- end }}
{{- if and (eq $repo.type "s3") (eq $repo.s3.keyType "shared") }}
- env: STRATA_PGBACKREST_REPO1_S3_KEY_FILE
  secret: {{ $repo.s3.existingSecret }}
  key: {{ $repo.s3.accessKeyKey }}
  path: s3-key
- env: STRATA_PGBACKREST_REPO1_S3_KEY_SECRET_FILE
  secret: {{ $repo.s3.existingSecret }}
  key: {{ $repo.s3.secretKeyKey }}
  path: s3-key-secret
{{- else if and (eq $repo.type "gcs") (eq $repo.gcs.keyType "service") }}
- secret: {{ $repo.gcs.existingSecret }}
  key: {{ $repo.gcs.keyFileKey }}
  path: gcs-key
{{- else if eq $repo.type "azure" }}
- env: STRATA_PGBACKREST_REPO1_AZURE_KEY_FILE
  secret: {{ $repo.azure.existingSecret }}
  key: {{ $repo.azure.keyKey }}
  path: azure-key
{{- end }}
{{- end -}}

{{/* A TLS volume: the CA and one key pair of a pgbackrest TLS Secret, as ca.crt/tls.crt/tls.key
(group-readable: pgBackRest accepts a root-owned key with mode 0640 or less). */}}
{{- define "strata.backup.tlsVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
      - key: {{ .pair }}.crt
        path: tls.crt
      - key: {{ .pair }}.key
        path: tls.key
{{- end -}}

{{/* Where the backup pods of a tier run and what they mount: the repository host's node and
volume for PVC repositories (ReadWriteOnce is per node), anywhere for object stores. */}}
{{- define "strata.backup.jobPodSpec" -}}
{{- $root := .root -}}
{{- $b := $root.Values.backup -}}
{{- $pvc := include "strata.backup.pvc" $root -}}
{{- $files := include "strata.backup.secretFiles" (dict "root" $root "local" true) | fromYamlArray -}}
restartPolicy: Never
automountServiceAccountToken: false
enableServiceLinks: false
{{- with (include "strata.imagePullSecrets" $root) }}
{{ . }}
{{- end }}
securityContext:
  {{- toYaml $b.repoHost.podSecurityContext | nindent 2 }}
{{- if $pvc }}
affinity:
  podAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "strata.componentSelectorLabels" (dict "root" $root "component" "pgbackrest") | nindent 12 }}
{{- end }}
{{- with $b.repoHost.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: pgbackrest
    image: {{ include "strata.image" (dict "root" $root "image" $b.image "defaultTag" "15-patroni4.1.5") }}
    imagePullPolicy: {{ $b.image.pullPolicy }}
    # Run through the image's entrypoint (strata-patroni): it reads the secret files first.
    args: {{ toJson .command }}
    env:
      {{- with $files }}
      {{- include "strata.secretFiles.env" . | nindent 6 }}
      {{- end }}
      - name: PGBACKREST_CONFIG
        value: /etc/pgbackrest/pgbackrest.conf
    resources:
      {{- toYaml $b.jobs.resources | nindent 6 }}
    securityContext:
      {{- toYaml $b.repoHost.containerSecurityContext | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/pgbackrest
        readOnly: true
      - name: tls
        mountPath: /etc/pgbackrest-tls
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- if $pvc }}
      - name: repository
        mountPath: /var/lib/pgbackrest
      {{- end }}
      {{- if $files }}
      {{- include "strata.secretFiles.mount" "secrets" | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "strata.componentName" . }}-pgbackrest
      items:
        - key: job.conf
          path: pgbackrest.conf
  {{- include "strata.backup.tlsVolume" (dict "name" "tls" "secret" (include "strata.backup.tlsSecretName" $root) "pair" .component) | nindent 2 }}
  - name: tmp
    emptyDir: {}
  {{- if $pvc }}
  - name: repository
    persistentVolumeClaim:
      claimName: {{ include "strata.backup.claimName" $root }}
  {{- end }}
  {{- if $files }}
  {{- include "strata.secretFiles.volume" (dict "name" "secrets" "files" $files) | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* CronJob: batch/v1 from 1.21, batch/v1beta1 before (same fields for what we use). */}}
{{- define "strata.cronjob.apiVersion" -}}
{{- if and (.Capabilities.APIVersions.Has "batch/v1") (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) -}}
batch/v1
{{- else -}}
batch/v1beta1
{{- end -}}
{{- end -}}

{{/* Problems with the backup values, as a YAML list (strata.validateValues reports them). */}}
{{- define "strata.backup.errors" -}}
{{- $errors := list -}}
{{- $b := .Values.backup -}}
{{- $repo := $b.repository -}}
{{- $needed := or (include "strata.backup.any" .) .Values.postgresqlCritical.restore.enabled .Values.postgresqlMl.restore.enabled -}}
{{- if and $needed (eq $repo.type "s3") -}}
{{- if not (and $repo.s3.bucket $repo.s3.endpoint $repo.s3.region) -}}
{{- $errors = append $errors "backup.repository.type=s3 needs backup.repository.s3.bucket, endpoint and region" -}}
{{- end -}}
{{- if and (eq $repo.s3.keyType "shared") (not $repo.s3.existingSecret) -}}
{{- $errors = append $errors "backup.repository.s3.keyType=shared needs backup.repository.s3.existingSecret (access and secret key)" -}}
{{- end -}}
{{- else if and $needed (eq $repo.type "gcs") -}}
{{- if not $repo.gcs.bucket -}}
{{- $errors = append $errors "backup.repository.type=gcs needs backup.repository.gcs.bucket" -}}
{{- end -}}
{{- if and (eq $repo.gcs.keyType "service") (not $repo.gcs.existingSecret) -}}
{{- $errors = append $errors "backup.repository.gcs.keyType=service needs backup.repository.gcs.existingSecret (the key file)" -}}
{{- end -}}
{{- else if and $needed (eq $repo.type "azure") -}}
{{- if not (and $repo.azure.account $repo.azure.container $repo.azure.existingSecret) -}}
{{- $errors = append $errors "backup.repository.type=azure needs backup.repository.azure.account, container and existingSecret" -}}
{{- end -}}
{{- end -}}
{{- range $t := list (dict "key" "postgresqlCritical" "component" "postgresql-critical" "values" .Values.postgresqlCritical) (dict "key" "postgresqlMl" "component" "postgresql-ml" "values" .Values.postgresqlMl) -}}
{{- $r := $t.values.restore -}}
{{- if $r.enabled -}}
{{- if not $t.values.enabled -}}
{{- $errors = append $errors (printf "%s.restore needs the bundled PostgreSQL (%s.enabled=true): restore an external server with its own tools" $t.key $t.key) -}}
{{- end -}}
{{- if eq $r.fromRelease $.Release.Name -}}
{{- $errors = append $errors (printf "%s.restore.fromRelease names this release: leave it empty to restore from this release's own repository" $t.key) -}}
{{- end -}}
{{- if and (not $r.fromRelease) (not $r.repoHost) (eq $repo.type "pvc") (not (include "strata.backup.enabled" (merge (dict "root" $) $t))) -}}
{{- $errors = append $errors (printf "%s.restore from this release's own repository needs backups on (backup.enabled and %s.backup.enabled), or restore.fromRelease / restore.repoHost" $t.key $t.key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $errors -}}
{{- end -}}
