{{/*
The chart name (nameOverride replaces it), as in the KubeRay chart.
*/}}
{{- define "kuberay-apiserver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified name (release and chart name), as in the KubeRay chart: names the Ingress and
the Route.
*/}}
{{- define "kuberay-apiserver.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "kuberay-apiserver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "kuberay-apiserver.labels" -}}
helm.sh/chart: {{ include "kuberay-apiserver.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The pods' selector labels. The same as the KubeRay chart's, so that `helm upgrade` from that chart
to this one keeps the Deployment (its selector cannot change).
*/}}
{{- define "kuberay-apiserver.selectorLabels" -}}
app.kubernetes.io/component: {{ include "kuberay-apiserver.name" . }}
app.kubernetes.io/name: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "kuberay-apiserver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default .Values.name .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container port named $name ("http" or "grpc"), else $default.
*/}}
{{- define "kuberay-apiserver.containerPort" -}}
{{- $port := .default }}
{{- range .root.Values.containerPort }}
{{- if eq (toString .name) $.name }}{{ $port = .containerPort }}{{ end }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
The image: repository and tag (the chart's appVersion when empty).
*/}}
{{- define "kuberay-apiserver.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion (toString .Values.image.tag)) }}
{{- end }}

{{/*
The RBAC rules of the server: exactly the Kubernetes calls it makes (the chart's README lists
them with the calls that need each).
*/}}
{{- define "kuberay-apiserver.rules" -}}
# Compute templates are ConfigMaps: create (after a get), get, list in a namespace and in all
# namespaces (ListAllComputeTemplates), delete; clusters, jobs, services and V2 creates read them;
# the server's watch cache lists and watches the compute-template ones.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, delete]
# RayClusters, RayJobs, RayServices: V1 creates, gets, lists (one namespace or all) and deletes
# them and replaces RayServices (UpdateRayService); V2 passes a client's get, list, watch,
# create, update, patch and delete through.
- apiGroups: [ray.io]
  resources: [rayclusters, rayjobs, rayservices]
  verbs: [get, list, watch, create, update, patch, delete]
# V2 reads of the status subresource (`GET .../status`). Status is written by the operator only.
- apiGroups: [ray.io]
  resources: [rayclusters/status, rayjobs/status, rayservices/status]
  verbs: [get]
# Events of clusters and services in V1 answers (list with field selectors, one namespace or
# all), and V2's event list and watch (GET /apis/events.k8s.io/v1/namespaces/<ns>/events).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [list, watch]
{{- if .Values.enableAPIServerV2 }}
# V2's service proxy: the guard lists the namespace's Services labelled
# app.kubernetes.io/name=kuberay; the call then goes through the Kubernetes service proxy with
# the client's method (GET, HEAD: get; POST: create; PUT: update; PATCH: patch; DELETE: delete).
# Job submissions use it too when the server runs outside the cluster.
- apiGroups: [""]
  resources: [services]
  verbs: [list]
- apiGroups: [""]
  resources: [services/proxy]
  verbs: [get, create, update, patch, delete]
{{- end }}
{{- end }}

{{/*
What `security` asks of the server, checked, as YAML (read it with `fromYaml`):
  enabled            security is set
  mode               "token", "kubernetes", "policy" or "" (TLS only)
  tokenSecret, tokenKey, createTokenSecret, token (the value of security.env.SECURITY_TOKEN)
  policySecret, policyKey
  pathPrefix         security.env.SECURITY_PREFIX when it is not "/" (token mode only)
  tls, tlsSecret, clientCASecret
KubeRay's security proxy (security.proxy, HTTP_LOCAL_PORT, GRPC_LOCAL_PORT, ENABLE_GRPC) is not
run: the server authenticates by itself. Refuses, at template time, settings that choose more
than one mode or none.
*/}}
{{- define "kuberay-apiserver.security" -}}
{{- $sec := .Values.security | default dict }}
{{- $env := $sec.env | default dict }}
{{- $token := $sec.token | default dict }}
{{- $policy := $sec.policy | default dict }}
{{- $tls := $sec.tls | default dict }}
{{- $envToken := trim (toString ($env.SECURITY_TOKEN | default "")) }}
{{- $tokenSecret := toString ($token.existingSecret | default "") }}
{{- $policySecret := toString ($policy.existingSecret | default "") }}
{{- $kubernetes := eq (toString ($sec.kubernetesAuth | default false)) "true" }}
{{- $tlsSecret := toString ($tls.secretName | default "") }}
{{- $clientCASecret := toString ($tls.clientCASecretName | default "") }}
{{- $prefix := toString ($env.SECURITY_PREFIX | default "/") }}
{{- if and $envToken $tokenSecret }}
{{- fail "security: set security.env.SECURITY_TOKEN (the chart makes a Secret of it) or security.token.existingSecret, not both" }}
{{- end }}
{{- $modes := list }}
{{- if or $envToken $tokenSecret }}{{ $modes = append $modes (ternary "security.env.SECURITY_TOKEN" "security.token.existingSecret" (ne $envToken "")) }}{{ end }}
{{- if $kubernetes }}{{ $modes = append $modes "security.kubernetesAuth" }}{{ end }}
{{- if $policySecret }}{{ $modes = append $modes "security.policy.existingSecret" }}{{ end }}
{{- if gt (len $modes) 1 }}
{{- fail (printf "security: choose one way to authenticate callers, not %s (a shared token, the cluster's own users, or a policy file exclude each other)" (join " and " $modes)) }}
{{- end }}
{{- if and $clientCASecret (not $tlsSecret) }}
{{- fail "security.tls.clientCASecretName needs security.tls.secretName (client certificates are checked only over TLS)" }}
{{- end }}
{{- if and .Values.security (not $modes) (not $tlsSecret) }}
{{- fail "security is set but turns nothing on: set one of security.env.SECURITY_TOKEN, security.token.existingSecret, security.kubernetesAuth, security.policy.existingSecret, and/or security.tls.secretName (KubeRay's security proxy is not run: the server authenticates by itself)" }}
{{- end }}
{{- $mode := "" }}
{{- if or $envToken $tokenSecret }}{{ $mode = "token" }}{{ else if $kubernetes }}{{ $mode = "kubernetes" }}{{ else if $policySecret }}{{ $mode = "policy" }}{{ end }}
{{- if not (hasPrefix "/" $prefix) }}
{{- fail (printf "security.env.SECURITY_PREFIX (%s) must start with /" $prefix) }}
{{- end }}
{{- if and (ne $prefix "/") (ne $mode "token") }}
{{- fail (printf "security.env.SECURITY_PREFIX (%s) applies to a shared token (security.env.SECURITY_TOKEN or security.token.existingSecret) only" $prefix) }}
{{- end }}
enabled: {{ not (empty .Values.security) }}
mode: {{ $mode | quote }}
createTokenSecret: {{ ne $envToken "" }}
token: {{ $envToken | quote }}
tokenSecret: {{ ternary (printf "%s-security-token" .Values.name) $tokenSecret (ne $envToken "") | quote }}
tokenKey: {{ ternary "token" (toString ($token.key | default "token")) (ne $envToken "") | quote }}
policySecret: {{ $policySecret | quote }}
policyKey: {{ toString ($policy.key | default "policy.yaml") | quote }}
pathPrefix: {{ ternary $prefix "" (and (eq $mode "token") (ne $prefix "/")) | quote }}
tls: {{ ne $tlsSecret "" }}
tlsSecret: {{ $tlsSecret | quote }}
clientCASecret: {{ $clientCASecret | quote }}
{{- end }}

{{/*
What the server's ServiceAccount needs for `security.kubernetesAuth`: to ask the cluster who a
caller is (TokenReview) and whether the caller may make a call (SubjectAccessReview), and to
forward V2 calls as the caller (impersonation). All of it is cluster-scoped.
*/}}
{{- define "kuberay-apiserver.kubernetesAuthRules" -}}
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
# V2 calls go to Kubernetes with Impersonate-User, -Group, -Uid and -Extra-* of the caller.
- apiGroups: [""]
  resources: [users, groups, serviceaccounts]
  verbs: [impersonate]
# uids, and the caller's extra fields (a ServiceAccount token carries e.g.
# authentication.kubernetes.io/credential-id): Kubernetes checks each extra field as
# userextras/<key>, and RBAC matches no wildcard after `userextras/`, so every resource of the
# group is named with `*` (impersonate means nothing for its other resources).
- apiGroups: [authentication.k8s.io]
  resources: ["*"]
  verbs: [impersonate]
{{- end }}
