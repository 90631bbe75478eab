{{/*
A PostgreSQL tier run by Patroni with the Kubernetes API as its consensus store (DCS).
Every helper takes (dict "root" $ "component" "postgresql-critical" "values" .Values.postgresqlCritical
"superuser" <role> "passwordKey" <key> "secretName" <name> "database" <db>).

Objects per tier (<name> = <fullname>-<component>, also Patroni's scope):
  Service <name>         primary: no selector; Patroni writes the leader's address into the
                         Endpoints of the same name together with its leader lock
  Service <name>-ro      replicas only (role=replica, Ready), for read-only traffic
  Service <name>-hl      headless, the StatefulSet's serviceName (pod DNS names)
  Service <name>-config  headless, no selector: keeps Patroni's <name>-config Endpoints (the
                         cluster's configuration and initialize key) from being cleaned up
*/}}

{{- define "strata.postgresql.patroniLabels" -}}
{{ include "strata.componentSelectorLabels" . }}
cluster-name: {{ include "strata.componentName" . }}
{{- end -}}

{{/* Members of a tier, with synchronous replication off when there is nothing to be synchronous with. */}}
{{- define "strata.postgresql.syncMode" -}}
{{- $p := .values.patroni -}}
{{- if or (lt (int .values.replicas) 2) (eq $p.synchronousMode "async") -}}
false
{{- else if eq $p.synchronousMode "quorum" -}}
quorum
{{- else -}}
true
{{- end -}}
{{- end -}}

{{/* Patroni's dynamic (cluster-wide) configuration, as JSON: written to the DCS at bootstrap
and re-applied by each starting member (strata-patroni apply-config) after an upgrade. */}}
{{- define "strata.postgresql.dynamicConfig" -}}
{{- $v := .values -}}
{{- $p := $v.patroni -}}
{{- $sync := include "strata.postgresql.syncMode" . -}}
{{- $syncValue := false -}}
{{- if eq $sync "quorum" }}{{ $syncValue = "quorum" }}{{ else if eq $sync "true" }}{{ $syncValue = true }}{{ end -}}
{{- $params := dict
  "max_connections" (int $v.maxConnections)
  "password_encryption" "scram-sha-256"
  "wal_level" "replica"
  "hot_standby" "on"
  "wal_log_hints" "on"
  "max_wal_senders" 10
  "max_replication_slots" 10
  "wal_keep_size" "256MB"
  "synchronous_commit" "on"
  "lc_messages" "C" -}}
{{- range $v.extraArgs }}
{{- $kv := splitn "=" 2 . }}
{{- $_ := set $params (trim $kv._0) (trim ($kv._1 | default "")) }}
{{- end }}
{{- range $k, $val := $v.parameters }}
{{- $_ := set $params $k $val }}
{{- end }}
{{- $cfg := dict
  "ttl" (int $p.ttl)
  "loop_wait" (int $p.loopWait)
  "retry_timeout" (int $p.retryTimeout)
  "maximum_lag_on_failover" (int $p.maximumLagOnFailover)
  "primary_start_timeout" (int $p.primaryStartTimeout)
  "failsafe_mode" $p.failsafeMode
  "synchronous_mode" $syncValue
  "synchronous_mode_strict" (and (ne $sync "false") $p.synchronousModeStrict)
  "synchronous_node_count" (int $p.synchronousNodeCount)
  "postgresql" (dict "use_pg_rewind" true "use_slots" true "parameters" $params) -}}
{{- toJson $cfg -}}
{{- end -}}

