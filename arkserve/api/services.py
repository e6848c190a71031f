"""Inference services: create, list, show, change (scale or roll), delete; their events and request log.

The API only writes desired state; the reconciler makes it so and reports back through the store.
A user sees only their own services (another user's service looks missing); an admin sees all.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from arkserve.api import canary, cursors, mounts
from arkserve.api.errors import validated
from arkserve.api.images import service_image
from arkserve.api.security import Caller, Context, Principal
from arkserve.billing import guard as billing_guard
from arkserve.domain.canary import canary_replicas
from arkserve.domain.durations import UNITS, parse_duration
from arkserve.domain.rollout import Replica, honest_status
from arkserve.domain.services import SERVICE_STATUSES, app_dir_refused, endpoint, overlaps, revision
from arkserve.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from arkserve.logs import Follower, log_dir_for, read_logs
from arkserve.ports import port_free
from arkserve.schemas import (
    AutoscaleSpec,
    EventOut,
    ReplicaOut,
    RequestRecordOut,
    ServiceCreate,
    ServiceOut,
    ServicePatch,
    ServiceSpec,
)
from arkserve.settings import Settings
from arkserve.store import canary as canary_store
from arkserve.store import event_pages, instance_types, service_pages
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.service_pages import Filters
from arkserve.store.services import ReplicaRow, ServiceRow

router = APIRouter(tags=["services"])
_SERVICE_LIST = TypeAdapter(list[ServiceOut])


def service_endpoint(settings: Settings, svc: ServiceRow) -> str:
    g = settings.gateway
    return endpoint(svc.name, addressing=g.addressing, gateway_port=svc.gateway_port, host=g.host,
                    base_domain=g.base_domain, host_port=g.host_port, tls=g.tls)


def _replica_out(r: ReplicaRow) -> ReplicaOut:
    return ReplicaOut(id=r.id, state=r.state, revision=r.revision, endpoint=f"{r.host}:{r.port}" if r.port else "",
                      restarts=r.restarts, started_at=r.started_at, ready_at=r.ready_at, last_error=r.last_error,
                      image_digest=r.image_digest, gpu_indices=r.gpu_indices, gpu_share_mb=r.gpu_share_mb,
                      billing=r.billing)


def service_out(settings: Settings, svc: ServiceRow, reps: list[ReplicaRow]) -> ServiceOut:
    rev = revision(svc.spec)  # a hash of the canonical spec: once per service (a list page makes 100)
    stable, _ = canary_store.split_rows(svc, reps)  # a canary's replicas are shown apart (docs/canary.md)
    status, reason, message = honest_status(svc.status, svc.reason, svc.message, svc.replicas, rev,
                                            [Replica(r.state, r.revision) for r in stable])
    return ServiceOut(
        name=svc.name, owner=svc.owner, status=status, reason=reason, message=message,
        endpoint=service_endpoint(settings, svc), replicas=svc.replicas,
        ready=sum(1 for r in stable if r.state == "ready"), generation=svc.generation, revision=rev,
        spec=ServiceSpec(**svc.spec), instances=[_replica_out(r) for r in reps],
        created_at=svc.created_at, updated_at=svc.updated_at, canary=canary.canary_out(svc, reps))


def visible_service(ctx: Context, caller: Principal, name: str) -> ServiceRow:
    with ctx.store.read() as conn:
        svc = service_store.find(conn, name)
    if svc is None or not caller.owns(svc.owner_id):
        raise NotFound(f'service "{name}" not found', code="ServiceNotFound")
    return svc


def _check_instance_type(conn: Any, name: str) -> None:
    try:
        instance_types.get(conn, name)
    except NotFound:
        raise ValidationFailed(f'instance_type: unknown instance type "{name}" (see `arkserve instance-type list`)',
                               field="instance_type") from None


def _check_local_image(ctx: Context, image: object) -> None:
    """The local runtime runs an app directory on this host: one that is not there, or that it would refuse at
    start (the host's own state, the platform's data directory), could never start."""
    if ctx.settings.runtime.kind != "local" or not isinstance(image, str):
        return
    if not Path(image).is_dir():
        raise ValidationFailed(f"image: no directory {image} on this host (the local runtime runs an app "
                               "directory; for an image reference the platform must run with the Docker runtime: "
                               "`arkserve up --runtime docker`)", field="image")
    refused = app_dir_refused(os.path.realpath(image))
    if refused:
        raise ValidationFailed(f"image: {refused}", field="image")
    if overlaps(os.path.realpath(image), os.path.realpath(ctx.settings.data_dir.expanduser())):  # as at start
        raise ValidationFailed(f'image: directory "{image}" overlaps the platform\'s data directory (is, contains or '
                               "lies in it): a replica never sees that directory; use a directory of its own",
                               field="image")


@router.get("/services", response_model=list[ServiceOut], responses={200: {"headers": cursors.HEADERS}},
            summary="List services in name order (yours; admin: all), a page at a time")
def list_services(caller: Caller, ctx: Context, request: Request,
                  limit: int = Query(100, ge=1, le=1000, description="Services per page."),
                  cursor: str | None = Query(None, description="X-Next-Cursor of the previous page."),
                  prefix: str = Query("", max_length=63, description="Only names starting with this."),
                  status: str = Query("", description="Only this recorded status: " + ", ".join(SERVICE_STATUSES)),
                  owner: str = Query("", max_length=64, description="Only this user's services (admin).")
                  ) -> Response:
    if status and status not in SERVICE_STATUSES:
        raise ValidationFailed(f"status: expected one of {', '.join(SERVICE_STATUSES)}", field="status")
    shown = {"prefix": prefix, "status": status, "owner": owner}
    after = cursors.decode(cursor, shown) if cursor else None
    scope = None if caller.user.is_admin else caller.user.id
    with ctx.store.read() as conn:
        page = service_pages.page(conn, Filters(scope, prefix, status, owner), after=after, limit=limit)
    body = _SERVICE_LIST.dump_json([service_out(ctx.settings, s, page.replicas[s.id]) for s in page.rows])
    answer = Response(body, media_type="application/json")  # already serialised: FastAPI does not re-validate
    cursors.set_headers(answer, request, page.total,
                        cursors.encode(page.last, shown) if page.last is not None else None)
    return answer


@router.post("/services", response_model=ServiceOut, status_code=201, summary="Create a service")
def create_service(body: ServiceCreate, caller: Caller, ctx: Context) -> ServiceOut:
    spec = ServiceSpec(**body.model_dump(exclude={"name", "replicas"})).model_dump()
    spec["image"] = service_image(ctx, caller.user, spec["image"])  # short form; registry images: who may pull
    _check_local_image(ctx, spec["image"])
    replicas, bounds = body.replicas, spec.get("autoscale")
    if bounds:  # an autoscaled service starts within its bounds (docs/autoscaling.md)
        replicas = min(bounds["max"], max(bounds["min"], replicas))
    g = ctx.settings.gateway
    port_base = g.port_base if g.addressing == "port" else None
    with ctx.store.begin() as conn:
        _check_instance_type(conn, body.instance_type)
        spec = mounts.resolve(conn, ctx.settings.data_dir, caller.user, spec, mounts.rw_refused(ctx.settings.runtime))
        billing_guard.admit(conn, ctx.settings.billing, caller.user.id, spec, replicas)  # 403/402
        svc = service_store.create(conn, body.name, caller.user.id, spec, replicas, port_base,
                                   lambda port: not port_free(g.host, port))  # another program holds it
        event_store.record(conn, svc.name, "created", f"created by {caller.user.username} with "
                                                      f"{replicas} replica(s), image {spec['image']}")
    return service_out(ctx.settings, svc, [])


@router.get("/services/{name}", response_model=ServiceOut, summary="Show a service and its replicas")
def get_service(name: str, caller: Caller, ctx: Context) -> ServiceOut:
    svc = visible_service(ctx, caller, name)
    with ctx.store.read() as conn:
        reps = service_store.list_replicas(conn, svc.id)
    return service_out(ctx.settings, svc, reps)


@router.patch("/services/{name}", response_model=ServiceOut,
              summary="Scale ({'replicas': N}) and/or change the spec (rolls replicas one at a time)")
def patch_service(name: str, body: ServicePatch, caller: Caller, ctx: Context) -> ServiceOut:
    seen = visible_service(ctx, caller, name)  # 404 for another user's service, before anything is read for the change
    changes = body.model_dump(exclude_unset=True)
    count = changes.pop("replicas", None)
    weight = changes.pop("canary", None)  # the changes start a canary instead of a rolling update (docs/canary.md)
    with ctx.store.begin() as conn:  # read-modify-write in one transaction: a concurrent change is never lost
        svc = service_store.get_for_update(conn, name, seen.owner_id)
        if not caller.owns(svc.owner_id):
            raise NotFound(f'service "{name}" not found', code="ServiceNotFound")
        return _patch(ctx, caller, conn, svc, changes, count, weight)


def _patch(ctx: Context, caller: Principal, conn: Any, svc: ServiceRow, changes: dict[str, Any], count: int | None,
           weight: int | None) -> ServiceOut:
    name = svc.name
    if changes.get("autoscale") is not None:  # the fields given change the current setting (checked whole: 422)
        changes["autoscale"] = validated(AutoscaleSpec, {**(svc.spec.get("autoscale") or {}),
                                                         **changes["autoscale"]}).model_dump()
    autoscaled = changes["autoscale"] if "autoscale" in changes else svc.spec.get("autoscale")
    if count is not None and autoscaled:
        raise Conflict(f'service "{name}" is autoscaled ({autoscaled["min"]}-{autoscaled["max"]} replicas): the '
                       "autoscaler sets its replica count. Change its bounds (`arkserve service update "
                       f"{name} --autoscale min=N,max=M`) or turn it off first (`arkserve service update {name} "
                       '--autoscale off`, or PATCH {"autoscale": null})', code="AutoscalerOn")
    if "image" in changes:
        changes["image"] = service_image(ctx, user_store.get_by_id(conn, svc.owner_id), changes["image"])
        _check_local_image(ctx, changes["image"])
    spec = validated(ServiceSpec, {**svc.spec, **changes}).model_dump() if changes else None
    if spec is not None and spec.get("instance_type") != svc.spec.get("instance_type"):
        _check_instance_type(conn, spec["instance_type"])
    if spec is not None and ("mounts" in changes or "model" in changes):
        owner = user_store.get_by_id(conn, svc.owner_id)
        spec = mounts.resolve(conn, ctx.settings.data_dir, owner, spec, mounts.rw_refused(ctx.settings.runtime))
    rolls = spec is not None and revision(spec) != revision(svc.spec)
    if weight is not None or (rolls and svc.canary_spec):
        canary.start(conn, ctx.settings, caller.user.username, service_store.get(conn, name), spec, count, weight)
        svc = service_store.get(conn, name)
        return service_out(ctx.settings, svc, service_store.list_replicas(conn, svc.id))
    def share(k: int) -> int:  # a canary's replicas grow with the stable count, and count in quotas
        return canary_replicas(k, svc.canary_weight) if svc.canary_spec else 0

    n = svc.replicas if count is None else int(count)
    billing_guard.admit(conn, ctx.settings.billing, svc.owner_id, spec or svc.spec, n + share(n),
                        service_id=svc.id, old_spec=svc.spec,
                        old_replicas=svc.replicas + share(svc.replicas))  # quotas (403), balance (402) first
    service_store.update_desired(conn, svc, spec=spec, replica_count=count, new_generation=rolls)
    if spec is not None:
        canary.follow(conn, svc, changes)  # not rolling (else it started a canary above): the canary's spec too
    if count is not None and count != svc.replicas:
        event_store.record(conn, svc.name, "scaled", f"{caller.user.username} scaled {svc.replicas} -> {count}")
    if spec is not None:
        what = ", ".join(sorted(changes))
        event_store.record(conn, svc.name, "updated", f"{caller.user.username} changed {what}"
                           + ("; rolling update started" if rolls else ""))
    svc = service_store.get(conn, name)
    reps = service_store.list_replicas(conn, svc.id)
    return service_out(ctx.settings, svc, reps)


@router.delete("/services/{name}", status_code=202, response_class=Response,
               summary="Delete a service (drains, then removes replicas); the 202 has no body")
def delete_service(name: str, caller: Caller, ctx: Context) -> Response:
    svc = visible_service(ctx, caller, name)
    with ctx.store.begin() as conn:
        service_store.mark_deleting(conn, svc)
        event_store.record(conn, svc.name, "deleting", f"deletion requested by {caller.user.username}")
    return Response(status_code=202)


def _since(value: str | None) -> float | None:
    """'10m', '2h', '30s', '1d' (that long ago) or a unix time."""
    if not value:
        return None
    if value[-1] in UNITS:
        return time.time() - parse_duration(value, "since")
    try:
        start = float(value)
    except ValueError:
        start = math.nan
    if not math.isfinite(start):  # nan, inf, 1e309: no row is ever after it (max(nan, t) is nan)
        raise ValidationFailed("since: expected a duration like 10m, 2h, 1d or a unix time", field="since")
    return start


def _history_since(svc: ServiceRow, since: str | None) -> float:
    """Where a service's history (events, request records, log lines) starts: ``since``, but never before the
    service was created. Those are kept by name, so an earlier service of the same name (deleted, and the name
    taken again, perhaps by another user) would otherwise show through."""
    start = _since(since)
    return svc.created_at if start is None else max(start, svc.created_at)


REPLICA_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # what the reconciler names replicas (``r`` + hex), never a path


@router.get("/services/{name}/events", response_model=list[EventOut], responses={200: {"headers": cursors.HEADERS}},
            summary="Events of a service: the newest page (oldest first within it); X-Next-Cursor pages back")
def service_events(name: str, caller: Caller, ctx: Context, request: Request, response: Response,
                   since: str | None = None, limit: int = Query(200, ge=1, le=5000),
                   cursor: str | None = Query(None, description="X-Next-Cursor of the previous (newer) page.")
                   ) -> list[EventOut]:
    svc = visible_service(ctx, caller, name)
    shown = {"service": svc.name, "since": since or ""}
    before = cursors.decode_position(cursor, shown) if cursor else None
    with ctx.store.read() as conn:
        page = event_pages.page(conn, svc.name, since=_history_since(svc, since), before=before, limit=limit)
    cursors.set_headers(response, request, page.total,
                        cursors.encode_position(page.before, shown) if page.before else None)
    return [EventOut(**e) for e in page.rows]


@router.get("/services/{name}/requests", response_model=list[RequestRecordOut],
            summary="Recent requests through the gateway (newest first), with the replica that served each")
def service_requests(name: str, caller: Caller, ctx: Context,
                     replica: str | None = Query(None, pattern=REPLICA_ID), since: str | None = None,
                     limit: int = Query(100, ge=1, le=10000)) -> list[RequestRecordOut]:
    svc = visible_service(ctx, caller, name)
    with ctx.store.read() as conn:
        rows = event_store.list_requests(conn, svc.name, replica=replica, since=_history_since(svc, since),
                                         limit=limit)
    return [RequestRecordOut(**r) for r in rows]


LOG_THREADS = 16  # worker threads this app reads log files on: its own, never those every other route needs
FOLLOW_POLL_S = 0.2  # how often a follow=true stream looks for new lines


class _LogReaders:
    """This app's log readers: their own worker threads, and how many follow streams each user has open."""

    def __init__(self) -> None:
        self.threads = anyio.CapacityLimiter(LOG_THREADS)
        self.follows: Counter[int] = Counter()


