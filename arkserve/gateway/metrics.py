"""Gateway metrics in Prometheus text format, cheap enough for the hot path.

Counters are plain dicts updated inline (no locks, no label objects). Each worker renders its
own values; with several workers, every worker periodically dumps its state into a shared
directory and ``/metrics`` (served by whichever worker accepts the scrape) sums all dumps.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_STATUS_CLASS = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.hist: dict[str, list[float]] = {}  # service -> bucket counts..., +Inf, sum
        self.inflight = 0
        self.upstream_errors: dict[tuple[str, str], int] = {}
        self.auth_failures: dict[str, int] = {}
        self.queue_depth: dict[str, int] = {}
        self.request_log_lost: dict[str, int] = {}  # reason -> rows (Core.tick copies the sink's counters)
        self._gone: dict[tuple[str, str], float] = {}  # (service, replica or "" for the service) -> gone since

    def observe(self, service: str, replica: str, status: int, latency_s: float) -> None:
        k = (service, replica, _STATUS_CLASS[status // 100] if status < 600 else "5xx")
        req = self.requests
        req[k] = req.get(k, 0) + 1
        if status == 101:  # a tunnel's whole life (tunnel.py), not a response time
            return
        h = self.hist.get(service)
        if h is None:
            h = self.hist[service] = [0.0] * (len(BUCKETS) + 2)
        h[bisect_left(BUCKETS, latency_s)] += 1
        h[-1] += latency_s

    def upstream_error(self, service: str, kind: str) -> None:
        k = (service, kind)
        self.upstream_errors[k] = self.upstream_errors.get(k, 0) + 1

    def auth_failure(self, code: str) -> None:
        self.auth_failures[code] = self.auth_failures.get(code, 0) + 1

    def prune(self, live: Callable[[str], Collection[str] | None], now: float, grace_s: float) -> None:
        """Forget the series of replicas and services gone for ``grace_s`` or longer (every rolling update
        makes new replicas: kept forever, their series would grow a long-lived gateway's memory and every
        scrape without end). ``live(service)`` is the service's replicas now, None once it is deleted. The
        grace lets scrapers read a gone series' last value; Prometheus handles a counter that disappears."""
        replicas: dict[str, Collection[str] | None] = {}
        gone: set[tuple[str, str]] = set()
        for s, r, _ in self.requests:
            if not s:  # requests that named no service (404 NoSuchService): never gone
                continue
            if s not in replicas:
                replicas[s] = live(s)
            reps = replicas[s]
            if reps is None:
                gone.add((s, ""))
            elif r and r not in reps:
                gone.add((s, r))
        for s in [*self.hist, *(s for s, _ in self.upstream_errors)]:
            if s and s not in replicas:
                replicas[s] = live(s)
            if s and replicas[s] is None:
                gone.add((s, ""))
        self._gone = {k: self._gone.get(k, now) for k in gone}  # what came back is no longer gone
        drop = {k for k, since in self._gone.items() if now - since >= grace_s}
        if not drop:
            return
        services = {s for s, r in drop if not r}
        self.requests = {k: v for k, v in self.requests.items()
                         if k[0] not in services and (k[0], k[1]) not in drop}
        self.upstream_errors = {k: v for k, v in self.upstream_errors.items() if k[0] not in services}
        for s in services:
            self.hist.pop(s, None)
        for k in drop:
            del self._gone[k]

    # ----------------------------------------------------------------- multi-worker aggregation
    def state(self) -> dict[str, Any]:
        return {
            "requests": [[*k, v] for k, v in self.requests.items()],
            "hist": self.hist,
            "inflight": self.inflight,
            "upstream_errors": [[*k, v] for k, v in self.upstream_errors.items()],
            "auth_failures": self.auth_failures,
            "queue_depth": self.queue_depth,
            "request_log_lost": self.request_log_lost,
        }

    def dump(self, directory: Path) -> None:
        tmp = directory / f".w{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.state()))
        tmp.replace(directory / f"w{os.getpid()}.json")

    def merge(self, st: dict[str, Any]) -> None:
        for s, r, c, v in st["requests"]:
            self.requests[(s, r, c)] = self.requests.get((s, r, c), 0) + v
        for svc, h in st["hist"].items():
            mine = self.hist.setdefault(svc, [0.0] * (len(BUCKETS) + 2))
            for i, v in enumerate(h):
                mine[i] += v
        self.inflight += st["inflight"]
        for s, kind, v in st["upstream_errors"]:
            self.upstream_errors[(s, kind)] = self.upstream_errors.get((s, kind), 0) + v
        for code, v in st["auth_failures"].items():
            self.auth_failures[code] = self.auth_failures.get(code, 0) + v
        for svc, v in st["queue_depth"].items():
            self.queue_depth[svc] = self.queue_depth.get(svc, 0) + v
        for reason, v in st.get("request_log_lost", {}).items():  # absent from a dump of an older worker
            self.request_log_lost[reason] = self.request_log_lost.get(reason, 0) + v


