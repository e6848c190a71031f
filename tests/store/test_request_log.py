"""The gateway's request log in the store: rows exactly as the hot path submits them, on every backend."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import time
from collections.abc import Callable

from sqlalchemy import func, select

from arkserve.auth import keys as key_service
from arkserve.auth.vault import MasterKey
from arkserve.gateway.requestlog import FIELDS, BatchingSink, PipedSink, RequestRecord
from arkserve.store import events, request_writer
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.tables import access_keys, request_log


def test_the_gateways_row_is_the_stores_row() -> None:
    """The gateway and the store may not import each other; their field order is the same by this test."""
    assert FIELDS == events.REQUEST_FIELDS


def test_rows_land_whole_in_order_and_mark_the_signing_key_used(store: Store) -> None:
    with store.begin() as conn:
        uid = user_store.create(conn, "dora", "h", "user").id
        ak, _ = key_service.issue(conn, MasterKey.generate(), uid, "k")
    t = time.time()
    rows = [  # awkward values on purpose: a '%' and quotes in the path (the PostgreSQL driver's format style)
        (t, "svc", "r0", "GET", "/v1/x?q=100%25&s='a'", 200, 1.25, 0, 27, ak, "127.0.0.1", "rid-1", "3"),
        (t + 0.001, "svc", "", "POST", "/v1/“ünï”", 401, 0.5, 12, 0, "", "::1", "rid-2", ""),
        (t + 0.002, "other", "r1", "GET", "/", 503, 30000.0, 0, 0, "", "10.0.0.1", "rid-3", "")]
    with store.begin() as conn:
        events.log_requests(conn, rows)
    with store.read() as conn:
        listed = events.list_requests(conn, "svc")
        used = conn.execute(select(access_keys.c.last_used_at).where(access_keys.c.access_key == ak)).scalar()
    assert [tuple(r[k] for k in events.REQUEST_FIELDS) for r in reversed(listed)] == rows[:2]
    assert used is not None and used >= t - 1


def test_a_batching_sink_hands_the_store_every_row(store: Store) -> None:
    """The gateway command's wiring (``cli/parts.py``): a BatchingSink whose batches go to ``log_requests``."""
    def deliver(batch: list[tuple[object, ...]]) -> None:
        with store.begin() as conn:
            events.log_requests(conn, batch)

    sink = BatchingSink(deliver, interval_s=0.01, batch_size=7)
    sent = [RequestRecord(float(i), "svc", "r0", "GET", f"/{i}", 200, 0.1, 0, 2, "", "c", f"id{i}", "")
            for i in range(50)]
    for r in sent:
        sink.submit(tuple(r))  # type: ignore[arg-type]
    sink.close()
    with store.read() as conn:
        got = [RequestRecord(**r) for r in events.list_requests(conn, "svc", limit=100)]
    assert sorted(got) == sent


def test_a_batch_larger_than_one_statement_lands_whole_and_in_order(store: Store) -> None:
    """517 rows = 256 + 256 + 4 + 1: full statements, then smaller ones, each row once."""
    count = 2 * events.ROWS_PER_INSERT + 5
    rows = [(float(i), "big", f"r{i % 3}", "GET", f"/{i}", 200, 0.5, i, 2 * i, "", "c", f"id{i}", "")
            for i in range(count)]
    with store.begin() as conn:
        assert events.insert_request_rows(conn, rows) == count
    with store.read() as conn:
        listed = events.list_requests(conn, "big", limit=count + 10)
    assert [tuple(r[k] for k in events.REQUEST_FIELDS) for r in reversed(listed)] == rows


def test_prune_goes_from_the_oldest_end_a_chunk_at_a_time(store: Store) -> None:
    """Rows older than the retention go, a chunk per call, oldest first; newer rows stay. A row written after
    newer ones (a long request: its time is its start) goes once it is within a chunk of the oldest end."""
    now = time.time()
    old, new = now - 10 * 86400, now - 60

    def row(i: int, t: float) -> tuple[object, ...]:
        return (t, "svc", "r0", "GET", f"/{i}", 200, 0.5, 0, 0, "", "c", f"id{i}", "")

    rows = [row(i, old) for i in range(25)] + [row(25 + i, new) for i in range(5)] + [row(30, old)]
    with store.begin() as conn:
        events.insert_request_rows(conn, rows)
        for i in range(3):
            events.record(conn, "svc", "Note", f"event {i}")
    gone = []
    while True:
        with store.begin() as conn:
            n = events.prune(conn, 86400, chunk=10)
        if not n:
            break
        gone.append(n)
    # 10 + 10 old; the 10 oldest left are 5 old and 5 new; then the straggler is among the 10 oldest
    assert gone == [10, 10, 5, 1]
    with store.read() as conn:
        left = [r["request_id"] for r in events.list_requests(conn, "svc", limit=100)]
        assert len(events.list_events(conn, "svc")) == 3  # recent events stay
    assert sorted(left) == sorted(f"id{25 + i}" for i in range(5))


