"""Building the gateway's routing snapshot from the store (services, ready replicas, active keys)."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from arkserve.auth.signing import decode_secret
from arkserve.auth.vault import MasterKey, VaultError, unseal
from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.store import keys as key_store
from arkserve.store import services as service_store
from arkserve.store.db import Store, version
from arkserve.store.tables import users

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
            max_concurrency=int(spec.get("max_concurrency", 0)))
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


class StoreSnapshotSource:
    """The gateway's ``SnapshotSource`` over the store: a cheap version poll, a full load when it moves."""

    def __init__(self, store: Store, master: MasterKey) -> None:
        self.store, self.master = store, master

    def version(self) -> int:
        with self.store.read() as conn:
            return version(conn)

    def load(self) -> RoutingSnapshot:
        with self.store.read() as conn:
            return load_snapshot(conn, self.master)
