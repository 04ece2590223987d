#!/usr/bin/env python3
"""Side-by-side benchmark of the server: run through bench/run, which builds the tools and the
server and passes their paths in the environment (see bench/run and docs/benchmarks.md).

Targets, measured in one run: our server (embedded backend; with --watch-cache=false and =true
when the binary has that flag), direct Kubernetes API access to the same objects (the embedded
store's Kubernetes API, or a real cluster's with --kubeconfig), a trivial server (the ceiling)
and, with --go-server, the Go server. Prints absolute numbers and ratios; asserts nothing about
times. Standard library only.
"""

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
PROTO_DIR = os.path.join(REPO_DIR, "proto")
MANAGED = "app.kubernetes.io/managed-by=kuberay-apiserver"
TEMPLATE_SELECTOR = "ray.io/config-type=compute-template"


def log(msg):
    print(time.strftime("%H:%M:%S") + " bench: " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Processes


PROCS = []


def spawn(args, logfile, env=None):
    out = open(logfile, "ab")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env)
    out.close()
    PROCS.append(proc)
    return proc


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_all():
    for proc in reversed(PROCS):
        stop(proc)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    """VmRSS and VmHWM of a process, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values


# ---------------------------------------------------------------------------------------------
# HTTP


class Endpoint:
    """An HTTP base address, with the TLS and credentials of a kubeconfig when it has them."""

    def __init__(self, base, ssl_context=None, headers=None, oha_args=()):
        self.base = base.rstrip("/")
        parsed = urllib.parse.urlsplit(self.base)
        self.https = parsed.scheme == "https"
        self.host = parsed.hostname
        self.port = parsed.port or (443 if self.https else 80)
        self.ssl_context = ssl_context
        self.headers = dict(headers or {})
        self.oha_args = list(oha_args)

    def connection(self, timeout=120):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, conn=None, expect=(200, 201)):
        own = conn is None
        conn = conn or self.connection()
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            if own:
                conn.close()
        if expect and resp.status not in expect:
            raise BenchError(f"{method} {self.base}{path}: {resp.status} {payload[:300]!r}")
        return resp.status, payload


def wait_http(endpoint, path, deadline_s, proc=None, interval=0.02):
    """Polls until path answers 200; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"the process exited (status {proc.returncode}) before {path} answered 200")
        try:
            status, _ = endpoint.request("GET", path, expect=None)
            if status == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(interval)
    raise BenchError(f"{endpoint.base}{path} did not answer 200 within {deadline_s}s")


# ---------------------------------------------------------------------------------------------
# Servers


# The API is measured, not Ray: on the embedded store the local Ray runtime would start a Ray
# head for each cluster created (or write each one's status when Ray is not installed). Empty
# for a binary without the flag (set in Bench).
LOCAL_RAY_OFF = []


class Ours:
    """Our server: one process, restartable with the same arguments."""

    ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, binary, label, args, workdir):
        self.binary, self.label, self.args, self.workdir = binary, label, list(args), workdir
        self.proc = None

    def start(self):
        logfile = os.path.join(self.workdir, "ours-%s.log" % re.sub(r"[^a-z0-9]+", "-", self.label.lower()))
        env = dict(os.environ, NO_COLOR="1", RUST_LOG=os.environ.get("RUST_LOG", "warn,kuberay_apiserver=info"))
        offset = os.path.getsize(logfile) if os.path.exists(logfile) else 0
        start = time.monotonic()
        self.proc = spawn([self.binary, "--rpcPortFlag", "127.0.0.1:0", "--httpPortFlag", "127.0.0.1:0"]
                          + self.args, logfile, env)
        grpc = http_addr = None
        while time.monotonic() - start < 300:
            with open(logfile, "rb") as f:
                f.seek(offset)
                text = self.ANSI.sub("", f.read().decode(errors="replace"))
            m = re.search(r"gRPC API on ([0-9.]+:[0-9]+), HTTP API on ([0-9.]+:[0-9]+)", text)
            if m:
                grpc, http_addr = m.group(1), m.group(2)
                break
            if self.proc.poll() is not None:
                raise BenchError(f"{self.label} exited at start-up:\n{text[-2000:]}")
            time.sleep(0.005)
        if not grpc:
            raise BenchError(f"{self.label} did not log its addresses")
        self.grpc = grpc
        self.http = Endpoint("http://" + http_addr)
        wait_http(self.http, "/readyz", 600, self.proc, interval=0.01)
        self.ready_s = time.monotonic() - start
        return self

    def stop(self):
        stop(self.proc)
        self.proc = None

    def status(self):
        return proc_status(self.proc.pid)


class GoServer:
    def __init__(self, binary, label, kubeconfig, workdir):
        self.binary, self.label, self.kubeconfig, self.workdir = binary, label, kubeconfig, workdir
        self.proc = None

    def start(self):
        rpc, http_port = free_port(), free_port()
        logfile = os.path.join(self.workdir, "go-%s.log" % re.sub(r"[^a-z0-9]+", "-", self.label.lower()))
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        # The HTTP gateway dials "localhost" + the gRPC flag, so that flag must be ":port".
        self.proc = spawn([self.binary, "-rpcPortFlag", ":%d" % rpc, "-httpPortFlag", "127.0.0.1:%d" % http_port],
                          logfile, env)
        self.grpc = "127.0.0.1:%d" % rpc
        self.http = Endpoint("http://127.0.0.1:%d" % http_port)
        wait_http(self.http, "/healthz", 60, self.proc)
        return self

    def stop(self):
        stop(self.proc)
        self.proc = None

    def status(self):
        return proc_status(self.proc.pid)