def _piped(database_url: str) -> PipedSink:
    """The sink ``arkserve gateway`` gives each worker (cli/parts.py), flushing often."""
    argv, env = request_writer.launch(database_url)
    return PipedSink(argv, env=env, interval_s=0.01, batch_size=300)


def _rows(service: str, n: int, start: int = 0) -> list[tuple[object, ...]]:
    return [(float(i), service, "r0", "GET", f"/{i}", 200, 0.1, 0, 2, "", "c", f"id{i}", "")
            for i in range(start, start + n)]


def _stored(store: Store, service: str) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).where(request_log.c.service == service)).scalar_one())


def _until(what: str, check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_piped_sink_hands_every_row_to_its_writer_which_outlives_a_stop(store: Store, database_url: str) -> None:
    """Rows reach the store through the writer process. The writer is out of the terminal's reach (its own
    session: Ctrl-C goes to the gateway, which closes the pipe), a SIGINT or SIGTERM sent to it anyway does not
    stop it early, and close() waits until the last row is stored."""
    sink = _piped(database_url)
    rows = _rows("piped", 3000)
    for r in rows[:1000]:
        sink.submit(r)  # type: ignore[arg-type]
    _until("the first rows stored", lambda: _stored(store, "piped") > 0)  # the writer is up
    assert sink._child is not None and os.getsid(sink._child.pid) != os.getsid(0)
    os.kill(sink._child.pid, signal.SIGINT)
    os.kill(sink._child.pid, signal.SIGTERM)
    for r in rows[1000:]:
        sink.submit(r)  # type: ignore[arg-type]
    sink.close()
    with store.read() as conn:
        got = [tuple(r[k] for k in events.REQUEST_FIELDS) for r in events.list_requests(conn, "piped", limit=5000)]
    assert sorted(got) == rows and sink.started == 1 and sink.failed_batches == 0


def test_a_piped_sink_starts_another_writer_when_its_writer_died(store: Store, database_url: str) -> None:
    sink = _piped(database_url)
    for r in _rows("again", 100):
        sink.submit(r)  # type: ignore[arg-type]
    _until("the first rows stored", lambda: _stored(store, "again") == 100)
    assert sink._child is not None
    os.kill(sink._child.pid, signal.SIGKILL)
    sink._child.wait()
    for r in _rows("again", 100, start=100):
        sink.submit(r)  # type: ignore[arg-type]
    sink.close()
    assert _stored(store, "again") == 200 and sink.started == 2



def test_a_writer_whose_store_refuses_batches_says_so_once_and_when_it_works_again(store: Store,
                                                                                   database_url: str) -> None:
    """Batches the store refuses (away, or here: rows it will not take) are dropped with one warning, not one per
    batch (a gateway worker hands its writer a batch every few milliseconds under load), and one line when they
    land again."""
    argv, env = request_writer.launch(database_url)
    writer = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdin is not None

    def batch(rows: list[tuple[object, ...]]) -> None:
        payload = marshal.dumps(rows)
        writer.stdin.write(len(payload).to_bytes(8, "little") + payload)  # type: ignore[union-attr]

    for i in range(30):
        batch([(None, *row[1:]) for row in _rows("late", 2, start=2 * i)])  # no time: NOT NULL refuses them
    batch(_rows("late", 5, start=100))
    writer.stdin.close()
    assert writer.stderr is not None
    said = writer.stderr.read().decode()  # until the writer, done with its input, exits
    assert writer.wait(60) == 0
    writer.stderr.close()
    assert said.count("dropped") == 1 and "/0" not in said, said  # the rows (paths, clients) are not logged
    assert "request log: works again after" in said and "(30 failures)" in said, said
    assert _stored(store, "late") == 5
