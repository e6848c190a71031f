"""The network disk's big bodies on plain HTTP without Python in the way: ``arkserve disk put`` hands the file to
the socket with ``sendfile(2)``, ``arkserve disk get`` moves the socket's bytes into the file with ``splice(2)``.

httpx still builds and signs each request (:class:`arkserve.sdk.auth.ArkAuth`, the same URL and headers it
would send); only the wire is ours: one HTTP/1.1 request per connection (``Connection: close``), its head
written as httpx built it, the body moved by the kernel in steps of :data:`STEP` bytes (a progress update
between steps), and the response head parsed here. An upload asks ``Expect: 100-continue`` and sends its
body only once the server says so (or after :data:`CONTINUE_WAIT_S`, as curl does), so a refusal (quota,
signature) costs no bytes. Error responses become ordinary ``httpx.Response`` objects for the caller's checks.

:func:`usable` says when this applies: an ``http://`` endpoint reached without a proxy, on a system with
``os.sendfile`` and ``os.splice`` (Linux); or an ``https://`` one through a :class:`DiskClient`, where every
byte must pass through the encryption in this process: it is read into and written from one reused buffer
(httpx's own download path cost ~10 s of CPU per GiB here). Elsewhere the callers in
:mod:`arkserve.cli.disk_transfer` use httpx.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import ssl
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from arkserve.storage.writeback import Writeback, position

STEP = 8 << 20  # bytes per sendfile/splice call between progress updates
TLS_STEP = 1 << 20  # on TLS: bytes per read into (or write from) the one buffer
MIN_BODY = 1 << 20  # smaller uploads stay on httpx's kept-alive connection (no new connection, no 100 wait)
PIPE_SIZE = 1 << 20  # the splice pipe's capacity (the default /proc/sys/fs/pipe-max-size)
CONTINUE_WAIT_S = 1.0  # how long an upload waits for "100 Continue" before sending anyway
MAX_HEAD = 64 << 10
CONNECT_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 120.0  # longest pause of the peer while a body moves, or before its response

Progress = Callable[[int], None]


class DiskClient(httpx.Client):
    """httpx's client, remembering the TLS context it verifies the server with, so that the wire can use the
    same one on ``https://``."""

    def __init__(self, *, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(verify=ssl_context, **kwargs)
        self.ssl_context = ssl_context


def usable(http: httpx.Client) -> bool:
    """Whether ``http``'s endpoint can be reached with the wire: plain HTTP (Linux), or HTTPS through a
    :class:`DiskClient`; no proxy in the way."""
    url = http.base_url
    if url.scheme == "http":
        if not hasattr(os, "splice") or not hasattr(os, "sendfile"):
            return False
    elif url.scheme != "https" or not isinstance(http, DiskClient):
        return False
    proxy = urllib.request.getproxies().get(url.scheme)
    return not proxy or bool(urllib.request.proxy_bypass(url.host))


def _signed(http: httpx.Client, method: str, path: str, params: dict[str, str] | None,
            headers: dict[str, str]) -> httpx.Request:
    req = http.build_request(method, path, params=params, headers=headers)
    if isinstance(http.auth, httpx.Auth):
        req = next(http.auth.sync_auth_flow(req))
    return req


def _head_bytes(req: httpx.Request) -> bytes:
    lines = [b"%s %s HTTP/1.1" % (req.method.encode(), req.url.raw_path)]
    for k, v in req.headers.raw:
        if k.lower() == b"connection":
            v = b"close"
        elif k.lower() == b"accept-encoding":
            v = b"identity"  # the body is stored as it comes
        lines.append(k + b": " + v)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _wait(sock: socket.socket, event: int, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(sock, event)
    return bool(poller.poll(int(timeout_s * 1000)))


class Wire:
    """One request's connection: the response head as it is parsed, and what of the body came with it."""

    def __init__(self, http: httpx.Client, req: httpx.Request) -> None:
        self.req = req
        url = http.base_url
        self.tls = url.scheme == "https"
        self.sock = socket.create_connection((url.host, url.port or (443 if self.tls else 80)),
                                             timeout=CONNECT_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            assert isinstance(http, DiskClient)
            self.sock = http.ssl_context.wrap_socket(self.sock, server_hostname=url.host)
        self.sock.settimeout(IO_TIMEOUT_S)
        self.buf = bytearray()
        self.sock.sendall(_head_bytes(req))

    def close(self) -> None:
        self.sock.close()

    def _recv(self) -> bool:
        data = self.sock.recv(1 << 16)
        self.buf += data
        return bool(data)

    def head(self) -> tuple[int, list[tuple[str, str]]]:
        """The next response head: (status, headers); informational ones (100) included."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise httpx.RemoteProtocolError("response head too long", request=self.req)
            if not self._recv():
                raise httpx.RemoteProtocolError("the server closed the connection before answering",
                                                request=self.req)
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        status_line, *lines = head.split("\r\n")
        try:
            status = int(status_line.split(" ", 2)[1])
        except (IndexError, ValueError):
            raise httpx.RemoteProtocolError(f"bad status line {status_line[:80]!r}", request=self.req) from None
        return status, [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines)]

    def final_head(self) -> tuple[int, list[tuple[str, str]]]:
        while True:
            status, headers = self.head()
            if status >= 200:
                return status, headers

    def response(self, status: int, headers: list[tuple[str, str]]) -> httpx.Response:
        """The whole response with its (small) body, read to its end."""
        h = httpx.Headers(headers)
        if "content-length" in h:
            want = int(h["content-length"])
            while len(self.buf) < want and self._recv():
                pass
            body = bytes(self.buf[:want])
        else:
            while self._recv():
                pass
            body = _dechunk(bytes(self.buf)) if "chunked" in h.get("transfer-encoding", "") else bytes(self.buf)
        return httpx.Response(status, headers=[(k, v) for k, v in h.items() if k != "transfer-encoding"],
                              content=body, request=self.req)

    def send_file(self, fd: int, offset: int, count: int, progress: Progress) -> None:
        """``count`` bytes of ``fd`` from ``offset`` to the socket, by the kernel (on TLS: read into one buffer,
        encrypted from it)."""
        if self.tls:
            buf = memoryview(bytearray(TLS_STEP))
            sent = 0
            while sent < count:
                n = os.preadv(fd, [buf[:min(TLS_STEP, count - sent)]], offset + sent)
                if n == 0:
                    raise OSError("the file shrank while being uploaded")
                self.sock.sendall(buf[:n])
                sent += n
                progress(n)
            return
        sent, out = 0, self.sock.fileno()
        while sent < count:
            try:
                n = os.sendfile(out, fd, offset + sent, min(STEP, count - sent))
            except BlockingIOError:
                if not _wait(self.sock, select.POLLOUT, IO_TIMEOUT_S):
                    raise httpx.WriteTimeout("the server stopped reading", request=self.req) from None
                continue
            if n == 0:
                raise OSError("the file shrank while being uploaded")
            sent += n
            progress(n)

    def splice_into(self, fd: int, count: int, progress: Progress) -> int:
        """The body's ``count`` bytes into ``fd`` at its offset: what came with the head first, then the rest
        spliced from the socket. Returns the bytes stored (fewer: the server closed early). The disk writes
        them behind the write head (:class:`arkserve.storage.writeback.Writeback`): the caller's fsync then
        has little left."""
        start = position(fd)
        writeback = Writeback(fd, start)
        first = bytes(self.buf[:count])
        del self.buf[:len(first)]
        view = memoryview(first)
        while view:
            view = view[os.write(fd, view):]
        stored = len(first)
        if stored:
            progress(stored)
        if self.tls:
            return stored + self._recv_into(fd, count - stored, progress)
        r, w = os.pipe()
        try:
            with contextlib.suppress(OSError):
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # fewer, bigger moves than its default 64 KiB
            src = self.sock.fileno()
            while stored < count:
                try:
                    n = os.splice(src, w, min(count - stored, PIPE_SIZE))
                except BlockingIOError:
                    if not _wait(self.sock, select.POLLIN, IO_TIMEOUT_S):
                        raise httpx.ReadTimeout("the server stopped sending", request=self.req) from None
                    continue
                if n == 0:
                    break
                while n:
                    m = os.splice(r, fd, n)
                    n, stored = n - m, stored + m
                    progress(m)
                writeback.advance(start + stored)
        finally:
            os.close(r)
            os.close(w)
        return stored


    def _recv_into(self, fd: int, count: int, progress: Progress) -> int:
        """TLS: decrypted into one buffer, written from it (no bytes object per piece)."""
        start = position(fd)
        writeback = Writeback(fd, start)
        buf = memoryview(bytearray(TLS_STEP))
        stored = 0
        while stored < count:
            try:
                n = self.sock.recv_into(buf, min(TLS_STEP, count - stored))
            except TimeoutError:
                raise httpx.ReadTimeout("the server stopped sending", request=self.req) from None
            if n == 0:
                break
            view = buf[:n]
            while view:
                view = view[os.write(fd, view):]
            stored += n
            progress(n)
            writeback.advance(start + stored)
        return stored


def _dechunk(raw: bytes) -> bytes:
    out, pos = bytearray(), 0
    while (eol := raw.find(b"\r\n", pos)) >= 0:
        size = int(raw[pos:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += raw[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2
    return bytes(out)


def upload(http: httpx.Client, method: str, path: str, params: dict[str, str] | None, fd: int, offset: int,
           count: int, progress: Progress) -> httpx.Response:
    """``method path`` with ``count`` bytes of ``fd`` from ``offset`` as the body; the server's response."""
    req = _signed(http, method, path, params, {"Content-Length": str(count), "Expect": "100-continue"})
    wire = Wire(http, req)
    try:
        if _wait(wire.sock, select.POLLIN, CONTINUE_WAIT_S):
            status, headers = wire.head()
            if status >= 200:
                return wire.response(status, headers)  # refused before the body: nothing sent
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server answered and closed
            wire.send_file(fd, offset, count, progress)  # mid-way: its answer says why
        return wire.response(*wire.final_head())
    finally:
        wire.close()


@contextmanager
def download(http: httpx.Client, path: str, headers: dict[str, str]) -> Iterator[Wire]:
    """A ``GET`` sent on its own connection: the caller reads the head with :meth:`Wire.final_head`, then the
    body with :meth:`Wire.splice_into` (a file) or :meth:`Wire.response` (an error to report)."""
    wire = Wire(http, _signed(http, "GET", path, None, headers))
    try:
        yield wire
    finally:
        wire.close()
