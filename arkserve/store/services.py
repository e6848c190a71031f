"""Queries on services (desired state and status) and their replicas (observed state), and the change feed.

Every write to a service's desired state, status or replica rows moves the ``changes`` version and records it
as the service's ``seq`` in ``service_changes`` (:func:`touch`, in the writer's transaction). Writers are
serialised on that version's row, so ``WHERE seq > seen`` never skips a commit: the reconciler and the gateway
read only what moved since they last looked (:func:`changed_since`). Lock order, against deadlocks on
PostgreSQL: a writer takes service rows first, then the versions in the order specs, routing, changes
(:func:`touch` last), removals/keys; ``service_changes`` rows are only ever written right after ``changes``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError

from arkserve.errors import Conflict, LimitExceeded, NotFound
from arkserve.store import users as users_store
from arkserve.store.db import bump, notify, now, version
from arkserve.store.tables import billing_stops, released_ports, replicas, service_changes, services, users, versions


@dataclass(frozen=True)
class ServiceRow:
    id: int
    name: str
    owner_id: int
    owner: str
    spec: dict[str, Any]
    replicas: int
    generation: int
    gateway_port: int | None
    status: str
    reason: str
    message: str
    deleting: bool
    created_at: float
    updated_at: float
    change_seq: int = 0  # the "changes" version of its last change (read by changed_since only)
    canary_spec: dict[str, Any] | None = None  # a second revision beside this one (store/canary.py)
    canary_weight: int = 0  # its percent of the requests


@dataclass
class ReplicaRow:
    id: str
    service_id: int
    revision: str
    state: str
    host: str = ""
    port: int | None = None
    runtime_id: str = ""
    started_at: float | None = None
    ready_at: float | None = None
    restarts: int = 0
    last_error: str = ""
    updated_at: float = field(default=0.0)
    image_digest: str = ""  # the image the runtime started it from (registry digest, or the local image id)
    node: str = ""  # placement (arkserve/capacity): the host it holds capacity on; "" = none
    instance_type: str = ""  # the type it was placed as
    gpu_indices: str = ""  # "0,1": whole GPUs, or the one GPU it has a share of
    gpu_share_mb: int = 0  # fractional types: its share of that GPU's memory
    billing: str = "payg"  # payg | prepaid (arkserve/billing/admission.py decides at placement)


def _service(row: Any) -> ServiceRow:
    m = row._mapping
    return ServiceRow(m["id"], m["name"], m["owner_id"], m["username"], dict(m["spec"]), m["replicas"],
                      m["generation"], m["gateway_port"], m["status"], m["reason"], m["message"],
                      bool(m["deleting"]), m["created_at"], m["updated_at"], int(m.get("change_seq") or 0),
                      canary_spec=dict(m["canary_spec"]) if m["canary_spec"] else None,
                      canary_weight=int(m["canary_weight"] or 0))


def _select() -> Any:
    return select(services, users.c.username).join(users, users.c.id == services.c.owner_id)


_PORT_LOCK = 0x61726B706F7274  # "arkport": the advisory lock key of gateway port allocation
_REUSE_BATCH = 64  # released ports looked at, oldest first, before the scan for gaps


def _free_port(conn: Connection, base: int, taken: Callable[[int], bool]) -> int:
    """The port after the highest one ever handed out, the ports of deleted services included (the highest
    service port and the highest released one: two lookups on unique indexes, whatever the number of services).
    Only once that passes 65535 is a port used again: the least recently released one (``released_ports``, oldest
    first), so a deleted service's port goes to a new service, which its old clients would reach, only after
    every other port has; failing that (every released port is held by another program, or none was released)
    a gap from ``base`` (a scan, rare). ``taken`` ports (another program's) are skipped throughout; when no port
    is left: 409 ``GatewayPortsExhausted``.

    On PostgreSQL two creates at once would both read the same highest port, and the second insert would
    fail on the port's unique index: a transaction-scoped advisory lock makes the second wait for the
    first's commit (SQLite writers are serialised already: ``BEGIN IMMEDIATE``)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_PORT_LOCK)))
    top = conn.execute(select(select(func.max(services.c.gateway_port)).scalar_subquery(),
                              select(func.max(released_ports.c.port)).scalar_subquery())).one()
    highest = max((p for p in top if p is not None), default=None)
    port = max(base, highest + 1) if highest is not None else base
    while port <= 65535 and taken(port):
        port += 1
    if port <= 65535:
        return port
    oldest = conn.execute(select(released_ports.c.port).where(released_ports.c.port >= base)
                          .order_by(released_ports.c.seq).limit(_REUSE_BATCH)).scalars()
    port = next((p for p in oldest if not taken(p)), 0)
    if not port:
        used = {p for (p,) in conn.execute(select(services.c.gateway_port).where(services.c.gateway_port >= base))}
        port = base
        while port <= 65535 and (port in used or taken(port)):
            port += 1
        if port > 65535:
            raise LimitExceeded(f"no gateway port is free: every port from gateway.port_base ({base}) to 65535 is "
                                "held by a service or another program; delete a service, or lower "
                                "gateway.port_base", code="GatewayPortsExhausted")
    conn.execute(delete(released_ports).where(released_ports.c.port == port))
    return port


def create(conn: Connection, name: str, owner_id: int, spec: dict[str, Any], replica_count: int,
           port_base: int | None, port_taken: Callable[[int], bool] = lambda port: False) -> ServiceRow:
    """Insert a new service; in 'port' addressing (``port_base``) it gets a gateway port from the base that no
    service has and ``port_taken`` does not report (the API passes a probe of its host): :func:`_free_port`."""
    t = now()
    try:
        with conn.begin_nested():
            conn.execute(insert(services).values(
                name=name, owner_id=owner_id, spec=spec, replicas=replica_count, generation=1,
                gateway_port=_free_port(conn, port_base, port_taken) if port_base else None, status="pending",
                reason="Created", message="waiting for the reconciler", deleting=False, created_at=t, updated_at=t))
    except IntegrityError:
        # one platform-wide namespace (names are host names in 'host' addressing); the message says the name is
        # taken and nothing about whose it is (docs/security.md, Tenancy)
        raise Conflict(f'the service name "{name}" is taken (names are unique across the platform); choose another',
                       code="ServiceExists") from None
    bump(conn, "specs")
    bump(conn)
    svc = get(conn, name)
    touch(conn, svc.id)
    return svc


def find(conn: Connection, name: str) -> ServiceRow | None:
    row = conn.execute(_select().where(services.c.name == name)).first()
    return _service(row) if row else None


def get_for_update(conn: Connection, name: str, owner_id: int) -> ServiceRow:
    """:func:`get`, the row held until the transaction ends (PostgreSQL ``FOR NO KEY UPDATE``, which leaves a
    replica's insert, whose foreign key takes ``FOR KEY SHARE`` on the row, free to go on; SQLite's write
    transactions are serial already): a read-modify-write of a service (PATCH, promote, rollback) sees what
    the one before it wrote, never a copy read before it committed. Its owner's user row (``owner_id``) is locked
    first, the order every quota admission takes (``billing/guard.py``, then the service's write): a PATCH and an
    autoscaler step of one service never wait for each other in a cycle."""
    users_store.lock(conn, owner_id)
    if conn.dialect.name == "postgresql":
        row = conn.execute(select(services.c.id).where(services.c.name == name)
                           .with_for_update(key_share=True)).first()
        if row is None:
            raise NotFound(f'service "{name}" not found', code="ServiceNotFound")
    return get(conn, name)


def get(conn: Connection, name: str) -> ServiceRow:
    svc = find(conn, name)
    if svc is None:
        raise NotFound(f'service "{name}" not found', code="ServiceNotFound")
    return svc


def list_all(conn: Connection, owner_id: int | None = None) -> list[ServiceRow]:
    q = _select().order_by(services.c.name)
    if owner_id is not None:
        q = q.where(services.c.owner_id == owner_id)
    return [_service(r) for r in conn.execute(q)]


def update_desired(conn: Connection, svc: ServiceRow, *, spec: dict[str, Any] | None = None,
                   replica_count: int | None = None, new_generation: bool = False) -> None:
    values: dict[str, Any] = {"updated_at": now()}
    if spec is not None:
        values["spec"] = spec
    if replica_count is not None:
        values["replicas"] = replica_count
    if new_generation:
        values["generation"] = svc.generation + 1
    conn.execute(update(services).where(services.c.id == svc.id).values(**values))
    bump(conn, "specs")
    bump(conn)
    touch(conn, svc.id)


def mark_deleting(conn: Connection, svc: ServiceRow) -> None:
    conn.execute(update(services).where(services.c.id == svc.id).values(
        deleting=True, status="deleting", reason="Deleting", message="draining replicas", updated_at=now()))
    bump(conn, "specs")
    bump(conn)
    touch(conn, svc.id)


def remove(conn: Connection, service_id: int) -> None:
    port = conn.execute(delete(services).where(services.c.id == service_id)
                        .returning(services.c.gateway_port)).scalar()
    if port is not None:  # reused last (_free_port)
        conn.execute(insert(released_ports).values(port=port))
    bump(conn)
    bump(conn, "changes")
    conn.execute(delete(service_changes).where(service_changes.c.service_id == service_id))
    bump(conn, "removals")  # feed readers drop it (the gateway: a full load)


def set_status(conn: Connection, service_id: int, status: str, reason: str, message: str) -> None:
    before = conn.execute(select(services.c.status, services.c.reason).where(services.c.id == service_id)).first()
    conn.execute(update(services).where(services.c.id == service_id).values(
        status=status, reason=reason, message=message[:4000]))
    if before is None or (before.status, before.reason) != (status, reason):
        bump(conn)  # the gateway says why (ServiceRoute.failing / not_ready); a failed service is answered at once
    touch(conn, service_id)


# ------------------------------------------------------------------------------------------ replicas

def list_replicas(conn: Connection, service_id: int | None = None) -> list[ReplicaRow]:
    q = select(replicas).order_by(replicas.c.started_at, replicas.c.id)
    if service_id is not None:
        q = q.where(replicas.c.service_id == service_id)
    return [ReplicaRow(**dict(r._mapping)) for r in conn.execute(q)]


def save_replica(conn: Connection, rep: ReplicaRow, *, routing_changed: bool) -> None:
    """Insert or update one replica row; ``routing_changed`` moves the gateway's snapshot version."""
    rep.updated_at = now()
    values = {k: getattr(rep, k) for k in ReplicaRow.__dataclass_fields__}
    exists = conn.execute(select(replicas.c.id).where(replicas.c.id == rep.id)).first()
    if exists:
        conn.execute(update(replicas).where(replicas.c.id == rep.id).values(**values))
    else:
        conn.execute(insert(replicas).values(**values))
    if routing_changed:
        bump(conn)
    touch(conn, rep.service_id)


def save_replicas(conn: Connection, reps: list[ReplicaRow], *, routing_changed: bool) -> None:
    """:func:`save_replica` for many rows: one statement per kind (executemany), one bump and one touch in all."""
    if not reps:
        return
    stamp = now()
    for rep in reps:
        rep.updated_at = stamp
    ids = [rep.id for rep in reps]
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        found.update(r for (r,) in conn.execute(select(replicas.c.id).where(replicas.c.id.in_(ids[i:i + 500]))))
    rows = [{k: getattr(rep, k) for k in ReplicaRow.__dataclass_fields__} for rep in reps]
    if new := [r for r in rows if r["id"] not in found]:
        conn.execute(insert(replicas), new)
    if old := [{**{k: v for k, v in r.items() if k != "id"}, "the_id": r["id"]} for r in rows if r["id"] in found]:
        conn.execute(update(replicas).where(replicas.c.id == bindparam("the_id")), old)
    if routing_changed:
        bump(conn)
    touch(conn, *dict.fromkeys(rep.service_id for rep in reps))


_RUNNING = ("starting", "ready", "draining")  # as the meter counts them (arkserve.billing.metering.RUNNING)


def delete_replica(conn: Connection, replica_id: str, *, stopped_at: float | None = None) -> None:
    """Forget a replica; when it was running, leave the meter the instant it stopped (``billing_stops``)."""
    row = conn.execute(select(replicas.c.service_id, replicas.c.state, replicas.c.started_at,
                              replicas.c.instance_type, replicas.c.billing, services.c.owner_id, services.c.name,
                              services.c.spec)
                       .join(services, services.c.id == replicas.c.service_id)
                       .where(replicas.c.id == replica_id)).first()
    if row is not None and row.started_at is not None and row.state in _RUNNING:
        itype = row.instance_type or str((row.spec or {}).get("instance_type", ""))
        conn.execute(insert(billing_stops).values(
            replica_id=replica_id, started_at=row.started_at, stopped_at=now() if stopped_at is None else stopped_at,
            user_id=row.owner_id, service=row.name, instance_type=itype, billing=row.billing or "payg"))
    conn.execute(delete(replicas).where(replicas.c.id == replica_id))
    if row is not None:
        touch(conn, int(row.service_id))


# ------------------------------------------------------------------------------------------ the change feed

CHANGES_CHANNEL = "arkserve_changes"  # PostgreSQL: touch() notifies it; a quiet reconciler listens (store/wake.py)


def touch(conn: Connection, *service_ids: int) -> None:
    """Mark services changed (inside the writer's transaction, after its other version bumps): feed readers
    pick them up on their next look. On PostgreSQL the commit also notifies :data:`CHANGES_CHANNEL` (one
    notification per transaction: the server folds repeats)."""
    bump(conn, "changes")
    notify(conn, CHANGES_CHANNEL)
    seq = version(conn, "changes")
    for i in range(0, len(service_ids), 500):
        chunk = list(service_ids[i:i + 500])
        conn.execute(delete(service_changes).where(service_changes.c.service_id.in_(chunk)))
        conn.execute(insert(service_changes), [{"service_id": sid, "seq": seq} for sid in chunk])


# built once: these run on every poll, and building a statement costs about what running it does on SQLite
# four literals, not an expanding IN: the statement's SQL is cached whole (a gateway worker reads it per change)
FEED = select(versions.c.name, versions.c.value).where(or_(*(versions.c.name == literal_column(f"'{n}'")
                                                             for n in ("routing", "changes", "removals", "keys"))))
_CHANGED = (_select().add_columns(service_changes.c.seq.label("change_seq"))
            .join(service_changes, service_changes.c.service_id == services.c.id)
            .where(service_changes.c.seq > bindparam("seen")).order_by(service_changes.c.seq))
_BY_IDS = _select().where(services.c.id.in_(bindparam("ids", expanding=True)))
_REPLICAS_OF = (select(replicas).where(replicas.c.service_id.in_(bindparam("ids", expanding=True)))
                .order_by(replicas.c.started_at, replicas.c.id))


def changed_since(conn: Connection, seen: int) -> list[ServiceRow]:
    """Services whose desired state, status or replicas changed after ``seen`` (a ``changes`` version), oldest
    change first; the reader's next ``seen`` is the last row's ``change_seq`` (or ``seen`` when none)."""
    return [_service(r) for r in conn.execute(_CHANGED, {"seen": seen})]


def by_ids(conn: Connection, ids: Iterable[int]) -> list[ServiceRow]:
    """The services of ``ids`` that still exist (batched: one query per 500 ids)."""
    wanted, out = list(ids), []
    for i in range(0, len(wanted), 500):
        out += [_service(r) for r in conn.execute(_BY_IDS, {"ids": wanted[i:i + 500]})]
    return out


def replicas_by_service(conn: Connection, ids: Iterable[int]) -> dict[int, list[ReplicaRow]]:
    """The replica rows of the services of ``ids``, per service (batched like :func:`by_ids`)."""
    wanted = list(ids)
    out: dict[int, list[ReplicaRow]] = {i: [] for i in wanted}
    for i in range(0, len(wanted), 500):
        for r in conn.execute(_REPLICAS_OF, {"ids": wanted[i:i + 500]}):
            row = ReplicaRow(**dict(r._mapping))
            out[row.service_id].append(row)
    return out


def all_ids(conn: Connection) -> list[int]:
    return [int(i) for (i,) in conn.execute(select(services.c.id).order_by(services.c.id))]


def feed_versions(conn: Connection) -> tuple[int, int, int, int]:
    """The (``routing``, ``changes``, ``removals``, ``keys``) versions, in one query."""
    return feed_of_rows(conn.execute(FEED).all())


def feed_of_rows(rows: Iterable[Sequence[Any]]) -> tuple[int, int, int, int]:
    """:func:`feed_versions` from the (name, value) rows of ``FEED`` (SQLAlchemy's, or the driver's own)."""
    got = {name: value for name, value in rows}
    return int(got["routing"]), int(got["changes"]), int(got["removals"]), int(got["keys"])
