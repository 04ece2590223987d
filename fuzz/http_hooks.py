"""Schemathesis hooks and checks for the HTTP fuzz run (loaded with SCHEMATHESIS_HOOKS=http_hooks).

Every request schemathesis sends passes through `before_call`/`after_call`, which
- steer three of every four requests towards objects that exist (schemathesis only knows that
  path parameters are strings, so on its own nearly every request stops at name validation): the
  namespace becomes `default`; then names in the path become the fixtures' (fixtures.py) and
  compute templates named in bodies `fuzz-template`; then the generated body is laid under what it
  needs to pass validation (fresh valid names, a head group), so that its other fields reach
  conversion and storage; everything else stays as generated (including negative data),
- count the request (by operation and status class),
- judge it: a 5xx answer, an answer with a body that is not `application/json` (the documents'
  only `produces`; redirects aside), a success for a path whose namespace or name breaks the server's
  name rules (names.py), or a failed answer (not 2xx) after which the embedded store changed, is a
  failure, written to $KUBERAY_FUZZ_OUT/http-failures.jsonl,
- clean up after successful writes (store.Store).
The check `nothing_stored_on_failure` makes schemathesis report the store violations too (it checks
the 5xx and the content type itself with `not_a_server_error` and `content_type_conformance`).
At exit the counts go to $KUBERAY_FUZZ_OUT/http-counts.json for fuzz/run's summary.
"""

from __future__ import annotations

import atexit
import collections
import json
import os

import schemathesis

import fixtures as fx
import names
from store import Store

OUT = os.environ["KUBERAY_FUZZ_OUT"]
STORE = Store(os.environ["KUBERAY_FUZZ_KUBE"], os.path.join(OUT, "fixtures.json"))

_counts: collections.Counter = collections.Counter()
_by_op: dict = collections.defaultdict(collections.Counter)
_answers: collections.Counter = collections.Counter()  # (operation, status, message start): how often
_state = {"n": 0, "op": None}
_before: dict = {}  # case.id -> store revision before its request
_violations: dict = {}  # case.id -> what changed in the store
_failures = open(os.path.join(OUT, "http-failures.jsonl"), "w", encoding="utf-8")

# The fixture each collection's {name} is pointed at, by path segment.
FIXTURE_BY_COLLECTION = {
    "compute_templates": fx.TEMPLATE,
    "clusters": fx.CLUSTER,
    "jobs": fx.JOB,
    "services": fx.SERVICE,
}


def _text(b, limit=400) -> str:
    if b is None:
        return ""
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    s = b[:limit].decode("utf-8", "backslashreplace")
    return s + (f"... ({len(b)} bytes)" if len(b) > limit else "")


def _message(content: bytes, limit: int = 60) -> str:
    try:
        msg = json.loads(content).get("message", "")
    except (ValueError, AttributeError):
        msg = content[:limit].decode("utf-8", "replace")
    return str(msg)[:limit]


