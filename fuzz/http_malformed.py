"""HTTP requests schemathesis does not make: malformed JSON bodies and hostile path segments.

Schemathesis sends well-formed JSON and encodes path parameters; this sends bytes as they are, with
a plain HTTP client, to every operation of the server's Swagger document:

- `body`: to every operation with a body, bodies that are not JSON or not the message (truncated,
  trailing data, invalid UTF-8, a byte-order mark, duplicate keys, 100,000-deep nesting, numbers
  out of range, wrong types, other content types, a body over `--http-max-body-bytes`);
- `sparse`: a valid body with one field at a time, at any depth, left out or emptied;
- `enum`: a valid body holding one object of each kind that has enum fields (a volume, an
  environment source...) with only one enum field set, for each value;
- `path`: to every operation with path parameters, each parameter in turn set to a hostile value
  (percent-encoded `#`, `?`, `/`, `%`, spaces, control characters, `.`/`..`, 300 characters,
  a fixture's name with `#zzz` or `?dryRun=All` after it), the others pointing at the fixtures;
- `query`: to every operation with query parameters (`continue`, `limit`, `pageToken`,
  `pageSize`), each in turn malformed, out of range, repeated, or 64 KiB and 3 MiB long.

Judged like the generated requests (no 5xx, `application/json` answers, nothing stored by a
failed request), and also: a body that is not valid JSON (duplicate keys included) answers 400, an
oversized body 413, a name the server must refuse (names.py) never succeeds, and an error message
is at most 4 KiB (the README's bound).

Usage: http_malformed.py SWAGGER_URL HTTP_URL   (environment: KUBERAY_FUZZ_KUBE, KUBERAY_FUZZ_OUT)
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import sys
import urllib.parse
import urllib.request

import fixtures as fx
import names
from store import Store

OUT = os.environ["KUBERAY_FUZZ_OUT"]
MAX_BODY = int(os.environ.get("KUBERAY_FUZZ_MAX_BODY", str(4 * 1024 * 1024)))

FIXTURE_PARAMS = {"namespace": fx.NAMESPACE, "clustername": fx.CLUSTER, "submissionid": fx.SUBMISSION}
FIXTURE_BY_COLLECTION = {
    "compute_templates": fx.TEMPLATE,
    "clusters": fx.CLUSTER,
    "jobs": fx.JOB,
    "services": fx.SERVICE,
}
SERVE_CONFIG = "applications:\n  - name: app\n    import_path: app:main\n"


def valid_body(method: str, path: str, n: int) -> dict:
    ns, fresh = fx.NAMESPACE, f"fzm-{n}"
    spec = fx.cluster_spec()
    if path.endswith("/compute_templates"):
        return {"name": fresh, "namespace": ns, "cpu": 1, "memory": 1}
    if path.endswith("/clusters"):
        return {"name": fresh, "namespace": ns, "user": "fuzz", "clusterSpec": spec}
    if path.endswith("/jobs"):
        return {"name": fresh, "namespace": ns, "user": "fuzz", "entrypoint": "echo fuzz", "clusterSpec": spec}
    if path.endswith("/services"):
        return {"name": fresh, "namespace": ns, "user": "fuzz", "serveConfigV2": SERVE_CONFIG, "clusterSpec": spec}
    if path.endswith("/services/{name}"):
        return {"name": fx.SERVICE, "namespace": ns, "user": "fuzz", "serveConfigV2": SERVE_CONFIG, "clusterSpec": spec}
    if path.endswith("/jobsubmissions/{clustername}"):
        return {"entrypoint": "echo fuzz", "submissionId": fresh}
    return {}


PLACEHOLDER = b"7777777"


def numeric_field(valid: dict):
    """A numeric field of the body and the body's JSON with PLACEHOLDER as its value."""
    v = json.loads(json.dumps(valid))
    if "cpu" in v:
        field, v["cpu"] = "cpu", 7777777
    elif "clusterSpec" in v and "serveConfigV2" in v:
        field, v["serviceUnhealthySecondThreshold"] = "serviceUnhealthySecondThreshold", 7777777
    elif "clusterSpec" in v and "entrypoint" in v:
        field, v["entrypointNumCpus"] = "entrypointNumCpus", 7777777
    elif "clusterSpec" in v:
        field = "clusterSpec.workerGroupSpec[0].replicas"
        v["clusterSpec"]["workerGroupSpec"][0]["replicas"] = 7777777
    elif "entrypoint" in v:
        field, v["entrypointNumCpus"] = "entrypointNumCpus", 7777777
    else:
        return None, b""
    return field, json.dumps(v).encode()


