{{/*
Names, labels and the values every template shares. The per-target resources are in
_target.tpl; targets.yaml renders them once per enabled target.
*/}}

{{- define "desk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's prefix: the release name when it already says desk (desk-emea), else <release>-desk. */}}
{{- define "desk.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A target's resource name: <fullname>-<target>. Context: (dict "root" $ "name" $name). */}}
{{- define "desk.targetName" -}}
{{- printf "%s-%s" (include "desk.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "desk.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What selects every pod of this release (services and the migration Job). */}}
{{- define "desk.releaseSelector" -}}
app.kubernetes.io/name: {{ include "desk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. Context: the root, plus "component" in (dict "root" $ "component" ...). */}}
{{- define "desk.labels" -}}
{{ include "desk.releaseSelector" .root }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: desk
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "desk.chart" .root }}
{{- end }}

{{/* What selects one target's pods. Context: (dict "root" $ "component" $name). */}}
{{- define "desk.selectorLabels" -}}
{{ include "desk.releaseSelector" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "desk.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The enabled targets, each with targetDefaults merged under its own keys, as JSON (a map by
name; `include ... | fromJson`). Lists (topologySpread, env, ...) are replaced, not appended.
*/}}
{{- define "desk.enabledTargets" -}}
{{- $targets := dict }}
{{- range $name, $target := .Values.targets }}
{{- if $target.enabled }}
{{- $_ := set $targets $name (mergeOverwrite (deepCopy $.Values.targetDefaults) (deepCopy $target)) }}
{{- end }}
{{- end }}
{{- toJson $targets }}
{{- end }}

{{/* The names of the enabled targets that own tables, comma-separated, sorted. */}}
{{- define "desk.databaseTargets" -}}
{{- $names := list }}
{{- range $name, $target := .Values.targets }}
{{- if and $target.enabled $target.database }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- join "," (sortAlpha $names) }}
{{- end }}

{{/*
A setting value as the desk's environment reads it: whole numbers without an exponent (Helm
reads numbers as floats), lists comma-separated (gateway.cors_origins), the rest as text.
*/}}
{{- define "desk.settingValue" -}}
{{- if kindIs "float64" . }}
{{- if eq (float64 (int64 .)) . }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}{{ $items = append $items (include "desk.settingValue" .) }}{{ end }}
{{- join "," $items }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/*
Settings as DESK_* environment, `__` between levels: (list "DESK" $settings) gives
DESK_NATS__STREAM_MAX_AGE_HOURS for settings.nats.stream_max_age_hours.
*/}}
{{- define "desk.settingsEnv" -}}
{{- $prefix := index . 0 }}
{{- range $key, $value := index . 1 }}
{{- $name := printf "%s%s" $prefix (upper $key) }}
{{- if kindIs "map" $value }}
{{- include "desk.settingsEnv" (list (printf "%s__" $name) $value) }}
{{- else }}
- name: {{ $name }}
  value: {{ include "desk.settingValue" $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Plain and Secret-referenced extra environment. Context: (list $env $secretEnv). */}}
{{- define "desk.extraEnv" -}}
{{- range index . 0 }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- range index . 1 }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/* The database URL of one target as environment. Context: (dict "root" $ "name" $name "target" $target). */}}
{{- define "desk.databaseEnv" -}}
{{- $secret := .target.databaseSecret | default dict }}
{{- if $secret.name }}
- name: DESK_DATABASE__SERVICES__{{ upper .name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret.name }}
      key: {{ $secret.key | default "url" }}
{{- else if .root.Values.database.secret.name }}
- name: DESK_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.database.secret.name }}
      key: {{ .root.Values.database.secret.key }}
{{- else }}
{{- fail (printf "target %s owns tables: set targets.%s.databaseSecret.name or database.secret.name" .name .name) }}
{{- end }}
{{- end }}

{{/* The hardened security contexts every desk pod and container runs with. */}}
{{- define "desk.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "desk.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
