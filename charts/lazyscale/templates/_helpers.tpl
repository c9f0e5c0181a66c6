{{/* Labels of every object of the release. */}}
{{- define "lazyscale.labels" -}}
app.kubernetes.io/name: lazyscale
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pods' selector: stable across upgrades. */}}
{{- define "lazyscale.selector" -}}
app.kubernetes.io/name: lazyscale
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The name of the release's objects. */}}
{{- define "lazyscale.name" -}}
{{- if eq .Release.Name "lazyscale" -}}lazyscale{{- else -}}{{ printf "%s-lazyscale" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "lazyscale.serviceName" -}}{{ include "lazyscale.name" . }}-admission{{- end -}}

{{- define "lazyscale.certManager" -}}{{ eq .Values.admission.certificate.mode "cert-manager" }}{{- end -}}

{{/* lazyscale's config file: what the chart owns, with .Values.config merged over it. */}}
{{- define "lazyscale.config" -}}
{{- $cm := eq (include "lazyscale.certManager" .) "true" -}}
{{- $chart := dict
  "admission" (dict
    "enabled" .Values.admission.enabled
    "register" .Values.admission.register
    "scope" .Values.admission.scope
    "failure_policy" .Values.admission.failurePolicy
    "timeout_seconds" .Values.admission.timeoutSeconds
    "port" .Values.admission.port
    "service_port" .Values.admission.servicePort
    "service_name" (include "lazyscale.serviceName" .)
    "service_namespace" .Release.Namespace
    "webhook_name" .Values.admission.webhookName
    "webhook_owner" (include "lazyscale.name" .)
    "certificate" (ternary (dict "mode" "files" "dir" "/etc/lazyscale/tls") (dict "mode" "self-managed" "secret_name" .Values.admission.certificate.secretName) $cm))
  "leader_election" (dict
    "enabled" .Values.leaderElection.enabled
    "namespace" .Release.Namespace
    "lease_name" .Values.leaderElection.leaseName)
  "log" (dict "format" "json")
  "status" (dict "auth" .Values.statusAuth)
-}}
{{- toYaml (mergeOverwrite $chart (deepCopy .Values.config)) -}}
{{- end -}}