def body_cases(valid: dict):
    """(label, body bytes, content type, expected status or None) for an operation's body."""
    j = json.dumps(valid).encode()
    inner = j[1:-1]
    first_key = next(iter(valid), "name")
    yield "empty body", b"", "application/json", None
    yield "truncated JSON", j[: len(j) // 2], "application/json", 400
    yield "only an opening brace", b"{", "application/json", 400
    # The Go gateway decodes the first JSON value of a body and ignores what follows; so does ours.
    yield "trailing data", j + b" x", "application/json", None
    yield "two objects", j + j, "application/json", None
    yield "trailing comma", b"{" + inner + b",}", "application/json", 400
    yield "single quotes", b"{'name': 'x'}", "application/json", 400
    yield "bare word", b"nul", "application/json", 400
    yield "byte-order mark", b"\xef\xbb\xbf" + j, "application/json", None
    yield "invalid UTF-8 in a string", b'{"' + first_key.encode() + b'": "\xff\xfe"}', "application/json", 400
    yield "invalid UTF-8 outside strings", b"{\xff}", "application/json", 400
    yield "lone surrogate escape", b'{"' + first_key.encode() + b'": "\\ud800"}', "application/json", None
    yield "NUL in a string", b'{"' + first_key.encode() + b'": "a\\u0000b"}', "application/json", None
    yield "raw control character in a string", b'{"' + first_key.encode() + b'": "a\x01b"}', "application/json", 400
    yield "duplicate key", b"{" + inner + b', "' + first_key.encode() + b'": "dup"}', "application/json", 400
    yield "duplicate key, same value", b"{" + inner + b"," + inner + b"}", "application/json", 400
    if "clusterSpec" in valid:
        dup = json.dumps(valid).replace('"image": ', '"image": "a", "image": ', 1).encode()
        yield "duplicate key in a nested object", dup, "application/json", 400
    for depth in (1000, 100000):
        yield f"arrays nested {depth} deep", b"[" * depth + b"]" * depth, "application/json", 400
        yield f"objects nested {depth} deep", b'{"a":' * depth + b"1" + b"}" * depth, "application/json", None
        yield f"unclosed nesting {depth} deep", b"[" * depth, "application/json", 400
    yield "top-level array", b"[]", "application/json", 400
    yield "top-level string", b'"x"', "application/json", 400
    yield "top-level number", b"123", "application/json", 400
    yield "top-level null", b"null", "application/json", None
    yield "unknown field", b"{" + inner + b', "zzzUnknown": {"a": [1, 2]}}', "application/json", None
    for field, value, label in (
        (first_key, 5, "a number for a string"),
        (first_key, [], "an array for a string"),
        (first_key, {}, "an object for a string"),
        (first_key, None, "null for a string"),
        (first_key, True, "a boolean for a string"),
    ):
        yield f"{label} ({field})", json.dumps({**valid, field: value}).encode(), "application/json", (
            None if value is None else 400
        )
    field, holder = numeric_field(valid)
    if field:
        for raw, label in (
            (b"1e999", "1e999"),
            (b"-1", "-1"),
            (b"4294967296", "2^32"),
            (b"18446744073709551616", "2^64"),
            (b"1.5", "1.5"),
            (b'"1"', 'the string "1"'),
            (b'"x"', 'the string "x"'),
            (b"true", "true"),
            (b"NaN", "NaN"),
            (b"-0", "-0"),
            (b"1" * 400, "a 400-digit number"),
        ):
            yield f"{field} = {label}", holder.replace(PLACEHOLDER, raw), "application/json", None
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""):
        yield f"content type {ctype or '(none)'}", j, ctype, None
    yield "content type application/json with a charset", j, "application/json; charset=utf-16", None
    yield f"a body over {MAX_BODY} bytes", b'{"name": "' + b"a" * (MAX_BODY + 16) + b'"}', "application/json", 413


