"""Queries on a service's canary: start or re-weight it, promote it to the stable spec, or drop it.

A canary is two columns on ``services`` (``canary_spec``, ``canary_weight``); its replicas are ordinary replica
rows whose ``revision`` is the canary spec's. Every write here moves the ``specs`` and ``routing`` versions and
the change feed (the gateway's route carries the split), like ``services.update_desired``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, update

from arkserve.domain.canary import canary_replicas
from arkserve.domain.planning import Canary
from arkserve.domain.services import revision
from arkserve.store.db import bump, now
from arkserve.store.services import ReplicaRow, ServiceRow, touch
from arkserve.store.tables import services


def _write(conn: Connection, svc: ServiceRow, **values: Any) -> None:
    conn.execute(update(services).where(services.c.id == svc.id).values(updated_at=now(), **values))
    bump(conn, "specs")
    bump(conn)
    touch(conn, svc.id)


def set_canary(conn: Connection, svc: ServiceRow, spec: dict[str, Any], weight: int) -> None:
    """Start (or replace, or re-weight) the canary: ``spec`` is served to ``weight`` percent of the requests."""
    _write(conn, svc, canary_spec=spec, canary_weight=weight)


def promote(conn: Connection, svc: ServiceRow) -> None:
    """The canary's spec becomes the service's (a new generation); the old revision's replicas roll away."""
    assert svc.canary_spec is not None
    _write(conn, svc, spec=svc.canary_spec, generation=svc.generation + 1, canary_spec=None, canary_weight=0)


def drop(conn: Connection, svc: ServiceRow) -> None:
    """Roll back: forget the canary; its replicas are drained by the reconciler."""
    _write(conn, svc, canary_spec=None, canary_weight=0)


# ------------------------------------------------------------------------------------------ a canary in rows

def canary_revision(svc: ServiceRow) -> str:
    """The canary's revision, or "" when the service has none."""
    return revision(svc.canary_spec) if svc.canary_spec else ""


def desired(svc: ServiceRow) -> Canary | None:
    """What the planner keeps for the canary: its revision and replica count (``domain/canary.py``)."""
    if not svc.canary_spec:
        return None
    return Canary(revision(svc.canary_spec), canary_replicas(svc.replicas, svc.canary_weight))


def split_rows(svc: ServiceRow, rows: list[ReplicaRow]) -> tuple[list[ReplicaRow], list[ReplicaRow]]:
    """(the stable revision's and older rows, the canary's rows)."""
    rev = canary_revision(svc)
    if not rev:
        return rows, []
    return [r for r in rows if r.revision != rev], [r for r in rows if r.revision == rev]


def as_revision(svc: ServiceRow, rev: str) -> ServiceRow:
    """The service as a replica of revision ``rev`` runs it: with the canary's spec for a canary replica."""
    if svc.canary_spec and rev == revision(svc.canary_spec):
        return replace(svc, spec=svc.canary_spec)
    return svc


def describe(svc: ServiceRow, rows: list[ReplicaRow]) -> str:
    """The canary part of a status message: 'canary 1a2b3c4d5e 1/1 ready, 10% of requests'."""
    want = canary_replicas(svc.replicas, svc.canary_weight)
    ready = sum(1 for r in rows if r.state == "ready")
    failed = next((r for r in rows if r.state == "failed" and r.last_error), None)
    tail = f" (replica {failed.id}: {failed.last_error})" if failed else ""
    return f"canary {canary_revision(svc)} {ready}/{want} ready, {svc.canary_weight}% of requests{tail}"
