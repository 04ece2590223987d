#!/usr/bin/env python3
"""The seed's smoke test against our chart installed in a cluster where pods run (run by
e2e/smoke, which brings the cluster up and installs the chart first).

Through the server's NodePort (HTTP 31888 on 127.0.0.1) only, as a user would: the V1 API, job
submissions through the in-cluster dashboard address, and V2's Kubernetes service proxy. What it
checks beside the API (pods running, pods gone) it reads with kubectl. Exits non-zero on the
first failure, saying what it waited for and what it saw.

Usage: e2e/smoke.py KUBECTL RAY_IMAGE
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

KUBECTL, RAY_IMAGE = sys.argv[1], sys.argv[2]
API = "http://127.0.0.1:31888"
NS = "ray-system"
RAY_VERSION = RAY_IMAGE.rsplit(":", 1)[1]
START = time.monotonic()


def log(text):
    print(f"{time.strftime('%H:%M:%S')} smoke: [{time.monotonic() - START:6.1f}s] {text}",
          file=sys.stderr, flush=True)


def fail(text):
    log(f"FAILED: {text}")
    sys.exit(1)


def call(method, path, body=None, raw=False):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(API + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
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


def expect(status, method, path, body=None, raw=False):
    got, answer = call(method, path, body, raw)
    if got != status:
        fail(f"{method} {path}: {got}, expected {status}: {str(answer)[:2000]}")
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
log("passed")
