"""The readiness probe against real sockets on loopback: one deadline for the whole exchange, so a replica that
trickles its answer cannot hold a reconciler worker; the answers users see for the usual failures."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from arkserve.reconciler.health import probe


@contextmanager
def _server(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # (accept wakes up to see the stop)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with conn:
                conn.recv(4096)
                with suppress(OSError):
                    answer(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        t.join(5)


def _trickle(conn: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\n\r\n" * 100:  # a byte every 0.2 s: each read succeeds in time
        conn.sendall(bytes([byte]))
        time.sleep(0.2)


def test_a_trickled_answer_fails_within_the_timeout() -> None:
    got: list[tuple[bool, str]] = []
    with _server(_trickle) as port:
        t0 = time.monotonic()
        prober = threading.Thread(target=lambda: got.append(probe("127.0.0.1", port, "/healthz", timeout=1.0)),
                                  daemon=True)
        prober.start()
        prober.join(5)  # (a probe with a per-read timeout would still be reading, for minutes)
        took = time.monotonic() - t0
    assert got and took < 1.5, took
    ok, reason = got[0]
    assert not ok and "no answer within 1 s" in reason, reason


def test_the_usual_answers() -> None:
    with _server(lambda c: c.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")) as port:
        assert probe("127.0.0.1", port, "/h") == (True, "")
        assert probe("127.0.0.1", port, None) == (True, "")
    with _server(lambda c: c.sendall(b"HTTP/1.0 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")) as port:
        assert probe("127.0.0.1", port, "/h") == (False, "GET /h answered 503")
    with _server(lambda c: c.sendall(b"SSH-2.0-OpenSSH\r\n")) as port:
        ok, reason = probe("127.0.0.1", port, "/h")
        assert not ok and "not an HTTP status line" in reason
    with _server(lambda c: None) as port:  # closes without a word
        ok, reason = probe("127.0.0.1", port, "/h")
        assert not ok and "closed before a status line" in reason
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert probe("127.0.0.1", free, "/h") == (False, f"nothing listens on 127.0.0.1:{free}")