class Trivial:
    def __init__(self, binary, workdir):
        self.proc = spawn([binary, "127.0.0.1:0"], os.path.join(workdir, "trivial.log"))
        logfile = os.path.join(workdir, "trivial.log")
        for _ in range(500):
            with open(logfile) as f:
                m = re.search(r"listening on ([0-9.]+:[0-9]+)", f.read())
            if m:
                break
            if self.proc.poll() is not None:
                raise BenchError("the trivial server exited")
            time.sleep(0.01)
        else:
            raise BenchError("the trivial server did not start")
        self.grpc = m.group(1)
        self.http = Endpoint("http://" + m.group(1))


# ---------------------------------------------------------------------------------------------
# Load tools


def oha(tool, endpoint, path, conns, duration):
    args = [tool, "--no-tui", "--output-format", "json", "-z", "%gs" % duration, "-c", str(conns)]
    for k, v in endpoint.headers.items():
        args += ["-H", f"{k}: {v}"]
    args += endpoint.oha_args + [endpoint.base + path]
    out = subprocess.run(args, check=True, capture_output=True, timeout=duration + 120).stdout
    report = json.loads(out)
    codes = {str(k): v for k, v in (report.get("statusCodeDistribution") or {}).items()}
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    errors = {k: v for k, v in codes.items() if not k.startswith("2")}
    for k, v in (report.get("errorDistribution") or {}).items():
        if "deadline" not in k:  # requests cut off by -z's end are not failures
            errors[k] = v
    elapsed = report["summary"]["total"]
    pct = report.get("latencyPercentiles") or {}
    return {"rps": ok / elapsed if elapsed else 0.0, "ok": ok,
            "p50": (pct.get("p50") or 0) * 1e3, "p99": (pct.get("p99") or 0) * 1e3, "errors": errors}


def ghz(tool, address, proto, call, data, conns, duration=None, count=None):
    """proto None: the server's reflection service (ghz's parser rejects proto3 `optional`
    fields, which cluster.proto has)."""
    args = [tool, "--insecure", "-O", "json"]
    if proto:
        args += ["--proto", os.path.join(PROTO_DIR, proto),
                 "--import-paths", PROTO_DIR + "," + os.path.join(PROTO_DIR, "third_party")]
    args += ["--call", call, "-d", json.dumps(data), "-c", str(conns), "--connections", str(conns),
            "--timeout", "120s"]
    if duration:
        args += ["-z", "%gs" % duration, "--duration-stop", "ignore"]
    else:
        args += ["-n", str(count)]
    args.append(address)
    proc = subprocess.run(args, capture_output=True, timeout=(duration or 0) + 300)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"ghz failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    codes = report.get("statusCodeDistribution") or {}
    ok = codes.get("OK", 0)
    errors = {k: v for k, v in codes.items() if k != "OK"}
    for k, v in (report.get("errorDistribution") or {}).items():
        errors[k] = v
    dist = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    elapsed = report.get("total", 0) / 1e9
    return {"rps": ok / elapsed if elapsed else 0.0, "ok": ok, "p50": dist.get(50, 0.0),
            "p99": dist.get(99, 0.0), "average": report.get("average", 0) / 1e6, "errors": errors}


# ---------------------------------------------------------------------------------------------
# Objects


def template_body(name, ns):
    return {"name": name, "namespace": ns, "cpu": 1, "memory": 1}


def cluster_body(name, ns, template="t0"):
    return {"name": name, "namespace": ns, "user": "bench", "version": "2.46.0",
            "clusterSpec": {"headGroupSpec": {"computeTemplate": template, "image": "rayproject/ray:2.46.0",
                                              "rayStartParams": {"dashboard-host": "0.0.0.0"}}}}


