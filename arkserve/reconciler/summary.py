"""A service's status in words a user can act on, from its replica rows (what a pass writes as the status).

``summarize`` gives (status, reason, message): ``ready``/``Running``, ``progressing``/``Scaling`` (or
``WrongPort``), ``pending``/``Unschedulable``, ``failed`` with the start's error code or ``CrashLoop``,
``degraded``/``RolloutStalled``, ``updating``/``RollingUpdate`` (with why a new replica waits unplaced, and the way
out: ``--max-surge 0``), ``stopped``/``ScaledToZero``, ``deleting``;
``ready``/``CanaryOnly`` when the stable revision is scaled to 0 and a ready canary serves every request.
"""

from __future__ import annotations

from dataclasses import replace

from arkserve.domain.canary import canary_replicas
from arkserve.domain.planning import ReplicaState
from arkserve.domain.services import revision
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.store import canary as canary_store
from arkserve.store.services import ReplicaRow, ServiceRow

READY, STARTING, FAILED, DRAINING, PENDING = (ReplicaState.READY.value, ReplicaState.STARTING.value,
                                               ReplicaState.FAILED.value, ReplicaState.DRAINING.value,
                                               ReplicaState.PENDING.value)

CANNOT_START = "cannot start"
WRONG_PORT = "the app listens on "  # the start of listening.wrong_port_message


def _failure_reason(last_error: str) -> str:
    """``ImageNotFound`` and the like when the runtime refused to start it at all; else ``CrashLoop``."""
    if last_error.startswith(CANNOT_START + " ("):
        code = last_error[len(CANNOT_START) + 2:].split(")", 1)[0]
        if code.isalnum():
            return code
    return "CrashLoop"


def _retried(r: ReplicaRow) -> bool:
    """Failed, or started again after failing and not ready yet. Between two tries a failing replica is
    ``starting``; counting only ``failed`` made the status flip to updating/progressing and back with each try."""
    return r.state == FAILED or (r.state == STARTING and r.restarts > 0)


def _waiting_new(svc: ServiceRow, waiting: list[ReplicaRow]) -> str:
    """Why a rolling update's new replica waits unplaced (Unschedulable, NoFreePrepaidInstance, ...), and the way
    out when the room it waits for is the old replica's own (a full host, every prepaid instance in use): a new
    replica is started beside the old ones (``max_surge`` 1), so such an update is done in place."""
    if not waiting:
        return ""
    r = waiting[0]
    hint = "" if int(svc.spec.get("max_surge", 1)) == 0 else (
        f". If the room it needs is held by this service's old replicas (a full host, or every prepaid instance in "
        f"use), replace them in place: arkserve service update {svc.name} --max-surge 0")
    return f"; new replica {r.id} waits: {r.last_error}{hint}"


def summarize(svc: ServiceRow, rows: list[ReplicaRow], config: ReconcilerConfig) -> tuple[str, str, str]:
    """(status, reason, message) of a service from its replicas, in words a user can act on; a canary's
    replicas are left out of the stable revision's words and described after them (docs/canary.md)."""
    rows, canary_rows = canary_store.split_rows(svc, rows)
    status, reason, message = _summarize(svc, rows, config)
    if svc.canary_spec and not svc.deleting:
        if status == "stopped":  # the stable revision at 0: the canary takes every request
            return _canary_only(svc, canary_rows, config)
        message += "; " + canary_store.describe(svc, canary_rows)
    return status, reason, message


def _canary_only(svc: ServiceRow, rows: list[ReplicaRow], config: ReconcilerConfig) -> tuple[str, str, str]:
    """A canary beside a stable revision scaled to 0 serves every request (docs/canary.md), so its replicas
    are the service's: ``ready``/``CanaryOnly`` once they are, else what they are doing (``progressing``,
    ``pending``, ``failed``: nothing else serves), as for the replicas of a service without a canary."""
    assert svc.canary_spec is not None
    want = canary_replicas(svc.replicas, svc.canary_weight)
    status, reason, message = _summarize(replace(svc, spec=svc.canary_spec, replicas=want), rows, config)
    rev = canary_store.canary_revision(svc)
    if status == "ready":
        return ("ready", "CanaryOnly", f"stable revision {revision(svc.spec)} scaled to 0: canary {rev} serves "
                f"every request ({message})")
    return status, reason, f"stable revision {revision(svc.spec)} scaled to 0; canary {rev}: {message}"


def _summarize(svc: ServiceRow, rows: list[ReplicaRow], config: ReconcilerConfig) -> tuple[str, str, str]:
    rev = revision(svc.spec)
    live = [r for r in rows if r.state != DRAINING]
    ready = sum(1 for r in live if r.state == READY)
    failing = sorted((r for r in live if _retried(r) and r.restarts >= config.crashloop_restarts),
                     key=lambda r: r.state != FAILED)  # a failed one's error over a retry's probe note
    old = [r for r in live if r.revision != rev]
    new_failed = sorted((r for r in live if r.revision == rev and _retried(r)), key=lambda r: r.state != FAILED)
    pending = [r for r in live if r.state == PENDING and r.last_error]
    counts = f"{ready}/{svc.replicas} replicas ready"
    if svc.deleting:
        return "deleting", "Deleting", f"draining {len(rows)} replica(s)"
    if old and new_failed:
        return ("degraded", "RolloutStalled", f"new revision {rev} is not becoming ready; old replicas keep "
                f"serving ({counts}). Last error: {new_failed[0].last_error}")
    if failing:
        r = failing[0]
        return "failed", _failure_reason(r.last_error), (f"{counts}; replica {r.id} restarted {r.restarts} times: "
                                                        f"{r.last_error}. Still retrying, at most "
                                                        f"{config.backoff_max_s:g} s apart, until the service "
                                                        "is fixed, scaled to 0 or deleted")
    if old:
        done = sum(1 for r in live if r.revision == rev and r.state == READY)
        return ("updating", "RollingUpdate", f"{done} of {svc.replicas} replicas on revision {rev}; {counts}"
                + _waiting_new(svc, [r for r in pending if r.revision == rev]))
    if svc.replicas == 0 and not rows:
        return "stopped", "ScaledToZero", "0 replicas desired"
    if ready == svc.replicas and len(rows) == svc.replicas:
        return "ready", "Running", counts
    if pending:
        return "pending", "Unschedulable", f"{counts}; {pending[0].last_error}"
    starting = [r for r in live if r.state in (STARTING, FAILED) and r.last_error]
    detail = f"; replica {starting[0].id}: {starting[0].last_error}" if starting else ""
    wrong_port = any(r.last_error.startswith(WRONG_PORT) for r in starting)
    return "progressing", "WrongPort" if wrong_port else "Scaling", counts + detail