def sparse_cases(make):
    """(label, body) with one field of a valid body (`make()`, fresh names each time), at any
    depth, left out or emptied."""

    def walk(obj, path):
        for k in list(obj):
            yield path + (k,)
            v = obj[k]
            if isinstance(v, dict):
                yield from walk(v, path + (k,))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                yield from walk(v[0], path + (k, 0))

    for path in walk(make(), ()):
        for how in ("left out", "emptied"):
            body = make()
            holder = body
            for step in path[:-1]:
                holder = holder[step]
            last = path[-1]
            if how == "left out":
                del holder[last]
            else:
                holder[last] = type(holder[last])()
            yield f"{'.'.join(map(str, path))} {how}", json.dumps(body).encode()


def enum_cases(doc: dict, schema: dict, make):
    """(label, body): for each object type reachable from the body's schema (at the first place it
    is met) that has enum fields, an instance holding only one of them, with each of its values,
    put into the valid body: a volume that is only `EPHEMERAL`, an environment source that is only
    `RESOURCEFIELD`... (enum fields of the body itself are set in it)."""
    defs = doc.get("definitions", {})

    def resolve(sch):
        seen = set()
        while isinstance(sch, dict) and "$ref" in sch and sch["$ref"] not in seen:
            seen.add(sch["$ref"])
            sch = defs.get(sch["$ref"].split("/")[-1], {})
        return sch or {}

    found = {}  # definition name -> [(property, "obj" | "arr" | "map"), ...] from the body

    def walk(sch, steps, depth):
        for key, prop in resolve(sch).get("properties", {}).items():
            if "$ref" in prop:
                ref, kind = prop["$ref"], "obj"
            elif "$ref" in prop.get("items", {}):
                ref, kind = prop["items"]["$ref"], "arr"
            elif "$ref" in (prop.get("additionalProperties") or {}):
                ref, kind = prop["additionalProperties"]["$ref"], "map"
            else:
                continue
            name = ref.split("/")[-1]
            if name in found or "enum" in defs.get(name, {}) or depth >= 6:
                continue
            found[name] = steps + [(key, kind)]
            walk({"$ref": ref}, steps + [(key, kind)], depth + 1)

    def place(body: dict, steps, obj: dict) -> None:
        holder = body
        for i, (key, kind) in enumerate(steps):
            last = i == len(steps) - 1
            if kind == "obj":
                if last:
                    holder[key] = obj
                    return
                if not isinstance(holder.get(key), dict):
                    holder[key] = {}
                holder = holder[key]
            elif kind == "arr":
                if not isinstance(holder.get(key), list):
                    holder[key] = []
                if last:
                    holder[key].insert(0, obj)
                    return
                if not holder[key] or not isinstance(holder[key][0], dict):
                    holder[key].insert(0, {})
                holder = holder[key][0]
            else:
                if not isinstance(holder.get(key), dict):
                    holder[key] = {}
                if last:
                    holder[key]["fuzz-key"] = obj
                    return
                holder = holder[key].setdefault("fuzz-key", {})

    walk(schema, [], 0)
    targets = [("", [], resolve(schema))] + [
        (name, steps, resolve({"$ref": f"#/definitions/{name}"})) for name, steps in found.items()
    ]
    for name, steps, sch in targets:
        for field, prop in sch.get("properties", {}).items():
            for value in resolve(prop).get("enum") or []:
                body = make()
                if steps:
                    place(body, steps, {field: value})
                else:
                    body[field] = value
                where = ".".join(k + ("[0]" if kind == "arr" else "{}" if kind == "map" else "") for k, kind in steps)
                yield f"{where or 'body'} = {{{field}: {value}}} only", json.dumps(body).encode()


