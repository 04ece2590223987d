"""Objects every fuzz run starts from, so that generated requests can reach more than "not found".

In namespace `default`: the compute template `fuzz-template`, the cluster `fuzz-cluster` (marked
`ready` through the embedded Kubernetes API, as the operator would, so job submissions reach the
stand-in dashboard), the job `fuzz-job` and the service `fuzz-service`, all created through the
V1 HTTP API. The store's objects are then saved (KUBERAY_FUZZ_OUT/fixtures.json); the fuzzers
restore them whenever a successful request deleted or changed one (store.Store.settle).

Usage: fixtures.py HTTP_URL KUBE_URL OUT_FILE
"""

from __future__ import annotations

import json
import sys
import urllib.request

from store import Store

NAMESPACE = "default"
TEMPLATE = "fuzz-template"
CLUSTER = "fuzz-cluster"
JOB = "fuzz-job"
SERVICE = "fuzz-service"
SUBMISSION = "fuzz-submission"  # always known to fake_dashboard.py
IMAGE = "rayproject/ray:2.46.0"


def cluster_spec() -> dict:
    return {
        "headGroupSpec": {
            "computeTemplate": TEMPLATE,
            "image": IMAGE,
            "rayStartParams": {"dashboard-host": "0.0.0.0"},
        },
        "workerGroupSpec": [
            {
                "groupName": "small",
                "computeTemplate": TEMPLATE,
                "image": IMAGE,
                "replicas": 1,
                "minReplicas": 0,
                "maxReplicas": 2,
                "rayStartParams": {},
            }
        ],
    }


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"fixtures: POST {url}: {e.code} {e.read()[:500]!r}") from e


def main() -> None:
    http, kube, out = sys.argv[1:4]
    base = f"{http}/apis/v1/namespaces/{NAMESPACE}"
    post(f"{base}/compute_templates", {"name": TEMPLATE, "namespace": NAMESPACE, "cpu": 1, "memory": 1})
    post(f"{base}/clusters", {"name": CLUSTER, "namespace": NAMESPACE, "user": "fuzz", "clusterSpec": cluster_spec()})
    post(
        f"{base}/jobs",
        {
            "name": JOB,
            "namespace": NAMESPACE,
            "user": "fuzz",
            "entrypoint": "echo fuzz",
            "clusterSelector": {"ray.io/cluster": CLUSTER},
        },
    )
    post(
        f"{base}/services",
        {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "user": "fuzz",
            "serveConfigV2": "applications:\n  - name: app\n    import_path: app:main\n",
            "clusterSpec": cluster_spec(),
        },
    )
    store = Store(kube)
    code, body = store.request(
        "PATCH",
        f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayclusters/{CLUSTER}/status",
        {"status": {"state": "ready"}},
        "application/merge-patch+json",
    )
    if code != 200:
        raise SystemExit(f"fixtures: marking {CLUSTER} ready: {code} {str(body)[:300]}")
    store.save_fixtures(out)


if __name__ == "__main__":
    main()
