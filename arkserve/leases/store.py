"""The store-side lease: a row of the ``leases`` table (:mod:`arkserve.store.leases`), for SQLite and PostgreSQL."""

from __future__ import annotations

from arkserve.leases.base import Holding
from arkserve.store import leases as lease_store
from arkserve.store.db import Store


class StoreLease:
    name = "store"

    def __init__(self, store: Store, lease: str = "reconciler") -> None:
        self.store, self.lease = store, lease

    def acquire(self, holder: str, duration_s: float) -> Holding:
        with self.store.begin() as conn:
            row = lease_store.acquire(conn, self.lease, holder, duration_s)
        return Holding(row.holder, row.token, duration_s)

    def release(self, holder: str, token: int) -> None:
        with self.store.begin() as conn:
            lease_store.release(conn, self.lease, holder, token)
