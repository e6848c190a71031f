"""Hosts (admin): each reconciler host's capacity, what replicas hold of it, what is free, who holds each GPU."""

from __future__ import annotations

from fastapi import APIRouter

from arkserve.api.security import Caller, Context
from arkserve.capacity.usage import host_report
from arkserve.schemas import HostOut
from arkserve.store import hosts as host_store

router = APIRouter(tags=["hosts"])


@router.get("/hosts", response_model=list[HostOut], summary="List hosts with capacity, allocated and free (admin)")
def list_hosts(caller: Caller, ctx: Context) -> list[HostOut]:
    caller.require_admin()
    runtime = ctx.settings.runtime
    with ctx.store.read() as conn:
        hosts = host_store.list_all(conn)
        rows = host_store.allocations(conn)
    return [HostOut(**host_report(h, rows, runtime.cpu_overcommit, runtime.memory_overcommit)) for h in hosts]
