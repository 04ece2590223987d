"""A stand-in Ray dashboard job API (`/api/jobs/`) for the fuzz run, on a free loopback port.

The server under test is started with `--dashboard-url-template http://127.0.0.1:<port>`, so job
submissions to the fixture cluster (marked ready) reach this process instead of failing as
UNAVAILABLE (a 503 that no client input causes). It answers as Ray's dashboard does (submit, list,
get, logs, stop, delete; 404 for unknown jobs, 400 for a malformed submission, 500 "Please use a
different submission_id" for a duplicate id) and deterministically (fixed times, counters for
generated ids).

It also checks that the server's requests keep to the job API's shape: `/api/jobs/`,
`/api/jobs/<id>`, `/api/jobs/<id>/logs`, `/api/jobs/<id>/stop`, no query, with the methods Ray
expects. Anything else means client input changed which resource or verb the server reached; each
such request is appended to the violations file given as the second argument.

Usage: fake_dashboard.py PORT_FILE VIOLATIONS_FILE   (writes its port to PORT_FILE once listening)
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/api/jobs/"
KEEP_JOBS = 200  # the oldest jobs are forgotten past this, so lists stay small

lock = threading.Lock()
jobs: dict[str, dict] = {}
counter = [0]
violations_path = sys.argv[2] if len(sys.argv) > 2 else None


def violation(text: str) -> None:
    if violations_path:
        with lock, open(violations_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"surface": "dashboard", "problem": text}) + "\n")


def seed() -> None:
    # A job that always exists, for the GET/stop/delete requests the fuzzers aim at it.
    jobs["fuzz-submission"] = job_info("fuzz-submission", {"entrypoint": "echo fuzz"}, "RUNNING")


def job_info(sid: str, req: dict, status: str) -> dict:
    return {
        "type": "SUBMISSION",
        "job_id": None,
        "submission_id": sid,
        "driver_info": None,
        "status": status,
        "entrypoint": req.get("entrypoint", ""),
        "message": "Job is currently running." if status == "RUNNING" else "Job was intentionally stopped.",
        "error_type": None,
        "start_time": 1764000000000,
        "end_time": None if status == "RUNNING" else 1764000001000,
        "metadata": req.get("metadata") or {},
        "runtime_env": req.get("runtime_env") or {},
        "driver_agent_http_address": None,
        "driver_node_id": None,
        "driver_exit_code": None,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body, ctype="application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def text(self, status: int, text: str) -> None:
        self.reply(status, text.encode(), "text/plain; charset=utf-8")

    def route(self):
        """(id or None, action or None) of a well-formed job API path, else None."""
        raw = self.path
        if "?" in raw or "#" in raw:
            return None
        if raw == PREFIX:
            return (None, None)
        if not raw.startswith(PREFIX):
            return None
        parts = raw[len(PREFIX) :].split("/")
        if len(parts) == 1 and parts[0]:
            return (urllib.parse.unquote(parts[0], errors="strict"), None)
        if len(parts) == 2 and parts[0] and parts[1] in ("logs", "stop"):
            return (urllib.parse.unquote(parts[0], errors="strict"), parts[1])
        return None

    def handle_any(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            route = self.route()
        except UnicodeDecodeError:
            route = None
        allowed = {
            (False, None): ("GET", "POST"),
            (True, None): ("GET", "DELETE"),
            (True, "logs"): ("GET",),
            (True, "stop"): ("POST",),
        }
        if route is None or method not in allowed[(route[0] is not None, route[1])]:
            violation(f"the server sent {method} {self.path!r} to the Ray dashboard")
            return self.text(404, "Not Found")
        sid, action = route
        with lock:
            if sid is None and method == "GET":
                return self.reply(200, list(jobs.values()))
            if sid is None:
                return self.submit(body)
            job = jobs.get(sid)
            if job is None:
                return self.text(404, f"Job {sid} does not exist")
            if action == "logs":
                return self.reply(200, {"logs": f"log of {sid}\n"})
            if action == "stop":
                stopped = job["status"] == "RUNNING"
                if sid != "fuzz-submission":
                    job["status"] = "STOPPED"
                return self.reply(200, {"stopped": stopped})
            if method == "DELETE":
                if job["status"] == "RUNNING":
                    return self.text(400, f"Attempted to delete job '{sid}', which is in a non-terminal state.")
                del jobs[sid]
                return self.reply(200, {"deleted": True})
            return self.reply(200, job)

    def submit(self, body: bytes) -> None:
        try:
            req = json.loads(body)
        except ValueError:
            return self.text(400, "Invalid request body")
        ok = (
            isinstance(req, dict)
            and isinstance(req.get("entrypoint"), str)
            and isinstance(req.get("submission_id", ""), (str, type(None)))
            and isinstance(req.get("runtime_env") or {}, dict)
            and isinstance(req.get("metadata") or {}, dict)
            and all(isinstance(v, str) for v in (req.get("metadata") or {}).values())
            and isinstance(req.get("entrypoint_resources") or {}, dict)
            and all(isinstance(v, (int, float)) for v in (req.get("entrypoint_resources") or {}).values())
        )
        if not ok:
            return self.text(400, "TypeError: the submission does not match JobSubmitRequest")
        sid = req.get("submission_id") or ""
        if not sid:
            counter[0] += 1
            sid = f"raysubmit_{counter[0]:08d}"
        if sid in jobs:
            return self.text(
                500,
                f"Job with submission_id {sid} already exists. Please use a different submission_id.",
            )
        jobs[sid] = job_info(sid, req, "RUNNING")
        while len(jobs) > KEEP_JOBS:
            oldest = next(k for k in jobs if k != "fuzz-submission")
            del jobs[oldest]
        return self.reply(200, {"job_id": sid, "submission_id": sid})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_HEAD(self):
        self.handle_any("HEAD")


def main() -> None:
    seed()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
