"""Callback URLs with spaces or control characters: refused at intake (``urlsplit`` silently drops TAB, CR and LF,
so the URL checked was not the URL the dispatcher would call), and a callback attempt that fails in any way,
even one stored before that check existed, counts against ``asyncq.callback_attempts``: the callback ends
``failed`` instead of being claimed again forever (and its row is then purged). Every URL here is on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from arkserve import settings
from arkserve.asyncq.dispatcher import Dispatcher
from arkserve.asyncq.intake import StoreQueue
from arkserve.domain.async_requests import callback_refusal
from arkserve.gateway.asyncintake import classify
from arkserve.gateway.http import HttpError
from arkserve.store import async_requests as q
from arkserve.store import users
from arkserve.store.db import Store, open_store


def test_intake_refuses_a_callback_url_with_a_space_or_control_character(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/arkserve.db")
    before = set(threading.enumerate())
    queue = StoreQueue(store, tmp_path, settings.AsyncSettings(callback_hosts="127.0.0.1"), b"k" * 32,
                       depth_every_s=3600)
    try:
        for char in ("\t", "\r", "\n", " ", "\x00", "\x1f", "\x7f"):
            url = f"http://127.0.0.1:9/a{char}b"
            got = classify(queue, b"POST", b"/async/p", None, url.encode("ascii"), [(b"Host", b"h")], False)
            assert isinstance(got, HttpError), (char, got)
            assert (got.status, got.code) == (400, "BadCallbackUrl")
            assert "spaces or control characters" in got.message
            assert callback_refusal(url, set()) == got.message  # judged before the host rules
        ok = classify(queue, b"POST", b"/async/p", None, b"http://127.0.0.1:9/a%09b", [(b"Host", b"h")], False)
        assert not isinstance(ok, HttpError), ok  # the same, encoded
    finally:
        queue.close()
        for thread in set(threading.enumerate()) - before:  # its gauge thread, done with the store
            thread.join(10)
        store.dispose()


class _Receiver(BaseHTTPRequestHandler):
    got: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.got.append(self.path)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.got = []
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _finished(store: Store, rid: str, callback: str, result_file: str | None = None) -> None:
    """A request that got its result, its callback now due (as the dispatcher leaves it)."""
    with store.begin() as conn:
        owner = users.create(conn, f"u{rid}", "h", "user").id
        q.insert_request(conn, {"id": rid, "service": "svc", "user_id": owner, "method": "POST", "path": "/p",
                                "headers": [], "body": b"x", "body_size": 1, "created_at": time.time(),
                                "callback_url": callback})
        [row] = q.claim(conn, "earlier", time.time(), 30.0, 1)
        assert q.finish(conn, row["id"], "earlier", now=time.time(), status=q.SUCCEEDED, retention_s=60.0,
                        result_status=200, result_body=None if result_file else b"out", result_file=result_file,
                        result_size=3)


def _run_until(store: Store, tmp_path: Path, done: Callable[[], Any], what: str) -> None:
    s = settings.load({"data_dir": str(tmp_path), "gateway.tls": False, "asyncq.callback_hosts": "127.0.0.1",
                       "asyncq.callback_attempts": 2, "asyncq.lease_s": 0.5}, env={})
    dispatcher = Dispatcher(store, s, b"k" * 32, poll_s=0.02)
    runner = threading.Thread(target=dispatcher.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)
    finally:
        dispatcher.stop(grace_s=5)
        runner.join(10)


def _callback(store: Store, rid: str) -> tuple[str, int]:
    with store.read() as conn:
        row = q.get(conn, rid)
    assert row is not None
    return str(row["callback_state"]), int(row["callback_attempts"])


def test_a_stored_callback_url_with_a_tab_fails_once_and_is_never_called(store: Store, tmp_path: Path,
                                                                         receiver: int) -> None:
    _finished(store, "ar_tab", f"http://127.0.0.1:{receiver}/a\tb")  # stored before intake refused it
    _run_until(store, tmp_path, lambda: _callback(store, "ar_tab")[0] == "failed", "the callback to fail")
    assert _callback(store, "ar_tab") == ("failed", 1)  # refused for good: no retry
    assert _Receiver.got == []


def test_any_error_in_a_callback_attempt_counts_against_the_attempts(store: Store, tmp_path: Path,
                                                                    receiver: int) -> None:
    # its result file is missing (removed by hand, a disk error): reading it raises, which no branch expected
    _finished(store, "ar_nofile", f"http://127.0.0.1:{receiver}/hook", result_file="ar_nofile.res")
    _run_until(store, tmp_path, lambda: _callback(store, "ar_nofile")[0] == "failed", "the callback to fail")
    assert _callback(store, "ar_nofile") == ("failed", 2)  # asyncq.callback_attempts, not one more
    assert _Receiver.got == []
    with store.begin() as conn:  # and it leaves with its retention, as any finished request
        assert q.purge(conn, time.time() + 61) == ["ar_nofile.res"]
