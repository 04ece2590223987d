"""The embedded store, seen through its Kubernetes API (`--embedded-kube-listen`), for the fuzzers.

What "nothing stored" means for a request that failed (4xx, non-OK): no object of the store was
created, modified or deleted because of it. The store has one revision counter that every write
moves (the `resourceVersion` of every list answer; each object carries the revision of its last
write), so the check is one small GET after each answer, compared with the revision before the
request (the revision after the previous answer: the fuzzers send one request at a time and nothing
else writes). Only when it moved after a failed request do we list every kind of object the store
serves, to name what changed: objects whose resourceVersion is newer than the revision before the
request (created or modified by it) and fixtures that are gone (deleted by it).

Requests that succeed may write. What they added is deleted again, and fixtures they deleted or
changed are restored, by `settle()`: after every few successful writes, after a successful delete
or update, and at the end of each batch, so that every run sees the same store at the same point.
"""

from __future__ import annotations

import copy
import http.client
import json
import urllib.parse

# Every collection the embedded store serves (its discovery documents list these kinds).
COLLECTIONS = [
    ("/api/v1", "namespaces", False),
    ("/api/v1", "configmaps", True),
    ("/api/v1", "secrets", True),
    ("/api/v1", "services", True),
    ("/api/v1", "pods", True),
    ("/api/v1", "events", True),
    ("/apis/ray.io/v1", "rayclusters", True),
    ("/apis/ray.io/v1", "rayjobs", True),
    ("/apis/ray.io/v1", "rayservices", True),
]
PREFIX = {resource: prefix for prefix, resource, _ in COLLECTIONS}
SETTLE_EVERY = 20  # successful writes between two clean-ups


class StoreError(Exception):
    pass


def _q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def object_path(resource: str, ns: str, name: str) -> str:
    if ns:
        return f"{PREFIX[resource]}/namespaces/{_q(ns)}/{resource}/{_q(name)}"
    return f"{PREFIX[resource]}/{resource}/{_q(name)}"


class Store:
    def __init__(self, base_url: str, fixtures_file: str | None = None) -> None:
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.conn: http.client.HTTPConnection | None = None
        self.known_rev: int | None = None  # the revision after the last answer
        self.dirty = 0  # successful writes since the last clean-up
        # (resource, namespace, name) -> the object as it was when the fixtures were made
        self.fixtures: dict = {}
        if fixtures_file:
            with open(fixtures_file, encoding="utf-8") as f:
                self.fixtures = {tuple(k): v for k, v in json.load(f)}

    # -- plain HTTP to the embedded Kubernetes API --------------------------------------------
    def request(self, method: str, path: str, body=None, ctype="application/json"):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": ctype} if data is not None else {}
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.conn = None
                if attempt == 2:
                    raise StoreError(f"{method} {path}: {e}") from e
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict:
        status, body = self.request("GET", path)
        if status != 200:
            raise StoreError(f"GET {path}: {status} {str(body)[:200]}")
        return body

    def revision(self) -> int:
        return int(self.get("/api/v1/namespaces")["metadata"]["resourceVersion"])

    def objects(self) -> dict:
        """(resource, namespace, name) -> object, for every object in the store."""
        out = {}
        for prefix, resource, _ in COLLECTIONS:
            for item in self.get(f"{prefix}/{resource}").get("items", []):
                md = item.get("metadata", {})
                out[(resource, md.get("namespace", ""), md.get("name", ""))] = item
        return out

    # -- the per-request check -----------------------------------------------------------------
    def before(self) -> int:
        if self.known_rev is None:
            self.known_rev = self.revision()
        return self.known_rev

    def after(self, before_rev: int, failed: bool, destructive: bool = False) -> str | None:
        """Call after each answer. Returns what changed when a failed request changed the store."""
        rev = self.revision()
        self.known_rev = rev
        if rev == before_rev:
            return None
        if failed:
            return self.describe_change(before_rev)
        self.dirty += 1
        if destructive or self.dirty >= SETTLE_EVERY:
            self.settle()
        return None

    def describe_change(self, before_rev: int) -> str:
        objs = self.objects()
        written = sorted(k for k, o in objs.items() if int(o["metadata"].get("resourceVersion", 0)) > before_rev)
        gone = sorted(k for k in self.fixtures if k not in objs)
        parts = []
        if written:
            parts.append("written: " + ", ".join(f"{r} {ns}/{n}" for r, ns, n in written[:8]))
        if gone:
            parts.append("deleted: " + ", ".join(f"{r} {ns}/{n}" for r, ns, n in gone[:8]))
        # Leave the store as the fixtures say, so the next requests are judged on their own.
        self.settle()
        return "; ".join(parts) or "the store's revision moved, no object shows it (written and deleted again?)"

    # -- clean-up --------------------------------------------------------------------------------
    def settle(self) -> None:
        """Delete every object that is not a fixture; restore fixtures that are gone or changed."""
        objs = self.objects()
        for key, obj in objs.items():
            resource, ns, name = key
            if resource == "namespaces":
                continue
            if key not in self.fixtures:
                self.request("DELETE", object_path(resource, ns, name))
        for key, saved in self.fixtures.items():
            resource, ns, name = key
            if resource == "namespaces":
                continue
            now = objs.get(key)
            if now is not None and now["metadata"].get("resourceVersion") == saved["metadata"].get("resourceVersion"):
                continue
            if now is not None:
                self.request("DELETE", object_path(resource, ns, name))
            self.recreate(key, saved)
        self.dirty = 0
        self.known_rev = self.revision()
        # Fixture objects got new resourceVersions: remember them.
        objs = self.objects()
        for key in self.fixtures:
            if key in objs:
                self.fixtures[key] = objs[key]

    def recreate(self, key, saved: dict) -> None:
        resource, ns, name = key
        obj = copy.deepcopy(saved)
        md = obj["metadata"]
        for field in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            md.pop(field, None)
        status = obj.pop("status", None)
        coll = f"{PREFIX[resource]}/namespaces/{_q(ns)}/{resource}"
        code, body = self.request("POST", coll, obj)
        if code not in (200, 201):
            raise StoreError(f"restoring fixture {key}: {code} {str(body)[:300]}")
        if status and resource.startswith("ray"):
            code, body = self.request(
                "PATCH", object_path(resource, ns, name) + "/status", {"status": status}, "application/merge-patch+json"
            )
            if code != 200:
                raise StoreError(f"restoring the status of fixture {key}: {code} {str(body)[:300]}")

    def save_fixtures(self, path: str) -> None:
        objs = self.objects()
        with open(path, "w", encoding="utf-8") as f:
            json.dump([[list(k), v] for k, v in sorted(objs.items())], f)