def clone(obj, name, ns, suspend=False):
    """A RayCluster as our V1 create made it, under another name (for direct creates)."""
    obj = json.loads(json.dumps(obj))
    obj.pop("status", None)
    meta = obj["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                "selfLink", "deletionTimestamp", "finalizers", "ownerReferences"):
        meta.pop(key, None)
    meta["name"], meta["namespace"] = name, ns
    labels = meta.setdefault("labels", {})
    if "ray.io/cluster-name" in labels:
        labels["ray.io/cluster-name"] = name
    if suspend:
        obj["spec"]["suspend"] = True
    return obj


def ensure_namespace(kube, ns):
    kube.request("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, expect=(200, 201, 409))


def parallel(n, threads, fn):
    """Runs fn(conn_factory_result, i) for i in range(n) over `threads` threads."""
    errors = []
    def worker(k):
        try:
            for i in range(k, n, threads):
                fn(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------------------------
# Workloads


def workloads(ns, n_templates, n_clusters):
    enc = urllib.parse.quote
    return [
        {"name": "GET compute template",
         "v1": f"/apis/v1/namespaces/{ns}/compute_templates/t0",
         "direct": f"/api/v1/namespaces/{ns}/configmaps/t0",
         "grpc": ("config.proto", "proto.ComputeTemplateService.GetComputeTemplate", {"name": "t0", "namespace": ns})},
        {"name": f"LIST compute templates ({n_templates} in the namespace)",
         "v1": f"/apis/v1/namespaces/{ns}/compute_templates",
         "direct": f"/api/v1/namespaces/{ns}/configmaps?labelSelector={enc(TEMPLATE_SELECTOR)}",
         "grpc": ("config.proto", "proto.ComputeTemplateService.ListComputeTemplates", {"namespace": ns})},
        {"name": "GET cluster",
         "v1": f"/apis/v1/namespaces/{ns}/clusters/c-0000",
         "direct": f"/apis/ray.io/v1/namespaces/{ns}/rayclusters/c-0000",
         "grpc": ("cluster.proto", "proto.ClusterService.GetCluster", {"name": "c-0000", "namespace": ns})},
        {"name": f"LIST clusters ({n_clusters} in the namespace)",
         "v1": f"/apis/v1/namespaces/{ns}/clusters",
         "direct": f"/apis/ray.io/v1/namespaces/{ns}/rayclusters?labelSelector={enc(MANAGED)}",
         "grpc": ("cluster.proto", "proto.ClusterService.ListCluster", {"namespace": ns})},
    ]


class Bench:
    def __init__(self, opts, env):
        self.o = opts
        self.ghz_bin, self.oha_bin = env["BENCH_GHZ"], env["BENCH_OHA"]
        self.server_bin, self.trivial_bin = env["BENCH_SERVER"], env["BENCH_TRIVIAL"]
        self.work = tempfile.mkdtemp(prefix="kuberay-bench.", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        self.results = {}  # (scenario, workload, transport) -> {target: {conns: result}}
        self.targets = {}  # scenario -> ordered list of (label, kind)
        self.sections = []  # extra markdown sections, in order
        help_text = subprocess.run([self.server_bin, "--help"], capture_output=True, text=True).stdout
        if "--local-ray" in help_text:
            LOCAL_RAY_OFF[:] = ["--local-ray=off"]
        if "--watch-cache" in help_text:
            self.variants = [("ours, --watch-cache=false", ["--watch-cache=false"]),
                             ("ours, --watch-cache=true", ["--watch-cache=true"])]
            self.variant_note = "The binary has `--watch-cache`: ours is measured with it false and true."
        else:
            self.variants = [("ours", [])]
            self.variant_note = ("The binary has no `--watch-cache` flag: ours is measured with its defaults only.")
        self.go = [(os.path.basename(p), p) for p in opts.go_server]
        labels = [l for l, _ in self.go]
        if len(set(labels)) != len(labels):
            self.go = [(f"{l} #{i + 1}", p) for i, (l, p) in enumerate(self.go)]
        self.go = [("Go " + l, p) for l, p in self.go]
        self.trivial_results = {}  # transport -> {conns: result}

    # -- measurement of one target over every workload --------------------------------------

    def add_target(self, scenario, label, kind):
        lst = self.targets.setdefault(scenario, [])
        if (label, kind) not in lst:
            lst.append((label, kind))

    def record(self, scenario, wl, transport, label, conns, result):
        self.results.setdefault((scenario, wl, transport), {}).setdefault(label, {})[conns] = result

    def measure(self, scenario, label, kind, http_ep, grpc_addr, wls):
        self.add_target(scenario, label, kind)
        d = self.o.duration
        for wl in wls:
            path = wl["direct"] if kind == "direct" else wl["v1"]
            http_ep.request("GET", path)  # the object is there and answers 200
            oha(self.oha_bin, http_ep, path, 4, 0.3)  # warm-up
            for c in self.o.connections:
                r = oha(self.oha_bin, http_ep, path, c, d)
                self.record(scenario, wl["name"], "HTTP", label, c, r)
                log(f"{scenario} | {wl['name']} | HTTP | {label} | {c} conns: {r['rps']:.0f} req/s, "
                    f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms{' ERRORS %s' % r['errors'] if r['errors'] else ''}")
            if grpc_addr:
                _, call, data = wl["grpc"]
                ghz(self.ghz_bin, grpc_addr, None, call, data, 4, duration=0.3)
                for c in self.o.connections:
                    r = ghz(self.ghz_bin, grpc_addr, None, call, data, c, duration=d)
                    self.record(scenario, wl["name"], "gRPC", label, c, r)
                    log(f"{scenario} | {wl['name']} | gRPC | {label} | {c} conns: {r['rps']:.0f} req/s, "
                        f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms{' ERRORS %s' % r['errors'] if r['errors'] else ''}")

    def measure_trivial(self):
        t = Trivial(self.trivial_bin, self.work)
        self.trivial_pid = t.proc.pid
        oha(self.oha_bin, t.http, "/", 4, 0.3)
        ghz(self.ghz_bin, t.grpc, "config.proto", "proto.ComputeTemplateService.GetComputeTemplate",
            {"name": "t0", "namespace": "x"}, 4, duration=0.3)
        for c in self.o.connections:
            r = oha(self.oha_bin, t.http, "/", c, self.o.duration)
            self.trivial_results.setdefault("HTTP", {})[c] = r
            log(f"trivial | HTTP | {c} conns: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms")
            r = ghz(self.ghz_bin, t.grpc, "config.proto", "proto.ComputeTemplateService.GetComputeTemplate",
                    {"name": "t0", "namespace": "x"}, c, duration=self.o.duration)
            self.trivial_results.setdefault("gRPC", {})[c] = r
            log(f"trivial | gRPC | {c} conns: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms")
        self.trivial_rss = proc_status(t.proc.pid)["VmRSS"]
        stop(t.proc)

    # -- seeding ---------------------------------------------------------------------------

    def seed_v1(self, ours_http, kube, ns, n_templates, n_clusters):
        ensure_namespace(kube, ns)
        conn = ours_http.connection()
        for i in range(n_templates):
            ours_http.request("POST", f"/apis/v1/namespaces/{ns}/compute_templates", template_body(f"t{i}", ns),
                              conn=conn)
        for i in range(n_clusters):
            ours_http.request("POST", f"/apis/v1/namespaces/{ns}/clusters", cluster_body("c-%04d" % i, ns),
                              conn=conn)
        conn.close()

    def seed_direct(self, kube, ns, obj, n, prefix="c-", suspend=False, threads=4):
        local = threading.local()
        def create(i):
            if not hasattr(local, "conn"):
                local.conn = kube.connection()
            body = json.dumps(clone(obj, "%s%04d" % (prefix, i), ns, suspend)).encode()
            kube.request("POST", f"/apis/ray.io/v1/namespaces/{ns}/rayclusters", body, conn=local.conn)
        start = time.monotonic()
        parallel(n, threads, create)
        return time.monotonic() - start

    # -- sequential creates ----------------------------------------------------------------

    def creates(self, scenario, label, endpoint, path, bodies):
        conn = endpoint.connection()
        latencies = []
        start = time.monotonic()
        for body in bodies:
            if time.monotonic() - start > self.o.create_budget:  # a throttled target: fewer creates
                break
            t0 = time.perf_counter()
            endpoint.request("POST", path, body, conn=conn)
            latencies.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.monotonic() - start
        conn.close()
        latencies.sort()
        r = {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "mean": statistics.fmean(latencies),
             "rps": len(latencies) / elapsed, "n": len(latencies)}
        self.create_results.setdefault(scenario, []).append((label, r))
        log(f"{scenario} | create | {label}: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, {r['rps']:.0f}/s")

    # -- scenarios ---------------------------------------------------------------------------

    def run(self):
        self.create_results = {}
        self.started = time.monotonic()
        self.load_before = loadavg()
        self.measure_trivial()
        self.embedded()
        if self.o.kubeconfig:
            try:
                self.real_cluster()
            except (BenchError, OSError, subprocess.CalledProcessError) as e:
                self.real_error = str(e)
                log(f"real cluster: failed: {e}")
        self.elapsed = time.monotonic() - self.started
        self.load_after = loadavg()

    def embedded(self):
        sc = "embedded"
        o = self.o
        kube_port = free_port()
        kube = Endpoint("http://127.0.0.1:%d" % kube_port)
        kubeconfig = os.path.join(self.work, "embedded.kubeconfig")
        with open(kubeconfig, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config",
                       "clusters": [{"name": "embedded", "cluster": {"server": kube.base}}],
                       "users": [{"name": "none", "user": {}}],
                       "contexts": [{"name": "embedded", "context": {"cluster": "embedded", "user": "none"}}],
                       "current-context": "embedded"}, f)

        # Start-up on an empty data dir: time to ready and idle memory.
        fresh = []
        for label, args in self.variants:
            d = os.path.join(self.work, "fresh-" + secrets.token_hex(4))
            s = Ours(self.server_bin, label, ["--backend=embedded", "--data-dir=" + d] + LOCAL_RAY_OFF + args,
                     self.work).start()
            time.sleep(1)
            fresh.append((label, s.ready_s, s.status()["VmRSS"]))
            s.stop()
        self.fresh = fresh

        data = os.path.join(self.work, "data")
        common = ["--backend=embedded", "--data-dir=" + data, "--embedded-kube-listen", "127.0.0.1:%d" % kube_port] \
            + LOCAL_RAY_OFF
        ns = "bench"
        wls = workloads(ns, o.templates, o.clusters)
        servers = [Ours(self.server_bin, label, common + args, self.work) for label, args in self.variants]
        go = []
        try:
            s = servers[0].start()
            log(f"seeding {o.templates} compute templates and {o.clusters} clusters through V1 (namespace {ns})")
            self.seed_v1(s.http, kube, ns, o.templates, o.clusters)
            _, raw = kube.request("GET", f"/apis/ray.io/v1/namespaces/{ns}/rayclusters/c-0000")
            self.cluster_obj = json.loads(raw)
            cns = "bench-create"
            ensure_namespace(kube, cns)
            s.http.request("POST", f"/apis/v1/namespaces/{cns}/compute_templates", template_body("t0", cns))
            for i, s in enumerate(servers):
                if i:
                    servers[i - 1].stop()
                    s.start()
                self.measure(sc, s.label, "ours", s.http, s.grpc, wls)
                if o.creates:
                    self.creates(sc, s.label, s.http, f"/apis/v1/namespaces/{cns}/clusters",
                                 [cluster_body("o%d-%04d" % (i, k), cns) for k in range(o.creates)])
            # The last variant keeps running: it serves the direct and Go measurements.
            self.measure(sc, "direct (embedded Kubernetes API)", "direct", kube, None, wls)
            if o.creates:
                self.creates(sc, "direct (embedded Kubernetes API)", kube,
                             f"/apis/ray.io/v1/namespaces/{cns}/rayclusters",
                             [clone(self.cluster_obj, "d-%04d" % k, cns) for k in range(o.creates)])
            for k, (label, path) in enumerate(self.go):
                g = GoServer(path, label, kubeconfig, self.work).start()
                go.append(g)
                time.sleep(1)
                self.go_idle = getattr(self, "go_idle", {})
                self.go_idle[label] = g.status()["VmRSS"]
                self.measure(sc, label, "go", g.http, g.grpc, wls)
                if o.creates:
                    self.creates(sc, label, g.http, f"/apis/v1/namespaces/{cns}/clusters",
                                 [cluster_body("g%d-%04d" % (k, j), cns) for j in range(o.creates)])
            if o.big:
                self.big(servers, kube, go)
        finally:
            for g in go:
                g.stop()
            for s in servers:
                s.stop()

    def big(self, servers, kube, go):
        """LIST of o.big clusters; restart (time to ready) on a data dir holding them."""
        o = self.o
        ns = "bench-big"
        ensure_namespace(kube, ns)
        log(f"seeding {o.big} clusters directly through the embedded Kubernetes API (namespace {ns})")
        seed_s = self.seed_direct(kube, ns, self.cluster_obj, o.big, prefix="big-")
        log(f"seeded in {seed_s:.1f}s ({o.big / seed_s:.0f} creates/s over 4 connections)")
        self.big_seed = (seed_s, ns)
        rows = []
        path = f"/apis/v1/namespaces/{ns}/clusters"
        for i, s in enumerate(servers):
            live = servers[-1] if i == 0 else servers[i - 1]
            live.stop()
            s.start()
            time.sleep(1)
            before = s.status()
            store = None
            if "--watch-cache=false" in s.label:
                # The embedded store keeps in memory what it has read: what it holds once all the
                # clusters were read (a direct LIST through this process's own Kubernetes API),
                # the part of the caches-on server's memory that is not the caches'.
                self.timed_lists(kube, f"/apis/ray.io/v1/namespaces/{ns}/rayclusters", key="items")
                time.sleep(SETTLE_S)
                store = s.status()["VmRSS"]
            times, size = self.timed_lists(s.http, path, key="clusters")
            after = s.status()
            time.sleep(SETTLE_S)
            settled = s.status()["VmRSS"]
            log(f"big | {s.label}: ready in {s.ready_s:.2f}s, LIST {statistics.median(times):.3f}s "
                f"({size / 1e6:.1f} MB), RSS {before['VmRSS']:.0f} -> {after['VmRSS']:.0f} MiB, "
                f"{settled:.0f} MiB {SETTLE_S} s later")
            g = ghz(self.ghz_bin, s.grpc, None, "proto.ClusterService.ListCluster", {"namespace": ns}, 1,
                    count=o.list_repeats)
            grpc = g["average"] / 1e3 if g["ok"] == o.list_repeats else "failed: %s" % "; ".join(
                f"{k} ({v})" for k, v in g["errors"].items())
            rows.append({"label": s.label, "ready": s.ready_s, "rss_ready": before["VmRSS"],
                         "list": times, "bytes": size, "rss_after": after["VmRSS"], "hwm": s.status()["VmHWM"],
                         "grpc": grpc, "rss_settled": settled, "rss_store": store})
        times, size = self.timed_lists(kube, f"/apis/ray.io/v1/namespaces/{ns}/rayclusters?labelSelector="
                                       + urllib.parse.quote(MANAGED), key="items")
        rows.append({"label": "direct (embedded Kubernetes API)", "list": times, "bytes": size})
        for g in go:
            try:
                before = g.status()
                times, size = self.timed_lists(g.http, path, key="clusters", timeout=self.o.go_list_timeout)
                after = g.status()
                rows.append({"label": g.label, "list": times, "bytes": size, "rss_ready": before["VmRSS"],
                             "rss_after": after["VmRSS"], "hwm": after["VmHWM"]})
            except (BenchError, OSError) as e:
                if isinstance(e, socket.timeout):
                    e = f"no answer within {self.o.go_list_timeout:g} s"
                rows.append({"label": g.label, "error": str(e)})
            log(f"big | {g.label}: {rows[-1].get('error') or '%.3fs' % statistics.median(rows[-1]['list'])}")
        self.big_rows = rows

    def timed_lists(self, endpoint, path, key, timeout=600):
        conn = endpoint.connection(timeout=timeout)
        times = []
        size = 0
        for i in range(self.o.list_repeats):
            if sum(times) > 30:  # a slow target: fewer repeats
                break
            t0 = time.perf_counter()
            _, body = endpoint.request("GET", path, conn=conn)
            times.append(time.perf_counter() - t0)
            size = len(body)
            if i == 0:
                n = len(json.loads(body).get(key) or [])
                if n != self.o.big:
                    raise BenchError(f"{endpoint.base}{path}: {n} items, expected {self.o.big}")
        conn.close()
        return times, size

    def authorization(self, kube, ns, wls):
        """What authentication and authorization add to a GET answered from the cache: the same
        server with each way of securing it, side by side."""
        o = self.o
        path = next(w["v1"] for w in wls if w["name"] == "GET cluster")
        rows = []
        for label, args, authorization in authorization_modes(self.work, kube, ns):
            s = Ours(self.server_bin, label, ["--backend=kubernetes", "--kubeconfig", o.kubeconfig] + args,
                     self.work).start()
            try:
                endpoint = Endpoint(s.http.base, headers={"Authorization": authorization} if authorization else {})
                endpoint.request("GET", path)
                oha(self.oha_bin, endpoint, path, 4, 0.3)
                results = {}
                for c in o.connections:
                    r = oha(self.oha_bin, endpoint, path, c, o.duration)
                    if r["errors"]:
                        raise BenchError(f"{label}: errors {r['errors']}")
                    results[c] = r
                    log(f"authorization | {label} | {c} conns: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, "
                        f"p99 {r['p99']:.2f} ms")
                rows.append((label, results))
            finally:
                s.stop()
        lines = [f"#### Authorization on a GET (real cluster, `GET /apis/v1/namespaces/NS/clusters/c-0000`, HTTP)", "",
                 "The same server (watch cache on) with each way of securing it; the Kubernetes modes' caller is a "
                 "ServiceAccount token allowed to read RayClusters in the namespace. Uncached: every call makes a "
                 "TokenReview and a SubjectAccessReview.", "",
                 "| mode | " + " | ".join(f"req/s {c} | p50 ms {c} | p99 ms {c}" for c in o.connections) + " |",
                 "|---|" + "---:|---:|---:|" * len(o.connections)]
        for label, results in rows:
            lines.append(f"| {label} | " + " | ".join(
                f"{rate(results[c]['rps'])} | {ms(results[c]['p50'])} | {ms(results[c]['p99'])}"
                for c in o.connections) + " |")
        base = rows[0][1]
        for label, results in rows[1:]:
            lines.append(f"| **{label} / open** | " + " | ".join(
                f"{ratio(results[c]['rps'], base[c]['rps'])} | {ratio(results[c]['p50'], base[c]['p50'])} | "
                f"{ratio(results[c]['p99'], base[c]['p99'])}" for c in o.connections) + " |")
        self.sections.append("\n".join(lines))

    def real_cluster(self):
        sc = "real cluster"
        o = self.o
        kube = kube_endpoint(o.kubectl, o.kubeconfig, self.work)
        status, body = kube.request("GET", "/version")
        self.kube_version = json.loads(body).get("gitVersion", "?")
        ns = "kuberay-bench-" + secrets.token_hex(3)
        wls = workloads(ns, o.templates, o.clusters)
        servers = [Ours(self.server_bin, label, ["--backend=kubernetes", "--kubeconfig", o.kubeconfig] + args,
                        self.work) for label, args in self.variants]
        go = []
        ensure_namespace(kube, ns)
        log(f"real cluster {kube.base} ({self.kube_version}), namespace {ns}")
        try:
            self.real_ready = []
            for i, s in enumerate(servers):
                s.start()
                self.real_ready.append((s.label, s.ready_s, s.status()["VmRSS"]))
                if i == 0:
                    for k in range(o.templates):
                        s.http.request("POST", f"/apis/v1/namespaces/{ns}/compute_templates", template_body(f"t{k}", ns))
                    # Suspended clones of a cluster our V1 create produced: a RayCluster created
                    # through V1 is not suspended, and the operator would start a Ray head for each.
                    self.seed_direct(kube, ns, self.cluster_obj, o.clusters, suspend=True)
                self.measure(sc, s.label, "ours", s.http, s.grpc, wls)
                s.stop()
            self.measure(sc, "direct (kube-apiserver)", "direct", kube, None, wls)
            if o.auth:
                self.authorization(kube, ns, wls)
            for label, path in self.go:
                g = GoServer(path, label, o.kubeconfig, self.work).start()
                go.append(g)
                self.measure(sc, label, "go", g.http, g.grpc, wls)
                g.stop()
        finally:
            for g in go:
                g.stop()
            for s in servers:
                s.stop()
            try:
                kube.request("DELETE", f"/api/v1/namespaces/{ns}", expect=(200, 202, 404))
                log(f"deleted namespace {ns}")
            except (BenchError, OSError) as e:
                log(f"could not delete namespace {ns}: {e}")


def authorization_modes(work, kube, ns):
    """(label, server arguments, Authorization header) of each way of securing the server, the
    callers' token made here: a ServiceAccount allowed to read clusters in `ns`."""
    shared = secrets.token_hex(16)
    policy = os.path.join(work, "policy.yaml")
    with open(policy, "w") as f:
        f.write(f"users:\n- name: bench\n  token: {shared}\n  namespaces: [{ns}]\n")
    sa = "bench-reader"
    kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": sa}})
    kube.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {
        "metadata": {"name": sa},
        "rules": [{"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["get", "list"]}]})
    kube.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", {
        "metadata": {"name": sa},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
    _, body = kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                           {"spec": {"expirationSeconds": 3600}})
    kube_token = json.loads(body)["status"]["token"]
    return [
        ("open (no authentication)", [], None),
        ("shared token (--auth-token)", ["--auth-token", shared], shared),
        ("access policy (--auth-policy-file)", ["--auth-policy-file", policy], shared),
        ("Kubernetes, cached (--kubernetes-auth)", ["--kubernetes-auth"], "Bearer " + kube_token),
        ("Kubernetes, uncached (TTLs 0)", ["--kubernetes-auth", "--kubernetes-auth-token-ttl=0",
                                           "--kubernetes-auth-decision-ttl=0"], "Bearer " + kube_token),
    ]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# Seconds to wait for memory to be handed back (the server trims its heaps every 5 s).
SETTLE_S = 6


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))]


def kube_endpoint(kubectl, kubeconfig, workdir):
    """The kubeconfig's current cluster and credentials, for Python and for oha. Read by kubectl
    when there is one (`config view --minify --flatten`), else parsed here (JSON, or YAML with
    PyYAML); credentials must be inline (*-data fields) or files."""
    if shutil.which(kubectl):
        raw = subprocess.run([kubectl, "config", "view", "--raw", "--minify", "--flatten", "-o", "json",
                              "--kubeconfig", kubeconfig], check=True, capture_output=True).stdout
        cfg = json.loads(raw)
        cluster = cfg["clusters"][0]["cluster"]
        user = (cfg.get("users") or [{}])[0].get("user", {})
    else:
        with open(kubeconfig) as f:
            text = f.read()
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError:
            try:
                import yaml
            except ImportError:
                raise BenchError(f"no kubectl ({kubectl}) and no PyYAML to read {kubeconfig}: pass --kubectl")
            cfg = yaml.safe_load(text)
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == cfg["current-context"])
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users") or [] if u["name"] == ctx.get("user")), {})
        for key in ("certificate-authority", "client-certificate", "client-key"):
            for d in (cluster, user):
                if d.get(key) and not d.get(key + "-data"):
                    path = os.path.join(os.path.dirname(kubeconfig), d[key])
                    with open(path, "rb") as f:
                        d[key + "-data"] = base64.b64encode(f.read()).decode()
    base = cluster["server"]
    ctx, headers, oha_args = None, {}, []
    def write(name, b64):
        path = os.path.join(workdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(b64))
        return path
    if base.startswith("https"):
        ctx = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            oha_args.append("--insecure")
        elif cluster.get("certificate-authority-data"):
            ca = write("kube-ca.pem", cluster["certificate-authority-data"])
            ctx.load_verify_locations(ca)
            oha_args += ["--cacert", ca]
        if user.get("client-certificate-data"):
            cert = write("kube-cert.pem", user["client-certificate-data"])
            key = write("kube-key.pem", user["client-key-data"])
            ctx.load_cert_chain(cert, key)
            oha_args += ["--cert", cert, "--key", key]
    if user.get("token"):
        headers["Authorization"] = "Bearer " + user["token"]
    return Endpoint(base, ctx, headers, oha_args)


# ---------------------------------------------------------------------------------------------
# Report


def ms(v):
    return "%.2f" % v if v < 10 else "%.1f" % v if v < 100 else "%.0f" % v


def rate(v):
    return "%.1f" % v if v < 10 else "%.0f" % v


def ratio(a, b):
    if not a or not b:
        return "–"
    return "%.2f×" % (a / b)


def git(*args):
    try:
        return subprocess.run(["git", "-C", REPO_DIR] + list(args), capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def report(b):
    o = b.o
    lines = []
    add = lines.append
    source = os.environ.get("BENCH_SOURCE") or "commit `%s`" % (git("rev-parse", "--short", "HEAD") or "unknown")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    add(f"Server built from {source}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs ({cpu}); "
        f"load tools and servers share them. {o.duration:g} s per measurement, connections "
        f"{', '.join(map(str, o.connections))}; whole run {b.elapsed / 60:.1f} min; load average "
        f"{b.load_before} before, {b.load_after} after; {os.environ.get('BENCH_TOOLS', '')}.")
    add("")
    add(b.variant_note)
    add("")
    add("Ratios are ours / other: above 1× for req/s means ours serves more, above 1× for p50 and p99 "
        "means ours is slower. gRPC ratios against direct compare our gRPC with direct HTTP.")
    add("")
    scenarios = ["embedded"] + (["real cluster"] if o.kubeconfig else [])
    real_error = getattr(b, "real_error", None)
    for sc in scenarios:
        title = "Embedded store" if sc == "embedded" else f"Real cluster (kube-apiserver {getattr(b, 'kube_version', '?')})"
        add(f"### {title}")
        add("")
        if sc == "real cluster" and real_error:
            add(f"**The run against the real cluster failed** (what it measured before is below): `{real_error[:500]}`")
            add("")
        if sc == "embedded":
            add("Direct: the same process's embedded Kubernetes API over HTTP (`--embedded-kube-listen`); "
                "ours reaches the store in-process. Go servers: their Kubernetes client talks to that same "
                "embedded Kubernetes API.")
        else:
            add("Direct: kube-apiserver over HTTPS with the kubeconfig's credentials; ours and the Go servers "
                "use the same kubeconfig.")
        add("")
        wl_names = []
        for (s, wl, tr) in b.results:
            if s == sc and wl not in wl_names:
                wl_names.append(wl)
        for wl in wl_names:
            for tr in ("HTTP", "gRPC"):
                res = b.results.get((sc, wl, tr))
                if not res:
                    continue
                res = dict(res)
                res["trivial"] = b.trivial_results.get(tr, {})
                direct = [l for l, k in b.targets[sc] if k == "direct"]
                if tr == "gRPC":  # no gRPC to Kubernetes: our gRPC against direct HTTP
                    for d in direct:
                        res[d] = b.results.get((sc, wl, "HTTP"), {}).get(d, {})
                add(f"#### {wl}, {tr}")
                add("")
                head = "| target |" + "".join(f" {c} conn{'s' if c > 1 else ''}: req/s | p50 ms | p99 ms |"
                                              for c in o.connections)
                add(head)
                add("|---|" + "---:|---:|---:|" * len(o.connections))
                rows = [(l, k) for l, k in b.targets[sc] if l in res] + [("trivial", "trivial")]
                notes = []
                for label, kind in rows:
                    cells = []
                    for c in o.connections:
                        r = res[label].get(c)
                        if not r:
                            cells += ["–"] * 3
                            continue
                        mark = " (!)" if r["errors"] else ""
                        if r["errors"]:
                            notes.append(f"{label}, {c} conns: {r['ok']} OK, errors {r['errors']}")
                        if r["ok"]:
                            cells += [rate(r["rps"]) + mark, ms(r["p50"]), ms(r["p99"])]
                        else:
                            cells += ["0" + mark, "–", "–"]
                    name = label + (" (ceiling)" if kind == "trivial" else "")
                    if tr == "gRPC" and kind == "direct":
                        name += " [HTTP]"
                    add(f"| {name} | " + " | ".join(cells) + " |")
                ours = [l for l, k in rows if k == "ours"]
                others = [l for l, k in rows if k != "ours"]
                for ol in ours:
                    for xl in others:
                        cells = []
                        for c in o.connections:
                            a, x = res[ol].get(c), res.get(xl, {}).get(c)
                            if not a or not x:
                                cells += ["–"] * 3
                                continue
                            if not a["ok"] or not x["ok"]:
                                cells += ["–"] * 3
                                continue
                            cells += [ratio(a["rps"], x["rps"]), ratio(a["p50"], x["p50"]), ratio(a["p99"], x["p99"])]
                        add(f"| **{ol} / {xl}** | " + " | ".join(cells) + " |")
                add("")
                for n in notes:
                    add(f"- (!) {n}")
                if notes:
                    add("")
        creates = b.create_results.get(sc)
        if creates:
            add(f"#### Sequential creates of clusters ({o.creates}, at most {o.create_budget:g} s, one HTTP connection)")
            add("")
            add("Ours and Go: `POST /apis/v1/namespaces/NS/clusters` (V1, compute template `t0`); direct: `POST` "
                "of the equivalent RayCluster (a clone of one our V1 create made).")
            add("")
            add("| target | p50 ms | p99 ms | mean ms | creates/s | creates |")
            add("|---|---:|---:|---:|---:|---:|")
            for label, r in creates:
                add(f"| {label} | {ms(r['p50'])} | {ms(r['p99'])} | {ms(r['mean'])} | {rate(r['rps'])} | {r['n']} |")
            for label, r in creates:
                if not label.startswith("ours"):
                    continue
                for xl, x in creates:
                    if xl.startswith("ours"):
                        continue
                    add(f"| **{label} / {xl}** | {ratio(r['p50'], x['p50'])} | {ratio(r['p99'], x['p99'])} | "
                        f"{ratio(r['mean'], x['mean'])} | {ratio(r['rps'], x['rps'])} | |")
            add("")
        if sc == "embedded":
            add("#### Start-up and memory")
            add("")
            add("| target | time to ready (s), empty data dir | RSS at ready (MiB) |")
            add("|---|---:|---:|")
            for label, ready, rss in b.fresh:
                add(f"| {label} | {ready:.2f} | {rss:.1f} |")
            for label, rss in getattr(b, "go_idle", {}).items():
                add(f"| {label} (against the embedded store) | – | {rss:.1f} |")
            add(f"| trivial | – | {b.trivial_rss:.1f} |")
            add("")
            if getattr(b, "big_rows", None):
                seed_s, ns = b.big_seed
                add(f"#### {o.big} clusters in one namespace")
                add("")
                add(f"Seeded directly through the embedded Kubernetes API ({seed_s:.1f} s, clones of a V1-created "
                    f"cluster, label `{MANAGED}`). Ours restarted on that data dir: time to ready (`/readyz` "
                    f"200, from the process's start), VmRSS (from /proc) 1 s after ready and after {o.list_repeats} "
                    f"LISTs of the namespace over HTTP (one connection; the time is their median), VmHWM after "
                    f"those and {o.list_repeats} gRPC LISTs (ghz; their average time). Direct: the same LIST with "
                    f"the label selector. Go: its V1 LIST, at most {o.go_list_timeout:g} s. *Settled*: VmRSS "
                    f"{SETTLE_S} s after the HTTP LISTs.")
                add("")
                add("| target | time to ready (s) | RSS before (MiB) | LIST HTTP (s) | response MB | "
                    "RSS after the HTTP LISTs (MiB) | settled (MiB) | VmHWM at the end (MiB) | LIST gRPC (s) |")
                add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
                def f(v, fmt):
                    return fmt % v if isinstance(v, (int, float)) else (v or "–")
                for r in b.big_rows:
                    if "error" in r:
                        add(f"| {r['label']} | failed: {r['error'][:200]} |  |  |  |  |  |  |  |")
                        continue
                    add(f"| {r['label']} | {f(r.get('ready'), '%.2f')} | {f(r.get('rss_ready'), '%.0f')} | "
                        f"{statistics.median(r['list']):.3f} | {r['bytes'] / 1e6:.1f} | {f(r.get('rss_after'), '%.0f')} | "
                        f"{f(r.get('rss_settled'), '%.0f')} | {f(r.get('hwm'), '%.0f')} | {f(r.get('grpc'), '%.3f')} |")
                for r in b.big_rows:
                    if not r["label"].startswith("ours") or "error" in r:
                        continue
                    for x in b.big_rows:
                        if x["label"].startswith("ours") or "error" in x:
                            continue
                        add(f"| **{r['label']} / {x['label']}** |  |  | "
                            f"{ratio(statistics.median(r['list']), statistics.median(x['list']))} | "
                            f"{ratio(r['bytes'], x['bytes'])} |  |  |  |  |")
                add("")
                store = next((r["rss_store"] for r in b.big_rows if r.get("rss_store")), None)
                cached = next((r for r in b.big_rows if "--watch-cache=true" in r["label"] and "error" not in r), None)
                direct = next((r for r in b.big_rows if r["label"].startswith("direct")), None)
                if store and cached and direct:
                    share = cached["rss_ready"] - store
                    add(f"The embedded store runs in the same process and keeps what it has read: with caches off "
                        f"and every cluster read once (a direct LIST), the process holds {store:.0f} MiB. The "
                        f"watch caches' share of the caches-on server (RSS before, less that) is about "
                        f"{share:.0f} MiB, {share * 1048576 / direct['bytes']:.1f}x the clusters' JSON "
                        f"({direct['bytes'] / 1e6:.1f} MB, the direct LIST).")
                    add("")
    if o.kubeconfig and getattr(b, "real_ready", None):
        add("#### Real cluster: start-up")
        add("")
        add("| target | time to ready (s) | RSS at ready (MiB) |")
        add("|---|---:|---:|")
        for label, ready, rss in b.real_ready:
            add(f"| {label} | {ready:.2f} | {rss:.1f} |")
        add("")
    for section in b.sections:
        add(section)
        add("")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", default="2s", help="seconds per measurement (default 2s)")
    p.add_argument("--connections", default="1,16,64", help="connection counts (default 1,16,64)")
    p.add_argument("--templates", type=int, default=10, help="compute templates in the namespace (default 10)")
    p.add_argument("--clusters", type=int, default=100, help="clusters in the namespace (default 100)")
    p.add_argument("--creates", type=int, default=50, help="sequential creates per target (default 50; 0: skip)")
    p.add_argument("--create-budget", type=float, default=30,
                   help="seconds of sequential creates per target at most (default 30)")
    p.add_argument("--big", type=int, default=10000, help="clusters of the big LIST and restart (default 10000; 0: skip)")
    p.add_argument("--list-repeats", type=int, default=3, help="LISTs of the big namespace per target (default 3)")
    p.add_argument("--kubeconfig", help="also measure against this real cluster (a namespace of its own, deleted after)")
    p.add_argument("--kubectl", default=os.environ.get("BENCH_KUBECTL", "kubectl"),
                   help="kubectl, to read the kubeconfig (default: kubectl on PATH)")
    p.add_argument("--go-server", action="append", default=[], metavar="PATH",
                   help="a Go APIServer binary to measure (repeatable; see bench/build-go-server)")
    p.add_argument("--go-list-timeout", type=float, default=120,
                   help="seconds a Go server may take for the big LIST (default 120)")
    p.add_argument("--no-auth", dest="auth", action="store_false",
                   help="skip the authorization comparison on the real cluster")
    p.add_argument("--out", help="also write the markdown report to this file")
    o = p.parse_args()
    o.duration = float(o.duration.rstrip("s"))
    o.connections = [int(c) for c in o.connections.split(",")]
    if o.kubeconfig:
        o.kubeconfig = os.path.abspath(o.kubeconfig)
    for var in ("BENCH_GHZ", "BENCH_OHA", "BENCH_SERVER", "BENCH_TRIVIAL"):
        if not os.environ.get(var):
            sys.exit(f"{var} is not set: run this through bench/run")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(o, os.environ)
    try:
        b.run()
    finally:
        stop_all()
        subprocess.run(["rm", "-rf", b.work])
    text = report(b)
    print(text)
    if o.out:
        with open(o.out, "w") as f:
            f.write(text + "\n")
        log(f"wrote {o.out}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        stop_all()
        sys.exit(f"bench: error: {e}")
