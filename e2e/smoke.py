#!/usr/bin/env python3
"""The seed's smoke test against our chart installed in a cluster where pods run (run by
e2e/smoke, which brings the cluster up and installs the chart first).

Through the server's NodePort (HTTP 31888 on 127.0.0.1) only, as a user would: the V1 API, job
submissions through the in-cluster dashboard address, and V2's Kubernetes service proxy. What it
checks beside the API (pods running, pods gone) it reads with kubectl. Exits non-zero on the
first failure, saying what it waited for and what it saw.

Then the chart's `security` with the real image: `helm upgrade` of the release with a shared
token (KubeRay's `security.env.SECURITY_TOKEN`), then with `security.kubernetesAuth`, calls
through the NodePort with and without credentials, and the release back to its first values.

Usage: e2e/smoke.py KUBECTL RAY_IMAGE HELM KUBECONFIG CHART
  RAY_IMAGE "-" skips the Ray part (only the `security` checks run).
"""

import json
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

KUBECTL, RAY_IMAGE, HELM, KUBECONFIG, CHART = sys.argv[1:6]
API = "http://127.0.0.1:31888"
NS = "ray-system"
RAY_VERSION = RAY_IMAGE.rsplit(":", 1)[-1]
START = time.monotonic()
# The release's values as e2e/smoke installs it; every `helm upgrade` here starts from them.
BASE_VALUES = ["--set", "service.type=NodePort", "--set", "image.pullPolicy=Never"]
AUTH_NS = "smoke-auth"


def log(text):
    print(f"{time.strftime('%H:%M:%S')} smoke: [{time.monotonic() - START:6.1f}s] {text}",
          file=sys.stderr, flush=True)


def fail(text):
    log(f"FAILED: {text}")
    sys.exit(1)


