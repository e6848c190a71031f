"""The two ends ``bench/disk.py`` measures the API against, with nothing of their own in the way.

:class:`BareServer`: the loopback ceiling of a server: receives a PUT body with ``splice(2)`` and sends a
GET with ``sendfile(2)``, no HTTP parsing, auth or quota. :class:`RawClient`: the API's own speed apart from
any client: a signed request written by hand on one connection, the upload's body sent with ``sendfile(2)``,
the download's spliced socket -> 1 MiB pipe -> file on a blocking socket (whole 1 MiB moves), optionally
made durable as ``arkserve disk get`` does (writeback behind the write head, then ``fsync``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time

from arkserve.auth import signing

PIPE = 1 << 20

try:  # the package's windowed writeback, where it has one (a "before" package may not)
    from arkserve.storage.writeback import Writeback
except ImportError:  # pragma: no cover - older package
    Writeback = None  # type: ignore[assignment,misc]


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE)
    return r, w


def splice_to(sock: socket.socket, fd: int, count: int, *, writeback: bool = False) -> int:
    """``count`` bytes from ``sock`` into ``fd`` through a 1 MiB pipe; returns the bytes stored."""
    r, w = _pipe()
    wb = Writeback(fd, os.lseek(fd, 0, os.SEEK_CUR)) if writeback and Writeback is not None else None
    start, left = os.lseek(fd, 0, os.SEEK_CUR), count
    try:
        while left > 0:
            n = os.splice(sock.fileno(), w, min(left, PIPE))
            if n == 0:
                break
            left -= n
            while n:
                n -= os.splice(r, fd, n)
            if wb is not None:
                wb.advance(start + count - left)
    finally:
        os.close(r)
        os.close(w)
    return count - left


def _head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError("closed before the response head")
        data += more
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


class RawClient:
    """One signed request per connection to ``host:port`` with the access key pair ``ak``/``sk``."""

    def __init__(self, host: str, port: int, ak: str, sk: str) -> None:
        self.host, self.port, self.ak, self.sk = host, port, ak, sk

    def _open(self, method: str, path: str, extra: dict[str, str]) -> socket.socket:
        headers = signing.sign_headers(method=method, url=path, host=f"{self.host}:{self.port}",
                                       access_key=self.ak, secret_key=self.sk, body=None, now=time.time())
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: close",
                *(f"{k}: {v}" for k, v in {**headers, **extra}.items())]
        sock = socket.create_connection((self.host, self.port))
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        return sock

    def put(self, path: str, src: str) -> None:
        """PUT the file ``src`` as the body (``sendfile(2)``); raises unless the answer is 201."""
        fd = os.open(src, os.O_RDONLY)
        size = os.fstat(fd).st_size
        with self._open("PUT", path, {"Content-Length": str(size)}) as sock:
            sent = 0
            while sent < size:
                sent += os.sendfile(sock.fileno(), fd, sent, size - sent)
            os.close(fd)
            status, _, _ = _head(sock)
        if status != 201:
            raise RuntimeError(f"PUT {path}: {status}")

    def get(self, path: str, dst: str, *, durable: bool) -> int:
        """GET ``path`` into the file ``dst`` (spliced); ``durable``: writeback behind the head, then fsync."""
        with self._open("GET", path, {}) as sock:
            status, headers, rest = _head(sock)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status}")
            count = int(headers["content-length"])
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, rest)
                stored = len(rest) + splice_to(sock, fd, count - len(rest), writeback=durable)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        if stored != count:
            raise RuntimeError(f"GET {path}: {stored} of {count} bytes")
        return stored


class BareServer(threading.Thread):
    """The loopback ceiling for the same client: a bare HTTP/1.1 server, one connection at a time, that
    receives a PUT body with ``splice(2)`` (socket -> pipe -> file, writeback behind, then fsync: the API's
    upload) and sends a GET with ``sendfile(2)`` -- no parsing, auth, quota or Python per byte. Whatever time the API
    takes beyond it is the platform's; what it takes itself is the client's and the kernel's."""

    def __init__(self, src: str, dst: str) -> None:
        super().__init__(daemon=True)
        self.src, self.dst = src, dst
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(65536)
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        if lines[0].startswith("GET"):
            fd = os.open(self.src, os.O_RDONLY)
            size = os.fstat(fd).st_size
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
            sent = 0
            while sent < size:
                sent += os.sendfile(conn.fileno(), fd, sent, size - sent)
            os.close(fd)
            return
        if headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        fd = os.open(self.dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, rest)
        splice_to(conn, fd, int(headers["content-length"]) - len(rest), writeback=True)
        os.fsync(fd)
        os.close(fd)
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
