#!/usr/bin/env python3
"""Checks a server restricted to one namespace (`--namespace`, the chart's singleNamespaceInstall)
through its HTTP port: V1 and V2 calls in that namespace and the list-all calls succeed; calls for
another namespace, and V2 calls across all namespaces, are refused with 403. Run by
deploy/chart/test with the server's URL and its namespace; exits non-zero on the first failure.
"""

import json
import sys
import urllib.error
import urllib.request

base, served = sys.argv[1], sys.argv[2]
other = "default"


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode(errors="replace")


def expect(status, method, path, body=None):
    got, answer = call(method, path, body)
    if got != status:
        sys.exit(f"{method} {path}: {got}, expected {status}: {answer}")
    print(f"  {method} {path}: {got}", file=sys.stderr)
    return answer


template = {"name": "base", "namespace": served, "cpu": 1, "memory": 1}
expect(200, "POST", f"/apis/v1/namespaces/{served}/compute_templates", template)
listed = expect(200, "GET", "/apis/v1/compute_templates")
assert [t["namespace"] for t in listed["computeTemplates"]] == [served], listed
cluster = {
    "name": "single",
    "namespace": served,
    "user": "test",
    "clusterSpec": {
        "headGroupSpec": {
            "computeTemplate": "base",
            "image": "rayproject/ray:2.41.0",
            "rayStartParams": {"dashboard-host": "0.0.0.0"},
        }
    },
}
expect(200, "POST", f"/apis/v1/namespaces/{served}/clusters", cluster)
expect(200, "GET", f"/apis/v1/namespaces/{served}/clusters/single")
for path, field in [
    ("/apis/v1/clusters", "clusters"),
    ("/apis/v1/jobs", "jobs"),
    ("/apis/v1/services", "services"),
]:
    answer = expect(200, "GET", path)
    assert all(item["namespace"] == served for item in answer.get(field, [])), answer
expect(200, "GET", f"/apis/ray.io/v1/namespaces/{served}/rayclusters")
expect(200, "GET", f"/apis/events.k8s.io/v1/namespaces/{served}/events")

for method, path in [
    ("GET", f"/apis/v1/namespaces/{other}/compute_templates"),
    ("GET", f"/apis/v1/namespaces/{other}/clusters/single"),
    ("DELETE", f"/apis/v1/namespaces/{other}/clusters/single"),
    ("GET", f"/apis/v1/namespaces/{other}/jobsubmissions/single"),
    ("GET", f"/apis/ray.io/v1/namespaces/{other}/rayclusters"),
    ("GET", "/apis/ray.io/v1/rayclusters"),
]:
    answer = expect(403, method, path)
    assert served in json.dumps(answer), answer

expect(200, "DELETE", f"/apis/v1/namespaces/{served}/clusters/single")
expect(200, "DELETE", f"/apis/v1/namespaces/{served}/compute_templates/base")
