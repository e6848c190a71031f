"""Pure facts about services: their names, the revision of a spec, and the endpoint a service is reached at."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

# A service's name: a DNS label (the API's schema and the CLI check it; the CLI without loading pydantic).
DNS_LABEL_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# A service may ask for this many replicas; capacity and quotas decide how many are placed.
MAX_REPLICAS = 1000
# The statuses the reconciler records for a service (what the list's ``status`` filter matches).
SERVICE_STATUSES = ("pending", "progressing", "updating", "ready", "stopped", "degraded", "failed", "deleting")

# Changing any of these replaces replicas (a rolling update); other fields apply in place.
ROLLING_FIELDS = ("image", "command", "env", "port", "instance_type", "model", "mounts")


# The host's kernel interfaces and runtime state: never an app directory (``image: /proc`` would lay the host's
# /proc, every process's environment and root included, over the sandbox's own).
HOST_PSEUDO_ROOTS = ("/proc", "/sys", "/dev", "/run")


def app_dir_refused(resolved: str) -> str:
    """Why the (resolved) directory cannot be a local app directory, or ''."""
    for root in HOST_PSEUDO_ROOTS:
        if resolved == root or resolved.startswith(root + "/"):
            return f"{resolved} is under {root}, the host's own state, not an app directory"
    return ""


def overlaps(resolved: str, data_dir: str) -> bool:
    """Whether the (resolved) directory is the (resolved) data dir, lies inside it, or contains it: a local app
    directory must not, since a replica never sees the data dir (checked at create and again at start)."""
    p, d = PurePosixPath(resolved), PurePosixPath(data_dir)
    return p == d or p.is_relative_to(d) or d.is_relative_to(p)


def revision(spec: Mapping[str, Any]) -> str:
    """A short stable hash of the fields that need new replicas when they change.

    An empty ``mounts`` is left out, so a service from before mounts existed keeps its revision."""
    subset = {k: spec.get(k) for k in ROLLING_FIELDS if k != "mounts" or spec.get(k)}
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()[:10]


def endpoint(name: str, *, addressing: str, gateway_port: int | None, host: str, base_domain: str,
             host_port: int, tls: bool) -> str:
    scheme = "https" if tls else "http"
    if addressing == "host":
        default = 443 if tls else 80
        suffix = "" if host_port == default else f":{host_port}"
        return f"{scheme}://{name}.{base_domain}{suffix}"
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 (we only display it)
    return f"{scheme}://{shown}:{gateway_port}" if gateway_port else ""
