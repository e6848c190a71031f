"""A TLS listener that tells a plain-HTTP client what it did wrong instead of dropping it.

``curl http://127.0.0.1:<tls port>/`` against an ordinary TLS server gets an empty reply (the handshake fails
on bytes that are not a ClientHello). :class:`TlsListener` accepts connections itself, peeks at the first
byte without consuming it, and then either hands the socket to the loop's TLS transport (``0x16``: a TLS
handshake record) or answers ``400 PlainHttpToHttpsPort`` in plain HTTP ("this port speaks HTTPS …") and
closes. It offers the two things :class:`~arkserve.gateway.app.Gateway` uses of an ``asyncio.Server``:
``sockets`` and ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from arkserve.gateway.http import error_response, new_request_id

log = logging.getLogger("arkserve.gateway")
_TLS_HANDSHAKE = 0x16


def plain_http_answer(port: int) -> bytes:
    return error_response(400, "PlainHttpToHttpsPort", f"this port speaks HTTPS (TLS), not plain HTTP: use "
                          f"https://…:{port}/ (and the platform's CA, e.g. curl --cacert <data dir>/tls/ca.pem)",
                          new_request_id(), close=True)


class TlsListener:
    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 factory: Callable[[], asyncio.Protocol], ssl_context: ssl.SSLContext, port: int,
                 first_byte_timeout_s: float) -> None:
        self.sockets = [sock]
        self.loop, self.sock, self.factory, self.ssl_context = loop, sock, factory, ssl_context
        self.port, self.timeout_s = port, first_byte_timeout_s
        self.closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = loop.create_task(self._accept())

    def close(self) -> None:
        """Stop accepting (connections already handed to TLS keep running)."""
        self.closed = True
        self._accepting.cancel()
        self.sock.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = await self.loop.sock_accept(self.sock)
            except OSError as exc:
                if self.closed:
                    return
                log.warning("accept on port %s failed: %s", self.port, exc)
                await asyncio.sleep(0.1)
                continue
            self._spawn(self._sniff(conn))

    async def _readable(self, conn: socket.socket, timeout_s: float) -> bool:
        ready: asyncio.Future[None] = self.loop.create_future()
        fd = conn.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(ready, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self.loop.remove_reader(fd)

    async def _sniff(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        try:
            first = conn.recv(1, socket.MSG_PEEK) if await self._readable(conn, self.timeout_s) else b""
        except OSError:
            first = b""
        if first and first[0] == _TLS_HANDSHAKE:
            try:
                await self.loop.connect_accepted_socket(self.factory, sock=conn, ssl=self.ssl_context,
                                                        ssl_handshake_timeout=self.timeout_s)
            except (OSError, ssl.SSLError, TimeoutError):
                conn.close()  # a failed handshake: nothing to answer in either protocol
            return
        if first:
            with contextlib.suppress(OSError):
                conn.send(plain_http_answer(self.port))
                conn.shutdown(socket.SHUT_WR)
                # read what the client sent, so closing does not reset the answer away
                while await self._readable(conn, 1.0) and conn.recv(65536):
                    pass
        conn.close()
