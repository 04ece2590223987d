#!/usr/bin/env python3
"""Checks one rendered variant of the chart, as the Kubernetes API accepted it
(`kubectl apply --dry-run=server -o json`): usage `check.py VARIANT FILE`. Run by
deploy/chart/test. Exits non-zero, saying why, when a check fails."""

import base64
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


# What the server needs for `security.kubernetesAuth` (granted only then, always cluster-wide).
KUBERNETES_AUTH_RULES = {
    ("authentication.k8s.io", "tokenreviews", "create"),
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
    ("authentication.k8s.io", "*", "impersonate"),
} | {("", r, "impersonate") for r in ("users", "groups", "serviceaccounts")}
AUTH_ROLE = "kuberay-apiserver-ray-system-kubernetes-auth"
SECRET_DIR = "/etc/kuberay-apiserver"

# What each variant's `security` must make of the server: the mode ("token", "kubernetes",
# "policy" or None), the Secret it reads (and whether the chart makes it), the key, the path
# prefix; TLS and client CA Secrets.
SECURITY = {
    # KubeRay's own values file: env.SECURITY_TOKEN "12345", SECURITY_PREFIX "/", the proxy.
    "kuberay-values": dict(mode="token", secret="kuberay-apiserver-security-token", key="token",
                           created=True, token="12345"),
    "token-secret": dict(mode="token", secret="kuberay-api-token", key="api-token", prefix="/apis/"),
    "kubernetes-auth": dict(mode="kubernetes"),
    "single-kubernetes-auth": dict(mode="kubernetes"),
    "policy": dict(mode="policy", secret="kuberay-auth-policy", key="policy.yaml"),
    "tls": dict(mode=None, tls="kuberay-apiserver-tls", client_ca="kuberay-client-ca"),
}


