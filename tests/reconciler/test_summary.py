"""A service's status words across a failing replica's retries: they hold still between tries."""

from __future__ import annotations

from dataclasses import replace

from arkserve.domain.services import revision
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.summary import summarize
from arkserve.store.routing import _route
from arkserve.store.services import ReplicaRow, ServiceRow

OLD = {"image": "img", "command": "serve", "port": 8000}
NEW = {**OLD, "env": {"CRASH_AT_START": "3"}}
CONFIG = ReconcilerConfig()


def _svc(spec: dict[str, object], replicas: int = 1) -> ServiceRow:
    return ServiceRow(1, "svc", 1, "owner", spec, replicas, 2, None, "", "", "", False, 0.0, 0.0)


def _rep(rid: str, spec: dict[str, object], state: str, restarts: int = 0, error: str = "") -> ReplicaRow:
    return ReplicaRow(rid, 1, revision(spec), state, restarts=restarts, last_error=error)


def test_a_stalled_rollout_stays_degraded_while_its_new_replica_is_tried_again() -> None:
    svc, old = _svc(NEW), _rep("r-old", OLD, "ready")
    crashed = _rep("r-new", NEW, "failed", restarts=1, error="exited with code 3")
    assert summarize(svc, [old, crashed], CONFIG)[:2] == ("degraded", "RolloutStalled")
    retried = _rep("r-new", NEW, "starting", restarts=1, error="exited with code 3")  # started again
    status, reason, message = summarize(svc, [old, retried], CONFIG)
    assert (status, reason) == ("degraded", "RolloutStalled") and "exited with code 3" in message
    fresh = _rep("r-new", NEW, "starting")  # a first start is an ordinary rolling update
    assert summarize(svc, [old, fresh], CONFIG)[:2] == ("updating", "RollingUpdate")
    ready = _rep("r-new", NEW, "ready", restarts=1)  # it came up after all
    assert summarize(svc, [old, ready], CONFIG)[:2] == ("updating", "RollingUpdate")


def test_a_crash_loop_stays_failed_while_the_replica_is_tried_again() -> None:
    svc, n = _svc(NEW), CONFIG.crashloop_restarts
    looping = _rep("r1", NEW, "failed", restarts=n, error="exited with code 3")
    assert summarize(svc, [looping], CONFIG)[:2] == ("failed", "CrashLoop")
    retried = _rep("r1", NEW, "starting", restarts=n, error="nothing listens on 127.0.0.1:9")
    other = _rep("r2", NEW, "failed", restarts=n, error="exited with code 3")
    assert summarize(svc, [retried], CONFIG)[:2] == ("failed", "CrashLoop")
    message = summarize(_svc(NEW, 2), [retried, other], CONFIG)[2]
    assert "replica r2 restarted" in message and "exited with code 3" in message  # the crash, not the probe note
    early = _rep("r1", NEW, "starting", restarts=n - 1, error="exited with code 3")  # not a loop yet
    assert summarize(svc, [early], CONFIG)[:2] == ("progressing", "Scaling")


def _canary_svc(replicas: int, weight: int = 10) -> ServiceRow:
    return ServiceRow(1, "svc", 1, "owner", OLD, replicas, 2, None, "", "", "", False, 0.0, 0.0,
                      canary_spec=NEW, canary_weight=weight)


def test_a_canary_beside_a_stable_revision_at_0_is_the_services_status() -> None:
    """Stable scaled to 0, the canary takes every request (docs/canary.md): the service is not stopped."""
    svc, canary = _canary_svc(0), revision(NEW)
    status, reason, message = summarize(svc, [_rep("c1", NEW, "ready")], CONFIG)
    assert (status, reason) == ("ready", "CanaryOnly"), (status, reason, message)
    assert f"canary {canary} serves every request (1/1 replicas ready)" in message
    assert summarize(svc, [_rep("c1", NEW, "starting")], CONFIG)[:2] == ("progressing", "Scaling")
    assert summarize(svc, [], CONFIG)[:2] == ("progressing", "Scaling")  # its replica not started yet
    looping = _rep("c1", NEW, "failed", restarts=CONFIG.crashloop_restarts, error="exited with code 3")
    status, reason, message = summarize(svc, [looping], CONFIG)  # nothing else serves: the service fails
    assert (status, reason) == ("failed", "CrashLoop") and "exited with code 3" in message
    # with stable replicas the canary's words follow the stable revision's, as before
    status, reason, message = summarize(_canary_svc(1), [_rep("s1", OLD, "ready"), _rep("c1", NEW, "ready")], CONFIG)
    assert (status, reason) == ("ready", "Running") and message == f"1/1 replicas ready; canary {canary} 1/1 ready, " \
        "10% of requests"
    assert summarize(_svc(OLD, 0), [], CONFIG)[:2] == ("stopped", "ScaledToZero")  # no canary: stopped


def test_the_gateway_says_why_a_canary_beside_a_stable_revision_at_0_is_not_ready() -> None:
    """The route takes the status: a starting canary is "Scaling" to a caller, not "ScaledToZero"."""
    svc, starting = _canary_svc(0), _rep("c1", NEW, "starting")
    svc = replace(svc, status=(s := summarize(svc, [starting], CONFIG))[0], reason=s[1], message=s[2])
    assert _route(svc, [starting]).not_ready == "Scaling"
    svc = replace(_svc(OLD, 0), status="stopped", reason="ScaledToZero")  # no canary: scaled to 0, as before
    assert _route(svc, []).not_ready == "ScaledToZero"
