"""The store-backed queue a gateway worker is given: its queue-depth gauge is declared from the first scrape on
(a gateway that just restarted must not serve a /metrics without it) and counts by state after its first read."""

from __future__ import annotations

import time
from pathlib import Path

from arkserve import settings
from arkserve.asyncq.intake import StoreQueue
from arkserve.store import async_requests as q
from arkserve.store.db import Store


def test_the_depth_gauge_is_declared_at_once_and_read_without_waiting_a_period(store: Store, tmp_path: Path) -> None:
    with store.begin() as conn:
        q.insert_request(conn, {"id": "ar_1", "service": "svc", "method": "POST", "path": "/p", "headers": [],
                                "body": b"hi", "body_size": 2, "created_at": 1.0, "callback_url": None})
    queue = StoreQueue(store, tmp_path, settings.AsyncSettings(), b"k" * 32, depth_every_s=3600)
    try:
        assert "# TYPE arkserve_async_queue_depth gauge" in queue.metrics_text()  # before any read of the store
        deadline = time.monotonic() + 10
        while 'arkserve_async_queue_depth{service="svc",state="queued"} 1' not in queue.metrics_text():
            assert time.monotonic() < deadline, queue.metrics_text()  # a period of an hour: only the first read
            time.sleep(0.02)
    finally:
        queue.close()


def test_a_stored_request_keeps_what_the_gateway_would_forward() -> None:
    from arkserve.gateway.asyncintake import AsyncRequest, classify

    headers = [(b"Host", b"h"), (b"Connection", b"keep-alive, X-Secret-Hop"), (b"X-Secret-Hop", b"1"),
               (b"X_Ark_Access_Key", b"AKFORGED"), (b"Forwarded", b"for=10.0.0.1"), (b"X-Real-IP", b"10.0.0.1"),
               (b"X-Forwarded-Host", b"admin.internal"), (b"X-Test", b"kept")]
    req = classify(None, b"POST", b"/async/p", None, None, headers, False)  # type: ignore[arg-type]
    assert isinstance(req, AsyncRequest) and req.headers == [["X-Test", "kept"]]
    # nor the console's session cookie (tests/gateway/test_request_headers.py): a Cookie of it alone is not stored
    for cookie, stored in ((b"a=1; ark_session=SECRET; b=2", [["Cookie", "a=1; b=2"]]), (b"ark_session=SECRET", [])):
        req = classify(None, b"POST", b"/async/p", None, None, [(b"Host", b"h"), (b"Cookie", cookie)], False)  # type: ignore[arg-type]
        assert isinstance(req, AsyncRequest) and req.headers == stored