HOSTILE_SEGMENTS = [
    "a#b", "?watch=true", "a?b", "a/b", "%", "%zz", "a b", "\x00", "a\nb", "\x7f", "\u202e", "A", "-a",
    "a_b", "a" * 300, "a.b", "..", ".", "\u00e4", "'", "*",
]  # fmt: skip


def path_cases(path_template: str, params: list[str]):
    """(label, path, must fail, value) with one path parameter hostile at a time."""
    collection = path_template.split("/")[-2] if path_template.endswith("{name}") else None
    base = dict(FIXTURE_PARAMS)
    if "name" in params:
        base["name"] = FIXTURE_BY_COLLECTION.get(collection, fx.CLUSTER)
    for p in params:
        values = list(HOSTILE_SEGMENTS) + [base[p] + s for s in ("#zzz", "?dryRun=All", "/status", " ")]
        for v in values:
            vals = dict(base, **{p: v})
            path = path_template
            for k, val in vals.items():
                path = path.replace("{" + k + "}", urllib.parse.quote(val, safe=""))
            label = f"{p} = {v[:40]!r}" + (f" ({len(v)} chars)" if len(v) > 40 else "")
            yield label, path, names.breaks_rule(p, v), v


HOSTILE_QUERY_VALUES = [
    "", "-1", "0", "abc", "1.5", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
    "%", "%zz", "a#b", "\x00", "a\nb", "\u202e", "eyJ2IjoxfQ", "a" * 300, "n" * 65536, "n" * (3 * 1024 * 1024),
]  # fmt: skip


def query_cases(path_template: str, query: list[str]):
    """(label, path, value) with one query parameter hostile at a time (path parameters: the
    fixtures')."""
    path = path_template
    for k, v in FIXTURE_PARAMS.items():
        path = path.replace("{" + k + "}", v)
    for q in query:
        for v in HOSTILE_QUERY_VALUES:
            label = f"{q} = {v[:40]!r}" + (f" ({len(v)} chars)" if len(v) > 40 else "")
            yield label, f"{path}?{urllib.parse.urlencode({q: v})}", v
        yield f"{q} given twice", f"{path}?{q}=1&{q}=2", ""


