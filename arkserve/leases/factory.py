"""Choosing the lease backend from settings (``reconciler.leader_election``)."""

from __future__ import annotations

from arkserve.errors import ValidationFailed
from arkserve.leases.elector import Elector
from arkserve.store.db import Store

KINDS = ("auto", "store", "kubernetes", "off")


def resolve(kind: str, database_url: str, runtime_kind: str) -> str:
    """``auto``: off on SQLite (one host: the embedded ``arkserve up``, started as fast as ever), a Kubernetes
    Lease under the Kubernetes runtime, else the store-side lease (several reconcilers on one PostgreSQL)."""
    if kind not in KINDS:
        raise ValidationFailed(f"reconciler.leader_election: expected one of {', '.join(KINDS)}, got {kind!r}",
                               field="reconciler.leader_election")
    if kind != "auto":
        return kind
    if database_url.startswith("sqlite") or not database_url:
        return "off"
    return "kubernetes" if runtime_kind == "kubernetes" else "store"


def make_elector(kind: str, store: Store, *, duration_s: float, namespace: str = "", kubeconfig: str = "",
                 lease: str = "reconciler") -> Elector | None:
    """An elector for a resolved ``kind`` (``None`` for ``off``: this process always acts)."""
    if kind == "off":
        return None
    if kind == "store":
        from arkserve.leases.store import StoreLease

        return Elector(StoreLease(store, lease), duration_s=duration_s)
    from arkserve.leases.kube import KubeLease, coordination_api, pod_namespace

    return Elector(KubeLease(coordination_api(kubeconfig), namespace or pod_namespace(), f"arkserve-{lease}"),
                   duration_s=duration_s)
