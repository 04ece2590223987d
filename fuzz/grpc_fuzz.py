"""gRPC fuzzer: malformed and hostile messages to every method of the API's services.

The methods and their message types come from the server's own gRPC reflection (every service of
package `proto`). Messages are encoded here, at the wire level, from those descriptors, so that they
can be wrong in ways a protobuf library would never produce. For each method, in this order:

- `empty`: the empty message;
- `hostile`: a valid message (the method's baseline: names of the fixtures, or fresh valid names
  for creates) with one field at a time set to a hostile value: names with `#`, `?`, `/`, `%`,
  spaces, control characters, 300-character and 3 MB strings (the 3 MB ones only in the top two
  levels of identity fields), the baseline's own value followed by `#zzz`, `?dryRun=All`,
  `/status`..., negative and extreme numbers, every enum value and unknown ones, hostile map keys
  (a field met again in another message, like ClusterSpec's, gets a few values only);
- `utf8`: a string field at a time (map keys and values too) holding invalid UTF-8;
- `wiretype`: a field at a time sent with each wrong wire type (and the invalid types 6 and 7);
- `length`: a length-delimited field at a time with a huge, overlong or past-the-end length;
- `nesting`: unknown fields and groups nested 100 to 10,000 deep;
- `truncated`: the baseline cut short at many points;
- `random`: random bytes of various lengths (and 5 MiB of them for each create and submit);
- `misc`: field number 0, field numbers out of range, overlong varints, non-canonical booleans.

Every request is judged: the answer UNKNOWN, INTERNAL, DATA_LOSS, UNIMPLEMENTED, UNAVAILABLE or
DEADLINE_EXCEEDED (the codes that map to 5xx), no answer within the client deadline, an error
message longer than 4 KiB (the README's bound on every message; the Kubernetes API server's
own texts repeat values in full, so no tighter bound holds), OK for a namespace or name that breaks the server's name rules
(names.py), or a failed request (any code but OK) after which the embedded store changed
(store.py) is a failure. The server must still answer its health check after each method,
and be alive at the end. Everything is derived from fixed seeds: two runs send the same requests
(every request and its answer go to grpc-trace.tsv, so two runs can be compared).

Usage: grpc_fuzz.py   (environment: KUBERAY_FUZZ_GRPC host:port, KUBERAY_FUZZ_KUBE,
KUBERAY_FUZZ_OUT, KUBERAY_FUZZ_SERVER_PID)
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import struct
import sys
import time
import zlib

import grpc
from google.protobuf.descriptor import FieldDescriptor as FD
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

import fixtures as fx
import names
from store import Store

ADDR = os.environ["KUBERAY_FUZZ_GRPC"]
OUT = os.environ["KUBERAY_FUZZ_OUT"]
SERVER_PID = int(os.environ.get("KUBERAY_FUZZ_SERVER_PID", "0"))
TIMEOUT = float(os.environ.get("KUBERAY_FUZZ_GRPC_TIMEOUT", "20"))
MAX_MESSAGE = 4096  # the server cuts error messages at 4 KiB (README: bounded error messages)

FAIL_CODES = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}

# ---------------------------------------------------------------------------------------------
# Wire format
# ---------------------------------------------------------------------------------------------
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
VARINT_TYPES = {FD.TYPE_INT32, FD.TYPE_INT64, FD.TYPE_UINT32, FD.TYPE_UINT64, FD.TYPE_BOOL, FD.TYPE_ENUM}
ZIGZAG_TYPES = {FD.TYPE_SINT32, FD.TYPE_SINT64}
I32_TYPES = {FD.TYPE_FIXED32: "<I", FD.TYPE_SFIXED32: "<i", FD.TYPE_FLOAT: "<f"}
I64_TYPES = {FD.TYPE_FIXED64: "<Q", FD.TYPE_SFIXED64: "<q", FD.TYPE_DOUBLE: "<d"}


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint((number << 3) | wire)


def ld(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + varint(len(payload)) + payload


def wire_type(fd) -> int:
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES, FD.TYPE_MESSAGE):
        return LEN
    if fd.type in VARINT_TYPES or fd.type in ZIGZAG_TYPES:
        return VARINT
    if fd.type in I32_TYPES:
        return I32
    if fd.type in I64_TYPES:
        return I64
    return LEN  # groups are not used by these protos


class Raw:
    """Bytes put on the wire as they are, in place of a field's encoding (tag included)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class RawVarint:
    """A varint-typed field's value, written as this exact (possibly non-canonical) integer."""

    def __init__(self, value: int) -> None:
        self.value = value