def rules_of(role):
    return {
        (group, resource, verb)
        for rule in role.get("rules", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


single = variant in ("single-namespace", "single-kubernetes-auth")
v2 = variant != "v2-off"
expected_rules = SERVER_RULES | (V2_RULES if v2 else set())
sec = SECURITY.get(variant, {})
mode = sec.get("mode")

expected_kinds = {"ServiceAccount", "Service", "Deployment"}
expected_kinds |= {"Role", "RoleBinding"} if single else {"ClusterRole", "ClusterRoleBinding"}
if variant == "ingress":
    expected_kinds.add("Ingress")
if sec.get("created"):
    expected_kinds.add("Secret")
if mode == "kubernetes":
    expected_kinds |= {"ClusterRole", "ClusterRoleBinding"}
check(set(by_kind) == expected_kinds, f"kinds {sorted(by_kind)}, expected {sorted(expected_kinds)}")


def named(kind, name):
    found = [o for o in by_kind.get(kind, []) if o["metadata"]["name"] == name]
    check(len(found) == 1, f"expected one {kind} {name}, found {len(found)}")
    return found[0] if found else {}


# The kubernetesAuth grants: a ClusterRole and its binding, only in that mode, also with
# singleNamespaceInstall (TokenReview, SubjectAccessReview and impersonation are cluster-scoped).
auth_objects = [o for kind in ("ClusterRole", "ClusterRoleBinding") for o in by_kind.get(kind, [])
                if o["metadata"]["name"] == AUTH_ROLE]
if mode == "kubernetes":
    auth_role = named("ClusterRole", AUTH_ROLE)
    got = rules_of(auth_role)
    check(got == KUBERNETES_AUTH_RULES, f"kubernetesAuth rules differ: missing "
          f"{sorted(KUBERNETES_AUTH_RULES - got)}, extra {sorted(got - KUBERNETES_AUTH_RULES)}")
    auth_binding = named("ClusterRoleBinding", AUTH_ROLE)
    check(auth_binding.get("roleRef") == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                          "name": AUTH_ROLE}, f"auth binding roleRef {auth_binding.get('roleRef')}")
    check(auth_binding.get("subjects") == [{"kind": "ServiceAccount", "name": "kuberay-apiserver",
                                            "namespace": "ray-system"}],
          f"auth binding subjects {auth_binding.get('subjects')}")
else:
    check(not auth_objects, f"kubernetesAuth grants without kubernetesAuth: {[o['kind'] for o in auth_objects]}")
# No other role of the chart grants any of them.
for kind in ("Role", "ClusterRole"):
    for other in by_kind.get(kind, []):
        if other["metadata"]["name"] != AUTH_ROLE:
            leaked = rules_of(other) & KUBERNETES_AUTH_RULES
            check(not leaked, f"{kind} {other['metadata']['name']} grants {sorted(leaked)}")

role = named("Role" if single else "ClusterRole", "kuberay-apiserver")
got = rules_of(role)
check(got == expected_rules,
      f"RBAC rules differ: missing {sorted(expected_rules - got)}, extra {sorted(got - expected_rules)}")
binding = named("RoleBinding" if single else "ClusterRoleBinding", "kuberay-apiserver")
check(binding.get("roleRef", {}).get("name") == role.get("metadata", {}).get("name"),
      "the binding does not name the role")
check(binding.get("subjects") == [{"kind": "ServiceAccount", "name": "kuberay-apiserver",
                                   "namespace": "ray-system"}],
      f"binding subjects {binding.get('subjects')}")
if single:
    cluster_scoped = [o["kind"] for o in objects
                      if not o["metadata"].get("namespace") and o["metadata"]["name"] != AUTH_ROLE]
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

# No sidecar, whatever `security` says: the server authenticates by itself.
check(set(containers) == {"kuberay-apiserver-container"}, f"containers {sorted(containers)}")
check([p.get("targetPort") for p in service["spec"]["ports"]] == [8888, 8887],
      f"Service targetPorts {[p.get('targetPort') for p in service['spec']['ports']]}: not the server's own")

# security: the server's arguments, the Secrets it reads and where, the probes' scheme.
expected_args = set()
expected_mounts = {"/tmp": None}
if mode == "token":
    expected_args.add(f"--auth-token-file={SECRET_DIR}/token/{sec['key']}")
    if sec.get("prefix"):
        expected_args.add(f"--auth-path-prefix={sec['prefix']}")
    expected_mounts[f"{SECRET_DIR}/token"] = (sec["secret"], [sec["key"]])
elif mode == "kubernetes":
    expected_args.add("--kubernetes-auth")
elif mode == "policy":
    expected_args.add(f"--auth-policy-file={SECRET_DIR}/policy/{sec['key']}")
    expected_mounts[f"{SECRET_DIR}/policy"] = (sec["secret"], [sec["key"]])
if sec.get("tls"):
    expected_args |= {f"--tls-cert-file={SECRET_DIR}/tls/tls.crt", f"--tls-key-file={SECRET_DIR}/tls/tls.key"}
    expected_mounts[f"{SECRET_DIR}/tls"] = (sec["tls"], ["tls.crt", "tls.key"])
if sec.get("client_ca"):
    expected_args.add(f"--tls-client-ca-file={SECRET_DIR}/client-ca/ca.crt")
    expected_mounts[f"{SECRET_DIR}/client-ca"] = (sec["client_ca"], ["ca.crt"])
security_args = {a for a in args if a.startswith(("--auth", "--kubernetes-auth", "--tls"))}
check(security_args == expected_args, f"security args {sorted(security_args)}, expected {sorted(expected_args)}")
check(set(mounts) == set(expected_mounts), f"mounts {sorted(mounts)}, expected {sorted(expected_mounts)}")
for mount in server.get("volumeMounts", []):
    expected = expected_mounts.get(mount["mountPath"])
    if not expected:
        continue
    secret_name, keys = expected
    check(mount.get("readOnly") is True, f"{mount['mountPath']} is not mounted read-only")
    check("subPath" not in mount, f"{mount['mountPath']} is a subPath mount (not updated when the Secret changes)")
    source = volumes.get(mount["name"], {}).get("secret", {})
    check(source.get("secretName") == secret_name, f"{mount['mountPath']}: Secret {source.get('secretName')}, "
          f"expected {secret_name}")
    check([i["key"] for i in source.get("items", [])] == keys and
          all(i["key"] == i["path"] for i in source.get("items", [])),
          f"{mount['mountPath']}: items {source.get('items')}, expected {keys}")
scheme = "HTTPS" if sec.get("tls") else "HTTP"
for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
    got = server.get(probe, {}).get("httpGet", {}).get("scheme")
    check(got == scheme, f"{probe} scheme {got}, expected {scheme}")
scrape = service["metadata"].get("annotations", {}).get("prometheus.io/scheme")
check(scrape == ("https" if sec.get("tls") else None), f"prometheus.io/scheme {scrape}")
template_annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
if sec.get("created"):
    secret = named("Secret", sec["secret"])
    check(secret.get("type") == "Opaque", f"token Secret type {secret.get('type')}")
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    check(data == {sec["key"]: sec["token"]}, f"token Secret data {sorted(data)}")
    check("checksum/security-token" in template_annotations, "no checksum of the token on the pods")
else:
    check("checksum/security-token" not in template_annotations, "a token checksum without a chart-made Secret")
# Nothing of KubeRay's proxy is left: no port of it, no variable of it.
check(not [p for c in pod.get("containers", []) for p in c.get("ports", [])
           if p.get("containerPort") in (8988, 8987)], "a proxy port (8988/8987) in the pod")
check(not [e for e in server.get("env", []) if e["name"] in ("SECURITY_TOKEN", "HTTP_LOCAL_PORT")],
      "proxy variables in the server's environment")

if variant == "kuberay-values":
    check("--cors-allow-origin=*" in args, "--cors-allow-origin=*")
    check(server.get("resources", {}).get("requests") == {"cpu": "300m", "memory": "300Mi"},
          "the values file's resources")
    check(deployment["metadata"].get("labels", {}).get("team") == "ray", "labels")
    check(template_annotations.get("example.com/owner") == "ray", "pod annotations")

if failures:
    for failure in failures:
        print(f"{variant}: {failure}", file=sys.stderr)
    sys.exit(1)
