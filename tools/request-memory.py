#!/usr/bin/env python3
"""Measures how much memory one maximum-size request costs the server: the peak resident set
(VmHWM, reset through /proc/PID/clear_refs before the request) minus the resident set before
it, divided by the request's size, and what is still resident after it (on the embedded backend,
the stored object and the store's caches). Each case gets a server of its own (the binary given,
embedded backend, fresh data directory, loopback ports; memory freed by an earlier request would
hide the cost of a later one), warmed up with one small request; one line per case.

  tools/request-memory.py target/release/kuberay-apiserver [KUBECONFIG]

With a kubeconfig, the servers use that cluster (Kubernetes backend) and the figures are the
server's alone; the namespace ray-system must exist there.

Needs Linux (/proc), root or the same user as the server (clear_refs), and Python's grpcio for
the gRPC cases (the fuzz suite's venv has it: ~/.cache/kuberay-apiserver-fuzz/venv-*/bin/python).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

LIMIT = 4 * 1024 * 1024  # the default --http-max-body-bytes and --grpc-max-receive-bytes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def measure(pid, send):
    time.sleep(0.3)
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    before = status(pid, "VmRSS")
    outcome = send()
    time.sleep(0.3)
    return status(pid, "VmHWM") - before, status(pid, "VmRSS") - before, outcome


def http(base, path, body):
    request = urllib.request.Request(base + path, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return str(answer.status)
    except urllib.error.HTTPError as error:
        return f"{error.code} {error.read()[:150]!r}"


# --- protobuf encoding, just enough for CreateClusterRequest ---
def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


class Server:
    def __init__(self, binary, kubeconfig=None):
        self.data = tempfile.mkdtemp(prefix="request-memory.")
        http_port, self.grpc_port = free_port(), free_port()
        backend = ([f"--kubeconfig={kubeconfig}"] if kubeconfig
                   else ["--backend=embedded", f"--data-dir={self.data}"])
        self.process = subprocess.Popen(
            [binary, *backend,
             f"--httpPortFlag=127.0.0.1:{http_port}", f"--rpcPortFlag=127.0.0.1:{self.grpc_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{http_port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        http(self.base, f"/apis/v1/namespaces/{NS}/compute_templates",
             json.dumps({"name": "base", "namespace": NS, "cpu": 1, "memory": 1}).encode())

    def stop(self):
        # The template of the warm-up request; the large creates are refused by a real cluster.
        request = urllib.request.Request(
            f"{self.base}/apis/v1/namespaces/{NS}/compute_templates/base", method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=10)
        except OSError:
            pass
        self.process.terminate()
        self.process.wait(timeout=30)
        subprocess.run(["rm", "-rf", self.data])


NS = "ray-system"


def cluster_json(name, envs, filler=0):
    """A CreateCluster body with head-group environment variables `envs`, topped up to `filler`
    bytes with one large variable."""
    def body():
        return json.dumps({"name": name, "namespace": NS, "user": "u", "clusterSpec": {"headGroupSpec": {
            "computeTemplate": "base", "image": "ray", "rayStartParams": {"a": "b"},
            "environment": {"values": envs}}}}, separators=(",", ":"))
    if filler:
        envs["FILLER"] = ""
        envs["FILLER"] = "x" * (filler - len(body()))
    return body().encode()


def create_cluster(name, envs, filler=0):
    """The same as a gRPC CreateClusterRequest (HeadGroupSpec.environment = 9,
    EnvironmentVariables.values = 1)."""
    def message():
        values = b"".join(field(1, field(1, k) + field(2, v)) for k, v in envs.items())
        head = field(1, "base") + field(2, "ray") + field(5, field(1, "a") + field(2, "b")) + field(9, values)
        cluster = field(1, name) + field(2, NS) + field(3, "u") + field(6, field(1, head))
        return field(1, cluster) + field(2, NS)
    if filler:
        envs["FILLER"] = ""
        envs["FILLER"] = "x" * (filler - len(message()) - 8)
    return message()


def main():
    binary = sys.argv[1]
    kubeconfig = sys.argv[2] if len(sys.argv) > 2 else None
    size = LIMIT - 4096
    cases = [
        ("HTTP, one large string", "http", cluster_json("h1", {}, size)),
        ("HTTP, tiny members only", "http", cluster_json("h2", {f"{i:x}": "" for i in range(size // 11)})),
        ("HTTP, 30,000 members + large string", "http",
         cluster_json("h3", {f"K{i}": "v" for i in range(30_000)}, size)),
        ("gRPC, one large string", "grpc", create_cluster("g1", {}, size)),
        ("gRPC, tiny map entries only", "grpc", create_cluster("g2", {f"{i:x}": "" for i in range(size // 12)})),
        ("gRPC, 10,000 map entries + large string", "grpc",
         create_cluster("g3", {f"K{i}": "v" for i in range(10_000)}, size)),
    ]
    try:
        import grpc
    except ImportError:
        grpc = None
        print("(no grpcio: gRPC cases skipped)", file=sys.stderr)
    for label, transport, payload in cases:
        if transport == "grpc" and not grpc:
            continue
        server = Server(binary, kubeconfig)
        try:
            if transport == "http":
                send = lambda: http(server.base, f"/apis/v1/namespaces/{NS}/clusters", payload)
            else:
                channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}",
                                                options=[("grpc.max_send_message_length", -1)])
                create = channel.unary_unary("/proto.ClusterService/CreateCluster")

                def send():
                    try:
                        create(payload, timeout=60)
                        return "OK"
                    except grpc.RpcError as error:
                        return f"{error.code().name} {error.details()[:100]}"
            peak, kept, outcome = measure(server.process.pid, send)
        finally:
            server.stop()
        print(f"{label:42s} {len(payload) / 1e6:5.2f} MB -> peak +{peak / 1e6:6.2f} MB"
              f" ({peak / len(payload):4.2f}x), still resident after +{kept / 1e6:6.2f} MB,"
              f" answer {outcome}")


if __name__ == "__main__":
    main()
