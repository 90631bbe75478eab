{{/*
A PostgreSQL StatefulSet from the official image (POSTGRES_USER/PASSWORD/DB, PGDATA under the
volume, uid 999). Call with (dict "root" $ "component" "postgresql-critical"
"values" .Values.postgresqlCritical "user" <role> "passwordKey" <key> "secretName" <name>).
*/}}
{{- define "strata.postgresql.statefulset" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := include "strata.componentName" . -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" $root) }}{{ . | nindent 2 }}{{ end }}
spec:
  replicas: 1
  serviceName: {{ $name }}-hl
  podManagementPolicy: OrderedReady
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
        {{- include "strata.componentSelectorLabels" . | nindent 8 }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- with (include "strata.imagePullSecrets" $root) }}{{ . | nindent 6 }}{{ end }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      containers:
        - name: postgresql
          image: {{ include "strata.image" (dict "root" $root "image" $v.image "defaultTag" "16-bookworm") }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          # The official entrypoint runs `postgres ARGS` (initialising PGDATA first when empty).
          args:
            - postgres
            - -c
            - max_connections={{ $v.maxConnections }}
            {{- range $v.extraArgs }}
            - -c
            - {{ . | quote }}
            {{- end }}
          env:
            - name: POSTGRES_USER
              value: {{ .user | quote }}
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ .secretName }}
                  key: {{ .passwordKey }}
            - name: POSTGRES_DB
              value: {{ $v.auth.database | quote }}
            - name: PGDATA
              value: /var/lib/postgresql/data/pgdata
          ports:
            - name: postgresql
              containerPort: 5432
              protocol: TCP
          # pg_isready over TCP: the entrypoint's initdb phase listens on the socket only, so
          # the pod turns ready once the real server accepts TCP connections.
          startupProbe:
            exec:
              command: ["pg_isready", "-h", "127.0.0.1", "-p", "5432"]
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: 150
          livenessProbe:
            exec:
              command: ["pg_isready", "-h", "127.0.0.1", "-p", "5432"]
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          readinessProbe:
            exec:
              command: ["pg_isready", "-h", "127.0.0.1", "-p", "5432"]
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: 3
          # SIGTERM is PostgreSQL's "smart" shutdown, which waits for the services' pooled
          # connections to close; stop with a "fast" shutdown (clean, no crash recovery) instead.
          lifecycle:
            preStop:
              exec:
                command: ["pg_ctl", "stop", "-m", "fast", "-w", "-t", "{{ sub $v.terminationGracePeriodSeconds 10 }}"]
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
      volumes:
        - name: run
          emptyDir: {}
        - name: tmp
          emptyDir: {}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
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

{{/* A ClusterIP Service for clients and a headless one for the StatefulSet's pod DNS names. */}}
{{- define "strata.store.services" -}}
{{- $name := include "strata.componentName" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  type: ClusterIP
  selector:
    {{- include "strata.componentSelectorLabels" . | nindent 4 }}
  ports:
    - name: {{ .portName }}
      port: {{ .port }}
      targetPort: {{ .portName }}
      protocol: TCP
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-hl
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with (include "strata.annotations" .root) }}{{ . | nindent 2 }}{{ end }}
spec:
  type: ClusterIP
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    {{- include "strata.componentSelectorLabels" . | nindent 4 }}
  ports:
    - name: {{ .portName }}
      port: {{ .port }}
      targetPort: {{ .portName }}
      protocol: TCP
{{- end -}}
