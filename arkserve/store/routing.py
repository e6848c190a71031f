"""Building the gateway's routing snapshot from the store (services, ready replicas, active keys)."""

from __future__ import annotations

import logging
import os
import socket
import time

from sqlalchemy import Connection, func, insert, select, update

from arkserve.auth.signing import decode_secret
from arkserve.auth.vault import MasterKey, VaultError, unseal
from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.errors import ArkserveError
from arkserve.store import keys as key_store
from arkserve.store import services as service_store
from arkserve.store.db import Store, version
from arkserve.store.tables import gateway_acks, users

log = logging.getLogger("arkserve.store.routing")


def load_snapshot(conn: Connection, master: MasterKey) -> RoutingSnapshot:
    ver = version(conn)
    reps = service_store.list_replicas(conn)
    routes: dict[str, ServiceRoute] = {}
    for svc in service_store.list_all(conn):
        ups = tuple(Upstream(r.id, r.host, r.port) for r in reps
                    if r.service_id == svc.id and r.state == "ready" and r.port)
        spec = svc.spec
        routes[svc.name] = ServiceRoute(
            name=svc.name, owner_id=svc.owner_id, auth=bool(spec.get("auth", True)), upstreams=ups,
            gateway_port=svc.gateway_port, request_timeout_s=float(spec.get("request_timeout_s", 60.0)),
            max_concurrency=int(spec.get("max_concurrency", 0)),
            pass_authorization=bool(spec.get("pass_authorization", False)),
            failing=svc.reason if svc.status == "failed" else "",
            not_ready="" if svc.status == "ready" else ("ScaledToZero" if svc.replicas == 0 else svc.reason))
    disabled = {uid for (uid,) in conn.execute(select(users.c.id).where(users.c.disabled.is_(True)))}
    admins = {uid for (uid,) in conn.execute(select(users.c.id).where(users.c.role == "admin"))}
    keys: dict[str, KeyEntry] = {}
    for k in key_store.list_keys(conn):
        if not k.enabled or k.user_id in disabled:
            continue
        try:
            secret = decode_secret(unseal(master, k.sealed, k.access_key).decode())
        except (VaultError, ValueError):
            log.warning("access key %s cannot be decrypted with this master key; skipped", k.access_key)
            continue
        keys[k.access_key] = KeyEntry(k.access_key, secret, k.user_id, k.user_id in admins)
    return RoutingSnapshot(version=ver, services=routes, keys=keys)


def ack(conn: Connection, worker: str, loaded: int) -> None:
    """Record that gateway ``worker`` serves from routing version ``loaded`` (and is alive now)."""
    values = {"version": loaded, "seen_at": time.time()}
    if conn.execute(update(gateway_acks).where(gateway_acks.c.worker == worker).values(**values)).rowcount == 0:
        conn.execute(insert(gateway_acks).values(worker=worker, **values))


def gateways_caught_up(conn: Connection, target: int, fresh_s: float = 10.0) -> bool:
    """True when every gateway worker heard from in the last ``fresh_s`` has loaded ``target`` or later."""
    behind = select(func.count()).select_from(gateway_acks).where(
        gateway_acks.c.seen_at > time.time() - fresh_s, gateway_acks.c.version < target)
    return int(conn.execute(behind).scalar_one()) == 0


class StoreSnapshotSource:
    """The gateway's ``SnapshotSource`` over the store: a cheap version poll, a full load when it moves.

    Each applied snapshot is acknowledged in ``gateway_acks`` (and re-acknowledged every ``heartbeat_s``), which is how
    the reconciler knows that no gateway worker routes to a draining replica any more."""

    def __init__(self, store: Store, master: MasterKey, worker: str | None = None, heartbeat_s: float = 2.0) -> None:
        self.store, self.master = store, master
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.heartbeat_s = heartbeat_s
        self.loaded = 0
        self._beat = 0.0

    def _ack(self) -> None:
        try:
            with self.store.begin() as conn:
                ack(conn, self.worker, self.loaded)
            self._beat = time.monotonic()
        except ArkserveError as exc:  # the store is away: serving goes on, the reconciler waits at most its timeout
            log.warning("cannot acknowledge routing version %d: %s", self.loaded, exc.message)

    def version(self) -> int:
        with self.store.read() as conn:
            current = version(conn)
        if self.loaded and time.monotonic() - self._beat >= self.heartbeat_s:
            self._ack()
        return current

    def load(self) -> RoutingSnapshot:
        with self.store.read() as conn:
            return load_snapshot(conn, self.master)

    def applied(self, version: int) -> None:
        """Acknowledge ``version`` once the gateway serves it (not when it is loaded: a request may still
        be handled by the previous snapshot until the event loop swaps it in)."""
        self.loaded = version
        self._ack()
