"""Big bodies through the API at disk speed: file downloads sent by the kernel, uploads written in batches.

**Downloads.** The API's server (:mod:`arkserve.api.server`) offers the ASGI ``http.response.zerocopy``
extension on plain-TCP connections: :func:`send_file` hands it an open file descriptor, an offset and a
count, and :class:`Cycle` sends those bytes with ``sendfile(2)`` from a worker thread (page cache to socket,
no copy through Python, a few KB of memory whatever the size). Where the extension is missing (another
server, TLS), :func:`send_file` falls back to ``pread`` + ``http.response.body`` in 4 MiB chunks.

**Request bodies.** uvicorn copies each received piece twice more (into a ``bytearray``, then out of it);
:class:`Cycle` hands each piece to the app as it came. A route that stores a body whole in a file (a disk
upload with ``Content-Length`` whose hash needs no checking) can instead have it spliced from the socket
into the file (``splice(2)`` through a pipe, our ``arkserve.request.splice`` extension, :func:`body_receiver`):
the bytes never enter Python. (Routes write each piece at once, while it is still
in the CPU's cache: measured here, 1-4 MiB writes of data gone cold ran 2-4x slower than 64-256 KB ones,
so batching pieces into big writes in a worker thread made uploads slower, not faster.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import select
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Scope, Send
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from arkserve.storage.writeback import Writeback, position

ZEROCOPY = "http.response.zerocopy"
SPLICE = "arkserve.request.splice"  # our own: receive the rest of a body straight into a file
SPLICE_STEP = 1 << 20  # bytes per splice from the socket (and the pipe's size, the default pipe-max-size)
SPLICE_IDLE_MS = 30_000  # a body that stops this long is given up (the upload answers 400, nothing installed)
CHUNK = 4 << 20  # per pread + send when the extension is missing


def _sendfile_all(sock: int, fd: int, offset: int, count: int) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset`` on a non-blocking socket; returns the bytes sent (fewer
    when the file ends early or the peer goes away)."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(sock, fd, offset + sent, count - sent)
        except BlockingIOError:
            if not poller.poll(30_000):
                break  # the client stopped reading
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if n == 0:
            break
        sent += n
    return sent


def _splice_in(sock: int, fd: int, count: int, start: int) -> int:
    """Move ``count`` bytes from a non-blocking socket into ``fd`` through a pipe (``splice(2)``: the bytes
    never enter Python); returns the bytes stored (fewer when the client stops sending or goes away). The disk
    writes the file behind the write head from offset ``start`` (:class:`arkserve.storage.writeback.Writeback`),
    so the fsync that ends the upload has little left."""
    writeback = Writeback(fd, start)
    head = position(fd)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    r, w = os.pipe()
    with contextlib.suppress(OSError):  # a bigger pipe: ~16x fewer splices than its default 64 KiB
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, SPLICE_STEP)
    stored = 0
    try:
        while stored < count:
            try:
                n = os.splice(sock, w, min(count - stored, SPLICE_STEP))
            except BlockingIOError:
                if not poller.poll(SPLICE_IDLE_MS):
                    break  # the client stopped sending
                continue
            except ConnectionResetError:
                break
            if n == 0:
                break  # the client closed
            while n:
                m = os.splice(r, fd, n)
                n -= m
                stored += m
            writeback.advance(head + stored)
    finally:
        os.close(r)
        os.close(w)
    return stored


class Cycle(RequestResponseCycle):
    """uvicorn's request-response cycle with a zero-copy send and request bodies handed over uncopied
    (the protocol turns each new cycle into one with :func:`adopt`)."""

    pieces: list[bytes]
    buffered: int

    def add_piece(self, body: bytes) -> int:
        """Keep a received piece of the body for :meth:`receive`; returns the bytes waiting."""
        self.pieces.append(body)
        self.buffered += len(body)
        return self.buffered

    async def send(self, message: Message) -> None:  # type: ignore[override]
        if message["type"] == "http.response.start" and self.more_body and not self.response_started:
            # the request's body is not all in (an answer before reading it: 401, 404, 413): this connection ends
            # after the response, and says so, so that no client sends its next request on it
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        elif message["type"] == "http.response.body" and not message.get("more_body", False) and self.more_body:
            self.keep_alive = True  # not uvicorn's close() with unread bytes (an RST): the protocol lingers
        if message["type"] != ZEROCOPY:
            await super().send(message)  # type: ignore[arg-type]
            return
        if not self.response_started or self.response_complete or self.chunked_encoding \
                or self.scope["method"] == "HEAD":
            raise RuntimeError(f"'{ZEROCOPY}' needs a started response with a Content-Length")
        count, offset = int(message["count"]), int(message.get("offset", 0))
        if count > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        while self.transport.get_write_buffer_size() and not self.disconnected:
            await asyncio.sleep(0.001)  # the head is still queued; sendfile must not overtake it
        if self.disconnected:
            return
        sock = self.transport.get_extra_info("socket").fileno()
        fd = message["file"] if isinstance(message["file"], int) else message["file"].fileno()
        sent = await run_in_threadpool(_sendfile_all, sock, fd, offset, count)
        if sent < count:
            self.transport.close()  # the client sees a short body, never a wrong one
            self.disconnected = True
            return
        self.expected_content_length -= count
        if not message.get("more_body", False):
            await super().send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive_into(self, fd: int, count: int) -> int:
        """The rest of the request body, ``count`` bytes in all, written to ``fd``: what already arrived
        first, the rest spliced from the socket in a worker thread while the event loop does not read it.
        Returns the bytes stored (fewer: the client went away). The connection closes after the response
        (the parser never saw the body, so it cannot read a next request)."""
        self.flow.pause_reading()
        self.keep_alive = False
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        pieces, self.pieces, self.buffered = self.pieces, [], 0
        start, stored = position(fd), 0
        for piece in pieces:
            view = memoryview(piece)[:count - stored]
            while view:
                n = os.write(fd, view)
                view, stored = view[n:], stored + n
        if stored >= count or not self.more_body or self.disconnected:
            return stored
        sock = self.transport.get_extra_info("socket").fileno()
        return stored + await run_in_threadpool(_splice_in, sock, fd, count - stored, start)

    async def receive(self) -> Any:
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        pieces = self.pieces or [bytes(self.body)]
        self.pieces, self.buffered, self.body = [], 0, bytearray()
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return {"type": "http.request", "body": body, "more_body": self.more_body}


def adopt(cycle: RequestResponseCycle | None, transport: Any) -> None:
    """Make uvicorn's new ``cycle`` a :class:`Cycle`; offer zero-copy sends on plain TCP only (on TLS the
    bytes must go through the encryption)."""
    if cycle is None or isinstance(cycle, Cycle):
        return
    cycle.__class__ = Cycle
    assert isinstance(cycle, Cycle)
    cycle.pieces, cycle.buffered = [], 0
    if transport.get_extra_info("sslcontext") is None and transport.get_extra_info("socket") is not None:
        cycle.scope["extensions"] = {**(cycle.scope.get("extensions") or {}), ZEROCOPY: {},
                                     SPLICE: {"receive_into": cycle.receive_into}}


def body_receiver(scope: Scope) -> Callable[[int, int], Awaitable[int]] | None:
    """``receive_into(fd, count)`` of :meth:`Cycle.receive_into` where the server offers it, else ``None``."""
    ext = (scope.get("extensions") or {}).get(SPLICE)
    return ext["receive_into"] if ext else None


async def send_file(scope: Scope, send: Send, fd: int, first: int, last: int) -> None:
    """Send bytes ``first..last`` (inclusive) of ``fd`` as the rest of a started response's body."""
    count = max(0, last - first + 1)
    if ZEROCOPY in scope.get("extensions", {}) and count:
        await send({"type": ZEROCOPY, "file": fd, "offset": first, "count": count, "more_body": False})
        return
    pos = first
    while pos <= last:
        data = await run_in_threadpool(os.pread, fd, min(CHUNK, last - pos + 1), pos)
        if not data:
            break
        pos += len(data)
        await send({"type": "http.response.body", "body": data, "more_body": pos <= last})
    if pos <= last or count == 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
