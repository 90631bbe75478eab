{{/*
validateValues: collect every problem, then fail once with a readable list.
*/}}
{{- define "strata.validateValues" -}}
{{- $errors := list -}}
{{- $v := .Values -}}
{{- if and $v.auth.jwt.secret (lt (len $v.auth.jwt.secret) 32) -}}
{{- $errors = append $errors "auth.jwt.secret must be at least 32 characters (or empty to generate one)" -}}
{{- end -}}
{{- if not $v.postgresqlCritical.enabled -}}
{{- if not $v.postgresqlCritical.external.host -}}
{{- $errors = append $errors "postgresqlCritical.enabled=false needs postgresqlCritical.external.host" -}}
{{- end -}}
{{- if and (not $v.postgresqlCritical.auth.existingSecret) (not $v.postgresqlCritical.auth.ownerPassword) -}}
{{- $errors = append $errors "an external critical PostgreSQL needs postgresqlCritical.auth.ownerPassword or postgresqlCritical.auth.existingSecret (the owner password cannot be generated)" -}}
{{- end -}}
{{- end -}}
{{- if not $v.postgresqlMl.enabled -}}
{{- if not $v.postgresqlMl.external.host -}}
{{- $errors = append $errors "postgresqlMl.enabled=false needs postgresqlMl.external.host" -}}
{{- end -}}
{{- if and (not $v.postgresqlMl.auth.existingSecret) (not $v.postgresqlMl.auth.password) -}}
{{- $errors = append $errors "an external ml PostgreSQL needs postgresqlMl.auth.password or postgresqlMl.auth.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if and (not $v.redis.enabled) (not $v.redis.external.url) -}}
{{- $errors = append $errors "redis.enabled=false needs redis.external.url" -}}
{{- end -}}
{{- if and (not $v.redis.enabled) $v.redis.auth.enabled (not $v.redis.auth.existingSecret) (not $v.redis.auth.password) -}}
{{- $errors = append $errors "an external Redis with auth.enabled needs redis.auth.password or redis.auth.existingSecret" -}}
{{- end -}}
{{- if and $v.ingress.enabled $v.ingress.tls.enabled (not $v.ingress.host) -}}
{{- $errors = append $errors "ingress.tls.enabled needs ingress.host" -}}
{{- end -}}
{{- range $svc := list "critical" "ml" "cache" -}}
{{- $s := index $v $svc -}}
{{- $floor := add $s.preStopSleepSeconds $s.drainSeconds 10 -}}
{{- if lt (int $s.terminationGracePeriodSeconds) (int $floor) -}}
{{- $errors = append $errors (printf "%s.terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds + drainSeconds + 10 s of graceful shutdown (%d)" $svc (int $s.terminationGracePeriodSeconds) (int $floor)) -}}
{{- end -}}
{{- if and $s.autoscaling.enabled (gt (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors (printf "%s.autoscaling.minReplicas must not exceed maxReplicas" $svc) -}}
{{- end -}}
{{- end -}}
{{- $budgets := list
  (dict "svc" "critical" "pg" "postgresqlCritical" "values" $v.critical "server" $v.postgresqlCritical)
  (dict "svc" "ml" "pg" "postgresqlMl" "values" $v.ml "server" $v.postgresqlMl) -}}
{{- range $budgets -}}
{{- $used := int (include "strata.connectionBudget" .values) -}}
{{- $limit := int (sub .server.maxConnections .server.reservedConnections) -}}
{{- if gt $used $limit -}}
{{- $errors = append $errors (printf "connection budget of %s is %d ((replicas or autoscaling.maxReplicas) + rollingUpdate.maxSurge) x workers x (poolSize + maxOverflow), over %s.maxConnections - reservedConnections = %d" .svc $used .pg $limit) -}}
{{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