def _log_readers(request: Request) -> _LogReaders:
    readers: _LogReaders | None = getattr(request.app.state, "log_readers", None)
    if readers is None:  # made on the event loop, where every request of the app runs: no race
        readers = request.app.state.log_readers = _LogReaders()
    return readers


class _FollowResponse(StreamingResponse):
    """A follow stream that gives its user's slot back however it ends (finished, client gone, never started)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/plain")
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


@router.get("/services/{name}/logs", summary="Replica logs (text lines); follow=true streams new lines",
            response_class=StreamingResponse)
async def service_logs(name: str, caller: Caller, ctx: Context, request: Request,
                       replica: str | None = Query(None, pattern=REPLICA_ID), since: str | None = None,
                       tail: int | None = Query(None, ge=0, le=100000), previous: bool = False,
                       follow: bool = False) -> Response:
    svc = await run_in_threadpool(visible_service, ctx, caller, name)
    log_dir = log_dir_for(ctx.settings.data_dir)
    start = _history_since(svc, since)
    readers = _log_readers(request)
    if not follow:
        lines = await anyio.to_thread.run_sync(read_logs, log_dir, svc.name, replica, start, tail, previous,
                                               limiter=readers.threads)
        return Response("".join(line.format() + "\n" for line in lines), media_type="text/plain")
    user, cap = caller.user.id, ctx.settings.api.log_follows_per_user
    if readers.follows[user] >= cap:
        raise TooManyRequests(f"{cap} log streams (follow=true) of this user are open already; close one "
                              "(or read without follow) and retry", retry_after_s=1)
    follower = Follower(log_dir, svc.name, replica)

    async def stream() -> AsyncIterator[str]:
        # Each read is one quick pass over the files on the log threads; the wait between polls is on the event
        # loop, so a gone client's cancellation lands at once and no thread waits for a quiet replica.
        batch = await anyio.to_thread.run_sync(follower.start, start, tail, limiter=readers.threads)
        while True:
            if batch:
                yield "".join(line.format() + "\n" for line in batch)
            await anyio.sleep(FOLLOW_POLL_S)
            batch = await anyio.to_thread.run_sync(follower.poll, limiter=readers.threads)

    def release() -> None:
        readers.follows[user] -= 1
        if readers.follows[user] <= 0:
            del readers.follows[user]

    readers.follows[user] += 1
    return _FollowResponse(stream(), release)
