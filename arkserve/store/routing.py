"""Building the gateway's routing snapshot from the store (services, ready replicas, active keys).

A gateway worker loads it in full once, then in O(changed): the services the change feed names since its last
load (``service_changes``), the keys only when the ``keys`` version moved. A service removal (``removals``)
and a slow period (``full_every_s``) bring a full load again."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from arkserve.auth.signing import decode_secret
from arkserve.auth.vault import MasterKey, VaultError, unseal
from arkserve.domain.routing import KeyEntry, RouteTable, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.domain.services import revision
from arkserve.errors import ArkserveError
from arkserve.outage import OutageLog
from arkserve.store import driver, wake
from arkserve.store import keys as key_store
from arkserve.store import services as service_store
from arkserve.store.db import ROUTING_CHANNEL, Store, version
from arkserve.store.driver import DriverError, json_value
from arkserve.store.tables import gateway_acks, replicas, service_changes, services, users, versions

log = logging.getLogger("arkserve.store.routing")


def _route(svc: service_store.ServiceRow, reps: list[service_store.ReplicaRow]) -> ServiceRoute:
    ups = tuple(Upstream(r.id, r.host, r.port, r.revision) for r in reps if r.state == "ready" and r.port)
    return _make_route(svc.name, svc.owner_id, svc.spec, svc.replicas, svc.gateway_port, svc.status, svc.reason, ups,
                       svc.canary_spec, svc.canary_weight)


def _make_route(name: str, owner_id: int, spec: dict[str, Any], replica_count: int, gateway_port: int | None,
                status: str, reason: str, ups: tuple[Upstream, ...], canary_spec: dict[str, Any] | None = None,
                canary_weight: int = 0) -> ServiceRoute:
    return ServiceRoute(
        canary=revision(canary_spec) if canary_spec else "", canary_weight=canary_weight if canary_spec else 0,
        name=name, owner_id=owner_id, auth=bool(spec.get("auth", True)), upstreams=ups,
        gateway_port=gateway_port, request_timeout_s=float(spec.get("request_timeout_s", 60.0)),
        max_concurrency=int(spec.get("max_concurrency", 0)),
        pass_authorization=bool(spec.get("pass_authorization", False)),
        cold_start_timeout_s=float(a.get("cold_start_timeout_s") or 120.0) if (a := spec.get("autoscale")) else 0.0,
        failing=reason if status == "failed" else "",
        # at 0 stable replicas a canary still serves every request (docs/canary.md): its status's reason, if any
        not_ready="" if status == "ready" else ("ScaledToZero" if replica_count == 0 and not canary_spec else reason))


# the routes of the services changed after :seen, one row per ready replica (or one without): built once, as
# building a statement costs more than running it on SQLite
_S, _R, _C = services.c, replicas.c, service_changes.c
_CHANGED_ROUTES = (
    select(_S.name, _S.owner_id, _S.spec, _S.replicas, _S.gateway_port, _S.status, _S.reason, _C.seq,
           _R.id, _R.host, _R.port, _R.revision, _S.canary_spec, _S.canary_weight)
    .join(service_changes, _C.service_id == _S.id)
    .outerjoin(replicas, and_(_R.service_id == _S.id, _R.state == "ready", _R.port.is_not(None)))
    .where(_C.seq > bindparam("seen")).order_by(_C.seq, _R.started_at, _R.id))

# what a gateway worker reads on every poll and every change, run on the driver's connection (see driver.py)
_HOT = driver.Statements(feed=service_store.FEED, changed=_CHANGED_ROUTES,
                         version=select(versions.c.value).where(versions.c.name == "routing"))


def changed_routes(conn: Connection, seen: int) -> tuple[dict[str, ServiceRoute], int]:
    """The routes of the services changed after ``seen`` (a ``changes`` version), and the newest change read."""
    return routes_of_rows(conn.execute(_CHANGED_ROUTES, {"seen": seen}), seen)


def routes_of_rows(result: Iterable[Sequence[Any]], seen: int) -> tuple[dict[str, ServiceRoute], int]:
    """:func:`changed_routes` from the rows of ``_CHANGED_ROUTES`` (SQLAlchemy's, or the driver's own: JSON
    columns may then be text)."""
    rows: dict[str, tuple[Sequence[Any], list[Upstream]]] = {}
    last = seen
    for r in result:
        entry = rows.get(r[0])
        if entry is None:
            entry = rows[r[0]] = (r, [])
            last = max(last, int(r[7]))
        if r[8] is not None:
            entry[1].append(Upstream(r[8], r[9], r[10], r[11]))
    return {name: _make_route(r[0], r[1], json_value(r[2]), r[3], r[4], r[5], r[6], tuple(ups), json_value(r[12]),
                              r[13])
            for name, (r, ups) in rows.items()}, last


def load_snapshot(conn: Connection, master: MasterKey) -> RoutingSnapshot:
    ver = version(conn)
    by_service: dict[int, list[service_store.ReplicaRow]] = {}
    for r in service_store.list_replicas(conn):
        by_service.setdefault(r.service_id, []).append(r)
    routes = {svc.name: _route(svc, by_service.get(svc.id, [])) for svc in service_store.list_all(conn)}
    return RoutingSnapshot(version=ver, services=routes, keys=_keys(conn, master))


def _keys(conn: Connection, master: MasterKey) -> dict[str, KeyEntry]:
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
    return keys


class SnapshotLoader:
    """Loads snapshots for one gateway worker: in full the first time, after a service removal and every
    ``full_every_s``; otherwise from the previous one plus what the change feed names (see the module doc).

    State moves only once a load has succeeded, so a store error mid-load changes nothing."""

    def __init__(self, master: MasterKey, full_every_s: float = 300.0) -> None:
        self.master, self.full_every_s = master, full_every_s
        self.last: RoutingSnapshot | None = None
        self._feed = (-1, -1, -1)  # (changes, removals, keys) versions the last snapshot includes
        self._full_at = 0.0

    def load(self, conn: Connection) -> RoutingSnapshot:
        # first: whatever the reads below see is at least as new as these
        feed = service_store.feed_versions(conn)
        if self.full_due(feed):
            return self._full(conn, feed)
        changed, last = changed_routes(conn, self._feed[0])
        keys = _keys(conn, self.master) if feed[3] != self._feed[2] else None
        return self.delta(feed, changed, last, keys)

    def full_due(self, feed: tuple[int, int, int, int]) -> bool:
        """Whether the snapshot after the (``routing``, ``changes``, ``removals``, ``keys``) versions ``feed``
        must be a full load: the first, after a removal, after the feed went back (a restored store), or the
        slow period's."""
        return (self.last is None or feed[2] != self._feed[1] or feed[1] < self._feed[0]
                or time.monotonic() - self._full_at >= self.full_every_s)

    def keys_moved(self, feed: tuple[int, int, int, int]) -> bool:
        return feed[3] != self._feed[2]

    @property
    def seen(self) -> int:
        """The ``changes`` version the last snapshot includes: the next delta reads the changes after it."""
        return self._feed[0]

    def _full(self, conn: Connection, feed: tuple[int, int, int, int]) -> RoutingSnapshot:
        ver, changes, removals, keys_ver = feed
        snap = load_snapshot(conn, self.master)
        snap = RoutingSnapshot(version=ver, services=snap.services, keys=snap.keys)
        self.last, self._feed, self._full_at = snap, (changes, removals, keys_ver), time.monotonic()
        return snap

    def delta(self, feed: tuple[int, int, int, int], changed: dict[str, ServiceRoute], last: int,
              keys: dict[str, KeyEntry] | None) -> RoutingSnapshot:
        """The next snapshot from the last one, the routes ``changed`` since it (read after ``feed``), the
        newest change read, and the keys when they moved (``None``: unchanged)."""
        prev = self.last
        assert prev is not None, "a delta needs a snapshot to start from"
        ver, changes, removals, keys_ver = feed
        table = prev.services if isinstance(prev.services, RouteTable) else RouteTable(prev.services)
        moved = {name: route for name, route in changed.items() if table.get(name) != route}
        routes, names = table.updated(moved), set(moved)
        snap = RoutingSnapshot(version=ver, services=routes, keys=prev.keys if keys is None else keys,
                               changed=frozenset(names), base=prev.version, keys_changed=keys is not None)
        self.last, self._feed = snap, (max(changes, last), removals, keys_ver)
        return snap


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
    """The gateway's ``SnapshotSource`` over the store: a cheap version poll, a load in O(changed) when it moves.

    Each applied snapshot is acknowledged in ``gateway_acks`` (and re-acknowledged every ``heartbeat_s``), which is how
    the reconciler knows that no gateway worker routes to a draining replica any more."""

    def __init__(self, store: Store, master: MasterKey, worker: str | None = None, heartbeat_s: float = 2.0) -> None:
        self.store, self.master = store, master
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.heartbeat_s = heartbeat_s
        self.loaded = 0
        self._beat = 0.0
        self.loader = SnapshotLoader(master)
        self._driver = driver.Session(store.engine)
        self._away = OutageLog(log, "cannot acknowledge the routing version")

    def _ack(self) -> None:
        try:
            with self.store.begin() as conn:
                ack(conn, self.worker, self.loaded)
            self._away.ok()
            self._beat = time.monotonic()
        except ArkserveError as exc:  # the store is away: serving goes on, the reconciler waits at most its timeout
            self._away.failed(f"{self.loaded}: {exc.message}")
            self._beat = time.monotonic() - self.heartbeat_s + 0.5  # again in 0.5 s, not at every 0.1 s poll

    def version(self) -> int:
        try:
            with self._driver.read() as reader:
                current = int(reader.rows(_HOT.get(self.store.engine, "version"))[0][0])
        except DriverError:  # said in the store's words (or answered) by the usual path
            with self.store.read() as conn:
                current = version(conn)
        if self.loaded and time.monotonic() - self._beat >= self.heartbeat_s:
            self._ack()
        return current

    def load(self) -> RoutingSnapshot:
        """The next snapshot. A delta (the usual case: a few services changed) is read on the driver's own
        connection (:mod:`arkserve.store.driver`), a full load or a key change through SQLAlchemy."""
        loader, engine = self.loader, self.store.engine
        if loader.last is not None:
            try:
                with self._driver.read() as reader:
                    feed = service_store.feed_of_rows(reader.rows(_HOT.get(engine, "feed")))
                    if not loader.full_due(feed) and not loader.keys_moved(feed):
                        changed, last = routes_of_rows(reader.rows(_HOT.get(engine, "changed"), seen=loader.seen),
                                                       loader.seen)
                        return loader.delta(feed, changed, last, None)
            except DriverError as exc:
                log.debug("routing delta on the driver's connection failed (%s); reading it again", exc)
        with self.store.read() as conn:
            return loader.load(conn)

    def close(self) -> None:
        """Give back the connection the driver's reads keep (a worker keeps it until it exits)."""
        self._driver.close()

    def watch(self, on_commit: Callable[[], None]) -> Callable[[], None] | None:
        """On PostgreSQL, call ``on_commit`` (on a thread of its own) as soon as a transaction that moved the routing
        version commits (``LISTEN`` on :data:`~arkserve.store.db.ROUTING_CHANNEL`: :mod:`arkserve.store.wake`).
        Returns what ends the watch; None on SQLite, which the holder polls: there every commit would wake the
        worker (its own acknowledgements, the request log, checkpoints), and at 10 routing changes a second a
        worker spent 5.5-6.3 % of a core watching against 3.5-3.8 % polling (docs/benchmarks.md)."""
        if self.store.engine.dialect.name != "postgresql":
            return None
        watcher = wake.NotifyWake(self.store.engine.url, lambda stop: on_commit(), ROUTING_CHANNEL)
        watcher.start()
        return watcher.close

    def applied(self, version: int) -> None:
        """Acknowledge ``version`` once the gateway serves it (not when it is loaded: a request may still
        be handled by the previous snapshot until the event loop swaps it in)."""
        self.loaded = version
        self._ack()
