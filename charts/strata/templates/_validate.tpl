{{/*
validateValues: collect every problem, then fail once with a readable list.
*/}}
{{- define "strata.validateValues" -}}
{{- $errors := list -}}
{{- $v := .Values -}}
{{- $errors = concat $errors (include "strata.validateAuth" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "strata.validateTls" . | fromJsonArray) -}}
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
{{- $errors = append $errors "an external ml PostgreSQL needs postgresqlMl.auth.password or postgresqlMl.auth.existingSecret (the owner password cannot be generated)" -}}
{{- end -}}
{{- end -}}
{{- if eq $v.postgresqlMl.auth.username $v.postgresqlMl.auth.appUsername -}}
{{- $errors = append $errors "postgresqlMl.auth.appUsername must differ from postgresqlMl.auth.username (the runtime role may not own the tables)" -}}
{{- end -}}
{{- if ge (int $v.ml.exportMaxConcurrent) (add $v.ml.database.poolSize $v.ml.database.maxOverflow | int) -}}
{{- $errors = append $errors "ml.exportMaxConcurrent must be below ml.database.poolSize + ml.database.maxOverflow (exports would take every connection)" -}}
{{- end -}}
{{- if and (not $v.redis.enabled) (not $v.redis.external.url) (not $v.redis.external.sentinels) -}}
{{- $errors = append $errors "redis.enabled=false needs redis.external.url (or redis.external.sentinels)" -}}
{{- end -}}
{{- if and (include "strata.redis.sentinelAuth" .) (not $v.redis.enabled) (not $v.redis.auth.existingSecret) (not $v.redis.auth.sentinelPassword) -}}
{{- $errors = append $errors "external Sentinels with auth.sentinelEnabled need redis.auth.sentinelPassword or redis.auth.existingSecret (or auth.sentinelEnabled=false)" -}}
{{- end -}}
{{- if and (include "strata.redis.sentinelMode" .) (gt (int $v.redis.sentinel.quorum) (int $v.redis.sentinel.replicas)) -}}
{{- $errors = append $errors (printf "redis.sentinel.quorum (%d) cannot exceed redis.sentinel.replicas (%d): no failover could ever be agreed" (int $v.redis.sentinel.quorum) (int $v.redis.sentinel.replicas)) -}}
{{- end -}}
{{- if and (include "strata.redis.sentinelMode" .) (ge (int $v.redis.sentinel.minReplicasToWrite) (int $v.redis.sentinel.replicas)) -}}
{{- $errors = append $errors (printf "redis.sentinel.minReplicasToWrite (%d) must be below redis.sentinel.replicas (%d), which counts the master" (int $v.redis.sentinel.minReplicasToWrite) (int $v.redis.sentinel.replicas)) -}}
{{- end -}}
{{- $ho := $v.redis.sentinel.handover -}}
{{- if and (include "strata.redis.sentinelMode" .) $ho.enabled (lt (int $v.redis.terminationGracePeriodSeconds) (int (add $ho.timeoutSeconds 10))) -}}
{{- $errors = append $errors (printf "redis.terminationGracePeriodSeconds (%d) must be at least redis.sentinel.handover.timeoutSeconds + 10 s to shut down (%d)" (int $v.redis.terminationGracePeriodSeconds) (int (add $ho.timeoutSeconds 10))) -}}
{{- end -}}
{{- if and (not $v.redis.enabled) $v.redis.auth.enabled (not $v.redis.auth.existingSecret) (not $v.redis.auth.password) -}}
{{- $errors = append $errors "an external Redis with auth.enabled needs redis.auth.password or redis.auth.existingSecret" -}}
{{- end -}}
{{- if and $v.ml.readReplicas (or (not $v.postgresqlMl.enabled) (lt (int $v.postgresqlMl.replicas) 2)) -}}
{{- $errors = append $errors "ml.readReplicas needs the bundled PostgreSQL with postgresqlMl.replicas >= 2 (replicas to read from)" -}}
{{- end -}}
{{- if and $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled -}}
{{- $errors = append $errors "metrics.serviceMonitor.enabled and metrics.podMonitor.enabled select the same targets: every series would be scraped twice (and the alerts' sums doubled); enable one of them" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.host) -}}
{{- $errors = append $errors "ingress.enabled needs ingress.host, the DNS name clients use (e.g. --set ingress.host=api.example.com): an Ingress without a host answers for any Host header" -}}
{{- end -}}
{{- $gw := $v.gateway -}}
{{- if and $gw.enabled (not $gw.parentRefs) -}}
{{- $errors = append $errors "gateway.enabled needs gateway.parentRefs, the Gateway(s) the HTTPRoutes attach to (e.g. --set gateway.parentRefs[0].name=public,gateway.parentRefs[0].namespace=gateway-system): the chart does not create a Gateway" -}}
{{- end -}}
{{- if and $gw.tlsReferenceGrant.enabled (not $gw.enabled) -}}
{{- $errors = append $errors "gateway.tlsReferenceGrant.enabled needs gateway.enabled (it grants the HTTPRoutes' Gateways the certificate Secret)" -}}
{{- end -}}
{{- if and $gw.enabled $gw.tlsReferenceGrant.enabled $gw.parentRefs -}}
{{- $elsewhere := list -}}
{{- range $gw.parentRefs -}}
{{- if and .namespace (ne .namespace $.Release.Namespace) -}}
{{- $elsewhere = append $elsewhere .namespace -}}
{{- end -}}
{{- end -}}
{{- if not $elsewhere -}}
{{- $errors = append $errors (printf "gateway.tlsReferenceGrant.enabled: no gateway.parentRefs entry names a namespace other than %s; a Gateway in the Secret's own namespace needs no ReferenceGrant (turn it off)" $.Release.Namespace) -}}
{{- end -}}
{{- end -}}
{{- range $svc := list "critical" "ml" "cache" -}}
{{- $s := index $v $svc -}}
{{- /* The shutdown rule (values.yaml, docs/configuration.md): preStop sleep, then drain, then
     gracefulShutdownSeconds for requests in flight, then 5 s for the process to exit. */ -}}
{{- $floor := add $s.preStopSleepSeconds $s.drainSeconds $s.gracefulShutdownSeconds 5 -}}
{{- if lt (int $s.terminationGracePeriodSeconds) (int $floor) -}}
{{- $errors = append $errors (printf "%s.terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds + drainSeconds + gracefulShutdownSeconds + 5 s to exit (%d)" $svc (int $s.terminationGracePeriodSeconds) (int $floor)) -}}
{{- end -}}
{{- if and $s.autoscaling.enabled (gt (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors (printf "%s.autoscaling.minReplicas must not exceed maxReplicas" $svc) -}}
{{- end -}}
{{- end -}}
{{- /* Each ml worker also holds up to exportSnapshotsMax connections to the primary, outside
     its pool, while export snapshots are held (STRATA_ML_EXPORT_SNAPSHOTS_MAX). */ -}}
{{- $budgets := list
  (dict "svc" "critical" "pg" "postgresqlCritical" "values" $v.critical "server" $v.postgresqlCritical "held" 0 "heldText" "")
  (dict "svc" "ml" "pg" "postgresqlMl" "values" $v.ml "server" $v.postgresqlMl "held" $v.ml.exportSnapshotsMax "heldText" " + exportSnapshotsMax") -}}
{{- range $budgets -}}
{{- $used := int (include "strata.connectionBudget" (dict "values" .values "held" .held)) -}}
{{- $limit := int (sub .server.maxConnections .server.reservedConnections) -}}
{{- if gt $used $limit -}}
{{- $errors = append $errors (printf "connection budget of %s is %d ((replicas or autoscaling.maxReplicas) + rollingUpdate.maxSurge) x workers x (poolSize + maxOverflow%s), over %s.maxConnections - reservedConnections = %d" .svc $used .heldText .pg $limit) -}}
{{- end -}}
{{- end -}}
{{- $errors = concat $errors (include "strata.backup.errors" . | fromYamlArray) -}}
{{- if $errors -}}
{{- fail (printf "\n\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}


{{/*
auth.<service>: one key per service, and never a configuration that lets one service (or
anyone who reads a public key) sign for another. Renders a JSON list of errors.
*/}}
{{- define "strata.validateAuth" -}}
{{- $errors := list -}}
{{- $hsKeys := dict -}}
{{- range $svc := list "critical" "ml" "cache" -}}
{{- $a := index $.Values.auth $svc -}}
{{- $p := printf "auth.%s" $svc -}}
{{- $asym := include "strata.jwt.asymmetric" (dict "root" $ "component" $svc) -}}
{{- if and $asym (has "HS256" $a.algorithms) -}}
{{- $errors = append $errors (printf "%s.algorithms must not mix HS256 with RS256/ES256 (anyone holding the public key could sign HS256 tokens with it)" $p) -}}
{{- end -}}
{{- if not $asym -}}
{{- if or $a.publicKey $a.jwksUrl -}}
{{- $errors = append $errors (printf "%s.publicKey and %s.jwksUrl need %s.algorithms RS256 or ES256 (HS256 verifies with a secret)" $p $p $p) -}}
{{- end -}}
{{- if and $a.secret (lt (len $a.secret) 32) -}}
{{- $errors = append $errors (printf "%s.secret must be at least 32 characters (or empty to generate one)" $p) -}}
{{- end -}}
{{- $id := ternary (printf "secret:%s/%s" $a.existingSecret ($a.existingSecretKey | default "jwt-secret")) (printf "value:%s" ($a.secret | sha256sum)) (not (empty $a.existingSecret)) -}}
{{- if or $a.existingSecret $a.secret -}}
{{- if hasKey $hsKeys $id -}}
{{- $errors = append $errors (printf "%s and auth.%s use the same HS256 secret: each service needs its own, or one could sign tokens for the other" $p (get $hsKeys $id)) -}}
{{- end -}}
{{- $_ := set $hsKeys $id $svc -}}
{{- end -}}
{{- else -}}
{{- if $a.secret -}}
{{- $errors = append $errors (printf "%s.secret must be empty with RS256/ES256: the service verifies with a public key and must hold nothing that can sign" $p) -}}
{{- end -}}
{{- if and $a.jwksUrl (or $a.publicKey $a.existingSecret) -}}
{{- $errors = append $errors (printf "%s: set jwksUrl, or publicKey/existingSecret, not both" $p) -}}
{{- end -}}
{{- if not (or $a.jwksUrl $a.publicKey $a.existingSecret) -}}
{{- $errors = append $errors (printf "%s.algorithms %s needs %s.jwksUrl (the identity provider's JWKS), %s.publicKey or %s.existingSecret (a PEM public key)" $p (join "," $a.algorithms) $p $p $p) -}}
{{- end -}}
{{- if contains "PRIVATE KEY" $a.publicKey -}}
{{- $errors = append $errors (printf "%s.publicKey holds a PRIVATE key: give the chart only the public key (openssl pkey -pubout)" $p) -}}
{{- end -}}
{{- if and $a.jwksUrl (not (hasPrefix "https://" $a.jwksUrl)) (ne $.Values.environment "development") -}}
{{- $errors = append $errors (printf "%s.jwksUrl must be https:// (http:// only with environment=development): whoever can alter the key set can sign any token" $p) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
