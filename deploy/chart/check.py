#!/usr/bin/env python3
"""Checks one rendered variant of the chart, as the Kubernetes API accepted it
(`kubectl apply --dry-run=server -o json`): usage `check.py VARIANT FILE`. Run by
deploy/chart/test. Exits non-zero, saying why, when a check fails."""

import json
import sys

variant, path = sys.argv[1], sys.argv[2]
document = json.load(open(path))
objects = document["items"] if document.get("kind") == "List" else [document]
by_kind = {}
for obj in objects:
    by_kind.setdefault(obj["kind"], []).append(obj)
failures = []


def check(condition, text):
    if not condition:
        failures.append(text)


def one(kind):
    found = by_kind.get(kind, [])
    check(len(found) == 1, f"expected one {kind}, found {len(found)}")
    return found[0] if found else {}


# The rules the server needs (the chart's README lists them): (group, resource, verb).
SERVER_RULES = {
    ("", "configmaps", v) for v in ("get", "list", "watch", "create", "delete")
} | {
    ("ray.io", r, v)
    for r in ("rayclusters", "rayjobs", "rayservices")
    for v in ("get", "list", "watch", "create", "update", "patch", "delete")
} | {
    ("ray.io", f"{r}/status", "get") for r in ("rayclusters", "rayjobs", "rayservices")
} | {("events.k8s.io", "events", v) for v in ("list", "watch")}
V2_RULES = {("", "services", "list")} | {
    ("", "services/proxy", v) for v in ("get", "create", "update", "patch", "delete")
}


def rules_of(role):
    return {
        (group, resource, verb)
        for rule in role.get("rules", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


single = variant == "single-namespace"
v2 = variant != "v2-off"
expected_rules = SERVER_RULES | (V2_RULES if v2 else set())

expected_kinds = {"ServiceAccount", "Service", "Deployment"}
expected_kinds |= {"Role", "RoleBinding"} if single else {"ClusterRole", "ClusterRoleBinding"}
if variant == "ingress":
    expected_kinds.add("Ingress")
check(set(by_kind) == expected_kinds, f"kinds {sorted(by_kind)}, expected {sorted(expected_kinds)}")

role = one("Role" if single else "ClusterRole")
got = rules_of(role)
check(got == expected_rules,
      f"RBAC rules differ: missing {sorted(expected_rules - got)}, extra {sorted(got - expected_rules)}")
binding = one("RoleBinding" if single else "ClusterRoleBinding")
check(binding.get("roleRef", {}).get("name") == role.get("metadata", {}).get("name"),
      "the binding does not name the role")
check(binding.get("subjects") == [{"kind": "ServiceAccount", "name": "kuberay-apiserver",
                                   "namespace": "ray-system"}],
      f"binding subjects {binding.get('subjects')}")
if single:
    cluster_scoped = [o["kind"] for o in objects if not o["metadata"].get("namespace")]
    check(not cluster_scoped, f"cluster-scoped objects with singleNamespaceInstall: {cluster_scoped}")

deployment = one("Deployment")
pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
containers = {c["name"]: c for c in pod.get("containers", [])}
server = containers.get("kuberay-apiserver-container", {})
check(bool(server), f"no kuberay-apiserver-container: {sorted(containers)}")
args = server.get("args", [])
for arg in ("--httpPortFlag=:8888", "--rpcPortFlag=:8887", f"--enable-api-server-v2={str(v2).lower()}",
            "--backend=kubernetes", "--shutdown-delay=5s"):
    check(arg in args, f"server args {args} lack {arg}")
check(pod.get("serviceAccountName") == "kuberay-apiserver", "serviceAccountName")
check(pod.get("terminationGracePeriodSeconds") == 30, "terminationGracePeriodSeconds is not 5 + 25")
check(pod.get("securityContext", {}).get("runAsNonRoot") is True, "pod runAsNonRoot")
security = server.get("securityContext", {})
check(security.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(security.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation")
check(security.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
check(server.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "liveness /healthz")
check(server.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readiness /readyz")
mounts = {m["mountPath"]: m["name"] for m in server.get("volumeMounts", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
check("emptyDir" in volumes.get(mounts.get("/tmp"), {}), "/tmp is not an emptyDir")
env = {e["name"]: e.get("value") for e in server.get("env", [])}
if single:
    check(env.get("KUBERAY_APISERVER_NAMESPACE") == "ray-system", "KUBERAY_APISERVER_NAMESPACE")
else:
    check("KUBERAY_APISERVER_NAMESPACE" not in env, "namespace restriction without singleNamespaceInstall")
selector = deployment.get("spec", {}).get("selector", {}).get("matchLabels")
check(selector == {"app.kubernetes.io/component": "kuberay-apiserver",
                   "app.kubernetes.io/name": "kuberay-apiserver"},
      f"selector {selector} is not KubeRay's chart's")

service = one("Service")
check(service.get("metadata", {}).get("name") == "kuberay-apiserver-service", "Service name")
ports = {p["name"]: p for p in service.get("spec", {}).get("ports", [])}
check({n: p["port"] for n, p in ports.items()} == {"http": 8888, "rpc": 8887}, f"Service ports {ports}")
check(service.get("spec", {}).get("selector") == selector, "the Service does not select the pods")
if variant == "nodeport":
    check(service["spec"].get("type") == "NodePort", "type NodePort")
    check({n: p.get("nodePort") for n, p in ports.items()} == {"http": 31888, "rpc": 31887},
          f"node ports {ports}")
else:
    check(service["spec"].get("type") == "ClusterIP", "type ClusterIP")

if variant == "ingress":
    ingress = one("Ingress")
    rule = ingress.get("spec", {}).get("rules", [{}])[0]
    backend = rule.get("http", {}).get("paths", [{}])[0].get("backend", {}).get("service", {})
    check(backend == {"name": "kuberay-apiserver-service", "port": {"number": 8888}},
          f"Ingress backend {backend}")
    check(rule.get("host") == "kuberay.example.com", "Ingress host")
    check(ingress["spec"].get("ingressClassName") == "nginx", "ingressClassName")

if variant == "kuberay-values":
    proxy = containers.get("security-proxy-container", {})
    check(proxy.get("image") == "quay.io/kuberay/security-proxy:nightly", "security proxy image")
    proxy_env = {e["name"]: e.get("value") for e in proxy.get("env", [])}
    for name, value in {"HTTP_LOCAL_PORT": "8988", "GRPC_LOCAL_PORT": "8987", "SECURITY_TOKEN": "12345",
                        "HTTP_REMOTE_PORT": "8888", "GRPC_REMOTE_PORT": "8887"}.items():
        check(proxy_env.get(name) == value, f"security proxy env {name}={proxy_env.get(name)}")
    check("--cors-allow-origin=*" in args, "--cors-allow-origin=*")
    check(server.get("resources", {}).get("requests") == {"cpu": "300m", "memory": "300Mi"},
          "the values file's resources")
    check(deployment["metadata"].get("labels", {}).get("team") == "ray", "labels")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    check(annotations.get("example.com/owner") == "ray", "pod annotations")
else:
    check(set(containers) == {"kuberay-apiserver-container"}, f"containers {sorted(containers)}")

if failures:
    for failure in failures:
        print(f"{variant}: {failure}", file=sys.stderr)
    sys.exit(1)
