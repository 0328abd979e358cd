{{/*
The name of every object: aurora-restore-<release> (a release already named aurora-restore-* keeps its name), so
cluster-scoped objects of two releases never collide. fullnameOverride replaces it.
*/}}
{{- define "aurora-restore.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "aurora-restore-%s" (trimPrefix "aurora-restore-" .Release.Name) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aurora-restore.selectorLabels" -}}
app.kubernetes.io/name: aurora-restore-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aurora-restore.labels" -}}
{{ include "aurora-restore.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aurora-restore-operator
{{- end -}}

{{- define "aurora-restore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aurora-restore.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aurora-restore.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs in every namespace it watches (docs/deployment.md says what each is for). */}}
{{- define "aurora-restore.watchRules" -}}
- apiGroups: ["dbrestore.io"]
  resources: ["aurorarestores"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["dbrestore.io"]
  resources: ["aurorarestores/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "update"]
{{- end -}}
