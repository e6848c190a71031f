"""What asynchronous requests keep on disk: a request's body file goes once it has its result (it is never sent
again); one user's waiting bodies are bounded by ``asyncq.user_queued_bytes`` (429 ``AsyncQueueFull`` naming used
and limit, before the body is written); a submission whose commit fails (the store away: 503) leaves no file;
and files no row names, older than a day, are removed by the dispatcher. Real stores, real files, a gateway on
loopback."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from arkserve import settings
from arkserve.asyncq.dispatcher import Dispatcher
from arkserve.asyncq.intake import StoreQueue
from arkserve.domain.async_requests import Submission, SubmitRefused, new_id
from arkserve.errors import StoreUnavailable
from arkserve.store import async_requests as q
from arkserve.store import services, users
from arkserve.store.db import Store, open_store
from arkserve.store.tables import services as services_table
from tests.asyncq.test_delivery import gateway  # noqa: F401  (fixture: an echoing stand-in gateway on loopback)


@pytest.fixture
def queue_factory() -> Iterator[list[StoreQueue]]:
    """StoreQueues to close, and their gauge threads to join, before the store goes."""
    made: list[StoreQueue] = []
    before = set(threading.enumerate())
    yield made
    _close(made, before)


def _close(made: list[StoreQueue], before: set[threading.Thread]) -> None:
    for queue in made:
        queue.close()
    for thread in set(threading.enumerate()) - before:
        if thread.name == "arkserve-async-depth":
            thread.join(10)


def _queue(store: Store, data_dir: Path, made: list[StoreQueue], **asyncq: Any) -> StoreQueue:
    queue = StoreQueue(store, data_dir, settings.AsyncSettings(**asyncq), b"k" * 32, depth_every_s=3600)
    made.append(queue)
    return queue


def _sub(service: str, user_id: int | None, size: int) -> Submission:
    return Submission(new_id(), service, user_id, "AK", "POST", "/p", [], None, body=b"x" * size, body_size=size)


def _files(data_dir: Path) -> set[str]:
    d = data_dir / "async"
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def test_the_body_file_goes_when_the_request_has_its_result(store: Store, tmp_path: Path, gateway: int,  # noqa: F811
                                                           queue_factory: list[StoreQueue]) -> None:
    with store.begin() as conn:
        owner = users.create(conn, "owner", "h", "user").id
        services.create(conn, "svc", owner, {"image": "i", "port": 1, "command": "c"}, 1, None)
        conn.execute(update(services_table).values(gateway_port=gateway))
    queue = _queue(store, tmp_path, queue_factory, inline_bytes=16)
    sub = _sub("svc", owner, 5000)
    queue.submit(sub)
    assert _files(tmp_path) == {f"{sub.id}.req"}
    s = settings.load({"data_dir": str(tmp_path), "gateway.tls": False, "asyncq.inline_bytes": 16}, env={})
    dispatcher = Dispatcher(store, s, b"k" * 32, poll_s=0.02)
    runner = threading.Thread(target=dispatcher.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while (row := queue.lookup(sub.id, "svc", owner)) is None or row["status"] != "succeeded":
            assert time.monotonic() < deadline, row
            time.sleep(0.02)
    finally:
        dispatcher.stop(grace_s=5)
        runner.join(10)
    res = queue.result(sub.id, "svc", owner)
    assert isinstance(res, tuple) and res[0] == 200 and res[2] == b"x" * 5000
    assert _files(tmp_path) == {f"{sub.id}.res"}  # the result stays for its retention; the body is gone
    with store.read() as conn:
        row = q.get(conn, sub.id)
    assert row is not None and row["body_file"] is None


def test_one_users_waiting_bodies_are_bounded(store: Store, tmp_path: Path,
                                             queue_factory: list[StoreQueue]) -> None:
    with store.begin() as conn:
        alice = users.create(conn, "alice", "h", "user").id
        bob = users.create(conn, "bob", "h", "user").id
    queue = _queue(store, tmp_path, queue_factory, inline_bytes=100, user_queued_bytes=1000)
    first = _sub("svc", alice, 600)
    queue.submit(first)
    with pytest.raises(SubmitRefused) as refused:
        queue.submit(_sub("other-svc", alice, 600))  # any of her services: the bound is hers
    err = refused.value
    assert (err.status, err.code) == (429, "AsyncQueueFull") and err.retry_after
    assert "600 bytes" in err.message and "limit of 1000" in err.message and "user_queued_bytes" in err.message
    assert _files(tmp_path) == {f"{first.id}.req"}  # the refused body was never written
    queue.submit(_sub("svc", bob, 600))  # bob's own bound
    queue.submit(_sub("svc", alice, 400))  # up to the limit exactly
    queue.submit(_sub("pub", None, 900))  # anonymous requests of a public service: counted per service
    with pytest.raises(SubmitRefused):
        queue.submit(_sub("pub", None, 200))
    queue.submit(_sub("pub2", None, 900))
    with store.begin() as conn:  # her first request ends: its bytes no longer count
        rows = q.claim(conn, "D", time.time() + 1, 30.0, 10)
        mine = next(r for r in rows if r["id"] == first.id)
        assert q.finish(conn, mine["id"], "D", now=time.time(), status=q.SUCCEEDED, retention_s=60)
    queue.submit(_sub("svc", alice, 600))


def test_a_failed_commit_leaves_no_body_file(store: Store, tmp_path: Path,
                                             queue_factory: list[StoreQueue]) -> None:
    queue = _queue(store, tmp_path, queue_factory, inline_bytes=100)
    with pytest.raises(IntegrityError):  # no such user (a foreign key): the commit fails
        queue.submit(_sub("svc", 424242, 5000))
    assert _files(tmp_path) == set()


def test_a_503_at_intake_leaves_no_body_file(tmp_path: Path) -> None:
    """The store is away (SQLite: another process holds the write lock past the busy timeout)."""
    db = tmp_path / "arkserve.db"
    store = open_store(f"sqlite:///{db}", busy_timeout_ms=200)
    holder = sqlite3.connect(db, isolation_level=None)
    made: list[StoreQueue] = []
    before = set(threading.enumerate())
    try:
        queue = _queue(store, tmp_path, made, inline_bytes=100)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            queue.submit(_sub("svc", None, 5000))
        assert _files(tmp_path) == set()
        holder.execute("ROLLBACK")
        ok = _sub("svc", None, 5000)
        queue.submit(ok)
        assert _files(tmp_path) == {f"{ok.id}.req"}
    finally:
        holder.close()
        _close(made, before)
        store.dispose()


def test_the_dispatcher_removes_old_files_no_row_names(store: Store, tmp_path: Path) -> None:
    d = tmp_path / "async"
    d.mkdir()
    with store.begin() as conn:
        q.insert_request(conn, {"id": "ar_kept", "service": "svc", "method": "POST", "path": "/p", "headers": [],
                                "body_file": "ar_kept.req", "body_size": 3, "created_at": time.time(),
                                "callback_url": None, "next_at": time.time() + 3600})
    old = time.time() - 2 * 86400
    for name in ("ar_kept.req", "ar_orphan.req", "ar_orphan.res", ".ar_crashed.req.tmp", "ar_new.req"):
        (d / name).write_bytes(b"abc")
        if name != "ar_new.req":  # written a moment ago: perhaps its row is being committed now
            os.utime(d / name, (old, old))
    s = settings.load({"data_dir": str(tmp_path), "gateway.tls": False}, env={})
    dispatcher = Dispatcher(store, s, b"k" * 32)
    try:
        dispatcher.pass_once(time.time())
    finally:
        dispatcher.stop(grace_s=1)
    assert _files(tmp_path) == {"ar_kept.req", "ar_new.req"}