def main() -> int:
    swagger_url, http_url = sys.argv[1:3]
    with urllib.request.urlopen(swagger_url, timeout=60) as r:
        doc = json.load(r)
    u = urllib.parse.urlsplit(http_url)
    store = Store(os.environ["KUBERAY_FUZZ_KUBE"], os.path.join(OUT, "fixtures.json"))
    conn = [None]
    counts = collections.Counter()
    answers = collections.Counter()
    failures = open(os.path.join(OUT, "http-malformed-failures.jsonl"), "w", encoding="utf-8")
    n = 0

    def send(method: str, path: str, body: bytes | None, ctype: str):
        headers = {"Content-Type": ctype} if ctype else {}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            try:
                if conn[0] is None:
                    conn[0] = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                conn[0].putrequest(method, path, skip_accept_encoding=True)
                for k, v in headers.items():
                    conn[0].putheader(k, v)
                conn[0].endheaders(body)
                r = conn[0].getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    conn[0].close()
                    conn[0] = None
                return r.status, r.getheader("Content-Type", ""), data
            except (OSError, http.client.HTTPException) as e:
                if conn[0] is not None:
                    conn[0].close()
                conn[0] = None
                if attempt == 2:
                    return 0, "", f"no answer: {e}".encode()
        raise AssertionError("unreachable")

    def judge(kind, label, op, method, path, body, ctype, expected, must_fail: bool, value: str = "") -> None:
        before = store.before()
        status, rtype, data = send(method, path, body, ctype)
        counts["requests"] += 1
        counts[f"{status // 100}xx"] += 1
        try:
            msg_full = str(json.loads(data).get("message", ""))
        except (ValueError, AttributeError):
            msg_full = data.decode("utf-8", "replace")
        msg = msg_full[:60]
        answers[(op, kind, status, msg)] += 1
        problems = []
        if status == 0:
            problems.append(data.decode())
        elif status >= 500:
            problems.append(f"server error {status}")
        if status and data and not 300 <= status < 400 and rtype.split(";")[0].strip().lower() != "application/json":
            problems.append(f"content type {rtype!r}, documented: application/json")
        if expected is not None and status != expected:
            problems.append(f"answered {status}, expected {expected}")
        if must_fail and 200 <= status < 300:
            problems.append("succeeded with a name the server must refuse")
        if len(msg_full.encode("utf-8", "surrogateescape")) > 4096:
            problems.append(f"error message of {len(msg_full.encode('utf-8', 'surrogateescape'))} bytes (more than 4096)")
        change = store.after(before, not 200 <= status < 300, destructive=method == "DELETE")
        if change is not None:
            problems.append("failed request changed the store: " + change)
        if problems:
            counts["failed_requests"] += 1
            shown = body if body is None or len(body) <= 300 else body[:300] + f"... ({len(body)} bytes)".encode()
            failures.write(
                json.dumps(
                    {
                        "surface": "http-malformed",
                        "operation": op,
                        "case": f"{kind}: {label}",
                        "request": f"{method} {path[:300]}",
                        "content_type_sent": ctype,
                        "body": None if shown is None else shown.decode("utf-8", "backslashreplace"),
                        "status": status,
                        "content_type": rtype,
                        "answer": data[:400].decode("utf-8", "backslashreplace"),
                        "message": msg_full[:400],
                        "problems": problems,
                    }
                )
                + "\n"
            )
            failures.flush()

    for path_template, item in sorted(doc["paths"].items()):
        for method, spec in sorted(item.items()):
            method = method.upper()
            op = f"{method} {path_template}"
            params = [p["name"] for p in spec.get("parameters", []) if p.get("in") == "path"]
            has_body = any(p.get("in") == "body" for p in spec.get("parameters", []))
            store.settle()
            fixture_path = path_template
            for p in params:
                fixture_path = fixture_path.replace(
                    "{" + p + "}", FIXTURE_PARAMS.get(p) or FIXTURE_BY_COLLECTION.get(path_template.split("/")[-2], "")
                )
            if has_body:
                n += 1
                for label, body, ctype, expected in body_cases(valid_body(method, path_template, n)):
                    judge("body", label, op, method, fixture_path, body, ctype, expected, False)
                counter = [n]

                def make(method=method, path_template=path_template):
                    counter[0] += 1
                    return valid_body(method, path_template, counter[0])

                for label, body in sparse_cases(make):
                    judge("sparse", label, op, method, fixture_path, body, "application/json", None, False)
                schema = next(p["schema"] for p in spec["parameters"] if p.get("in") == "body")
                for label, body in enum_cases(doc, schema, make):
                    judge("enum", label, op, method, fixture_path, body, "application/json", None, False)
                n = counter[0]
            valid = json.dumps(valid_body(method, path_template, n)).encode() if has_body else None
            for label, path, must_fail, value in path_cases(path_template, params):
                ctype = "application/json" if has_body else ""
                judge("path", label, op, method, path, valid, ctype, None, must_fail, value)
            query = [p["name"] for p in spec.get("parameters", []) if p.get("in") == "query"]
            for label, path, value in query_cases(path_template, query):
                judge("query", label, op, method, path, None, "", None, False, value)
    store.settle()
    failures.close()
    with open(os.path.join(OUT, "http-malformed-counts.json"), "w", encoding="utf-8") as f:
        json.dump({"totals": dict(counts)}, f, indent=1)
    with open(os.path.join(OUT, "http-malformed-answers.json"), "w", encoding="utf-8") as f:
        json.dump([[*k, v] for k, v in sorted(answers.items())], f, indent=0)
    print(f"http-malformed: {counts['requests']} requests, {counts['failed_requests']} failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
