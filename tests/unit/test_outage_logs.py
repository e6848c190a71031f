"""A store outage seen by the gateway's routing snapshot loop and by the lease elector (review 4, finding 6): each
said every failure (a worker polls every second), about 200k lines a day for two workers. Through
:class:`arkserve.outage.OutageLog` they say the first failure, then a line a minute with a count, then one line
when the store works again. On a real SQLite store whose reads and writes can be made to fail (the store unreachable
from this process), as ``Flaky`` in tests/reconciler/test_leader_lease.py."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from arkserve.auth.vault import MasterKey
from arkserve.domain.routing import RoutingSnapshot
from arkserve.errors import StoreUnavailable
from arkserve.gateway.snapshot import SnapshotHolder
from arkserve.leases.base import Holding
from arkserve.leases.elector import Elector
from arkserve.leases.store import StoreLease
from arkserve.store.db import Store, bump, open_store
from arkserve.store.routing import StoreSnapshotSource

DOWN = "store unavailable: OperationalError"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/arkserve.db")


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


class Unreachable:
    """A real store's routing source whose store can be made unreachable."""

    def __init__(self, inner: StoreSnapshotSource) -> None:
        self.inner, self.down = inner, False

    def version(self) -> int:
        if self.down:
            raise StoreUnavailable(DOWN)
        return self.inner.version()

    def load(self) -> RoutingSnapshot:
        if self.down:
            raise StoreUnavailable(DOWN)
        return self.inner.load()

    def applied(self, version: int) -> None:
        self.inner.applied(version)


class Flaky:
    """A real store lease whose renewals can be made to fail."""

    name = "store"

    def __init__(self, inner: StoreLease) -> None:
        self.inner, self.broken = inner, False

    def acquire(self, holder: str, duration_s: float) -> Holding:
        if self.broken:
            raise StoreUnavailable(DOWN)
        return self.inner.acquire(holder, duration_s)

    def release(self, holder: str, token: int) -> None:
        self.inner.release(holder, token)


def test_snapshot_polls_during_an_outage_say_it_once_and_then_that_it_works_again(
        sqlite_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    source = Unreachable(StoreSnapshotSource(sqlite_store, MasterKey.generate(), worker="w"))
    holder = SnapshotHolder(source, lambda snap: None)

    async def scenario() -> None:
        assert await holder.refresh()
        version = holder.current.version
        source.down = True
        for _ in range(50):  # 50 polls of a worker (a second apart in production)
            assert not await holder.refresh()
        source.down = False
        with sqlite_store.begin() as conn:
            bump(conn)  # meanwhile, a change: loaded once the store is back
        assert await holder.refresh() and holder.current.version > version
        assert await holder.refresh()  # working: nothing more to say

    with caplog.at_level(logging.WARNING, "arkserve.gateway.snapshot"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "arkserve.gateway.snapshot"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("routing snapshot source failed: keeping version ") and lines[0].endswith(DOWN)
    assert lines[1].startswith("routing snapshot source failed: works again after ")
    assert lines[1].endswith("s (50 failures)")
    sqlite_store.dispose()


def test_lease_renewals_during_an_outage_say_it_once_a_minute_and_then_that_it_works_again(
        sqlite_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lease = Flaky(StoreLease(sqlite_store))
    elector = Elector(lease, "A", duration_s=10.0, renew_every_s=1.0, clock=clock)
    with caplog.at_level(logging.INFO, "arkserve.leases"):
        assert elector.step()
        lease.broken = True
        for _ in range(130):  # 130 s of renewals, one a second
            elector.step()
            clock.t += 1.0
        lease.broken = False
        assert elector.step()  # under a second passed on the store's clock: A still holds it, and renews
    lines = [r.getMessage() for r in caplog.records if r.name == "arkserve.leases" and r.levelno == logging.WARNING]
    assert lines == [
        f"lease store: renewal failed: {DOWN}",
        "lost the store lease: stopped acting",
        f"lease store: renewal failed: {DOWN} (60 more times in the last 60 s)",
        f"lease store: renewal failed: {DOWN} (60 more times in the last 60 s)",
        "lease store: works again after 130 s (130 failures)",
    ], lines
    sqlite_store.dispose()
