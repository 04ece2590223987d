"""The name rules the server enforces (README: "Names are checked before Kubernetes sees them"), so
that the fuzzers can tell a request that must fail: one whose namespace or object name breaks them
can never be a success, whatever object it might otherwise reach."""

from __future__ import annotations

import re

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")

# Which rule each request field or path parameter follows.
NAMESPACE_FIELDS = {"namespace"}
NAME_FIELDS = {"name", "clustername", "compute_template", "computeTemplate"}
SUBMISSION_FIELDS = {"submissionid", "submission_id", "submissionId"}


def is_label(v: str) -> bool:
    return len(v) <= 63 and bool(_LABEL.match(v))


def is_subdomain(v: str) -> bool:
    return len(v) <= 253 and bool(_SUBDOMAIN.match(v))


def is_submission_id(v: str) -> bool:
    return (
        v not in ("", ".", "..")
        and "/" not in v
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in v)
        and len(v.encode("utf-8", "surrogatepass")) <= 253
    )


def breaks_rule(field: str, value) -> bool:
    """Whether `value` of `field` breaks the server's rule for it (empty values are left out:
    several requests take an empty namespace or id to mean "all" or "generate one")."""
    if not isinstance(value, str) or value == "":
        return False
    if field in NAMESPACE_FIELDS:
        return not is_label(value)
    if field in NAME_FIELDS:
        return not is_subdomain(value)
    if field in SUBMISSION_FIELDS:
        return not is_submission_id(value)
    return False
