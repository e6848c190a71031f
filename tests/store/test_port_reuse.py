"""Gateway ports of deleted services (on SQLite and PostgreSQL): a new service never gets the port a deleted one
had while any other port is left (its old clients, anonymous ones of a public service included, would reach it);
once the range is used up the least recently released port comes back first, then 409 GatewayPortsExhausted;
creates and deletes at once still hand out distinct ports."""

from __future__ import annotations

import threading

import pytest

from arkserve.errors import LimitExceeded
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store

SPEC = {"image": "img", "command": "serve", "port": 8000}


def _owner(store: Store) -> int:
    with store.begin() as conn:
        return user_store.create(conn, "owner", "h", "user").id


def _create(store: Store, owner: int, name: str, base: int, taken: frozenset[int] = frozenset()) -> int:
    with store.begin() as conn:
        port = service_store.create(conn, name, owner, SPEC, 0, base, lambda p: p in taken).gateway_port
    assert port is not None
    return port


def _delete(store: Store, name: str) -> None:
    """What ``service delete`` and then the reconciler do: mark it, and remove the row once drained."""
    with store.begin() as conn:
        service_store.mark_deleting(conn, service_store.get(conn, name))
    with store.begin() as conn:
        service_store.remove(conn, service_store.get(conn, name).id)


def test_a_deleted_services_port_does_not_go_to_the_next_service(store: Store) -> None:
    owner, base = _owner(store), 20001
    assert [_create(store, owner, n, base) for n in ("pa", "pb")] == [base, base + 1]
    _delete(store, "pb")  # the highest port: it was handed out again at once
    assert _create(store, owner, "pc", base) == base + 2
    _delete(store, "pc")
    _delete(store, "pa")
    assert _create(store, owner, "pd", base) == base + 3
    assert _create(store, owner, "pe", base) == base + 4
    with store.read() as conn:
        assert {s.name: s.gateway_port for s in service_store.list_all(conn)} == {"pd": base + 3, "pe": base + 4}


def test_a_used_up_range_reuses_the_least_recently_released_port_then_refuses(store: Store) -> None:
    owner, base = _owner(store), 65532  # four ports: 65532-65535
    assert [_create(store, owner, f"s{i}", base) for i in range(4)] == [65532, 65533, 65534, 65535]
    for name in ("s2", "s0", "s1"):  # released in this order: 65534, 65532, 65533
        _delete(store, name)
    assert _create(store, owner, "n1", base) == 65534  # the oldest release, not the lowest port
    # the next oldest (65532) is held by another program: skipped, not lost
    assert _create(store, owner, "n2", base, frozenset({65532})) == 65533
    assert _create(store, owner, "n3", base) == 65532
    with pytest.raises(LimitExceeded) as e:
        _create(store, owner, "n4", base)
    assert (e.value.status, e.value.code) == (409, "GatewayPortsExhausted")
    assert "65532" in e.value.message and "gateway.port_base" in e.value.message
    with store.read() as conn:  # nothing half-created
        assert service_store.find(conn, "n4") is None
    _delete(store, "n1")
    assert _create(store, owner, "n4", base) == 65534


def test_a_port_never_handed_out_is_used_once_the_range_is_used_up(store: Store) -> None:
    owner, base = _owner(store), 65533
    # 65533 is held by another program at first: a gap, used only when nothing was released
    assert [_create(store, owner, n, base, frozenset({65533})) for n in ("a", "b")] == [65534, 65535]
    assert _create(store, owner, "c", base) == 65533
    with pytest.raises(LimitExceeded):
        _create(store, owner, "d", base)


def test_creates_and_deletes_at_once_never_share_or_reuse_a_port(store: Store) -> None:
    owner, base = _owner(store), 30001
    ports: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def churn(i: int) -> None:
        try:
            start.wait(timeout=30)
            for j in range(8):
                ports.append(_create(store, owner, f"t{i}-{j}", base))
                if j:  # deleted at once (all but the first): its port must not come back
                    _delete(store, f"t{i}-{j}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert len(ports) == 32 and len(set(ports)) == 32, sorted(ports)
    assert sorted(ports) == list(range(base, base + 32))
    with store.read() as conn:
        kept = {s.name: s.gateway_port for s in service_store.list_all(conn)}
    assert sorted(kept) == ["t0-0", "t1-0", "t2-0", "t3-0"] and len(set(kept.values())) == 4
    assert _create(store, owner, "after", base) == base + 32  # not the port of the last one deleted
