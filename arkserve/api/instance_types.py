"""Instance types: everyone lists them; the admin adds and removes them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from arkserve.api.security import Caller, Context
from arkserve.schemas import InstanceTypeIn, InstanceTypeOut
from arkserve.store import instance_types as type_store

router = APIRouter(tags=["instance types"])


@router.get("/instance-types", response_model=list[InstanceTypeOut], summary="List instance types")
def list_types(caller: Caller, ctx: Context) -> list[InstanceTypeOut]:
    with ctx.store.read() as conn:
        return [InstanceTypeOut(**row) for row in type_store.list_all(conn)]


@router.post("/instance-types", response_model=InstanceTypeOut, status_code=201, summary="Add (admin)")
def create_type(body: InstanceTypeIn, caller: Caller, ctx: Context) -> InstanceTypeOut:
    caller.require_admin()
    with ctx.store.begin() as conn:
        type_store.create(conn, body.model_dump())
        return InstanceTypeOut(**type_store.get(conn, body.name))


@router.delete("/instance-types/{name}", status_code=204, summary="Remove (admin)")
def delete_type(name: str, caller: Caller, ctx: Context) -> Response:
    caller.require_admin()
    with ctx.store.begin() as conn:
        type_store.remove(conn, name)
    return Response(status_code=204)