def is_map(fd) -> bool:
    return fd.type == FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry


def enc_value(fd, v) -> bytes:
    """One occurrence of field `fd` (tag included)."""
    if isinstance(v, Raw):
        return v.data
    if fd.type == FD.TYPE_MESSAGE:
        return ld(fd.number, v if isinstance(v, bytes) else encode(fd.message_type, v))
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return ld(fd.number, v if isinstance(v, bytes) else v.encode("utf-8"))
    if isinstance(v, RawVarint):
        return tag(fd.number, VARINT) + varint(v.value)
    if fd.type in VARINT_TYPES:
        return tag(fd.number, VARINT) + varint(int(v))
    if fd.type in ZIGZAG_TYPES:
        return tag(fd.number, VARINT) + varint((v << 1) ^ (v >> 63))
    if fd.type in I32_TYPES:
        return tag(fd.number, I32) + struct.pack(I32_TYPES[fd.type], v)
    if fd.type in I64_TYPES:
        return tag(fd.number, I64) + struct.pack(I64_TYPES[fd.type], v)
    raise ValueError(f"unsupported field type {fd.type} of {fd.full_name}")


def encode(desc, msg: dict) -> bytes:
    """A message from a dict: field name -> value; repeated: list; map: list of (key, value);
    message: dict (or bytes, encoded already); Raw anywhere: bytes as they are. Extra raw bytes
    to append go under the key None."""
    out = bytearray()
    for fd in desc.fields:
        if fd.name not in msg:
            continue
        v = msg[fd.name]
        if is_map(fd):
            kfd, vfd = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
            for k, val in v:
                out += ld(fd.number, enc_value(kfd, k) + enc_value(vfd, val))
        elif fd.is_repeated:
            for x in v:
                out += enc_value(fd, x)
        else:
            out += enc_value(fd, v)
    for raw in msg.get(None, []):
        out += raw
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Baselines: a valid request of each input type (names of the fixtures, fresh names for creates)
# ---------------------------------------------------------------------------------------------
def spec() -> dict:
    return {
        "head_group_spec": {
            "compute_template": fx.TEMPLATE,
            "image": fx.IMAGE,
            "ray_start_params": [("dashboard-host", "0.0.0.0")],
        },
        "worker_group_spec": [
            {
                "group_name": "small",
                "compute_template": fx.TEMPLATE,
                "image": fx.IMAGE,
                "replicas": 1,
                "min_replicas": 0,
                "max_replicas": 2,
                "ray_start_params": [],
            }
        ],
    }


SERVE_CONFIG = "applications:\n  - name: app\n    import_path: app:main\n"


