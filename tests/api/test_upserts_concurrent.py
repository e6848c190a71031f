"""Concurrent admin writes of a per-user setting whose row does not exist yet (review 4, finding 3): on PostgreSQL
the read-then-insert "upserts" let two writers both insert, and one answered 500 (UniqueViolation on the primary
key). Through the live API on loopback, on SQLite and PostgreSQL: every write succeeds and a later write wins."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi

WRITERS = 8


def _at_once(api: LiveApi, path: str, bodies: list[dict[str, Any]]) -> Counter[tuple[int, str]]:
    """PUT each body to ``path`` from its own thread and client, all released together."""
    barrier = threading.Barrier(len(bodies))
    answers: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()

    def one(body: dict[str, Any]) -> None:
        with httpx.Client(base_url=f"{api.url}/api/v1", auth=ArkAuth(api.admin_ak, api.admin_sk),
                          timeout=60) as c:
            barrier.wait()
            resp = c.put(path, json=body)
        with lock:
            answers[(resp.status_code, resp.json().get("code", "") if resp.status_code >= 400 else "")] += 1

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


@pytest.mark.parametrize(("path", "field", "read"), [
    ("/disk/quota/{u}", "limit_bytes", lambda c, u: c.get("/disk/usage", user=u)["limit"]),
    ("/images/quota/{u}", "quota_bytes", lambda c, u: c.get("/images/quota", username=u)["quota_bytes"]),
    ("/quotas/{u}", "max_replicas", lambda c, u: c.get(f"/quotas/{u}")["max_replicas"]),
], ids=["disk", "images", "billing"])
def test_simultaneous_quota_puts_for_a_user_without_a_row_all_succeed(live_api: LiveApi, path: str, field: str,
                                                                      read: Any) -> None:
    base = 1000 if field == "max_replicas" else 10**9
    with live_api.client() as admin:
        for n in range(3):  # a few fresh users: each is a new race on a missing row
            user = f"racer{n}"
            admin.post("/users", {"username": user, "password": "a-long-password-1"})
            values = [base + n * WRITERS + i for i in range(WRITERS)]
            answers = _at_once(live_api, path.format(u=user), [{field: v} for v in values])
            assert answers == Counter({(200, ""): WRITERS}), (user, answers)
            assert read(admin, user) in values  # the last to commit
            admin.request("PUT", path.format(u=user), json={field: base + 999})  # and a later write wins
            assert read(admin, user) == base + 999