def _templates_to_fixture(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("computeTemplate", "compute_template") and isinstance(v, str):
                value[k] = fx.TEMPLATE
            else:
                _templates_to_fixture(v)
    elif isinstance(value, list):
        for v in value:
            _templates_to_fixture(v)


def _head() -> dict:
    spec = fx.cluster_spec()
    del spec["workerGroupSpec"]  # generated worker groups are kept (their templates steered)
    return spec


# What a request needs to pass validation, laid over the generated body (mode 3), by operation.
def _valid_core(method: str, path: str, n: int) -> dict | None:
    ns, fresh = fx.NAMESPACE, f"fz-{n}"
    owner = {"namespace": ns, "user": "fuzz"}
    if method == "POST" and path.endswith("/compute_templates"):
        return {"name": fresh, "namespace": ns, "cpu": 1, "memory": 1}
    if method == "POST" and path.endswith("/clusters"):
        return {"name": fresh, **owner, "clusterSpec": _head()}
    if method == "POST" and path.endswith("/jobs"):
        return {"name": fresh, **owner, "entrypoint": "echo fuzz", "clusterSpec": _head()}
    if method == "POST" and path.endswith("/services"):
        return {"name": fresh, **owner, "serveConfigV2": SERVE_CONFIG, "clusterSpec": _head()}
    if method == "PUT" and path.endswith("/services/{name}"):
        return {"name": fx.SERVICE, **owner, "serveConfigV2": SERVE_CONFIG, "clusterSpec": _head()}
    if method == "POST" and path.endswith("/jobsubmissions/{clustername}"):
        return {"entrypoint": "echo fuzz", "submissionId": fresh}
    return None


SERVE_CONFIG = "applications:\n  - name: app\n    import_path: app:main\n"


def _overlay(generated: dict, core: dict) -> None:
    for k, v in core.items():
        if isinstance(v, dict) and isinstance(generated.get(k), dict):
            _overlay(generated[k], v)
        else:
            generated[k] = v


def _steer(case, n: int) -> None:
    """By n % 4: 0, as generated; 1, namespace `default`; 2, also the fixtures' names in the path
    and compute templates in the body; 3, also the generated body laid under what it needs to be
    valid, so that its other fields reach conversion and storage."""
    mode = n % 4
    if mode == 0:
        return
    params = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    body = case.body if isinstance(case.body, dict) else None
    method = case.operation.method.upper()
    path = case.operation.path
    if "namespace" in params:
        params["namespace"] = fx.NAMESPACE
    if body is not None and "namespace" in body:
        body["namespace"] = fx.NAMESPACE
    if mode == 1:
        return
    if "clustername" in params:
        params["clustername"] = fx.CLUSTER
    if "submissionid" in params:
        params["submissionid"] = fx.SUBMISSION
    if "name" in params:
        collection = path.split("/")[-2]
        params["name"] = FIXTURE_BY_COLLECTION.get(collection, params["name"])
    if body is None:
        return
    _templates_to_fixture(body)
    if mode == 3:
        core = _valid_core(method, path, n)
        if core is not None:
            _overlay(body, core)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    op = f"{case.operation.method.upper()} {case.operation.path}"
    if op != _state["op"]:
        _state["op"] = op
        STORE.settle()
    _state["n"] += 1
    _steer(case, _state["n"])
    _before[case.id] = STORE.before()


@schemathesis.hook
def after_call(ctx, case, response):
    status = response.status_code
    method = case.operation.method.upper()
    op = f"{method} {case.operation.path}"
    _counts["requests"] += 1
    _counts[f"{status // 100}xx"] += 1
    _by_op[op][f"{status // 100}xx"] += 1
    _answers[(op, status, _message(response.content))] += 1

    problems = []
    if status >= 500:
        problems.append(f"server error {status}")
    ctype = (response.headers.get("content-type") or [""])[0]
    if response.content and not 300 <= status < 400 and ctype.split(";")[0].strip().lower() != "application/json":
        problems.append(f"content type {ctype!r}, documented: application/json")
        _counts["wrong_content_type"] += 1
    failed = not 200 <= status < 300
    params = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    refused = [k for k, v in params.items() if names.breaks_rule(k, v)]
    if refused and not failed:
        problems.append(f"succeeded with a {'/'.join(refused)} the server must refuse")
        _counts["invalid_name_accepted"] += 1
    before = _before.pop(case.id, None)
    if before is not None:
        change = STORE.after(before, failed, destructive=method == "DELETE")
        if change is not None:
            msg = "failed request changed the store: " + change
            _violations[case.id] = msg
            problems.append(msg)
            _counts["store_changed_on_failure"] += 1
    if problems:
        _counts["failed_requests"] += 1
        req = response.request
        _failures.write(
            json.dumps(
                {
                    "surface": "http",
                    "operation": op,
                    "request": f"{req.method} {req.url}",
                    "content_type_sent": req.headers.get("Content-Type", ""),
                    "body": _text(req.body),
                    "status": status,
                    "content_type": ctype,
                    "answer": _text(response.content),
                    "message": _message(response.content, 400),
                    "problems": problems,
                }
            )
            + "\n"
        )
        _failures.flush()


@schemathesis.hook
def after_network_error(ctx, case, request):
    """No answer (timeout, connection closed): a failure too; the store is checked all the same."""
    op = f"{case.operation.method.upper()} {case.operation.path}"
    _counts["requests"] += 1
    _counts["no_answer"] += 1
    _counts["failed_requests"] += 1
    _by_op[op]["no answer"] += 1
    problems = ["no answer (timeout or connection error)"]
    before = _before.pop(case.id, None)
    if before is not None:
        change = STORE.after(before, True)
        if change is not None:
            problems.append("failed request changed the store: " + change)
    _failures.write(
        json.dumps(
            {
                "surface": "http",
                "operation": op,
                "request": f"{request.method} {request.url}",
                "content_type_sent": request.headers.get("Content-Type", ""),
                "body": _text(request.body),
                "status": 0,
                "content_type": "",
                "answer": "",
                "problems": problems,
            }
        )
        + "\n"
    )
    _failures.flush()


@schemathesis.check
def nothing_stored_on_failure(ctx, response, case):
    """A request answered with an error must leave the store as it was."""
    msg = _violations.get(case.id)
    if msg:
        raise AssertionError(msg)
    return None


@atexit.register
def _write_counts():
    with open(os.path.join(OUT, "http-counts.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"totals": dict(_counts), "by_operation": {k: dict(v) for k, v in sorted(_by_op.items())}}, f, indent=1
        )
    with open(os.path.join(OUT, "http-answers.json"), "w", encoding="utf-8") as f:
        json.dump([[*k, v] for k, v in sorted(_answers.items())], f, indent=0)
    _failures.close()