def call(method, path, body=None, raw=False, authorization=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(API + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read()
            return answer.status, text.decode(errors="replace") if raw else json.loads(text or b"null")
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            return error.code, text if raw else json.loads(text)
        except ValueError:
            return error.code, text
    except OSError as error:
        return 0, str(error)


def expect(status, method, path, body=None, raw=False, authorization=None):
    got, answer = call(method, path, body, raw, authorization)
    if got != status:
        shown = "" if authorization is None else " (with a credential)"
        fail(f"{method} {path}{shown}: {got}, expected {status}: {str(answer)[:2000]}")
    return answer


def wait(what, check, timeout=600, every=3):
    """Calls check() until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result, last = check()
        except Exception as error:  # a transient failure of one poll
            result, last = None, repr(error)
        if result:
            log(f"{what}: yes")
            return result
        time.sleep(every)
    fail(f"{what}: not within {timeout}s; last seen: {str(last)[:3000]}")


def kubectl(*args):
    return subprocess.run([KUBECTL, *args], check=True, capture_output=True, text=True).stdout


def pods(selector):
    items = json.loads(kubectl("get", "pods", "-n", NS, "-l", selector, "-o", "json"))["items"]
    return [(p["metadata"]["name"], p["status"].get("phase"),
             all(c.get("ready") for c in p["status"].get("containerStatuses", [{}])))
            for p in items]


def helm_upgrade(what, values=None):
    """`helm upgrade` of the release to its first values plus `values`, then waits until the
    Deployment's only pods are the new ones (the old pod, which may not ask for credentials, is
    gone from the NodePort)."""
    t0 = time.monotonic()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as extra:
        # Values (tokens included) in a file, not on the command line.
        json.dump(values or {}, extra)
        extra.flush()
        done = subprocess.run([HELM, "--kubeconfig", KUBECONFIG, "upgrade", "kuberay-apiserver", CHART,
                               "-n", NS, *BASE_VALUES, "-f", extra.name, "--wait", "--timeout", "3m"],
                              capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"helm upgrade ({what}): {done.stderr.strip()[-2000:]}")
    deployment = json.loads(kubectl("get", "deployment", "kuberay-apiserver", "-n", NS, "-o", "json"))
    containers = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    if containers != ["kuberay-apiserver-container"]:
        fail(f"containers of the Deployment ({what}): {containers}")
    replicas = deployment["spec"]["replicas"]

    def rolled_out():
        items = json.loads(kubectl("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=kuberay-apiserver",
                                   "-o", "json"))["items"]
        seen = [(p["metadata"]["name"], p["metadata"].get("deletionTimestamp"),
                 all(c.get("ready") for c in p["status"].get("containerStatuses", [{}]))) for p in items]
        return len(seen) == replicas and all(ready and not gone for _, gone, ready in seen), seen

    wait(f"rolled out with {what}", rolled_out, timeout=120, every=1)
    log(f"helm upgrade with {what}: {time.monotonic() - t0:.1f}s")


def security_checks():
    """The chart's `security` with the real image, through the NodePort."""
    t0 = time.monotonic()
    templates = f"/apis/v1/namespaces/{NS}/compute_templates"

    # A shared token, as KubeRay's values file sets it (security.env.SECURITY_TOKEN).
    token = secrets.token_urlsafe(32)
    helm_upgrade("security.env.SECURITY_TOKEN", {"security": {"env": {"SECURITY_TOKEN": token}}})
    # The NodePort may need a moment for the new pod's endpoint.
    refused = wait("a V1 list without the token refused", lambda: (lambda a: (a[0] == 401 and a, a))(
        call("GET", templates)), timeout=60, every=1)[1]
    if not isinstance(refused, dict) or refused.get("code") != 16:
        fail(f"refusal without the token: {refused}")
    expect(401, "GET", templates, authorization="not-the-token")
    expect(401, "GET", templates, authorization=f"Bearer {token}x")
    expect(200, "GET", templates, authorization=token)
    expect(200, "GET", templates, authorization=f"Bearer {token}")
    expect(200, "GET", "/healthz", raw=True)
    expect(200, "GET", "/readyz", raw=True)
    log(f"token: without it 401 {json.dumps(refused)}; `Authorization: <token>` and `Bearer <token>` 200;"
        " /healthz and /readyz open")

    # The cluster's users (security.kubernetesAuth): a ServiceAccount that may list ConfigMaps
    # and RayClusters in one namespace only.
    subprocess.run([KUBECTL, "apply", "-f", "-"], check=True, capture_output=True, text=True, input=json.dumps({
        "apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": AUTH_NS}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": AUTH_NS}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "reader", "namespace": AUTH_NS},
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
                       {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "reader", "namespace": AUTH_NS},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
             "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": AUTH_NS}]},
        ]}))
    reader = kubectl("create", "token", "reader", "-n", AUTH_NS, "--duration=10m").strip()
    helm_upgrade("security.kubernetesAuth", {"security": {"kubernetesAuth": True}})
    bearer = f"Bearer {reader}"
    mine = f"/apis/v1/namespaces/{AUTH_NS}/compute_templates"
    wait("a V1 list without a token refused", lambda: (lambda a: (a[0] == 401, a))(call("GET", mine)),
         timeout=60, every=1)
    listed = expect(200, "GET", mine, authorization=bearer)
    denied = expect(403, "GET", templates, authorization=bearer)
    if not isinstance(denied, dict) or denied.get("code") != 7:
        fail(f"refusal in {NS}: {denied}")
    expect(401, "GET", mine, authorization="Bearer not-a-kubernetes-token")
    # V2 goes to Kubernetes as the caller (impersonation, with the extra fields of its token):
    # allowed where its Role allows, refused by Kubernetes elsewhere.
    expect(200, "GET", f"/apis/ray.io/v1/namespaces/{AUTH_NS}/rayclusters", authorization=bearer)
    forbidden = expect(403, "GET", f"/apis/ray.io/v1/namespaces/{NS}/rayclusters", authorization=bearer)
    if not isinstance(forbidden, dict) or forbidden.get("reason") != "Forbidden" or \
            f"system:serviceaccount:{AUTH_NS}:reader" not in forbidden.get("message", ""):
        fail(f"V2 in {NS} as the reader: {forbidden}")
    log(f"kubernetesAuth: the reader lists in {AUTH_NS} ({json.dumps(listed)}), is refused in {NS}"
        f" ({denied.get('message', '')[:160]}); no token 401; V2 as the reader: 200 in {AUTH_NS}, 403 in {NS}")

    # Back to the release's first values: no authentication.
    helm_upgrade("the first values")
    wait("a V1 list without credentials answered", lambda: (lambda a: (a[0] == 200, a))(call("GET", templates)),
         timeout=60, every=1)
    subprocess.run([KUBECTL, "delete", "namespace", AUTH_NS, "--wait=false"], check=True, capture_output=True)
    log(f"security checks passed in {time.monotonic() - t0:.1f}s")


if RAY_IMAGE == "-":
    security_checks()
    log("passed")
    sys.exit(0)


def group(name, template, replicas=None, extra=None):
    spec = {"computeTemplate": template, "image": RAY_IMAGE, "rayStartParams": {}}
    if replicas is not None:
        spec.update(groupName=name, replicas=replicas, minReplicas=0, maxReplicas=replicas)
    else:
        spec.update(serviceType="ClusterIP", rayStartParams={"dashboard-host": "0.0.0.0"})
    spec.update(extra or {})
    return spec