def baseline(input_type: str, n: int) -> dict:
    ns = fx.NAMESPACE
    fresh = f"fz-{n}"
    named = lambda name: {"name": name, "namespace": ns}  # noqa: E731
    sub = {"namespace": ns, "clustername": fx.CLUSTER, "submissionid": fx.SUBMISSION}
    table = {
        "proto.CreateClusterRequest": {
            "namespace": ns,
            "cluster": {"name": fresh, "namespace": ns, "user": "fuzz", "cluster_spec": spec()},
        },
        "proto.GetClusterRequest": named(fx.CLUSTER),
        "proto.DeleteClusterRequest": named(fx.CLUSTER),
        "proto.ListClustersRequest": {"namespace": ns, "limit": 10},
        "proto.ListAllClustersRequest": {"limit": 10},
        "proto.CreateComputeTemplateRequest": {
            "namespace": ns,
            "compute_template": {"name": fresh, "namespace": ns, "cpu": 1, "memory": 1, "memory_unit": "Gi"},
        },
        "proto.GetComputeTemplateRequest": named(fx.TEMPLATE),
        "proto.DeleteComputeTemplateRequest": named(fx.TEMPLATE),
        "proto.ListComputeTemplatesRequest": {"namespace": ns},
        "proto.ListAllComputeTemplatesRequest": {},
        "proto.CreateRayJobRequest": {
            "namespace": ns,
            "job": {
                "name": fresh,
                "namespace": ns,
                "user": "fuzz",
                "entrypoint": "echo fuzz",
                "runtime_env": "env_vars:\n  A: b\n",
                "cluster_spec": spec(),
            },
        },
        "proto.GetRayJobRequest": named(fx.JOB),
        "proto.DeleteRayJobRequest": named(fx.JOB),
        "proto.ListRayJobsRequest": {"namespace": ns, "limit": 10},
        "proto.ListAllRayJobsRequest": {"limit": 10},
        "proto.CreateRayServiceRequest": {
            "namespace": ns,
            "service": {
                "name": fresh,
                "namespace": ns,
                "user": "fuzz",
                "serve_config_V2": SERVE_CONFIG,
                "cluster_spec": spec(),
            },
        },
        "proto.UpdateRayServiceRequest": {
            "namespace": ns,
            "name": fx.SERVICE,
            "service": {
                "name": fx.SERVICE,
                "namespace": ns,
                "user": "fuzz",
                "serve_config_V2": SERVE_CONFIG,
                "cluster_spec": spec(),
            },
        },
        "proto.GetRayServiceRequest": named(fx.SERVICE),
        "proto.DeleteRayServiceRequest": named(fx.SERVICE),
        "proto.ListRayServicesRequest": {"namespace": ns, "page_size": 10},
        "proto.ListAllRayServicesRequest": {"page_size": 10},
        "proto.SubmitRayJobRequest": {
            "namespace": ns,
            "clustername": fx.CLUSTER,
            "jobsubmission": {"entrypoint": "echo fuzz", "submission_id": fresh, "runtime_env": "env_vars:\n  A: b\n"},
        },
        "proto.GetJobDetailsRequest": dict(sub),
        "proto.GetJobLogRequest": dict(sub),
        "proto.StopRayJobSubmissionRequest": dict(sub),
        "proto.DeleteRayJobSubmissionRequest": dict(sub),
        "proto.ListJobDetailsRequest": {"namespace": ns, "clustername": fx.CLUSTER},
    }
    return table.get(input_type, {})


# ---------------------------------------------------------------------------------------------
# Field paths and hostile values
# ---------------------------------------------------------------------------------------------
# Fields the server only writes (OUTPUT_ONLY in the protos): not worth hostile values.
OUTPUT_ONLY = {
    "created_at", "deleted_at", "delete_at", "start_time", "end_time", "events", "cluster_state",
    "service_endpoint", "job_status", "job_deployment_status", "message", "ray_service_status",
    "ray_cluster_name",
}  # fmt: skip
# Strings that name or select something: they get every hostile value.
IDENTITY = {
    "name", "namespace", "clustername", "submissionid", "submission_id", "compute_template", "continue",
    "page_token", "group_name", "service_account", "image_pull_secret", "source", "storageClassName",
}  # fmt: skip
MB3 = "n" * (3 * 1024 * 1024)
HOSTILE_STRINGS = [
    "a#b", "base#zzz", "a?b", "%3Fwatch=true", "?watch=true", "fuzz-template?dryRun=All", "a/b", "../fuzz-template",
    "..", ".", "a%2Fb", "%", "%zz", "a b", " ", "\t", "", "\x00", "a\x00b", "a\nb", "\r\n", "\x1b[31m", "\x7f",
    "\u202e", "\u00e4", "\U0001F642", "-a", "a-", "A", "a" * 63 + "b", "a" * 64, "a" * 254, "a" * 300,
    "a.b", "a_b", "a:b", "a;b", "'", '"', "\\", "{}", "${jndi:x}", "*", "a,b", "a=b",
]  # fmt: skip
SHORT_HOSTILE_STRINGS = ["a#b?c/%d e", "", "\x00", "a\nb", "\x7f\x1b", "\u202e\U0001F642", "a" * 300, "{{}}"]
INVALID_UTF8 = [b"\xff", b"a\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80"]
NUMBERS = {
    FD.TYPE_INT32: [-1, -(2**31), 2**31 - 1],
    FD.TYPE_INT64: [-1, -(2**63), 2**63 - 1],
    FD.TYPE_UINT32: [2**32 - 1, RawVarint(2**64 - 1)],
    FD.TYPE_UINT64: [2**64 - 1],
    FD.TYPE_SINT32: [-1, -(2**31), 2**31 - 1],
    FD.TYPE_SINT64: [-(2**63), 2**63 - 1],
    FD.TYPE_FLOAT: [math.nan, math.inf, -math.inf, -1.0, 3.4e38, 1e-45],
    FD.TYPE_DOUBLE: [math.nan, math.inf, -math.inf, -1.0, 1.7e308],
    FD.TYPE_BOOL: [RawVarint(2), RawVarint(2**64 - 1)],
    FD.TYPE_ENUM: [-1, 999, 2**31 - 1],
    FD.TYPE_FIXED32: [2**32 - 1],
    FD.TYPE_FIXED64: [2**64 - 1],
    FD.TYPE_SFIXED32: [-(2**31)],
    FD.TYPE_SFIXED64: [-(2**63)],
}


