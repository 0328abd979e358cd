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
  verbs: ["get", "list", "watch", "patch", "create", "delete"]
- apiGroups: ["dbrestore.io"]
  resources: ["aurorarestores/status"]
  verbs: ["patch"]
- apiGroups: ["dbrestore.io"]
  resources: ["aurorarestoreschedules"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["dbrestore.io"]
  resources: ["aurorarestoreschedules/status"]
  verbs: ["patch"]
{{- /* Runs are owned with blockOwnerDeletion: OwnerReferencesPermissionEnforcement (on by default on OpenShift)
requires update on the owner's finalizers subresource to set it. */}}
- apiGroups: ["dbrestore.io"]
  resources: ["aurorarestoreschedules/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- /* Secrets: connection Secrets, and the Secret of a Job hook (found by its name: no list, which would read
every Secret). */}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "update", "delete"]
{{- /* Job hooks (spec.hooks.postRestore[].job) and the SQL of configMapRef hooks. */}}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
{{- end -}}

{{/* The leader Lease, in the release's namespace: leaderElection.leaseName, or <fullname>-leader. */}}
{{- define "aurora-restore.leaderLeaseName" -}}
{{- default (printf "%s-leader" (include "aurora-restore.fullname" .)) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* The operator Deployments, as a YAML list: the shards, or one unnamed shard (watchNamespaces, no selector). */}}
{{- define "aurora-restore.shards" -}}
{{- if .Values.shards -}}
{{- toYaml .Values.shards -}}
{{- else -}}
- {}
{{- end -}}
{{- end -}}

{{/* A shard's Deployment (list root shard): <fullname>-<shard>, or <fullname> without shards. */}}
{{- define "aurora-restore.deploymentName" -}}
{{- $root := index . 0 -}}
{{- $shard := index . 1 -}}
{{- if $shard.name -}}
{{- printf "%s-%s" (include "aurora-restore.fullname" $root) $shard.name -}}
{{- else -}}
{{- include "aurora-restore.fullname" $root -}}
{{- end -}}
{{- end -}}

{{/* A shard's own leader Lease (list root shard): <leaderElection.leaseName>-<shard>, else <fullname>-<shard>-leader;
without shards the release's. Every shard's Lease, like the per-target Leases, is in the release's namespace. */}}
{{- define "aurora-restore.shardLeaderLeaseName" -}}
{{- $root := index . 0 -}}
{{- $shard := index . 1 -}}
{{- if not $shard.name -}}
{{- include "aurora-restore.leaderLeaseName" $root -}}
{{- else if $root.Values.leaderElection.leaseName -}}
{{- printf "%s-%s" $root.Values.leaderElection.leaseName $shard.name -}}
{{- else -}}
{{- printf "%s-leader" (include "aurora-restore.deploymentName" .) -}}
{{- end -}}
{{- end -}}

