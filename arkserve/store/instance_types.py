"""Queries on instance types, and the seed set written on first start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from arkserve.errors import Conflict, NotFound, listed
from arkserve.store.tables import instance_types, prepaid_instances, replicas, services

SEED: tuple[dict[str, Any], ...] = (
    {"name": "cpu.small", "cpus": 1.0, "memory_mb": 2048, "price_per_hour": 0.05, "description": "1 vCPU, 2 GiB"},
    {"name": "cpu.medium", "cpus": 2.0, "memory_mb": 4096, "price_per_hour": 0.10, "description": "2 vCPU, 4 GiB"},
    {"name": "cpu.large", "cpus": 4.0, "memory_mb": 8192, "price_per_hour": 0.20, "description": "4 vCPU, 8 GiB"},
)
_DEFAULTS = {"gpus": 0, "gpu_model": "", "price_per_hour": 0.0, "billing": "payg", "description": ""}


def seed(conn: Connection, gpu_models: list[str]) -> None:
    """Write the seed types when the table is empty: CPU types, plus one GPU type per GPU count present."""
    if conn.execute(select(instance_types.c.name).limit(1)).first() is not None:
        return
    rows = [dict(_DEFAULTS, **r) for r in SEED]
    if gpu_models:
        model = gpu_models[0]
        rows.append(dict(_DEFAULTS, name="gpu.1x", cpus=4.0, memory_mb=16384, gpus=1, gpu_model=model,
                         price_per_hour=1.0, description=f"1x {model}"))
    conn.execute(insert(instance_types), rows)


def list_all(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(instance_types).order_by(instance_types.c.name))]


def get(conn: Connection, name: str) -> dict[str, Any]:
    row = conn.execute(select(instance_types).where(instance_types.c.name == name)).first()
    if row is None:
        raise NotFound(f'instance type "{name}" not found', code="InstanceTypeNotFound")
    return dict(row._mapping)


def create(conn: Connection, values: dict[str, Any]) -> None:
    try:
        with conn.begin_nested():
            conn.execute(insert(instance_types).values(**values))
    except IntegrityError:
        raise Conflict(f'instance type "{values["name"]}" already exists', code="InstanceTypeExists") from None


def users_of(conn: Connection, name: str) -> list[str]:
    """What still uses the type: services (their spec or canary), replicas, active prepaid instances."""
    found = [f"service {row.name}" for row in conn.execute(select(services.c.name, services.c.spec,
                                                                  services.c.canary_spec))
             if (row.spec or {}).get("instance_type") == name or (row.canary_spec or {}).get("instance_type") == name]
    if conn.execute(select(replicas.c.id).where(replicas.c.instance_type == name).limit(1)).first():
        found.append("running replicas")
    if conn.execute(select(prepaid_instances.c.id).where(prepaid_instances.c.instance_type == name,
                                                         prepaid_instances.c.status == "active").limit(1)).first():
        found.append("active prepaid instances")
    return found


def remove(conn: Connection, name: str) -> None:
    """Remove a type nothing uses (409 ``InstanceTypeInUse`` otherwise: its replicas would be metered at 0)."""
    get(conn, name)
    used = users_of(conn, name)
    if used:
        raise Conflict(f'instance type "{name}" is in use by {listed(used)}: move or delete those first',
                       code="InstanceTypeInUse")
    conn.execute(delete(instance_types).where(instance_types.c.name == name))
