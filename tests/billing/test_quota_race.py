"""Quota admission under concurrency: two creates of one user in flight at once, each alone within the quota,
together past it. On PostgreSQL the second waits for the first (the user's row is locked by the admission) and
then sees its service; SQLite's write transactions are serial anyway."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import insert

from arkserve.billing import accounts, guard
from arkserve.settings import BillingSettings
from arkserve.store.tables import services

from .conftest import Billing

SPEC = {"image": "/usr/bin", "port": 8000, "command": "x", "instance_type": "t.one"}


def _create(conn: Any, billing: Billing, name: str, replicas: int) -> None:
    guard.admit(conn, BillingSettings(), billing.user_id, SPEC, replicas)
    conn.execute(insert(services).values(
        name=name, owner_id=billing.user_id, spec=SPEC, replicas=replicas, generation=1, status="pending", reason="",
        message="", deleting=False, created_at=billing.clock.t, updated_at=billing.clock.t))


def test_two_creates_at_once_cannot_both_pass_a_replica_quota(billing: Billing) -> None:
    with billing.store.begin() as conn:
        accounts.set_limits(conn, billing.user_id, {"max_replicas": 3}, billing.clock.t)
    first_admitted, second_done = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def second() -> None:
        first_admitted.wait(10)
        try:
            with billing.store.begin() as conn:
                _create(conn, billing, "two", 2)
            outcome["second"] = "created"
        except guard.QuotaExceeded as exc:
            outcome["second"] = exc
        finally:
            second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with billing.store.begin() as conn:
        _create(conn, billing, "one", 2)
        first_admitted.set()
        # the second admission must wait for this transaction (not decide on what it saw before it)
        assert not second_done.wait(1.0), f"the second create was decided while the first was open: {outcome}"
    thread.join(30)
    assert isinstance(outcome.get("second"), guard.QuotaExceeded), outcome
    assert "replicas 2 in use + 2 asked > limit 3" in str(outcome["second"])


def test_one_create_within_the_quota_passes(billing: Billing) -> None:
    with billing.store.begin() as conn:
        accounts.set_limits(conn, billing.user_id, {"max_replicas": 3}, billing.clock.t)
        _create(conn, billing, "one", 3)
