"""Queries on hosts (what each reconciler's host has) and on what replicas hold of them (their placement)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from arkserve.store.db import now
from arkserve.store.tables import hosts, instance_types, replicas, services, users


def record(conn: Connection, name: str, cpus: float, memory_mb: int, gpus: Sequence[dict[str, Any]],
           runtime: str = "", gpu_error: str = "") -> None:
    """Insert or refresh a host's inventory (``gpus``: ``[{"index", "uuid", "model", "memory_mb"}]``)."""
    values = {"cpus": cpus, "memory_mb": memory_mb, "gpus": list(gpus), "runtime": runtime,
              "gpu_error": gpu_error[:2000], "updated_at": now()}
    if conn.execute(select(hosts.c.name).where(hosts.c.name == name)).first():
        conn.execute(update(hosts).where(hosts.c.name == name).values(**values))
    else:
        conn.execute(insert(hosts).values(name=name, **values))


def list_all(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(hosts).order_by(hosts.c.name))]


def allocations(conn: Connection) -> list[dict[str, Any]]:
    """Every replica that holds capacity (placed on a host), with its service, owner and type's size."""
    q = (select(replicas.c.id.label("replica"), replicas.c.state, replicas.c.node.label("host"),
                replicas.c.instance_type, replicas.c.gpu_indices, replicas.c.gpu_share_mb, replicas.c.billing,
                services.c.name.label("service"), services.c.owner_id, users.c.username.label("owner"),
                instance_types.c.cpus, instance_types.c.memory_mb, instance_types.c.gpus,
                instance_types.c.gpu_fraction, instance_types.c.gpu_model)
         .join(services, services.c.id == replicas.c.service_id)
         .join(users, users.c.id == services.c.owner_id)
         .outerjoin(instance_types, instance_types.c.name == replicas.c.instance_type)
         .where(replicas.c.node != "")
         .order_by(replicas.c.node, replicas.c.id))
    return [dict(r._mapping) for r in conn.execute(q)]