def field_paths(desc, max_depth: int, prefix=(), seen=()):
    """Every field under `desc` as a path of field descriptors, depth-first, at most max_depth long;
    a map field yields (map, 'key') and (map, 'value') ends."""
    for fd in sorted(desc.fields, key=lambda f: f.number):
        path = prefix + (fd,)
        if fd.type == FD.TYPE_MESSAGE and fd.message_type.full_name.startswith("google.protobuf."):
            yield path, None
            continue
        if is_map(fd):
            yield path, None
            yield path, "key"
            yield path, "value"
            continue
        yield path, None
        if fd.type == FD.TYPE_MESSAGE and len(path) < max_depth and fd.message_type.full_name not in seen:
            yield from field_paths(fd.message_type, max_depth, path, seen + (desc.full_name,))


def set_path(msg: dict, path, end, value) -> dict:
    """Sets the field at `path` (creating what is missing; the first element of repeated
    messages) in `msg`, a baseline dict changed in place; `end` as in field_paths."""
    cur = msg
    for fd in path[:-1]:
        if fd.is_repeated:
            lst = cur.setdefault(fd.name, [])
            if not lst or not isinstance(lst[0], dict):
                lst.insert(0, {})
            cur = lst[0]
        else:
            nxt = cur.get(fd.name)
            if not isinstance(nxt, dict):
                nxt = cur[fd.name] = {}
            cur = nxt
    leaf = path[-1]
    if end == "key":
        cur[leaf.name] = list(cur.get(leaf.name, [])) + [(value, default_of(leaf.message_type.fields_by_name["value"]))]
    elif end == "value":
        cur[leaf.name] = list(cur.get(leaf.name, [])) + [("fuzz-key", value)]
    elif leaf.is_repeated:
        cur[leaf.name] = [value] + list(cur.get(leaf.name, []))[1:]
    else:
        cur[leaf.name] = value
    return msg


def get_path(msg: dict, path):
    """The baseline's value at `path` (first elements of repeated messages), or None."""
    cur = msg
    for fd in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(fd.name)
        if fd.is_repeated and fd is not path[-1]:
            cur = cur[0] if cur else None
    return cur


def append_raw(msg: dict, path, raw: bytes) -> dict:
    """Appends raw bytes inside the message that holds the last field of `path`."""
    cur = msg
    for fd in path[:-1]:
        if fd.is_repeated:
            lst = cur.setdefault(fd.name, [])
            if not lst or not isinstance(lst[0], dict):
                lst.insert(0, {})
            cur = lst[0]
        else:
            nxt = cur.get(fd.name)
            if not isinstance(nxt, dict):
                nxt = cur[fd.name] = {}
            cur = nxt
    cur.setdefault(None, []).append(raw)
    return msg


def default_of(fd):
    if fd.type == FD.TYPE_MESSAGE:
        return {}
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return "v"
    if fd.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return 1.0
    return 1


def leaf_type(path, end):
    leaf = path[-1]
    if end:
        return leaf.message_type.fields_by_name[end]
    return leaf


def field_key(path, end):
    """A field as a type member: the same field reached again (another method's ClusterSpec,
    a Volume in another group) is the same key."""
    return (path[-1].containing_type.full_name, path[-1].name, end)


