"""What a Pod's status and the cluster's errors mean in the platform's words (pure, no client).

Pods arrive as the API server's JSON (camelCase; the runtime turns the client's model objects into it
with ``ApiClient.sanitize_for_serialization``). :func:`pod_info` gives the replica's phase
(``Pending`` -> created, ``Running`` -> running, ``Succeeded``/``Failed`` or a terminated container ->
exited with its code; ``OOMKilled`` keeps its reason in ``error``), its Pod IP and container port.
:func:`pod_problem` says why a Pod that is not running will not run: an image the registry does not
have (``ImageNotFound``) or will not give (``ImagePullDenied``), both permanent; a Pod the scheduler
cannot place (``Unschedulable``, with the scheduler's message), a wait. :func:`api_error` turns an
API answer (403 RBAC, 403 quota, 409, 422, 5xx) into ``PermanentError``/``TemporaryError`` with the
cluster's own message.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from arkserve.errors import ArkserveError, PermanentError, TemporaryError
from arkserve.runtimes.base import ReplicaInfo, ReplicaPhase
from arkserve.runtimes.kube_mapping import ANNOTATION_PORT, CONTAINER, LABEL_REPLICA, LABEL_REVISION, LABEL_SERVICE

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
CONFIG_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_NOT_FOUND = ("not found", "manifest unknown", "name unknown", "never pull", "invalid reference", "couldn't parse")
_DENIED = ("denied", "unauthorized", "401", "403", "forbidden", "authorization failed", "authentication required")


@dataclass(frozen=True)
class Problem:
    code: str  # ImageNotFound, ImagePullDenied, Unschedulable, CreateContainerError, ImagePullFailed
    message: str
    permanent: bool  # True: it will never run as it is; False: it waits (capacity, a registry away)

    def error(self) -> ArkserveError:
        cls = PermanentError if self.permanent else TemporaryError
        return cls(self.message, code=self.code)


def parse_time(stamp: str | None) -> float:
    """RFC 3339 as the API server writes it (``2026-11-30T21:00:00Z``) -> unix time; 0.0 for none."""
    if not stamp:
        return 0.0
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            return dict(cs)
    return {}


def _port(pod: dict[str, Any]) -> int:
    meta = pod.get("metadata") or {}
    declared = (meta.get("annotations") or {}).get(ANNOTATION_PORT, "")
    if declared.isdigit():
        return int(declared)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            return int(p.get("containerPort") or 0)
    return 0


def _oom_text(terminated: dict[str, Any], pod: dict[str, Any]) -> str:
    limits = next(((c.get("resources") or {}).get("limits") or {} for c in (pod.get("spec") or {})
                   .get("containers") or [] if c.get("name") == CONTAINER), {})
    limit = f" (memory limit {limits['memory']})" if "memory" in limits else ""
    return f"OOMKilled: the replica ran out of memory{limit}"


def pod_info(pod: dict[str, Any]) -> ReplicaInfo | None:
    """The replica a managed Pod is; None for a Pod without the platform's labels."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    labels = meta.get("labels") or {}
    if LABEL_SERVICE not in labels or LABEL_REPLICA not in labels:
        return None
    cs = _container_status(pod)
    state = cs.get("state") or {}
    terminated = state.get("terminated") or {}
    phase_name = status.get("phase") or "Pending"
    if terminated or phase_name in ("Succeeded", "Failed"):
        phase = ReplicaPhase.EXITED
    elif phase_name == "Pending":
        phase = ReplicaPhase.CREATED
    else:  # Running; Unknown (its node stopped reporting): the health probe decides
        phase = ReplicaPhase.RUNNING
    exit_code = terminated.get("exitCode") if phase is ReplicaPhase.EXITED else None
    if phase is ReplicaPhase.EXITED and exit_code is None:
        exit_code = 0 if phase_name == "Succeeded" else -1  # evicted or lost before the container ran
    error = ""
    if terminated.get("reason") == "OOMKilled":
        error = _oom_text(terminated, pod)
    elif phase is ReplicaPhase.EXITED and status.get("reason"):  # Evicted, DeadlineExceeded, NodeLost
        error = f"{status['reason']}: {status.get('message') or ''}".rstrip(": ")
    elif (problem := pod_problem(pod)) is not None:
        error = problem.message
    running = state.get("running") or {}
    started = parse_time(running.get("startedAt") or terminated.get("startedAt") or status.get("startTime")
                         or meta.get("creationTimestamp"))
    image_id = str(cs.get("imageID") or "")
    return ReplicaInfo(service=labels[LABEL_SERVICE], replica=labels[LABEL_REPLICA],
                       revision=labels.get(LABEL_REVISION, ""), phase=phase, host=str(status.get("podIP") or ""),
                       port=_port(pod), started_at=started, exit_code=exit_code,
                       runtime_id=str(meta.get("uid") or ""), error=error,
                       image_digest=image_id.split("@", 1)[1] if "@" in image_id else image_id)


