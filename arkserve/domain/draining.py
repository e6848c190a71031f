"""When a replica taken away may be stopped: the pure rule (the reconciler reads the store for it, worker.py).

A replica taken away (scale-in, a rolling update, a canary's promotion or rollback, deletion) first leaves routing.
It is stopped once every live gateway worker serves a snapshot without it *and* no gateway worker reports a
request still in flight on it, or once its drain limit has passed, whichever comes first.

Gateway workers report the requests in flight per replica with their per-service load (``gateway/load.py``), under
the key :func:`replica_key` in the same rows (``store/load.py``): every replica that had some since the last
report (the most at once), and every replica that left routing with requests still on it (the count now), about
once a second. A worker reports a snapshot as served (its ack) before its next load report, so a replica is only
taken for idle ``report_s`` after the gateways caught up: by then a request that was on it is in a report. A worker
that stopped reporting counts as done once its rows are stale (``store.load.FRESH_S``).

The limit covers the longest request the replica may be serving: the service's ``request_timeout_s`` (the
gateway's inactivity timeout toward a replica), or ``asyncq.request_timeout_s`` when the service has asynchronous
requests running (the dispatcher's requests run under that one), plus ``drain_timeout_s`` for the gateways to take
it out of routing. Past it the replica is stopped whatever is left on it: a response that keeps streaming for longer,
or a gateway whose count is wrong, do not keep a replica forever. Open tunnels (WebSockets) are not counted at all:
they last as long as their clients want, end when the replica stops, and the clients reconnect elsewhere.
"""

from __future__ import annotations

REPLICA_KEY = "@"  # a service name is a DNS label: it never starts with this


def replica_key(replica: str) -> str:
    """The key of a replica's in-flight count in a gateway worker's load report."""
    return REPLICA_KEY + replica


def replica_of(key: str) -> str:
    """The replica a load report's key names; "" for a service's key."""
    return key[len(REPLICA_KEY):] if key.startswith(REPLICA_KEY) else ""


def drain_limit_s(request_timeout_s: float, drain_timeout_s: float, async_timeout_s: float = 0.0) -> float:
    """The longest a replica drains: its longest request, plus the time the gateways get to drop it."""
    return max(request_timeout_s, async_timeout_s) + drain_timeout_s


def may_stop(waited: float, *, caught_up_for: float | None, inflight: int, gateways: int, min_s: float,
             report_s: float, limit_s: float) -> bool:
    """Whether a replica out of routing for ``waited`` seconds may be stopped now.

    ``caught_up_for``: how long every live gateway worker has served a snapshot without it (None: not all yet);
    ``inflight``: the requests on it that fresh load reports name; ``gateways``: the live gateway workers."""
    if waited >= limit_s:
        return True
    if waited < min_s or caught_up_for is None or inflight > 0:
        return False
    return gateways == 0 or caught_up_for >= report_s
