"""Canary revisions as the API writes and shows them: start, replace or re-weight a canary (from a service
PATCH with ``canary``), promote it, roll it back, and the ``canary`` part of a service's status.

The store keeps the canary beside the stable spec (``store/canary.py``); the reconciler runs its replicas and the
gateway splits requests by its weight. Each step is an event. See docs/canary.md."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from arkserve.billing import guard as billing_guard
from arkserve.domain.canary import canary_replicas, split_label
from arkserve.domain.services import ROLLING_FIELDS, revision
from arkserve.errors import Conflict, ValidationFailed
from arkserve.schemas import CanaryOut, ServiceSpec
from arkserve.settings import Settings
from arkserve.store import canary as canary_store
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store.services import ReplicaRow, ServiceRow


def canary_out(svc: ServiceRow, reps: list[ReplicaRow]) -> CanaryOut | None:
    if not svc.canary_spec:
        return None
    _, mine = canary_store.split_rows(svc, reps)
    return CanaryOut(revision=canary_store.canary_revision(svc), weight=svc.canary_weight,
                     replicas=canary_replicas(svc.replicas, svc.canary_weight),
                     ready=sum(1 for r in mine if r.state == "ready"), spec=ServiceSpec(**svc.canary_spec))


def start(conn: Connection, settings: Settings, who: str, svc: ServiceRow, spec: dict[str, Any] | None,
          count: int | None, weight: int | None) -> None:
    """A PATCH with ``canary`` (or a rolling change while a canary runs): ``spec`` (the stable spec with the
    changes) becomes the canary at ``weight`` percent; with no rolling change, only the weight (and ``count``,
    the stable revision's replicas) moves. The stable spec never changes here."""
    changes_revision = spec is not None and revision(spec) != revision(svc.spec)
    if weight is None:  # a rolling change while a canary runs
        raise Conflict(f'service "{svc.name}" has a canary (revision {canary_store.canary_revision(svc)}): promote '
                       f"it (`arkserve service promote {svc.name}`) or roll it back (`arkserve service rollback "
                       f"{svc.name}`) first, or give --canary PCT to replace it", code="CanaryActive")
    if spec is not None and not changes_revision:
        raise ValidationFailed("canary: the changes make no new revision; a canary needs a change to one of "
                               f"{', '.join(ROLLING_FIELDS)}", field="canary")
    if spec is None and not svc.canary_spec:
        raise ValidationFailed("canary: give the new revision's changes with it (image, command, env, port, "
                               "instance type, model or mounts)", field="canary")
    new_spec = spec if spec is not None else svc.canary_spec
    assert new_spec is not None
    stable = svc.replicas if count is None else count
    # quotas (403), balance (402): the stable part at its type, the canary's at its own
    billing_guard.admit_canary(conn, settings.billing, svc, new_spec, stable, weight)
    if count is not None and count != svc.replicas:
        service_store.update_desired(conn, svc, replica_count=count)
        event_store.record(conn, svc.name, "scaled", f"{who} scaled {svc.replicas} -> {count}")
    canary_store.set_canary(conn, svc, new_spec, weight)
    rev, n = revision(new_spec), canary_replicas(stable, weight)
    if spec is None:
        event_store.record(conn, svc.name, "canary", f"{who} set the split of canary {rev} to {split_label(weight)} "
                                                     f"(stable/canary); {n} canary replica(s)")
    else:
        what = ", ".join(sorted(k for k in ROLLING_FIELDS if new_spec.get(k) != svc.spec.get(k)))
        replaced = f" (replaces canary {canary_store.canary_revision(svc)})" if svc.canary_spec else ""
        event_store.record(conn, svc.name, "canary", f"{who} started canary {rev}{replaced} beside stable "
                                                     f"{revision(svc.spec)}: {what} changed; {n} replica(s), "
                                                     f"{weight}% of requests")


def follow(conn: Connection, svc: ServiceRow, changes: dict[str, Any]) -> None:
    """A change in place (no new revision) of a service with a canary applies to the canary's spec too, so that
    promoting the canary (its spec becomes the stable one) keeps it."""
    if svc.canary_spec and changes:
        spec = ServiceSpec(**{**svc.canary_spec, **changes}).model_dump()
        canary_store.set_canary(conn, svc, spec, svc.canary_weight)


def _needs_canary(svc: ServiceRow, verb: str) -> None:
    if not svc.canary_spec:
        raise Conflict(f'service "{svc.name}" has no canary to {verb} (start one with `arkserve service update '
                       f"{svc.name} --image ... --canary 10`)", code="NoCanary")


def promote(conn: Connection, settings: Settings, who: str, svc: ServiceRow) -> None:
    """The canary's spec becomes the stable one: 100 % of requests as its replicas replace the old revision's
    (a rolling update that starts with the canary's ready replicas; the old ones drain as usual)."""
    _needs_canary(svc, "promote")
    assert svc.canary_spec is not None
    billing_guard.admit(conn, settings.billing, svc.owner_id, svc.canary_spec, svc.replicas, service_id=svc.id,
                        old_spec=svc.spec, old_replicas=svc.replicas)
    rev, old = canary_store.canary_revision(svc), revision(svc.spec)
    canary_store.promote(conn, svc)
    event_store.record(conn, svc.name, "promoted", f"{who} promoted canary {rev}: it is the stable revision "
                                                   f"with 100% of requests; the replicas of {old} drain as it "
                                                   f"scales to {svc.replicas}")


def rollback(conn: Connection, who: str, svc: ServiceRow) -> None:
    """Drop the canary: every request goes to the stable revision, and the canary's replicas drain."""
    _needs_canary(svc, "roll back")
    rev = canary_store.canary_revision(svc)
    canary_store.drop(conn, svc)
    event_store.record(conn, svc.name, "rolled_back", f"{who} rolled back canary {rev}: 100% of requests go to "
                                                      f"stable {revision(svc.spec)}; its replicas drain")
