"""The autoscaler's shell over a real store: gateway load rows in, replica count and event out; a wake; stale rows
count as zero; admission refusals are events, and the count grows only as far as admission allows; a manual service
is left alone."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, update

from arkserve.errors import Forbidden
from arkserve.reconciler.autoscaler import Autoscaler
from arkserve.store import events as event_store
from arkserve.store import load as load_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.services import ServiceRow
from arkserve.store.tables import gateway_load

AUTO = {"min": 0, "max": 4, "target": 2, "stable_window_s": 60, "panic_window_s": 6, "scale_in_delay_s": 300,
        "idle_to_zero_s": 600, "cold_start_timeout_s": 30}


def _service(store: Store, name: str, replicas: int, autoscale: dict[str, Any] | None) -> int:
    with store.begin() as conn:
        owner = user_store.find(conn, "owner") or user_store.create(conn, "owner", "h", "user")
        spec = {"image": "img", "command": "serve", "port": 8000, "autoscale": autoscale}
        return service_store.create(conn, name, owner.id, spec, replicas, None).id


def _state(store: Store, name: str) -> tuple[int, list[str]]:
    with store.read() as conn:
        svc = service_store.get(conn, name)
        return svc.replicas, [e["message"] for e in event_store.list_events(conn, name)
                              if e["kind"].startswith("autoscale")]


def _scaler(store: Store, **kw: Any) -> Autoscaler:
    a = Autoscaler(store, every_s=0.0, **kw)
    with store.read() as conn:
        a.observe(service_store.list_all(conn))
    return a


def test_a_wake_scales_from_zero_with_an_event(store: Store) -> None:
    _service(store, "cold", 0, AUTO)
    _service(store, "hand", 0, None)  # manual: never touched
    a = _scaler(store)
    assert a.step() == set()  # no load: stays at 0
    with store.begin() as conn:
        assert load_store.wake(conn, "gw:1", "cold", 5)
        assert not load_store.wake(conn, "gw:1", "nope", 1)
        load_store.report(conn, "gw:1", {"hand": (0, 9)})
    scaled = a.step()
    assert len(scaled) == 1
    assert _state(store, "cold") == (3, ["scaled 0→3: 5 request(s) waiting at 0 replicas"])
    assert _state(store, "hand") == (0, [])


def test_load_from_every_fresh_worker_is_summed_and_stale_rows_count_as_zero(store: Store) -> None:
    _service(store, "busy", 1, {**AUTO, "min": 1})
    with store.begin() as conn:
        load_store.report(conn, "gw:1", {"busy": (4, 1)})
        load_store.report(conn, "gw:2", {"busy": (3, 0)})
        load_store.report(conn, "gw:3", {"busy": (100, 0)}, at=time.time() - 60)  # a worker gone a minute ago
        assert load_store.totals(conn) == {"busy": 8}
    a = _scaler(store)
    a.step()
    replicas, events = _state(store, "busy")
    assert replicas == 4 and events == ["scaled 1→4: (panic) 8 in flight per replica over the last 6 s > target 2"]


def test_a_refused_growth_is_one_event_and_the_count_stays(store: Store) -> None:
    _service(store, "poor", 1, {**AUTO, "min": 1})

    def admit(conn: Connection, svc: ServiceRow, n: int) -> None:
        raise Forbidden(f"quota exceeded: replicas {svc.replicas} in use + {n} asked > limit 1")

    a = _scaler(store, admit=admit)
    with store.begin() as conn:
        load_store.report(conn, "gw:1", {"poor": (6, 0)})
    assert a.step() == set()
    a.step()
    assert _state(store, "poor") == (1, ["cannot scale 1→3: quota exceeded: replicas 1 in use + 3 asked > limit 1"])


def test_a_refused_growth_grows_as_far_as_admission_allows(store: Store) -> None:
    _service(store, "cold", 0, AUTO)  # at 0, requests waiting: it must not stay at 0 because 3 were too many
    asked: list[int] = []

    def admit(conn: Connection, svc: ServiceRow, n: int) -> None:
        asked.append(n)
        if n > 1:
            raise Forbidden(f"quota exceeded: replicas 1 in use + {n} asked > limit 2")

    a = _scaler(store, admit=admit)
    with store.begin() as conn:
        assert load_store.wake(conn, "gw:1", "cold", 12)
    assert len(a.step()) == 1
    assert _state(store, "cold") == (1, [
        "cannot scale 0→4: quota exceeded: replicas 1 in use + 4 asked > limit 2; scaling to 1, as far as "
        "admission allows",
        "scaled 0→1 of the 4 asked (12 request(s) waiting at 0 replicas): admission allows no more"])
    assert asked[0] == 4 and len(asked) <= 3  # a binary search, not one check per count
    a.step()  # still refused at 4 and at 2: no new event, no change
    assert _state(store, "cold")[0] == 1 and len(_state(store, "cold")[1]) == 2


def test_turning_it_off_or_deleting_the_service_stops_it(store: Store) -> None:
    sid = _service(store, "gone", 1, {**AUTO, "min": 1})
    a = _scaler(store)
    with store.begin() as conn:
        svc = service_store.get(conn, "gone")
        service_store.update_desired(conn, svc, spec={**svc.spec, "autoscale": None})
        load_store.report(conn, "gw:1", {"gone": (50, 0)})
        a.observe(service_store.changed_since(conn, 0))
    assert a.step() == set() and _state(store, "gone") == (1, [])
    assert sid not in a.services
    with store.begin() as conn:  # old rows are pruned
        conn.execute(update(gateway_load).values(reported_at=time.time() - 7200))
        assert load_store.prune(conn) == 1


def test_growth_counts_the_canarys_replicas_against_the_quota(store: Store) -> None:
    from arkserve.billing import accounts, guard
    from arkserve.settings import BillingSettings
    from arkserve.store import canary as canary_store

    _service(store, "split", 2, {**AUTO, "min": 1})
    with store.begin() as conn:
        svc = service_store.get(conn, "split")
        canary_store.set_canary(conn, svc, {**svc.spec, "image": "img2"}, 50)  # 2 stable + 1 canary
        accounts.set_limits(conn, svc.owner_id, {"max_replicas": 4}, time.time())

    def admit(conn: Connection, svc: ServiceRow, n: int) -> None:
        guard.admit_scale(conn, BillingSettings(), svc, n)

    a = _scaler(store, admit=admit)
    with store.begin() as conn:
        load_store.report(conn, "gw:1", {"split": (6, 0)})  # 3 stable replicas wanted: 3 + 2 canary > 4
    a.step()
    replicas, events = _state(store, "split")
    assert replicas == 2 and len(events) == 1 and "cannot scale 2→3" in events[0] and "limit 4" in events[0]


def test_queued_asynchronous_requests_count_as_load(store: Store) -> None:
    """A backlog in the async queue grows the service (requests being sent are in flight at a gateway already)."""
    from arkserve.store import async_requests as async_store

    _service(store, "batch", 1, {**AUTO, "min": 1})
    now = time.time()
    with store.begin() as conn:
        for i in range(8):
            async_store.insert_request(conn, {"id": f"ar_{i}", "service": "batch", "method": "POST", "path": "/",
                                              "headers": [], "created_at": now})
        load_store.report(conn, "gw:1", {"batch": (0, 0)})
    a = _scaler(store)
    a.step()
    replicas, events = _state(store, "batch")
    assert replicas == 4 and events == ["scaled 1→4: (panic) 8 in flight per replica over the last 6 s > target 2"]