def aggregate(own: Metrics, directory: Path | None) -> Metrics:
    """Own live values plus every other worker's latest dump in ``directory``."""
    total = Metrics()
    total.merge(own.state())
    if directory is not None:
        mine = f"w{os.getpid()}.json"
        for path in directory.glob("w*.json"):
            if path.name == mine:
                continue
            try:
                total.merge(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return total


def render(m: Metrics) -> bytes:
    out: list[str] = []
    add = out.append
    add("# HELP arkserve_gateway_requests_total Requests answered, by service, replica and status class.")
    add("# TYPE arkserve_gateway_requests_total counter")
    for (s, r, c), v in sorted(m.requests.items()):
        add(f'arkserve_gateway_requests_total{{service="{_esc(s)}",replica="{_esc(r)}",status="{c}"}} {v}')
    add("# HELP arkserve_gateway_request_duration_seconds Request latency, headers in to response end.")
    add("# TYPE arkserve_gateway_request_duration_seconds histogram")
    for s, h in sorted(m.hist.items()):
        lab = f'service="{_esc(s)}"'
        acc = 0.0
        for i, b in enumerate(BUCKETS):
            acc += h[i]
            add(f'arkserve_gateway_request_duration_seconds_bucket{{{lab},le="{b}"}} {int(acc)}')
        acc += h[len(BUCKETS)]
        add(f'arkserve_gateway_request_duration_seconds_bucket{{{lab},le="+Inf"}} {int(acc)}')
        add(f"arkserve_gateway_request_duration_seconds_sum{{{lab}}} {h[-1]}")
        add(f"arkserve_gateway_request_duration_seconds_count{{{lab}}} {int(acc)}")
    add("# HELP arkserve_gateway_inflight_requests Requests in progress.")
    add("# TYPE arkserve_gateway_inflight_requests gauge")
    add(f"arkserve_gateway_inflight_requests {m.inflight}")
    add("# HELP arkserve_gateway_upstream_errors_total Failures talking to replicas, by kind.")
    add("# TYPE arkserve_gateway_upstream_errors_total counter")
    for (s, k), v in sorted(m.upstream_errors.items()):
        add(f'arkserve_gateway_upstream_errors_total{{service="{_esc(s)}",kind="{k}"}} {v}')
    add("# HELP arkserve_gateway_queue_depth Requests waiting for a free replica.")
    add("# TYPE arkserve_gateway_queue_depth gauge")
    for s, v in sorted(m.queue_depth.items()):
        add(f'arkserve_gateway_queue_depth{{service="{_esc(s)}"}} {v}')
    add("# HELP arkserve_gateway_auth_failures_total Rejected signatures, by error code.")
    add("# TYPE arkserve_gateway_auth_failures_total counter")
    for code, v in sorted(m.auth_failures.items()):
        add(f'arkserve_gateway_auth_failures_total{{code="{_esc(code)}"}} {v}')
    add("# HELP arkserve_gateway_request_log_lost_total Request-log rows that were not handed on, by reason "
        "(backlog: the sink's queue was full; delivery: its writer failed).")
    add("# TYPE arkserve_gateway_request_log_lost_total counter")
    for reason, v in sorted(m.request_log_lost.items()):
        add(f'arkserve_gateway_request_log_lost_total{{reason="{reason}"}} {v}')
    return ("\n".join(out) + "\n").encode()
