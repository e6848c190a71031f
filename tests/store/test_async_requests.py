"""The asynchronous queue's store semantics on SQLite and PostgreSQL: leased claims, a dead dispatcher's claims
taken over after the lease, one result per request, callbacks claimed after the result, purge, queue depth."""

from __future__ import annotations

from arkserve.store import async_requests as q
from arkserve.store.db import Store


def _submit(store: Store, rid: str, t: float, callback: str | None = None) -> None:
    with store.begin() as conn:
        q.insert_request(conn, {"id": rid, "service": "svc", "method": "POST", "path": "/p", "headers": [["a", "b"]],
                                "body": b"hi", "body_size": 2, "created_at": t, "callback_url": callback})


def test_a_claim_is_leased_and_only_a_dead_owners_claim_is_taken_over(store: Store) -> None:
    for i in range(3):
        _submit(store, f"ar_{i}", 100.0 + i)
    with store.begin() as conn:
        a = q.claim(conn, "A", 200.0, 10.0, 2)
        b = q.claim(conn, "B", 200.0, 10.0, 5)
    assert [r["id"] for r in a] == ["ar_0", "ar_1"] and a[0]["body"] == b"hi" and a[0]["headers"] == [["a", "b"]]
    assert [r["id"] for r in b] == ["ar_2"]  # never a row another dispatcher holds
    with store.begin() as conn:
        assert q.claim(conn, "B", 209.0, 10.0, 5) == []  # A's leases still run
        assert q.renew(conn, "A", ["ar_0", "ar_2"], 220.0) == 1  # A is alive and renews one of them (not B's)
        assert q.renew(conn, "B", ["ar_2"], 220.0) == 1
        taken = q.claim(conn, "B", 211.0, 10.0, 5)  # ar_1's lease ran out: A died holding it
    assert [r["id"] for r in taken] == ["ar_1"] and taken[0]["attempts"] == 2
    with store.begin() as conn:
        assert not q.finish(conn, "ar_1", "A", now=212.0, status=q.SUCCEEDED, retention_s=60, result_status=200)
        assert q.finish(conn, "ar_1", "B", now=212.0, status=q.SUCCEEDED, retention_s=60, result_status=201,
                        result_headers=[["x", "y"]], result_body=b"out", result_size=3)
        assert not q.finish(conn, "ar_1", "B", now=213.0, status=q.FAILED, retention_s=60, error="late")
        row = q.get(conn, "ar_1", with_bodies=True)
    assert row is not None and row["status"] == q.SUCCEEDED and row["result_status"] == 201
    assert row["result_body"] == b"out" and row["body"] is None and row["expires_at"] == 272.0


def test_requeue_waits_for_its_time_and_depth_counts_by_state(store: Store) -> None:
    with store.read() as conn:
        assert q.anything_due(conn, 10.0) == (False, False)
    _submit(store, "ar_a", 1.0)
    _submit(store, "ar_b", 2.0)
    with store.read() as conn:
        assert q.anything_due(conn, 0.5) == (False, False) and q.anything_due(conn, 10.0) == (True, False)
    with store.begin() as conn:
        [row] = q.claim(conn, "A", 10.0, 10.0, 1)
        assert q.requeue(conn, row["id"], "A", 15.0, "NoReplicaAvailable")
        assert q.queue_depth(conn) == {"svc": {"queued": 2, "running": 0}}
        assert [r["id"] for r in q.claim(conn, "A", 11.0, 10.0, 5)] == ["ar_b"]  # ar_a waits until 15
        assert q.queue_depth(conn) == {"svc": {"queued": 1, "running": 1}}
        assert [r["id"] for r in q.claim(conn, "A", 15.0, 10.0, 5)] == ["ar_a"]


def test_callbacks_are_claimed_once_the_result_is_stored_and_purged_after_retention(store: Store) -> None:
    _submit(store, "ar_c", 1.0, callback="https://example.com/hook")
    _submit(store, "ar_n", 1.0)
    with store.begin() as conn:
        for row in q.claim(conn, "A", 10.0, 10.0, 5):
            assert q.finish(conn, row["id"], "A", now=11.0, status=q.SUCCEEDED, retention_s=100, result_status=200,
                            result_file=f"{row['id']}.res")
        assert q.anything_due(conn, 12.0) == (False, True)
        [hook] = q.claim_callbacks(conn, "A", 12.0, 10.0, 5)
        assert hook["id"] == "ar_c" and hook["callback_attempts"] == 1
        assert q.claim_callbacks(conn, "B", 12.0, 10.0, 5) == []  # leased
        assert q.callback_outcome(conn, "ar_c", "A", "pending", 20.0)
        assert q.claim_callbacks(conn, "B", 19.0, 10.0, 5) == []  # its backoff
        [again] = q.claim_callbacks(conn, "B", 20.0, 10.0, 5)
        assert again["callback_attempts"] == 2
        assert q.purge(conn, 500.0) == ["ar_n.res"]  # a pending callback keeps its row
        assert q.callback_outcome(conn, "ar_c", "B", "delivered")
        assert q.purge(conn, 100.0) == []  # not expired yet
        assert q.purge(conn, 500.0) == ["ar_c.res"]
        assert q.get(conn, "ar_c") is None


def test_a_request_is_never_sent_to_a_later_service_of_its_name(store: Store) -> None:
    from arkserve.store import services, users

    with store.begin() as conn:
        owner = users.create(conn, "owner", "h", "user").id
        services.create(conn, "svc", owner, {"image": "i", "port": 1, "command": "c"}, 1, None, lambda _p: False)
        made = services.get(conn, "svc").created_at
        assert q.service_target(conn, "svc", made + 1.0) == (None, owner, made)  # asked of this service
        assert q.service_target(conn, "svc", made - 1.0) is None  # asked of an earlier one of the name
        assert q.service_target(conn, "gone", made + 1.0) is None
