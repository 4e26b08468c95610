{{/* Names and labels, the conventional way. */}}
{{- define "embedgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "embedgate.fullname" -}}
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

{{- define "embedgate.headlessName" -}}
{{- printf "%s-headless" (include "embedgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "embedgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "embedgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "embedgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "embedgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: embed-token-service
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "embedgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "embedgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "embedgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "embedgate.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "embedgate.fullname" .)) .Values.policy.existingConfigMap }}
{{- end }}

{{/* The in-cluster DNS names of the Services, for the server certificate. */}}
{{- define "embedgate.dnsNames" -}}
{{- $ns := .Release.Namespace }}
{{- range $svc := list (include "embedgate.fullname" .) (include "embedgate.headlessName" .) }}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.cluster.local
{{- end }}
{{- range .Values.tls.certManager.dnsNames }}
- {{ . }}
{{- end }}
{{- end }}

{{/* Validation of combinations a schema cannot express; fails the render. */}}
{{- define "embedgate.validate" -}}
{{- $tls := .Values.tls }}
{{- if and (eq $tls.source "none") (not .Values.mesh.enabled) }}
{{- fail "tls.source none (plaintext) is only allowed with mesh.enabled: true" }}
{{- end }}
{{- if and .Values.mesh.enabled (not .Values.mesh.self) }}
{{- fail "mesh.enabled needs mesh.self, the SPIFFE ID our sidecar writes as By" }}
{{- end }}
{{- if and (eq $tls.source "certManager") (not $tls.certManager.issuerRef.name) }}
{{- fail "tls.source certManager needs tls.certManager.issuerRef.name" }}
{{- end }}
{{- if ne $tls.source "none" }}
{{- $sources := 0 }}
{{- if $tls.clientCA.fromServerSecret }}{{ $sources = add1 $sources }}{{ end }}
{{- if $tls.clientCA.configMap.name }}{{ $sources = add1 $sources }}{{ end }}
{{- if $tls.clientCA.secret.name }}{{ $sources = add1 $sources }}{{ end }}
{{- if ne (int $sources) 1 }}
{{- fail "set exactly one of tls.clientCA.fromServerSecret, tls.clientCA.configMap.name, tls.clientCA.secret.name" }}
{{- end }}
{{- end }}
{{- if and .Values.sharedState.address (not .Values.sharedState.existingSecret) }}
{{- fail "sharedState.address needs sharedState.existingSecret (the encryption keys)" }}
{{- end }}
{{- $kind := .Values.powerbi.credential.kind }}
{{- if and (ne $kind "workloadIdentity") (not .Values.powerbi.credential.existingSecret) }}
{{- fail (printf "powerbi.credential.kind %s needs powerbi.credential.existingSecret" $kind) }}
{{- end }}
{{- if and (ne $kind "workloadIdentity") (or (not .Values.powerbi.tenantId) (not .Values.powerbi.clientId)) }}
{{- fail "powerbi.tenantId and powerbi.clientId are required (only workload identity provides them)" }}
{{- end }}
{{- if and (eq $kind "workloadIdentity") (not .Values.powerbi.clientId) (not (index .Values.serviceAccount.annotations "azure.workload.identity/client-id")) }}
{{- fail "workload identity needs powerbi.clientId (or the azure.workload.identity/client-id annotation on the ServiceAccount)" }}
{{- end }}
{{- end }}