def hostile_values(path, end, again: bool):
    """Hostile values for a field; a field already fuzzed in full (`again`) gets a few."""
    fd = leaf_type(path, end)
    name = "key" if end == "key" else path[-1].name
    if again:
        if fd.type == FD.TYPE_STRING:
            return ["", SHORT_HOSTILE_STRINGS[0], "\x00", "a" * 300]
        return enum_values(fd) + list(NUMBERS.get(fd.type, []))[:1]
    if fd.type == FD.TYPE_STRING:
        if end == "key" or name in IDENTITY:
            values = list(HOSTILE_STRINGS)
            if len(path) <= 2 and end is None:
                values.append(MB3)
            return values
        return list(SHORT_HOSTILE_STRINGS)
    if fd.type == FD.TYPE_BYTES:
        return [b"", b"\x00" * 300]
    return enum_values(fd) + list(NUMBERS.get(fd.type, []))


def enum_values(fd) -> list:
    """Every value an enum field defines: valid, but each may take another path on the server."""
    if fd.type != FD.TYPE_ENUM:
        return []
    return [v.number for v in fd.enum_type.values]


def describe_path(path, end) -> str:
    return ".".join(f.name for f in path) + (f"[{end}]" if end else "")


def short(v) -> str:
    if isinstance(v, RawVarint):
        return f"varint {v.value}"
    if isinstance(v, (bytes, str)) and len(v) > 40:
        return f"{v[:12]!r}... ({len(v)} {'bytes' if isinstance(v, bytes) else 'chars'})"
    return repr(v)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------
def nest_unknown(depth: int) -> bytes:
    inner = b""
    for _ in range(depth):
        inner = ld(15000, inner)
    return inner


