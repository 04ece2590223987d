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
