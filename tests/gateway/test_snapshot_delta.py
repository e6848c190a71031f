"""A snapshot that says what changed is applied in O(changed) and leaves a worker exactly where a full apply would."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from arkserve.domain.routing import KeyEntry, RouteTable, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.core import Core

N = 10_000


def _route(i: int, *ups: int, port: int | None = None) -> ServiceRoute:
    return ServiceRoute(f"s{i:05d}", 1, True, tuple(Upstream(f"r{i}-{u}", "127.0.0.1", 30000 + u) for u in ups),
                        gateway_port=port)


def _state(core: Core) -> tuple[object, ...]:
    pools = {name: [(st.replica, st.address, st.limit) for st in p.replicas] for name, p in core.balancer.pools.items()}
    states = sorted(core.balancer._states)
    return core.services, core.port_routes, core.secrets, pools, states, core.snapshot.version


def test_a_delta_changes_only_its_services_and_matches_a_full_apply() -> None:
    async def run() -> None:
        services = {r.name: r for r in (_route(i, i % 3, port=20000 + i) for i in range(N))}
        keys = {"AK1": KeyEntry("AK1", b"s1", 1, False)}
        base = RoutingSnapshot(1, services, keys)
        core = Core(GatewayConfig(), None)
        assert core.apply(base)
        untouched_pool = core.balancer.pools["s00001"]
        kept = core.balancer.pools["s00004"].replicas[0]
        kept.outstanding = 2  # a request in flight on a replica that survives the change

        changed = dict(services)
        changed["s00004"] = _route(4, 1, 7, port=20004)  # one more replica
        del changed["s00005"]  # gone, with its port
        changed["s10000"] = _route(10000, 2, port=30000)  # new, with a new port
        changed["s00006"] = replace(services["s00006"], gateway_port=20006, failing="CrashLoop")
        delta = RoutingSnapshot(2, changed, keys, changed=frozenset({"s00004", "s00005", "s10000", "s00006"}),
                                base=1, keys_changed=False)
        t0 = time.process_time()
        ports_moved = core.apply(delta)
        cost = time.process_time() - t0
        assert ports_moved  # s00005's port went, s10000's came

        full = Core(GatewayConfig(), None)
        full.apply(RoutingSnapshot(2, changed, keys))
        assert _state(core) == _state(full)
        assert core.balancer.pools["s00001"] is untouched_pool  # not rebuilt
        assert core.balancer.pools["s00004"].replicas[0] is kept and kept.outstanding == 2
        assert cost < 0.05, cost  # a full apply of 10 000 services takes far longer (see bench/controlplane.py)

        quiet = RoutingSnapshot(3, changed, keys, changed=frozenset({"s00007"}), base=2, keys_changed=False)
        assert not core.apply(quiet)  # no port came or went: port addressing leaves its listeners alone

        stale = RoutingSnapshot(9, services, {}, changed=frozenset(), base=7, keys_changed=False)
        core.apply(stale)  # based on a version this worker does not serve: applied in full
        full.apply(RoutingSnapshot(9, services, {}))
        assert _state(core) == _state(full) and core.secrets == {}

    asyncio.run(run())


def test_a_route_table_is_a_mapping_that_shares_its_base_and_folds() -> None:
    base = {f"s{i:05d}": _route(i) for i in range(1000)}
    t0 = RouteTable(base)
    t1 = t0.updated({"s00003": _route(3, 1), "new": _route(1000)})
    assert t1 is not t0 and t0["s00003"] == _route(3) and "new" not in t0  # the older table is untouched
    assert t1["s00003"] == _route(3, 1) and t1["new"] == _route(1000) and len(t1) == 1001
    assert dict(t1) == {**base, "s00003": _route(3, 1), "new": _route(1000)} and list(t1)[-1] == "new"
    assert t1.updated({}) is t1
    t = t1
    for i in range(RouteTable.FOLD_AT + 1):
        t = t.updated({f"s{i:05d}": _route(i, 2)})
    assert t._base is not t1._base and len(t._top) < 3  # folded into a new base once past FOLD_AT
    assert len(t) == 1001 and t["s00000"] == _route(0, 2) and t["new"] == _route(1000)


def test_a_route_tables_length_follows_added_names_without_counting_its_top() -> None:
    t = RouteTable({f"s{i:05d}": _route(i) for i in range(100)})
    for step in range(RouteTable.FOLD_AT - 1):  # replaced, re-added and new names, all before the fold
        t = t.updated({f"s{step % 150:05d}": _route(step % 150, step), f"n{step % 7}": _route(1000 + step)})
        assert len(t) == len(dict(t)) == len(list(t))
