{{/*
The one set of resources every target gets; targets.yaml renders it once per enabled target.
Context of each: (dict "root" $ "name" <target name> "target" <merged target> "targets" <all enabled>).
*/}}

{{- define "desk.target.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "desk.targetName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 4 }}
  {{- with .target.serviceAccountAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The services never call the Kubernetes API.
automountServiceAccountToken: false
{{- end }}

{{- define "desk.target.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "desk.targetName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "desk.selectorLabels" (dict "root" .root "component" .name) | nindent 4 }}
  ports:
    - name: grpc
      port: {{ .root.Values.grpcPort }}
      targetPort: grpc
      protocol: TCP
      # HTTP/2 without TLS: what a Gateway API implementation speaks to the backend.
      appProtocol: kubernetes.io/h2c
    {{- if .root.Values.metrics.serviceMonitor.enabled }}
    - name: metrics
      port: {{ .root.Values.metrics.serviceMonitor.port }}
      targetPort: metrics
      protocol: TCP
    {{- end }}
{{- end }}

{{- define "desk.target.env" -}}
{{- $root := .root }}
{{- $values := .root.Values }}
- name: DESK_REGION
  value: {{ $values.region.name | quote }}
- name: TZ
  value: {{ $values.region.timeZone | quote }}
- name: DESK_GRPC__LISTEN
  value: {{ printf "0.0.0.0:%v" $values.grpcPort | quote }}
- name: DESK_NATS__URL
  value: {{ $values.nats.url | quote }}
{{- if $values.nats.credentialsSecret }}
- name: DESK_NATS__USER
  value: {{ printf "desk.%s" .name | quote }}
- name: DESK_NATS__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $values.nats.credentialsSecret }}
      key: {{ printf "DESK_NATS_%s_PASSWORD" (upper .name) }}
{{- end }}
{{- if .target.database }}
{{- include "desk.databaseEnv" . }}
{{- end }}
- name: DESK_AUTH__ISSUER
  value: {{ $values.auth.issuer | quote }}
- name: DESK_AUTH__AUDIENCE
  value: {{ $values.auth.audience | quote }}
- name: DESK_AUTH__JWKS_FILE
  value: /etc/desk/auth/jwks.json
- name: DESK_AUTH__SERVICE_JWKS_FILE
  value: /etc/desk/auth/service-jwks.json
{{- if $values.auth.serviceSigningKeys.secretName }}
{{- $signing := .target.serviceSigningKey | default dict }}
- name: DESK_AUTH__SERVICE_SIGNING_KEY_FILE
  value: /etc/desk/auth/service-signing-key.pem
- name: DESK_AUTH__SERVICE_SIGNING_KEY_ID
  value: {{ $signing.keyId | default (printf "%s-%s-1" $values.region.name .name) | quote }}
{{- end }}
{{- /* Every other service of the region, at its Service. */}}
{{- range $other, $_ := .targets }}
{{- if ne $other $.name }}
- name: DESK_SERVICES__{{ upper $other }}__URL
  value: {{ printf "http://%s:%v" (include "desk.targetName" (dict "root" $root "name" $other)) $values.grpcPort | quote }}
{{- end }}
{{- end }}
{{- if eq .name $values.expose.target }}
{{- range $region, $peer := $values.region.peers }}
- name: DESK_GATEWAY__PEERS__{{ upper $region }}__URL
  value: {{ $peer.url | quote }}
{{- end }}
{{- end }}
{{- include "desk.settingsEnv" (list "DESK_" (mergeOverwrite (deepCopy $values.settings) (deepCopy .target.settings))) }}
- name: DESK_LOG_FORMAT
  value: json
- name: RUST_LOG
  value: {{ $values.logs.level | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- $attributes := list (printf "desk.region=%s" $values.region.name) (printf "desk.target=%s" .name) "k8s.pod.name=$(POD_NAME)" (printf "k8s.namespace.name=%s" $root.Release.Namespace) }}
{{- range $key, $value := $values.telemetry.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $key $value) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- with $values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- include "desk.extraEnv" (list $values.env $values.secretEnv) }}
{{- include "desk.extraEnv" (list .target.env .target.secretEnv) }}
{{- end }}