{{- define "strata.postgresql.configmap" -}}
{{- $name := include "strata.componentName" . -}}
{{- $backup := include "strata.backup.enabled" . -}}
{{- $stanza := include "strata.backup.stanza" . -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}-patroni
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
data:
  # Cluster-wide settings (Patroni's dynamic configuration).
  dynamic.json: {{ include "strata.postgresql.dynamicConfig" . | quote }}
  # Member settings; the member's name, addresses and passwords come as PATRONI_* variables.
  patroni.yaml: |
    scope: {{ $name }}
    log:
      level: INFO
    restapi:
      listen: 0.0.0.0:8008
    kubernetes:
      use_endpoints: true
      ports:
        - name: postgresql
          port: 5432
        {{- if $backup }}
        # The primary Service also routes the backup Jobs to the leader's pgbackrest server.
        - name: pgbackrest
          port: 8432
        {{- end }}
    watchdog:
      mode: "off"
    bootstrap:
      dcs: {{ include "strata.postgresql.dynamicConfig" . }}
      {{- if include "strata.backup.restoring" . }}
      # A new cluster is restored from a backup (to the latest state or to a point in time)
      # instead of initdb; PostgreSQL recovers with pgBackRest's settings, then is promoted.
      method: pgbackrest
      pgbackrest:
        command: /usr/local/bin/strata-pgbackrest restore
        keep_existing_recovery_conf: true
        no_params: true
      {{- end }}
      initdb:
        - encoding: UTF8
        - locale: C.UTF-8
        - data-checksums
      post_bootstrap: /usr/local/bin/strata-patroni post-bootstrap
    postgresql:
      listen: 0.0.0.0:5432
      data_dir: /var/lib/postgresql/data/pgdata
      bin_dir: /usr/lib/postgresql/15/bin
      pgpass: /tmp/pgpass
      use_unix_socket: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      {{- if $backup }}
      # New members restore the newest backup and replay the archive, then stream from the
      # leader; pg_basebackup from the leader when there is no backup yet.
      {{- if .values.backup.createReplicas }}
      create_replica_methods:
        - pgbackrest
        - basebackup
      pgbackrest:
        command: pgbackrest --stanza={{ $stanza }} --type=standby --log-level-console=info restore
        no_params: true
      {{- end }}
      # A replica that fell behind the leader's kept WAL catches up from the archive (and
      # ignores the history of a timeline beyond its leader's: see strata-pgbackrest).
      recovery_conf:
        restore_command: strata-pgbackrest archive-get {{ $stanza }} %f "%p"
      {{- end }}
      basebackup:
        - checkpoint: fast
      {{- if .root.Values.metrics.postgresExporter.enabled }}
      # The leader (re)creates the exporter's pg_monitor login role with the Secret's password
      # whenever it starts or is promoted, so clusters made before the exporter get it too.
      callbacks:
        on_start: /usr/local/bin/strata-patroni callback
        on_role_change: /usr/local/bin/strata-patroni callback
      {{- end }}
      parameters:
        unix_socket_directories: /var/run/postgresql
        {{- if .values.tls.server.enabled }}
        # TLS with the key pair of tls.server.existingSecret. Plain connections are still
        # accepted (pg_hba host lines): the clients choose with sslmode; replicas (libpq's
        # prefer) replicate over TLS.
        ssl: "on"
        ssl_cert_file: {{ include "strata.tls.serverDir" nil }}/tls.crt
        ssl_key_file: {{ include "strata.tls.serverDir" nil }}/tls.key
        {{- end }}
        {{- if $backup }}
        # Continuous archiving: the primary pushes every WAL segment to the repository
        # (replicas do not archive; a promoted one starts at its promotion).
        archive_mode: "on"
        archive_command: pgbackrest --stanza={{ $stanza }} archive-push "%p"
        archive_timeout: {{ .root.Values.backup.archive.timeoutSeconds }}
        {{- end }}
      pg_hba:
        - local all all scram-sha-256
        - host replication {{ .superuser }} 0.0.0.0/0 scram-sha-256
        - host replication {{ .superuser }} ::/0 scram-sha-256
        - host all all 0.0.0.0/0 scram-sha-256
        - host all all ::/0 scram-sha-256
{{- end -}}

{{- define "strata.postgresql.services" -}}
{{- $name := include "strata.componentName" . -}}
{{- $labels := include "strata.postgresql.patroniLabels" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
    cluster-name: {{ $name }}
    strata.io/postgresql-service: primary
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  type: ClusterIP
  # No selector: Patroni sets this Service's Endpoints to the leader, with its leader lock.
  ports:
    - name: postgresql
      port: 5432
      targetPort: 5432
      protocol: TCP
    {{- if include "strata.backup.enabled" . }}
    - name: pgbackrest
      port: 8432
      targetPort: 8432
      protocol: TCP
    {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-ro
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
    strata.io/postgresql-service: replicas
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  type: ClusterIP
  selector:
    {{- $labels | nindent 4 }}
    role: replica
  ports:
    - name: postgresql
      port: 5432
      targetPort: postgresql
      protocol: TCP
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-hl
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
    strata.io/postgresql-service: members
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  type: ClusterIP
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    {{- include "strata.componentSelectorLabels" . | nindent 4 }}
  ports:
    - name: postgresql
      port: 5432
      targetPort: postgresql
      protocol: TCP
    - name: patroni
      port: 8008
      targetPort: patroni
      protocol: TCP
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-config
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
    cluster-name: {{ $name }}
    strata.io/postgresql-service: patroni-config
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  type: ClusterIP
  clusterIP: None
{{- end -}}

{{/* ServiceAccount, Role and RoleBinding of a tier: what Patroni's Kubernetes DCS uses, no more. */}}
{{- define "strata.postgresql.rbac" -}}
{{- $name := include "strata.componentName" . -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
rules:
  # Patroni watches its Endpoints (leader, config, sync, failover) and creates them once;
  # list/watch/create cannot be limited to names.
  - apiGroups: [""]
    resources: ["endpoints"]
    verbs: ["get", "list", "watch", "create"]
  # It writes only its own four.
  - apiGroups: [""]
    resources: ["endpoints"]
    resourceNames: [{{ $name | quote }}, {{ printf "%s-config" $name | quote }}, {{ printf "%s-sync" $name | quote }}, {{ printf "%s-failover" $name | quote }}]
    verbs: ["patch", "update"]
  # Members find each other through their pods (status annotation, role label).
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch"]
  # Each member labels and annotates its own pod only.
  - apiGroups: [""]
    resources: ["pods"]
    resourceNames:
      {{- range $i := until (int .values.replicas) }}
      - {{ printf "%s-%d" $name $i | quote }}
      {{- end }}
    verbs: ["patch", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ .root.Release.Namespace | quote }}
{{- end -}}

{{- define "strata.postgresql.pdb" -}}
{{- if .values.pdb.enabled }}
apiVersion: {{ include "strata.pdb.apiVersion" .root }}
kind: PodDisruptionBudget
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "strata.componentSelectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
The members' metrics for the Prometheus Operator (templates/metrics/_metrics.tpl): Patroni's
/metrics on port `patroni` (role: patroni_primary, patroni_replica; timeline; WAL positions,
so replication lag = the leader's patroni_xlog_location - a replica's replayed location) and,
with backups, the pgbackrest sidecar's on `backup-metrics` (age of the backups, WAL archiving,
repository size). The ServiceMonitor finds the members through the headless Service (which
also lists members that are not Ready) and the backup-metrics Service.
*/}}
{{- define "strata.postgresql.monitorEndpoints" -}}
{{- $endpoints := list (dict "port" "patroni") -}}
{{- if include "strata.backup.enabled" . -}}
{{- $endpoints = append $endpoints (dict "port" "backup-metrics") -}}
{{- end -}}
{{- if .root.Values.metrics.postgresExporter.enabled -}}
{{- $endpoints = append $endpoints (dict "port" "pg-exporter") -}}
{{- end -}}
{{- toYaml $endpoints -}}
{{- end -}}

{{- define "strata.postgresql.serviceMonitor" -}}
{{- if .root.Values.metrics.serviceMonitor.enabled }}
{{- $services := list "members" -}}
{{- if include "strata.backup.enabled" . }}{{ $services = append $services "backup-metrics" }}{{ end -}}
{{- if .root.Values.metrics.postgresExporter.enabled }}{{ $services = append $services "exporter" }}{{ end -}}
{{- $selector := dict "matchLabels" (include "strata.componentSelectorLabels" . | fromYaml) "matchExpressions" (list (dict "key" "strata.io/postgresql-service" "operator" "In" "values" $services)) }}
{{- include "strata.metrics.monitor" (merge (dict "kind" "ServiceMonitor" "selector" $selector "endpoints" (include "strata.postgresql.monitorEndpoints" . | fromYamlArray)) .) }}
{{- end }}
{{- end -}}

{{- define "strata.postgresql.podMonitor" -}}
{{- if .root.Values.metrics.podMonitor.enabled }}
{{- $selector := dict "matchLabels" (include "strata.componentSelectorLabels" . | fromYaml) }}
{{- include "strata.metrics.monitor" (merge (dict "kind" "PodMonitor" "selector" $selector "endpoints" (include "strata.postgresql.monitorEndpoints" . | fromYamlArray)) .) }}
{{- end }}
{{- end -}}

{{/*
A member's secret files (strata.secretFiles.*): the superuser's password, which replication
uses too, and the REST API's. strata-patroni reads each STRATA_PG_*_FILE into Patroni's
PATRONI_*_PASSWORD (k8s/postgres/strata_patroni.py, SECRET_FILES).
*/}}
{{- define "strata.postgresql.secretFiles" -}}
- env: STRATA_PG_SUPERUSER_PASSWORD_FILE
  secret: {{ .secretName }}
  key: {{ .passwordKey }}
  path: superuser-password
- env: STRATA_PG_REPLICATION_PASSWORD_FILE
  secret: {{ .secretName }}
  key: {{ .passwordKey }}
  path: replication-password
- env: STRATA_PG_RESTAPI_PASSWORD_FILE
  secret: {{ include "strata.componentName" . }}-patroni
  key: restapi-password
  path: restapi-password
{{- if .root.Values.metrics.postgresExporter.enabled }}
- env: STRATA_PG_MONITOR_PASSWORD_FILE
  secret: {{ include "strata.componentName" . }}-patroni
  key: monitor-password
  path: monitor-password
{{- end }}
{{- end -}}

{{- define "strata.postgresql.statefulset" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := include "strata.componentName" . -}}
{{- $backup := include "strata.backup.enabled" . -}}
{{- $restoring := include "strata.backup.restoring" . -}}
{{- $pvcRepo := include "strata.backup.pvc" $root -}}
{{- $files := include "strata.postgresql.secretFiles" . | fromYamlArray -}}
{{- if or $backup $restoring -}}
{{- /* archive-push, archive-get and restores reach an object store directly. */ -}}
{{- $files = concat $files (include "strata.backup.secretFiles" (dict "root" $root "local" false) | fromYamlArray) -}}
{{- end -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" $root) }}{{ . | nindent 2 }}{{ end }}
spec:
  replicas: {{ $v.replicas }}
  # serviceName, podManagementPolicy, selector and volumeClaimTemplates are immutable: they
  # stay as the previous (single-server) chart version made them, so `helm upgrade` adopts
  # its StatefulSet and volume.
  serviceName: {{ $name }}-hl
  podManagementPolicy: OrderedReady
  # Highest ordinal first; the leader's preStop hands over to an already updated replica.
  updateStrategy:
    type: RollingUpdate
  {{- if include "strata.supportsPVCRetentionPolicy" $root }}
  persistentVolumeClaimRetentionPolicy:
    {{- toYaml $v.persistentVolumeClaimRetentionPolicy | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "strata.componentSelectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "strata.postgresql.patroniLabels" . | nindent 8 }}
        {{- if and $backup $pvcRepo }}
        {{- include "strata.backup.clientLabel" (include "strata.backup.repoHostName" $root) | nindent 8 }}
        {{- end }}
        {{- if and $restoring $pvcRepo }}
        {{- include "strata.backup.clientLabel" (include "strata.backup.restoreRepoHost" .) | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "strata.postgresql.configmap" . | sha256sum }}
        {{- if or $backup $restoring }}
        checksum/pgbackrest: {{ list (include "strata.backup.memberConfig" .) (include "strata.backup.restoreConfig" .) $root.Values.backup.encryption.enabled | toJson | sha256sum }}
        {{- end }}
        checksum/secret: {{ include "strata.secretInputsChecksum" $root }}
        {{- if $root.Values.metrics.scrapeAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: "8008"
        prometheus.io/path: /metrics
        {{- end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with (include "strata.imagePullSecrets" $root) }}{{ . | nindent 6 }}{{ end }}
      serviceAccountName: {{ $name }}
      # Patroni talks to the Kubernetes API (its consensus store) with this token.
      automountServiceAccountToken: true
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      containers:
        - name: postgresql
          image: {{ include "strata.image" (dict "root" $root "image" $v.image "defaultTag" "15-patroni4.1.5") }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: ["start"]
          env:
            - name: PATRONI_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: PATRONI_SCOPE
              value: {{ $name | quote }}
            - name: PATRONI_KUBERNETES_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: PATRONI_KUBERNETES_POD_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
            - name: PATRONI_KUBERNETES_LABELS
              value: {{ include "strata.componentSelectorLabels" . | fromYaml | toJson | quote }}
            - name: PATRONI_POSTGRESQL_CONNECT_ADDRESS
              value: $(PATRONI_KUBERNETES_POD_IP):5432
            - name: PATRONI_RESTAPI_CONNECT_ADDRESS
              value: $(PATRONI_KUBERNETES_POD_IP):8008
            - name: PATRONI_SUPERUSER_USERNAME
              value: {{ .superuser | quote }}
            # Replication connects as the superuser: the role exists in a data directory made
            # by the previous chart version, so adopting it needs no extra step.
            - name: PATRONI_REPLICATION_USERNAME
              value: {{ .superuser | quote }}
            - name: PATRONI_RESTAPI_USERNAME
              value: patroni
            # Passwords are read-only files; strata-patroni hands them to Patroni (and to
            # patronictl run through it) as PATRONI_*_PASSWORD of its own process only.
            {{- include "strata.secretFiles.env" $files | nindent 12 }}
            - name: PGDATA
              value: /var/lib/postgresql/data/pgdata
            - name: STRATA_PG_DATABASE
              value: {{ .database | quote }}
            {{- if $root.Values.metrics.postgresExporter.enabled }}
            # The exporter's login role, kept by strata-patroni (post-bootstrap, callback).
            - name: STRATA_PG_MONITOR_USERNAME
              value: {{ $root.Values.metrics.postgresExporter.username | quote }}
            # Patroni strips PATRONI_* from its callbacks' environment: the name again.
            - name: STRATA_PG_SUPERUSER_USERNAME
              value: {{ .superuser | quote }}
            {{- end }}
            {{- if $restoring }}
            # The bootstrap restore (strata-pgbackrest restore): source stanza and target.
            - name: STRATA_RESTORE_CONFIG
              value: /etc/pgbackrest-restore/pgbackrest.conf
            - name: STRATA_RESTORE_STANZA
              value: {{ include "strata.backup.restoreStanza" . | quote }}
            - name: STRATA_RESTORE_TARGET_TIME
              value: {{ $v.restore.targetTime | quote }}
            - name: STRATA_RESTORE_SET
              value: {{ $v.restore.backupSet | quote }}
            {{- end }}
          ports:
            - name: postgresql
              containerPort: 5432
              protocol: TCP
            - name: patroni
              containerPort: 8008
              protocol: TCP
          # Patroni's REST API: /liveness = its loop runs. Cloning a large replica can take
          # long: the startup probe allows it.
          startupProbe:
            httpGet:
              path: /liveness
              port: patroni
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: {{ $v.startupProbe.failureThreshold }}
          livenessProbe:
            httpGet:
              path: /liveness
              port: patroni
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          # Patroni's /readiness, except while the cluster has no leader at all: then every
          # member whose PostgreSQL runs is Ready, so the StatefulSet starts them all and
          # Patroni can elect one (strata-patroni ready; bash alone in the usual case).
          readinessProbe:
            exec:
              command: ["/usr/local/bin/strata-patroni-ready"]
            periodSeconds: 3
            timeoutSeconds: 5
            failureThreshold: 2
          lifecycle:
            # Pushes the chart's cluster-wide settings to Patroni after an upgrade (no-op when equal).
            postStart:
              exec:
                command: ["/usr/local/bin/strata-patroni", "apply-config"]
            # The leader hands over to a healthy replica before SIGTERM (planned switchover);
            # Patroni then stops PostgreSQL with a fast shutdown.
            preStop:
              exec:
                command: ["/usr/local/bin/strata-patroni", "prestop"]
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/postgresql/data
            - name: run
              mountPath: /var/run/postgresql
            - name: tmp
              mountPath: /tmp
            - name: patroni
              mountPath: /etc/patroni
              readOnly: true
            {{- include "strata.secretFiles.mount" "secrets" | nindent 12 }}
            {{- if $v.tls.server.enabled }}
            {{- include "strata.tls.serverMount" nil | nindent 12 }}
            {{- end }}
            {{- include "strata.postgresql.pgbackrestMounts" . | nindent 12 }}
        {{- if $backup }}
        {{- include "strata.postgresql.pgbackrestSidecar" . | nindent 8 }}
        {{- end }}
        {{- if $root.Values.metrics.postgresExporter.enabled }}
        {{- include "strata.postgresql.exporterSidecar" . | nindent 8 }}
        {{- end }}
      volumes:
        - name: run
          emptyDir: {}
        - name: tmp
          emptyDir: {}
        - name: patroni
          configMap:
            name: {{ $name }}-patroni
        {{- include "strata.secretFiles.volume" (dict "name" "secrets" "files" $files) | nindent 8 }}
        {{- if $v.tls.server.enabled }}
        {{- include "strata.tls.serverVolume" $v | nindent 8 }}
        {{- end }}
        {{- if $root.Values.metrics.postgresExporter.enabled }}
        {{- include "strata.secretFiles.volume" (dict "name" "exporter-secrets" "files" (include "strata.postgresql.exporterSecretFiles" . | fromYamlArray)) | nindent 8 }}
        {{- end }}
        {{- if $backup }}
        - name: pgbackrest
          configMap:
            name: {{ $name }}-pgbackrest
            items:
              - key: pgbackrest.conf
                path: pgbackrest.conf
        {{- include "strata.backup.tlsVolume" (dict "name" "pgbackrest-tls" "secret" (include "strata.backup.tlsSecretName" $root) "pair" .component) | nindent 8 }}
        {{- include "strata.secretFiles.volume" (dict "name" "pgbackrest-secrets" "files" (include "strata.postgresql.pgbackrestSecretFiles" . | fromYamlArray)) | nindent 8 }}
        {{- end }}
        {{- if $restoring }}
        - name: pgbackrest-restore
          configMap:
            name: {{ $name }}-pgbackrest
            items:
              - key: restore.conf
                path: pgbackrest.conf
        {{- if $pvcRepo }}
        {{- include "strata.backup.tlsVolume" (dict "name" "pgbackrest-restore-tls" "secret" (include "strata.backup.restoreTlsSecret" .) "pair" .component) | nindent 8 }}
        {{- end }}
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $v.affinity }}
      affinity:
        {{- toYaml $v.affinity | nindent 8 }}
      {{- else if ne $v.podAntiAffinity "none" }}
      # Members on different nodes, so one node's loss takes at most one member.
      affinity:
        podAntiAffinity:
          {{- if eq $v.podAntiAffinity "required" }}
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels:
                  {{- include "strata.componentSelectorLabels" . | nindent 18 }}
          {{- else }}
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "strata.componentSelectorLabels" . | nindent 20 }}
          {{- end }}
      {{- end }}
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- include "strata.componentSelectorLabels" . | nindent 10 }}
      spec:
        accessModes:
          {{- toYaml $v.persistence.accessModes | nindent 10 }}
        {{- with (include "strata.storageClass" (dict "root" $root "persistence" $v.persistence)) }}{{ . | nindent 8 }}{{ end }}
        resources:
          requests:
            storage: {{ $v.persistence.size }}
{{- end -}}


{{/* pgBackRest's files in a member's containers: its configuration, TLS, restore source. */}}
{{- define "strata.postgresql.pgbackrestMounts" -}}
{{- if include "strata.backup.enabled" . }}
- name: pgbackrest
  mountPath: /etc/pgbackrest
  readOnly: true
- name: pgbackrest-tls
  mountPath: /etc/pgbackrest-tls
  readOnly: true
{{- end }}
{{- if include "strata.backup.restoring" . }}
- name: pgbackrest-restore
  mountPath: /etc/pgbackrest-restore
  readOnly: true
{{- if include "strata.backup.pvc" .root }}
- name: pgbackrest-restore-tls
  mountPath: /etc/pgbackrest-restore-tls
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* The pgbackrest sidecar of a member: `pgbackrest server` for the backup Jobs, backup and
archiving metrics, and the stanza's creation by the primary (strata-pgbackrest sidecar). */}}
{{- define "strata.postgresql.pgbackrestSidecar" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $b := $root.Values.backup -}}
- name: pgbackrest
  image: {{ include "strata.image" (dict "root" $root "image" $v.image "defaultTag" "15-patroni4.1.5") }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  # Through the image's entrypoint (strata-patroni), which reads the secret files first:
  # PGPASSWORD for psql and for what `pgbackrest server` runs, and the repository's secrets.
  args: ["strata-pgbackrest", "sidecar"]
  env:
    - name: STRATA_PGBACKREST_STANZA
      value: {{ include "strata.backup.stanza" . | quote }}
    - name: STRATA_PGBACKREST_METRICS_PORT
      value: {{ $b.metrics.port | quote }}
    - name: STRATA_PGBACKREST_REFRESH
      value: {{ $b.metrics.refreshSeconds | quote }}
    - name: PGDATA
      value: /var/lib/postgresql/data/pgdata
    # pgBackRest (backups through pgbackrest server, stanza-create) and the sidecar's psql
    # reach PostgreSQL over the local socket as the superuser (password: PGPASSWORD, which
    # the entrypoint reads from STRATA_PGPASSWORD_FILE).
    - name: PGHOST
      value: /var/run/postgresql
    - name: PGUSER
      value: {{ .superuser | quote }}
    - name: PGCONNECT_TIMEOUT
      value: "5"
    {{- include "strata.secretFiles.env" (include "strata.postgresql.pgbackrestSecretFiles" . | fromYamlArray) | nindent 4 }}
  ports:
    - name: pgbackrest
      containerPort: 8432
      protocol: TCP
    - name: backup-metrics
      containerPort: {{ $b.metrics.port }}
      protocol: TCP
  # `pgbackrest server` listens (it is up within a second; if it dies, so does the container).
  startupProbe:
    tcpSocket:
      port: pgbackrest
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    tcpSocket:
      port: pgbackrest
    periodSeconds: 20
    timeoutSeconds: 5
    failureThreshold: 3
  readinessProbe:
    tcpSocket:
      port: pgbackrest
    periodSeconds: 10
    timeoutSeconds: 5
  resources:
    {{- toYaml $b.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: data
      mountPath: /var/lib/postgresql/data
    - name: run
      mountPath: /var/run/postgresql
    - name: tmp
      mountPath: /tmp
    {{- include "strata.postgresql.pgbackrestMounts" . | nindent 4 }}
    {{- include "strata.secretFiles.mount" "pgbackrest-secrets" | nindent 4 }}
{{- end -}}

{{/* The pgbackrest sidecar's secret files: the superuser's password (libpq's PGPASSWORD) and
the repository's secrets (object stores). */}}
{{- define "strata.postgresql.pgbackrestSecretFiles" -}}
- env: STRATA_PGPASSWORD_FILE
  secret: {{ .secretName }}
  key: {{ .passwordKey }}
  path: superuser-password
{{ include "strata.backup.secretFiles" (dict "root" .root "local" false) }}
{{- end -}}


{{/* The exporter's only secret: its login role's password (postgres_exporter reads
DATA_SOURCE_PASS_FILE itself). */}}
{{- define "strata.postgresql.exporterSecretFiles" -}}
- env: DATA_SOURCE_PASS_FILE
  secret: {{ include "strata.componentName" . }}-patroni
  key: monitor-password
  path: monitor-password
{{- end -}}

{{/*
The prometheus-postgres-exporter sidecar of a member (metrics.postgresExporter): it scrapes its
own member over 127.0.0.1 (pg_hba: scram-sha-256) as the pg_monitor login role, so a replica's
exporter reports the replica. Until the leader has created the role, pg_up is 0.
*/}}
{{- define "strata.postgresql.exporterSidecar" -}}
{{- $root := .root -}}
{{- $e := $root.Values.metrics.postgresExporter -}}
- name: postgres-exporter
  image: {{ include "strata.metrics.exporterImage" (dict "root" $root "image" $e.image "tierImage" .values.image "defaultTag" "15-patroni4.1.5") }}
  imagePullPolicy: {{ $e.image.pullPolicy | default .values.image.pullPolicy }}
  command:
    {{- toYaml $e.command | nindent 4 }}
  args:
    - --web.listen-address=:{{ $e.port }}
    {{- range $e.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    - name: DATA_SOURCE_URI
      value: "127.0.0.1:5432/postgres?sslmode=disable"
    - name: DATA_SOURCE_USER
      value: {{ $e.username | quote }}
    {{- include "strata.secretFiles.env" (include "strata.postgresql.exporterSecretFiles" . | fromYamlArray) | nindent 4 }}
  ports:
    - name: pg-exporter
      containerPort: {{ $e.port }}
      protocol: TCP
  {{- include "strata.metrics.exporterProbe" "pg-exporter" | nindent 2 }}
  resources:
    {{- toYaml $e.resources | nindent 4 }}
  securityContext:
    {{- toYaml $e.containerSecurityContext | nindent 4 }}
  volumeMounts:
    {{- include "strata.secretFiles.mount" "exporter-secrets" | nindent 4 }}
{{- end -}}
