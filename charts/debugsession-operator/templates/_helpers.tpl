{{/* Chart name, truncated to 63 characters. */}}
{{- define "debugsession-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or <release> when it already contains the chart name. */}}
{{- define "debugsession-operator.fullname" -}}
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

{{- define "debugsession-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "debugsession-operator.labels" -}}
helm.sh/chart: {{ include "debugsession-operator.chart" . }}
{{ include "debugsession-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: debugsession-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels selecting the operator pods. */}}
{{- define "debugsession-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "debugsession-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "debugsession-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "debugsession-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "debugsession-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* PodDisruptionBudget API: policy/v1 when the cluster serves it (>= 1.21), else policy/v1beta1. */}}
{{- define "debugsession-operator.pdbApiVersion" -}}
{{- if or (.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget") (.Capabilities.APIVersions.Has "policy/v1") }}
{{- print "policy/v1" }}
{{- else }}
{{- print "policy/v1beta1" }}
{{- end }}
{{- end }}

{{/* The operator's own Kubernetes user: the only one who may remove the revert finalizer early. */}}
{{- define "debugsession-operator.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "debugsession-operator.serviceAccountName" .) }}
{{- end }}

{{/* Value combinations the chart refuses (values.schema.json refuses them too; this also covers
installs that skip schema validation). */}}
{{- define "debugsession-operator.checkValues" -}}
{{- if and (not .Values.webhook.enabled) (not .Values.insecure.allowUnstamped) }}
{{- fail "webhook.enabled=false requires insecure.allowUnstamped=true. Without the admission webhook no session carries a requester stamp, so the operator runs sessions nobody was authorized for: anyone with debugsession-edit in a namespace (aggregated into edit and admin) gets a SYS_PTRACE shell in any workload of that namespace, even without pods/exec or patch rights on it. Keep the webhook on, or set insecure.allowUnstamped=true to accept this." }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount=%d requires leaderElection.enabled=true: without a leader every replica reconciles, and two operators would race on expiry and revert. Enable leader election or set replicaCount to 1." (int .Values.replicaCount)) }}
{{- end }}
{{- if empty (include "debugsession-operator.modes" . | fromJsonArray) }}
{{- fail "modes: every mode is switched off (modes.patch, modes.copy and modes.ephemeral are all false), and the operator does not start without one. Set at least one of them to true." }}
{{- end }}
{{- if empty .Values.policy.allowedProfiles }}
{{- fail "policy.allowedProfiles is empty: the operator does not start without a profile that sessions may ask for. Name at least one of general, baseline, restricted, netadmin, sysadmin." }}
{{- end }}
{{- end }}

{{/* The modes the operator runs, as a JSON list of their names in the operator's order (Patch, Copy,
Ephemeral): modes.patch, modes.copy and modes.ephemeral. Joined with commas, it is DEBUGSESSION_MODES;
the operator's RBAC holds the rights of these modes only. */}}
{{- define "debugsession-operator.modes" -}}
{{- $modes := list }}
{{- if .Values.modes.patch }}{{ $modes = append $modes "Patch" }}{{ end }}
{{- if .Values.modes.copy }}{{ $modes = append $modes "Copy" }}{{ end }}
{{- if .Values.modes.ephemeral }}{{ $modes = append $modes "Ephemeral" }}{{ end }}
{{- $modes | toJson }}
{{- end }}

{{/* Namespaces that get a Role with the operator's write rights on targets (the enabled modes': patch on
workloads, create and delete on pods, the pods/ephemeralcontainers subresource), as a JSON list:
policy.allowedNamespaces when set and free of globs; empty (those rights stay in the ClusterRole)
otherwise, since a glob cannot name Roles. */}}
{{- define "debugsession-operator.workloadRoleNamespaces" -}}
{{- $names := .Values.policy.allowedNamespaces | default list | uniq }}
{{- $glob := false }}
{{- range $names }}{{ if contains "*" . }}{{ $glob = true }}{{ end }}{{ end }}
{{- if or $glob (empty $names) }}
{{- list | toJson }}
{{- else }}
{{- $names | toJson }}
{{- end }}
{{- end }}
