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