# 1. The front door, and the seed's compute template.
answer = expect(404, "GET", "/")
if answer != {"code": 5, "message": "Not Found"}:
    fail(f"GET /: {answer}")
log("GET / answers {\"code\":5,\"message\":\"Not Found\"}")
template = {"name": "default-template", "namespace": NS, "cpu": 1, "memory": 2}
expect(200, "POST", f"/apis/v1/namespaces/{NS}/compute_templates", template)
listed = expect(200, "GET", f"/apis/v1/namespaces/{NS}/compute_templates")
if [t["name"] for t in listed["computeTemplates"]] != ["default-template"]:
    fail(f"templates listed: {listed}")
log("compute template created and listed through 31888")

# 2. A RayCluster with a head and a worker, through V1.
cluster = "smoke-cluster"
expect(200, "POST", f"/apis/v1/namespaces/{NS}/clusters", {
    "name": cluster, "namespace": NS, "user": "smoke", "version": RAY_VERSION,
    "environment": "DEV",
    "clusterSpec": {"headGroupSpec": group("head", "default-template"),
                    "workerGroupSpec": [group("small", "default-template", replicas=1)]},
})


def cluster_ready():
    answer = expect(200, "GET", f"/apis/v1/namespaces/{NS}/clusters/{cluster}")
    return answer.get("clusterState") == "ready" and answer, answer


ready = wait(f"cluster {cluster} ready", cluster_ready, timeout=900)
if not ready.get("serviceEndpoint"):
    fail(f"no service endpoints in {ready}")
log(f"cluster endpoints: {ready['serviceEndpoint']}")
running = pods(f"ray.io/cluster={cluster}")
if not any("head" in name for name, _, _ in running) or not any("worker" in name for name, _, _ in running) \
        or not all(phase == "Running" for _, phase, _ in running):
    fail(f"pods of {cluster}: {running}")
log(f"pods running: {', '.join(name for name, _, _ in running)}")

# 3. Job submission through the in-cluster dashboard address (the server runs in a pod).
base = f"/apis/v1/namespaces/{NS}/jobsubmissions/{cluster}"
submitted = expect(200, "POST", base, {
    "entrypoint": "python -c \"import os, ray; ray.init(); "
                  "print(os.environ['SMOKE'], ray.get(ray.remote(lambda: 40 + 2).remote()))\"",
    "runtimeEnv": "env_vars:\n  SMOKE: smoke-says\n",
})
job_id = submitted["submissionId"]
log(f"submitted {job_id}")


def job_done():
    info = expect(200, "GET", f"{base}/{job_id}")
    return info.get("status") in ("SUCCEEDED", "FAILED", "STOPPED") and info, info


info = wait(f"job {job_id} finished", job_done, timeout=300)
if info["status"] != "SUCCEEDED":
    fail(f"job {job_id}: {info}")
logs = expect(200, "GET", f"{base}/log/{job_id}")
if "smoke-says 42" not in logs.get("log", ""):
    fail(f"log of {job_id}: {logs}")
log("job SUCCEEDED and its log came back through the API")
listed = expect(200, "GET", base)
if job_id not in [s["submissionId"] for s in listed.get("submissions", [])]:
    fail(f"{job_id} not listed: {listed}")
long_job = expect(200, "POST", base, {"entrypoint": "python -c \"import time; time.sleep(600)\""})["submissionId"]
wait(f"job {long_job} running", lambda: (lambda i: (i.get("status") == "RUNNING", i))(
    expect(200, "GET", f"{base}/{long_job}")), timeout=120)
expect(200, "POST", f"{base}/{long_job}")
wait(f"job {long_job} stopped", lambda: (lambda i: (i.get("status") == "STOPPED", i))(
    expect(200, "GET", f"{base}/{long_job}")), timeout=120)
expect(200, "DELETE", f"{base}/{long_job}")
expect(404, "GET", f"{base}/{long_job}")
log("stop and delete work")

# 4. V2: the Kubernetes service proxy reaches the cluster's Ray dashboard.
version = expect(200, "GET", f"/api/v1/namespaces/{NS}/services/{cluster}-head-svc:dashboard/proxy/api/version")
if version.get("ray_version") != RAY_VERSION:
    fail(f"dashboard version through V2's service proxy: {version}")
log(f"V2 service proxy reaches the dashboard (Ray {version['ray_version']})")

# 5. A RayJob with a cluster selector runs on the existing cluster.
job_spec = {"namespace": NS, "user": "smoke", "version": RAY_VERSION,
            "entrypoint": "python -c \"import ray; ray.init(); print('rayjob done')\""}
