#!/usr/bin/env python3
"""Reads the requests in a `kubectl proxy -v=6` log (stdin), in either of client-go's formats
("GET https://... 403 Forbidden in 2 milliseconds", or the structured
`"Response" verb="GET" url="https://..." status="403 Forbidden"`). Run by deploy/chart/test:

  requests.py count           the number of requests
  requests.py refused         the refused ones (403): count, method and path, one line each
  requests.py outside NS      the requests for resources outside namespace NS (cluster-wide or
                              in another namespace): method and path, one line each
  requests.py summary ROLE    the requests as RBAC (group, resource, verb) triples, compared with
                              the rules of a Role or ClusterRole (`kubectl get -o json` in the
                              file ROLE): which rules they used, which they did not
"""

import json
import re
import sys
from urllib.parse import parse_qs, urlsplit

PLAIN = re.compile(r"round_trippers\.go:\d+\] ([A-Z]+) (https?://\S+) (\d{3}) ")
STRUCTURED = re.compile(
    r'round_trippers\.go:\d+\] "Response" verb="([A-Z]+)" url="([^"]+)" status="(\d{3})')
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def triple(method, url):
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if segments[:1] == ["api"] and len(segments) >= 2:
        group, rest = "", segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 3:
        group, rest = segments[1], segments[3:]
    else:
        return None  # /readyz, /version, discovery
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    if not rest:
        return None
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    if sub:
        resource = f"{resource}/{sub}"
    query = parse_qs(parts.query)
    if method in ("GET", "HEAD"):
        if name:
            verb = "get"
        elif query.get("watch", ["false"])[0] not in ("false", "0"):
            verb = "watch"
        else:
            verb = "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = VERBS.get(method, method.lower())
    return group, resource, verb


requests = []
for line in sys.stdin:
    match = PLAIN.search(line) or STRUCTURED.search(line)
    if match:
        requests.append((match.group(1), match.group(2), match.group(3)))

mode = sys.argv[1]
if mode == "count":
    print(len(requests))
    sys.exit(0)
if mode == "refused":
    refused = {}
    for method, url, status in requests:
        if status == "403":
            key = f"{method} {urlsplit(url).path}"
            refused[key] = refused.get(key, 0) + 1
    for key, count in sorted(refused.items()):
        print(f"{count:6d} {key}")
    sys.exit(0)
if mode == "outside":
    namespace = sys.argv[2]
    for method, url, _ in requests:
        path = urlsplit(url).path
        # Resource requests only: /readyz, /version and discovery are not in any namespace.
        if triple(method, url) and f"/namespaces/{namespace}/" not in path:
            print(f"{method} {path}")
    sys.exit(0)
assert mode == "summary", f"unknown mode {mode}"

used = {}
for method, url, _ in requests:
    found = triple(method, url)
    if found:
        used[found] = used.get(found, 0) + 1

role = json.load(open(sys.argv[2]))
granted = {
    (g, r, v)
    for rule in role.get("rules", [])
    for g in rule.get("apiGroups", [])
    for r in rule.get("resources", [])
    for v in rule.get("verbs", [])
}


def show(triples):
    return ", ".join(f"{g or 'core'}/{r} {v}" for g, r, v in sorted(triples)) or "none"


print(f"requests by (group/resource verb): "
      + ", ".join(f"{g or 'core'}/{r} {v} x{n}" for (g, r, v), n in sorted(used.items())))
print(f"rules of {role['kind']} {role['metadata']['name']} used: {show(granted & set(used))}")
print(f"rules not used by these suites: {show(granted - set(used))}")
outside = set(used) - granted
print(f"requests outside the role (the test-only fixture role's): {show(outside)}")
