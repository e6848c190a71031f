"""The lease core on real SQLite and PostgreSQL: compare-and-set on expiry, renewal, fencing tokens, release; and
the elector's rule that a leader which cannot renew stops acting before anyone else can take the lease."""

from __future__ import annotations

import threading
import time

from arkserve.errors import StoreUnavailable
from arkserve.leases.base import Holding
from arkserve.leases.elector import Elector
from arkserve.leases.store import StoreLease
from arkserve.store import leases as lease_store
from arkserve.store.db import Store


def _wait(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _expired(store: Store, name: str = "reconciler") -> bool:
    with store.read() as conn:
        row = lease_store.get(conn, name)
        return row is not None and row.expires_at <= lease_store.db_now(conn)


def test_acquire_renew_expire_and_fence(store: Store) -> None:
    a, b = StoreLease(store), StoreLease(store)
    first = a.acquire("A", 0.5)
    assert first == Holding("A", 1, 0.5)
    assert b.acquire("B", 0.5).holder == "A"  # held: B only learns who has it
    with store.read() as conn:
        before = lease_store.get(conn, "reconciler")
    assert a.acquire("A", 0.5) == first  # a renewal keeps the token and moves the expiry
    with store.read() as conn:
        after = lease_store.get(conn, "reconciler")
    assert before is not None and after is not None and after.expires_at > before.expires_at
    _wait(lambda: _expired(store))
    taken = b.acquire("B", 0.5)
    assert taken == Holding("B", 2, 0.5)  # a new hand, a new fencing token
    assert a.acquire("A", 0.5).holder == "B"  # the old leader cannot renew what it lost
    a.release("A", 1)  # a stale release changes nothing
    assert b.acquire("B", 0.5) == taken
    b.release("B", 2)
    assert a.acquire("A", 30) == Holding("A", 3, 30)  # released: free at once, no waiting out the lease


def test_exactly_one_of_many_racing_candidates_wins(store: Store) -> None:
    StoreLease(store).acquire("old", 0.2)
    _wait(lambda: _expired(store))
    barrier = threading.Barrier(6)
    results: list[Holding] = []

    def candidate(i: int) -> None:
        barrier.wait()
        try:
            results.append(StoreLease(store).acquire(f"C{i}", 30))
        except StoreUnavailable:  # SQLite: a writer that waited out the busy timeout (not expected at 6)
            results.append(Holding("?", -1, 0))

    threads = [threading.Thread(target=candidate, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.read() as conn:
        row = lease_store.get(conn, "reconciler")
    assert row is not None and row.token == 2 and row.holder.startswith("C")
    assert len(results) == 6
    assert all(r == Holding(row.holder, 2, r.duration_s) for r in results)  # one winner; the others told who


class Flaky:
    """A real store lease whose renewals can be made to fail (the store unreachable from this node)."""

    name = "store"

    def __init__(self, inner: StoreLease) -> None:
        self.inner, self.broken = inner, False

    def acquire(self, holder: str, duration_s: float) -> Holding:
        if self.broken:
            raise StoreUnavailable("store unavailable: OperationalError")
        return self.inner.acquire(holder, duration_s)

    def release(self, holder: str, token: int) -> None:
        self.inner.release(holder, token)


def test_a_leader_that_cannot_renew_stops_acting_before_another_takes_over(store: Store) -> None:
    flaky = Flaky(StoreLease(store))
    a = Elector(flaky, "A", duration_s=1.0, renew_every_s=0.2).start()
    b = Elector(StoreLease(store), "B", duration_s=1.0, renew_every_s=0.05)
    both: list[float] = []  # instants at which both believed they lead
    a_stopped: list[float] = []
    try:
        _wait(a.is_leader)
        b.start()
        time.sleep(0.3)  # let B try (and fail) a few times while A renews
        assert a.is_leader() and not b.is_leader()
        flaky.broken = True
        broke = time.monotonic()
        while not b.is_leader():  # sample both every few ms until B leads
            a_leads, now = a.is_leader(), time.monotonic()
            if a_leads and b.is_leader():
                both.append(now)
            if not a_leads and not a_stopped:
                a_stopped.append(now)
            assert now - broke < 5, "B never took over"
            time.sleep(0.002)
        took = time.monotonic()
        assert not both, "both reconcilers acted at once"
        assert a_stopped and a_stopped[0] < took
        assert took - broke < 1.5  # B took the lease as soon as it expired
        assert b.token == (a.token or 0) + 1
    finally:
        a.stop(release=False)
        b.stop()


def test_a_stale_view_cannot_take_the_lease(store: Store) -> None:
    """Two candidates read the same expired row; the first write wins, the second (its view now stale) fails."""
    StoreLease(store).acquire("old", 0.1)
    _wait(lambda: _expired(store))
    with store.read() as conn:
        seen = lease_store.get(conn, "reconciler")
    assert seen is not None and seen.token == 1
    take = {"token": 2, "acquired_at": 0.0, "renewed_at": 0.0, "expires_at": 1e12}
    with store.begin() as conn:
        assert lease_store.compare_and_set(conn, seen, {**take, "holder": "A"})
    with store.begin() as conn:
        assert not lease_store.compare_and_set(conn, seen, {**take, "holder": "B"})
    with store.read() as conn:
        row = lease_store.get(conn, "reconciler")
    assert row is not None and (row.holder, row.token) == ("A", 2)