expect(200, "POST", f"/apis/v1/namespaces/{NS}/jobs",
       dict(job_spec, name="smoke-selector-job", clusterSelector={"ray.io/cluster": cluster}))


def rayjob_finished(name):
    def check():
        answer = expect(200, "GET", f"/apis/v1/namespaces/{NS}/jobs/{name}")
        return answer.get("jobStatus") in ("SUCCEEDED", "FAILED", "STOPPED") and answer, answer
    return check


answer = wait("RayJob smoke-selector-job finished", rayjob_finished("smoke-selector-job"), timeout=600)
if answer["jobStatus"] != "SUCCEEDED":
    fail(f"smoke-selector-job: {answer}")
expect(200, "DELETE", f"/apis/v1/namespaces/{NS}/jobs/smoke-selector-job")

# The first cluster goes, and its pods with it (room for the next clusters).
expect(200, "DELETE", f"/apis/v1/namespaces/{NS}/clusters/{cluster}")
wait(f"pods of {cluster} gone", lambda: (lambda p: (not p, p))(pods(f"ray.io/cluster={cluster}")),
     timeout=300)

# 6. A RayJob with its own cluster, which goes away when the job says so.
expect(200, "POST", f"/apis/v1/namespaces/{NS}/jobs", dict(
    job_spec, name="smoke-own-job", shutdownAfterJobFinishes=True,
    clusterSpec={"headGroupSpec": group("head", "default-template")}))
answer = wait("RayJob smoke-own-job finished", rayjob_finished("smoke-own-job"), timeout=900)
if answer["jobStatus"] != "SUCCEEDED":
    fail(f"smoke-own-job: {answer}")


def own_cluster_gone():
    clusters = json.loads(kubectl("get", "rayclusters.ray.io", "-n", NS, "-o", "json"))["items"]
    owned = [c["metadata"]["name"] for c in clusters
             if any(o.get("name") == "smoke-own-job" for o in c["metadata"].get("ownerReferences", []))]
    return not owned, owned


wait("the RayJob's own cluster deleted after the job", own_cluster_gone, timeout=300)
expect(200, "DELETE", f"/apis/v1/namespaces/{NS}/jobs/smoke-own-job")

# 7. A RayService serving an application from a ConfigMap mounted into its pods.
app = ("from ray import serve\n\n\n@serve.deployment(ray_actor_options={'num_cpus': 0.1})\n"
       "class Hello:\n    def __call__(self, request):\n        return 'hello from the smoke service'\n\n\n"
       "app = Hello.bind()\n")
subprocess.run([KUBECTL, "create", "configmap", "smoke-app", "-n", NS, "--from-literal", f"smoke_app.py={app}"],
               check=True, capture_output=True)
mount = {"volumes": [{"name": "app", "mountPath": "/home/ray/smoke", "volumeType": "CONFIGMAP",
                      "source": "smoke-app"}],
         "environment": {"values": {"PYTHONPATH": "/home/ray/smoke"}}}
serve_config = ("applications:\n- name: hello\n  import_path: smoke_app:app\n  route_prefix: /\n")
service = "smoke-service"
expect(200, "POST", f"/apis/v1/namespaces/{NS}/services", {
    "name": service, "namespace": NS, "user": "smoke", "version": RAY_VERSION,
    "serveConfigV2": serve_config,
    "clusterSpec": {"headGroupSpec": group("head", "default-template", extra=mount)},
})


def service_ready():
    status = json.loads(kubectl("get", "rayservices.ray.io", service, "-n", NS, "-o", "json")).get("status", {})
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    return ready, status


wait(f"RayService {service} ready", service_ready, timeout=900)
answer = expect(200, "GET", f"/apis/v1/namespaces/{NS}/services/{service}")
log(f"V1 RayService status: {json.dumps(answer.get('rayServiceStatus', {}))[:400]}")
# The Serve application through the head's serve Service (reached through the Kubernetes
# service proxy, as the node's own network is not the test's to use).
served = kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/services/{service}-serve-svc:serve/proxy/")
if "hello from the smoke service" not in served:
    fail(f"serve application answered {served!r}")
log("the Serve application answers through the serve Service")

# 8. Deleting everything removes the pods.
expect(200, "DELETE", f"/apis/v1/namespaces/{NS}/services/{service}")
expect(200, "DELETE", f"/apis/v1/namespaces/{NS}/compute_templates/default-template")
subprocess.run([KUBECTL, "delete", "configmap", "smoke-app", "-n", NS], check=True, capture_output=True)
wait("every Ray pod gone", lambda: (lambda p: (not p, p))(pods("ray.io/node-type")), timeout=300)

# 9. The chart's `security`, now that nothing else runs.
security_checks()
log("passed")