{{/* Whether some Deployment watches listed namespaces (`--namespace`): kopf then lists and watches namespaces. */}}
{{- define "aurora-restore.watchesListedNamespaces" -}}
{{- if .Values.watchNamespaces -}}
true
{{- else -}}
{{- range .Values.shards -}}
{{- if .namespaces -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
What values.schema.json cannot express, checked when the chart renders (helm install, upgrade and template stop
with the message):
- terminationGracePeriodSeconds > settings.shutdownTimeoutSeconds + 15: after SIGTERM the operator waits up to
  the shutdown timeout for the steps in flight, then kopf stops its daemons (10 s cancellation backoff + 5 s
  cancellation timeout, operator/aurora_restore/main.py), then the leader Lease is released. A shorter grace
  period kills it mid-way: the steps are repeated by the next leader, which waits out the Lease first.
- leaseDurationSeconds > renewDeadlineSeconds > 1.2 x retryPeriodSeconds (the operator's rule, client-go's): the
  leader must stop acting before a standby may take over, and get more than one try at renewing before that.
- without leader election, at most one replica: every pod would act.
- shards: distinct names; with watchNamespaces set (the RBAC's scope), a shard's namespaces among them; no RDS
  events queue read by two shards (each deletes what it receives: the other would never see those events).
*/}}
{{- define "aurora-restore.checkValues" -}}
{{- $shutdown := float64 .Values.settings.shutdownTimeoutSeconds -}}
{{- $grace := float64 .Values.terminationGracePeriodSeconds -}}
{{- $kopfStop := 15.0 -}}
{{- if not (gt $grace (addf $shutdown $kopfStop)) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed settings.shutdownTimeoutSeconds (%v) + 15 s for kopf to stop its daemons (10 s cancellation backoff + 5 s cancellation timeout), at least %v: otherwise the pod is killed before it has drained and released the leader Lease" .Values.terminationGracePeriodSeconds .Values.settings.shutdownTimeoutSeconds (add1 (int (addf $shutdown $kopfStop)))) -}}
{{- end -}}
{{- /* The longest AWS call with its retries: 4 attempts x (connect + read timeout) + 3 x 20 s of botocore's
standard backoff (Settings.longest_aws_call_seconds); the drain must be able to wait for it. */ -}}
{{- $longestCall := addf (mulf 4.0 (addf (float64 .Values.settings.awsConnectTimeoutSeconds) (float64 .Values.settings.awsReadTimeoutSeconds))) 60.0 -}}
{{- if lt $shutdown $longestCall -}}
{{- fail (printf "settings.shutdownTimeoutSeconds (%v) must be at least the longest AWS call with its retries, 4 x (awsConnectTimeoutSeconds %v + awsReadTimeoutSeconds %v) + 60 = %v: otherwise a graceful shutdown may cut a call short" .Values.settings.shutdownTimeoutSeconds .Values.settings.awsConnectTimeoutSeconds .Values.settings.awsReadTimeoutSeconds $longestCall) -}}
{{- end -}}
{{- $leader := .Values.leaderElection -}}
{{- $duration := float64 $leader.leaseDurationSeconds -}}
{{- $deadline := float64 $leader.renewDeadlineSeconds -}}
{{- $retry := float64 $leader.retryPeriodSeconds -}}
{{- if not (and (gt $duration $deadline) (gt $deadline (mulf $retry 1.2))) -}}
{{- fail (printf "leaderElection needs leaseDurationSeconds (%v) > renewDeadlineSeconds (%v) > 1.2 x retryPeriodSeconds (%v): the leader must stop acting before a standby may take over the Lease, and get more than one try at renewing it before that" $leader.leaseDurationSeconds $leader.renewDeadlineSeconds $leader.retryPeriodSeconds) -}}
{{- end -}}
{{- if and (not $leader.enabled) (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "replicaCount %v needs leaderElection.enabled: without leader election every pod acts, and two pods would drive the same restores at once" .Values.replicaCount) -}}
{{- end -}}
{{- $names := list -}}
{{- $queues := dict -}}
{{- range .Values.shards -}}
{{- $shard := . -}}
{{- if has .name $names -}}
{{- fail (printf "shards: the name %s is used twice: each shard is a Deployment and a leader Lease of its own" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- with .eventsQueueUrl | default $.Values.settings.eventsQueueUrl -}}
{{- if hasKey $queues . -}}
{{- fail (printf "shards: %s and %s read the same RDS events queue %s: each deletes the events it receives, so the other would miss them; give each shard its own queue (shards[].eventsQueueUrl, one EventBridge rule per queue)" (get $queues .) $shard.name .) -}}
{{- end -}}
{{- $_ := set $queues . $shard.name -}}
{{- end -}}
{{- if $.Values.watchNamespaces -}}
{{- range .namespaces -}}
{{- if not (has . $.Values.watchNamespaces) -}}
{{- fail (printf "shards: %s watches the namespace %s, which watchNamespaces (the namespaces the chart's RBAC grants) does not list" $shard.name .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