def _pull_problem(image: str, reason: str, message: str) -> Problem:
    low = message.lower()
    said = f'pulling "{image}": {message or reason}'
    if reason in ("ErrImageNeverPull", "InvalidImageName") or any(w in low for w in _NOT_FOUND):
        return Problem("ImageNotFound", said, True)
    if any(w in low for w in _DENIED):
        return Problem("ImagePullDenied", said, True)
    return Problem("ImagePullFailed", said, False)  # a registry away, a timeout: the kubelet retries it


def _last_pull_failure(events: list[dict[str, Any]]) -> str:
    """The newest kubelet ``Failed`` event about pulling (the reason an ``ImagePullBackOff`` does not repeat)."""
    failed = [e for e in events if e.get("reason") == "Failed" and "pull" in str(e.get("message") or "").lower()]
    failed.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return str(failed[-1].get("message") or "") if failed else ""


def pod_problem(pod: dict[str, Any], events: list[dict[str, Any]] | None = None) -> Problem | None:
    """Why the Pod is not running (and will not, or not yet); None when nothing is wrong that we know of.

    ``events``: the Pod's events, which hold the pull error a ``Back-off pulling image`` message leaves out."""
    status = pod.get("status") or {}
    waiting = (_container_status(pod).get("state") or {}).get("waiting") or {}
    reason, message = str(waiting.get("reason") or ""), str(waiting.get("message") or "")
    if reason in PULL_FAILURES:
        image = next((c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []
                      if c.get("name") == CONTAINER), "")
        problem = _pull_problem(str(image), reason, message)
        if not problem.permanent and reason == "ImagePullBackOff" and events:
            problem = _pull_problem(str(image), reason, _last_pull_failure(events) or message)
        return problem
    if reason in CONFIG_FAILURES:
        return Problem("CreateContainerError", f"{reason}: {message}".rstrip(": "), True)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and \
                cond.get("reason") == "Unschedulable":
            return Problem("Unschedulable", f"the cluster cannot place it: {cond.get('message') or 'Unschedulable'}",
                           False)
    return None


def _body_message(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip().startswith("{"):
        try:
            return str(json.loads(body).get("message") or "")
        except ValueError:
            return body
    return str(body or "")


def api_error(status: int, reason: str, body: object, doing: str) -> ArkserveError:
    """An error answer of the API server while ``doing`` ("creating Pod ark-x-r1") in the platform's words."""
    said = _body_message(body) or reason or f"HTTP {status}"
    msg = f"Kubernetes API, {doing}: {said}"
    if status == 403 and "exceeded quota" in said:
        return TemporaryError(msg, code="QuotaExceeded")  # waits like a full host, until the quota has room
    if status in (401, 403):
        return PermanentError(msg, code="KubernetesForbidden")
    if status == 404:
        return PermanentError(msg, code="NotFound")
    if status == 409:
        return TemporaryError(msg, code="Conflict")
    if status in (400, 422):
        return PermanentError(msg, code="InvalidPod")
    return TemporaryError(msg, code="KubernetesUnavailable")  # 429, 5xx
