"""What the API says of a user's prepaid instances in use (``GET /billing/prepaid``, ``/billing/prepaid-free``:
the CLI's ``billing prepaid list`` and the console) agrees with placement, through the real API and a real
``Placer`` on its store. A crash-looping replica keeps its placement and so its prepaid instance; a pending one
that gave its placement up (the runtime refused it for now) holds none. Before, the API counted rows by state:
the first was shown free while placement answered "1 of 1 in use", the second in use while placement gave the
instance to another replica."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arkserve.capacity.inventory import read_inventory
from arkserve.reconciler.capacity import Placer
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.sdk.client import Client
from arkserve.store import services as service_store
from arkserve.store.db import Store, open_store
from arkserve.store.services import ReplicaRow
from tests.api.conftest import LiveApi, running_api
from tests.capacity.fake_nvml import FakeNVML

SPEC = {"image": "/usr/bin", "port": 27777, "command": "python3 app.py", "instance_type": "cpu.small",
        "billing": "prepaid"}
NONE_FREE = "no free prepaid cpu.small instance (1 of 1 in use)"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LiveApi]:
    with running_api(tmp_path) as api:
        yield api


def _in_use(alice: Client) -> tuple[list[dict[str, object]], list[int]]:
    return alice.get("/billing/prepaid-free"), [row["in_use"] for row in alice.get("/billing/prepaid")]


def _save(store: Store, rep: ReplicaRow) -> None:
    with store.begin() as conn:
        service_store.save_replicas(conn, [rep], routing_changed=False)


def test_in_use_is_counted_as_placement_counts_it(api: LiveApi) -> None:
    with api.client() as admin:
        admin.post("/users", {"username": "alice", "password": "alice-password-1"})
        key = admin.post("/keys", {"username": "alice"})
        admin.post("/billing/topup", {"username": "alice", "amount": 100})
    store = open_store(api.database_url)
    try:
        with api.client(key["access_key"], key["secret_key"]) as alice:
            alice.post("/billing/prepaid", {"instance_type": "cpu.small", "count": 1})
            alice.post("/services", {"name": "crashy", "replicas": 0, **SPEC})
            with store.read() as conn:
                svc = service_store.get(conn, "crashy")
            placer = Placer(store, "local", ReconcilerConfig(), inventory=lambda: read_inventory("h1", FakeNVML([])))
            first = ReplicaRow(id="r0000001", service_id=svc.id, revision="v1", state="pending")
            assert placer.assign(svc, first) == "" and (first.node, first.billing) == ("h1", "prepaid")
            first.state, first.restarts, first.last_error = "failed", 3, "exited with code 1"  # a crash loop
            _save(store, first)  # keeps its placement (docs/capacity.md)
            second = ReplicaRow(id="r0000002", service_id=svc.id, revision="v1", state="pending")
            assert placer.assign(svc, second).startswith(NONE_FREE)
            assert _in_use(alice) == ([{"instance_type": "cpu.small", "held": 1, "in_use": 1, "free": 0}], [1])

            first.state, first.node = "pending", ""  # the runtime refused it for now: placement given up
            _save(store, first)  # (its billing stays prepaid: worker.py clears node only)
            assert _in_use(alice) == ([{"instance_type": "cpu.small", "held": 1, "in_use": 0, "free": 1}], [0])
            assert placer.assign(svc, second) == "" and second.billing == "prepaid"
            assert _in_use(alice) == ([{"instance_type": "cpu.small", "held": 1, "in_use": 1, "free": 0}], [1])
    finally:
        store.dispose()