def cases(method, counter, seen: set):
    """(kind, label, request bytes, must fail, echo probe) for one method (must fail: the request
    names something the server must refuse; echo probe: text of a long input value that the error
    message must not repeat); `counter()` gives fresh numbers for names;
    `seen` holds the fields already fuzzed in full (by earlier methods), updated here."""
    desc = method.input_type
    itype = desc.full_name
    rng = random.Random(zlib.crc32(method.full_name.encode()))
    base = lambda: baseline(itype, counter())  # noqa: E731
    B = encode(desc, base())

    yield "empty", "empty message", b"", False, None
    yield "baseline", "the valid baseline", encode(desc, base()), False, None

    paths = list(field_paths(desc, max_depth=6))
    for path, end in paths:
        if any(f.name in OUTPUT_ONLY for f in path):
            continue
        key = ("hostile",) + field_key(path, end)
        values = hostile_values(path, end, key in seen)
        leaf = path[-1].name
        checked = end is None and (len(path) <= 2 or leaf == "compute_template")
        current = get_path(base(), path) if end is None else None
        if isinstance(current, str) and current and leaf_type(path, end).type == FD.TYPE_STRING:
            # Aimed at the object the baseline names (a fixture): must not reach it, or another.
            values += [current + suffix for suffix in ("#zzz", "?dryRun=All", "/status", "%2Fx", "%00", " ")]
        for v in values:
            msg = set_path(base(), path, end, v)
            must_fail = checked and names.breaks_rule(leaf, v)
            probe = v[:100] if isinstance(v, str) and len(v) >= 100 else None
            yield "hostile", f"{describe_path(path, end)} = {short(v)}", encode(desc, msg), must_fail, probe
        seen.add(key)

    for path, end in paths:
        if leaf_type(path, end).type != FD.TYPE_STRING:
            continue
        key = ("utf8",) + field_key(path, end)
        for bad in INVALID_UTF8[:1] if key in seen else INVALID_UTF8:
            yield "utf8", f"{describe_path(path, end)} = {bad!r}", encode(desc, set_path(base(), path, end, bad)), False, None
        seen.add(key)

    wrong_payload = {
        VARINT: varint(1),
        I64: b"\x01" * 8,
        LEN: varint(3) + b"abc",
        SGROUP: b"",
        EGROUP: b"",
        I32: b"\x01" * 4,
        6: b"",
        7: b"",
    }
    for path, end in field_paths(desc, max_depth=4):
        if end:
            continue
        fd = path[-1]
        key = ("wiretype",) + field_key(path, end)
        if key in seen:
            continue
        seen.add(key)
        for wt in (VARINT, I64, LEN, SGROUP, EGROUP, I32, 6, 7):
            if wt == wire_type(fd):
                continue
            raw = tag(fd.number, wt) + wrong_payload[wt]
            yield "wiretype", f"{describe_path(path, end)} as wire type {wt}", encode(desc, append_raw(base(), path, raw)), False, None

    for path, end in field_paths(desc, max_depth=2):
        fd = path[-1]
        if end or wire_type(fd) != LEN:
            continue
        for label, length in (
            ("2^31-1", varint(2**31 - 1)),
            ("2^32+3", varint(2**32 + 3)),
            ("2^63-1", varint(2**63 - 1)),
            ("2^64-1", varint(2**64 - 1)),
            ("past the end", varint(4)),
            ("overlong varint", b"\xff" * 10 + b"\x01"),
        ):
            raw = tag(fd.number, LEN) + length + b"abc"
            msg = base()
            if len(path) == 1:
                data = encode(desc, msg) + raw  # the bad length runs to the end of the message
            else:
                data = encode(desc, append_raw(msg, path, raw))
            yield "length", f"{describe_path(path, end)} with length {label}", data, False, None

    for depth in (100, 1000, 10000):
        yield "nesting", f"unknown field nested {depth} deep", B + nest_unknown(depth), False, None
        yield "nesting", f"groups nested {depth} deep", B + tag(15000, SGROUP) * depth + tag(15000, EGROUP) * depth, False, None
    yield "nesting", "unterminated groups 10000 deep", B + tag(15000, SGROUP) * 10000, False, None

    cuts = list(range(1, len(B))) if len(B) <= 64 else sorted(rng.sample(range(1, len(B)), 48))
    for cut in cuts:
        yield "truncated", f"baseline cut at {cut} of {len(B)} bytes", B[:cut], False, None

    for i, length in enumerate([1, 2, 3, 4, 5, 7, 8, 16, 33, 64, 128, 255, 512, 1024, 4096, 65536] * 2):
        yield "random", f"{length} random bytes #{i}", rng.randbytes(length), False, None
    if method.name.startswith(("Create", "Submit")):
        yield "random", "5 MiB of random bytes", rng.randbytes(5 * 1024 * 1024), False, None

    yield "misc", "field number 0", B + b"\x00", False, None
    yield "misc", "field number 0 with a length", B + b"\x02\x03abc", False, None
    yield "misc", "field number 2^29-1 (largest)", B + tag(2**29 - 1, VARINT) + varint(1), False, None
    yield "misc", "field number 2^29 (too large)", B + varint((2**29) << 3) + varint(1), False, None
    yield "misc", "tag varint of 11 bytes", B + b"\x80" * 10 + b"\x01", False, None
    yield "misc", "unterminated varint at the end", B + b"\x80", False, None
    yield "misc", "baseline twice (merged)", B + B, False, None
    yield "misc", "baseline 1000 times (merged)", B * 1000, False, None
    for fd in desc.fields:
        if wire_type(fd) == VARINT:
            yield "misc", f"{fd.name}: varint of 11 bytes", B + tag(fd.number, VARINT) + b"\xff" * 10 + b"\x01", False, None
            yield "misc", f"{fd.name}: packed where not repeated", B + ld(fd.number, varint(1) + varint(2)), False, None


# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
def server_alive() -> bool:
    if not SERVER_PID:
        return True
    try:
        with open(f"/proc/{SERVER_PID}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main() -> int:
    channel = grpc.insecure_channel(
        ADDR,
        options=[
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_metadata_size", 64 * 1024 * 1024),
            ("grpc.enable_retries", 0),
        ],
    )
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = DescriptorPool(db)
    services = sorted(s for s in db.get_services() if s.startswith("proto."))
    methods = [m for s in services for m in pool.FindServiceByName(s).methods]
    print(f"grpc: {len(services)} services, {len(methods)} methods by reflection: {', '.join(services)}", flush=True)
    health = channel.unary_unary("/grpc.health.v1.Health/Check")

    store = Store(os.environ["KUBERAY_FUZZ_KUBE"], os.path.join(OUT, "fixtures.json"))
    failures = open(os.path.join(OUT, "grpc-failures.jsonl"), "w", encoding="utf-8")
    # Every request and its answer, one line each: two runs of the same code give the same file.
    trace = open(os.path.join(OUT, "grpc-trace.tsv"), "w", encoding="utf-8")
    counts = collections.Counter()
    by_method = collections.defaultdict(collections.Counter)
    by_kind = collections.Counter()
    answers = collections.Counter()
    examples: dict = {}  # answer -> the first case that got it
    n = [0]

    def counter() -> int:
        n[0] += 1
        return n[0]

    def fail(record: dict) -> None:
        counts["failed_requests"] += 1
        failures.write(json.dumps(record) + "\n")
        failures.flush()

    dead = False
    seen: set = set()
    started = time.monotonic()
    for method in methods:
        path = f"/{method.containing_service.full_name}/{method.name}"
        call = channel.unary_unary(path)  # no serializers: raw bytes in and out
        destructive = method.name.startswith("Delete")
        store.settle()
        t0 = time.monotonic()
        sent = 0
        for kind, label, data, must_fail, probe in cases(method, counter, seen):
            before = store.before()
            start = time.monotonic()
            try:
                call.with_call(data, timeout=TIMEOUT)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as e:
                code, details = e.code(), e.details() or ""
            elapsed = time.monotonic() - start
            sent += 1
            counts["requests"] += 1
            counts[code.name] += 1
            by_method[method.full_name][code.name] += 1
            by_kind[kind] += 1
            trace.write(f"{method.name}\t{kind}\t{label[:100]!r}\t{code.name}\t{details[:100]!r}\n")
            akey = (method.full_name, code.name, details[:60])
            answers[akey] += 1
            examples.setdefault(akey, f"{kind}: {label}"[:200])
            problems = []
            if code in FAIL_CODES:
                if code == grpc.StatusCode.DEADLINE_EXCEEDED and elapsed >= TIMEOUT - 0.5:
                    problems.append(f"no answer within {TIMEOUT:.0f}s")
                else:
                    problems.append(f"answered {code.name}")
            if must_fail and code == grpc.StatusCode.OK:
                problems.append("succeeded with a name the server must refuse")
            if len(details.encode("utf-8", "surrogateescape")) > MAX_MESSAGE:
                problems.append(f"error message of {len(details.encode())} bytes (more than {MAX_MESSAGE})")
            if code == grpc.StatusCode.UNAVAILABLE and not server_alive():
                problems.append("the server died")
                dead = True
            if not dead:
                change = store.after(before, code != grpc.StatusCode.OK, destructive=destructive)
                if change is not None:
                    problems.append("failed request changed the store: " + change)
                    counts["store_changed_on_failure"] += 1
            if problems:
                fail(
                    {
                        "surface": "grpc",
                        "method": method.full_name,
                        "kind": kind,
                        "case": label,
                        "request_bytes": len(data),
                        "request_head": data[:120].hex(),
                        "code": code.name,
                        "details": details[:400] + (f"... ({len(details)} chars)" if len(details) > 400 else ""),
                        "problems": problems,
                    }
                )
            if dead:
                break
        if not dead:
            try:
                health.with_call(b"", timeout=TIMEOUT)
            except grpc.RpcError as e:
                fail({"surface": "grpc", "method": method.full_name, "kind": "health",
                      "case": "health check after the method's requests", "code": e.code().name,
                      "details": (e.details() or "")[:400], "problems": ["health check failed"]})  # fmt: skip
                dead = not server_alive()
        print(f"grpc: {method.full_name}: {sent} requests in {time.monotonic() - t0:.1f}s", flush=True)
        if dead:
            fail({"surface": "grpc", "method": method.full_name, "kind": "liveness", "case": "-",
                  "code": "-", "details": "", "problems": ["the server died; the remaining methods were not fuzzed"]})  # fmt: skip
            break
    if not dead:
        store.settle()
    failures.close()
    trace.close()
    with open(os.path.join(OUT, "grpc-counts.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "totals": dict(counts),
                "methods": len(methods),
                "services": services,
                "seconds": round(time.monotonic() - started, 1),
                "by_kind": dict(by_kind),
                "by_method": {k: dict(v) for k, v in by_method.items()},
            },
            f,
            indent=1,
        )
    with open(os.path.join(OUT, "grpc-answers.json"), "w", encoding="utf-8") as f:
        json.dump([[*k, v, examples[k]] for k, v in sorted(answers.items())], f, indent=0)
    if len(services) < 5:
        print(f"grpc: expected the five API services by reflection, found {services}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
