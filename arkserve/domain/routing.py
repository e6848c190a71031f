"""The routing snapshot: everything the gateway needs to serve, as one immutable value.

The gateway never queries the store per request. A loader (``arkserve.store.routing``)
builds a :class:`RoutingSnapshot` whenever the store's change version moves, and the
gateway swaps it in atomically; while the store is away it keeps serving the last one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class KeyEntry:
    """An active access key as the gateway sees it (decrypted SK bytes, never logged)."""

    access_key: str
    secret: bytes = field(repr=False)
    user_id: int
    is_admin: bool
    require_signed_payload: bool = False


@dataclass(frozen=True)
class Upstream:
    """One ready replica the gateway may send requests to."""

    replica: str
    host: str
    port: int
    revision: str = ""  # the spec revision it runs (the stable one or the canary's)


@dataclass(frozen=True)
class ServiceRoute:
    """One service endpoint: how it is addressed, who may call it, where its replicas are."""

    name: str
    owner_id: int
    auth: bool
    upstreams: tuple[Upstream, ...]
    gateway_port: int | None = None  # 'port' addressing; None in 'host' addressing
    request_timeout_s: float = 60.0
    max_concurrency: int = 0  # per replica; 0 = unlimited
    require_signed_payload: bool = False
    failing: str = ""  # the status reason while the service is failed (CrashLoop, ImageNotFound); never the
    # message, which quotes the app's last log lines and must not reach callers of a public service
    not_ready: str = ""  # the status reason while the service is not ready (Scaling, WrongPort, ScaledToZero…)
    pass_authorization: bool = False  # public services: hand the client's Authorization header to the replica
    cold_start_timeout_s: float = 0.0  # autoscaled (docs/autoscaling.md): at 0 replicas a request waits this long
    # for one to start (the gateway wakes the service); 0 = not autoscaled
    canary: str = ""  # the canary's revision while the service has one (docs/canary.md); "" = none
    canary_weight: int = 0  # the canary's percent of requests

    @property
    def failed_without_replicas(self) -> bool:
        """Nothing will be ready soon: the gateway answers 503 at once instead of queueing."""
        return bool(self.failing) and not self.upstreams


class RouteTable(Mapping[str, ServiceRoute]):
    """Routes by service name, immutable: a shared base plus the few routes changed on top of it, so the next
    snapshot costs O(changed) instead of a copy of every route (and the previous one's release costs as little).
    The changes fold into a new base once they pass ``FOLD_AT`` (about one copy per ``FOLD_AT`` changes)."""

    FOLD_AT = 256
    __slots__ = ("_base", "_len", "_top")

    def __init__(self, base: Mapping[str, ServiceRoute], top: Mapping[str, ServiceRoute] | None = None,
                 _len: int = -1) -> None:
        self._base: dict[str, ServiceRoute] = base if isinstance(base, dict) else dict(base)
        self._top: dict[str, ServiceRoute] = dict(top or {})
        self._len = _len if _len >= 0 else len(self._base) + sum(1 for k in self._top if k not in self._base)

    def __getitem__(self, name: str) -> ServiceRoute:
        route = self._top.get(name)
        return self._base[name] if route is None else route

    def __iter__(self) -> Iterator[str]:
        yield from self._base
        yield from (k for k in self._top if k not in self._base)

    def __len__(self) -> int:
        return self._len

    def updated(self, changes: Mapping[str, ServiceRoute]) -> RouteTable:
        """A new table with ``changes`` (added or replaced routes) on top; this one stays as it is."""
        if not changes:
            return self
        top = {**self._top, **changes}
        if len(top) > self.FOLD_AT:
            return RouteTable({**self._base, **top})
        added = sum(1 for k in changes if k not in self._base and k not in self._top)  # O(changed), not O(top)
        return RouteTable(self._base, top, self._len + added)


@dataclass(frozen=True)
class RoutingSnapshot:
    """Everything a worker serves from. A snapshot may also say how it differs from the one of version
    ``base``: only the services named in ``changed`` (added, changed or gone) and, unless ``keys_changed``,
    the same keys. A worker that serves ``base`` applies just that (O(changed)); ``changed=None`` means
    anything may differ (a full snapshot)."""

    version: int
    services: Mapping[str, ServiceRoute]
    keys: Mapping[str, KeyEntry]
    changed: frozenset[str] | None = None
    base: int = -1
    keys_changed: bool = True

    def by_port(self, port: int) -> ServiceRoute | None:
        for route in self.services.values():
            if route.gateway_port == port:
                return route
        return None

    def may_call(self, key: KeyEntry, route: ServiceRoute) -> bool:
        return key.is_admin or key.user_id == route.owner_id


EMPTY_SNAPSHOT = RoutingSnapshot(version=0, services={}, keys={})