{{- define "desk.target.deployment" -}}
{{- $values := .root.Values }}
{{- $target := .target }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "desk.targetName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  {{- if not $target.autoscaling.enabled }}
  replicas: {{ int $target.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "desk.selectorLabels" (dict "root" .root "component" .name) | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: {{ $target.strategy.maxSurge }}
      maxUnavailable: {{ $target.strategy.maxUnavailable }}
  template:
    metadata:
      labels:
        {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 8 }}
        {{- with $target.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $target.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "desk.targetName" . }}
      automountServiceAccountToken: false
      # Service links would put <SERVICE>_PORT variables beside the DESK_* settings.
      enableServiceLinks: false
      {{- with $target.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ int $target.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "desk.podSecurityContext" . | nindent 8 }}
      {{- with $values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $target.topologySpread }}
      topologySpreadConstraints:
        {{- range . }}
        - topologyKey: {{ .topologyKey }}
          maxSkew: {{ int .maxSkew }}
          whenUnsatisfiable: {{ .whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "desk.selectorLabels" (dict "root" $.root "component" $.name) | nindent 14 }}
          # Count only the pods of the same rollout step, so an update does not skew the spread.
          matchLabelKeys: [pod-template-hash]
        {{- end }}
      {{- end }}
      {{- with $target.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $target.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $target.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "desk.image" .root }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          args: [serve, --target, {{ .name }}]
          ports:
            - name: grpc
              containerPort: {{ $values.grpcPort }}
              protocol: TCP
            {{- if $values.metrics.serviceMonitor.enabled }}
            - name: metrics
              containerPort: {{ $values.metrics.serviceMonitor.port }}
              protocol: TCP
            {{- end }}
          env:
            {{- include "desk.target.env" . | trim | nindent 12 }}
          # The gRPC health protocol: the process ("") while it starts and lives, the target's
          # own service for readiness (NOT_SERVING from the first moment of a shutdown).
          startupProbe:
            grpc:
              port: {{ $values.grpcPort }}
            periodSeconds: {{ int $target.probes.startup.periodSeconds }}
            timeoutSeconds: {{ int $target.probes.startup.timeoutSeconds }}
            failureThreshold: {{ int $target.probes.startup.failureThreshold }}
          livenessProbe:
            grpc:
              port: {{ $values.grpcPort }}
            periodSeconds: {{ int $target.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ int $target.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ int $target.probes.liveness.failureThreshold }}
          readinessProbe:
            grpc:
              port: {{ $values.grpcPort }}
              service: {{ $target.grpcService | quote }}
            periodSeconds: {{ int $target.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ int $target.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ int $target.probes.readiness.failureThreshold }}
          {{- if gt (int $target.preStopSleepSeconds) 0 }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ int $target.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- toYaml $target.resources | nindent 12 }}
          securityContext:
            {{- include "desk.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: auth
              mountPath: /etc/desk/auth
              readOnly: true
      volumes:
        # The root file system is read-only; /tmp is the one writable place.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        # Token keys by reference: the IdP's and the services' public keys, this service's own
        # signing key.
        - name: auth
          projected:
            defaultMode: 0440
            sources:
              - secret:
                  name: {{ $values.auth.jwks.secretName }}
                  items:
                    - key: {{ $values.auth.jwks.key }}
                      path: jwks.json
              - secret:
                  name: {{ $values.auth.serviceJwks.secretName }}
                  items:
                    - key: {{ $values.auth.serviceJwks.key }}
                      path: service-jwks.json
              {{- with $values.auth.serviceSigningKeys.secretName }}
              {{- $signing := $target.serviceSigningKey | default dict }}
              - secret:
                  name: {{ . }}
                  items:
                    - key: {{ $signing.key | default (printf "%s.pem" $.name) }}
                      path: service-signing-key.pem
              {{- end }}
{{- end }}

{{- define "desk.target.hpa" -}}
{{- if .target.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "desk.targetName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "desk.targetName" . }}
  minReplicas: {{ int .target.autoscaling.minReplicas }}
  maxReplicas: {{ int .target.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ int .target.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end }}

{{- define "desk.target.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "desk.targetName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  {{- if hasKey .target.podDisruptionBudget "minAvailable" }}
  minAvailable: {{ .target.podDisruptionBudget.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .target.podDisruptionBudget.maxUnavailable }}
  {{- end }}
  # A pod that is not ready protects nothing: a drain may evict it.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "desk.selectorLabels" (dict "root" .root "component" .name) | nindent 6 }}
{{- end }}

{{/* An egress rule from a values block {to, ports}; TCP, and UDP too when udp is true. */}}
{{- define "desk.egressRule" -}}
- ports:
    {{- range .rule.ports }}
    - port: {{ int . }}
      protocol: TCP
    {{- if $.udp }}
    - port: {{ int . }}
      protocol: UDP
    {{- end }}
    {{- end }}
  {{- with .rule.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "desk.target.networkPolicy" -}}
{{- $values := .root.Values }}
{{- $policy := $values.networkPolicy }}
{{- if $policy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "desk.targetName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "desk.selectorLabels" (dict "root" .root "component" .name) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if and (eq .name $values.expose.target) (ne $values.expose.kind "none") }}
    # The gateway: the one target reachable from outside the release.
    - ports:
        - port: grpc
          protocol: TCP
      {{- with $policy.exposedFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    # The region's other services.
    - from:
        - podSelector:
            matchLabels:
              {{- include "desk.releaseSelector" .root | nindent 14 }}
      ports:
        - port: grpc
          protocol: TCP
    {{- if $values.metrics.serviceMonitor.enabled }}
    - from:
        {{- toYaml $values.metrics.serviceMonitor.from | nindent 8 }}
      ports:
        - port: metrics
          protocol: TCP
    {{- end }}
  egress:
    - to:
        - podSelector:
            matchLabels:
              {{- include "desk.releaseSelector" .root | nindent 14 }}
      ports:
        - port: {{ $values.grpcPort }}
          protocol: TCP
    {{- include "desk.egressRule" (dict "rule" $policy.dns "udp" true) | nindent 4 }}
    {{- include "desk.egressRule" (dict "rule" $policy.nats) | nindent 4 }}
    {{- if .target.database }}
    {{- include "desk.egressRule" (dict "rule" $policy.database) | nindent 4 }}
    {{- end }}
    {{- if $values.telemetry.otlpEndpoint }}
    {{- include "desk.egressRule" (dict "rule" $policy.otlp) | nindent 4 }}
    {{- end }}
    {{- if and (eq .name $values.expose.target) $values.region.peers }}
    {{- include "desk.egressRule" (dict "rule" $policy.peers) | nindent 4 }}
    {{- end }}
    {{- with $policy.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}

{{- define "desk.target.serviceMonitor" -}}
{{- $monitor := .root.Values.metrics.serviceMonitor }}
{{- if $monitor.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "desk.targetName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "desk.labels" (dict "root" .root "component" .name) | nindent 4 }}
    {{- with $monitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "desk.selectorLabels" (dict "root" .root "component" .name) | nindent 6 }}
  endpoints:
    - port: metrics
      path: {{ $monitor.path }}
      interval: {{ $monitor.interval }}
{{- end }}
{{- end }}
