"""The fuzz run's summary: requests per surface, the 5xx / UNKNOWN / INTERNAL counts, and every
failure grouped (same surface, problem, answer and message shape), with one example request each.
Its last line is `fuzz: N passed, M failed` (requests that passed every check, and failed requests
plus failures of the run itself: a stage that did not finish, the server dying, a panic in its log).

Usage: summary.py OUT_DIR   (exit status 1 when anything failed)
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys

GROUPS_SHOWN = 80


def load(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def shape(text: str) -> str:
    """A message with its variable parts blurred, so that one bug is one group."""
    if text.startswith("failed to decode Protobuf message"):
        return "failed to decode Protobuf message: ..."
    text = re.sub(r'"[^"]*"', '"…"', text)
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"(.)\1{7,}", r"\1…", text)
    text = re.sub(r"\d+", "N", text)
    return text[:90]


def message_of(answer: str) -> str:
    try:
        return str(json.loads(answer).get("message", answer))
    except (ValueError, AttributeError):
        return answer


def problem_kind(problem: str) -> str:
    for prefix in (
        "failed request changed the store",
        "content type",
        "error message of",
        "error message repeats",
        "no answer",
    ):
        if problem.startswith(prefix):
            return prefix
    return re.sub(r"\d{3}", lambda m: m.group(0), problem)[:60]


def main() -> int:
    out = sys.argv[1]
    http = load(os.path.join(out, "http-counts.json"))
    malformed = load(os.path.join(out, "http-malformed-counts.json"))
    grpc = load(os.path.join(out, "grpc-counts.json"))
    failures = (
        lines(os.path.join(out, "http-failures.jsonl"))
        + lines(os.path.join(out, "http-malformed-failures.jsonl"))
        + lines(os.path.join(out, "grpc-failures.jsonl"))
    )
    run_failures = lines(os.path.join(out, "dashboard-violations.jsonl")) + lines(
        os.path.join(out, "run-failures.jsonl")
    )

    print("== fuzz summary")
    total = failed = 0
    for name, counts, what in (
        ("http (schemathesis, from the Swagger document)", http, "generated requests"),
        ("http (malformed bodies and path segments)", malformed, "requests"),
        ("grpc (malformed and hostile messages, every method)", grpc, "requests"),
    ):
        if counts is None:
            only = os.environ.get("KUBERAY_FUZZ_ONLY")
            print(f"{name}: " + ("not run (KUBERAY_FUZZ_ONLY)" if only else "did not finish (see above)"))
            continue
        t = counts["totals"]
        total += t.get("requests", 0)
        failed += t.get("failed_requests", 0)
        if "methods" in counts:
            codes = {k: v for k, v in t.items() if k.isupper()}
            bad = sum(codes.get(c, 0) for c in ("UNKNOWN", "INTERNAL", "DATA_LOSS"))
            fivexx = sum(
                codes.get(c, 0) for c in ("UNKNOWN", "INTERNAL", "DATA_LOSS", "UNIMPLEMENTED", "UNAVAILABLE", "DEADLINE_EXCEEDED")
            )
            print(
                f"{name}: {t.get('requests', 0)} {what} to {counts['methods']} methods of {len(counts['services'])} "
                f"services in {counts['seconds']}s; UNKNOWN/INTERNAL: {bad}, all 5xx-class codes: {fivexx}; "
                f"failed: {t.get('failed_requests', 0)}"
            )
            print("  codes: " + ", ".join(f"{k} {v}" for k, v in sorted(codes.items(), key=lambda kv: -kv[1])))
            print("  cases: " + ", ".join(f"{k} {v}" for k, v in counts.get("by_kind", {}).items()))
        else:
            classes = ", ".join(f"{k} {t[k]}" for k in ("2xx", "3xx", "4xx", "5xx") if k in t)
            print(
                f"{name}: {t.get('requests', 0)} {what} ({classes}); 5xx: {t.get('5xx', 0)}; "
                f"failed: {t.get('failed_requests', 0)}"
            )

    groups: dict = collections.OrderedDict()
    for f in failures:
        op = f.get("operation") or f.get("method", "")
        answer = f.get("code") or str(f.get("status"))
        if "details" in f:
            msg = f["details"]
        elif "message" in f:
            msg = f["message"]
        else:
            msg = message_of(f.get("answer", ""))
        key = (f["surface"], problem_kind(f["problems"][0]), answer, shape(msg or ""))
        g = groups.setdefault(key, {"count": 0, "ops": collections.Counter(), "example": f})
        g["count"] += 1
        g["ops"][op] += 1
    if groups or run_failures:
        print(f"== failures: {failed} failed requests in {len(groups)} groups, {len(run_failures)} other failures")
    for i, (key, g) in enumerate(sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[1]["count"]))):
        if i == GROUPS_SHOWN:
            print(f"... {len(groups) - GROUPS_SHOWN} more groups in {out}/*-failures.jsonl")
            break
        surface, problem, answer, msg = key
        ex = g["example"]
        ops = ", ".join(f"{o.split('.')[-1] if surface == 'grpc' else o} ({c})" for o, c in g["ops"].most_common(6))
        more = f" +{len(g['ops']) - 6} more" if len(g["ops"]) > 6 else ""
        print(f"[{surface}] {g['count']}x {problem}: {answer} {msg!r}")
        print(f"    in: {ops}{more}")
        if surface == "grpc":
            print(f"    e.g. {ex['method']} {ex['kind']}: {ex['case'][:160]}")
            print(f"    answer: {ex['code']} {ex['details'][:200]!r}")
        else:
            req = ex.get("request", "")
            body = ex.get("body") or ""
            print(f"    e.g. {ex.get('case', '')} {req[:200]}" + (f" body {body[:160]!r}" if body else ""))
            print(f"    answer: {ex['status']} {ex['content_type']} {ex['answer'][:200]!r}")
        if len(ex["problems"]) > 1:
            print(f"    also: {'; '.join(p[:120] for p in ex['problems'][1:])}")
    for f in run_failures:
        print(f"[{f.get('surface', 'run')}] {f.get('problem', f)}")

    failed_total = failed + len(run_failures)
    print(f"fuzz: {total - failed} passed, {failed_total} failed")
    return 1 if failed_total else 0


if __name__ == "__main__":
    sys.exit(main())
