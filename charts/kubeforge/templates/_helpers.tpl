{{/* Naming, labels and the operator's RBAC rules, shared by every template. */}}

{{- define "kubeforge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or <release> alone when it already contains the chart name. */}}
{{- define "kubeforge.fullname" -}}
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

{{- define "kubeforge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeforge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeforge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kubeforge.labels" -}}
helm.sh/chart: {{ include "kubeforge.chart" . }}
{{ include "kubeforge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubeforge
{{- end }}

{{- define "kubeforge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubeforge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubeforge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's rules, the same for the ClusterRole (cluster-wide) and each namespaced Role
(watchNamespaces). Only the verbs the code uses (re-read the trainingjob and modelendpoint controllers when they change):
  - kopf watches the CRs and every child kind an owner is woken by: list + watch;
  - kubeforge/kube.py: get (CRs, Deployments), list (Jobs, pods by label), server-side apply of
    every child (a PATCH, authorized as `patch`, and as `create` too when the object does not exist
    yet: tests/integration/test_chart_rbac.py saw the 403 without it), merge patches on /status
    and on a Job's spec.suspend, delete (stale Jobs, HPA/PDB a spec dropped, a TrainingJob past
    its TTL, a ModelEndpoint's canary Deployment and its report ServiceAccount, Role, RoleBinding and
    ConfigMap once the canary is promoted or removed), Events (create);
  - per canary (strategy Canary), the same narrow Role for its pods' ServiceAccount: patch of the one
    ConfigMap <endpoint>-canary-report, where the canary's servers report their traffic;
  - per TrainingJob, a Role that lets the job's ServiceAccount patch its one progress ConfigMap
    (resourceNames), and its RoleBinding: Kubernetes lets the operator grant only what it holds
    itself (configmaps patch), so it needs neither `bind` nor `escalate`;
  - configmaps get/list/watch: rank 0's progress is read from that ConfigMap, and its changes wake the job;
  - get on every child kind: before a child is first applied, kubeforge.ownership reads whatever holds its
    name, and refuses to take over an object it does not control.
No wildcards and no secrets: tests/unit/test_chart_rbac.py fails on either.
*/}}
{{- define "kubeforge.operatorRules" -}}
- apiGroups: ["kubeforge.io"]
  resources: ["trainingjobs"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: ["kubeforge.io"]
  resources: ["modelendpoints"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["kubeforge.io"]
  resources: ["trainingjobs/status", "modelendpoints/status"]
  verbs: ["patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list"]
{{- /* Why pods wait: a ModelEndpoint's pvc:// model claim must exist before ModelResolved says so. */}}
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get"]
{{- /* Whether a gang can ever fit its pool. Nodes are cluster-scoped: in a namespaced Role this grants nothing, and the
       operator (told the namespaces) skips the check. */}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list"]
{{- /* Kueue's admission state of a queued TrainingJob (absent when Kueue is not installed). */}}
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["list"]
{{- end }}
